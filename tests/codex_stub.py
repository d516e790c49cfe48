"""A loopback OpenAI Responses API that plays a scripted model for the real Codex CLI.

Codex posts the whole conversation to ``POST /v1/responses`` each step and reads the answer as
Server-Sent Events: ``response.created``, one ``response.output_item.done`` per output item (a
``function_call``, or the final ``message``) and ``response.completed``. The script is a function
of the conversation so far, so a step can use what an earlier tool call returned.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Script = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def function_call(call_id: str, name: str, arguments: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    item = {"type": "function_call", "call_id": call_id, "name": name, "arguments": json.dumps(arguments)}
    return {**item, "namespace": namespace} if namespace else item


def message(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "id": "msg_final",
        "content": [{"type": "output_text", "text": text}],
    }


def outputs(conversation: list[dict[str, Any]]) -> dict[str, str]:
    """Tool outputs by call id, as Codex sent them back."""
    found = {}
    for item in conversation:
        if item.get("type") == "function_call_output":
            output = item.get("output")
            found[item["call_id"]] = output if isinstance(output, str) else json.dumps(output)
    return found


class ResponsesStub:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                stub.requests.append(body)
                try:
                    items = stub.script(body.get("input", []))
                except Exception as exc:  # the test sees it as the model's last word
                    items = [message(f"script failed: {exc!r}")]
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                n = len(stub.requests)
                events = [{"type": "response.created", "response": {"id": f"resp_{n}"}}]
                events += [{"type": "response.output_item.done", "item": item} for item in items]
                usage = {
                    "input_tokens": 10,
                    "input_tokens_details": None,
                    "output_tokens": 10,
                    "output_tokens_details": None,
                    "total_tokens": 20,
                }
                events.append({"type": "response.completed", "response": {"id": f"resp_{n}", "usage": usage}})
                for event in events:
                    self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ResponsesStub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
