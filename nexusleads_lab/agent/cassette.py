"""Record and replay of model exchanges ("cassettes").

Why: a notebook that talks to a real model is neither reproducible nor runnable
offline. We record what the model said once, then replay it through the
loopback :class:`~nexusleads_lab.agent.modelserver.ModelServer`, so the agent
still goes through the real ``openai`` client, HTTP and SSE on replay.

Cassette format
---------------
JSON Lines, one exchange per line, keys in a fixed order so a re-recording
diffs line by line::

    {"model": "gpt-x",
     "request": {"messages": [...], "tools": ["psql", "read_file"]},
     "response": {"chunks": [<chat.completion.chunk>, ...]}}

A non-streamed exchange stores ``"response": {"completion": <chat.completion>}``
instead. A proposed write recorded with the session adds a line after its
exchange, ``{"proposal": {"sql_sha256": ..., "preview": [...]}}``: per statement
the row count, the sample's keys and their before-values (see
:class:`ProposalLedger`), so a replay can tell whether it would change the rows
the recording showed. ``model`` is informational only. ``request`` is the *normalised*
request (see :func:`normalise_request`), never the raw body: no headers, no
API key, no sampling parameters. Chunks and completions are stored verbatim as
the server sent them (minus the ``[DONE]`` sentinel). Only complete 2xx
exchanges are recorded: an error or a stream that broke off is transient and
replaying it would only confuse.

Normalisation
-------------
Kept: each message's role, content (text; ``None`` and ``""`` are the same),
assistant tool calls as ``{id, name, arguments}`` (arguments re-serialised as
canonical JSON when they parse), ``tool_call_id``, and the sorted tool names.
Dropped: model, temperature and every other parameter. Tool-call ids are
replaced by positional aliases (``call#1``, ``call#2``... in order of first
appearance in the request) because real ids are random per call but which
result answers which call still matters. Volatile text (UUIDs, date-times,
durations such as ``"elapsed_ms": 12.3`` or ``(4.1 ms)``) is masked with the
regexes in :data:`VOLATILE_MASKS` so that a re-run whose tool output differs
only in timings still matches.

Matching rule (used by ``Replay``)
----------------------------------
For each incoming request, in this order:

1. the earliest *unused* exchange whose normalised request is equal;
2. the earliest *already used* exchange whose normalised request is equal
   (a cell re-run against the same replay server gets the same answers);
3. the earliest unused exchange whose last user message is equal (after
   masking) - i.e. the n-th request asking a question gets the n-th recorded
   answer to that question, even if tool output or the system prompt drifted;
4. otherwise the replay fails loudly, naming the cassette and showing the
   last user message, so one can see which cell diverged.
"""

from __future__ import annotations

import json
import os
import re
import threading
import warnings
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai

try:
    import httpx2
except ImportError:  # pragma: no cover - openai < 3 is built on httpx, which has the same API
    import httpx as httpx2  # type: ignore[no-redef]

if TYPE_CHECKING:
    from nexusleads_lab.agent.modelserver import ModelServer

JSON = dict[str, Any]
Mask = tuple["re.Pattern[str]", str]

#: (pattern, replacement) pairs applied to every text in a normalised request.
#: Replacements contain no digits so masking is idempotent.
VOLATILE_MASKS: tuple[Mask, ...] = (
    (
        re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
        "<uuid>",
    ),
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<datetime>",
    ),
    # JSON-ish timing fields: "elapsed_ms": 12.3, duration=4, "took_s": 0.2 ...
    (
        re.compile(
            r"""(["']?(?:[A-Za-z_]*(?:elapsed|duration|latency|took|runtime)[A-Za-z_]*"""
            r"""|[A-Za-z_]+_(?:ms|us|ns|secs?|seconds))["']?\s*[:=]\s*)-?\d+(?:\.\d+)?""",
            re.IGNORECASE,
        ),
        r"\1<n>",
    ),
    # Free-text timings: "(12.3 ms)", "in 0.42s".
    (re.compile(r"\b\d+(?:\.\d+)?\s?ms\b"), "<n> ms"),
    (re.compile(r"\b\d+\.\d+\s?s(?:ec(?:onds?)?)?\b"), "<n> s"),
)

REPLAY_MISS = "replay_no_answer"  # the error code of a request the cassette has no answer to

_SECRET_KEYS = frozenset({"authorization", "api_key", "api-key", "apikey", "x-api-key", "openai_api_key"})
_REDACTED = "<redacted>"


def mask_volatile(text: str, extra_masks: Sequence[Mask] = ()) -> str:
    """Replace volatile substrings so two runs of the same cell compare equal."""
    for pattern, replacement in (*VOLATILE_MASKS, *extra_masks):
        text = pattern.sub(replacement, text)
    return text


def _text_of(content: Any) -> str | None:
    """Flatten message content (string or list of parts) to text, for display and fallback matching."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
        return "\n".join(texts)
    return None


def last_user_message(request: Mapping[str, Any]) -> str | None:
    """Text of the last ``user`` message of a raw or normalised request, if any."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return None


def _canonical_arguments(arguments: Any) -> str:
    # Agents may re-serialise arguments with other spacing or key order; equal JSON must match.
    if not isinstance(arguments, str):
        return json.dumps(arguments, sort_keys=True, ensure_ascii=False)
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, ensure_ascii=False)
    except ValueError:
        return arguments


def normalise_request(body: Mapping[str, Any], extra_masks: Sequence[Mask] = ()) -> JSON:
    """Reduce a Chat Completions request body to what decides the model's answer.

    Idempotent, so cassettes may be hand-written or hand-edited in either form.
    """
    aliases: dict[str, str] = {}

    def alias(call_id: Any) -> str:
        key = str(call_id)
        return aliases.setdefault(key, f"call#{len(aliases) + 1}")

    def mask_content(content: Any) -> Any:
        if isinstance(content, str):
            return mask_volatile(content, extra_masks)
        if isinstance(content, list):
            return [
                {**part, "text": mask_volatile(str(part.get("text", "")), extra_masks)}
                if isinstance(part, Mapping) and part.get("type") == "text"
                else part
                for part in content
            ]
        return content

    messages: list[JSON] = []
    for index, raw in enumerate(body.get("messages") or []):
        if not isinstance(raw, Mapping):
            continue
        if index == 0 and raw.get("role") == "system":
            # The leading system prompt names the user, the date and the code's current wording;
            # none of that should stop a colleague's re-run from replaying.
            continue
        message: JSON = {"role": raw.get("role")}
        if raw.get("tool_call_id") is not None:
            message["tool_call_id"] = alias(raw["tool_call_id"])
        if raw.get("content"):
            message["content"] = mask_content(raw["content"])
        calls = []
        for call in raw.get("tool_calls") or []:
            function = call.get("function") or {}
            calls.append(
                {
                    "id": alias(call.get("id")),
                    # Legacy/hand-written form {"name", "arguments"} is accepted too.
                    "name": function.get("name", call.get("name")),
                    "arguments": mask_volatile(
                        _canonical_arguments(function.get("arguments", call.get("arguments", ""))), extra_masks
                    ),
                }
            )
        if calls:
            message["tool_calls"] = calls
        messages.append(message)

    names: list[str] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, str):
            names.append(tool)
        elif isinstance(tool, Mapping):
            name = (tool.get("function") or {}).get("name", tool.get("name"))
            if name:
                names.append(str(name))
    normalised: JSON = {"messages": messages}
    if names:
        normalised["tools"] = sorted(names)
    return normalised


def assemble_completion(chunks: Iterable[Mapping[str, Any]]) -> JSON:
    """Fold streamed ``chat.completion.chunk`` dicts into one ``chat.completion`` dict.

    Used to answer a non-streamed request from a streamed recording; accumulates
    tool-call fragments by ``index`` exactly as a streaming client must.
    """
    head: Mapping[str, Any] | None = None
    usage: Any = None
    states: dict[int, JSON] = {}
    for chunk in chunks:
        head = head or chunk
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            state = states.setdefault(
                int(choice.get("index", 0)),
                {"role": "assistant", "content": [], "calls": {}, "finish_reason": None},
            )
            delta = choice.get("delta") or {}
            if delta.get("role"):
                state["role"] = delta["role"]
            if delta.get("content"):
                state["content"].append(delta["content"])
            for fragment in delta.get("tool_calls") or []:
                slot = state["calls"].setdefault(
                    int(fragment.get("index", 0)), {"id": None, "type": "function", "name": "", "arguments": ""}
                )
                if fragment.get("id"):
                    slot["id"] = fragment["id"]
                if fragment.get("type"):
                    slot["type"] = fragment["type"]
                function = fragment.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                state["finish_reason"] = choice["finish_reason"]
    if head is None:
        raise ValueError("cannot assemble a completion from zero chunks")

    choices = []
    for index in sorted(states):
        state = states[index]
        message: JSON = {"role": state["role"], "content": "".join(state["content"]) or None, "refusal": None}
        if state["calls"]:
            message["tool_calls"] = [
                {"id": s["id"], "type": s["type"], "function": {"name": s["name"], "arguments": s["arguments"]}}
                for _, s in sorted(state["calls"].items())
            ]
        choices.append(
            {"index": index, "message": message, "logprobs": None, "finish_reason": state["finish_reason"] or "stop"}
        )
    return {
        "id": head.get("id", "chatcmpl-replay"),
        "object": "chat.completion",
        "created": head.get("created", 0),
        "model": head.get("model", "replay"),
        "choices": choices,
        "usage": usage,
    }


# --------------------------------------------------------------------------- loading and matching


@dataclass
class Exchange:
    """One recorded request/response pair; ``line`` is 1-based in the cassette file."""

    request: JSON
    response: JSON
    line: int
    model: str | None = None
    used: bool = False


def load_cassette(path: str | os.PathLike[str], extra_masks: Sequence[Mask] = ()) -> list[Exchange]:
    """Parse a cassette; fails with the file and line number on malformed content."""
    exchanges: list[Exchange] = []
    source = Path(path)
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"cassette {source}: line {number} is not valid JSON: {exc}") from exc
        if isinstance(entry, dict) and "proposal" in entry and "response" not in entry:
            continue  # a recorded proposal's preview (ProposalLedger), not an exchange
        response = entry.get("response") if isinstance(entry, dict) else None
        if not isinstance(response, dict) or not ("chunks" in response or "completion" in response):
            raise ValueError(f"cassette {source}: line {number} has no response.chunks or response.completion")
        exchanges.append(
            Exchange(
                request=normalise_request(entry.get("request") or {}, extra_masks),
                response=response,
                line=number,
                model=entry.get("model"),
            )
        )
    return exchanges


class CassetteMatcher:
    """Finds the recorded answer for a request, following the module's matching rule. Thread-safe."""

    def __init__(self, exchanges: Sequence[Exchange], extra_masks: Sequence[Mask] = ()) -> None:
        self.exchanges = list(exchanges)
        self._extra_masks = tuple(extra_masks)
        self._lock = threading.Lock()

    def match(self, request: Mapping[str, Any]) -> Exchange | None:
        """Return (and mark used) the exchange answering ``request``, or ``None``."""
        wanted = normalise_request(request, self._extra_masks)
        question = last_user_message(wanted)
        with self._lock:
            found = (
                next((e for e in self.exchanges if not e.used and e.request == wanted), None)
                or next((e for e in self.exchanges if e.used and e.request == wanted), None)
                or (
                    next(
                        (e for e in self.exchanges if not e.used and last_user_message(e.request) == question),
                        None,
                    )
                    if question is not None
                    else None
                )
            )
            if found is not None:
                found.used = True
            return found

    @property
    def unused(self) -> list[Exchange]:
        """Exchanges never served: a replay that leaves some is a hint the notebook took another path."""
        with self._lock:
            return [e for e in self.exchanges if not e.used]


# --------------------------------------------------------------------------- recording


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
        except Exception as exc:  # noqa: BLE001 - a failed recording must never break the live answer
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


# --------------------------------------------------------------------------- proposals


def preview_fingerprint(preview: Sequence[Mapping[str, Any]]) -> list[JSON]:
    """What decides which rows a proposal changes, per statement: the table, the row count, the
    sample's keys and their values before the write; for an INSERT (no rows before it) the values
    it would add, times masked (``now()`` differs on every run)."""
    out = []
    for step in preview:
        sample = step.get("sample") or []
        entry: JSON = {
            "action": step.get("action"),
            "table": step.get("table"),
            "rows": step.get("rows"),
            "keys": [row.get("key") for row in sample],
            "before": [row.get("before") for row in sample],
        }
        if step.get("action") == "insert":
            entry["after"] = [
                {k: mask_volatile(v) if isinstance(v, str) else v for k, v in (row.get("after") or {}).items()}
                for row in sample
            ]
        out.append(entry)
    return out


class ProposalLedger:
    """The previews of a cassette's proposed writes: written while recording, checked on replay.

    A replayed answer proposes the SQL the recording's model wrote, whatever the data is now; if
    that SQL would now change other rows (or rows holding other values) than the recording
    showed, the proposal is stale and must not run.
    """

    def __init__(self, path: str | os.PathLike[str], mode: str) -> None:
        self.path = Path(path)
        self.mode = mode  # "record" | "replay"
        self._lock = threading.Lock()
        self._recorded: dict[str, list[list[JSON]]] | None = None
        self._stamp: tuple[int, int] | None = None  # the file's (mtime, size) when read: a re-recording is re-read

    def note(self, sql: str, preview: Sequence[Mapping[str, Any]]) -> str | None:
        """Record this proposal's preview, or (replaying) say in one sentence why it is stale."""
        import hashlib

        digest = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        fresh = preview_fingerprint(preview)
        if self.mode == "record":
            line = json.dumps({"proposal": {"sql_sha256": digest, "preview": fresh}}, ensure_ascii=False, default=str)
            with self._lock, self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
            return None
        recorded = self._load().get(digest)
        if not recorded:
            return (
                f"This replayed proposal has no recorded preview in {self.path.name}, so nothing shows that it "
                "would change the rows the recording showed; re-record the cassette (see README › Re-recording "
                "notebooks) before confirming it."
            )
        # JSON round trip: the fresh preview compared as the recorded one was stored.
        fresh = json.loads(json.dumps(fresh, ensure_ascii=False, default=str))
        if any(fresh == shown for shown in recorded):
            return None
        return stale_sentence(recorded[-1], fresh)

    def _load(self) -> dict[str, list[list[JSON]]]:
        with self._lock:
            stat = self.path.stat()
            if self._recorded is None or self._stamp != (stat.st_mtime_ns, stat.st_size):
                self._stamp = (stat.st_mtime_ns, stat.st_size)
                found: dict[str, list[list[JSON]]] = {}
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    if '"proposal"' not in line:
                        continue
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    proposal = entry.get("proposal") if isinstance(entry, dict) else None
                    if isinstance(proposal, dict) and proposal.get("sql_sha256"):
                        found.setdefault(str(proposal["sql_sha256"]), []).append(list(proposal.get("preview") or []))
                self._recorded = found
            return self._recorded


def stale_sentence(recorded: Sequence[Mapping[str, Any]], fresh: Sequence[Mapping[str, Any]]) -> str:
    """Why a replayed proposal may not run: what the recording showed, what it would change here."""
    from nexusleads_lab.db.demo import count_of

    several = len(recorded) > 1 or len(fresh) > 1
    for index, (shown, now) in enumerate(zip(recorded, fresh)):
        if shown == now:
            continue
        which = f"statement {index + 1} " if several else ""
        table = str(now.get("table") or shown.get("table") or "")
        if shown.get("keys") == now.get("keys") and shown.get("rows") == now.get("rows"):
            here = f"the same {_rows_of(now, table, count_of)} hold other values than it showed"
        else:
            here = f"it would change {_rows_of(now, table, count_of)}"
        return (
            f"This replayed proposal was recorded against other data: {which}showed "
            f"{_rows_of(shown, table, count_of)}; here {here}. Reset the demo data with `nexus-lab db reset` "
            "or re-record the cassette."
        )
    return (
        f"This replayed proposal was recorded against other data: it had {len(recorded)} statement(s), here "
        f"{len(fresh)}. Reset the demo data with `nexus-lab db reset` or re-record the cassette."
    )


def _rows_of(step: Mapping[str, Any], table: str, count_of) -> str:
    """'leads 14118, 447, 2', '0 rows', '1,204 leads (among them 5, 6, 7, …)'."""
    rows = int(step.get("rows") or 0)
    if rows == 0:
        return "0 rows"
    keys = [_key_text(k) for k in step.get("keys") or [] if k]
    noun = count_of(rows, table).split(" ", 1)[1]
    if not keys:
        return count_of(rows, table)
    if len(keys) >= rows:
        return f"{noun} {', '.join(keys)}"
    return f"{count_of(rows, table)} (among them {', '.join(keys)}, …)"


def _key_text(key: Any) -> str:
    if isinstance(key, Mapping):
        if len(key) == 1:
            return str(next(iter(key.values())))
        return "(" + ", ".join(f"{k}={v}" for k, v in key.items()) + ")"
    return str(key)


def start_replay_server(path: str | os.PathLike[str], *, extra_masks: Sequence[Mask] = ()) -> ModelServer:
    """Start a loopback server answering from the cassette at ``path`` (already serving; close it or use ``with``)."""
    from nexusleads_lab.agent.modelserver import ModelServer, Replay  # late: modelserver imports this module

    return ModelServer(Replay(path, extra_masks=extra_masks))


__all__ = [
    "REPLAY_MISS",
    "VOLATILE_MASKS",
    "AsyncRecordingTransport",
    "CassetteMatcher",
    "Exchange",
    "ProposalLedger",
    "Recorder",
    "RecordingTransport",
    "assemble_completion",
    "last_user_message",
    "load_cassette",
    "mask_volatile",
    "normalise_request",
    "parse_sse",
    "preview_fingerprint",
    "recording_async_http_client",
    "recording_http_client",
    "start_replay_server",
]
