"""What a client learns when the server fails: one sentence and a short error id, never the
exception's text (it can hold a DSN, a socket path or another organization's name). The id is in
the server's log beside the whole exception, so an operator finds it from what the user reports."""

from __future__ import annotations

import logging
import secrets

from ..db.store import NotFound

log = logging.getLogger("nexusleads_lab.server")

UNREACHABLE = (
    "The conversation store cannot be reached right now (the database may be restarting); "
    "nothing was asked. Try again in a moment"
)
NO_SUCH_CONVERSATION = "No such conversation."


def incident(what: str, exc: BaseException | None = None) -> str:
    """Log ``what`` (and the exception) under a new error id; returns the id."""
    error_id = secrets.token_hex(4)
    log.error("error %s: %s", error_id, what, exc_info=exc)
    return error_id


def failure_text(what: str, exc: BaseException) -> str:
    """The sentence a client gets for ``exc``: only a missing conversation is named as such."""
    if isinstance(exc, NotFound):
        return NO_SUCH_CONVERSATION
    return f"{UNREACHABLE} (error id {incident(what, exc)})."


_WHERE = ("://", ".s.PGSQL", "Cannot connect", "connection to server", "host=", "dbname=")


def query_error_text(what: str, exc: BaseException) -> str:
    """A query's own paragraph (a refused confirmation, a changed row count) when it says only
    that; where the database is (a DSN, a host, a socket path) becomes an error id."""
    from ..db.errors import QueryError

    if isinstance(exc, QueryError) and not any(marker in str(exc) for marker in _WHERE):
        return exc.paragraph()
    return failure_text(what, exc)
