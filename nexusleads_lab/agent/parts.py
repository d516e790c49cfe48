"""The assistant's parts, each built the first time it is used, so ``Assistant()`` is instant and never fails.

The database and its engine in the assistant's scope, the skills, the conversation store, the
confirmations and the model client: given ones are used as they are, made ones are closed by
``close``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..db.schema import ALL_ORGS
from .confirm import Confirmations
from .provider import ModelSettings, make_client, proposal_ledger

if TYPE_CHECKING:  # pragma: no cover
    from openai import OpenAI

    from ..db.database import Database
    from ..db.engine import Engine
    from ..db.store import ConversationStore
    from .skills import SkillSet


class Parts:
    """One assistant's database, engine, skills, store, confirmations and client, made on first use."""

    def __init__(
        self,
        *,
        org: str | None,
        user: str,
        settings: Callable[[], ModelSettings],
        database: Database | None = None,
        client: OpenAI | None = None,
        skills: SkillSet | None = None,
        persist: bool = True,
        pooled_store: bool = False,
    ) -> None:
        self.org, self.user = org, user
        self._settings = settings  # read when needed: the assistant's model may change
        self._database = database
        self._client = client
        self._owns_client = False  # made here (not given): close() closes it
        self._skills = skills
        self._persist = persist
        self._pooled_store = pooled_store
        self._store: ConversationStore | None = None
        self._confirmations: Confirmations | None = None

    @property
    def has_database(self) -> bool:
        """Whether a database was given or made yet (none made: no query can be running)."""
        return self._database is not None

    @property
    def given_client(self) -> OpenAI | None:
        """The client handed in or made so far, without making one."""
        return self._client

    @property
    def database(self) -> Database:
        if self._database is None:
            from ..db.database import get_database

            self._database = get_database()
        return self._database

    @property
    def engine(self) -> Engine:
        return self.database.engine_for(self.org)

    @property
    def skills(self) -> SkillSet:
        if self._skills is None:
            from .skills import discover_skills

            self._skills = discover_skills()
        return self._skills

    @property
    def store(self) -> ConversationStore | None:
        """The conversation store; None when the assistant keeps nothing (``persist=False``)."""
        if self._store is None and self._persist:
            self._store = self._new_store()
        return self._store

    def _new_store(self) -> ConversationStore:
        from ..db.store import ConversationStore

        pool = self.database.store_pool(self.org) if self._pooled_store else None
        return ConversationStore(
            self.database.store_url(self.org), self.org or ALL_ORGS, self.user, guard=True, pool=pool
        )

    @property
    def confirmations(self) -> Confirmations:
        if self._confirmations is None:
            store = self.store or self._new_store()  # proposals are stored even when messages are not
            self._confirmations = Confirmations(
                store, lambda: self.engine, ledger=lambda: proposal_ledger(self._settings())
            )
        return self._confirmations

    def client(self) -> OpenAI:
        if self._client is None:
            self._client = make_client(self._settings())
            self._owns_client = True
        return self._client

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            client.close()  # its sockets now, not when the garbage collector finds it
