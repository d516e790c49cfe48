"""A running turn folded from its events, once, for every view that shows one live.

``TurnState.apply(event)`` is the one fold: the cell (``ui.turn``), the panel (``ui.chat``) and
both sockets (``server.ws``: ``/ws/codex``, ``/ws/panel`` through the panel) keep a ``TurnState``
per running turn and draw from it. ``Throttle`` is the one pace at which a view passes the
streaming text on: at most ``UPDATES_PER_SECOND`` times a second, the latest value always
getting through.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from .events import (
    AgentAction,
    AgentText,
    ConfirmResolved,
    ErrorEvent,
    Event,
    SessionId,
    ShownText,
    TurnCompleted,
    TurnStarted,
)

log = logging.getLogger(__name__)

#: The one rate setting: live updates a second that any view sends on, at most.
UPDATES_PER_SECOND = 25.0

Phase = Literal["waiting", "running", "done", "error"]


@dataclass
class TurnState:
    """What a running turn shows so far: its steps (by call id), its text, how it ended."""

    id: str | None = None
    question: str = ""
    origin: str = "code"
    reports: str | None = None  # the proposal whose outcome this turn reports to the model
    conversation_id: str | None = None
    phase: Phase = "waiting"
    steps: dict[str, AgentAction] = field(default_factory=dict)
    text: ShownText = field(default_factory=ShownText)  # the answer streaming in
    completed: TurnCompleted | None = None
    error: str | None = None
    cancelled: bool = False

    @classmethod
    def of(cls, started: TurnStarted) -> TurnState:
        state = cls()
        state.apply(started)
        return state

    def apply(self, event: Event) -> bool:
        """Fold one event in; True when what a view shows changed."""
        match event:
            case TurnStarted():
                self.id, self.question = event.turn_id, event.question or ""
                self.origin, self.reports = event.origin or "code", event.reports
            case SessionId():
                self.conversation_id = event.session_id
                return False
            case AgentAction():
                before = self.steps.get(event.call_id)
                if before is not None:  # a later event of a step keeps what the earlier one said
                    said = {k: v for k, v in event.__dict__.items() if v is not None and k != "ts"}  # flat fields
                    event = before.model_copy(update=said)
                self.steps[event.call_id] = event
                self.phase = "running"
            case AgentText():
                self.text.apply(event)
                if self.text:
                    self.phase = "running"
            case TurnCompleted():
                self.completed, self.phase = event, "done"
            case ErrorEvent():
                self.error, self.cancelled, self.phase = event.message, bool(event.cancelled), "error"
            case ConfirmResolved():
                return False
        return True

    @property
    def over(self) -> bool:
        return self.phase in ("done", "error")


T = TypeVar("T")


class Timer:
    """A call ``Timers`` will make, unless cancelled first."""

    __slots__ = ("cancelled", "fn")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """One daemon thread that makes the delayed calls of every throttle in the process. A
    ``threading.Timer`` per throttled window started a thread each time: ~25 a second for every
    answer streaming token by token, each thread's start costing more CPU than what it sent."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(fn)
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (time.monotonic() + delay, self._seq, timer))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="nexus-throttle", daemon=True)
                self._thread.start()
            self._cond.notify()
        return timer

    def _run(self) -> None:
        while True:  # a daemon thread: it ends with the process
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                try:
                    timer.fn()
                except Exception:  # a view's failure is its own; the other throttles keep their pace
                    log.exception("a throttled update failed")


#: The process's timer thread, shared by every throttle.
TIMERS = Timers()


class Throttle(Generic[T]):
    """Pass values on to ``send`` at most ``rate`` times a second (default ``UPDATES_PER_SECOND``);
    the latest value always gets through, from the timer thread (``TIMERS``) when nothing else
    comes. ``flush`` sends what waits at once, so a view sends it before the event that follows it."""

    def __init__(self, send: Callable[[T], None], rate: float | None = None) -> None:
        self.rate = float(rate or UPDATES_PER_SECOND)
        self._send_value = send
        self._interval = 1.0 / max(1.0, self.rate)
        self._lock = threading.Lock()
        self._last = 0.0
        self._pending: T | None = None
        self._dirty = False
        self._timer: Timer | None = None

    def push(self, value: T) -> None:
        with self._lock:
            self._pending, self._dirty = value, True
            wait = self._last + self._interval - time.monotonic()
            if wait <= 0:
                self._send()
            elif self._timer is None:
                self._timer = TIMERS.call_later(wait, self._fire)

    def flush(self) -> None:
        with self._lock:
            if self._dirty:
                self._send()

    def discard(self) -> None:
        """Forget what waits (a later value replaces it, sent by other means)."""
        with self._lock:
            self._dirty, self._pending = False, None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

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
        value, self._pending = self._pending, None
        self._send_value(value)  # type: ignore[arg-type]
