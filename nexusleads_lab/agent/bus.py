"""The event bus: every event of an assistant, handed to every subscriber in order.

A subscriber gets every turn's events, whoever asked (a cell, the panel, the CLI, code), on the
thread running the turn, and every ``confirm.resolved``. One that raises is logged and skipped,
so a broken view never breaks the turn or the other views. ``weak=True`` holds a bound method
weakly, so a view that goes away (a card, a panel) is not kept alive by the bus.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

from .events import Event

log = logging.getLogger(__name__)

EventCallback = Callable[[Event], None]


class EventBus:
    """Subscribers of one assistant's events."""

    def __init__(self) -> None:
        # Replaced, never changed in place: publishing (every event of every turn) reads it unlocked.
        self._refs: tuple[Callable[[], EventCallback | None], ...] = ()
        self._lock = threading.Lock()  # for the changes: subscribing and dropping

    def __len__(self) -> int:
        return len(self._refs)

    def subscribe(self, callback: EventCallback, *, weak: bool = False) -> Callable[[], None]:
        """Deliver every event to ``callback``; returns the call that unsubscribes."""
        if weak and hasattr(callback, "__self__"):
            ref: Callable[[], EventCallback | None] = weakref.WeakMethod(callback)
        else:
            ref = lambda: callback  # noqa: E731 - a strong reference with the weak one's shape
        with self._lock:
            self._refs = (*self._refs, ref)

        def unsubscribe() -> None:
            self._drop(ref)

        return unsubscribe

    def publish(self, event: Event) -> None:
        for ref in self._refs:
            callback = ref()
            if callback is None:  # a weakly held view is gone
                self._drop(ref)
                continue
            try:
                callback(event)
            except Exception:  # a broken view must not break the turn or the other views
                log.exception("event subscriber failed")

    def _drop(self, ref: Callable[[], EventCallback | None]) -> None:
        with self._lock:
            if ref in self._refs:
                i = self._refs.index(ref)
                self._refs = self._refs[:i] + self._refs[i + 1 :]
