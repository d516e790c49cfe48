"""Fair share per identity (a user within an organization), counted on the event loop.

A turn counts from the moment its message is accepted until it ends, whether it runs or waits
(for its conversation's running turn, or for a turn thread): so one user holds at most
``NEXUS_MAX_TURNS_PER_USER`` of the process's turn threads and database-pool waits, and a burst
beyond that is refused at once with an ``error``, nothing queued and no conversation created.
Open sockets per identity are bounded the same way (``NEXUS_MAX_SESSIONS_PER_USER``)."""

from __future__ import annotations

from collections import Counter

from .auth import Identity


class Quota:
    def __init__(self, turns: int, sockets: int) -> None:
        self.max_turns = turns
        self.max_sockets = sockets
        self.turns: Counter[Identity] = Counter()
        self.sockets: Counter[Identity] = Counter()

    def busy(self, identity: Identity) -> str | None:
        """Why ``identity`` may not start another turn now (None: it may)."""
        running = self.turns[identity]
        if running < self.max_turns:
            return None
        return (
            f"busy: {running} turns running; wait or stop one (at most {self.max_turns} at once per user, "
            "NEXUS_MAX_TURNS_PER_USER). Nothing was asked."
        )

    def start_turn(self, identity: Identity) -> None:
        self.turns[identity] += 1

    def end_turn(self, identity: Identity) -> None:
        self.turns[identity] -= 1
        if self.turns[identity] <= 0:
            del self.turns[identity]

    def open_socket(self, identity: Identity) -> bool:
        if self.sockets[identity] >= self.max_sockets:
            return False
        self.sockets[identity] += 1
        return True

    def close_socket(self, identity: Identity) -> None:
        self.sockets[identity] -= 1
        if self.sockets[identity] <= 0:
            del self.sockets[identity]
