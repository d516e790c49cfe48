"""The loopback OpenAI-compatible model server: what ``NEXUS_REPLAY`` answers through, so a replayed
notebook still goes through the real ``openai`` client, HTTP and SSE.

Stdlib only: ``ThreadingHTTPServer`` in a daemon thread, HTTP/1.1 keep-alive, and chunked
transfer encoding for streams. Chunked framing matters: it is what lets the client *notice* an
abrupt disconnect (a close-delimited body would look like a normal end of stream).

Routes: ``POST /v1/chat/completions`` (streamed SSE or plain JSON, following the request's
``stream`` flag) and ``GET /v1/models``. A *responder* returns the *step* that answers each
request on its :class:`Wire`; :class:`Replay` answers from a cassette (:mod:`.cassette`) with
:class:`ChunksStep` / :class:`CompletionStep`, or :func:`http_error` for a request it has no
answer to. Scripted answers for tests live in :mod:`nexusleads_lab.testing.modelserver`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..db.errors import shorten
from .cassette import (
    REPLAY_MISS,
    CassetteMatcher,
    Exchange,
    Mask,
    assemble_completion,
    last_user_message,
    load_cassette,
)
from .questions import CONNECT_A_MODEL, unrecorded_text

JSON = dict[str, Any]

# A client that goes away mid-answer shows up as one of these on write.
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


# --------------------------------------------------------------------------- wire


class Wire:
    """One HTTP exchange as a step sees it: send JSON, or stream SSE events, or drop.

    Keeps ``http.server`` details out of the steps so custom steps stay short.
    Writes raise ``BrokenPipeError``/``ConnectionResetError`` once the client is
    gone; the server records that in ``ModelServer.aborted``.
    """

    def __init__(self, handler: _Handler, request: JSON, number: int, default_model: str) -> None:
        self._handler = handler
        self.request = request
        self.number = number
        self.completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = str(request.get("model") or default_model)
        self.started = False

    @property
    def wants_stream(self) -> bool:
        return bool(self.request.get("stream"))

    @property
    def wants_usage(self) -> bool:
        options = self.request.get("stream_options")
        return isinstance(options, Mapping) and bool(options.get("include_usage"))

    def send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        handler = self._handler
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        self.started = True
        handler.wfile.write(payload)

    def start_stream(self) -> None:
        handler = self._handler
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
        handler.end_headers()
        self.started = True

    def send_event(self, data: Mapping[str, Any] | str) -> None:
        """Send one ``data: ...`` SSE event as its own HTTP chunk, so the client sees it at once."""
        text = data if isinstance(data, str) else json.dumps(data)
        self._write_chunk(f"data: {text}\n\n".encode())

    def end_stream(self) -> None:
        self.send_event("[DONE]")
        self._handler.wfile.write(b"0\r\n\r\n")

    def drop(self) -> None:
        """Close the connection abruptly: no terminating chunk, no ``[DONE]``."""
        self._handler.close_connection = True
        try:
            # FIN rather than RST, so chunks already sent still reach the client before the error.
            self._handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def pause(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def _write_chunk(self, data: bytes) -> None:
        self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


# --------------------------------------------------------------------------- chunk building

# (id, name, arguments-json-string)
_Call = tuple[str, str, str]


def _split(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _fragments(arguments: str, size: int) -> list[str]:
    pieces = _split(arguments, size)
    if len(pieces) == 1 and len(arguments) >= 2:
        # Clients must concatenate fragments; never let a short payload hide that.
        half = len(arguments) // 2
        pieces = [arguments[:half], arguments[half:]]
    return pieces or [""]


def _estimate_usage(request: Mapping[str, Any], content: str | None, calls: Sequence[_Call]) -> JSON:
    prompt_chars = len(json.dumps(request.get("messages") or []))
    completion_chars = len(content or "") + sum(len(name) + len(args) for _, name, args in calls)
    prompt, completion = max(1, prompt_chars // 4), max(1, completion_chars // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chunk(wire: Wire, delta: JSON, finish_reason: str | None = None) -> JSON:
    chunk: JSON = {
        "id": wire.completion_id,
        "object": "chat.completion.chunk",
        "created": wire.created,
        "model": wire.model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if wire.wants_usage:
        chunk["usage"] = None  # as OpenAI does: every chunk but the last carries "usage": null
    return chunk


def message_chunks(
    wire: Wire,
    content: str | None,
    calls: Sequence[_Call],
    finish_reason: str,
    chunk_size: int = 8,
    fragment_size: int = 10,
) -> list[JSON]:
    """The ``chat.completion.chunk`` objects for one assistant message, OpenAI-style (no usage chunk)."""
    chunks = [_chunk(wire, {"role": "assistant", "content": "" if content or not calls else None})]
    chunks += [_chunk(wire, {"content": piece}) for piece in _split(content or "", chunk_size)]
    for index, (call_id, name, arguments) in enumerate(calls):
        first, *rest = _fragments(arguments, fragment_size)
        chunks.append(
            _chunk(
                wire,
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": first},
                        }
                    ]
                },
            )
        )
        chunks += [_chunk(wire, {"tool_calls": [{"index": index, "function": {"arguments": f}}]}) for f in rest]
    chunks.append(_chunk(wire, {}, finish_reason))
    return chunks


def _completion(
    wire: Wire, content: str | None, calls: Sequence[_Call], finish_reason: str, usage: Mapping[str, int]
) -> JSON:
    message: JSON = {"role": "assistant", "content": content or None, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}} for cid, name, args in calls
        ]
    return {
        "id": wire.completion_id,
        "object": "chat.completion",
        "created": wire.created,
        "model": wire.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": dict(usage),
    }


def _serve_message(
    wire: Wire,
    *,
    content: str | None,
    calls: Sequence[_Call],
    finish_reason: str,
    usage: Mapping[str, int] | None,
    chunk_size: int,
    fragment_size: int = 10,
    delay: float = 0.0,
    stop_after: int | None = None,
) -> None:
    usage = usage or _estimate_usage(wire.request, content, calls)
    if not wire.wants_stream:
        wire.pause(delay)
        if stop_after is not None:
            wire.drop()
        else:
            wire.send_json(200, _completion(wire, content, calls, finish_reason, usage))
        return
    chunks = message_chunks(wire, content, calls, finish_reason, chunk_size, fragment_size)
    if wire.wants_usage:
        chunks.append({**_chunk(wire, {}), "choices": [], "usage": dict(usage)})
    wire.start_stream()
    for index, chunk in enumerate(chunks):
        if stop_after is not None and index >= stop_after:
            break
        wire.pause(delay)
        wire.send_event(chunk)
    if stop_after is not None:
        wire.drop()
    else:
        wire.end_stream()


# --------------------------------------------------------------------------- steps


@runtime_checkable
class Step(Protocol):
    """Anything that can answer one request on a :class:`Wire`."""

    def serve(self, wire: Wire) -> None: ...


_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


@dataclass(frozen=True)
class HttpErrorStep:
    """An HTTP error with an OpenAI-style body ``{"error": {"message", "type", "code"}}``.

    ``retry_after_ms`` sets the header the openai client honours (keeps retry
    tests fast); ``should_retry`` sets ``x-should-retry`` to force or forbid
    client retries.
    """

    status: int
    message: str
    type: str | None = None
    code: str | None = None
    retry_after_ms: float | None = None
    should_retry: bool | None = None
    delay: float = 0.0

    def serve(self, wire: Wire) -> None:
        default_type, default_code = _ERROR_KINDS.get(self.status, ("server_error", None))
        headers: dict[str, str] = {}
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = str(self.retry_after_ms)
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        body = {
            "error": {
                "message": self.message,
                "type": self.type or default_type,
                "param": None,
                "code": self.code if self.code is not None else default_code,
            }
        }
        wire.pause(self.delay)
        wire.send_json(self.status, body, headers)


@dataclass(frozen=True)
class ChunksStep:
    """Replays recorded ``chat.completion.chunk`` objects verbatim.

    For a non-streamed request they are folded into one completion; the usage
    chunk is left out when the request did not ask for it.
    """

    chunks: tuple[Mapping[str, Any], ...]
    delay: float = 0.0

    def serve(self, wire: Wire) -> None:
        if not wire.wants_stream:
            wire.pause(self.delay)
            wire.send_json(200, assemble_completion(self.chunks))
            return
        wire.start_stream()
        for chunk in self.chunks:
            if not chunk.get("choices") and chunk.get("usage") and not wire.wants_usage:
                continue
            wire.pause(self.delay)
            wire.send_event(chunk)
        wire.end_stream()


@dataclass(frozen=True)
class CompletionStep:
    """Replays a recorded ``chat.completion``; a streamed request gets it re-chunked."""

    completion: Mapping[str, Any]
    delay: float = 0.0

    def serve(self, wire: Wire) -> None:
        if not wire.wants_stream:
            wire.pause(self.delay)
            wire.send_json(200, self.completion)
            return
        choice = (self.completion.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        calls = [
            (c.get("id", ""), c["function"]["name"], c["function"].get("arguments", ""))
            for c in message.get("tool_calls") or []
        ]
        _serve_message(
            wire,
            content=message.get("content"),
            calls=calls,
            finish_reason=choice.get("finish_reason") or ("tool_calls" if calls else "stop"),
            usage=self.completion.get("usage"),
            chunk_size=16,
            delay=self.delay,
        )


def http_error(
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | None = None,
    retry_after_ms: float | None = None,
    should_retry: bool | None = None,
    delay: float = 0.0,
) -> HttpErrorStep:
    """Answer with HTTP ``status`` and an OpenAI-style error body (e.g. 429, 500)."""
    return HttpErrorStep(status, message, type, code, retry_after_ms, should_retry, delay)


# --------------------------------------------------------------------------- responders


class Responder(Protocol):
    """Chooses the step answering a request; ``number`` is the server's 1-based request count."""

    def step_for(self, request: JSON, number: int) -> Step: ...


class Replay:
    """Answers each request from a cassette recorded by :mod:`.recorder` (format: :mod:`.cassette`).

    Matching follows the rule in that module's docstring. A request with no
    recorded answer gets HTTP 404 (never retried) whose message names the
    cassette and shows the last user message, so one can tell which cell diverged.
    """

    def __init__(self, path: str | os.PathLike[str], *, extra_masks: Sequence[Mask] = ()) -> None:
        self.path = Path(path)
        self._matcher = CassetteMatcher(load_cassette(self.path, extra_masks), extra_masks)

    @property
    def unused(self) -> list[Exchange]:
        """Recorded exchanges never served so far."""
        return self._matcher.unused

    def miss_message(self, request: JSON, number: int) -> str:
        """One paragraph for a request the cassette has no answer to (the whole text reaches the
        person: never cut). A recorded question asked over other data says that; any other question
        gets the recorded ones and how to connect a model: a person without a key cannot re-record."""
        question = last_user_message(request)
        if question is not None and question in self._matcher.questions():
            return (
                f"The recorded answer to “{shorten(question, 120)}” was made on the demo data as seeded, and "
                "the data has changed since (a confirmed write, or your own), so replaying it would show numbers "
                "that are no longer true. Restore the demo data with `%nexus demo reset` (or `nexus-lab db "
                f"reset`) and ask again. {CONNECT_A_MODEL}"
            )
        return unrecorded_text(question, self._matcher.questions())

    def step_for(self, request: JSON, number: int) -> Step:
        found = self._matcher.find(request)
        if found is None:
            return http_error(
                404,
                self.miss_message(request, number),
                type="invalid_request_error",
                code=REPLAY_MISS,
                should_retry=False,
            )
        response = found.exchange.response
        if found.result_ids:  # the same turn in another conversation: its answer names this one's results
            completion = assemble_completion(response["chunks"]) if "chunks" in response else response["completion"]
            return CompletionStep(_renamed(completion, found.result_ids))
        if "chunks" in response:
            return ChunksStep(tuple(response["chunks"]))
        return CompletionStep(response["completion"])


_RESULT_REF = re.compile(r"\b(r\d+)\b")


def _renamed(completion: Mapping[str, Any], ids: Mapping[str, str]) -> JSON:
    """``completion`` with every result id of ``ids`` in its text and tool-call arguments renamed."""

    def rename(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        return _RESULT_REF.sub(lambda m: ids.get(m.group(1), m.group(1)), text)

    choices = []
    for choice in completion.get("choices") or []:
        message = dict(choice.get("message") or {})
        message["content"] = rename(message.get("content"))
        if message.get("tool_calls"):
            message["tool_calls"] = [
                {**call, "function": {**call["function"], "arguments": rename(call["function"].get("arguments"))}}
                for call in message["tool_calls"]
            ]
        choices.append({**choice, "message": message})
    return {**completion, "choices": choices}


# --------------------------------------------------------------------------- server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a server opening a few dozen model connections at once
    # (a burst of turns) had its SYNs dropped, and each retried 1, 3, 7, 15 ... s later.
    request_queue_size = 4096
    owner: LoopbackServer

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up between requests (closed keep-alive) is normal here.
        import sys

        if isinstance(sys.exc_info()[1], _CLIENT_GONE):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive + chunked streams, like the real service
    # Small SSE writes must leave at once; Nagle would hold each for the peer's delayed ACK.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # test output should show assertions, not access logs

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.owner._track(self.connection, add=False)

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        wire = Wire(self, {}, 0, self.server.owner.model)
        http_error(status, message, code=code, should_retry=False).serve(wire)

    def do_GET(self) -> None:
        owner = self.server.owner
        model = {"id": owner.model, "object": "model", "created": 0, "owned_by": "nexusleads-lab"}
        path = self._path()
        if path == "/v1/models":
            Wire(self, {}, 0, owner.model).send_json(200, {"object": "list", "data": [model]})
        elif path == f"/v1/models/{owner.model}":
            Wire(self, {}, 0, owner.model).send_json(200, model)
        else:
            self._error(404, f"model server: no route GET {path}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self._path() != "/v1/chat/completions":
            self._error(404, f"model server: no route POST {self._path()}")
            return
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("body is not a JSON object")
        except ValueError as exc:
            self._error(400, f"model server: request body is not valid JSON: {exc}")
            return
        owner = self.server.owner
        number = owner._receive(body)
        wire = Wire(self, body, number, owner.model)
        try:
            step = owner.responder.step_for(body, number)
            step.serve(wire)
        except _CLIENT_GONE:
            owner._note_aborted(number)
            self.close_connection = True
        except Exception as exc:
            owner._note_error(number, traceback.format_exc())
            if wire.started:
                wire.drop()
            else:
                try:
                    http_error(
                        500,
                        f"model server: responder failed on request {number}: {type(exc).__name__}: {exc}",
                        code="responder_error",
                        should_retry=False,
                    ).serve(wire)
                except _CLIENT_GONE:
                    self.close_connection = True


class LoopbackServer:
    """OpenAI-compatible server on 127.0.0.1 (random port), serving from a daemon thread.

    Starts on construction; use as a context manager or call :meth:`close`.
    Attributes: ``base_url`` (ends with ``/v1``, for ``openai.OpenAI``),
    ``requests`` (received chat-completion bodies, in order), ``aborted``
    (request numbers whose client went away mid-answer; best-effort, detected
    on the next write), ``errors`` (tracebacks of responder failures).
    """

    def __init__(self, responder: Responder, *, model: str = "loopback-model") -> None:
        self.responder = responder
        self.model = model
        self.requests: list[JSON] = []
        self.aborted: list[int] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self.connections_opened = 0  # TCP connections accepted: tells whether clients reuse them
        self._closed = False
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server bound to a str address
        self.base_url = f"http://{host}:{port}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="model-server", daemon=True
        )
        self._thread.start()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and cut open connections, so nothing outlives the test. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def _receive(self, body: JSON) -> int:
        with self._lock:
            self.requests.append(body)
            return len(self.requests)

    def _note_aborted(self, number: int) -> None:
        with self._lock:
            self.aborted.append(number)

    def _note_error(self, number: int, text: str) -> None:
        with self._lock:
            self.errors.append(f"request {number}:\n{text}")

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
                self.connections_opened += 1
            else:
                self._connections.discard(connection)


def start_replay_server(path: str | os.PathLike[str], *, extra_masks: Sequence[Mask] = ()) -> LoopbackServer:
    """Start a loopback server answering from the cassette at ``path`` (already serving; close it or use ``with``)."""
    return LoopbackServer(Replay(path, extra_masks=extra_masks))
