"""The confirmation outcome watcher: a ``confirm.resolved`` for every proposal shown here, once.

An outcome made here (a card's button, ``nexus.confirm()``) is published at once by the assistant
(``resolved``); an outcome made by another process (the CLI, the server, another kernel) is found
by ``poll``, which also runs by itself every ``interval`` seconds while proposals shown here are
pending. Either way each proposal's outcome is published once, whichever came first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .confirm import Confirmations, Outcome
from .events import ConfirmResolved, Event

log = logging.getLogger(__name__)


class OutcomeWatcher:
    """Proposals shown and not resolved as far as this process knows, and their outcomes' events."""

    def __init__(
        self,
        confirmations: Callable[[], Confirmations],
        publish: Callable[[Event], None],
        conversation: Callable[[], str | None],
    ) -> None:
        self._confirmations = confirmations
        self._publish = publish
        self._conversation = conversation
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self.interval = 2.0  # seconds between looks for outcomes made by other processes
        self.closed = False

    def watch(self, proposal_id: str) -> None:
        with self._lock:
            self._pending.add(proposal_id)
            if self._poller is not None and self._poller.is_alive():
                return
            self._poller = threading.Thread(target=self._poll_loop, name="nexus-outcomes", daemon=True)
            self._poller.start()

    def resolved(self, outcome: Outcome) -> ConfirmResolved:
        """The event of an outcome made here (it is no longer pending)."""
        with self._lock:
            self._pending.discard(outcome.id)
        return self.event(outcome)

    def event(self, outcome: Outcome) -> ConfirmResolved:
        return ConfirmResolved(
            proposal_id=outcome.id,
            status=outcome.status,
            rows_affected=outcome.rows_affected,
            error=outcome.error,
            conversation_id=self._conversation(),
        )

    def poll(self) -> list[ConfirmResolved]:
        """Publish ``confirm.resolved`` for pending proposals resolved elsewhere since; returns those."""
        with self._lock:
            pending = sorted(self._pending)
        published = []
        for outcome in self._confirmations().resolved(pending):
            with self._lock:
                if outcome.id not in self._pending:
                    continue  # resolved here meanwhile, and published then
                self._pending.discard(outcome.id)
            event = self.event(outcome)
            self._publish(event)
            published.append(event)
        return published

    def _poll_loop(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                if not self._pending or self.closed:
                    self._poller = None
                    return
            try:
                self.poll()
            except Exception:  # the database is away for a moment: try again next time
                log.debug("polling confirmations failed", exc_info=True)
