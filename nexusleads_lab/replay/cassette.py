"""Record and replay of model exchanges ("cassettes").

Why: a notebook that talks to a real model is neither reproducible nor runnable
offline. We record what the model said once, then replay it through the
loopback server (:mod:`.server`), so the agent
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
   masking) and whose own turn so far is too: what the model was sent after that
   question (its tool calls and their results, with result ids and call ids
   numbered within the turn), then the earliest used one. So a recorded question
   asked in another conversation (a chat panel, a new notebook) gets its recorded
   answer whatever came before it, and only while every tool result of the turn
   equals the recording: an answer is never replayed over other data;
4. otherwise the replay fails, naming the question, so one can see which cell
   diverged.

A turn-scoped match (rule 3) carries the result ids of this conversation beside
the recorded ones (``Match.result_ids``), so the answer can be served with the
ids its dashboard must name here.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


_RESULT_ID = re.compile(r'("result_id"\s*:\s*")(r\d+)(")')


def _turn_of(request: Mapping[str, Any]) -> tuple[str | None, str, list[str]]:
    """A normalised request's last question, what followed it in this turn (call aliases and result
    ids renumbered within the turn), and the result ids that turn named, in order."""
    messages = list(request.get("messages") or [])
    start = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    question = _text_of(messages[start].get("content")) if start >= 0 else None
    aliases: dict[str, str] = {}
    results: list[str] = []

    def alias(call_id: Any) -> str:
        return aliases.setdefault(str(call_id), f"call#{len(aliases) + 1}")

    def renumber(match: re.Match[str]) -> str:
        results.append(match.group(2))
        return f"{match.group(1)}<result>{match.group(3)}"

    turn = []
    for message in messages[start + 1 :]:
        shown = dict(message)
        if "tool_call_id" in shown:
            shown["tool_call_id"] = alias(shown["tool_call_id"])
        if shown.get("tool_calls"):
            shown["tool_calls"] = [{**call, "id": alias(call.get("id"))} for call in shown["tool_calls"]]
        if isinstance(shown.get("content"), str):
            shown["content"] = _RESULT_ID.sub(renumber, shown["content"])
        turn.append(shown)
    return question, json.dumps(turn, sort_keys=True, ensure_ascii=False), results


@dataclass
class Exchange:
    """One recorded request/response pair; ``line`` is 1-based in the cassette file."""

    request: JSON
    response: JSON
    line: int
    model: str | None = None
    used: bool = False

    @property
    def question(self) -> str | None:
        return last_user_message(self.request)


@dataclass(frozen=True)
class Match:
    """The exchange answering a request; ``result_ids`` maps the recording's result ids to this
    conversation's when the match was by turn (rule 3) and they differ."""

    exchange: Exchange
    result_ids: dict[str, str]


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
        found = self.find(request)
        return found.exchange if found is not None else None

    def find(self, request: Mapping[str, Any]) -> Match | None:
        """The match for ``request`` (its exchange marked used), or ``None``."""
        wanted = normalise_request(request, self._extra_masks)
        with self._lock:
            found = next((e for e in self.exchanges if not e.used and e.request == wanted), None) or next(
                (e for e in self.exchanges if e.used and e.request == wanted), None
            )
            if found is not None:
                found.used = True
                return Match(found, {})
            question, turn, ids = _turn_of(wanted)
            if question is None:
                return None
            candidates = [e for e in self.exchanges if e.question == question]
            for exchange in sorted(candidates, key=lambda e: e.used):  # unused first, each in cassette order
                _, recorded_turn, recorded_ids = _turn_of(exchange.request)
                if recorded_turn == turn:
                    exchange.used = True
                    return Match(exchange, {a: b for a, b in zip(recorded_ids, ids, strict=True) if a != b})
            return None

    def questions(self) -> list[str]:
        """Every recorded question, once, in the order first asked."""
        return list(dict.fromkeys(q for q in (e.question for e in self.exchanges) if q))

    @property
    def unused(self) -> list[Exchange]:
        """Exchanges never served: a replay that leaves some is a hint the notebook took another path."""
        with self._lock:
            return [e for e in self.exchanges if not e.used]
