"""One streamed chat request over the ``openai`` client's own httpx client, its answer read as
JSON chunks, its connection given back for the next request.

The ``openai.OpenAI`` object stays the configuration (base URL, key, default headers, timeout,
``max_retries``) and its pieces do the judging: its headers (built once per client by the SDK's
``_build_request``), its send, its retry rules (``_should_retry``, ``_sleep_for_retry``: which
statuses and connection errors, backoff, ``retry-after``/``retry-after-ms``, ``x-should-retry``)
and its exceptions (``_make_status_error_from_response``, ``APITimeoutError``,
``APIConnectionError``, ``APIError`` for an ``error`` object in a 200 stream). What is done here
instead of ``client.post(..., stream=True)``: the SDK rebuilds the options, headers and URL of
every request (~0.5 ms of CPU a request) and decodes SSE through three layers of generators per
line; a turn sends three requests. The SSE lines are split here as the spec says (CR, LF or CRLF,
comments, multi-line ``data``) with ``bytes.splitlines``: ~20 µs for a bench answer's 11 events
against ~55 µs in the SDK's decoder (``httpx-sse``'s design), ``json.loads`` aside. A whole model
call went from ~2.2 to ~0.8 ms of CPU (``benchmarks/bench_model_call.py``).

The SDK stops reading at ``data: [DONE]`` and closes the response before the chunked body's
terminator is read, so the connection cannot be reused; here the few bytes left after
``[DONE]`` are read first. A stream closed earlier (a cancelled turn) is closed at once.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
from openai._httpx2 import request_exceptions, timeout_exceptions
from openai._models import FinalRequestOptions

_PATH = "/chat/completions"
_DRAIN_LIMIT = 64 * 1024
_RETRY_COUNT = "x-stainless-retry-count"


class _Prepared:
    """What every chat request of one client sends besides its body: the SDK's own URL, headers
    and timeout for ``POST /chat/completions``, built once. (The clients are ``make_client``'s:
    a fixed key, or none, so the headers are the same for every request.)"""

    def __init__(self, client: openai.OpenAI) -> None:
        self.options = FinalRequestOptions.construct(method="post", url=_PATH, content=b"")
        template = client._build_request(self.options)
        self.url = template.url
        self.extensions = template.extensions
        self.headers = httpx2.Headers([(k, v) for k, v in template.headers.raw if k.lower() != b"content-length"])

    def request(self, body: bytes, retries_taken: int) -> httpx2.Request:
        # The headers are whole (Host from the template, Content-Length here), so the request
        # takes the body as a stream rather than working them out again (~30 -> ~7 µs).
        headers = httpx2.Headers(self.headers)
        headers["Content-Length"] = str(len(body))
        if retries_taken:  # the SDK tells the server which try this is
            headers[_RETRY_COUNT] = str(retries_taken)
        request = httpx2.Request(
            "POST", self.url, headers=headers, stream=httpx2.ByteStream(body), extensions=self.extensions
        )
        request.read()  # its content, as a request made with ``content=`` has (the recorder reads it)
        return request


_prepared: weakref.WeakKeyDictionary[openai.OpenAI, _Prepared] = weakref.WeakKeyDictionary()
_prepared_lock = threading.Lock()


def _prepared_for(client: openai.OpenAI) -> _Prepared:
    found = _prepared.get(client)
    if found is None:
        with _prepared_lock:
            found = _prepared.setdefault(client, _Prepared(client))
    return found


def send_chat(client: openai.OpenAI, body: bytes) -> ChatStream:
    """POST ``body`` (JSON) to the client's chat completions with the SDK's headers, timeout and
    retries; the answer's stream once its status is a success, else the SDK's exception."""
    prepared = _prepared_for(client)
    options = prepared.options
    max_retries = client.max_retries

    def pause(retries_taken: int, response: httpx2.Response | None = None) -> None:  # the SDK's backoff
        client._sleep_for_retry(
            retries_taken=retries_taken, max_retries=max_retries, options=options, response=response
        )

    for retries_taken in range(max_retries + 1):
        remaining = max_retries - retries_taken
        request = prepared.request(body, retries_taken)
        try:
            response = client._send_request(request, stream=True)
        except timeout_exceptions() as err:
            if remaining > 0:
                pause(retries_taken)
                continue
            raise openai.APITimeoutError(request=request) from err
        except openai.OpenAIError:
            raise
        except request_exceptions() as err:
            if remaining > 0:
                pause(retries_taken)
                continue
            raise openai.APIConnectionError(request=request) from err
        if response.is_success:
            return ChatStream(response)
        if remaining > 0 and client._should_retry(response):
            response.close()
            pause(retries_taken, response)
            continue
        response.read()
        raise client._make_status_error_from_response(response) from None
    raise AssertionError("unreachable: the last try returns or raises")


class ChatStream:
    """The chunks of one streamed answer as plain JSON values, in order; ``close()`` (from any
    thread) stops the reading. Raises as the SDK's stream does: ``APIError`` for an ``error``
    object in a chunk, ``json.JSONDecodeError`` for a data event that is not JSON,
    ``APITimeoutError`` / ``APIConnectionError`` for a read that times out or breaks."""

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response

    def close(self) -> None:
        self.response.close()

    def __iter__(self) -> Iterator[Any]:
        response = self.response
        parts = response.iter_bytes()
        data: list[bytes] = []  # the event's data lines so far
        tail: list[bytes] = []  # pieces of a line whose end has not arrived
        skip_lf = False  # the last part ended with CR: a LF first in the next one ends no line
        try:
            for part in parts:
                if skip_lf:
                    skip_lf = False
                    if part[:1] == b"\n":
                        part = part[1:]
                if not part:
                    continue
                last = part[-1]
                ended = last == 10 or last == 13
                if not ended and b"\n" not in part and b"\r" not in part:
                    tail.append(part)
                    continue
                if tail:
                    tail.append(part)
                    part = b"".join(tail)
                    tail = []
                lines = part.splitlines()  # on CR, LF and CRLF only (bytes)
                if not ended:
                    tail.append(lines.pop())
                elif last == 13:
                    skip_lf = True
                for line in lines:
                    if line:
                        if line[:5] == b"data:":
                            data.append(line[6:] if line[5:6] == b" " else line[5:])
                        elif line == b"data":
                            data.append(b"")
                        continue  # a comment (":..."), or a field the chat stream does not use
                    if not data:
                        continue  # a blank line with no data is no event
                    value = data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
                    if value[:6] == b"[DONE]":
                        _drain(parts)
                        return
                    chunk = json.loads(value.decode())
                    if type(chunk) is dict and chunk.get("error"):
                        raise _stream_error(chunk["error"], response.request)
                    yield chunk
        except timeout_exceptions() as err:
            raise openai.APITimeoutError(request=response.request) from err
        except request_exceptions() as err:
            raise openai.APIConnectionError(request=response.request) from err
        finally:
            response.close()


def _drain(parts: Iterator[bytes]) -> None:
    """Read what follows ``[DONE]`` (the chunked body's end), so httpx keeps the connection."""
    drained = 0
    try:
        for part in parts:
            drained += len(part)
            if drained > _DRAIN_LIMIT:
                break
    except Exception:
        pass  # then the connection is dropped, as it would be without draining


def _stream_error(error: Any, request: httpx2.Request) -> openai.APIError:
    """The SDK's exception for an ``error`` object inside a 200 stream (OpenRouter sends them)."""
    message = error.get("message") if isinstance(error, dict) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    return openai.APIError(message=message, request=request, body=error)
