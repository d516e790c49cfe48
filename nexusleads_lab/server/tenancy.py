"""Whether a verified identity's organization exists, before any of its work starts.

An unknown organization is refused naming only the slug the token gave (the database's own
message lists every organization, which one tenant must not learn about the others). Known
organizations are remembered for the life of the process: the check costs one look-up per
organization, not per request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..db.errors import QueryError
from .auth import Identity

# How db.database says an organization does not exist (Database._ensure_org, embedded) ...
_NO_SUCH_ORG = "There is no organization"


class UnknownOrganization(Exception):
    def __init__(self, org: str) -> None:
        super().__init__(f"Unknown organization {org!r}: this token's org is not one of this server's organizations.")


class Tenants:
    def __init__(self, database: Callable[[], Any]) -> None:
        self._database = database
        self._known: set[str | None] = set()
        self._lock = threading.Lock()

    def known(self, identity: Identity) -> bool:
        """Whether the organization was found already (``check`` would return at once): the
        caller can skip the thread hop ``check``'s possible database look-up needs."""
        with self._lock:
            return identity.org in self._known

    def check(self, identity: Identity) -> None:
        """``UnknownOrganization``, or ``QueryError`` when the database cannot tell; else nothing."""
        org = identity.org
        with self._lock:
            if org in self._known:
                return
        if org is not None:
            try:
                self._database().store_url(org)  # the organization exists and its roles are there
            except QueryError as exc:
                if exc.message.startswith(_NO_SUCH_ORG):
                    raise UnknownOrganization(org) from None
                raise
        with self._lock:
            self._known.add(org)
