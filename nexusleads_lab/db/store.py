"""Conversations and their messages in PostgreSQL, always scoped to one org and one user.

Every query here filters on both, so nobody lists, reads, renames or deletes another
person's conversations; the agent's database role has no access to these tables at all.
"""

from __future__ import annotations

import builtins
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from .errors import QueryError, connect_failure


@dataclass(frozen=True)
class ConversationInfo:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    messages: int
    model: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "messages": self.messages,
            "model": self.model,
        }


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    role: str
    content: dict[str, Any]
    created_at: datetime


class NotFound(QueryError):
    """No such conversation for this org and user (it may exist for somebody else)."""


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound(f"No conversation {value!r}: conversation ids look like 3f2c1a9e-....") from None


class ConversationStore:
    """One user's conversations in one scope (``org``: a slug, or ``'*'`` for every organization).

    With ``guard`` the connection is checked like the product's other roles: least privilege,
    and bound to ``org`` by row-level security, so even a bug here cannot reach another
    organization's conversations.
    """

    def __init__(self, url: str, org: str, user: str, *, guard: bool = False) -> None:
        self.org = org
        self.user = user
        self._url = url
        self._guard = guard
        self._conn: psycopg.Connection | None = None
        self._lock = threading.RLock()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
            except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
                raise QueryError(f"Cannot reach the conversation store: {connect_failure(exc)}") from None
            if self._guard:
                from .guard import check_role
                from .schema import ALL_ORGS

                try:
                    check_role(lambda sql: conn.execute(sql).fetchone(), kind="store",
                               scope=None if self.org == ALL_ORGS else self.org)  # fmt: skip
                except QueryError:
                    conn.close()
                    raise
            self._conn = conn
        return self._conn

    def query(self, sql: str, params: tuple = (), *, fetch: str = "none", durable: bool = True):
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    if durable:
                        return _fetch(conn.execute(sql, params), fetch)
                    with conn.transaction():  # SET LOCAL needs a transaction of its own
                        conn.execute("SET LOCAL synchronous_commit = off")
                        return _fetch(conn.execute(sql, params), fetch)
                except psycopg.OperationalError:
                    if attempt == 2:
                        raise
                    self._conn = None  # the server restarted: reconnect once

    # -- conversations -------------------------------------------------------------------

    def create(self, title: str = "New conversation", model: str | None = None) -> str:
        row = self.query(
            "INSERT INTO chat_conversations (org, user_name, title, model) VALUES (%s, %s, %s, %s) RETURNING id",
            (self.org, self.user, _title(title), model),
            fetch="one",
        )
        return str(row[0])

    def list(self, limit: int = 100) -> list[ConversationInfo]:
        rows = self.query(
            "SELECT c.id, c.title, c.created_at, c.updated_at, c.model,"
            " (SELECT count(*) FROM chat_messages m WHERE m.conversation_id = c.id AND m.role <> 'event')"
            " FROM chat_conversations c WHERE c.org = %s AND c.user_name = %s"
            " ORDER BY c.updated_at DESC LIMIT %s",
            (self.org, self.user, limit),
            fetch="all",
        )
        return [ConversationInfo(str(r[0]), r[1], r[2], r[3], r[5], r[4]) for r in rows]

    def get(self, conversation_id: str) -> ConversationInfo:
        row = self.query(
            "SELECT c.id, c.title, c.created_at, c.updated_at, c.model,"
            " (SELECT count(*) FROM chat_messages m WHERE m.conversation_id = c.id AND m.role <> 'event')"
            " FROM chat_conversations c WHERE c.id = %s AND c.org = %s AND c.user_name = %s",
            (_uuid(conversation_id), self.org, self.user),
            fetch="one",
        )
        if row is None:
            raise NotFound(f"No conversation {conversation_id} for user {self.user} in org {self.org}.")
        return ConversationInfo(str(row[0]), row[1], row[2], row[3], row[5], row[4])

    def rename(self, conversation_id: str, title: str) -> None:
        if not title or not title.strip():
            raise QueryError("A conversation title cannot be empty.")
        n = self.query(
            "UPDATE chat_conversations SET title = %s, updated_at = now() WHERE id = %s AND org = %s AND user_name = %s",
            (_title(title), _uuid(conversation_id), self.org, self.user),
        )
        if n != 1:
            raise NotFound(f"No conversation {conversation_id} for user {self.user} in org {self.org}.")

    def delete(self, conversation_id: str) -> None:
        n = self.query(
            "DELETE FROM chat_conversations WHERE id = %s AND org = %s AND user_name = %s",
            (_uuid(conversation_id), self.org, self.user),
        )
        if n != 1:
            raise NotFound(f"No conversation {conversation_id} for user {self.user} in org {self.org}.")

    # -- messages -------------------------------------------------------------------------

    def append(self, conversation_id: str, role: str, content: dict[str, Any]) -> int:
        """Append one message as it completes; returns its sequence number in the conversation."""
        row = self.query(
            "WITH c AS (UPDATE chat_conversations SET updated_at = now()"
            "           WHERE id = %s AND org = %s AND user_name = %s RETURNING id)"
            " INSERT INTO chat_messages (conversation_id, seq, role, content)"
            " SELECT c.id, coalesce((SELECT max(seq) FROM chat_messages WHERE conversation_id = c.id), 0) + 1, %s, %s"
            " FROM c RETURNING seq",
            (_uuid(conversation_id), self.org, self.user, role, Jsonb(content, dumps=_dumps)),
            fetch="one",
            # A chat message lost to a server crash in its last few ms is acceptable; a WAL flush
            # on every step of every turn is not. Writes and their audit stay durable.
            durable=False,
        )
        if row is None:
            raise NotFound(f"No conversation {conversation_id} for user {self.user} in org {self.org}.")
        return int(row[0])

    def messages(self, conversation_id: str) -> builtins.list[StoredMessage]:  # self.list shadows list here
        self.get(conversation_id)  # ownership check with a clear error
        rows = self.query(
            "SELECT m.seq, m.role, m.content, m.created_at FROM chat_messages m"
            " JOIN chat_conversations c ON c.id = m.conversation_id"
            " WHERE c.id = %s AND c.org = %s AND c.user_name = %s ORDER BY m.seq",
            (_uuid(conversation_id), self.org, self.user),
            fetch="all",
        )
        return [StoredMessage(r[0], r[1], r[2], r[3]) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _fetch(cur: psycopg.Cursor, fetch: str):
    if fetch == "one":
        return cur.fetchone()
    if fetch == "all":
        return cur.fetchall()
    return cur.rowcount


def _title(title: str) -> str:
    title = " ".join(str(title).split())
    return (title[:77] + "...") if len(title) > 80 else (title or "New conversation")


def _dumps(content: Any) -> str:
    """JSON that PostgreSQL's jsonb accepts, in one pass: any value as text, no lone surrogates
    (shown as U+FFFD instead)."""
    from ..safetext import without_surrogates

    return without_surrogates(json.dumps(content, default=str, ensure_ascii=False))
