"""Proposed writes, understood by PostgreSQL's own parser (pglast): what may be proposed, the
canonical text that is shown and run, and the read-only queries that preview it.

A proposal is one or more plain ``INSERT`` / ``UPDATE`` / ``DELETE`` statements on the
writable lead tables, with ``RETURNING`` allowed. Everything else is refused with one
sentence the model can act on. The canonical text is the parser's deparsed statement:
comments are gone and the layout is normalised, so nothing can hide in it; a string literal
holding an invisible or control character is shown as an ``E'...'`` escape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import safetext
from .errors import QueryError
from .functions import is_allowed
from .schema import LEAD_TABLES, WRITABLE_TABLES
from .sqltree import function_name, parse, walk

# How each writable table's rows are named in a preview.
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "projects": ("id",),
    "repositories": ("id",),
    "repository_contributors": ("repository_id", "contributor_id"),
    "lead_scores": ("id",),
    "outreach_events": ("id",),
}
SAMPLE_ROWS = 5
SECRET_COLUMNS = frozenset({"password_hash"})


class ProposalError(QueryError):
    """A proposed write that cannot be shown and run safely; nothing ran."""


@dataclass(frozen=True)
class PlannedStatement:
    """One statement of a proposal: its canonical text and how to preview it read-only."""

    action: str  # insert | update | delete
    table: str
    sql: str  # canonical: what is shown, hashed and run
    count_sql: str  # SELECT count(*) of the rows it would change
    keys: tuple[str, ...]
    columns: tuple[str, ...]  # the columns it sets (insert, update); empty for delete
    values: tuple[str, ...]  # update: each new value's expression; insert: the source's columns
    ref: str  # how the statement names the target row (its alias or the table)
    source: str  # FROM ... [WHERE ...] of the rows it changes (insert: the new rows)
    distinct: bool  # joins may repeat a target row

    @property
    def sample_sql(self) -> str:
        return self.sample_query({})

    def sample_query(self, types: dict[str, str]) -> str:
        """SELECT of the first rows: key, then before and after (update), the new row (insert)
        or the whole row (delete). With the columns' ``types`` each new value is cast as the
        write would store it, so a value the column cannot take fails in the preview."""

        def typed(column: str, expr: str) -> str:
            return f"CAST(({expr}) AS {types[column]})" if column in types else f"({expr})"

        if self.action == "insert":
            cols = [f"{typed(c, v)} AS {_ident(c)}" for c, v in zip(self.columns, self.values)]
            return f"SELECT {', '.join(cols)} {self.source} LIMIT {SAMPLE_ROWS}"
        if self.action == "update":
            cols = []
            for column, expr in zip(self.columns, self.values):
                cols.append(f"{self.ref}.{_ident(column)} AS {_ident(column + ' before')}")
                cols.append(f"{typed(column, expr)} AS {_ident(column + ' after')}")
        else:
            cols = [f"{self.ref}.*"]
        return _sample(self.ref, self.keys, cols, self.source, self.distinct)


@dataclass(frozen=True)
class WritePlan:
    statements: tuple[PlannedStatement, ...]

    @property
    def sql(self) -> str:
        """The canonical text of the whole proposal, statements in order."""
        if len(self.statements) == 1:
            return self.statements[0].sql
        return "".join(s.sql + ";\n" for s in self.statements).rstrip("\n")


def plan_write(sql: Any) -> WritePlan:
    """Parse a proposal and plan its preview, or raise ProposalError saying what to change."""
    empty = "The proposal has no SQL statement: send the INSERT, UPDATE or DELETE statement to confirm."
    try:
        raw = parse(sql, noun="proposal", empty=empty, error=ProposalError)
    except ProposalError:
        from .readsql import misspelt_command

        misspelt = misspelt_command(sql)
        if misspelt is None:
            raise
        raise ProposalError(
            f"The proposal starts with {misspelt[0]!r}, which is not an SQL command: did you mean {misspelt[1]}? "
            "Only plain INSERT, UPDATE and DELETE statements can be confirmed."
        ) from None
    return WritePlan(tuple(_plan_statement(r.stmt, i + 1, len(raw)) for i, r in enumerate(raw)))


# -- one statement ---------------------------------------------------------------------------


def _plan_statement(stmt, number: int, total: int) -> PlannedStatement:
    from pglast import ast

    where = f"Statement {number} of the proposal" if total > 1 else "The proposal"
    if not isinstance(stmt, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)):
        raise ProposalError(
            f"{where} is {_describe(stmt)}; only plain INSERT, UPDATE and DELETE statements can be confirmed."
        )
    table = _target_table(stmt, where)
    _check_tree(stmt, where)
    if isinstance(stmt, ast.UpdateStmt):
        plan = _plan_update(stmt, table, where)
    elif isinstance(stmt, ast.DeleteStmt):
        plan = _plan_delete(stmt, table)
    else:
        plan = _plan_insert(stmt, table, where)
    return plan


def _describe(stmt) -> str:
    from pglast import ast

    names = {
        ast.SelectStmt: "a SELECT (a data-modifying WITH inside a SELECT is refused too)",
        ast.DoStmt: "a DO block",
        ast.CopyStmt: "COPY",
        ast.CallStmt: "CALL",
        ast.TruncateStmt: "TRUNCATE",
        ast.MergeStmt: "MERGE",
        ast.TransactionStmt: "a transaction command",
        ast.VariableSetStmt: "a SET command",
        ast.ExplainStmt: "EXPLAIN",
        ast.LockStmt: "LOCK",
    }
    for cls, text in names.items():
        if isinstance(stmt, cls):
            return text
    return f"a {type(stmt).__name__.removesuffix('Stmt')} statement (DDL and commands are refused)"


def _target_table(stmt, where: str) -> str:
    rel = stmt.relation
    if rel.catalogname or (rel.schemaname and rel.schemaname != "public"):
        raise ProposalError(f"{where} writes to {_qualified(rel)}; only the lead tables in schema public can change.")
    if rel.relname not in WRITABLE_TABLES:
        raise ProposalError(
            f"{where} writes to {rel.relname}, which cannot be changed here; writable tables are "
            f"{', '.join(WRITABLE_TABLES)}."
        )
    if not rel.inh:
        raise ProposalError(f"{where} uses ONLY; write to the table itself.")
    return rel.relname


def _qualified(rel) -> str:
    return ".".join(p for p in (rel.catalogname, rel.schemaname, rel.relname) if p)


def _check_tree(stmt, where: str) -> None:
    """Refuse anything in the statement that acts beyond computing the new rows."""
    from pglast import ast

    if stmt.withClause is not None:
        raise ProposalError(f"{where} starts with WITH; write the condition as a subquery in WHERE instead.")
    for node in walk(stmt):
        if isinstance(node, ast.WithClause):
            raise ProposalError(f"{where} contains a WITH query; use plain subqueries.")
        if isinstance(node, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)) and node is not stmt:
            raise ProposalError(f"{where} nests one write inside another; propose each statement on its own.")
        if isinstance(node, ast.FuncCall):
            name = function_name(node)
            if not is_allowed(name):
                raise ProposalError(
                    f"{where} calls {'.'.join(name)}(), which is not on the list of functions a write may use "
                    "(built-ins that only compute values); compute the value another way."
                )
        elif isinstance(node, ast.RangeVar):
            if node.catalogname or (node.schemaname and node.schemaname != "public") or node.relname not in LEAD_TABLES:
                raise ProposalError(
                    f"{where} reads {_qualified(node)}; a write may read only the lead tables ({', '.join(LEAD_TABLES)})."
                )
        elif isinstance(node, ast.ColumnRef):
            fields = [getattr(f, "sval", None) for f in node.fields or ()]
            if any(f in SECRET_COLUMNS for f in fields):
                raise ProposalError(f"{where} uses users.password_hash, which is never readable or writable here.")
        elif isinstance(node, ast.LockingClause):
            raise ProposalError(
                f"{where} locks rows (FOR UPDATE / FOR SHARE); the write locks what it changes by itself."
            )
        elif isinstance(node, ast.IntoClause):
            raise ProposalError(f"{where} contains SELECT INTO; only INSERT, UPDATE and DELETE can be confirmed.")
        elif isinstance(node, ast.ParamRef):
            raise ProposalError(f"{where} has a parameter (${node.number}); write the value into the statement.")
        elif isinstance(node, ast.CurrentOfExpr):
            raise ProposalError(f"{where} uses WHERE CURRENT OF; name the rows with a condition instead.")
        elif isinstance(node, ast.RangeTableSample):
            raise ProposalError(
                f"{where} samples a table (TABLESAMPLE); the rows it changes must be exactly determined."
            )


def _plan_update(stmt, table: str, where: str) -> PlannedStatement:
    from pglast import ast

    ref = _ref(stmt.relation)
    keys = KEY_COLUMNS[table]
    columns: list[str] = []
    values: list[str] = []
    for target in stmt.targetList:
        if isinstance(target.val, ast.MultiAssignRef):
            raise ProposalError(f"{where} assigns several columns at once; write one `column = value` per column.")
        if target.indirection:
            raise ProposalError(
                f"{where} assigns part of {target.name}; assign the whole column (e.g. with jsonb_set)."
            )
        if isinstance(target.val, ast.SetToDefault):
            raise ProposalError(f"{where} sets {target.name} to DEFAULT; write the value itself.")
        if target.name in columns:
            raise ProposalError(f"{where} sets {target.name} twice.")
        columns.append(target.name)
        values.append(_deparse(target.val))
    source, distinct = _source(stmt.relation, stmt.fromClause, stmt.whereClause)
    return PlannedStatement(
        action="update",
        table=table,
        sql=canonical(stmt),
        count_sql=_count(ref, source, distinct),
        keys=keys,
        columns=tuple(columns),
        values=tuple(values),
        ref=ref,
        source=source,
        distinct=distinct,
    )


def _plan_delete(stmt, table: str) -> PlannedStatement:
    ref = _ref(stmt.relation)
    keys = KEY_COLUMNS[table]
    source, distinct = _source(stmt.relation, stmt.usingClause, stmt.whereClause)
    return PlannedStatement(
        action="delete",
        table=table,
        sql=canonical(stmt),
        count_sql=_count(ref, source, distinct),
        keys=keys,
        columns=(),
        values=(),
        ref=ref,
        source=source,
        distinct=distinct,
    )


def _plan_insert(stmt, table: str, where: str) -> PlannedStatement:
    from pglast import ast

    if stmt.onConflictClause is not None:
        raise ProposalError(f"{where} has ON CONFLICT; propose a plain INSERT of the rows that are missing.")
    if not stmt.cols:
        raise ProposalError(f"{where} does not name its columns; write INSERT INTO {table} (col, ...) ....")
    if stmt.selectStmt is None:
        raise ProposalError(f"{where} inserts DEFAULT VALUES; name the columns and their values.")
    columns = []
    for col in stmt.cols:
        if col.indirection:
            raise ProposalError(f"{where} inserts into part of {col.name}; insert whole columns.")
        columns.append(col.name)
    for node in walk(stmt.selectStmt):
        if isinstance(node, ast.SetToDefault):
            raise ProposalError(f"{where} uses DEFAULT in VALUES; leave that column out instead.")
    names = ", ".join(_ident(c) for c in columns)
    source = f"FROM ({_deparse(stmt.selectStmt)}) AS nexus_new ({names})"
    return PlannedStatement(
        action="insert",
        table=table,
        sql=canonical(stmt),
        count_sql=f"SELECT count(*) AS rows {source}",
        keys=(),
        columns=tuple(columns),
        values=tuple("nexus_new." + _ident(c) for c in columns),
        ref="nexus_new",
        source=source,
        distinct=False,
    )


def _ref(rel) -> str:
    return _ident(rel.alias.aliasname) if rel.alias is not None else _ident(rel.relname)


def _source(relation, extra, condition) -> tuple[str, bool]:
    """``FROM target [, extra ...] [WHERE condition]`` and whether joins may repeat a row."""
    items = [_deparse(relation)] + [_deparse(item) for item in extra or ()]
    text = "FROM " + ", ".join(items)
    if condition is not None:
        text += f" WHERE {_deparse(condition)}"
    return text, bool(extra)


def _count(ref: str, source: str, distinct: bool) -> str:
    what = f"count(DISTINCT {ref}.ctid)" if distinct else "count(*)"
    return f"SELECT {what} AS rows {source}"


def _sample(ref: str, keys: tuple[str, ...], columns: list[str], source: str, distinct: bool) -> str:
    key_cols = [f"{ref}.{_ident(k)}" for k in keys]
    head = f"DISTINCT ON ({', '.join(key_cols)}) " if distinct else ""
    return f"SELECT {head}{', '.join(key_cols + columns)} {source} ORDER BY {', '.join(key_cols)} LIMIT {SAMPLE_ROWS}"


# -- text ------------------------------------------------------------------------------------


def _deparse(node) -> str:
    from pglast.stream import RawStream

    return RawStream()(node)


def _ident(name: str) -> str:
    from pglast.stream import maybe_double_quote_name

    return maybe_double_quote_name(name)


def canonical(stmt) -> str:
    """The deparsed statement, with unsafe characters in literals shown as ``E'...'`` escapes.

    Deparsing drops comments and normalises layout, so an unsafe character can only remain
    inside a string literal or a quoted name: literals are rewritten visibly, names refused.
    The rewritten text is parsed again and must mean exactly the same statement.
    """
    import pglast
    from pglast.parser import scan

    text = _deparse(stmt)
    if not safetext.has_unsafe(text):
        return text
    pieces: list[str] = []
    last = 0
    for token in scan(text):
        chunk = text[token.start : token.end + 1]
        if not safetext.has_unsafe(chunk):
            continue
        if token.name != "SCONST" or not chunk.startswith("'"):
            raise ProposalError("The proposal has a control or invisible character in a name; use plain names.")
        pieces.append(text[last : token.start])
        pieces.append(_escape_literal(chunk[1:-1].replace("''", "'")))
        last = token.end + 1
    pieces.append(text[last:])
    shown = "".join(pieces)
    if safetext.has_unsafe(shown) or pglast.parse_sql(shown)[0].stmt != stmt:
        raise ProposalError("The proposal's text cannot be shown unambiguously; write it with plain characters.")
    return shown


def _escape_literal(value: str) -> str:
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif safetext.UNSAFE.match(ch):
            # \xHH is a byte in an E'' literal: only ASCII may use it, the rest are code points.
            out.append(safetext.escape_char(ch) if ch in "\n\t\r" or ord(ch) < 0x80 else f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "E'" + "".join(out) + "'"
