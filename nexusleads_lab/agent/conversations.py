"""The assistant's conversations: the thread it continues and the stored ones it lists, loads, leases and edits.

Each message is kept in the thread and, when the assistant persists, in the conversation store
as it completes; a turn holds the stored conversation's lease (``db.lease``) while it runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..db.errors import QueryError
from ..db.frames import Frames
from ..db.lease import LEASES, Abandoned, Taken
from .history import model_tail
from .transcript import Item, TranscriptPage, history_row
from .turn import Cancelled

if TYPE_CHECKING:  # pragma: no cover
    from ..db.store import ConversationInfo, ConversationStore
    from .completion import PreparedCall
    from .confirm import Outcome
    from .tools import ToolOutcome


@dataclass
class Thread:
    """The conversation being continued: its stored id (None until its first turn), the messages
    the model may be sent, and the DataFrames its results made."""

    id: str | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    frames: Frames = field(default_factory=Frames)
    next_result: int = 1


class Conversations:
    """The current thread and the stored conversations of one assistant's store."""

    def __init__(self, store: Callable[[], ConversationStore | None], token_budget: Callable[[], int]) -> None:
        self._store = store  # the assistant's, built on first use; None: nothing is kept
        self._token_budget = token_budget
        self.thread = Thread(id=None)
        self._lease_waits = 0  # bumped by stop_waiting(): a lease wait outside a turn stops
        self._taken: tuple[str, Taken] | None = None  # a lease taken with a new conversation (start)

    def _stored(self) -> ConversationStore:
        store = self._store()
        if store is None:
            raise ValueError("This assistant keeps no conversations (it was made with persist=False).")
        return store

    def new_thread(self) -> None:
        self.thread = Thread(id=None)

    def listing(self) -> list[ConversationInfo]:
        store = self._store()
        return store.list() if store else []

    def resume(self, conversation_id: str) -> None:
        self.thread = self._load(conversation_id)

    def _load(self, conversation_id: str, keep: Thread | None = None) -> Thread:
        """A stored conversation as a thread; ``keep``: the thread it refreshes (its DataFrames stay)."""
        store = self._stored()
        info = store.get(conversation_id)  # read first: a later write shows as a later updated_at
        messages = model_tail(store, info.id, self._token_budget())
        store.seen[info.id] = info.updated_at
        thread = Thread(id=info.id, messages=messages, next_result=store.highest_result(info.id) + 1)
        if keep is not None and keep.id == info.id:
            thread.frames, thread.next_result = keep.frames, max(thread.next_result, keep.next_result)
        return thread

    def stop_waiting(self) -> None:
        """End every lease wait that was given no ``cancelled`` of its own."""
        self._lease_waits += 1

    @contextlib.contextmanager
    def lease(self, cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
        """Hold the current conversation's turn lease for the block (see ``Assistant.conversation_turn``)."""
        store, conversation_id = self._store(), self.thread.id
        if store is None or conversation_id is None:
            yield
            return
        taken = None
        if self._taken is not None:
            taken_id, taken = self._taken
            self._taken = None
            if taken_id != conversation_id:  # started, then left for another: its turn never comes
                LEASES.not_taking(taken.holder)
                taken = None
        if cancelled is None:
            waits = self._lease_waits
            cancelled = lambda: self._lease_waits != waits  # noqa: E731
        with contextlib.ExitStack() as stack:
            try:
                held = stack.enter_context(LEASES.hold(store, conversation_id, cancelled=cancelled, taken=taken))
            except Abandoned:
                raise Cancelled() from None
            except QueryError:
                raise
            except Exception as exc:
                raise QueryError(f"The conversation store cannot be reached: {exc}") from None
            if held.claimed is not None and held.claimed != store.seen.get(conversation_id):
                self.thread = self._load(conversation_id, keep=self.thread)
            yield

    def append(self, message: dict[str, Any], *, meta: dict | None = None, kind: str | None = None) -> None:
        """Add a message to the thread and, if it is stored, to its stored conversation."""
        self._keep([(message, meta, kind)])

    def _keep(self, messages: list[tuple[dict[str, Any], dict | None, str | None]], *, last: bool = False) -> None:
        """Add messages that complete together (message, meta, kind) to the thread and, if it is
        stored, to its stored conversation in one write: a reader sees all of them or none.
        ``last``: the turn's last write, which gives back the lease this thread's turn holds."""
        stored: list[tuple[str, dict[str, Any]]] = []
        for message, meta, kind in messages:
            clean = {k: v for k, v in message.items() if v is not None or k == "content"}
            self.thread.messages.append(clean)
            content: dict[str, Any] = {"message": clean}
            if meta:
                content["meta"] = meta
            if kind:
                content["kind"] = kind
            stored.append((clean["role"], content))
        store, conversation_id = self._store(), self.thread.id
        if store is None or not conversation_id:
            return
        if not last:
            store.append_all(conversation_id, stored)
            return
        with LEASES.giving_back(conversation_id) as holder:
            store.append_all(conversation_id, stored, release=holder)

    def record_question(self, question: str, *, reports: Outcome | None = None) -> None:
        """A turn's question; a confirmation's follow-up (``reports``) keeps its outcome beside its line."""
        if reports is not None:
            self.record_outcome(reports, acknowledged=False)
        else:
            self.append({"role": "user", "content": question})

    def record_answer(self, text: str, meta: dict[str, Any]) -> None:
        """The turn's answer, its last write: the turn's lease goes back with it, in one statement."""
        self._keep([({"role": "assistant", "content": text}, meta, None)], last=True)

    def record_failure(self, message: str, *, cancelled: bool, elapsed_ms: float | None) -> None:
        """A turn that ended early, noted so the thread stays well-formed for the next question (a
        question is answered); the transcript reads the meta."""
        if self.thread.messages and self.thread.messages[-1].get("role") != "assistant":
            self.append(
                {"role": "assistant", "content": f"(The previous turn ended early: {message})"},
                meta={"error": message, "cancelled": cancelled, "elapsed_ms": elapsed_ms},
                kind="note",
            )

    def record_calls(self, text: str, calls: list[tuple[PreparedCall, ToolOutcome]]) -> None:
        """One step's tool calls: the assistant message that makes them, then each one's result.
        Written as the step completes, not with the turn's next write (one statement less, but
        that write waits for the model): a transcript read, a view reconnecting or another replica
        resuming the conversation meanwhile sees every finished step, and a crash loses at most
        the step that was running."""
        step: list[tuple[dict[str, Any], dict | None, str | None]] = [
            (
                {"role": "assistant", "content": text or None, "tool_calls": [_call_message(c) for c, _ in calls]},
                None,
                None,
            )
        ]
        for _, outcome in calls:
            meta = {"result_id": outcome.result_id, "ok": outcome.ok, "elapsed_ms": round(outcome.elapsed_ms, 1)}
            if outcome.result is not None:
                meta.update(sql=outcome.result.sql, rows=outcome.result.row_count, truncated=outcome.result.truncated)
            step.append(({"role": "tool", "tool_call_id": outcome.call_id, "content": outcome.content}, meta, None))
        self._keep(step)

    def record_refusal(self, text: str, paragraph: str) -> None:
        """A proposal the confirmations refused, and why, for the model to read and correct."""
        self._keep(
            [
                ({"role": "assistant", "content": text}, {"refused": paragraph}, None),
                ({"role": "user", "content": f"CONFIRM_REFUSED: {paragraph}"}, None, "confirm_refused"),
            ]
        )

    def record_outcome(self, outcome: Outcome, *, acknowledged: bool) -> None:
        """A confirmation's outcome line, the one the agent reads, kept with the outcome itself so no
        view ever parses it back out of prose; ``acknowledged``: with the assistant's reply (when no
        follow-up turn answers it)."""
        lines: list[tuple[dict[str, Any], dict | None, str | None]] = [
            ({"role": "user", "content": outcome.report()}, {"outcome": outcome.as_dict()}, "confirm_action")
        ]
        if acknowledged:
            lines.append(({"role": "assistant", "content": _acknowledge(outcome)}, None, "confirm_action"))
        self._keep(lines)

    def history(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        cid = conversation_id or self.thread.id
        store = self._store()
        if not cid or not store:
            return []
        return [history_row(m) for m in store.messages(cid)]

    def transcript(self, conversation_id: str | None = None) -> list[Item]:
        from .transcript import build

        return build(self.history(conversation_id))

    def page(self, conversation_id: str, *, limit: int, before: int | None = None) -> TranscriptPage:
        from .transcript import page

        return page(self._stored(), conversation_id, limit=limit, before=before)

    def rename(self, conversation_id: str, title: str) -> None:
        self._stored().rename(conversation_id, title)

    def delete(self, conversation_id: str) -> None:
        self._stored().delete(conversation_id)
        if self.thread.id == conversation_id:
            self.new_thread()

    def start(self, title: str, model: str, *, lease: bool = False) -> ConversationInfo:
        """A new stored conversation to continue in. ``lease``: its first turn follows at once (a
        server's question), so the turn's lease is taken in the same statement and that turn's
        ``lease`` holds it without a claim of its own (one round trip less). If that turn never
        comes, the lease runs out (``db.lease.TTL``), or another turn of this process takes it over."""
        store = self._stored()
        if not lease:
            info = store.start(title=title, model=model)
        else:
            holder, at = LEASES.new_holder(), time.monotonic()
            LEASES.taking(holder)
            try:
                info = store.start(title=title, model=model, holder=holder, ttl_s=LEASES.ttl)
            except BaseException:
                LEASES.not_taking(holder)
                raise
            self._taken = (info.id, Taken(holder, info.updated_at, at))
        self.thread.id = info.id
        return info


def _acknowledge(outcome: Outcome) -> str:
    from ..words import outcome_text
    from .responses import Message

    return Message(type="message", text=outcome_text(outcome.as_dict())).model_dump_json()


def _call_message(call: PreparedCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.sent_arguments}}
