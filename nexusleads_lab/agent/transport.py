"""One streamed chat request, sent with the ``openai`` client's configuration and judged by its
rules, its answer read as JSON chunks, its connection given back for the next request.

The ``openai.OpenAI`` object stays the configuration (base URL, key, default headers, timeout,
``max_retries``) and its pieces do the judging: its headers (built once per client by the SDK's
``_build_request``), its retry rules (``_should_retry``, ``_sleep_for_retry``: which statuses and
connection errors, backoff, ``retry-after``/``retry-after-ms``, ``x-should-retry``) and its
exceptions (``_make_status_error_from_response``, ``APITimeoutError``, ``APIConnectionError``,
``APIError`` for an ``error`` object in a 200 stream). What is done here instead of
``client.post(..., stream=True)``: the SDK rebuilds the options, headers and URL of every request
(~0.5 ms of CPU a request) and decodes SSE through three layers of generators per line; a turn
sends three requests. The SSE lines are split here as the spec says (CR, LF or CRLF, comments,
multi-line ``data``) with ``bytes.splitlines``: ~20 µs for a bench answer's 11 events against
~55 µs in the SDK's decoder (``httpx-sse``'s design), the JSON aside (read by :mod:`..fastjson`:
orjson where it reads as ``json`` does).

Two ways to the wire. A client made by ``make_client`` has a :class:`LeanTransport`: its chat
requests go over the stdlib's ``http.client`` (:mod:`.http_pool`: httpcore's pool rules, the same
TLS context), with no ``httpx2.Request``/``Response`` unless an answer is not a success (then one is
built from its status, headers and body, so httpx decodes it and the SDK's own code judges it), is
content-coded (httpx decodes it), or is a redirect (httpx sends that try again and follows it). Any
other client (the recorder of ``NEXUS_RECORD``, a proxy mounted on it, a custom ``http_client``,
event hooks, auth) is sent through its httpx client, as before. Why not httpx: httpx → httpcore →
h11 spend ~600 µs of CPU on one bench request on loopback (~2,300 Python calls), ``http.client``
~200-250 µs (~560 calls); ``urllib3`` (its pool over ``http.client``) ~250-300 µs. Measured with
``benchmarks/bench_model_call.py --ref main --ref worktree`` (median CPU of a whole model call, 900
requests each, interleaved): 761 → 429 and 649 → 342 µs in two runs, ~1.8-1.9x (it was ~2.2 ms
through ``client.post``); the httpx way (``--http httpx``) costs what it did, within a few per cent.
In a server turn (``profile_turn.py --phases``, 60 turns, two runs) ``complete`` went from 5.8 to
3.3 and from 4.9 to 2.7 ms of CPU for its three requests. One thing the lean way does that httpcore
does not: a request whose reused keep-alive connection the server closed just then (no answer at
all) is sent once more, on a new connection, instead of failing (both drop a connection the server
has closed before it is reused).

The SDK stops reading at ``data: [DONE]`` and closes the response before the chunked body's
terminator is read, so the connection cannot be reused; here the few bytes left after
``[DONE]`` are read first. A stream closed earlier (a cancelled turn) is closed at once.
"""

from __future__ import annotations

import functools
import http.client
import threading
import weakref
from collections.abc import Callable, Generator, Iterator
from typing import Any, NamedTuple

import httpx2
import openai
from httpx2._config import DEFAULT_LIMITS
from openai._httpx2 import request_exceptions, timeout_exceptions
from openai._models import FinalRequestOptions

from .. import fastjson
from .http_pool import ConnectionPool, Exchange, Origin, Timeouts, request_head

_PATH = "/chat/completions"
_DRAIN_LIMIT = 64 * 1024
_RETRY_COUNT = "x-stainless-retry-count"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})  # what httpx follows (with a Location)
_READ_ERRORS = (OSError, http.client.HTTPException, ValueError)  # ValueError: a file closed under a read


class LeanTransport(httpx2.HTTPTransport):
    """httpx's own transport, unchanged for every request the SDK sends itself, that also keeps a
    :class:`~.http_pool.ConnectionPool` for the chat requests :func:`send_chat` sends, with the
    same limits and TLS context (one origin: the client's base URL). Closing it closes both."""

    def __init__(self, limits: httpx2.Limits = DEFAULT_LIMITS) -> None:
        self._ssl_context = httpx2.create_ssl_context()  # what HTTPTransport() would make
        self._ssl_context.set_alpn_protocols(["http/1.1"])  # as httpcore sets it on every connect
        super().__init__(verify=self._ssl_context, limits=limits)
        self._limits = limits
        self._chat_pool: ConnectionPool | None = None
        self._chat_lock = threading.Lock()
        self._closed = False

    def chat_pool(self, url: httpx2.URL) -> ConnectionPool | None:
        """The pool for ``url``'s origin; None for a second origin, or once closed."""
        if url.scheme not in ("http", "https"):
            return None
        port = url.port or (443 if url.scheme == "https" else 80)
        origin = Origin(url.scheme, url.raw_host.decode("ascii"), port)
        with self._chat_lock:
            if self._closed:
                return None
            if self._chat_pool is None:
                limits = self._limits
                self._chat_pool = ConnectionPool(
                    origin,
                    ssl_context=self._ssl_context,
                    max_connections=limits.max_connections,
                    max_keepalive=limits.max_keepalive_connections,
                    keepalive_expiry=limits.keepalive_expiry,
                )
            return self._chat_pool if self._chat_pool.origin == origin else None

    def close(self) -> None:
        with self._chat_lock:
            self._closed = True
            pool = self._chat_pool
        super().close()
        if pool is not None:
            pool.close()


class _Route(NamedTuple):
    """How a lean chat request goes: its pool, the head of its request (the SDK's URL and headers
    bar the two that vary: the try count and the body's length) and its timeouts."""

    pool: ConnectionPool
    head: bytes
    retry_key: bytes | None  # the header counting tries, as the SDK spells it (None: not sent)
    timeouts: Timeouts
    follow_redirects: bool

    def request_head(self, body: bytes, retries_taken: int) -> bytes:
        retry_key = self.retry_key
        if retry_key is None and retries_taken:  # as the SDK adds it on a retry
            retry_key = _RETRY_COUNT.encode()
        tries = b"%s: %d\r\n" % (retry_key, retries_taken) if retry_key is not None else b""
        return b"%s%sContent-Length: %d\r\n\r\n" % (self.head, tries, len(body))


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
        self.route = _route(client, template.url, self.headers, template.extensions)

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


def _route(client: openai.OpenAI, url: httpx2.URL, headers: httpx2.Headers, extensions: dict) -> _Route | None:
    """The lean way for this client's chat requests, when nothing in its httpx client asks for
    more than a plain HTTP/1.1 exchange (else None: they go through httpx)."""
    http = client._client
    transport = http._transport_for_url(url)  # a proxy from the environment is mounted: not ours
    if not isinstance(transport, LeanTransport) or http.auth is not None or any(http.event_hooks.values()):
        return None
    pool = transport.chat_pool(url)
    if pool is None:
        return None
    fields = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.raw]
    retry_key = next((k.encode("latin-1") for k, _ in fields if k.lower() == _RETRY_COUNT), None)
    try:
        head = request_head("POST", url.raw_path.decode("ascii"), [f for f in fields if f[0].lower() != _RETRY_COUNT])
    except ValueError:  # a header httpx may judge (and refuse) itself
        return None
    timeout = extensions.get("timeout") or {}
    timeouts = Timeouts(timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
    return _Route(pool, head, retry_key, timeouts, http.follow_redirects)


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

    timeouts: tuple[type[BaseException], ...] = (*timeout_exceptions(), TimeoutError)
    failures: tuple[type[BaseException], ...] = (*request_exceptions(), OSError, http.client.HTTPException)
    for retries_taken in range(max_retries + 1):
        remaining = max_retries - retries_taken
        try:
            sent = _send_once(client, prepared, body, retries_taken)
        except timeouts as err:
            if remaining > 0:
                pause(retries_taken)
                continue
            raise openai.APITimeoutError(request=prepared.request(body, retries_taken)) from err
        except openai.OpenAIError:
            raise
        except failures as err:
            if remaining > 0:
                pause(retries_taken)
                continue
            raise openai.APIConnectionError(request=prepared.request(body, retries_taken)) from err
        if isinstance(sent, ChatStream):
            return sent
        response = sent
        if response.is_success:
            return ChatStream(response)
        if remaining > 0 and client._should_retry(response):
            response.close()
            pause(retries_taken, response)
            continue
        response.read()
        raise client._make_status_error_from_response(response) from None
    raise AssertionError("unreachable: the last try returns or raises")


def _send_once(
    client: openai.OpenAI, prepared: _Prepared, body: bytes, retries_taken: int
) -> ChatStream | httpx2.Response:
    """One try: a lean stream when it succeeded on the lean way, else the response to judge."""
    route = prepared.route
    if route is None:
        return client._send_request(prepared.request(body, retries_taken), stream=True)
    exchange = route.pool.request(route.request_head(body, retries_taken), body, route.timeouts)
    request = functools.partial(prepared.request, body, retries_taken)
    status = exchange.status
    if 200 <= status < 300 and exchange.header("content-encoding") is None:
        return _LeanChatStream(exchange, request)
    if status in _REDIRECTS and route.follow_redirects:
        exchange.abort()
        return client._send_request(request(), stream=True)  # httpx follows it, as for the SDK
    # Judged (or decoded) by httpx and the SDK themselves, as if httpx had read it.
    sent = request()
    return httpx2.Response(status, headers=exchange.header_items(), stream=_ExchangeBody(exchange, sent), request=sent)


class ChatStream:
    """The chunks of one streamed answer as plain JSON values, in order; ``close()`` (from any
    thread) stops the reading. Raises as the SDK's stream does: ``APIError`` for an ``error``
    object in a chunk, ``json.JSONDecodeError`` for a data event that is not JSON,
    ``APITimeoutError`` / ``APIConnectionError`` for a read that times out or breaks."""

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response

    def close(self) -> None:
        self._response.close()

    def __iter__(self) -> Iterator[Any]:
        response = self._response
        parts = response.iter_bytes()
        try:
            yield from _chunks(parts, lambda: response.request)
            _drain(parts)
        except timeout_exceptions() as err:
            raise openai.APITimeoutError(request=response.request) from err
        except request_exceptions() as err:
            raise openai.APIConnectionError(request=response.request) from err
        finally:
            response.close()


class _LeanChatStream(ChatStream):
    """The same, read from a lean :class:`~.http_pool.Exchange` (a success with no content coding)."""

    def __init__(self, exchange: Exchange, request: Callable[[], httpx2.Request]) -> None:
        self._exchange = exchange
        self._request = request

    def close(self) -> None:
        self._exchange.abort()

    def __iter__(self) -> Iterator[Any]:
        parts = self._parts()
        try:
            yield from _chunks(parts, self._request)
            _drain(parts)
        finally:
            parts.close()

    def _parts(self) -> Generator[bytes, None, None]:
        return _body(
            self._exchange,
            timed_out=lambda err: openai.APITimeoutError(request=self._request()),
            broken=lambda err: openai.APIConnectionError(request=self._request()),
        )


class _ExchangeBody(httpx2.SyncByteStream):
    """A lean exchange's body as an httpx response stream (httpx decodes it); read errors are
    httpx's, as its own transport would raise them."""

    def __init__(self, exchange: Exchange, request: httpx2.Request) -> None:
        self._exchange = exchange
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        return _body(
            self._exchange,
            timed_out=lambda err: httpx2.ReadTimeout(str(err), request=self._request),
            broken=lambda err: httpx2.ReadError(str(err), request=self._request),
        )

    def close(self) -> None:
        self._exchange.abort()  # nothing once the body was read (released)


def _body(
    exchange: Exchange, *, timed_out: Callable[[Exception], Exception], broken: Callable[[Exception], Exception]
) -> Generator[bytes, None, None]:
    """A lean exchange's body as it comes; a read that times out or breaks raises what
    ``timed_out`` or ``broken`` makes of it. The connection is released at the end, or when the
    reader stops early."""
    try:
        exchange.start()
        read1 = exchange.read1
        while part := read1():
            yield part
    except TimeoutError as err:
        raise timed_out(err) from err
    except _READ_ERRORS as err:
        raise broken(err) from err
    finally:
        exchange.release()


def _chunks(parts: Iterator[bytes], request: Callable[[], httpx2.Request]) -> Iterator[Any]:
    """The JSON values of the data events in ``parts``, up to ``[DONE]`` (or the end)."""
    data: list[bytes] = []  # the event's data lines so far
    tail: list[bytes] = []  # pieces of a line whose end has not arrived
    skip_lf = False  # the last part ended with CR: a LF first in the next one ends no line
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
                return
            chunk = fastjson.loads(value.decode())  # json's meaning (big integers, errors), orjson's speed
            if type(chunk) is dict and chunk.get("error"):
                raise _stream_error(chunk["error"], request())
            yield chunk


def _drain(parts: Iterator[bytes]) -> None:
    """Read what follows ``[DONE]`` (the chunked body's end), so the connection can be kept."""
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
