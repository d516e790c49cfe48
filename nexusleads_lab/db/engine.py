"""The SQL engine every query goes through: a guarded read path and a confirmed write path.

Reads run as a login role that can only SELECT the lead tables (least privilege is the
guard; the checks here only make the errors clearer), one statement at a time, read-only,
under a statement timeout and a row cap applied *on the server*, so a huge result never
reaches the kernel. Results travel through ADBC as Arrow and stay Arrow (``QueryResult.table``):
the model's preview and a dashboard read the few rows they need from it, and the pandas
DataFrame is built only when something asks for ``QueryResult.df`` (the notebook).
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import EngineLimits
from . import bounded, temporal
from .errors import FULL_HINT, QueryError, connect_failure, from_adbc, from_psycopg, out_of_connections
from .guard import check_role, describe_scope
from .readsql import check_read
from .verdicts import Verdicts

#: Whose reads these are: an assistant sets it for its turn (and its tool threads inherit it), so
#: ``Engine.cancel(scope)`` stops that assistant's queries and no one else's on a shared engine; a
#: scope whose ``cancelled`` says True (a stopped turn) starts no more reads, nor waits for one.
CANCEL_SCOPE: contextvars.ContextVar[object | None] = contextvars.ContextVar("nexus_cancel_scope", default=None)

if TYPE_CHECKING:
    import psycopg

# The user's SQL goes between these (first to learn its columns, then inside ``bounded.wrap``);
# a trailing "--" comment in it cannot swallow the closing parenthesis: it sits on its own line.
_WRAP_HEAD = "SELECT * FROM (\n"
_WRAP_TAIL = "\n) AS nexus_result LIMIT {limit}"

_WRAP_IN_MESSAGE = re.compile(r"\s*\) AS nexus_result(\([^)]*\))? LIMIT \d+")
# The driver hands results over in batches of about this many bytes (its default is 16 MiB);
# smaller pieces keep one batch in flight small next to the byte cap.
_BATCH_HINT_BYTES = 4 * 1024 * 1024
_BATCH_HINT = str(_BATCH_HINT_BYTES)

# Connection trouble (server restart, socket gone): a read may be retried once elsewhere.
_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")
_CONNECTION_WORDS = ("server closed the connection", "connection", "terminating connection", "no connection")

_INT_TYPES = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


@dataclass
class QueryResult:
    """A finished read: the whole (capped) result as an Arrow table (its DataFrame built on first
    use), and how it came to be."""

    sql: str
    table: pa.Table
    row_count: int
    truncated: bool
    elapsed_ms: float
    row_cap: int
    column_types: dict[str, str] = field(default_factory=dict)
    truncated_by: str | None = None  # "rows" (the row cap), "bytes" (the result byte cap) or "value" (one value)
    max_bytes: int | None = None
    # numeric columns (by position) as the driver sent them: exact decimal text, scale kept
    numeric_text: dict[int, pa.ChunkedArray] = field(default_factory=dict)
    _df: pd.DataFrame | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def df(self) -> pd.DataFrame:
        """The result as a pandas DataFrame (``arrow_to_pandas``; its ``attrs["sql"]`` is the query),
        built on first use and kept: the notebook's frame, never the server's path."""
        if self._df is None:
            frame = arrow_to_pandas(self.table)
            frame.attrs["sql"] = self.sql
            self._df = frame
        return self._df

    def column_values(self, position: int, rows: int | None = None) -> list:
        """The first ``rows`` values of column ``position`` (all when None) as Python objects, the
        values the DataFrame's column holds (``column_objects``), without building it."""
        col = self.table.column(position)
        whole = col
        if rows is not None and rows < len(col):
            col = col.slice(0, rows)
        return column_objects(col, self.table.schema.field(position), care=temporal.needs_care(whole))

    def exact_values(self, position: int, rows: int | None = None) -> list:
        """Column ``position`` as the model and ``--json`` get it: for a numeric column, each value
        as a JSON number where that number is exactly what PostgreSQL wrote (12.5, 3), else its
        text form (``"12.50"``, ``"12345678901234567890.12"``, ``"NaN"``); None for NULL."""
        text = self.numeric_text[position]
        if rows is not None:
            text = text.slice(0, rows)
        return [numeric_json(v) for v in text.to_pylist()]

    @property
    def truncation_note(self) -> str | None:
        """One sentence on why the result stops where it does, for the model and the person."""
        if self.truncated_by == "bytes":
            return (
                f"Stopped after {self.row_count:,} rows at the result size cap of {_mib(self.max_bytes)} "
                "(NEXUS_RESULT_MAX_BYTES); select fewer or narrower columns, or aggregate."
            )
        if self.truncated_by == "value":
            return (
                "Some values were too large to bring back whole (the result size cap NEXUS_RESULT_MAX_BYTES, "
                "shared among the wide columns): long text is cut to a prefix, other large values are NULL; "
                "select a shorter part (left(col, n)) or aggregate."
            )
        if self.truncated_by == "rows":
            return f"Stopped at the row cap of {self.row_cap:,}; aggregate or filter for exact answers."
        return None

    def to_dict(self) -> dict:
        return {
            "sql": self.sql,
            "row_count": self.row_count,
            "truncated": self.truncated,
            "truncated_by": self.truncated_by,
            "row_cap": self.row_cap,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "columns": self.column_types,
        }

    def to_json(self) -> dict:
        """``nexus-lab sql --json``'s object (the MCP ``psql`` tool's too): ``to_dict`` plus the rows,
        numerics as PostgreSQL wrote them where a float would change them."""
        rows = json.loads(self.df.to_json(orient="values", date_format="iso", date_unit="us", default_handler=str))
        for position in self.numeric_text:
            for row, value in zip(rows, self.exact_values(position)):
                row[position] = value
        return {**self.to_dict(), "rows": [dict(zip(self.df.columns, r)) for r in rows]}


@dataclass
class WriteResult:
    """A confirmed write: committed with exactly the expected row counts, or rolled back."""

    statements: list[str]
    statement_rows: list[int]  # rows each statement changed (up to the one that differed)
    committed: bool
    role: str
    elapsed_ms: float
    mismatch: tuple[int, int, int] | None = None  # (statement index, expected, found)

    @property
    def rows_affected(self) -> int:
        """Rows the database now holds changed: zero when the write was rolled back."""
        return sum(self.statement_rows) if self.committed else 0

    @property
    def found_rows(self) -> int:
        return sum(self.statement_rows)


# What may run on the read path, decided by PostgreSQL's own parser (``readsql``).
precheck = check_read


def is_url(conninfo: str) -> bool:
    """A postgres:// URL, as opposed to a libpq key=value string."""
    return conninfo.lower().startswith(("postgres://", "postgresql://"))


def with_options(url: str, **options: str) -> str:
    """Add libpq ``options=-c name=value`` settings to a connection URL or key=value string."""
    settings = " ".join(f"-c {k}={v}" for k, v in options.items())
    if not is_url(url):
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(url)
        params["options"] = f"{params.get('options') or ''} {settings}".strip()
        params.setdefault("connect_timeout", "10")
        params.setdefault("application_name", "nexusleads-lab")
        return make_conninfo("", **params)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query["options"] = (query.get("options", "") + " " + settings).strip()
    query.setdefault("connect_timeout", "10")
    query.setdefault("application_name", "nexusleads-lab")
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _is_connection_error(exc: Exception, sqlstate: str | None) -> bool:
    if sqlstate and sqlstate.startswith(_CONNECTION_STATES):
        return True
    text = str(exc).lower()
    return sqlstate is None and any(w in text for w in _CONNECTION_WORDS)


def _stopped() -> QueryError:
    return QueryError("The read was stopped before it started.")


class _ReadPool:
    """A small pool of ADBC connections for the agent role: at most ``size`` open, whatever the
    number of callers (a read beyond them waits for one to come back); broken ones are dropped."""

    def __init__(self, url: str, size: int, timeout_ms: int, scope: str | None) -> None:
        self._scope = scope
        self.size = size
        self._slots = threading.BoundedSemaphore(size)  # one per connection in use
        self._wait_s = max(timeout_ms / 1000, 30.0)
        self._url = with_options(
            url,
            statement_timeout=str(timeout_ms),
            default_transaction_read_only="on",
            idle_in_transaction_session_timeout="60000",
            lock_timeout="5000",
        )
        self._idle: list = []  # connections not in use, the last given back first (under _lock)
        self._busy: dict = {}  # connection -> the cancel scope it reads for (CANCEL_SCOPE)
        self._lock = threading.Lock()
        self._verified = False

    def _connect(self):
        import adbc_driver_postgresql.dbapi as adbc

        try:
            conn = adbc.connect(self._url, autocommit=True)
        except Exception as exc:  # unreachable server, unknown role, bad password
            d = from_adbc(exc)
            raise QueryError(
                f"Cannot connect to the database as the agent's read-only role: {connect_failure(d.message)}",
                sqlstate=d.sqlstate,
                hint=FULL_HINT if out_of_connections(d.message, d.sqlstate) else _ROLE_HINT,
            ) from None
        if not self._verified:
            self._verify(conn)
        return conn

    def _verify(self, conn) -> None:
        def fetch(sql: str):
            cur = conn.cursor()
            try:
                cur.execute(sql)
                return cur.fetchone()
            finally:
                cur.close()

        try:
            check_role(fetch, kind="reader", scope=self._scope)
        except QueryError:
            conn.close()
            raise
        self._verified = True

    def acquire(self):
        scope = CANCEL_SCOPE.get()
        if not self._slots.acquire(blocking=False) and not self._wait_for_slot(scope):
            raise QueryError(
                f"All {self.size} read connections of this process were busy for {self._wait_s:g} s; "
                "try again in a moment (NEXUS_POOL_SIZE sets how many there are)."
            )
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            try:
                conn = self._connect()
            except BaseException:
                self._slots.release()
                raise
        with self._lock:
            self._busy[conn] = scope
        if getattr(scope, "cancelled", False):  # stopped while it connected: cancel_all found nothing
            self.release(conn)
            raise _stopped()
        return conn

    def _wait_for_slot(self, scope: object | None) -> bool:
        """Wait up to ``_wait_s`` for a slot; a cancel scope that says it is ``cancelled`` (a
        stopped turn) stops waiting, as ``cancel_all`` stops its statements that run."""
        deadline = time.monotonic() + self._wait_s
        while (left := deadline - time.monotonic()) > 0:
            if self._slots.acquire(timeout=min(left, 0.1)):
                return True
            if getattr(scope, "cancelled", False):
                raise _stopped()
        return False

    def release(self, conn, *, broken: bool = False) -> None:
        try:
            with self._lock:
                self._busy.pop(conn, None)
                if not broken and len(self._idle) < self.size:
                    self._idle.append(conn)
                    return
            _close_quietly(conn)
        finally:
            self._slots.release()

    def cancel_all(self, scope: object | None = None) -> int:
        """Cancel the statements in flight (from any thread): those read for ``scope`` (see
        ``CANCEL_SCOPE``), or every one when it is None. Returns how many were signalled."""
        with self._lock:
            busy = [conn for conn, owner in self._busy.items() if scope is None or owner is scope]
        for conn in busy:
            try:
                conn.adbc_cancel()
            except Exception:
                pass
        return len(busy)

    def drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close_quietly(conn)

    close = drop_idle


_ROLE_HINT = (
    "Agent reads need a login role that can only SELECT the lead tables. Run `nexus-lab db roles` "
    "(and `nexus-lab db roles --org SLUG`) as a superuser, then set NEXUS_AGENT_DATABASE_URL to that role."
)
NO_WRITER = (
    "Confirmed writes are not configured: DATABASE_URL is set but NEXUS_WRITER_DATABASE_URL is not, and "
    "writing as the DATABASE_URL role (the tables' owner) is refused. Create the writer role with "
    "`nexus-lab db roles` (and `--org SLUG`) as a superuser and set NEXUS_WRITER_DATABASE_URL to it; "
    "nothing was written."
)


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:
        pass


def _statement(conn):
    """A new ADBC statement of ``conn``, to use directly and close: a read's statements, where a
    DB-API cursor (its statement, options and result wrapper) cost several times as much. Made
    per read, not kept with the connection: a connection refuses to close while a statement of
    it is open, and one collected unclosed (at exit, say) closes no statements first."""
    from adbc_driver_manager import AdbcStatement

    return AdbcStatement(conn.adbc_connection)


def _blocking(statement, call):
    """``call`` of ``statement`` (``execute_query``, ``execute_schema`` or ``execute_update``) as
    the DB-API cursor runs it: on the main thread (a notebook, the CLI) Ctrl-C cancels the
    statement on the server, where it would otherwise wait for the statement timeout (the helper
    is the driver manager's own, private: without it, the call runs plainly)."""
    try:
        from adbc_driver_manager._lib import _blocking_call
    except ImportError:  # pragma: no cover - every release since 1.0 has it
        return call()
    return _blocking_call(call, (), {}, statement.cancel)


class Engine:
    """Runs agent reads (least privilege, read-only, bounded) and confirmed writes."""

    def __init__(
        self,
        agent_url: str | None,
        writer_url: str | None,
        limits: EngineLimits | None = None,
        *,
        scope: str | None = None,
        check: Callable[[str], str] = precheck,
    ) -> None:
        self.limits = limits or EngineLimits()
        self.scope = scope  # an organization slug, or None for every organization
        self._check = check
        self._verdicts = Verdicts(check)  # the same text is parsed and judged once per engine
        self.agent_url = agent_url
        self.writer_url = writer_url
        self._reads = (
            _ReadPool(agent_url, self.limits.pool_size, self.limits.statement_timeout_ms, scope) if agent_url else None
        )
        self._writer: psycopg.Connection | None = None
        self._writer_role: str | None = None
        self._writer_lock = threading.Lock()

    @property
    def scope_label(self) -> str:
        return describe_scope(self.scope)

    # -- reads -----------------------------------------------------------------------------

    def read(self, sql: str, *, row_cap: int | None = None, timeout_ms: int | None = None) -> QueryResult:
        """Run one read query as the agent role and return the whole (capped) result."""
        max_bytes = self.limits.result_max_bytes
        # One value of a result may bring back at most a quarter of the cap (bounded.per_value_bound):
        # an aggregate building more is stopped in the backend while it builds.
        text, sent = self._verdicts.checked(sql, aggregate_bound(max_bytes))
        if self._reads is None:
            raise QueryError("No read-only agent role is configured.", hint=_ROLE_HINT)
        cap = self.limits.row_cap if row_cap is None else int(row_cap)
        if cap < 1:
            raise QueryError(f"The row cap must be at least 1, got {cap}.")
        started = time.perf_counter()
        for attempt in (1, 2):
            conn = self._reads.acquire()
            broken = False
            try:
                table, over_bytes, head, described = self._fetch(conn, sent.text, cap + 1, timeout_ms, max_bytes)
                break
            except QueryError:
                raise
            except Exception as exc:
                d = from_adbc(exc)
                head = getattr(exc, "nexus_head", len(_WRAP_HEAD))
                broken = _is_connection_error(exc, d.sqlstate)
                if broken and attempt == 1:
                    # The server restarted: every idle connection is as dead as this one.
                    self._reads.drop_idle()
                    continue
                raise QueryError(
                    _WRAP_IN_MESSAGE.sub("", d.message),
                    sqlstate=d.sqlstate,
                    hint=d.hint or _hint_for(d.sqlstate, d.message, self, timeout_ms),
                    detail=d.detail,
                    position=_unwrap_position(d.position, head, sent),
                    sql=text,
                ) from None
            finally:
                broken = broken or not _reset(conn)
                self._reads.release(conn, broken=broken)
        else:  # pragma: no cover - the second attempt either breaks or raises
            raise AssertionError("unreachable")
        over_rows = table.num_rows > cap
        if over_rows:
            table = table.slice(0, cap)
        cut_values = False
        if table.num_columns and table.schema.names[-1] == bounded.CUT_COLUMN:
            cut_values = any(chunk.true_count for chunk in table.column(table.num_columns - 1).chunks)
            table = table.remove_column(table.num_columns - 1)
        truncated = over_rows or over_bytes or cut_values
        # The types the query produced (the wrapper sends some as their text form).
        column_types = {f.name: _pg_type(f) for f in described}
        numeric_text = {
            i: pa.chunked_array([c.storage for c in col.chunks], type=col.type.storage_type)
            for i, (col, fld) in enumerate(zip(table.columns, table.schema))
            if isinstance(col.type, pa.BaseExtensionType) and _pg_type(fld) == "numeric"
        }
        elapsed = (time.perf_counter() - started) * 1000
        return QueryResult(
            sql=text,
            table=table,
            row_count=table.num_rows,
            truncated=truncated,
            elapsed_ms=elapsed,
            row_cap=cap,
            column_types=column_types,
            truncated_by="bytes" if over_bytes else ("rows" if over_rows else ("value" if cut_values else None)),
            max_bytes=max_bytes,
            numeric_text=numeric_text,
        )

    def _fetch(
        self, conn, text: str, limit: int, timeout_ms: int | None, max_bytes: int
    ) -> tuple[pa.Table, bool, int, pa.Schema]:
        """The result as Arrow, read batch by batch; past ``max_bytes`` (what the batches will take
        in the kernel, ``bounded.client_cost``) stop reading, cancel the query and keep only the
        rows that fit. Returns the table, True when it stopped at the byte cap, where the model's
        text starts in the statement sent (for error positions), and the query's own columns."""
        statement = _statement(conn)
        head = len(_WRAP_HEAD)
        reader = None
        try:
            statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": _BATCH_HINT})
            if timeout_ms is not None and timeout_ms != self.limits.statement_timeout_ms:
                statement.set_sql_query(f"SET statement_timeout = {int(timeout_ms)}")
                _blocking(statement, statement.execute_update)
            # Its columns first (the server describes the statement without running it), so every
            # variable-width value can be bounded on the server before it travels. Described on every
            # read (2 of its 6 round trips; the driver describes the wrapped statement again to decode
            # its COPY): a schema remembered per query text could be stale after a migration, and a
            # column become wide would then travel unbounded.
            statement.set_sql_query(_WRAP_HEAD + text + _WRAP_TAIL.format(limit=limit))
            schema = pa.schema(_blocking(statement, statement.execute_schema))
            wrapped, head, objects = bounded.statement(text, schema, limit, max_bytes)
            statement.set_sql_query(wrapped)
            stream, _ = _blocking(statement, statement.execute_query)
            reader = pa.RecordBatchReader._import_from_c(stream.address)
            batches: list[pa.RecordBatch] = []
            total = 0
            over = False
            for batch in reader:
                size = bounded.client_cost(batch, objects)
                if total + size > max_bytes:
                    fit = int((max_bytes - total) * batch.num_rows // size) if size else 0
                    if fit > 0:
                        batches.append(batch.slice(0, fit))
                    over = True
                    break
                batches.append(batch)
                total += size
            if over:
                conn.adbc_cancel()  # the server stops producing the rest
            return pa.Table.from_batches(batches, schema=reader.schema), over, head, schema
        except Exception as exc:
            exc.nexus_head = head  # type: ignore[attr-defined]
            raise
        finally:
            if reader is not None:
                reader.close()
            statement.close()

    def cancel(self, scope: object | None = None) -> int:
        """Cancel reads in flight (safe from any thread): those of ``scope`` (one assistant's, so a
        Stop in one session of a server leaves the others' queries alone), or all of them."""
        return self._reads.cancel_all(scope) if self._reads else 0

    # -- writes ----------------------------------------------------------------------------

    @contextmanager
    def _writer_conn(self) -> Iterator[psycopg.Connection]:
        import psycopg

        if not self.writer_url:
            raise QueryError(NO_WRITER)
        with self._writer_lock:
            if self._writer is not None and not self._writer.closed and not _alive(self._writer):
                self._writer.close()
            if self._writer is None or self._writer.closed or self._writer.broken:
                try:
                    conn = psycopg.connect(self.writer_url, autocommit=True, connect_timeout=10, prepare_threshold=None)
                except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
                    raise QueryError(f"Cannot connect to the database for writes: {connect_failure(exc)}") from None
                try:
                    self._writer_role = check_role(
                        lambda sql: conn.execute(sql).fetchone(), kind="writer", scope=self.scope
                    )
                except QueryError:
                    conn.close()
                    raise
                self._writer = conn
            yield self._writer

    def write(self, statements: list[str], expected: list[int], *, timeout_ms: int = 60_000) -> WriteResult:
        """Run these statements, in order, in one transaction, as the scope's writer role.

        Each must change exactly the number of rows ``expected`` says (what the person was
        shown); the first that does not rolls everything back. Each statement goes through the
        extended query protocol, so the server itself refuses a second statement smuggled into
        one (no ``...; COMMIT; DELETE ...``).
        """
        from psycopg import errors as pg_errors
        from psycopg import pq

        if not statements or len(statements) != len(expected):
            raise QueryError("A write needs its statements and the row count previewed for each.")
        for sql in statements:
            if not isinstance(sql, str) or not sql.strip():
                raise QueryError("Empty statement: nothing to run.")
            if "\x00" in sql:
                raise QueryError("The statement contains a NUL byte, which PostgreSQL does not accept.")
        started = time.perf_counter()
        counts: list[int] = []
        mismatch = None
        with self._writer_conn() as conn:
            pg = conn.pgconn

            def run(command: bytes, params: list | None = None):
                res = pg.exec_(command) if params is None else pg.exec_params(command, params)
                if res.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
                    raise pg_errors.error_from_result(res, encoding=conn.info.encoding)
                return res

            current = None
            try:
                run(b"BEGIN")
                run(f"SET LOCAL statement_timeout = {int(timeout_ms)}".encode())
                for i, (sql, want) in enumerate(zip(statements, expected)):
                    current = sql
                    found = int(run(sql.encode(), []).command_tuples or 0)
                    counts.append(found)
                    if found != want:
                        mismatch = (i, int(want), found)
                        break
                run(b"ROLLBACK" if mismatch else b"COMMIT")
            except Exception as exc:
                _rollback_quietly(conn)
                if isinstance(exc, pg_errors.Error) or hasattr(exc, "sqlstate"):
                    d = from_psycopg(exc)
                    raise QueryError(
                        d.message, sqlstate=d.sqlstate, hint=d.hint, detail=d.detail, position=d.position, sql=current
                    ) from None
                raise
            finally:
                _discard_quietly(conn)
        return WriteResult(
            statements=list(statements),
            statement_rows=counts,
            committed=mismatch is None,
            role=self._writer_role or "?",
            elapsed_ms=(time.perf_counter() - started) * 1000,
            mismatch=mismatch,
        )

    def close(self) -> None:
        if self._reads:
            self._reads.close()
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass


_INTEGRAL = re.compile(r"-?[0-9]+")
# The driver's spelling of the special values, and PostgreSQL's.
_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity", "infinity": "Infinity", "-infinity": "-Infinity"}


def numeric_json(text: str | None) -> int | float | str | None:
    """A numeric's text as JSON keeps it: an int or a float when that prints back exactly as
    PostgreSQL wrote it, else the text itself (a float would drop the scale of 12.50 or the
    digits of 12345678901234567890.12, and JSON has no NaN)."""
    if text is None:
        return None
    special = _SPECIAL.get(text.lower())
    if special:
        return special
    if _INTEGRAL.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if repr(number) == text else text


def aggregate_bound(max_bytes: int) -> int:
    """Bytes one aggregate may put into one value in the backend: what one value of a result may
    bring back whole (``bounded.per_value_bound`` for a single wide column), at least 1 MiB."""
    return max(1 << 20, max_bytes // 4)


def _mib(n: int | None) -> str:
    return f"{(n or 0) / (1024 * 1024):,.0f} MiB"


def _alive(conn) -> bool:
    """A write is rare and confirmed by a person: a round trip to check the socket is cheap."""
    try:
        conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def _rollback_quietly(conn) -> None:
    try:
        conn.pgconn.exec_(b"ROLLBACK")
    except Exception:
        pass


def _discard_quietly(conn) -> None:
    try:
        conn.pgconn.exec_(b"DISCARD ALL")
    except Exception:
        pass


def _reset(conn) -> bool:
    """Drop all session state a query may have left (settings, locks, prepared statements,
    cursors, listeners) so the next query starts clean. False when the connection is unusable.

    One simple query (``execute_update``: one round trip), where a cursor's ``execute`` would
    prepare and describe it first, three round trips for a statement that returns nothing."""
    try:
        statement = _statement(conn)
        try:
            statement.set_sql_query("DISCARD ALL")
            statement.execute_update()
        finally:
            statement.close()
        return True
    except Exception:
        return False


def _unwrap_position(position: int | None, head: int = len(_WRAP_HEAD), sent=None) -> int | None:
    """A position the server gave in the statement sent, as a position in the model's text."""
    if position is None:
        return None
    inner = position - head
    if inner < 1:
        return None
    return sent.original_position(inner) if sent is not None else inner


def _hint_for(sqlstate: str | None, message: str, engine: Engine, timeout_ms: int | None) -> str | None:
    if sqlstate == "57014":
        limit = timeout_ms or engine.limits.statement_timeout_ms
        return f"The statement ran longer than {limit} ms. Filter or aggregate more, or add a LIMIT."
    if sqlstate == "53400" and "temp_file_limit" in message:
        return (
            "The query spilled more to disk than the agent's temp_file_limit allows (a large sort, hash "
            "or set-returning function); aggregate or filter earlier, or add a LIMIT."
        )
    if sqlstate == "42501" and "permission denied for function" in message:
        return "The read-only role may not call that function; compute the value with other built-ins."
    if sqlstate == "42501" and ("permission denied for view" in message or "for table pg_" in message):
        return "The read-only role may not read that view; the lead tables and information_schema are readable."
    if sqlstate in ("25006", "42501"):
        return "The agent's connection can only read the lead tables; propose writes for confirmation instead."
    if sqlstate == "42601" and message.lstrip().startswith('syntax error at or near ";"'):
        return "Send exactly one SELECT statement, without a trailing second statement."
    return None


def _pg_type(f: pa.Field) -> str:
    meta = f.metadata or {}
    pg = meta.get(b"POSTGRESQL:type") or meta.get(b"ADBC:postgresql:typname")
    return pg.decode() if pg else str(f.type)


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas keeping what the database meant: nullable integers stay integers,
    numerics become floats, JSON becomes Python objects, arrays become lists."""
    unique = len(set(table.column_names)) == table.num_columns  # to_pandas' types_mapper goes by name
    if unique and not any(_needs_care(col) for col in table.columns):
        # One vectorised conversion is ~2x faster than column by column for small results.
        frame = table.to_pandas(types_mapper=_INT_TYPES.get)
        frame.columns = table.column_names
        return frame
    series = [_column_to_series(col, fld) for col, fld in zip(table.columns, table.schema)]
    # Built positionally: a query may return two columns with the same name.
    frame = pd.DataFrame(dict(enumerate(series)), index=pd.RangeIndex(table.num_rows), copy=False)
    frame.columns = table.column_names
    return frame


def _needs_care(col: pa.ChunkedArray) -> bool:
    typ = col.type
    return (
        isinstance(typ, pa.BaseExtensionType)
        or pa.types.is_list(typ)
        or pa.types.is_large_list(typ)
        or pa.types.is_struct(typ)
        or pa.types.is_interval(typ)
        or temporal.needs_care(col)
    )


def _column_to_series(col: pa.ChunkedArray, fld: pa.Field) -> pd.Series:
    typ = col.type
    if isinstance(typ, pa.BaseExtensionType):
        if getattr(typ, "extension_name", "") in ("arrow.json", "arrow.uuid"):
            return pd.Series(column_objects(col, fld), dtype=object)
        storage = pa.chunked_array([c.storage for c in col.chunks], type=typ.storage_type)
        if _pg_type(fld) == "numeric":
            # float64, the dtype pandas users compute with (a decimal dtype cannot hold NaN or a scale
            # per value); the exact text goes to the model and --json (QueryResult.numeric_text).
            return pd.Series(pc.cast(storage, pa.float64()).to_numpy(zero_copy_only=False))
        col, typ = storage, storage.type
    if pa.types.is_interval(typ):
        return temporal.intervals(col)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_struct(typ) or temporal.needs_care(col):
        return pd.Series(column_objects(col, fld), dtype=object)  # the values as Python holds them
    if typ in _INT_TYPES:
        return col.to_pandas(types_mapper=_INT_TYPES.get)
    return col.to_pandas()


def column_objects(col: pa.ChunkedArray, fld: pa.Field, *, care: bool | None = None) -> list:
    """The column as the Python values its DataFrame column (``arrow_to_pandas``) holds, NULL as
    None: the same JSON, UUIDs, lists, float numerics, Timedeltas and out-of-range dates; a
    timestamp as a ``datetime`` (the DataFrame's ``Timestamp`` prints the same). ``care``: whether
    the whole column holds dates Python cannot (``temporal.needs_care``; the column's own when None).
    Rows taken this way cost a few microseconds, where building the DataFrame costs a millisecond."""
    typ = col.type
    if isinstance(typ, pa.BaseExtensionType):
        storage = pa.chunked_array([c.storage for c in col.chunks], type=typ.storage_type)
        if getattr(typ, "extension_name", "") == "arrow.json":
            return [None if v is None else json.loads(v) for v in storage.to_pylist()]
        if _pg_type(fld) == "numeric":
            return pc.cast(storage, pa.float64()).to_pylist()
        if getattr(typ, "extension_name", "") == "arrow.uuid":
            return [None if v is None else uuid.UUID(bytes=v) for v in storage.to_pylist()]
        col, typ = storage, storage.type
    if pa.types.is_interval(typ):
        return temporal.intervals(col).tolist()
    if (temporal.needs_care(col) if care is None else care) and (pa.types.is_date32(typ) or pa.types.is_timestamp(typ)):
        return temporal.to_objects(col)
    return col.to_pylist()
