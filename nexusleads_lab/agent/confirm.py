"""Confirmed writes: the model proposes, a person clicks, the kernel runs exactly what was shown.

A proposal gets an unguessable, single-use id bound to the SHA-256 of its SQL and an expiry,
stored where the agent's role cannot reach. Confirming checks all three in one atomic
UPDATE, runs the statement once through the engine's write path, and audits it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..db.engine import Engine
from ..db.errors import QueryError

DEFAULT_TTL = timedelta(minutes=int(os.environ.get("NEXUS_CONFIRM_TTL_MINUTES", "15") or 15))


def sql_hash(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


class ConfirmationError(QueryError):
    """A confirmation that cannot run: unknown, used, expired, cancelled or tampered with."""


@dataclass(frozen=True)
class Proposal:
    id: str
    title: str
    summary: str
    sql: str
    expires_at: datetime
    dry_run_rows: int | None
    dry_run_error: str | None

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

    def __init__(self, store, engine_provider, ttl: timedelta = DEFAULT_TTL) -> None:
        self._store = store  # ConversationStore: its connection and scoping
        self._engine_provider = engine_provider
        self.ttl = ttl

    @property
    def engine(self) -> Engine:
        return self._engine_provider()

    def propose(self, conversation_id: str | None, title: str, summary: str, sql: str) -> Proposal:
        sql = sql.strip()
        rows: int | None = None
        error: str | None = None
        try:
            rows = self.engine.write(sql, dry_run=True, timeout_ms=15_000).rows_affected
        except QueryError as exc:
            error = exc.paragraph()
        proposal_id = "c_" + secrets.token_urlsafe(18)
        expires = datetime.now(timezone.utc) + self.ttl
        self._store.query(
            "INSERT INTO chat_confirmations (id, conversation_id, org, user_name, title, sql, sql_sha256,"
            " dry_run_rows, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (proposal_id, conversation_id, self._store.org, self._store.user, title, sql, sql_hash(sql), rows, expires),
        )
        return Proposal(proposal_id, title, summary, sql, expires, rows, error)

    def _claim(self, proposal_id: str, sql: str | None, outcome: str) -> str:
        """Atomically mark a live, unused proposal resolved; return its SQL or explain why not."""
        row = self._store.query(
            "UPDATE chat_confirmations SET resolved_at = now(), outcome = %s"
            " WHERE id = %s AND org = %s AND user_name = %s AND resolved_at IS NULL AND expires_at > now()"
            " AND (%s::text IS NULL OR sql_sha256 = %s) RETURNING sql, sql_sha256",
            (outcome, proposal_id, self._store.org, self._store.user, sql, sql_hash(sql) if sql is not None else None),
            fetch="one",
        )
        if row is not None:
            stored_sql, digest = row
            if sql_hash(stored_sql) != digest:  # the stored text changed since it was shown
                raise ConfirmationError("This confirmation's SQL does not match what was proposed; nothing was run.")
            return stored_sql
        why = self._store.query(
            "SELECT resolved_at IS NOT NULL, outcome, expires_at <= now(), sql_sha256 FROM chat_confirmations"
            " WHERE id = %s AND org = %s AND user_name = %s",
            (proposal_id, self._store.org, self._store.user),
            fetch="one",
        )
        if why is None:
            raise ConfirmationError(f"No pending confirmation {proposal_id!r} for this user; nothing was run.")
        resolved, previous, expired, digest = why
        if resolved:
            raise ConfirmationError(f"Confirmation {proposal_id} was already {previous}; it can be used only once.")
        if expired:
            raise ConfirmationError(f"Confirmation {proposal_id} has expired; ask again for a fresh proposal.")
        raise ConfirmationError("The SQL sent with this confirmation is not the SQL that was shown; nothing was run.")

    def confirm(self, proposal_id: str, sql: str | None = None) -> Outcome:
        """Run the proposal once. ``sql``, when given, must be exactly the text the person saw."""
        stored_sql = self._claim(proposal_id, sql, "confirmed")
        try:
            result = self.engine.write(stored_sql)
        except QueryError as exc:
            self._audit(proposal_id, stored_sql, None, exc.paragraph())
            self._store.query("UPDATE chat_confirmations SET outcome = 'failed' WHERE id = %s", (proposal_id,))
            return Outcome(proposal_id, "failed", error=exc.paragraph())
        self._audit(proposal_id, stored_sql, result.rows_affected, None)
        return Outcome(proposal_id, "confirmed", rows_affected=result.rows_affected)

    def cancel(self, proposal_id: str) -> Outcome:
        self._claim(proposal_id, None, "cancelled")
        return Outcome(proposal_id, "cancelled")

    def _audit(self, proposal_id: str, sql: str, rows: int | None, error: str | None) -> None:
        self._store.query(
            "INSERT INTO write_audit (org, user_name, confirmation_id, sql, sql_sha256, rows_affected, error)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (self._store.org, self._store.user, proposal_id, sql, sql_hash(sql), rows, error),
        )
