"""An httpx transport for the openai client whose streamed answers give their connection back.

The SDK stops reading a stream at ``data: [DONE]`` and closes the response, before the
chunked body's terminator is read, so the connection cannot be reused: every model step of a
turn would open a new TCP (and, against a real service, TLS) connection. Here a stream that
has passed ``[DONE]`` reads the few bytes left before closing. A stream closed earlier (a
cancelled turn) is closed at once, never drained.
"""

from __future__ import annotations

from collections.abc import Iterator

try:  # the openai client's own httpx fork, where it uses one
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

_DONE = b"data: [DONE]"
_DRAIN_LIMIT = 64 * 1024


class DrainAfterDone(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream) -> None:
        self._inner = inner
        self._parts = iter(inner)
        self._done = False
        self._tail = b""

    def __iter__(self) -> Iterator[bytes]:
        for part in self._parts:
            if not self._done:
                self._done = _DONE in self._tail + part
                self._tail = part[-len(_DONE) :]
            yield part

    def close(self) -> None:
        try:
            if self._done:
                drained = 0
                for part in self._parts:
                    drained += len(part)
                    if drained > _DRAIN_LIMIT:
                        break
        except Exception:
            pass  # then the connection is dropped, as it would be without draining
        finally:
            self._inner.close()


class KeepAliveTransport(httpx.HTTPTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        event_stream = response.headers.get("content-type", "").startswith("text/event-stream")
        if event_stream and isinstance(response.stream, httpx.SyncByteStream):  # always: HTTPTransport's own stream
            response.stream = DrainAfterDone(response.stream)
        return response
