"""History fitting: which stored messages the model is sent, inside a token budget.

``fit_budget`` keeps a long thread inside the budget (old tool results shrunk first, then the
oldest whole turns dropped, the latest turn always intact); ``model_tail`` reads just enough of a
stored conversation, backwards in pages, to send the model exactly what the whole thread would.
"""

from __future__ import annotations

import json
from typing import Any

from .. import fastjson

MODEL_ROLES = ("user", "assistant", "tool", "system")
TAIL_PAGE = 200  # stored messages read per round trip when resuming


def model_tail(store, conversation_id: str, budget: int) -> list[dict[str, Any]]:
    """The end of a stored conversation the model can still see: pages read backwards until
    ``fit_budget`` would drop everything before them, so resuming a long conversation reads a
    bounded number of messages and sends the model exactly what the whole thread would have."""
    messages: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        page = store.page(conversation_id, before=before, limit=TAIL_PAGE, roles=MODEL_ROLES)
        messages = [m for m in (_model_message(s) for s in page) if m] + messages
        if len(page) < TAIL_PAGE:
            return messages  # the conversation's start
        before = page[0].seq
        start = _beyond_budget(messages, budget)
        if start is not None:
            return messages[start:]


def _model_message(stored) -> dict[str, Any] | None:
    msg = stored.content.get("message") if isinstance(stored.content, dict) else None
    return msg if msg and stored.role in MODEL_ROLES else None


def _beyond_budget(messages: list[dict[str, Any]], budget: int) -> int | None:
    """The latest turn start from which the messages, each old tool result shrunk as
    ``fit_budget`` would, exceed ``budget``: ``fit_budget`` drops everything before it, always."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    total = 0
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        if i < last_user and msg.get("role") == "tool" and len(msg.get("content") or "") > 200:
            msg = {**msg, "content": _shrink_tool_content(msg.get("content") or "")}
        total += _size(msg)
        if total > budget and msg.get("role") == "user" and i <= last_user:
            return i
    return None


def _size(message: dict[str, Any]) -> int:
    """Rough tokens of one message: the characters of its JSON as the request sends it (compact,
    UTF-8: ``openapi_dumps``), a quarter each, and 4 for the message's own framing."""
    return len(fastjson.dumps(message, default=str)) // 4 + 4


class MessageSizes:
    """Each message's ``_size``, worked out once while it stays in the thread: every request of a
    turn fits the whole thread again, and a message is never changed once it is in one."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[dict[str, Any], int]] = {}

    def of(self, messages: list[dict[str, Any]]) -> list[int]:
        known, kept = self._known, {}
        sizes = []
        for message in messages:
            hit = known.get(id(message))
            size = hit[1] if hit is not None and hit[0] is message else _size(message)
            kept[id(message)] = (message, size)  # held, so its id is not another's meanwhile
            sizes.append(size)
        self._known = kept  # the messages that left the thread are forgotten
        return sizes


def fit_budget(messages: list[dict[str, Any]], budget: int, known: MessageSizes | None = None) -> list[dict[str, Any]]:
    """Keep a long thread inside ``budget`` tokens: shrink old tool results first, then drop
    the oldest whole turns; the latest turn is always kept intact. One pass: a resumed thread
    may hold thousands of messages. ``known``: the thread's sizes so far, kept between calls."""
    sizes = known.of(messages) if known is not None else [_size(m) for m in messages]
    total = sum(sizes)
    if total <= budget:
        return messages
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    out = list(messages)
    for i, msg in enumerate(out[:last_user]):
        if total <= budget:
            break
        if msg.get("role") == "tool" and len(msg.get("content") or "") > 200:
            shrunk = {**msg, "content": _shrink_tool_content(msg.get("content") or "")}
            size = _size(shrunk)
            total += size - sizes[i]
            out[i], sizes[i] = shrunk, size
    starts = [i for i, m in enumerate(out) if m.get("role") == "user"]
    cut, k = 0, 1
    while total > budget and k < len(starts):  # drop everything before the next turn's start
        total -= sum(sizes[cut : starts[k]])
        cut, k = starts[k], k + 1
    return out[cut:]


def _shrink_tool_content(content: str) -> str:
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        return content[:160] + "… (older tool output shortened)"
    if isinstance(data, dict) and "result_id" in data:
        keep = {k: data[k] for k in ("result_id", "row_count", "truncated") if k in data}
        keep["columns"] = [c.get("name") for c in data.get("columns", []) if isinstance(c, dict)][:30]
        keep["note"] = "older preview removed to save context; the full result is still in the notebook"
        return json.dumps(keep, ensure_ascii=False)
    return json.dumps({"note": "older tool output removed to save context"})
