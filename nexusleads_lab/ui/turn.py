"""A turn shown live in its cell, then left behind as static HTML.

``CellTurn.start`` displays a ``TurnView``; ``watch`` follows a ``Turn`` the assistant runs
(``Assistant.start``), folding its events into a ``TurnState`` (``agent.live``) and sending the
browser at most ``rate`` updates a second (the front end types the text out smoothly in
between). Interrupting the kernel stops the turn (``Turn`` winds it down). ``finish`` swaps the
widget for the static steps summary (plus the first static part of the answer) and shows the rest
of the answer below it.
"""

from __future__ import annotations

import logging

import anywidget
import traitlets as t

from ..agent.events import AgentText, Event
from ..agent.live import Throttle, TurnState
from ..agent.turn import Turn, TurnResult
from ..words import step_words, steps_label
from .assets import asset_text
from .esm import bundle
from .html import cost_text, steps_html
from .parts import Part, merge, show_all, widget_part
from .text import steps_text

log = logging.getLogger(__name__)


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


class CellTurn:
    """One turn's live view in its cell."""

    def __init__(self, view: TurnView, handle, *, rate: float | None, show_steps: bool, show_sql: bool) -> None:
        self.view = view
        self.handle = handle
        self.show_steps = show_steps
        self.show_sql = show_sql
        self.updates = 0  # syncs sent to the browser
        self.state = TurnState()
        self._throttle: Throttle[TurnState] = Throttle(self._send, rate)

    @classmethod
    def start(
        cls, question: str, *, show_sql: bool = False, show_steps: bool = True, rate: float | None = None
    ) -> CellTurn:
        from IPython.display import display

        view = TurnView(show_sql=show_sql)
        part = widget_part(view, f"Asking: {question.strip()[:200]}")
        handle = display(part.data, raw=True, display_id=True)
        return cls(view, handle, rate=rate, show_steps=show_steps, show_sql=show_sql)

    # -- running ----------------------------------------------------------------------------

    def watch(self, turn: Turn) -> TurnResult:
        """Keep the view current until the turn is over; return its ``TurnResult``."""
        try:
            for event in turn:
                self.apply(event)
        except KeyboardInterrupt:  # while drawing: the turn winds down without the view
            turn.cancel()
        self._throttle.flush()
        return turn.result()

    def apply(self, event: Event) -> None:
        if isinstance(event, AgentText) and event.status == "streaming" and not self.state.text:
            # The answer has begun: if it is a dashboard, its charts need Altair and the
            # offline Vega bundle; load them now rather than after the last chunk. (Not
            # earlier: the imports would compete with the tool steps for the GIL.)
            from . import charts

            charts.prewarm()
        if self.state.apply(event):
            self._throttle.push(self.state)
        if self.state.over:
            self._throttle.flush()

    def _send(self, state: TurnState) -> None:
        self.updates += 1
        with self.view.hold_sync():
            steps = [s.step() for s in state.steps.values()]
            self.view.steps = steps
            self.view.step_words = [step_words(s) for s in steps]
            self.view.label = steps_label(len(steps), live=state.phase in ("waiting", "running"))
            self.view.text = state.text.text
            self.view.error = state.error or ""
            self.view.state = state.phase

    # -- the end ------------------------------------------------------------------------------

    def finish(self, result: TurnResult, parts: list[Part]) -> list[Part]:
        """Replace the live view with the static summary and show the answer. Returns what was shown."""
        summary = None
        cost = cost_text(len(result.steps), result.elapsed_ms, result.usage)
        if self.show_steps and (result.steps or result.elapsed_ms is not None):
            steps = [s.step() for s in result.steps]
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
