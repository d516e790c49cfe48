"""The chat panel's controller: its state and actions over one ``Assistant``, with no widget.

The controller subscribes to the assistant (``Assistant.subscribe``) and shows every turn,
whoever asked (the panel, a ``%%nexus`` cell, code), live and in order, and every card follows
every confirmation outcome (``confirm.resolved``). Its state is a plain dict; each change goes
to ``sink`` as a patch (``{"messages": [...], "busy": True}``), applied at once and in order,
and one-off messages for the view (toasts) go to ``notify``. ``ChatPanel`` maps these onto
anywidget traits; a WebSocket adapter can map them onto its own frames.

State (nothing else reaches a view; no keys, no database URLs):

``messages``        the conversation, display-ready: ``{"key", "role": "user", "text"}`` and
                    answers (``answer_item``), a message's Markdown already rendered in ``html``
``conversations``   the user's conversations: id, title, updated_at, messages
``conversation_id`` the open conversation, ``None`` before the first question
``busy``            a turn (or a confirmed write and its follow-up) is running
``turn``            the running turn: ``{"id", "origin", "phase": "waiting"|"working", "steps"}``
``streaming``       the answer text so far, at most ``agent.live.UPDATES_PER_SECOND`` updates a second
``notice``          a problem the person should know about (empty when all is well)
``model_name``      what answers: "replay <cassette>", the model's name, or "no model configured"
``model_mode``      "live", "replay" or "unconfigured" (what the empty panel can promise)
``scope``           what the assistant may read and write, e.g. "organization acme-analytics"
``sql_cell``        template for "insert as cell" (``{sql}`` is replaced)
``suggestions``     the questions to offer as chips: a replay's recorded questions (all it can
                    answer), else empty (the view offers its own)
``label``           whose conversation this is: the notebook's name in JupyterLab, else empty

Actions (``handle``): ``ask {text}``, ``stop``, ``confirm {id, sql}``, ``cancel_confirm {id}``,
``new``, ``open {id}``, ``rename {id, title}``, ``delete {id}``, ``refresh``, ``dismiss``, and
from a view in JupyterLab's side area ``placed {host}`` and ``closed {host}``. To the view:
``toast {level, text}``. A step has exactly the fields of the ``agent.action`` event
(``AgentAction.step()``), from the event to the JavaScript. A running turn is folded from its
events by ``agent.live.TurnState``, as in every other live view.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from concurrent.futures import wait as futures_wait
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Protocol

from ..agent.events import (
    AgentAction,
    AgentText,
    ConfirmResolved,
    ErrorEvent,
    Event,
    SessionId,
    TurnCompleted,
    TurnStarted,
)
from ..agent.live import Throttle, TurnState
from ..agent.responses import response_json
from ..agent.transcript import AnswerItem, QuestionItem
from ..agent.turn import Turn
from ..replay.demo import replay_questions, restore_for_replay
from ..replay.questions import unrecorded_text
from ..safetext import safe_response, visible, visible_lines
from ..words import UI, cost_text, outcome_text, plural, step_words, steps_label
from .html import confirm_blocked, markdown_html, preview_html, with_shown_text

if TYPE_CHECKING:
    from ..agent.assistant import Assistant
    from ..agent.confirm import Outcome
    from ..agent.conversations import Thread
    from ..agent.provider import ModelSettings
    from ..agent.transcript import Item
    from ..agent.turn import TurnResult
    from ..config import RememberedIdentity
    from ..db.store import ConversationInfo

log = logging.getLogger(__name__)

Sink = Callable[[dict[str, Any]], None]


class PanelAssistant(Protocol):
    """What the panel needs of an ``Assistant``: its public calls, nothing else."""

    settings: ModelSettings

    @property
    def thread(self) -> Thread: ...
    @property
    def scope_label(self) -> str: ...
    @property
    def model_mode(self) -> str: ...
    def subscribe(self, callback: Callable[[Event], None], *, weak: bool = False) -> Callable[[], None]: ...
    def start(self, question: str, *, origin: str, model: str | None = None) -> Turn: ...
    def cancel(self) -> None: ...
    def confirm_and_start(self, proposal_id: str, sql: str | None = None, *, origin: str) -> tuple[Outcome, Turn]: ...
    def decline(self, proposal_id: str) -> Outcome: ...
    def new_thread(self) -> None: ...
    def resume(self, conversation_id: str) -> None: ...
    def rename(self, conversation_id: str, title: str) -> None: ...
    def delete(self, conversation_id: str) -> None: ...
    def conversations(self) -> list[ConversationInfo]: ...
    def transcript(self, conversation_id: str | None = None) -> list[Item]: ...


class PanelSession(Protocol):
    """What the panel needs of the kernel's session (``session.py``, a floor above, which hands
    itself in): its assistant, where a turn's DataFrames go, and what it remembers."""

    memory: RememberedIdentity | None

    @property
    def assistant(self) -> PanelAssistant: ...
    def record(self, result: TurnResult) -> None: ...
    def reset(self) -> None: ...
    def resume(self, conversation_id: str) -> str: ...
    def remember(self, **fields: Any) -> None: ...


if TYPE_CHECKING:

    def _an_assistant_is_one(assistant: Assistant) -> PanelAssistant:
        return assistant  # mypy checks the Assistant against what the panel needs


class ChatController:
    """What the chat panel shows and does, over one ``Assistant``; views only apply patches."""

    def __init__(
        self,
        assistant: PanelAssistant,
        *,
        sink: Sink,
        notify: Callable[[dict[str, Any]], None] | None = None,
        session: PanelSession | None = None,
        restore: bool = True,
        executor: Executor | None = None,
        label: str = "",
    ) -> None:
        """``executor`` (a server's bounded pool of turn threads) runs the panel's own work; by
        default each question gets a thread of its own. ``restore`` shows the assistant's open
        conversation (else the panel starts empty); ``label`` names whose panel it is."""
        self.assistant = assistant
        self._executor = executor
        self.session = session
        self._sink = sink
        self._notify = notify or (lambda message: None)
        self._lock = threading.RLock()  # state and its patches, in order; never held into the throttle
        self.state: dict[str, Any] = {
            "messages": [],
            "conversations": [],
            "conversation_id": None,
            "busy": False,
            "turn": {},
            "streaming": "",
            "notice": "",
            "sql_cell": "%%nexus sql\n{sql}",
            "model_name": _model_name(assistant),
            "model_mode": _model_mode(assistant),
            "scope": assistant.scope_label,
            "suggestions": replay_questions(assistant) or [],
            "label": label,
            "words": UI,
        }
        self._worker: threading.Thread | Future | None = None
        self._turn: Turn | None = None  # the panel's own question, while it runs
        self._turns: dict[str, TurnState] = {}  # started and not over, in the order they started
        self._stop_requested = False
        self._host: str | None = None
        self._stream: Throttle[TurnState] = Throttle(lambda live: self._apply(streaming=live.text.text))
        # Held weakly: a panel that goes away without closing (its page gone) stops following.
        self._unsubscribe = assistant.subscribe(self._on_event, weak=True)
        self._guard(self._restore if restore else self._refresh_list)

    # -- state -----------------------------------------------------------------------------------

    def _apply(self, **patch: Any) -> None:
        with self._lock:
            self.state.update(patch)
            self._sink(patch)

    def refresh_model(self) -> None:
        """Show the model the assistant answers with now (``%config Nexus.model`` changed it)."""
        name = _model_name(self.assistant)
        if name != self.state.get("model_name"):
            self._apply(
                model_name=name,
                model_mode=_model_mode(self.assistant),
                suggestions=replay_questions(self.assistant) or [],
            )

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.state["messages"]

    def close(self) -> None:
        """Stop following the assistant (the view went away)."""
        self._unsubscribe()
        self._unsubscribe = lambda: None
        self._stream.flush()

    # -- actions ---------------------------------------------------------------------------------

    def handle(self, msg: Mapping[str, Any]) -> None:
        """Act on one message from a view (tests call this exactly as the front end does)."""
        action = _ACTIONS.get(str(msg.get("type")))
        if action is None:
            log.warning("chat panel: unknown message %r", msg.get("type"))
            return
        self._guard(lambda: action(self, msg))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the panel's own work (a question, a confirmation) is over; True when idle."""
        worker = self._worker
        if isinstance(worker, Future):
            futures_wait([worker], timeout)
            return worker.done()
        if worker is not None:
            worker.join(timeout)
            if worker.is_alive():
                return False
        turn = self._turn
        if turn is not None:
            try:
                turn.result(timeout)
            except TimeoutError:
                return False
        return True

    def _on_ask(self, msg: Mapping[str, Any]) -> None:
        question = str(msg.get("text") or "").strip()
        if not question or not self._can_start("ask a new question"):
            return
        recorded = replay_questions(self.assistant)
        if recorded is not None and question not in recorded:
            self._answer_locally(question, unrecorded_text(question, recorded, offered=True))
            return

        self._stop_requested = False
        if recorded is None:
            self._ask_now(question)
            return

        def restore_then_ask() -> None:
            restored = restore_for_replay(self.assistant)
            if restored:
                self._toast("info", restored)
            self._ask_now(question)

        self._start(restore_then_ask)

    def _ask_now(self, question: str) -> None:
        with self._lock:  # a Stop is either before (nothing starts) or after (it stops the turn)
            if self._stop_requested:
                return
            turn = self._turn = self.assistant.start(question, origin="panel")
        if self.session is not None:
            turn.add_done_callback(self.session.record)  # the turn's DataFrames land in the notebook too

    def _answer_locally(self, question: str, text: str) -> None:
        """A reply the panel gives itself, with no turn (a replay cannot answer it): shown, not stored."""
        key = _key("l")
        with self._lock:
            self._append({"key": f"u{key}", "role": "user", "text": visible_lines(question)})
            self._append(answer_item(f"a{key}", {"type": "message", "text": text}, [], []))

    def _on_stop(self, msg: Mapping[str, Any]) -> None:
        if self.state["busy"]:
            with self._lock:
                self._stop_requested = True
            self.assistant.cancel()  # every turn shown here, the panel's own among them

    def _on_confirm(self, msg: Mapping[str, Any]) -> None:
        proposal_id, sql = str(msg.get("id") or ""), msg.get("sql")
        if not self._can_start("confirm"):
            return
        card = self._card(proposal_id)
        if card is None:
            self._toast("error", "That proposal is not in the open conversation; nothing was run.")
            return
        if card.get("outcome"):
            self._toast("error", "This change was already handled; ask again for a fresh proposal.")
            return
        if card.get("blocked"):  # the button is disabled; a click that arrives anyway runs nothing
            self._toast("error", f"{card['blocked']} Nothing was run.")
            return
        self._set_outcome(proposal_id, {"status": "running"})
        from ..agent.confirm import ConfirmationError

        try:  # the write runs here, once; the turn that reports it runs as the assistant runs turns
            _, turn = self.assistant.confirm_and_start(proposal_id, sql, origin="panel")  # confirm.resolved shows it
        except ConfirmationError as exc:
            self._set_outcome(proposal_id, {"status": "failed", "error": str(exc)})
            return
        with self._lock:
            self._turn = turn

    def _on_cancel_confirm(self, msg: Mapping[str, Any]) -> None:
        proposal_id = str(msg.get("id") or "")
        if not self._can_start("cancel the change"):
            return
        from ..agent.confirm import ConfirmationError

        try:
            self.assistant.decline(proposal_id)  # confirm.resolved shows it
        except ConfirmationError as exc:
            self._set_outcome(proposal_id, {"status": "failed", "error": str(exc)})
        self._refresh_list()

    def _on_new(self, msg: Mapping[str, Any]) -> None:
        if not self._can_start("start a new conversation"):
            return
        if self.session is not None:
            self.session.reset()
        else:
            self.assistant.new_thread()
        with self._lock:
            self._apply(messages=[], conversation_id=None)
            self._refresh_list()

    def _on_open(self, msg: Mapping[str, Any]) -> None:
        if not self._can_start("open another conversation"):
            return
        self._show(self._resume(str(msg.get("id") or "")))

    def _on_rename(self, msg: Mapping[str, Any]) -> None:
        self.assistant.rename(str(msg.get("id") or ""), str(msg.get("title") or ""))
        self._refresh_list()

    def _on_delete(self, msg: Mapping[str, Any]) -> None:
        conversation_id = str(msg.get("id") or "")
        if conversation_id == self.state["conversation_id"] and not self._can_start("delete the open conversation"):
            return
        self.assistant.delete(conversation_id)
        with self._lock:
            if conversation_id == self.state["conversation_id"]:
                self._apply(messages=[], conversation_id=None)
            self._refresh_list()

    def _on_refresh(self, msg: Mapping[str, Any]) -> None:
        self._refresh_list()

    def _on_dismiss(self, msg: Mapping[str, Any]) -> None:
        self._apply(notice="")

    def _on_placed(self, msg: Mapping[str, Any]) -> None:
        self._host = str(msg.get("host") or "")
        if self.session is not None:
            self.session.remember(panel_open=True)

    def _on_closed(self, msg: Mapping[str, Any]) -> None:
        # Only the tab shown last counts: a re-opened panel's old tab closes after the new one opened.
        if self.session is not None and str(msg.get("host") or "") == self._host:
            self.session.remember(panel_open=False)

    # -- the panel's own work ------------------------------------------------------------------

    def _can_start(self, what: str) -> bool:
        if self.state["busy"]:
            self._toast("info", f"Still working on the last question: stop it first to {what}.")
            return False
        return True

    def _start(self, work: Callable[[], Any]) -> None:
        self._stop_requested = False
        self._apply(busy=True)

        def run() -> None:
            try:
                work()
            except Exception as exc:  # the view must survive anything the turn throws
                log.exception("chat panel turn failed")
                with self._lock:
                    self._append(answer_item(_key("a"), None, [], [], error=f"The turn failed unexpectedly: {exc}"))
            finally:
                with self._lock:
                    self._worker = None
                self._settle()

        if self._executor is not None:
            with self._lock:  # run's finally clears _worker: it must not run before it is set
                self._worker = self._executor.submit(run)
            return
        self._worker = threading.Thread(target=run, name="nexus-panel-turn", daemon=True)
        self._worker.start()

    def _settle(self) -> None:
        """Idle again once no turn runs and the panel's own work is over."""
        self._stream.flush()
        with self._lock:
            if self._turns or self._worker is not None:
                return
            self._apply(busy=False, turn={}, streaming="")
            self._guard(self._refresh_list)

    # -- every turn of the assistant, whoever asked -----------------------------------------------

    def _on_event(self, event: Event) -> None:
        match event:
            case ConfirmResolved():
                self._on_resolved(event)
                return
            case TurnStarted():
                self.refresh_model()  # a turn asks the model the assistant has now
                self._on_started(event)
                return
        turn_id = event.turn_id or "-"
        live = self._turns.get(turn_id)
        if live is None:
            return  # a turn that started before this panel was there
        live.apply(event)
        match event:
            case SessionId():
                self._on_session(event.session_id)
            case AgentAction():
                self._apply(turn=_turn_view(live))
            case AgentText():
                self._stream.push(live)  # its text is read when it is sent: each edit costs its delta
                if event.status == "done":
                    self._stream.flush()
            case TurnCompleted() | ErrorEvent():
                self._stream.flush()
                with self._lock:
                    self._turns.pop(turn_id, None)
                    self._append(_answer(live))  # the answer replaces the live turn in one update
                    self._apply(turn={}, streaming="")
                    following = next(iter(self._turns.values()), None)
                    if following is not None:
                        self._begin(following)
                    if self._turn is not None and self._turn.id == turn_id:
                        self._turn = None
                self._settle()

    def _on_started(self, event: TurnStarted) -> None:
        live = TurnState.of(event)
        with self._lock:
            waiting = bool(self._turns)
            self._turns[live.id or "-"] = live
            self._apply(busy=True)
            if not waiting:  # a turn asked while another runs waits for it, and shows after it
                self._begin(live)

    def _begin(self, live: TurnState) -> None:
        if not live.reports:  # the follow-up of a confirmation: its card shows the outcome
            self._append({"key": f"u{live.id}", "role": "user", "text": visible_lines(live.question)})
        self._apply(turn=_turn_view(live), streaming="")

    def _on_session(self, conversation_id: str) -> None:
        with self._lock:
            if self.state["conversation_id"] == conversation_id:
                return
            if self.state["conversation_id"] is not None:
                # another conversation (a cell resumed or started one): show it, then the live turn
                shown = [i for i in self._items(conversation_id)]
                live = [
                    m
                    for m in self.state["messages"]
                    if m.get("key", "").startswith("u") and m["key"][1:] in self._turns
                ]
                if shown and live and shown[-1].get("role") == "user" and shown[-1].get("text") == live[-1].get("text"):
                    shown = shown[:-1]  # the running question, stored already
                self._apply(messages=shown + live)
            self._apply(conversation_id=conversation_id)
            self._guard(self._refresh_list)

    def _on_resolved(self, event: ConfirmResolved) -> None:
        outcome: dict[str, Any] = {"id": event.proposal_id, "status": event.status}
        if event.rows_affected is not None:
            outcome["rows_affected"] = event.rows_affected
        if event.error:
            outcome["error"] = visible_lines(event.error)
        self._set_outcome(event.proposal_id, outcome)

    # -- conversations -----------------------------------------------------------------------------

    def _restore(self) -> None:
        """Show the assistant's own conversation: a notebook's panel shows that notebook's (a new
        notebook: a new one). Another conversation opens only on purpose, from the history."""
        if self.assistant.thread.id:
            self._show(self.assistant.thread.id)
        else:
            self._refresh_list()

    def _resume(self, conversation_id: str) -> str:
        if self.session is not None:
            return self.session.resume(conversation_id)  # keeps the notebook's frames in order
        self.assistant.resume(conversation_id)
        return conversation_id

    def _show(self, conversation_id: str) -> None:
        items = self._items(conversation_id)
        with self._lock:
            self._apply(messages=items, conversation_id=conversation_id)
            self._refresh_list()

    def _items(self, conversation_id: str) -> list[dict[str, Any]]:
        return items_from_transcript(self.assistant.transcript(conversation_id))

    def _refresh_list(self) -> None:
        self._apply(
            conversations=[
                {
                    **{k: c[k] for k in ("id", "title", "updated_at", "messages")},
                    "size": plural(c["messages"], "message"),
                }
                for c in (info.as_dict() for info in self.assistant.conversations())
            ]
        )

    def _append(self, item: dict[str, Any]) -> None:
        with self._lock:
            self._apply(messages=[*self.state["messages"], item])

    def _card(self, proposal_id: str) -> dict[str, Any] | None:
        for item in reversed(self.state["messages"]):
            response = item.get("response") or {}
            if response.get("type") == "confirm" and response.get("id") == proposal_id:
                return item
        return None

    def _set_outcome(self, proposal_id: str, outcome: dict[str, Any]) -> None:
        if outcome.get("status") in ("confirmed", "cancelled", "failed"):
            outcome = {**outcome, "text": outcome_text(outcome)}  # the cell card's words
        with self._lock:
            messages = self.state["messages"]
            updated = [
                {**item, "outcome": outcome}
                if (item.get("response") or {}).get("type") == "confirm" and item["response"].get("id") == proposal_id
                else item
                for item in messages
            ]
            if updated != messages:
                self._apply(messages=updated)

    def _toast(self, level: str, text: str) -> None:
        self._notify({"type": "toast", "level": level, "text": text})

    def _guard(self, action: Callable[[], Any]) -> None:
        """Run a request; a failure becomes one clear toast (and the notice), never a traceback."""
        try:
            action()
        except Exception as exc:
            log.debug("chat panel request failed", exc_info=True)
            text = _describe(exc)
            self._toast("error", text)
            if not self.state["messages"]:
                self._apply(notice=text)


_ACTIONS: dict[str, Callable[[ChatController, Mapping[str, Any]], None]] = {
    "ask": ChatController._on_ask,
    "stop": ChatController._on_stop,
    "confirm": ChatController._on_confirm,
    "cancel_confirm": ChatController._on_cancel_confirm,
    "new": ChatController._on_new,
    "open": ChatController._on_open,
    "rename": ChatController._on_rename,
    "delete": ChatController._on_delete,
    "refresh": ChatController._on_refresh,
    "dismiss": ChatController._on_dismiss,
    "placed": ChatController._on_placed,
    "closed": ChatController._on_closed,
}


def _model_name(assistant: PanelAssistant) -> str:
    return model_label(assistant.settings)


def _model_mode(assistant: PanelAssistant) -> str:
    return assistant.model_mode


def model_label(settings: ModelSettings) -> str:
    """What answers in this panel, for its header: never a model's name when none is configured."""
    mode = settings.mode
    if mode == "replay":
        return f"replay {PurePath(str(settings.replay)).name}"
    if mode == "unconfigured":
        return "no model configured"
    return str(settings.model or "")


def _describe(exc: Exception) -> str:
    from ..db.errors import QueryError

    if isinstance(exc, QueryError):
        return str(exc)
    return f"The chat panel could not do that: {type(exc).__name__}: {exc}"


def _key(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


# -- display items -------------------------------------------------------------------------------


def answer_item(
    key: str,
    response: Mapping[str, Any] | None,
    notes: Sequence[str],
    steps: Sequence[AgentAction],
    error: str | None = None,
    cancelled: bool = False,
    elapsed_ms: float | None = None,
    usage: Mapping[str, int] | None = None,
    outcome: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An answer as the panel shows it, live or from a transcript: its texts made safe here, once,
    and a message's Markdown rendered here, once (markdown-it, the cells' rules).

    An answer whose time or tokens are known carries ``cost``, its collapsed steps line
    ("Ran 3 steps · 4.2 s · 2,140 tokens"), worded by the same function as the cell's."""
    notes = [visible(str(n)) for n in notes]
    item: dict[str, Any] = {
        "key": key,
        "role": "assistant",
        "response": with_shown_text(safe_response(response)),
        "notes": notes,
        "steps": [_safe_step(s) for s in steps],
    }
    shown = item["response"] or {}
    if not error and (elapsed_ms is not None or (usage or {}).get("total_tokens")):
        item["cost"] = cost_text(len(steps), elapsed_ms, usage)
    failed = sum(s.status == "failed" for s in steps)
    stopped = sum(s.status in (None, "started") for s in steps)  # cut short by Stop
    item["steps_label"] = steps_label(len(steps), live=False, cost=item.get("cost"), failed=failed, stopped=stopped)
    item["step_words"] = [step_words(s) for s in item["steps"]]  # beside each step: its tool and facts in words
    if notes:
        item["notes_label"] = UI["notes"].format(notes=plural(len(notes), "note"))
    if shown.get("type") == "message":
        item["html"] = markdown_html(str(shown.get("text") or ""))
    if shown.get("type") == "confirm":
        item["blocked"] = confirm_blocked(shown)  # why Confirm is off, in the cell card's words
        item["preview_html"] = preview_html(shown)  # the write preview, rendered (and escaped) as in the cell
        if outcome:
            shown_outcome = {k: v for k, v in dict(outcome).items() if v is not None}
            item["outcome"] = {**shown_outcome, "text": outcome_text(shown_outcome)}
    if error:
        item["error"] = visible_lines(str(error))
    if cancelled:
        item["cancelled"] = True
    return item


def _safe_step(step: AgentAction) -> dict[str, Any]:
    safe = step.step()
    for key in ("command", "path", "error"):
        value = safe[key]
        if isinstance(value, str):
            safe[key] = visible_lines(value)
    return safe


def items_from_transcript(transcript: Sequence[Item]) -> list[dict[str, Any]]:
    """Display items for a stored conversation (``Assistant.transcript``): questions, and answers
    with their steps (a confirmation's card carries its outcome)."""
    items: list[dict[str, Any]] = []
    for number, entry in enumerate(transcript):
        key = f"t{number}"
        if isinstance(entry, QuestionItem):
            items.append({"key": key, "role": "user", "text": visible_lines(entry.text)})
        elif isinstance(entry, AnswerItem):
            items.append(
                answer_item(
                    key,
                    entry.response_dict(),
                    entry.notes,
                    entry.steps,
                    entry.error,
                    entry.cancelled,
                    entry.elapsed_ms,
                    entry.usage,
                    entry.outcome,
                )
            )
        # an OutcomeItem without its card: the card is not in this conversation, nothing to update
    return items


# -- a running turn, as the panel shows it ----------------------------------------------------


def _turn_view(live: TurnState) -> dict[str, Any]:
    """The running turn's trait. New values each time: an in-place change would never be sent."""
    steps = [_safe_step(s) for s in live.steps.values()]
    return {
        "id": live.id,
        "origin": live.origin,
        "phase": "working" if live.steps else "waiting",
        "steps": steps,
        "label": steps_label(len(steps), live=True),
        "step_words": [step_words(s) for s in steps],
    }


def _answer(live: TurnState) -> dict[str, Any]:
    steps = list(live.steps.values())
    done = live.completed
    if done is None:
        return answer_item(f"a{live.id}", None, [], steps, live.error, live.cancelled)
    response = response_json(done.response) if done.response is not None else None
    return answer_item(f"a{live.id}", response, done.notes, steps, elapsed_ms=done.elapsed_ms, usage=done.usage)


__all__ = ["ChatController", "answer_item", "items_from_transcript", "model_label"]
