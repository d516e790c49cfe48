"""Database errors as one paragraph an analyst or an agent can act on."""

from __future__ import annotations

import re
from dataclasses import dataclass

# scheme://user:PASSWORD@host: the password runs to the token's last '@' (it may hold @ : % /).
_SECRET_IN_URL = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)\S*@", re.I)
# password=VALUE in a key=value connection string; a quoted value may hold spaces and \' escapes.
_SECRET_KV = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.I)


def mask_secrets(text: str) -> str:
    """Hide passwords in URLs of any scheme and in ``password=...`` pairs."""
    text = _SECRET_IN_URL.sub(lambda m: f"{m.group(1)}***@", text)
    return _SECRET_KV.sub(lambda m: f"{m.group(1)}***", text)


def shorten(text: str, limit: int = 120) -> str:
    """``text`` on one line, at most ``limit`` characters: cut at a word boundary, ending in "…"."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:  # a word boundary not too far back; else one long token, cut inside it
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def mask_url(url: str) -> str:
    return mask_secrets(url)


def connect_failure(exc: Exception | str) -> str:
    """Why a connection failed, safe to show: passwords masked, and a connection string the
    driver could not even parse described without quoting it (its pieces may be a password's)."""
    text = str(exc).strip().split("\n")[0]
    if "percent-encoded" in text or "invalid connection option" in text or 'missing "="' in text:
        return (
            "the connection string is not valid (percent-encode special characters such as @ : / % "
            "in a URL's password, or use key=value form)"
        )
    return mask_secrets(text)


FULL_WORDS = ("too many clients", "remaining connection slots", "too many connections")


def out_of_connections(exc: Exception | str, sqlstate: str | None = None) -> bool:
    """The server refused a connection because its slots (or the role's) are all taken (53300)."""
    text = str(exc).lower()
    return "53300" in (sqlstate, getattr(exc, "sqlstate", None)) or any(w in text for w in FULL_WORDS)


FULL_HINT = (
    "The database has no connection free for this login: its max_connections (or the role's CONNECTION "
    "LIMIT) is reached, held by other clients. Lower NEXUS_POOL_SIZE / NEXUS_STORE_POOL_SIZE or the number "
    "of server processes, or raise the limit."
)


class QueryError(Exception):
    """A query that did not run, with the server's diagnostics and where in the SQL it failed."""

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        hint: str | None = None,
        detail: str | None = None,
        position: int | None = None,
        sql: str | None = None,
    ) -> None:
        self.message = mask_secrets(message.strip())
        self.sqlstate = sqlstate
        self.hint = mask_secrets(hint.strip()) if hint else None
        self.detail = mask_secrets(detail.strip()) if detail else None
        self.position = position
        self.sql = sql
        super().__init__(self.paragraph())

    def location(self) -> str | None:
        """'line L, column C near "..."' for a 1-based character position in the SQL."""
        if not self.position or not self.sql or self.position > len(self.sql) + 1:
            return None
        before = self.sql[: self.position - 1]
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        near = self.sql[self.position - 1 : self.position + 24].split("\n")[0]
        return f'line {line}, column {column}, near "{near}"'

    def paragraph(self) -> str:
        parts = [f"Query failed ({self.sqlstate}): {self.message}" if self.sqlstate else self.message]
        if self.detail:
            parts.append(f"Detail: {self.detail}")
        where = self.location()
        if where:
            parts.append(f"At {where}.")
        if self.hint:
            parts.append(f"Hint: {self.hint}")
        text = " ".join(p if p.endswith((".", "?", "!", ")")) else p + "." for p in parts)
        return " ".join(text.split())

    def as_dict(self) -> dict:
        return {
            "error": self.paragraph(),
            "sqlstate": self.sqlstate,
            "message": self.message,
            "hint": self.hint,
            "position": self.position,
        }


@dataclass(frozen=True)
class Diagnostics:
    sqlstate: str | None
    message: str
    hint: str | None = None
    detail: str | None = None
    position: int | None = None


# Errors the product's own limits raise while a result streams in (libpq text, no SQLSTATE field).
_STREAMED_STATES = (
    ("temporary file size exceeds", "53400"),
    ("canceling statement due to statement timeout", "57014"),
    ("canceling statement due to user request", "57014"),
    ("out of memory", "53200"),
    # Errors met while rows stream in reach the driver as text only: the common ones, by their text.
    ("requested length too large", "54000"),
    ("would build one value of more than", "54000"),  # the read path's aggregate guard (schema migration 6)
    ("division by zero", "22012"),
    ("out of range", "22003"),
    ("invalid input syntax", "22P02"),
    ("invalid regular expression", "2201B"),
    ("value too long", "22001"),
    ("invalid input value for enum", "22P02"),
    ("cannot cast", "42846"),
    ("invalid value for parameter", "22023"),
    ("function returned no rows", "P0002"),
    ("more than one row returned by a subquery", "21000"),
    ("array size exceeds", "54000"),
    ("string is too long", "54000"),
    ("invalid memory alloc request size", "53200"),
    ("cannot enlarge string buffer", "54000"),
    ("permission denied", "42501"),
)


def from_adbc(exc: Exception) -> Diagnostics:
    """Pull the server's fields out of an ADBC error (its ``details`` carry PG_DIAG_* pairs)."""
    fields: dict[str, str] = {}
    for key, value in getattr(exc, "details", None) or []:
        k = key.decode() if isinstance(key, bytes) else str(key)
        v = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        fields[k] = v
    message = fields.get("PG_DIAG_MESSAGE_PRIMARY")
    sqlstate = fields.get("PG_DIAG_SQLSTATE") or getattr(exc, "sqlstate", None) or None
    if not message:
        # Not a structured server error (connection loss, driver state, or an error met while the
        # result streamed in, which reaches us as libpq text only): keep the server's sentence.
        message = str(exc).split("\n")[0]
        message = re.sub(r"^[A-Z_]+: (\[libpq\] )?", "", message)
        server = re.search(r"(?:ERROR|FATAL):\s+(.*)$", message)
        if server:
            message = server.group(1)
            sqlstate = sqlstate or next((state for text, state in _STREAMED_STATES if text in message), None)
    position = fields.get("PG_DIAG_STATEMENT_POSITION")
    return Diagnostics(
        sqlstate=sqlstate,
        message=message,
        hint=fields.get("PG_DIAG_MESSAGE_HINT"),
        detail=fields.get("PG_DIAG_MESSAGE_DETAIL"),
        position=int(position) if position and position.isdigit() else None,
    )


def from_psycopg(exc: Exception) -> Diagnostics:
    diag = getattr(exc, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc).split("\n")[0]) if diag else str(exc)
    position = getattr(diag, "statement_position", None) if diag else None
    return Diagnostics(
        sqlstate=getattr(exc, "sqlstate", None),
        message=message,
        hint=getattr(diag, "message_hint", None) if diag else None,
        detail=getattr(diag, "message_detail", None) if diag else None,
        position=int(position) if position and str(position).isdigit() else None,
    )
