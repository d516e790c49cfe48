"""The chat panel: the original ChatSidecar as an anywidget beside the notebooks.

The widget is a thin view over one ``Assistant``: the browser sends requests as custom
messages, turns run on a worker thread (so the kernel stays free to receive Stop), and
what the person sees comes back through a handful of synced traits. The conversation lives
in the kernel-side model, so a page reload shows it again; a new panel after a kernel
restart resumes the user's latest stored conversation.

Synced state (nothing else reaches the browser; no keys, no database URLs):

``messages``        the current conversation, display-ready (see ``items_from_history``)
``conversations``   the user's conversations: id, title, updated_at, messages
``conversation_id`` the open conversation, ``None`` before the first question
``busy``            a turn (or a confirmed write and its follow-up) is running
``turn``            the running turn: ``{"phase": "waiting"|"working"|"done", "steps": [...]}``
``streaming``       the answer text so far, at most ``STREAM_RATE`` updates per second
``notice``          a problem the person should know about (empty when all is well)
``model_name``      what answers: "replay <cassette>", the model's name, or "no model configured"
``scope``           what the assistant may read and write, e.g. "organization acme-analytics", for the header
``sql_cell``        template for "insert as cell" (``{sql}`` is replaced)

Messages from the browser (``model.send``): ``ask {text}``, ``stop``, ``confirm {id, sql}``,
``cancel_confirm {id}``, ``new``, ``open {id}``, ``rename {id, title}``, ``delete {id}``,
``refresh``, ``dismiss``, and from a view in JupyterLab's side area ``placed {host}`` and
``closed {host}`` (its tab was closed), so the notebook remembers whether the panel was open.
To the browser: ``toast {level, text}``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
import weakref
from pathlib import PurePath
from typing import Any, Callable

import anywidget
import traitlets as t

from ..agent.events import ShownText
from ..safetext import safe_response, visible, visible_lines
from .assets import asset
from .html import confirm_blocked, cost_text

log = logging.getLogger(__name__)

STREAM_RATE = 25  # streaming-text syncs per second, at most


class ChatPanel(anywidget.AnyWidget):
    """The conversation beside the notebooks: ask, watch the steps, get dashboards, confirm writes."""

    _esm = asset("panel.js")
    _css = asset("panel.css")

    messages = t.List(t.Dict()).tag(sync=True)
    conversations = t.List(t.Dict()).tag(sync=True)
    conversation_id = t.Unicode(None, allow_none=True).tag(sync=True)
    busy = t.Bool(False).tag(sync=True)
    turn = t.Dict().tag(sync=True)
    streaming = t.Unicode("").tag(sync=True)
    notice = t.Unicode("").tag(sync=True)
    model_name = t.Unicode("").tag(sync=True)
    scope = t.Unicode("").tag(sync=True)
    sql_cell = t.Unicode("%%nexus sql\n{sql}").tag(sync=True)

    def __init__(self, assistant=None, *, session=None, restore: bool = True, **kwargs: Any) -> None:
        """Over ``assistant``; or over ``session``'s (default: the kernel's), whose notebook then
        gets the DataFrames of the panel's turns too."""
        super().__init__(**kwargs)
        if assistant is None:
            if session is None:
                from ..session import get_session

                session = get_session()
            assistant = session.assistant
        self.assistant = assistant
        self.session = session
        self.model_name = model_label(getattr(assistant, "settings", None)) or str(getattr(assistant, "model", "") or "")
        self.scope = str(getattr(assistant, "scope_label", "") or "")
        self._lock = threading.RLock()
        self._worker: threading.Thread | None = None
        self._live: _LiveTurn | None = None
        self._stream = _Throttle(lambda shown: setattr(self, "streaming", shown.text), STREAM_RATE)
        self.on_msg(lambda _widget, content, _buffers: self.handle(content))
        self._guard(self._restore if restore else self._refresh_list)

    # -- the browser's requests -----------------------------------------------------------------

    def handle(self, msg: dict[str, Any]) -> None:
        """Act on one message from the browser (tests call this exactly as the front end does)."""
        action = _ACTIONS.get(str(msg.get("type")))
        if action is None:
            log.warning("chat panel: unknown message %r", msg.get("type"))
            return
        self._guard(lambda: action(self, msg))

    def ask(self, text: str) -> None:
        """Ask as if typed into the panel (returns at once; the turn runs on a worker thread)."""
        self.handle({"type": "ask", "text": text})

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running turn is over; True when idle."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    def _on_ask(self, msg: dict[str, Any]) -> None:
        question = str(msg.get("text") or "").strip()
        if not question:
            return
        if not self._can_start("ask a new question"):
            return
        with self.hold_sync():
            self._append({"key": _key("u"), "role": "user", "text": question})
            self._begin()

        def run(on_event):
            result = self.assistant.ask(question, on_event=on_event)
            if self.session is not None:
                self.session.record(result)  # the turn's DataFrames land in the notebook too

        self._start(run)

    def _on_stop(self, msg: dict[str, Any]) -> None:
        live = self._live
        if live is not None:
            live.stopped = True
            self.assistant.cancel()

    def _on_confirm(self, msg: dict[str, Any]) -> None:
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
        with self.hold_sync():
            self._set_outcome(proposal_id, {"status": "running"})
            self._begin(confirming=proposal_id)

        def run(on_event):
            from ..agent.confirm import ConfirmationError

            try:
                outcome = self.assistant.confirm(proposal_id, sql, follow_up=True, on_event=on_event)
            except ConfirmationError as exc:
                self._set_outcome(proposal_id, {"status": "failed", "error": str(exc)})
                return
            self._set_outcome(proposal_id, outcome.as_dict())

        self._start(run)

    def _on_cancel_confirm(self, msg: dict[str, Any]) -> None:
        proposal_id = str(msg.get("id") or "")
        if not self._can_start("cancel the change"):
            return
        from ..agent.confirm import ConfirmationError

        try:
            outcome = self.assistant.decline(proposal_id).as_dict()
        except ConfirmationError as exc:
            outcome = {"status": "failed", "error": str(exc)}
        self._set_outcome(proposal_id, outcome)
        self._refresh_list()

    def _on_new(self, msg: dict[str, Any]) -> None:
        if not self._can_start("start a new conversation"):
            return
        if self.session is not None:
            self.session.reset()
        else:
            self.assistant.new_thread()
        with self.hold_sync():
            self.messages = []
            self.conversation_id = None
            self._refresh_list()

    def _on_open(self, msg: dict[str, Any]) -> None:
        conversation_id = str(msg.get("id") or "")
        if not self._can_start("open another conversation"):
            return
        self._show(self._resume(conversation_id))

    def _on_rename(self, msg: dict[str, Any]) -> None:
        self.assistant.rename(str(msg.get("id") or ""), str(msg.get("title") or ""))
        self._refresh_list()

    def _on_delete(self, msg: dict[str, Any]) -> None:
        conversation_id = str(msg.get("id") or "")
        if conversation_id == self.conversation_id and not self._can_start("delete the open conversation"):
            return
        self.assistant.delete(conversation_id)
        with self.hold_sync():
            if conversation_id == self.conversation_id:
                self.messages = []
                self.conversation_id = None
            self._refresh_list()

    def _on_refresh(self, msg: dict[str, Any]) -> None:
        self._refresh_list()

    def _on_dismiss(self, msg: dict[str, Any]) -> None:
        self.notice = ""

    def _on_placed(self, msg: dict[str, Any]) -> None:
        self._host = str(msg.get("host") or "")
        if self.session is not None:
            self.session.remember(panel_open=True)

    def _on_closed(self, msg: dict[str, Any]) -> None:
        # Only the tab shown last counts: a re-opened panel's old tab closes after the new one opened.
        if self.session is not None and str(msg.get("host") or "") == getattr(self, "_host", None):
            self.session.remember(panel_open=False)

    # -- running a turn ---------------------------------------------------------------------------

    def _can_start(self, what: str) -> bool:
        if self.busy:
            self._toast("info", f"Still working on the last question: stop it first to {what}.")
            return False
        return True

    def _begin(self, confirming: str | None = None) -> None:
        self._live = _LiveTurn(confirming)
        self.busy = True
        self.turn = {"phase": "waiting", "steps": []}
        self.streaming = ""

    def _start(self, work: Callable[[Callable[[Any], None]], Any]) -> None:
        live = self._live

        def run() -> None:
            try:
                work(lambda event: self._on_event(live, event))
            except Exception as exc:  # the view must survive anything the turn throws
                log.exception("chat panel turn failed")
                live.error = live.error or f"The turn failed unexpectedly: {exc}"
            finally:
                self._finish(live)

        self._worker = threading.Thread(target=run, name="nexus-panel-turn", daemon=True)
        self._worker.start()

    def _on_event(self, live: _LiveTurn, event: Any) -> None:
        kind = event.type
        if live.stopped and kind != "turn.started":
            self.assistant.cancel()  # a Stop that came before the turn took its lock
        if kind == "turn.started":
            live.steps = {}
            if live.confirming:  # the follow-up's question reports the write: show it on the card now
                outcome = parse_report(event.question or "")
                if outcome and outcome["id"] == live.confirming:
                    self._set_outcome(live.confirming, outcome)
        elif kind == "session.id":
            if self.conversation_id != event.session_id:
                with self.hold_sync():
                    self.conversation_id = event.session_id
                    self._guard(self._refresh_list)
        elif kind == "agent.action":
            live.action(event)
            self.turn = {"phase": "working", "steps": live.snapshot()}
        elif kind == "agent.text":
            live.text.apply(event)
            self._stream.push(live.text)  # read when it is sent: each edit costs its delta
            if event.status == "done":
                self._stream.flush()
        elif kind in ("turn.completed", "error"):
            self._stream.flush()
            live.answered = True
            if kind == "error":
                item = live.answer(error=event.message, cancelled=live.stopped)
            else:
                item = live.answer(response=event.response, notes=event.notes, elapsed_ms=event.elapsed_ms, usage=event.usage)
            with self.hold_sync():  # the answer replaces the live turn in one update
                self._append(item)
                self.turn = {"phase": "done", "steps": []}
                self.streaming = ""

    def _finish(self, live: _LiveTurn) -> None:
        self._stream.flush()
        with self.hold_sync():
            if live.error and not live.answered:
                self._append(live.answer(error=live.error))
            self.busy = False
            self.turn = {}
            self.streaming = ""
            self._live = None
            self._guard(self._refresh_list)

    # -- state ------------------------------------------------------------------------------------

    def _restore(self) -> None:
        """Show the session's conversation, or resume the user's latest one (after a restart)."""
        thread = self.assistant.thread
        if thread.id is None and not thread.messages:
            latest = self.assistant.conversations()
            if latest:
                self._resume(latest[0].id)
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
        items = items_from_history(self.assistant.history(conversation_id))
        with self.hold_sync():
            self.messages = items
            self.conversation_id = conversation_id
            self._refresh_list()

    def _refresh_list(self) -> None:
        self.conversations = [
            {k: c[k] for k in ("id", "title", "updated_at", "messages")}
            for c in (info.as_dict() for info in self.assistant.conversations())
        ]

    def _append(self, item: dict[str, Any]) -> None:
        with self._lock:
            self.messages = [*self.messages, item]

    def _card(self, proposal_id: str) -> dict[str, Any] | None:
        for item in reversed(self.messages):
            response = item.get("response") or {}
            if response.get("type") == "confirm" and response.get("id") == proposal_id:
                return item
        return None

    def _set_outcome(self, proposal_id: str, outcome: dict[str, Any]) -> None:
        with self._lock:
            self.messages = [
                {**item, "outcome": outcome}
                if (item.get("response") or {}).get("type") == "confirm" and item["response"].get("id") == proposal_id
                else item
                for item in self.messages
            ]

    def _toast(self, level: str, text: str) -> None:
        self.send({"type": "toast", "level": level, "text": text})

    def _guard(self, action: Callable[[], Any]) -> None:
        """Run a request; a failure becomes one clear toast (and the notice), never a traceback."""
        try:
            action()
        except Exception as exc:
            log.debug("chat panel request failed", exc_info=True)
            text = _describe(exc)
            self._toast("error", text)
            if not self.messages:
                self.notice = text


_ACTIONS: dict[str, Callable[[ChatPanel, dict[str, Any]], None]] = {
    "ask": ChatPanel._on_ask,
    "stop": ChatPanel._on_stop,
    "confirm": ChatPanel._on_confirm,
    "cancel_confirm": ChatPanel._on_cancel_confirm,
    "new": ChatPanel._on_new,
    "open": ChatPanel._on_open,
    "rename": ChatPanel._on_rename,
    "delete": ChatPanel._on_delete,
    "refresh": ChatPanel._on_refresh,
    "dismiss": ChatPanel._on_dismiss,
    "placed": ChatPanel._on_placed,
    "closed": ChatPanel._on_closed,
}


def model_label(settings) -> str:
    """What answers in this panel, for its header: never a model's name when none is configured."""
    if settings is None:
        return ""
    mode = getattr(settings, "mode", "live")
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


# -- a running turn, as the panel shows it ----------------------------------------------------


class _LiveTurn:
    """Steps of the running turn (by call id) and the answers it has produced so far."""

    def __init__(self, confirming: str | None = None) -> None:
        self.confirming = confirming  # the proposal whose confirmation started this turn
        self.steps: dict[str, dict[str, Any]] = {}
        self.stopped = False
        self.answered = False
        self.error: str | None = None
        self.text = ShownText()  # the answer streaming in

    def action(self, event: Any) -> None:
        step = self.steps.setdefault(event.call_id, {"id": event.call_id, "tool": event.tool})
        step.update(
            {k: v for k, v in (
                ("status", event.status), ("sql", event.command), ("path", event.path), ("rows", event.rows),
                ("truncated", event.truncated), ("ms", event.elapsed_ms), ("error", event.error),
                ("result_id", event.result_id),
            ) if v is not None}  # fmt: skip
        )

    def snapshot(self) -> list[dict[str, Any]]:
        """Copies: a synced trait must get new values, or an in-place change would never be sent."""
        return [dict(step) for step in self.steps.values()]

    def answer(self, *, response=None, notes=(), error=None, cancelled=False, elapsed_ms=None, usage=None) -> dict[str, Any]:
        return _assistant_item(_key("a"), response, list(notes or ()), self.snapshot(), error, cancelled, elapsed_ms, usage)


def _assistant_item(key, response, notes, steps, error=None, cancelled=False, elapsed_ms=None, usage=None) -> dict[str, Any]:
    """An answer as the panel shows it, live or from history: its texts made safe here, once.

    An answer whose time or tokens are known carries ``cost``, its collapsed steps line
    ("Ran 3 steps · 4.2 s · 2,140 tokens"), worded by the same function as the cell's."""
    notes = [visible(str(n)) for n in notes]
    item: dict[str, Any] = {"key": key, "role": "assistant", "response": safe_response(response), "notes": notes, "steps": steps}
    if not error and (elapsed_ms is not None or (usage or {}).get("total_tokens")):
        item["cost"] = cost_text(len(steps), elapsed_ms, usage)
    if (item["response"] or {}).get("type") == "confirm":
        item["blocked"] = confirm_blocked(item["response"])  # why Confirm is off, in the cell card's words
    if error:
        item["error"] = visible_lines(str(error))
    if cancelled:
        item["cancelled"] = True
    return item


class _Throttle:
    """Pass values on at most ``rate`` times a second; the latest value always gets through."""

    def __init__(self, apply: Callable[[Any], None], rate: float) -> None:
        self._apply = apply
        self._interval = 1.0 / rate
        self._lock = threading.Lock()
        self._last = 0.0
        self._pending: Any = None
        self._dirty = False
        self._timer: threading.Timer | None = None

    def push(self, value: Any) -> None:
        with self._lock:
            self._pending, self._dirty = value, True
            wait = self._last + self._interval - time.monotonic()
            if wait <= 0:
                self._send()
            elif self._timer is None:
                self._timer = threading.Timer(wait, self._fire)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        with self._lock:
            if self._dirty:
                self._send()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            if self._dirty:
                self._send()

    def _send(self) -> None:  # under the lock, so values never arrive out of order
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._last = time.monotonic()
        self._dirty = False
        self._apply(self._pending)


# -- stored history -> display items ------------------------------------------------------------

_REPORT = re.compile(r"^CONFIRM_ACTION: (\S+) (confirmed|failed|cancelled)\b(?:: (.*))?", re.S)
_ENDED_EARLY = re.compile(r"^\(The previous turn ended early: (.*)\)$", re.S)  # Assistant._fail's note
_STEP_META = {"rows": "rows", "ms": "elapsed_ms", "truncated": "truncated", "result_id": "result_id", "sql": "sql"}


def parse_report(text: str) -> dict[str, Any] | None:
    """The outcome named by a ``CONFIRM_ACTION`` line (see ``Outcome.report``), or None."""
    match = _REPORT.match(text or "")
    if not match:
        return None
    proposal_id, status, rest = match.groups()
    outcome: dict[str, Any] = {"id": proposal_id, "status": status}
    if status == "confirmed":
        rows = re.match(r"\s*(\d+) rows? affected", rest or "")
        outcome["rows_affected"] = int(rows.group(1)) if rows else None
    elif status == "failed":
        outcome["error"] = (rest or "").strip()
    return outcome


def items_from_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Display items for stored messages: user questions, and answers with the steps behind them.

    Tool calls and their results become the steps of the next answer; ``CONFIRM_ACTION`` lines
    become the outcome on their confirmation card rather than bubbles of their own.
    """
    items: list[dict[str, Any]] = []
    steps: dict[str, dict[str, Any]] = {}
    cards: dict[str, dict[str, Any]] = {}
    for stored in history:
        role, kind = stored.get("role"), stored.get("kind")
        message = stored.get("message") or {}
        meta = stored.get("meta") or {}
        key = f"s{stored.get('seq')}"
        if role == "user":
            text = message.get("content") or ""
            outcome = parse_report(text)
            if outcome is not None:
                if outcome["id"] in cards:
                    cards[outcome["id"]]["outcome"] = outcome
                continue
            items.append({"key": key, "role": "user", "text": text})
            steps = {}
        elif role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                args = _loose_json(function.get("arguments"))
                steps[call.get("id")] = {
                    "id": call.get("id"),
                    "tool": function.get("name"),
                    "status": "started",
                    **({"sql": args.get("sql")} if function.get("name") == "psql" and args.get("sql") else {}),
                    **({"path": args.get("path")} if args.get("path") else {}),
                }
        elif role == "tool":
            step = steps.get(message.get("tool_call_id"))
            if step is not None:
                step["status"] = "completed" if meta.get("ok", True) else "failed"
                step.update({key: meta[name] for key, name in _STEP_META.items() if meta.get(name) is not None})
                if not meta.get("ok", True):
                    step["error"] = _loose_json(message.get("content")).get("error")
        elif role == "assistant":
            if kind == "confirm_action":
                continue  # the card carries the outcome
            if kind == "note":
                error = _ENDED_EARLY.sub(r"\1", message.get("content") or "")
                items.append(_assistant_item(key, None, [], list(steps.values()), error, error.startswith("Stopped")))
            else:
                response = meta.get("response") or _message_response(message.get("content"))
                item = _assistant_item(key, response, list(meta.get("notes") or []), list(steps.values()),
                                       elapsed_ms=meta.get("elapsed_ms"), usage=meta.get("usage"))  # fmt: skip
                if (response or {}).get("type") == "confirm":
                    cards[response.get("id")] = item
                items.append(item)
            steps = {}
    return items


def _loose_json(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except (TypeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _message_response(content: Any) -> dict[str, Any]:
    value = _loose_json(content)
    if value.get("type") == "message" and isinstance(value.get("text"), str):
        return {"type": "message", "text": value["text"]}
    return {"type": "message", "text": str(content or "")}


# -- opening it -----------------------------------------------------------------------------------

_panels: "weakref.WeakKeyDictionary[Any, ChatPanel]" = weakref.WeakKeyDictionary()


def panel_for(session) -> ChatPanel:
    """The one panel of a session's assistant (so ``%nexus panel`` twice shows the same conversation)."""
    assistant = session.assistant
    panel = _panels.get(assistant)
    if panel is None or panel.comm is None:
        panel = _panels[assistant] = ChatPanel(assistant, session=session)
    return panel


def open_panel(session=None, *, where: str = "side", title: str = "Nexus") -> ChatPanel:
    """Show the chat panel in JupyterLab's right side area (``where="side"``) or in the cell."""
    from IPython.display import display

    if where not in ("side", "inline"):
        raise ValueError(f"where must be 'side' or 'inline', not {where!r}.")
    if session is None:
        from ..session import get_session

        session = get_session()
    panel = panel_for(session)
    if where == "inline":
        display(panel)
        return panel
    try:
        from sidecar import Sidecar
    except ImportError:  # pragma: no cover - sidecar is a dependency; stay usable without it
        log.warning("sidecar is not installed; showing the chat panel in the cell instead")
        display(panel)
        return panel
    previous = getattr(panel, "_sidecar", None)
    if previous is not None:
        previous.close()  # one side tab per panel, not one per `%nexus panel`
    panel._sidecar = Sidecar(title=title, anchor="right")
    with panel._sidecar:
        display(panel)
    session.remember(panel_open=True)
    return panel


__all__ = ["ChatPanel", "open_panel", "panel_for", "items_from_history", "parse_report", "STREAM_RATE"]
