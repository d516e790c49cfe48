"""Recording (``NEXUS_RECORD``): an httpx transport that tees every complete 2xx chat exchange
into a cassette, with secrets redacted (format: :mod:`.cassette`)."""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import openai

try:
    import httpx2
except ImportError:  # pragma: no cover - openai < 3 is built on httpx, which has the same API
    import httpx as httpx2  # type: ignore[no-redef]

from .cassette import _REDACTED, _SECRET_KEYS, JSON, Mask, normalise_request


def _scrub_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: (_REDACTED if str(k).lower() in _SECRET_KEYS else _scrub_keys(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_keys(v) for v in value]
    return value


class Recorder:
    """Appends exchanges to a cassette file, one JSON line each.

    Secrets never reach the file: only the normalised request body is written
    (no headers), any mapping key that names a credential is redacted, and every
    string passed as ``secrets`` (e.g. the bearer token seen by the transport)
    is replaced by ``<redacted>`` wherever it appears in the line.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        secrets: Sequence[str] = (),
        extra_masks: Sequence[Mask] = (),
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if overwrite:
            self.path.write_text("", encoding="utf-8")
        self._secrets = tuple(secrets)
        self._extra_masks = tuple(extra_masks)
        self._lock = threading.Lock()

    def record_stream(
        self, request: Mapping[str, Any], chunks: Sequence[Mapping[str, Any]], *, secrets: Sequence[str] = ()
    ) -> None:
        """Record a streamed exchange: the request body and the parsed SSE chunk objects."""
        self._write(request, {"chunks": list(chunks)}, secrets)

    def record_completion(
        self, request: Mapping[str, Any], completion: Mapping[str, Any], *, secrets: Sequence[str] = ()
    ) -> None:
        """Record a non-streamed exchange: the request body and the ``chat.completion`` object."""
        self._write(request, {"completion": dict(completion)}, secrets)

    def _write(self, request: Mapping[str, Any], response: JSON, secrets: Sequence[str]) -> None:
        entry: JSON = {
            "model": request.get("model"),
            "request": normalise_request(_scrub_keys(request), self._extra_masks),
            "response": _scrub_keys(response),
        }
        line = json.dumps(entry, ensure_ascii=False)
        for secret in {*self._secrets, *secrets}:
            # Short strings would redact innocent text; real keys are long.
            if secret and len(secret) >= 8:
                line = line.replace(secret, _REDACTED).replace(json.dumps(secret)[1:-1], _REDACTED)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            # Opened per write so an interrupted kernel still leaves every finished exchange on disk.
            handle.write(line + "\n")


def parse_sse(raw: bytes) -> tuple[list[JSON], bool]:
    """Parse an SSE body into its JSON ``data`` objects; the flag says whether ``[DONE]`` was seen."""
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    chunks: list[JSON] = []
    for block in text.split("\n\n"):
        data_lines = [line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")]
        if not data_lines:
            continue
        data = "\n".join(data_lines)
        if data.strip() == "[DONE]":
            return chunks, True
        try:
            chunks.append(json.loads(data))
        except ValueError:
            continue
    return chunks, False


def _secrets_from(headers: httpx2.Headers) -> list[str]:
    found = []
    for name in ("authorization", "api-key", "x-api-key"):
        value = headers.get(name)
        if value:
            found.append(value)
            if value.lower().startswith("bearer "):
                found.append(value[7:].strip())
    return found


def _chat_request_body(request: httpx2.Request) -> JSON | None:
    """The JSON body if this is a chat-completions call worth recording, else ``None``."""
    if request.method != "POST" or not request.url.path.rstrip("/").endswith("/chat/completions"):
        return None
    try:
        body = json.loads(request.content)
    except (ValueError, httpx2.RequestNotRead):
        return None
    return body if isinstance(body, dict) else None


class _Tee:
    """Collects response bytes as the caller consumes them; records once the exchange is complete."""

    def __init__(self, recorder: Recorder, body: JSON, headers: httpx2.Headers, secrets: list[str]) -> None:
        self._recorder = recorder
        self._body = body
        self._headers = headers
        self._secrets = secrets
        self._parts: list[bytes] = []
        self._finished = False

    def feed(self, data: bytes) -> None:
        self._parts.append(data)

    def finish(self, exhausted: bool) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            raw = b"".join(self._parts)
            encoding = self._headers.get("content-encoding", "identity").lower()
            if encoding not in ("", "identity"):
                # The transport sees bytes before the client decodes them; reuse httpx2's decoders.
                raw = httpx2.Response(200, headers={"content-encoding": encoding}, content=raw).content
            if "text/event-stream" in self._headers.get("content-type", ""):
                chunks, complete = parse_sse(raw)
                if complete:
                    self._recorder.record_stream(self._body, chunks, secrets=self._secrets)
            elif exhausted:
                completion = json.loads(raw)
                if isinstance(completion, dict):
                    self._recorder.record_completion(self._body, completion, secrets=self._secrets)
        except Exception as exc:
            warnings.warn(f"cassette: could not record exchange to {self._recorder.path}: {exc!r}", stacklevel=2)


class _SyncTeeStream(httpx2.SyncByteStream):
    def __init__(self, inner: Any, tee: _Tee) -> None:
        self._inner = inner
        self._tee = tee

    def __iter__(self) -> Iterator[bytes]:
        for part in self._inner:
            self._tee.feed(part)
            yield part
        self._tee.finish(exhausted=True)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            # The openai client stops reading at [DONE] and closes: that is a complete stream too.
            self._tee.finish(exhausted=False)


class _AsyncTeeStream(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, tee: _Tee) -> None:
        self._inner = inner
        self._tee = tee

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._inner:
            self._tee.feed(part)
            yield part
        self._tee.finish(exhausted=True)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._tee.finish(exhausted=False)


class RecordingTransport(httpx2.BaseTransport):
    """httpx2 transport that forwards to ``inner`` and records chat-completion exchanges.

    Streaming is preserved: bytes pass through untouched as the client reads
    them, and the exchange is written only when the stream has completed.
    """

    def __init__(self, recorder: Recorder, inner: httpx2.BaseTransport | None = None) -> None:
        self.recorder = recorder
        self._inner = inner or httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = _chat_request_body(request)
        response = self._inner.handle_request(request)
        if body is not None and 200 <= response.status_code < 300:
            tee = _Tee(self.recorder, body, response.headers, _secrets_from(request.headers))
            response.stream = _SyncTeeStream(response.stream, tee)
        return response

    def close(self) -> None:
        self._inner.close()


class AsyncRecordingTransport(httpx2.AsyncBaseTransport):
    """Async twin of :class:`RecordingTransport`, for ``openai.AsyncOpenAI``."""

    def __init__(self, recorder: Recorder, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self.recorder = recorder
        self._inner = inner or httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = _chat_request_body(request)
        response = await self._inner.handle_async_request(request)
        if body is not None and 200 <= response.status_code < 300:
            tee = _Tee(self.recorder, body, response.headers, _secrets_from(request.headers))
            response.stream = _AsyncTeeStream(response.stream, tee)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def recording_http_client(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    transport: httpx2.BaseTransport | None = None,
    **client_kwargs: Any,
) -> httpx2.Client:
    """An ``http_client`` for ``openai.OpenAI`` that records every chat completion to ``path``.

    Built on ``openai.DefaultHttpxClient`` so the SDK's own timeout/limit
    defaults still apply (a bare client would silently get httpx2's 5 s timeout).
    """
    recorder = Recorder(path, overwrite=overwrite)
    return openai.DefaultHttpxClient(transport=RecordingTransport(recorder, transport), **client_kwargs)


def recording_async_http_client(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    transport: httpx2.AsyncBaseTransport | None = None,
    **client_kwargs: Any,
) -> httpx2.AsyncClient:
    """Async twin of :func:`recording_http_client`, for ``openai.AsyncOpenAI``."""
    recorder = Recorder(path, overwrite=overwrite)
    return openai.DefaultAsyncHttpxClient(transport=AsyncRecordingTransport(recorder, transport), **client_kwargs)
