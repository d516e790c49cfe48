"""One question being answered, as an object the agent owns: the ``Turn`` and what it produced.

``Assistant.start`` returns a ``Turn`` at once (its ``turn.started`` already published) and runs
it on the assistant's turn runner; ``Assistant.ask`` runs one on the calling thread and returns its
``TurnResult``. A view only watches: it iterates the turn's events, waits for ``result``, or
calls ``cancel``. A turn carries its own cancel flag and its own model settings, so a Stop given
before the turn's first step is still obeyed, and a per-turn model never touches another turn.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import pandas as pd

from ..db.frames import Frames
from .confirm import Outcome, Proposal
from .events import AgentAction, AgentText, Event, ShownText, TurnStarted
from .provider import ModelSettings
from .responses import ResolvedResponse

EventCallback = Callable[[Event], None]
log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The person stopped the turn."""


@dataclass
class TurnResult:
    """What one question produced: the response, the DataFrames, the steps and the events."""

    question: str
    thread_id: str | None = None
    text: str = ""
    response: ResolvedResponse | None = None
    notes: list[str] = field(default_factory=list)
    frames: Frames = field(default_factory=Frames)  # DataFrames, each built when first looked up
    steps: list[AgentAction] = field(default_factory=list)  # each call's latest agent.action
    events: list[Event] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    elapsed_ms: float | None = None  # from turn.started to the answer (or the failure)
    error: str | None = None
    cancelled: bool = False
    proposal: Proposal | None = None
    _text_run: _TextRun | None = field(default=None, init=False, repr=False, compare=False)
    _started: float = field(default_factory=time.perf_counter, init=False, repr=False, compare=False)

    def stop_clock(self) -> float:
        """Milliseconds since the question was asked, kept in ``elapsed_ms``."""
        self.elapsed_ms = round((time.perf_counter() - self._started) * 1000, 1)
        return self.elapsed_ms

    def record(self, event: Event) -> None:
        """Keep an event in ``events``. A stretch of streaming text is kept as one edit (its
        edits merged), so a long answer costs its length here, not its number of chunks."""
        if isinstance(event, AgentText) and event.status == "streaming":
            if self._text_run is None:
                self._text_run = _TextRun(event, len(self.events))
                self.events.append(event)  # stands in for the merged edit until the stretch ends
            else:
                self._text_run.add(event)
            return
        if self._text_run is not None:
            self.events[self._text_run.index] = self._text_run.merged()
            self._text_run = None
        if isinstance(event, AgentAction):
            self._keep_step(event)
        self.events.append(event)

    def _keep_step(self, action: AgentAction) -> None:
        for i, step in enumerate(self.steps):
            if step.call_id == action.call_id:
                self.steps[i] = action
                return
        self.steps.append(action)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def df(self) -> pd.DataFrame | None:
        """The last DataFrame this turn produced."""
        return self.frames[next(reversed(self.frames))] if self.frames else None

    def response_dict(self) -> dict | None:
        """The response as the wire and the store carry it (a proposal: its resolved card)."""
        if self.proposal is not None:
            return self.proposal.as_dict()
        return self.response.model_dump(mode="json") if self.response is not None else None


def _edit_of(event: AgentText) -> tuple[int, str]:
    """A streaming ``agent.text``'s edit (its validator makes sure it has both)."""
    assert event.keep is not None and event.delta is not None
    return event.keep, event.delta


class _TextRun:
    """Consecutive streaming edits as one: keep ``keep`` characters, then add what ``added`` holds."""

    def __init__(self, first: AgentText, index: int) -> None:
        keep, delta = _edit_of(first)
        self.first, self.index, self.keep = first, index, keep
        self.added = ShownText()
        self.added.edit(0, delta)

    def add(self, event: AgentText) -> None:
        keep, delta = _edit_of(event)
        if keep >= self.keep:
            self.added.edit(keep - self.keep, delta)
        else:  # it cuts into what was shown before the stretch
            self.keep = keep
            self.added.replace(delta)

    def merged(self) -> AgentText:
        return AgentText(
            ts=self.first.ts, turn_id=self.first.turn_id, keep=self.keep, delta=self.added.text, status="streaming"
        )


_END = object()


class Turn:
    """One question being answered: ``id``, ``cancel()``, its events by iteration, ``result()``."""

    def __init__(
        self,
        question: str,
        *,
        origin: str,
        settings: ModelSettings,
        publish: EventCallback,
        on_event: EventCallback | None = None,
        reports: Outcome | None = None,
        watched: bool = True,
    ) -> None:
        self.id = os.urandom(6).hex()  # 12 random hex digits, as uuid4().hex[:12] gave without its UUID
        self.question = question
        self.origin = origin
        self.settings = settings  # this turn's model: another turn's override never reaches it
        self.reports = reports  # the confirmation outcome this turn reports to the model
        self._result = TurnResult(question=question)
        self._publish = publish
        self._on_event = on_event
        # A flag nobody waits on: a bool (a Stop may set it from any thread) rather than an Event,
        # whose Condition cost more to make than the rest of the turn's start.
        self._stopped = False
        self._stoppers: list[Callable[[], None]] = []  # what a cancel interrupts: a stream, queries
        self._stoppers_lock = threading.Lock()
        self._events: queue.SimpleQueue | None = queue.SimpleQueue() if watched else None
        self._done: Future[TurnResult] = Future()

    @property
    def model(self) -> str:
        return self.settings.model

    # -- for views ------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the turn (safe from any thread, before or while it runs): the model stream and any
        query. A turn cancelled before its first step ends cancelled without running anything."""
        self._stopped = True
        with self._stoppers_lock:
            stoppers = list(self._stoppers)
        for stop in stoppers:
            try:
                stop()
            except Exception:  # a stream already closed, a connection already gone
                pass

    @property
    def cancelled(self) -> bool:
        return self._stopped

    def done(self) -> bool:
        return self._done.done()

    def result(self, timeout: float | None = None) -> TurnResult:
        """Wait for the turn's ``TurnResult``; ``TimeoutError`` after ``timeout`` seconds (the turn
        goes on). An interrupt (Ctrl-C) while waiting stops the turn and waits for it to wind down."""
        try:
            return self._done.result(timeout)
        except KeyboardInterrupt:
            self._wind_down()
            return self._done.result()

    def add_done_callback(self, callback: Callable[[TurnResult], None]) -> None:
        """Call ``callback(result)`` when the turn is over (at once if it is), on the turn's thread."""
        self._done.add_done_callback(lambda future: callback(future.result()))

    def __iter__(self) -> Iterator[Event]:
        """This turn's events as they happen, ending with ``turn.completed`` or ``error``. An interrupt
        (Ctrl-C) while waiting stops the turn; the events of its winding down still come."""
        events = self._events
        if events is None:
            raise RuntimeError("this turn's events were not kept: iterate a turn from Assistant.start")
        while True:
            try:
                item = events.get()
            except KeyboardInterrupt:
                self.cancel()
                continue
            if item is _END:
                events.put(_END)  # a second iteration ends too
                return
            yield item

    def _wind_down(self) -> None:
        while True:
            try:
                self.cancel()
                self._done.result()
                return
            except KeyboardInterrupt:  # a second interrupt while stopping: keep stopping
                continue

    # -- for the loop ---------------------------------------------------------------------------

    def check(self) -> None:
        """Raise ``Cancelled`` if the turn was stopped."""
        if self._stopped:
            raise Cancelled()

    def interruptible(self, stop: Callable[[], None]) -> Callable[[], None]:
        """Call ``stop`` if the turn is cancelled (now, if it already is); returns the call that forgets it."""
        with self._stoppers_lock:
            self._stoppers.append(stop)
        if self._stopped:
            stop()

        def forget() -> None:
            with self._stoppers_lock:
                if stop in self._stoppers:
                    self._stoppers.remove(stop)

        return forget

    def emit(self, event: Event) -> None:
        """Stamp ``event`` with this turn's id (a copy, unless made with it), keep it, and hand it
        to every watcher."""
        if event.turn_id != self.id:
            event = event.model_copy(update={"turn_id": self.id})
        self._result.record(event)
        if self._events is not None:
            self._events.put(event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a broken view must not break the turn
                log.exception("event callback failed")
        self._publish(event)

    def begin(self) -> None:
        reports = self.reports.id if self.reports else None
        self.emit(TurnStarted(turn_id=self.id, question=self.question, origin=self.origin, reports=reports))

    @property
    def progress(self) -> TurnResult:
        """The result being built (the loop's to fill)."""
        return self._result

    def finish(self) -> None:
        if self._events is not None:
            self._events.put(_END)
        self._done.set_result(self._result)
