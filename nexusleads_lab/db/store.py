"""Conversations and their messages in PostgreSQL, always scoped to one org and one user.

Every query here filters on both, so nobody lists, reads, renames or deletes another
person's conversations; the agent's database role has no access to these tables at all.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.generators import execute
from psycopg.types.json import Jsonb

from .. import fastjson
from ..safetext import without_surrogates
from .errors import FULL_HINT, QueryError, connect_failure, out_of_connections


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


_SEQ_END = 2**31 - 1  # past any ``seq`` (an integer column)

# A tool message's result id: the first "result_id" key of its JSON text (the payload's first key).
_RESULT_ID = r'"result_id"\s*:\s*"r([0-9]{1,15})"'

#: What ``ConversationStore.find`` may look up: a confirm card by its proposal id, an outcome by its.
FINDABLE = {
    "card": "m.content->'meta'->'response'->>'id'",
    "outcome": "m.content->'meta'->'outcome'->>'id'",
}


class NotFound(QueryError):
    """No such conversation for this org and user (it may exist for somebody else)."""


@functools.lru_cache(maxsize=1024)  # a turn names its conversation in each of its calls
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

    def __init__(self, url: str, org: str, user: str, *, guard: bool = False, pool: StorePool | None = None) -> None:
        self.org = org
        self.user = user
        self._url = url
        self._guard = guard
        self._pool = pool  # a server's: every query borrows one of the process's bounded connections
        self._conn: psycopg.Connection | None = None
        self._lock = threading.RLock()
        # Each conversation's updated_at as this store's owner last wrote it or loaded it whole
        # (``Assistant.resume`` sets it): a later one in the database means somebody else added
        # to it since (see ``lease``).
        self.seen: dict[str, datetime] = {}

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            conn = _connect(self._url)
            if self._guard:
                _check(conn, self.org)
            self._conn = conn
        return self._conn

    def query(self, sql: str, params: tuple = (), *, fetch: str = "none", durable: bool = True):
        """One statement in this store's scope. ``durable`` (a write that must survive a database
        crash: a confirmation, its audit, a rename, a delete) waits for its WAL flush; otherwise it
        commits as the store's sessions do, without waiting (``_configure``): reads, and what a turn writes."""
        if self._pool is not None:
            return self._pool.query(sql, params, fetch=fetch, durable=durable)
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    return _run(conn, sql, params, fetch, durable)
                except psycopg.OperationalError:
                    if attempt == 2:
                        raise
                    self._conn = None  # the server restarted: reconnect once

    # -- conversations -------------------------------------------------------------------

    def create(self, title: str = "New conversation", model: str | None = None) -> str:
        return self.start(title, model).id

    def start(
        self,
        title: str = "New conversation",
        model: str | None = None,
        *,
        holder: str | None = None,
        ttl_s: float | None = None,
    ) -> ConversationInfo:
        """A new conversation, as ``get`` would describe it (in one round trip). ``holder``: its
        turn lease taken for it in the same statement, for ``ttl_s`` seconds (as ``claim`` would)."""
        row = self.query(  # with no holder, turn_until is NULL too (now() + NULL), as unleased
            "INSERT INTO chat_conversations (org, user_name, title, model, turn_holder, turn_until)"
            " VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s))"
            " RETURNING id, title, created_at, updated_at, model",
            (self.org, self.user, _title(title), model, holder, None if holder is None else float(ttl_s or 0)),
            fetch="one",
            durable=False,
        )
        self.seen[str(row[0])] = row[3]
        return ConversationInfo(str(row[0]), row[1], row[2], row[3], 0, row[4])

    def list(self, limit: int = 100, before: str | None = None) -> list[ConversationInfo]:
        """Newest first; ``before``: the last id of the previous page (the next page starts after it)."""
        page, params = "", [self.org, self.user]
        if before is not None:
            page = (
                " AND (c.updated_at, c.id) < (SELECT b.updated_at, b.id FROM chat_conversations b"
                " WHERE b.id = %s AND b.org = %s AND b.user_name = %s)"
            )
            params += [_uuid(before), self.org, self.user]
        rows = self.query(
            "SELECT c.id, c.title, c.created_at, c.updated_at, c.model,"
            " (SELECT count(*) FROM chat_messages m WHERE m.conversation_id = c.id AND m.role <> 'event')"
            " FROM chat_conversations c WHERE c.org = %s AND c.user_name = %s"
            + page
            + " ORDER BY c.updated_at DESC, c.id DESC LIMIT %s",
            (*params, limit),
            fetch="all",
            durable=False,
        )
        return [ConversationInfo(str(r[0]), r[1], r[2], r[3], r[5], r[4]) for r in rows]

    def get(self, conversation_id: str) -> ConversationInfo:
        row = self.query(
            "SELECT c.id, c.title, c.created_at, c.updated_at, c.model,"
            " (SELECT count(*) FROM chat_messages m WHERE m.conversation_id = c.id AND m.role <> 'event')"
            " FROM chat_conversations c WHERE c.id = %s AND c.org = %s AND c.user_name = %s",
            (_uuid(conversation_id), self.org, self.user),
            fetch="one",
            durable=False,
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

    # -- one turn at a time, across processes ------------------------------------------------

    def claim(self, conversation_id: str, holder: str, ttl_s: float) -> datetime | None:
        """Take the conversation's turn lease for ``holder`` if nobody else holds a live one; its
        ``updated_at`` when taken (a later one than last seen: another turn ran), else None."""
        row = self.query(
            "UPDATE chat_conversations SET turn_holder = %s, turn_until = now() + make_interval(secs => %s)"
            " WHERE id = %s AND org = %s AND user_name = %s"
            "   AND (turn_holder IS NULL OR turn_holder = %s OR turn_until < now()) RETURNING updated_at",
            (holder, ttl_s, _uuid(conversation_id), self.org, self.user, holder),
            fetch="one",
            durable=False,
        )
        if row is None:
            self.get(conversation_id)  # NotFound when it is not (or no longer) this user's
            return None
        return row[0]

    def holder(self, conversation_id: str) -> str | None:
        """Who holds the conversation's turn lease now (None: nobody, or it ran out)."""
        row = self.query(
            "SELECT turn_holder FROM chat_conversations WHERE id = %s AND org = %s AND user_name = %s"
            " AND turn_until >= now()",
            (_uuid(conversation_id), self.org, self.user),
            fetch="one",
            durable=False,
        )
        return row[0] if row else None

    def take_over(self, conversation_id: str, dead: str, holder: str, ttl_s: float) -> datetime | None:
        """Take the lease from ``dead`` (a holder known to be gone), as ``claim`` would."""
        row = self.query(
            "UPDATE chat_conversations SET turn_holder = %s, turn_until = now() + make_interval(secs => %s)"
            " WHERE id = %s AND org = %s AND user_name = %s AND turn_holder = %s RETURNING updated_at",
            (holder, ttl_s, _uuid(conversation_id), self.org, self.user, dead),
            fetch="one",
            durable=False,
        )
        return row[0] if row else None

    def renew(self, conversation_id: str, holder: str, ttl_s: float) -> bool:
        """Extend a lease ``holder`` holds; False when it was lost (expired and taken)."""
        n = self.query(
            "UPDATE chat_conversations SET turn_until = now() + make_interval(secs => %s)"
            " WHERE id = %s AND org = %s AND user_name = %s AND turn_holder = %s",
            (ttl_s, _uuid(conversation_id), self.org, self.user, holder),
            durable=False,
        )
        return n == 1

    def release(self, conversation_id: str, holder: str) -> datetime | None:
        """Give the lease back; the conversation's ``updated_at`` as the turn left it."""
        row = self.query(
            "UPDATE chat_conversations SET turn_holder = NULL, turn_until = NULL"
            " WHERE id = %s AND org = %s AND user_name = %s AND turn_holder = %s RETURNING updated_at",
            (_uuid(conversation_id), self.org, self.user, holder),
            fetch="one",
            durable=False,
        )
        if row is None:
            return None
        self.seen[_uuid(conversation_id)] = row[0]
        return row[0]

    # -- messages -------------------------------------------------------------------------

    def append(self, conversation_id: str, role: str, content: dict[str, Any]) -> int:
        """Append one message as it completes; returns its sequence number in the conversation."""
        return self.append_all(conversation_id, [(role, content)])[0]

    def append_all(
        self,
        conversation_id: str,
        messages: builtins.list[tuple[str, dict[str, Any]]],
        *,
        release: str | None = None,
    ) -> builtins.list[int]:
        """Append messages that complete together (a step's call and its results), in order, in one
        statement: a reader sees all of them or none. Returns their sequence numbers. ``release``:
        a turn's last write, which gives back the lease this holder holds in the same statement."""
        params: builtins.list[Any] = [release, release] if release is not None else []
        params += [_uuid(conversation_id), self.org, self.user]
        for role, content in messages:
            params += [role, Jsonb(content, dumps=_dumps)]
        sql = _append_sql(len(messages), release is not None)
        rows = self.query(sql, tuple(params), fetch="all", durable=False)
        if not rows:
            raise NotFound(f"No conversation {conversation_id} for user {self.user} in org {self.org}.")
        self.seen[_uuid(conversation_id)] = rows[0][1]
        return sorted(int(r[0]) for r in rows)

    def messages(self, conversation_id: str) -> builtins.list[StoredMessage]:  # self.list shadows list here
        return self.load(conversation_id)[1]

    def load(self, conversation_id: str) -> tuple[ConversationInfo, builtins.list[StoredMessage]]:
        """A conversation and its messages, oldest first; the conversation is read first, so
        whoever writes after that shows as a later ``updated_at`` than the one returned."""
        info = self.get(conversation_id)  # ownership check with a clear error
        rows = self.query(
            "SELECT m.seq, m.role, m.content, m.created_at FROM chat_messages m"
            " JOIN chat_conversations c ON c.id = m.conversation_id"
            " WHERE c.id = %s AND c.org = %s AND c.user_name = %s ORDER BY m.seq",
            (_uuid(conversation_id), self.org, self.user),
            fetch="all",
            durable=False,
        )
        return info, [StoredMessage(r[0], r[1], r[2], r[3]) for r in rows]

    def page(
        self, conversation_id: str, *, before: int | None = None, limit: int, roles: tuple[str, ...] | None = None
    ) -> builtins.list[StoredMessage]:
        """At most ``limit`` messages with a sequence number below ``before`` (default: all), the
        latest ones, oldest first (``roles``: only these). One keyset read backwards on the
        conversation's ``(conversation_id, seq)`` index: a page costs the same at any length."""
        rows = self.query(
            "SELECT m.seq, m.role, m.content, m.created_at FROM chat_messages m"
            " JOIN chat_conversations c ON c.id = m.conversation_id"
            " WHERE c.id = %s AND c.org = %s AND c.user_name = %s AND m.seq < %s"
            + (" AND m.role = ANY(%s)" if roles else "")
            + " ORDER BY m.seq DESC LIMIT %s",
            (
                _uuid(conversation_id),
                self.org,
                self.user,
                _SEQ_END if before is None else before,
                *((list(roles),) if roles else ()),
                limit,
            ),
            fetch="all",
            durable=False,
        )
        return [StoredMessage(r[0], r[1], r[2], r[3]) for r in reversed(rows)]

    def find(
        self,
        conversation_id: str,
        sql_filter: str,
        values: builtins.list[str],
        *,
        after: int | None = None,
        before: int | None = None,
    ) -> builtins.list[StoredMessage]:
        """Messages whose ``content`` path ``sql_filter`` (one of ``FINDABLE``) is one of
        ``values``, between two sequence numbers: what a page needs from outside itself."""
        path = FINDABLE[sql_filter]
        rows = self.query(
            "SELECT m.seq, m.role, m.content, m.created_at FROM chat_messages m"
            " JOIN chat_conversations c ON c.id = m.conversation_id"
            f" WHERE c.id = %s AND c.org = %s AND c.user_name = %s AND m.seq > %s AND m.seq < %s AND {path} = ANY(%s)"
            " ORDER BY m.seq",
            (_uuid(conversation_id), self.org, self.user, after or 0, _SEQ_END if before is None else before, values),
            fetch="all",
            durable=False,
        )
        return [StoredMessage(r[0], r[1], r[2], r[3]) for r in rows]

    def last_seq(self, conversation_id: str) -> int:
        """The sequence number of the conversation's latest message (0: none); its length."""
        row = self.query(
            "SELECT coalesce(max(m.seq), 0) FROM chat_messages m JOIN chat_conversations c ON c.id = m.conversation_id"
            " WHERE c.id = %s AND c.org = %s AND c.user_name = %s",
            (_uuid(conversation_id), self.org, self.user),
            fetch="one",
            durable=False,
        )
        return int(row[0])

    def highest_result(self, conversation_id: str) -> int:
        """The highest ``rN`` result id any tool message of the conversation carries (0: none),
        found in the database, so a resumed thread numbers on without reading every message."""
        row = self.query(
            "SELECT coalesce(max(substring(m.content->'message'->>'content' from %s)::bigint), 0)"
            " FROM chat_messages m JOIN chat_conversations c ON c.id = m.conversation_id"
            " WHERE c.id = %s AND c.org = %s AND c.user_name = %s AND m.role = 'tool'",
            (_RESULT_ID, _uuid(conversation_id), self.org, self.user),
            fetch="one",
            durable=False,
        )
        return int(row[0])

    def close(self) -> None:
        """Let go of this store's own connection (a pooled store holds none between queries)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class StorePool:
    """A server process's conversation-store connections for one scope: at most ``size`` open,
    whatever the number of sessions; each query borrows one and gives it back (psycopg_pool).
    The role is checked (least privilege, bound to ``org``) on the first connection."""

    def __init__(self, url: str, org: str, *, size: int, timeout: float = 10.0) -> None:
        from psycopg_pool import ConnectionPool, PoolTimeout

        self.org = org
        self.size = size
        self._checked = False
        self._check_lock = threading.Lock()
        self._timeout = timeout
        self._pool_timeout = PoolTimeout  # psycopg_pool is imported only where a pool is made
        self._pool = ConnectionPool(
            url,
            min_size=0,
            max_size=size,
            timeout=timeout,
            open=True,
            name=f"nexus-store-{org}",
            kwargs={"autocommit": True, "connect_timeout": 10},
            configure=_configure,
            reconnect_timeout=timeout,
        )

    def query(self, sql: str, params: tuple = (), *, fetch: str = "none", durable: bool = True):
        for attempt in (1, 2):
            try:
                # getconn/putconn rather than the pool's connection() block, whose ``with conn``
                # costs a commit check per query on these autocommit connections.
                conn = self._pool.getconn()
                try:
                    if not self._checked:
                        with self._check_lock:
                            if not self._checked:
                                _check(conn, self.org)
                                self._checked = True
                    return _run(conn, sql, params, fetch, durable)
                finally:
                    self._pool.putconn(conn)
            except self._pool_timeout:
                raise QueryError(
                    f"Cannot reach the conversation store: no connection free or made within {self._timeout:g} s "
                    f"(this process holds at most {self.size}; the database may be restarting)."
                ) from None
            except psycopg.OperationalError:
                if attempt == 2:
                    raise
                self._pool.check()  # the server restarted: drop the idle connections it broke

    def close(self) -> None:
        self._pool.close(timeout=2)


def _connect(url: str) -> psycopg.Connection:
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        _configure(conn)
        return conn
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        hint = FULL_HINT if out_of_connections(exc) else None
        raise QueryError(f"Cannot reach the conversation store: {connect_failure(exc)}", hint=hint) from None


def _configure(conn: psycopg.Connection) -> None:
    """A store session's commits do not wait for their WAL flush: what a turn writes (its messages,
    its lease, a new conversation) may be lost to a database crash in its last few ms, never half
    written, and a turn pays no flush per step. A write that must survive such a crash (a
    confirmation, its audit, a rename, a delete) is ``durable`` and waits for its own flush."""
    conn.execute("SET synchronous_commit = off")


def _check(conn: psycopg.Connection, org: str) -> None:
    """The store role is what it must be: least privilege, bound to ``org`` (or every org)."""
    from .guard import check_role
    from .schema import ALL_ORGS

    try:
        check_role(lambda sql: conn.execute(sql).fetchone(), kind="store", scope=None if org == ALL_ORGS else org)
    except QueryError:
        conn.close()
        raise


def _run(conn: psycopg.Connection, sql: str, params: tuple, fetch: str, durable: bool):
    # PostgreSQL text cannot hold NUL, and a question or a model's title may: shown as U+FFFD.
    if any(type(p) is str and "\x00" in p for p in params):
        params = tuple(p.replace("\x00", "\ufffd") if isinstance(p, str) else p for p in params)
    if not durable:
        return _prepared(conn, sql, params, fetch)
    with conn.transaction():  # SET LOCAL needs a transaction of its own
        conn.execute("SET LOCAL synchronous_commit = on")
        return _fetch(conn.execute(sql, params), fetch)


class _Session:
    """What ``_prepared`` keeps for one connection: its prepared statements, (query, parameter
    types) -> name, and the one ``Transformer`` its statements dump and load through, reused as a
    psycopg cursor reuses its own, so each dumper and loader (a ``timestamptz`` loader reads the
    session's time zone) is made once per connection, not once per statement. It is used under
    the connection's lock, as the connection is."""

    __slots__ = ("names", "tx")

    def __init__(self, conn: psycopg.Connection) -> None:
        self.names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self.tx = Transformer(conn)


_SESSION = "_nexus_statements"  # the attribute of a connection that holds its _Session
_SESSION_LOCK = threading.Lock()


def statements_of(conn: psycopg.Connection) -> _Session:
    """The connection's ``_Session``, kept on the connection itself. Its Transformer refers to the
    connection, so a map keyed weakly by connections would never let one go (every connection a
    pool ever replaced kept, with its statements); on the connection it is a cycle the garbage
    collector frees with it."""
    session = conn.__dict__.get(_SESSION)
    if session is None:
        with _SESSION_LOCK:
            session = conn.__dict__.setdefault(_SESSION, _Session(conn))
    return session


_NAMES = itertools.count(1)
_MAX_PREPARED = 128  # statements kept prepared on one connection
# The server forgot a prepared statement (26000) or cannot reuse its plan (0A000: a column's type
# changed under it): prepared again once.
_STALE_STATEMENT = ("26000", "0A000")


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> bytes | None:
    """The statement with PostgreSQL's ``$n`` placeholders for its ``%s`` ones; None when it holds
    any other ``%`` (it goes through psycopg's own conversion)."""
    parts = sql.split("%s")
    if any("%" in part for part in parts):
        return None
    return (parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))).encode()


def _prepared(conn: psycopg.Connection, sql: str, params: tuple, fetch: str):
    """One autocommitted statement as a prepared statement of this connection (prepared on its
    first use there): the parameters dumped and the rows loaded by psycopg's own adapters, as
    ``conn.execute`` does, without the cursor's machinery around them (half a store query's CPU).
    The round trips go through ``conn.wait``, like psycopg's, so other threads run meanwhile."""
    query = _numbered(sql)
    if query is None:
        return _fetch(conn.execute(sql, params), fetch)
    session = statements_of(conn)
    tx, known, pg = session.tx, session.names, conn.pgconn
    with conn.lock:  # the connection's, and so its Transformer's
        values = tx.dump_sequence(params, [PyFormat.AUTO] * len(params))
        key = (query, tuple(tx.types or ()))
        formats = tx.formats
        for attempt in (1, 2):
            name = known.get(key)
            if name is None:
                if len(known) >= _MAX_PREPARED:  # the oldest one goes (texts are few: never, in practice)
                    oldest = next(iter(known))
                    pg.send_query(b"DEALLOCATE " + known.pop(oldest))
                    conn.wait(execute(pg))
                name = b"nexus_%d" % next(_NAMES)
                pg.send_prepare(name, query, key[1])
                _check_result(conn, conn.wait(execute(pg))[-1])
                known[key] = name
            pg.send_query_prepared(name, values, param_formats=formats)
            result = conn.wait(execute(pg))[-1]
            if result.status == pq.ExecStatus.FATAL_ERROR and attempt == 1:
                state = result.error_field(pq.DiagnosticField.SQLSTATE)
                if state and state.decode() in _STALE_STATEMENT:
                    del known[key]  # prepared again below, under a new name
                    if state == b"0A000":
                        pg.send_query(b"DEALLOCATE " + name)
                        conn.wait(execute(pg))
                    continue
            _check_result(conn, result)
            break
        if fetch == "none":
            return result.command_tuples if result.command_tuples is not None else -1
        tx.set_pgresult(result)
        rows = tx.load_rows(0, result.ntuples, tuple)
        tx.set_pgresult(None)  # an idle connection keeps no result (a long conversation's) alive
    if fetch == "one":
        return rows[0] if rows else None
    return rows


def _check_result(conn: psycopg.Connection, result: pq.abc.PGresult) -> None:
    if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        return
    if conn.pgconn.status == pq.ConnStatus.BAD:
        raise psycopg.OperationalError(conn.pgconn.get_error_message() or "the connection was lost")
    raise pg_errors.error_from_result(result, encoding=conn.info.encoding)


@functools.lru_cache(maxsize=32)
def _append_sql(count: int, release: bool) -> str:
    """``append_all``'s statement for ``count`` messages (one text per count, so each is prepared
    once per connection): the conversation's row is updated first (it must be this user's; its row
    lock orders concurrent appends), then each message is numbered after the conversation's last.
    ``release``: the row's lease is cleared too if the holder given first holds it."""
    values = ", ".join(f"({n}, %s, %s::jsonb)" for n in range(1, count + 1))
    lease = (
        ", turn_holder = CASE WHEN turn_holder = %s THEN NULL ELSE turn_holder END,"
        " turn_until = CASE WHEN turn_holder = %s THEN NULL ELSE turn_until END"
        if release
        else ""
    )
    return (
        "WITH c AS (UPDATE chat_conversations SET updated_at = now()"
        + lease
        + "           WHERE id = %s AND org = %s AND user_name = %s RETURNING id, updated_at)"
        " INSERT INTO chat_messages (conversation_id, seq, role, content)"
        " SELECT c.id, coalesce((SELECT max(seq) FROM chat_messages WHERE conversation_id = c.id), 0) + m.n,"
        " m.role, m.content"
        f" FROM c, (VALUES {values}) AS m (n, role, content)"
        " RETURNING seq, (SELECT updated_at FROM c)"
    )


def _fetch(cur: psycopg.Cursor, fetch: str):
    if fetch == "one":
        return cur.fetchone()
    if fetch == "all":
        return cur.fetchall()
    return cur.rowcount


def _title(title: str) -> str:
    title = " ".join(str(title).split())
    return (title[:77] + "...") if len(title) > 80 else (title or "New conversation")


# A \u0000 escape in JSON text (not an escaped backslash followed by "u0000"): jsonb refuses it.
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _dumps(content: Any) -> bytes:
    """JSON that PostgreSQL's jsonb accepts, as the UTF-8 psycopg sends: any value as text, no lone
    surrogates and no NUL characters (each shown as U+FFFD instead; a model may send either).

    Written by ``fastjson`` (orjson), it stores the same jsonb as ``json.dumps(content,
    default=str)`` did (``tests/test_store_statements.py`` compares them in the database), with
    one deliberate difference: a float NaN or infinity is stored as null, where json's ``NaN``
    was refused by jsonb and the write failed. (A plain ``Enum`` would be stored by its value, not
    its ``str``; no stored content holds one: pydantic's JSON dumps hold values.) orjson writes
    no lone surrogate: only json's fallback can, so the text is cleaned only when UTF-8 cannot
    hold it."""
    text = fastjson.dumps(content, default=str)
    try:
        data = text.encode()
    except UnicodeEncodeError:
        data = without_surrogates(text).encode()
    if b"\\u0000" in data:
        data = _NUL_ESCAPE.sub(lambda m: m.group(1) + "\\ufffd", data.decode()).encode()
    return data
