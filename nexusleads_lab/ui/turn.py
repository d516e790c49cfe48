"""A turn shown live in its cell, then left behind as static HTML.

``LiveTurn.start`` displays a ``TurnView``; ``run`` asks on a worker thread and applies the
events on the kernel's main thread, sending the browser at most ``rate`` updates a second
(the front end types the text out smoothly in between). Interrupting the kernel cancels the
turn and waits for it to wind down. ``finish`` swaps the widget for the static steps summary
(plus the first static part of the answer) and shows the rest of the answer below it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import anywidget
import traitlets as t

from ..agent.events import ShownText
from ..words import step_words, steps_label
from .assets import asset_text
from .esm import bundle
from .html import cost_text, steps_html
from .parts import Part, merge, show_all, widget_part
from .text import steps_text

log = logging.getLogger(__name__)

_DONE = object()
_POLL_S = 0.25


class TurnView(anywidget.AnyWidget):
    """Dots, then the steps and the streaming answer. A thin view: the kernel sets the state."""

    _esm = bundle("turn.js")
    _css = asset_text("theme.css") + asset_text("turn.css")

    state = t.Unicode("waiting").tag(sync=True)  # waiting | running | done | error | cancelled
    steps = t.List(t.Dict()).tag(
        sync=True
    )  # call_id, tool, status, command, path, rows, truncated, elapsed_ms, result_id, error
    text = t.Unicode("").tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    label = t.Unicode("Working…").tag(sync=True)  # the steps line (words.steps_label)
    step_words = t.List(t.Dict()).tag(sync=True)  # beside each step: its tool and facts (words.step_words)
    show_sql = t.Bool(False).tag(sync=True)


def step_dict(event_or_step: Any) -> dict[str, Any]:
    get = lambda name: getattr(event_or_step, name, None)  # noqa: E731 - events and Steps share these names
    return {
        "call_id": get("call_id"),
        "tool": get("tool"),
        "status": get("status"),
        "command": get("command"),
        "path": get("path"),
        "rows": get("rows"),
        "truncated": get("truncated"),
        "elapsed_ms": get("elapsed_ms"),
        "result_id": get("result_id"),
        "error": get("error"),
    }


class LiveTurn:
    def __init__(self, question: str, view: TurnView, handle, *, rate: float, show_steps: bool, show_sql: bool) -> None:
        self.question = question
        self.view = view
        self.handle = handle
        self.interval = 1.0 / max(1.0, float(rate))
        self.show_steps = show_steps
        self.show_sql = show_sql
        self.updates = 0  # syncs sent to the browser
        self._steps: dict[str, dict[str, Any]] = {}
        self._text = ShownText()  # read only when the view is redrawn
        self._state = "waiting"
        self._error = ""
        self._dirty = False
        self._last_flush = 0.0

    @classmethod
    def start(cls, question: str, *, show_sql: bool = False, show_steps: bool = True, rate: float = 30.0) -> LiveTurn:
        from IPython.display import display

        view = TurnView(show_sql=show_sql)
        part = widget_part(view, f"Asking: {question.strip()[:200]}")
        handle = display(part.data, raw=True, display_id=True)
        return cls(question, view, handle, rate=rate, show_steps=show_steps, show_sql=show_sql)

    # -- running ----------------------------------------------------------------------------

    def run(self, assistant):
        """Ask on a worker thread, keep the view current, return the ``TurnResult``."""
        events: queue.SimpleQueue = queue.SimpleQueue()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = assistant.ask(self.question, on_event=events.put, origin="cell")
            except BaseException as exc:  # re-raised on the main thread
                box["exception"] = exc
            finally:
                events.put(_DONE)

        worker = threading.Thread(target=work, name="nexus-cell-turn", daemon=True)
        worker.start()
        try:
            self._pump(events)
        except KeyboardInterrupt:
            self._wind_down(assistant, events)
        self.flush()
        worker.join(timeout=5)
        if "exception" in box:
            raise box["exception"]
        return box["result"]

    def _pump(self, events: queue.SimpleQueue) -> None:
        while True:
            try:
                item = events.get(timeout=self._wait())
            except queue.Empty:
                if self._dirty:
                    self.flush()
                continue
            if item is _DONE:
                return
            self.apply(item)
            if self._dirty and self._wait() == 0:
                self.flush()

    def _wind_down(self, assistant, events: queue.SimpleQueue) -> None:
        """The kernel was interrupted: stop the turn and let it finish cleanly."""
        assistant.cancel()
        while True:
            try:
                item = events.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            except KeyboardInterrupt:  # a second interrupt while stopping: keep stopping
                assistant.cancel()
                continue
            if item is _DONE:
                return
            self.apply(item)

    def _wait(self) -> float:
        if not self._dirty:
            return _POLL_S
        return max(0.0, self._last_flush + self.interval - time.monotonic())

    def apply(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "agent.action":
            self._steps[event.call_id] = step_dict(event)
            self._state = "running"
        elif kind == "agent.text":
            if not self._text and event.status == "streaming":
                # The answer has begun: if it is a dashboard, its charts need Altair and the
                # offline Vega bundle; load them now rather than after the last chunk. (Not
                # earlier: the imports would compete with the tool steps for the GIL.)
                from . import charts

                charts.prewarm()
            self._text.apply(event)
            if self._text:
                self._state = "running"
        elif kind == "turn.completed":
            self._state = "done"
        elif kind == "error":
            self._state = "error"
            self._error = event.message
        else:
            return
        self._dirty = True

    def flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self._last_flush = time.monotonic()
        self.updates += 1
        with self.view.hold_sync():
            self.view.steps = list(self._steps.values())
            self.view.step_words = [step_words(s) for s in self._steps.values()]
            self.view.label = steps_label(len(self._steps), live=self._state in ("waiting", "running"))
            self.view.text = self._text.text
            self.view.error = self._error
            self.view.state = self._state

    # -- the end ------------------------------------------------------------------------------

    def finish(self, result, parts: list[Part]) -> list[Part]:
        """Replace the live view with the static summary and show the answer. Returns what was shown."""
        summary = None
        cost = cost_text(len(result.steps), result.elapsed_ms, result.usage)
        if self.show_steps and (result.steps or result.elapsed_ms is not None):
            steps = [step_dict(s) for s in result.steps]
            summary = Part(
                {"text/html": steps_html(steps, open_=self.show_sql, cost=cost), "text/plain": steps_text(steps, cost)}
            )
        parts = list(parts)
        head = [summary] if summary else []
        first_part = parts[0] if parts else None
        if first_part and first_part.static and not (first_part.display_id or first_part.later):
            head.append(parts.pop(0))
        first = merge(head) if head else Part({"text/html": "", "text/plain": ""})
        self.handle.update(first.data, raw=True)
        show_all(parts)
        try:
            # Its output is gone; empty it so no saved widget state (nbclient keeps closed
            # widgets' last state) carries the answer a second time.
            with self.view.hold_sync():
                self.view.steps, self.view.text, self.view.error = [], "", ""
            self.view.close()
        except Exception:  # the comm may already be gone (kernel shutting down)
            log.debug("closing the turn view failed", exc_info=True)
        return [first, *parts]

    def abandon(self, message: str) -> None:
        """The turn broke without a result: leave an error in place of the dots."""
        from .html import answer_block, error_html

        self.handle.update({"text/html": answer_block(error_html(message)), "text/plain": message}, raw=True)
        try:
            self.view.close()
        except Exception:
            log.debug("closing the turn view failed", exc_info=True)
