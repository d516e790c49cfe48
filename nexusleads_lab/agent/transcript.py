"""A stored conversation as typed items, built in one place for every view.

The store keeps what the model saw (OpenAI-shaped messages) with what the person saw beside it
(``meta``: the resolved response, notes, time and tokens, a confirmation's outcome, a failed
turn's error). ``build`` reads both into ``QuestionItem`` / ``AnswerItem`` / ``OutcomeItem``:
the panel's history, the CLI's ``--show`` and a resumed cell render from these, and nothing
else re-reads raw messages. A step is the ``agent.action`` event itself (``AgentAction``), as
in a live turn.

Conversations stored before the meta existed still read: a ``CONFIRM_ACTION`` line or an
"ended early" note is understood here, once (``_legacy_outcome``, ``_legacy_error``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from .events import AgentAction
from .responses.models import RESOLVED_ADAPTER, ResolvedResponse, response_json

log = logging.getLogger(__name__)


@dataclass
class QuestionItem:
    text: str
    at: str | None = None
    kind: str = "question"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AnswerItem:
    response: ResolvedResponse | None = None  # validated once, from the stored dict
    text: str = ""  # what the model wrote
    notes: list[str] = field(default_factory=list)
    steps: list[AgentAction] = field(default_factory=list)
    error: str | None = None  # the turn ended early with this
    cancelled: bool = False
    elapsed_ms: float | None = None
    usage: dict[str, int] = field(default_factory=dict)
    outcome: dict[str, Any] | None = None  # a confirm answer's outcome, once resolved
    at: str | None = None
    kind: str = "answer"

    def response_dict(self) -> dict[str, Any] | None:
        """The response as it was stored: what the views' JavaScript and the REST API get."""
        return response_json(self.response, as_stored=True) if self.response is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "response": self.response_dict(), "steps": [s.step() for s in self.steps]}


@dataclass
class OutcomeItem:
    """A confirmation's outcome whose proposal is not in this transcript (or not shown as a card)."""

    proposal_id: str
    status: str
    rows_affected: int | None = None
    error: str | None = None
    at: str | None = None
    kind: str = "outcome"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Item = QuestionItem | AnswerItem | OutcomeItem


def build(history: Iterable[dict[str, Any]]) -> list[Item]:
    """Typed items from stored messages (``Assistant.history``), oldest first."""
    items: list[Item] = []
    steps: dict[str | None, AgentAction] = {}  # by call id (a stored call may lack one)
    cards: dict[str, AnswerItem] = {}
    for stored in history:
        role, kind = stored.get("role"), stored.get("kind")
        message = stored.get("message") or {}
        meta = stored.get("meta") or {}
        at = stored.get("created_at")
        if role == "user":
            text = message.get("content") or ""
            # stored JSON: ``Outcome.as_dict()``, or what a legacy line said
            outcome: Any = meta.get("outcome") or (_legacy_outcome(text) if kind in (None, "confirm_action") else None)
            if outcome is not None:
                card = cards.get(outcome.get("id"))
                if card is not None:
                    card.outcome = outcome
                else:
                    items.append(
                        OutcomeItem(
                            outcome.get("id"),
                            outcome.get("status"),
                            outcome.get("rows_affected"),
                            outcome.get("error"),
                            at,
                        )
                    )
                continue
            if kind == "confirm_refused":
                continue  # between the model and the product: the person sees the next answer
            items.append(QuestionItem(text, at))
            steps = {}
        elif role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                args = _loose_json(function.get("arguments"))
                name = function.get("name")
                steps[call.get("id")] = AgentAction(
                    action="command" if name == "psql" else "tool_call",
                    tool=str(name or ""),
                    status="started",
                    call_id=str(call.get("id") or ""),
                    command=_text(args.get("sql")) if name == "psql" else None,
                    path=_text(args.get("path")),
                    ts=0,
                )
        elif role == "tool":
            call_id = message.get("tool_call_id")
            found = steps.get(call_id)
            if found is not None:
                ok = meta.get("ok", True)
                done: dict[str, Any] = {"status": "completed" if ok else "failed"}
                done.update(
                    (key, meta[key])
                    for key in ("result_id", "rows", "truncated", "elapsed_ms")
                    if meta.get(key) is not None
                )
                if meta.get("sql"):
                    done["command"] = meta["sql"]
                if not ok:
                    done["error"] = _text(_loose_json(message.get("content")).get("error"))
                steps[call_id] = AgentAction.model_validate({**found.model_dump(), **done})
        elif role == "assistant":
            if kind == "confirm_action":
                continue  # the acknowledgement: the card carries the outcome
            if meta.get("refused"):
                continue  # a refused proposal the model was asked to correct
            if kind == "note":
                error = meta.get("error") or _legacy_error(message.get("content") or "")
                cancelled = bool(meta.get("cancelled")) if "cancelled" in meta else error.startswith("Stopped")
                items.append(
                    AnswerItem(
                        steps=list(steps.values()),
                        error=error,
                        cancelled=cancelled,
                        elapsed_ms=meta.get("elapsed_ms"),
                        at=at,
                    )
                )
            else:
                response = meta.get("response") or _message_response(message.get("content"))
                item = AnswerItem(
                    response=_resolved(response),
                    text=message.get("content") or "",
                    notes=list(meta.get("notes") or []),
                    steps=list(steps.values()),
                    elapsed_ms=meta.get("elapsed_ms"),
                    usage=dict(meta.get("usage") or {}),
                    at=at,
                )
                if response and response.get("type") == "confirm" and response.get("id"):
                    cards[response["id"]] = item
                items.append(item)
            steps = {}
    return items


@dataclass(frozen=True)
class TranscriptPage:
    items: list[Item]  # oldest first
    total: int  # messages stored in the whole conversation (the last position)
    start: int  # messages stored before this page's first (0: nothing earlier)


def history_row(m) -> dict[str, Any]:
    """A stored message as ``build`` reads it."""
    return {"seq": m.seq, "role": m.role, "created_at": m.created_at.isoformat(), **m.content}


def _starts_turn(m) -> bool:
    return m.role == "user" and (m.content.get("kind") if isinstance(m.content, dict) else None) != "confirm_refused"


def _card_id(m) -> bool:
    meta = m.content.get("meta") if isinstance(m.content, dict) else None
    response = meta.get("response") if isinstance(meta, dict) else None
    return isinstance(response, dict) and response.get("type") == "confirm" and isinstance(response.get("id"), str)


def page(store, conversation_id: str, *, limit: int, before: int | None = None) -> TranscriptPage:
    """The latest whole turns of a stored conversation before message position ``before``
    (default: its end) as transcript items, at most ``limit`` of them (or the one turn
    there, if it alone has more). Read backwards in keyset pages: the cost follows the page,
    not the conversation. A confirmation card here carries its outcome even when the
    outcome came later; an outcome whose card is on an earlier page is left to that page."""
    total = store.last_seq(conversation_id)
    end = total + 1 if before is None else min(before, total) + 1  # positions: messages 1..before
    chunk = max(limit, 100)
    stored: list = []
    counts: dict[int, int] = {}  # items of the turn starting at a seq
    while True:
        got = store.page(conversation_id, before=stored[0].seq if stored else end, limit=chunk)
        stored = got + stored
        at_start = len(got) < chunk
        starts = [i for i, m in enumerate(stored) if _starts_turn(m)]
        if at_start and stored and (not starts or starts[0] != 0):
            starts.insert(0, 0)  # whatever came before the first question is a turn too
        bounds, start, n, full = [*starts, len(stored)], len(stored), 0, False
        for k in range(len(starts) - 1, -1, -1):
            seq = stored[bounds[k]].seq
            if seq not in counts:
                counts[seq] = len(build(history_row(m) for m in stored[bounds[k] : bounds[k + 1]]))
            if n + counts[seq] > limit and start < len(stored):
                full = True
                break
            n, start = n + counts[seq], bounds[k]
        if full or at_start:
            break
    window = stored[start:]
    first = window[0].seq if window else end
    cards = [m.content["meta"]["response"]["id"] for m in window if _card_id(m)]
    later = store.find(conversation_id, "outcome", cards, after=end - 1) if cards else []
    shown = {o["id"] for m in window if isinstance(o := (m.content.get("meta") or {}).get("outcome"), dict)}
    earlier = store.find(conversation_id, "card", sorted(shown), before=first) if shown else []
    elsewhere = {m.content["meta"]["response"]["id"] for m in earlier}
    items = [
        item
        for item in build(history_row(m) for m in [*window, *later])
        if not (isinstance(item, OutcomeItem) and item.proposal_id in elsewhere)
    ]
    return TranscriptPage(items, total, first - 1)


def _resolved(stored: Any) -> ResolvedResponse | None:
    """A stored response validated into its model, once; one that no longer validates is left out."""
    if not isinstance(stored, dict):
        return None
    try:
        return RESOLVED_ADAPTER.validate_python(stored)
    except ValidationError:
        log.warning("a stored response does not validate; it is left out of the transcript")
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _loose_json(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _message_response(content: Any) -> dict[str, Any] | None:
    data = _loose_json(content)
    return data if data.get("type") == "message" else None


# -- conversations stored before the outcome and error were kept as meta ----------------------

_REPORT = re.compile(r"^CONFIRM_ACTION: (\S+) (confirmed|failed|cancelled)\b(?:: (.*))?", re.S)
_ENDED_EARLY = re.compile(r"^\(The previous turn ended early: (.*)\)$", re.S)


def _legacy_outcome(text: str) -> dict[str, Any] | None:
    match = _REPORT.match(text or "")
    if not match:
        return None
    proposal_id, status, rest = match.groups()
    outcome: dict[str, Any] = {"id": proposal_id, "status": status, "rows_affected": None, "error": None}
    if status == "confirmed":
        rows = re.match(r"\s*(\d+) rows? affected", rest or "")
        outcome["rows_affected"] = int(rows.group(1)) if rows else None
    elif status == "failed":
        outcome["error"] = (rest or "").strip()
    return outcome


def _legacy_error(text: str) -> str:
    return _ENDED_EARLY.sub(r"\1", text)
