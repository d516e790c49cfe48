"""Test support, not part of the product: the scripted model server that tests, benchmarks,
``scripts/record_notebooks.py`` and the browser harness talk to (nothing under
``nexusleads_lab`` imports it; ``tests/test_layout.py`` checks).

The agent talks to its model through the real ``openai`` client, and the failures worth
testing (tool-call arguments split across chunks, 429/500, streams that break off, slow
streams that get cancelled) live in the HTTP/SSE layer. Mocking the client would skip exactly
that layer, so the product's loopback server (:mod:`nexusleads_lab.replay.server`) serves the
wire protocol on 127.0.0.1 and the client is pointed at it::

    with ModelServer(Script([tool_calls([("psql", {"sql": "select 1"})]), text("One.")])) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="test")
        ...
        assert srv.requests[1]["messages"][-1]["role"] == "tool"

:class:`Script` plays steps in order, one per request. Steps: :func:`text`, :func:`tool_calls`,
:func:`http_error`, :func:`disconnect_after`, :class:`RawReply` (recorded SSE events sent
verbatim: a provider's own chunks, comments and all), plus :class:`ChunksStep` /
:class:`CompletionStep`; a script entry may also be a callable ``(request_json) -> step`` to
answer based on the request.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..db.errors import shorten
from ..replay.cassette import last_user_message
from ..replay.server import (
    JSON,
    ChunksStep,
    CompletionStep,
    HttpErrorStep,
    LoopbackServer,
    Replay,
    Responder,
    Step,
    Wire,
    _Handler,
    _serve_message,
    http_error,
    message_chunks,
)


def _snippet(text: str | None, limit: int = 120) -> str:
    if text is None:
        return "<no user message>"
    return repr(shorten(text, limit))


StepLike = Step | Callable[[JSON], "StepLike"]


@dataclass(frozen=True)
class TextStep:
    """A plain assistant answer, streamed in ``chunk_size``-character deltas; finish_reason "stop"."""

    content: str
    chunk_size: int = 8
    usage: Mapping[str, int] | None = None
    delay: float = 0.0

    def serve(self, wire: Wire) -> None:
        _serve_message(
            wire,
            content=self.content,
            calls=(),
            finish_reason="stop",
            usage=self.usage,
            chunk_size=self.chunk_size,
            delay=self.delay,
        )


@dataclass(frozen=True)
class ToolCallsStep:
    """One assistant turn with one or several (parallel) tool calls; finish_reason "tool_calls".

    Each call's ``arguments`` string is streamed in ``fragment_size`` pieces:
    the first chunk of a call carries index, id, type, name and the first
    fragment; later chunks carry only the index and further fragments.
    """

    calls: tuple[tuple[str, str], ...]
    content: str | None = None
    chunk_size: int = 8
    fragment_size: int = 10
    usage: Mapping[str, int] | None = None
    delay: float = 0.0
    ids: tuple[str, ...] | None = None

    def serve(self, wire: Wire) -> None:
        # Fresh ids per answer, as the real service does, unless the test pins them.
        ids = self.ids or tuple(f"call_{uuid.uuid4().hex[:24]}" for _ in self.calls)
        _serve_message(
            wire,
            content=self.content,
            calls=[(cid, name, args) for cid, (name, args) in zip(ids, self.calls)],
            finish_reason="tool_calls",
            usage=self.usage,
            chunk_size=self.chunk_size,
            fragment_size=self.fragment_size,
            delay=self.delay,
        )


@dataclass(frozen=True)
class DisconnectStep:
    """Start answering, then drop the connection after ``n_chunks`` SSE events (no ``[DONE]``).

    A non-streamed request is dropped before any response is sent.
    """

    n_chunks: int
    content: str = "This answer is cut off before it ends, as if the connection died."
    chunk_size: int = 8
    delay: float = 0.0

    def serve(self, wire: Wire) -> None:
        _serve_message(
            wire,
            content=self.content,
            calls=(),
            finish_reason="stop",
            usage=None,
            chunk_size=self.chunk_size,
            delay=self.delay,
            stop_after=max(0, self.n_chunks),
        )


@dataclass(frozen=True)
class RawReply:
    """Recorded SSE events sent exactly as given, one event per HTTP chunk: ``data: {...}`` lines as a
    provider wrote them (key order, spacing, extra fields), ``: keep-alive`` comments, and
    ``data: [DONE]`` only if the recording has it. ``drop``: end by cutting the connection instead
    of closing the stream. With a ``body`` (or a ``status`` other than 200) it sends that JSON
    instead, with ``headers``: an error, or a server that ignores ``stream: true``."""

    events: tuple[str, ...] = ()
    status: int = 200
    headers: Mapping[str, str] | None = None
    body: Any = None
    drop: bool = False

    def serve(self, wire: Wire) -> None:
        if self.body is not None or self.status != 200:
            wire.send_json(self.status, self.body, self.headers)
            return
        wire.start_stream()
        for event in self.events:
            wire._write_chunk(f"{event}\n\n".encode())
        if self.drop:
            wire.drop()
        else:
            wire._handler.wfile.write(b"0\r\n\r\n")


def text(content: str, chunk_size: int = 8, usage: Mapping[str, int] | None = None, *, delay: float = 0.0) -> TextStep:
    """Answer with ``content`` streamed as several deltas (``chunk_size`` characters each).

    ``usage`` (prompt/completion/total tokens) is sent in the final usage chunk
    when the request sets ``stream_options.include_usage``; estimated if omitted.
    ``delay`` sleeps before each chunk, so a test can cancel mid-stream.
    """
    return TextStep(content, chunk_size, usage, delay)


def tool_calls(
    calls: Sequence[tuple[str, Mapping[str, Any] | str]],
    *,
    content: str | None = None,
    chunk_size: int = 8,
    fragment_size: int = 10,
    usage: Mapping[str, int] | None = None,
    delay: float = 0.0,
    ids: Sequence[str] | None = None,
) -> ToolCallsStep:
    """Answer with parallel tool calls, e.g. ``tool_calls([("psql", {"sql": "select 1"})])``.

    Arguments given as a mapping are JSON-encoded; a string is sent verbatim
    (so a test can send malformed JSON). ``content`` is streamed before the
    calls. ``ids`` pins the ``call_...`` ids; otherwise they are random.
    """
    if not calls:
        raise ValueError("tool_calls() needs at least one call")
    if ids is not None and len(ids) != len(calls):
        raise ValueError(f"tool_calls(): {len(ids)} ids for {len(calls)} calls")
    encoded = tuple((name, args if isinstance(args, str) else json.dumps(args)) for name, args in calls)
    return ToolCallsStep(encoded, content, chunk_size, fragment_size, usage, delay, tuple(ids) if ids else None)


def disconnect_after(
    n_chunks: int, content: str = DisconnectStep.content, *, chunk_size: int = 8, delay: float = 0.0
) -> DisconnectStep:
    """Stream ``n_chunks`` SSE events of an answer with ``content``, then drop the connection."""
    return DisconnectStep(n_chunks, content, chunk_size, delay)


def _resolve(step: StepLike, request: JSON) -> Step:
    for _ in range(16):
        if isinstance(step, Step):
            return step
        if not callable(step):
            break
        step = step(request)
    raise TypeError(f"scripted model: a step must be a Step or a callable returning one, got {step!r}")


class Script:
    """Answers requests with the given steps, one step per request, in order. Thread-safe."""

    def __init__(self, steps: Sequence[StepLike]) -> None:
        self.steps = list(steps)
        self._next = 0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        """Steps not yet used: a test can assert the agent made exactly the expected calls."""
        with self._lock:
            return max(0, len(self.steps) - self._next)

    def step_for(self, request: JSON, number: int) -> Step:
        with self._lock:
            index = self._next
            self._next += 1
        if index >= len(self.steps):
            return http_error(
                500,
                f"scripted model: no more scripted responses (request {index + 1}); "
                f"the script has {len(self.steps)} step(s); "
                f"last user message: {_snippet(last_user_message(request))}",
                type="server_error",
                code="script_exhausted",
                # Retrying cannot help and would only hide the real request count.
                should_retry=False,
            )
        return _resolve(self.steps[index], request)


class ModelServer(LoopbackServer):
    """The loopback server answering from a script (a list of steps) or any responder.

    Starts on construction; use as a context manager or call :meth:`close`. Attributes:
    ``base_url`` (ends with ``/v1``, for ``openai.OpenAI``), ``requests`` (received
    chat-completion bodies, in order), ``aborted`` (request numbers whose client went away
    mid-answer), ``errors`` (tracebacks of responder failures).
    """

    def __init__(self, responder: Responder | Sequence[StepLike], *, model: str = "scripted-model") -> None:
        super().__init__(Script(responder) if isinstance(responder, Sequence) else responder, model=model)


__all__ = [
    "ChunksStep",
    "CompletionStep",
    "DisconnectStep",
    "HttpErrorStep",
    "ModelServer",
    "RawReply",
    "Replay",
    "Responder",
    "Script",
    "Step",
    "StepLike",
    "TextStep",
    "ToolCallsStep",
    "Wire",
    "_Handler",
    "_resolve",
    "disconnect_after",
    "http_error",
    "message_chunks",
    "text",
    "tool_calls",
]
