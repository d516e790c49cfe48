"""One turn at a time per conversation, across assistants and processes: a lease in its row.

A turn of a stored conversation (a question, or a confirmation's report) takes the conversation's
lease (``ConversationStore.claim``) before it starts and gives it back when it ends, whether it
runs in a notebook, the CLI or any ``nexus-lab serve`` replica; while it runs, one thread per
process renews every lease the process holds. A process that dies lets go when its leases run out
(``TTL``), or at once to a turn on the same machine, which can see that the process is gone (a
kernel restarted mid-turn). Nothing is held open for the turn's length: no connection, no row lock
(a row lock would block the turn's own writes to its conversation, and the store role may not take
advisory locks).
A thread that already holds a conversation's lease holds it again for free (a confirmation's
follow-up question inside its report). A turn's last write may give its lease back in the same
statement (``giving_back`` names it to ``ConversationStore.append_all(release=...)``): one round
trip less. Likewise a conversation made for the turn that follows at once (a server's first question,
``Conversations.start(lease=True)``) is made with the lease taken (``Taken``), which that turn holds
without claiming it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import QueryError

log = logging.getLogger(__name__)

TTL = 30.0  # seconds a lease lives unless renewed
RENEW = 10.0  # seconds between renewals
WAIT = 600.0  # longest a turn waits for another turn of its conversation (any assistant, any process)


class Abandoned(Exception):
    """The turn stopped waiting for the lease: it was cancelled."""


class Busy(QueryError):
    """Another turn of the conversation ran longer than a turn may wait."""


@dataclass
class Taken:
    """A lease taken with its new conversation (``ConversationStore.start(holder=...)``), for the
    conversation's first turn to hold (``Leases.hold(taken=...)``) without claiming it again."""

    holder: str
    claimed: Any  # the conversation's updated_at as it was made
    at: float  # time.monotonic() before it was taken


@dataclass
class Held:
    holder: str
    claimed: Any  # the conversation's updated_at when the lease was taken (None: held already)
    released: Any = None  # ... and when it was given back (None until then, or if that failed)


class Leases:
    """The turn leases this process holds, and the thread that renews them."""

    def __init__(self, *, ttl: float = TTL, renew: float = RENEW, wait: float = WAIT) -> None:
        self.ttl, self.renew_every, self.wait = ttl, renew, wait
        self._host = socket.gethostname()
        self._prefix = f"{self._host}:{os.getpid()}"
        self._held: dict[str, tuple[Any, str]] = {}  # holder -> (store, conversation id)
        self._unheld: set[str] = set()  # leases taken with a new conversation, their turn not begun
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._local = threading.local()  # the conversations this thread holds: id -> its innermost Held

    def new_holder(self) -> str:
        """A name for a lease this process takes: its host and process, then a turn's own part."""
        return f"{self._prefix}:{uuid.uuid4().hex[:12]}"

    def taking(self, holder: str) -> None:
        """``holder`` is being taken with a new conversation and not held yet: another turn of this
        process that finds it in the way takes it over at once (its turn never came)."""
        with self._lock:
            self._unheld.add(holder)

    def not_taking(self, holder: str) -> bool:
        """Its turn begins (or never will): False when another turn took it over meanwhile."""
        with self._lock:
            if holder in self._unheld:
                self._unheld.discard(holder)
                return True
            return False

    @contextlib.contextmanager
    def hold(
        self, store: Any, conversation_id: str, *, cancelled: Callable[[], bool], taken: Taken | None = None
    ) -> Iterator[Held]:
        """Wait for the conversation's lease (from the turn's thread), hold it for the block. The
        ``Held`` says when the conversation last changed, as the lease was taken and given back.
        ``taken``: the lease taken with the conversation (``Conversations.start``), held without a
        claim while it has most of its ``ttl`` left (claimed again under its name otherwise)."""
        own = taken is not None and self.not_taking(taken.holder)
        mine = self._mine()
        outer = mine.get(conversation_id)
        if outer is not None:  # this thread holds it already
            mine[conversation_id] = nested = Held("", None)
            try:
                yield nested
            finally:
                mine[conversation_id] = outer
            return
        holder = taken.holder if taken is not None else self.new_holder()
        if own and taken is not None and time.monotonic() - taken.at < self.ttl / 2:
            updated = taken.claimed  # its own: it cannot have run out and been taken since
        else:
            updated = self._claim(store, conversation_id, holder, cancelled)
        with self._lock:
            self._held[holder] = (store, conversation_id)
            self._start()
        held = mine[conversation_id] = Held(holder, updated)
        try:
            yield held
        finally:
            with self._lock:
                self._held.pop(holder, None)
            if mine.get(conversation_id) is held:  # not given back by the turn's last write (``giving_back``)
                del mine[conversation_id]
                try:
                    held.released = store.release(conversation_id, holder)
                except Exception:  # it runs out on its own
                    log.warning("could not give back the turn lease of %s", conversation_id, exc_info=True)

    def _claim(self, store: Any, conversation_id: str, holder: str, cancelled: Callable[[], bool]) -> Any:
        """Wait for the conversation's lease and take it for ``holder``; its ``updated_at`` then."""
        deadline = time.monotonic() + self.wait
        pause = 0.05
        while (updated := store.claim(conversation_id, holder, self.ttl)) is None:
            gone = store.holder(conversation_id)
            with self._lock:
                unheld = gone in self._unheld
                self._unheld.discard(gone)
            if gone and (unheld or self._dead(gone)):  # its turn never came, or its process died holding it
                updated = store.take_over(conversation_id, gone, holder, self.ttl)
                if updated is not None:
                    log.info("took over the turn lease of %s from %s, which is gone", conversation_id, gone)
                    break
            if cancelled():
                raise Abandoned
            if time.monotonic() > deadline:
                raise Busy(
                    f"Another turn of this conversation has been running for over {self.wait:g} s; "
                    "nothing was asked. Try again when it is over."
                )
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        return updated

    @contextlib.contextmanager
    def giving_back(self, conversation_id: str) -> Iterator[str | None]:
        """For the turn's last write, which gives this thread's lease of the conversation back in
        the same statement: the holder to name in it (None when this thread holds none, or holds it
        inside another block of its own, which gives it back). From here on the renewing thread
        leaves the lease alone (a renewal after that write would find it gone and call it lost);
        once the write is done the block does not give it back again. If the write fails, the
        block still gives it back when it ends."""
        held = self._mine().get(conversation_id)
        if held is None or not held.holder:
            yield None
            return
        with self._lock:
            self._held.pop(held.holder, None)
        yield held.holder
        self._mine().pop(conversation_id, None)

    def _mine(self) -> dict[str, Held]:
        return self._local.__dict__.setdefault("held", {})

    def _dead(self, holder: str) -> bool:
        """A holder on this machine whose process no longer runs (its lease need not run out)."""
        parts = holder.rsplit(":", 2)  # host:pid:turn
        if len(parts) != 3 or parts[0] != self._host or not parts[1].isdigit() or int(parts[1]) == os.getpid():
            return False
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            return True
        except OSError:  # it runs (as somebody else)
            return False
        return False

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._renew_loop, name="nexus-lease", daemon=True)
            self._thread.start()

    def _renewing(self, holder: str) -> bool:
        """Still held and renewed (not given back, or being given back, since the renewal began)."""
        with self._lock:
            return holder in self._held

    def _renew_loop(self) -> None:
        """Renew what is held every ``renew_every`` seconds; end once nothing is (the next lease
        taken starts the thread again, ``_start``, under the same lock)."""
        while True:
            time.sleep(self.renew_every)
            with self._lock:
                held = list(self._held.items())
                if not held:
                    self._thread = None
                    return
            for holder, (store, conversation_id) in held:
                try:
                    if not store.renew(conversation_id, holder, self.ttl) and self._renewing(holder):
                        log.warning("the turn lease of %s was lost (it ran out and was taken)", conversation_id)
                except Exception:
                    log.warning("could not renew the turn lease of %s", conversation_id, exc_info=True)


#: The process's leases: every assistant's turns share the one renewing thread.
LEASES = Leases()
