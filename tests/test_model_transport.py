"""One chat request as `agent.transport` sends and reads it, side by side with the plain `openai`
SDK against the same loopback server: the same request on the wire, the same retries, the same
exceptions and messages, the same chunks out of the same SSE bytes however they are split."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx2
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._streaming import SSEDecoder

from nexusleads_lab.agent.model_call import open_stream, request_body
from nexusleads_lab.agent.transport import ChatStream
from nexusleads_lab.testing.modelserver import ModelServer, RawReply, Script, http_error, text

MESSAGES = [{"role": "user", "content": "Leads by tier, née ünïcode?"}]


def sdk_stream(client: openai.OpenAI):
    """The same request through the SDK's own request loop and stream (what the product used to call)."""
    return client.post(
        "/chat/completions",
        cast_to=object,
        body=request_body("m", MESSAGES),
        stream=True,
        stream_cls=openai.Stream[object],
    )


def ours(client: openai.OpenAI):
    return open_stream(client, "m", MESSAGES)


def outcome(send, client: openai.OpenAI):
    """The chunks a stream gave, or the exception it raised: (class, message, status, body)."""
    try:
        # each answer has its own id and time
        return ("chunks", [{k: v for k, v in c.items() if k not in ("id", "created")} for c in send(client)])
    except openai.APIError as exc:
        return (type(exc), str(exc), getattr(exc, "status_code", None), exc.body)
    except json.JSONDecodeError as exc:
        return (type(exc), str(exc))


class SeeHeaders:
    """Records the request headers the server received, then answers with ``then``."""

    def __init__(self, seen: list[dict[str, str]], then) -> None:
        self.seen, self.then = seen, then

    def serve(self, wire) -> None:
        self.seen.append({k.lower(): v for k, v in wire._handler.headers.items()})
        self.then.serve(wire)


def test_the_server_sees_the_request_the_sdk_sends_and_the_answer_reads_the_same():
    seen: list[dict[str, str]] = []
    with ModelServer(Script([SeeHeaders(seen, text("Same answer.")) for _ in range(2)])) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-key", max_retries=0)
        assert outcome(sdk_stream, client) == outcome(ours, client)
        client.close()
    assert seen[0] == seen[1] and seen[1]["authorization"] == "Bearer sk-test-key"
    assert seen[1]["user-agent"].startswith("OpenAI/Python") and seen[1]["x-stainless-retry-count"] == "0"
    assert server.requests[0] == server.requests[1]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429, 500, 503])
def test_an_http_error_is_the_sdks_own_exception_with_its_message(status):
    step = http_error(status, f"refused with {status}", code="nope", should_retry=False)
    with ModelServer(Script([step, step])) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=2)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[2] == status and f"refused with {status}" in mine[1]
    assert len(server.requests) == 2, "x-should-retry: false is obeyed"


def test_an_error_body_that_is_not_json_reads_as_the_sdk_reads_it():
    class Plain:
        def serve(self, wire) -> None:
            handler = wire._handler
            handler.send_response(502)
            handler.send_header("Content-Type", "text/html")
            handler.send_header("Content-Length", "15")
            handler.send_header("x-should-retry", "false")
            handler.end_headers()
            handler.wfile.write(b"<h1>gateway</h1>"[:15])

    with ModelServer(Script([Plain(), Plain()])) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] is openai.InternalServerError


@pytest.fixture()
def sleeps(monkeypatch):
    """The retry waits the client asked for on the test's thread (the SDK's ``time.sleep`` is the
    time module's: other threads of the test process sleep through it too), slept for at most 10 ms."""
    waits: list[float] = []
    real = time.sleep
    me = threading.get_ident()

    def sleep(seconds: float) -> None:
        if threading.get_ident() != me:
            real(seconds)
            return
        waits.append(seconds)
        real(min(seconds, 0.01))

    monkeypatch.setattr(openai._base_client.time, "sleep", sleep)
    return waits


def test_429_and_5xx_are_retried_after_the_wait_the_server_asks_then_the_answer_streams(sleeps):
    runs = {}
    for name, send in (("sdk", sdk_stream), ("ours", ours)):
        seen: list[dict[str, str]] = []
        steps = [
            SeeHeaders(seen, http_error(429, "slow down", retry_after_ms=40)),
            SeeHeaders(seen, RawReply(status=503, headers={"Retry-After": "2"}, body={"error": {"message": "busy"}})),
            SeeHeaders(seen, text("Third time.")),
        ]
        sleeps.clear()
        with ModelServer(Script(steps)) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=2)
            runs[name] = (outcome(send, client), list(sleeps), [h["x-stainless-retry-count"] for h in seen])
            client.close()
    assert runs["ours"] == runs["sdk"]
    chunks, waits, tries = runs["ours"]
    assert chunks[0] == "chunks" and waits == [0.04, 2.0] and tries == ["0", "1", "2"]


def test_the_last_retry_failing_raises_the_last_status_and_waits_back_off_in_between(sleeps):
    step = http_error(500, "still broken")
    with ModelServer(Script([step] * 6)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=2)
        theirs = outcome(sdk_stream, client)
        their_waits = list(sleeps)
        sleeps.clear()
        mine = outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] is openai.InternalServerError and len(server.requests) == 6
    assert len(sleeps) == len(their_waits) == 2 and all(0 < w <= 8 for w in sleeps)


def test_nothing_listening_is_a_connection_error_after_the_retries(sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=1)
    theirs = outcome(sdk_stream, client)
    mine = outcome(ours, client)
    client.close()
    assert mine == theirs and mine[0] is openai.APIConnectionError and len(sleeps) == 2


@pytest.mark.parametrize("where", ["before the headers", "mid-stream"])
def test_a_read_timeout_is_the_sdks_timeout_error(where):
    slow = http_error(500, "late", delay=1.0) if where == "before the headers" else text("a b c d e f", delay=0.5)
    with ModelServer(Script([slow, slow])) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=0.2)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] is openai.APITimeoutError


@pytest.mark.parametrize(
    "event",
    [
        'data: {"error": {"message": "Provider disconnected", "code": 502}}',
        'data: {"error": "a bare string"}',
        'data: {"error": {"code": 500}}',
        "data: {not json",
        "data: [DONE] and more",
    ],
)
def test_an_error_or_garbage_inside_a_200_stream_is_what_the_sdk_raises(event):
    head = 'data: {"choices": [{"index": 0, "delta": {"content": "Hal"}}]}'
    reply = RawReply((head, event, "data: [DONE]"))
    with ModelServer(Script([reply, reply])) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs


def test_three_answers_in_a_row_share_one_connection():
    with ModelServer(Script([text("one"), text("two"), text("three", chunk_size=1)])) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        answers = [
            "".join(c["choices"][0]["delta"].get("content") or "" for c in ours(client) if c["choices"])
            for _ in range(3)
        ]
        client.close()
    assert answers == ["one", "two", "three"] and server.connections_opened == 1


def test_a_stream_closed_from_another_thread_stops_at_once_and_is_not_drained():
    import threading

    with ModelServer(Script([text("word " * 200, chunk_size=5, delay=0.05), text("next")])) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        stream = ours(client)
        read = []
        threading.Timer(0.3, stream.close).start()
        with pytest.raises((openai.APIConnectionError, httpx2.StreamClosed)):
            for chunk in stream:
                read.append(chunk)
        assert 0 < len(read) < 50, "stopped long before the answer's 200 chunks"
        assert outcome(ours, client)[0] == "chunks", "the next request is answered"
        client.close()


# -- SSE framing: the same chunks as the SDK's decoder, however the bytes are split -------------


def sdk_chunks(parts: list[bytes]) -> list:
    out = []
    for sse in SSEDecoder().iter_bytes(iter(parts)):
        if sse.data.startswith("[DONE]"):
            break
        out.append(sse.json())
    return out


def our_chunks(parts: list[bytes]) -> list:
    request = httpx2.Request("POST", "http://model.test/v1/chat/completions")
    return list(ChatStream(httpx2.Response(200, content=iter(parts), request=request)))


EVENTS = [
    b'data: {"n": 1}',
    b'data:{"n": 2}',  # no space after the colon
    b": keep-alive",  # a comment, not an event
    b'event: message\ndata: {"n": 3}',  # a field the chat stream does not use
    b'data: {"n":\ndata:  4}',  # two data lines are one value, joined by a newline
    b'data: {"text": "caf\xc3\xa9 \xe2\x82\xac"}',  # UTF-8 split wherever the bytes split
    b"data: [DONE]",
    b'data: {"n": "after done"}',
]


@settings(max_examples=300, deadline=None)
@given(
    ending=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=1, max_value=200), max_size=12),
)
def test_any_line_ending_and_any_split_of_the_bytes_gives_the_sdks_chunks(ending, cuts):
    raw = b"".join(line + ending for event in EVENTS for line in [*event.split(b"\n"), b""])
    points = sorted({c % len(raw) for c in cuts} - {0})
    parts = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)])]
    assert our_chunks(parts) == sdk_chunks(parts) == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}, {"text": "café €"}]


def test_a_crlf_split_between_two_parts_ends_one_line_not_two():
    parts = [b'data: {"n":\r', b"\ndata: 1}\r\n\r\n", b"data: [DONE]\r\n\r\n"]
    assert our_chunks(parts) == sdk_chunks(parts) == [{"n": 1}]


def test_an_event_cut_off_by_the_end_of_the_stream_is_not_read():
    parts = [b'data: {"n": 1}\n\n', b'data: {"n": 2}']
    assert our_chunks(parts) == sdk_chunks(parts) == [{"n": 1}]
