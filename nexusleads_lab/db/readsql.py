"""Read queries from the model, understood by PostgreSQL's own parser (pglast) before they are sent.

One SELECT (or WITH ... SELECT, VALUES, TABLE) statement, that locks nothing, creates nothing,
and calls only functions on the reviewed allow-list (``functions.py``): quoting and schema
qualification are resolved by the parser, so ``"pg_notify"(...)`` is ``pg_notify``. The role,
the read-only transaction and the subquery wrapper each stop writes on their own; this check
stops what a read-only SELECT could still do outside its own query (notifications, WAL
messages, advisory locks, transaction ids, session settings) and words every refusal.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from .errors import QueryError
from .functions import ATTRIBUTE_NOTATION_DENIED, is_allowed
from .sqltree import function_name, parse, walk

_WRITE_HINT = (
    "Start with SELECT, WITH, VALUES or TABLE; to change data, propose the statement for confirmation instead."
)


def check_read(sql: Any) -> str:
    """The query as written up to the end of its statement (a trailing ``;`` and anything after
    it dropped, so it can be wrapped), or QueryError saying what to change."""
    from pglast import ast

    try:
        raw = parse(sql, noun="query", empty="Empty query: send one SELECT (or WITH / VALUES / TABLE) statement.")
    except QueryError:
        misspelt = misspelt_command(sql)
        if misspelt is None:
            raise
        word, meant = misspelt
        raise QueryError(
            f"The query starts with {word!r}, which is not an SQL command: did you mean {meant}? Send one SELECT "
            "(or WITH / VALUES / TABLE) statement."
        ) from None
    if len(raw) > 1:
        raise QueryError(
            f"Only one statement can run here, not {len(raw)}: send one SELECT without a second statement."
        )
    stmt = raw[0].stmt
    if not isinstance(stmt, ast.SelectStmt):
        word = _command(stmt)
        raise QueryError(f"Only read queries run here: {word} is not allowed on the read path. {_WRITE_HINT}")
    for node in walk(stmt):
        _check_node(node)
    start, length = raw[0].stmt_location, raw[0].stmt_len
    return (sql[: start + length] if length else sql).strip().rstrip(";").strip()


# Words a PostgreSQL statement can start with: what a misspelt first word is matched against.
COMMANDS = (
    "SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE", "MERGE", "EXPLAIN", "SHOW", "SET",
    "COPY", "CREATE", "ALTER", "DROP", "TRUNCATE", "GRANT", "REVOKE", "BEGIN", "COMMIT", "ROLLBACK", "ANALYZE",
    "VACUUM", "CALL", "DO", "LOCK", "NOTIFY", "LISTEN", "PREPARE", "EXECUTE", "DECLARE", "FETCH", "COMMENT",
)  # fmt: skip
_FIRST_WORD = re.compile(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*\(*\s*([A-Za-z_]+)", re.S)


def misspelt_command(sql: Any) -> tuple[str, str] | None:
    """(the first word, the command it is closest to) when the statement starts with a word that is
    no SQL command but nearly one ('selct' -> SELECT); else None."""
    match = _FIRST_WORD.match(sql) if isinstance(sql, str) else None
    if match is None or match.group(1).upper() in COMMANDS:
        return None
    word = match.group(1)
    close = difflib.get_close_matches(word.upper(), COMMANDS, n=1, cutoff=0.6)
    return (word, close[0]) if close else None


def _check_node(node) -> None:
    from pglast import ast

    if isinstance(node, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)):
        raise QueryError(
            f"Only read queries run here: a {_command(node)} inside the query is not allowed. {_WRITE_HINT}"
        )
    if isinstance(node, ast.FuncCall):
        name = function_name(node)
        if not is_allowed(name):
            raise QueryError(
                f"{'.'.join(name)}() is not allowed on the read path: only built-in functions that compute "
                "values are (no locks, notifications, settings, sequences, files or other sessions)."
            )
    elif isinstance(node, ast.LockingClause):
        raise QueryError("FOR UPDATE / FOR SHARE is not allowed on the read path: a read locks no rows.")
    elif isinstance(node, ast.IntoClause):
        raise QueryError("SELECT INTO creates a table and is not allowed on the read path.")
    elif isinstance(node, (ast.ColumnRef, ast.A_Indirection)):
        fields = node.fields if isinstance(node, ast.ColumnRef) else node.indirection
        for field in fields or ():
            if getattr(field, "sval", None) in ATTRIBUTE_NOTATION_DENIED:
                raise QueryError(f"{field.sval} is a function with side effects and is not allowed on the read path.")
    elif isinstance(node, ast.ParamRef):
        raise QueryError(f"The query has a parameter (${node.number}); write the value into the query.")


def _command(stmt) -> str:
    from pglast import ast

    names = {
        ast.InsertStmt: "INSERT", ast.UpdateStmt: "UPDATE", ast.DeleteStmt: "DELETE", ast.MergeStmt: "MERGE",
        ast.CopyStmt: "COPY", ast.DoStmt: "DO", ast.CallStmt: "CALL", ast.TruncateStmt: "TRUNCATE",
        ast.VariableSetStmt: "SET", ast.TransactionStmt: "a transaction command", ast.ExplainStmt: "EXPLAIN",
        ast.LockStmt: "LOCK", ast.NotifyStmt: "NOTIFY", ast.ListenStmt: "LISTEN", ast.VacuumStmt: "VACUUM",
    }  # fmt: skip
    for cls, word in names.items():
        if isinstance(stmt, cls):
            return word
    return type(stmt).__name__.removesuffix("Stmt").upper() or "this statement"
