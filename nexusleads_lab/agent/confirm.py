"""Confirmed writes: the model proposes, a person clicks, the kernel runs exactly what was shown.

A proposal is parsed by PostgreSQL's own parser (``db.dml``) and previewed with read-only
queries as the session's reader role: how many rows each statement would change and a before
-> after sample. Nothing runs with write privileges before the click. The proposal gets an
unguessable, single-use id bound to the SHA-256 of its canonical SQL and an expiry, stored
where the agent's role cannot reach. Confirming checks all three in one atomic UPDATE, runs
the canonical statements once in one transaction, commits only if each changed exactly the
rows it was shown to change, and audits what happened.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import safetext
from ..config import confirm_ttl
from ..db.dml import SAMPLE_ROWS, PlannedStatement, ProposalError, plan_write
from ..db.engine import Engine
from ..db.errors import QueryError
from ..words import noun

if TYPE_CHECKING:
    from .responses import ResolvedConfirm

SAMPLE_CELL_CHARS = 200

__all__ = ["ConfirmationError", "Confirmations", "Outcome", "Proposal", "ProposalError", "sql_hash"]


def sql_hash(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


class ConfirmationError(QueryError):
    """A confirmation that cannot run: unknown, used, expired, cancelled or tampered with."""


@dataclass(frozen=True)
class Proposal:
    """A previewed write waiting for a person. ``sql`` is the canonical text that will run."""

    id: str
    title: str
    summary: str
    sql: str
    expires_at: datetime
    dry_run_rows: int | None  # rows the whole proposal would change, as previewed
    dry_run_error: str | None  # why Confirm cannot work even though the preview did
    preview: list[dict[str, Any]] = field(default_factory=list)  # one entry per statement
    # Why this proposal must not run although its preview did: a replayed proposal whose preview
    # differs from the recording's (it would change other rows than the recording showed).
    stale: str | None = None

    def resolved(self) -> ResolvedConfirm:
        """The proposal as the person sees it (the views' typed card)."""
        from .responses import ResolvedConfirm

        return ResolvedConfirm.model_validate(self.as_dict())

    def as_dict(self) -> dict:
        return {
            "type": "confirm",
            "id": self.id,
            "title": self.title,
            "summary": self.summary,
            "sql": self.sql,
            "expires_at": self.expires_at.isoformat(),
            "dry_run_rows": self.dry_run_rows,
            "dry_run_error": self.dry_run_error,
            "preview": self.preview,
            "stale": self.stale,
        }


@dataclass(frozen=True)
class Outcome:
    id: str
    status: str  # confirmed | cancelled | failed
    rows_affected: int | None = None
    error: str | None = None

    def report(self) -> str:
        """The line reported back into the thread so the agent can follow up."""
        if self.status == "confirmed":
            return f"CONFIRM_ACTION: {self.id} confirmed: {self.rows_affected} rows affected"
        if self.status == "failed":
            return f"CONFIRM_ACTION: {self.id} failed: {self.error}"
        return f"CONFIRM_ACTION: {self.id} cancelled by the user"

    def as_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "rows_affected": self.rows_affected, "error": self.error}


class Confirmations:
    """Proposals and their resolution for one org and user, kept in ``chat_confirmations``."""

    def __init__(self, store, engine_provider, ttl: timedelta | None = None, *, ledger=None) -> None:
        self._store = store  # ConversationStore: its connection and scoping
        self._engine_provider = engine_provider
        self.ttl = ttl if ttl is not None else confirm_ttl()
        self._types: dict[str, dict[str, str]] = {}
        # () -> the cassette's ProposalLedger when recording or replaying, else None
        self._ledger = ledger or (lambda: None)
        self._stale: dict[str, str] = {}

    @property
    def engine(self) -> Engine:
        return self._engine_provider()

    # -- proposing ----------------------------------------------------------------------------

    def propose(self, conversation_id: str | None, title: str, summary: str, sql: str) -> Proposal:
        """Parse and preview a write; raise ProposalError (nothing ran) when it cannot be shown safely."""
        plan = plan_write(sql)
        preview = [self._preview(stmt, i, len(plan.statements)) for i, stmt in enumerate(plan.statements)]
        counts = [p["rows"] for p in preview]
        error = None if self.engine.writer_url else _no_writer()
        ledger = self._ledger()
        stale = ledger.note(plan.sql, preview) if ledger is not None else None
        proposal_id = "c_" + secrets.token_urlsafe(18)
        expires = datetime.now(UTC) + self.ttl
        self._store.query(
            "INSERT INTO chat_confirmations (id, conversation_id, org, user_name, title, sql, sql_sha256,"
            " dry_run_rows, statement_rows, preview, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                proposal_id,
                conversation_id,
                self._store.org,
                self._store.user,
                title,
                plan.sql,
                sql_hash(plan.sql),
                sum(counts),
                counts,
                json.dumps(preview),
                expires,
            ),
        )
        if stale:
            # Settled at once, durably: no view, process or later click can run it.
            self._stale[proposal_id] = stale
            self._failed(proposal_id, plan.sql, sum(counts), None, None, stale, resolve=True)
        return Proposal(proposal_id, title, summary, plan.sql, expires, sum(counts), error, preview, stale)

    def _preview(self, stmt: PlannedStatement, index: int, total: int) -> dict[str, Any]:
        """Count and sample one statement through the guarded read path (the reader role, read-only)."""
        label = f"Statement {index + 1} of the proposal" if total > 1 else "The proposal"
        try:
            count = int(self.engine.read(stmt.count_sql, row_cap=1).df.iloc[0, 0])
            sample = self.engine.read(stmt.sample_query(self._column_types(stmt.table)), row_cap=SAMPLE_ROWS).df
        except QueryError as exc:
            raise ProposalError(
                f"{label} could not be previewed, so it was not proposed and nothing ran: {exc.paragraph()}"
            ) from None
        return {
            "action": stmt.action,
            "table": stmt.table,
            "sql": stmt.sql,
            "rows": count,
            "keys": list(stmt.keys),
            "columns": list(stmt.columns),
            "sample": _sample_rows(stmt, sample),
        }

    def _column_types(self, table: str) -> dict[str, str]:
        """Column -> type as PostgreSQL formats it, so a preview casts values as the write would."""
        if table not in self._types:
            sql = (
                "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a"
                f" WHERE a.attrelid = 'public.{table}'::regclass AND a.attnum > 0 AND NOT a.attisdropped"
            )
            frame = self.engine.read(sql).df
            self._types[table] = dict(zip(frame["name"], frame["type"]))
        return self._types[table]

    # -- resolving ----------------------------------------------------------------------------

    def _claim(self, proposal_id: str, sql: str | None, outcome: str) -> tuple[str, list[int]]:
        """Atomically mark a live, unused proposal resolved; return its SQL and previewed counts."""
        row = self._store.query(
            "UPDATE chat_confirmations SET resolved_at = now(), outcome = %s"
            " WHERE id = %s AND org = %s AND user_name = %s AND resolved_at IS NULL AND expires_at > now()"
            " AND (%s::text IS NULL OR sql_sha256 = %s) RETURNING sql, sql_sha256, statement_rows",
            (outcome, proposal_id, self._store.org, self._store.user, sql, sql_hash(sql) if sql is not None else None),
            fetch="one",
        )
        if row is not None:
            stored_sql, digest, counts = row
            if sql_hash(stored_sql) != digest:  # the stored text changed since it was shown
                raise ConfirmationError("This confirmation's SQL does not match what was proposed; nothing was run.")
            return stored_sql, list(counts or [])
        why = self._store.query(
            "SELECT resolved_at IS NOT NULL, outcome, expires_at <= now(), sql_sha256 FROM chat_confirmations"
            " WHERE id = %s AND org = %s AND user_name = %s",
            (proposal_id, self._store.org, self._store.user),
            fetch="one",
            durable=False,  # a read: nothing to flush
        )
        if why is None:
            raise ConfirmationError(f"No pending confirmation {proposal_id!r} for this user; nothing was run.")
        resolved, previous, expired, digest = why
        if resolved and previous == "failed":
            error = self._store.query(
                "SELECT error FROM write_audit WHERE confirmation_id = %s AND org = %s AND user_name = %s"
                " ORDER BY id DESC LIMIT 1",
                (proposal_id, self._store.org, self._store.user),
                fetch="one",
                durable=False,  # a read: nothing to flush
            )
            if error and error[0]:
                raise ConfirmationError(f"Confirmation {proposal_id} already failed and cannot run: {error[0]}")
        if resolved:
            raise ConfirmationError(f"Confirmation {proposal_id} was already {previous}; it can be used only once.")
        if expired:
            raise ConfirmationError(f"Confirmation {proposal_id} has expired; ask again for a fresh proposal.")
        raise ConfirmationError("The SQL sent with this confirmation is not the SQL that was shown; nothing was run.")

    def confirm(self, proposal_id: str, sql: str | None = None) -> Outcome:
        """Run the proposal once. ``sql``, when given, must be exactly the text the person saw."""
        if proposal_id in self._stale:
            raise ConfirmationError(self._stale[proposal_id])
        if not self.engine.writer_url:
            raise ConfirmationError(_no_writer())
        stored_sql, counts = self._claim(proposal_id, sql, "confirmed")
        plan = plan_write(stored_sql)
        if plan.sql != stored_sql or len(counts) != len(plan.statements):
            message = "the stored proposal no longer parses to what was shown; nothing was written"
            return self._failed(proposal_id, stored_sql, sum(counts), None, None, message)
        try:
            result = self.engine.write([s.sql for s in plan.statements], counts)
        except QueryError as exc:
            return self._failed(proposal_id, stored_sql, sum(counts), None, None, exc.paragraph())
        if not result.committed:
            assert result.mismatch is not None  # a write is rolled back only over a mismatch
            index, want, found = result.mismatch
            which = f"statement {index + 1} " if len(counts) > 1 else ""
            message = (
                f"nothing was written: {which}would now change {found:,} {noun(found, 'row')}, not {want:,} as shown "
                "(the data changed since the preview); ask again for a fresh preview"
            )
            return self._failed(proposal_id, stored_sql, sum(counts), result.found_rows, result.role, message)
        self._audit(proposal_id, stored_sql, sum(counts), result.found_rows, result.rows_affected, result.role, None)
        return Outcome(proposal_id, "confirmed", rows_affected=result.rows_affected)

    def cancel(self, proposal_id: str) -> Outcome:
        if proposal_id in self._stale:  # already settled, nothing ran: declining it is a no-op
            return Outcome(proposal_id, "cancelled")
        self._claim(proposal_id, None, "cancelled")
        return Outcome(proposal_id, "cancelled")

    def resolved(self, proposal_ids: list[str]) -> list[Outcome]:
        """The outcomes of those proposals that are resolved by now (by any process: the CLI, a
        server, another kernel), with the rows changed or the error from the audit."""
        if not proposal_ids:
            return []
        rows = self._store.query(
            "SELECT c.id, c.outcome, a.id IS NOT NULL, a.rows_affected, a.error FROM chat_confirmations c"
            " LEFT JOIN LATERAL (SELECT id, rows_affected, error FROM write_audit w WHERE w.confirmation_id = c.id"
            "                    ORDER BY w.id DESC LIMIT 1) a ON true"
            " WHERE c.id = ANY(%s) AND c.org = %s AND c.user_name = %s AND c.resolved_at IS NOT NULL",
            (list(proposal_ids), self._store.org, self._store.user),
            fetch="all",
            durable=False,  # a read: nothing to flush
        )
        outcomes = []
        for proposal_id, status, audited, rows_affected, error in rows or []:
            if status == "cancelled":
                outcomes.append(Outcome(proposal_id, "cancelled"))
            elif not audited:
                continue  # claimed, still running (the audit row is written when it ends): not yet
            elif error:
                outcomes.append(Outcome(proposal_id, "failed", rows_affected=0, error=error))
            else:
                outcomes.append(Outcome(proposal_id, "confirmed", rows_affected=rows_affected))
        return outcomes

    def _failed(self, proposal_id, sql, previewed, found, role, message, *, resolve: bool = False) -> Outcome:
        self._audit(proposal_id, sql, previewed, found, 0, role, message)
        self._store.query(
            "UPDATE chat_confirmations SET outcome = 'failed', resolved_at = coalesce(resolved_at, now()) WHERE id = %s"
            if resolve
            else "UPDATE chat_confirmations SET outcome = 'failed' WHERE id = %s",
            (proposal_id,),
        )
        return Outcome(proposal_id, "failed", rows_affected=0, error=message)

    def _audit(self, proposal_id, sql, previewed, found, rows, role, error) -> None:
        self._store.query(
            "INSERT INTO write_audit (org, user_name, confirmation_id, sql, sql_sha256, previewed_rows, found_rows,"
            " rows_affected, db_role, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (self._store.org, self._store.user, proposal_id, sql, sql_hash(sql), previewed, found, rows, role, error),
        )


def _no_writer() -> str:
    from ..db.engine import NO_WRITER

    return NO_WRITER


def _sample_rows(stmt: PlannedStatement, frame) -> list[dict[str, Any]]:
    """Sample rows as {key, before, after}; positions follow the sample query's select list."""
    rows: list[dict[str, Any]] = []
    nkeys = len(stmt.keys)
    names = [str(c) for c in frame.columns[nkeys:]]
    for values in frame.itertuples(index=False, name=None):
        values = [_json_value(v) for v in values]
        key = dict(zip(stmt.keys, values[:nkeys]))
        rest = values[nkeys:]
        if stmt.action == "update":
            before = {c: rest[2 * i] for i, c in enumerate(stmt.columns)}
            after = {c: rest[2 * i + 1] for i, c in enumerate(stmt.columns)}
            rows.append({"key": key, "before": before, "after": after})
        elif stmt.action == "delete":
            rows.append({"key": key, "before": dict(zip(names, rest)), "after": None})
        else:
            rows.append({"key": key, "before": None, "after": dict(zip(stmt.columns, rest))})
    return rows


def _json_value(value: Any) -> Any:
    """A sample cell as JSON, short and with every unsafe character shown visibly."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, (bool, int, float)):
        return value
    if hasattr(value, "isoformat"):
        try:
            return value.isoformat()
        except ValueError:
            return str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = safetext.visible(text)
    return text if len(text) <= SAMPLE_CELL_CHARS else text[: SAMPLE_CELL_CHARS - 1] + "…"
