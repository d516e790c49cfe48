"""Read queries from the model, understood by PostgreSQL's own parser (pglast) before they are sent.

One SELECT (or WITH ... SELECT, VALUES, TABLE) statement, that locks nothing, creates nothing,
calls only functions on the reviewed allow-list (``functions.py``) and reads only the relations
on the read path's list (``relations.py``): quoting and schema qualification are resolved by the
parser, so ``"pg_notify"(...)`` is ``pg_notify`` and ``"PG_CATALOG".pg_roles`` is refused like
``pg_roles``. The role, the read-only transaction and the subquery wrapper each stop writes on
their own; this check stops what a read-only SELECT could still do or see outside its own
query (notifications, locks, settings, other sessions, role names, all-organization volumes),
and words ONE refusal naming everything it refused, each with what to write instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import QueryError
from .functions import ATTRIBUTE_NOTATION_DENIED, SQL_SYNTAX, is_allowed, refusal
from .relations import DENIED_COLUMNS, PARTLY_READABLE, SCHEMA_VIEWS, SETTINGS_VIEW, classify
from .sqltree import function_name, parse, walk

_WRITE_HINT = (
    "Start with SELECT, WITH, VALUES or TABLE; to change data, propose the statement for confirmation instead."
)
# Statements other dialects and psql habits produce, and the read path's way to the same answer.
_STATEMENT_INSTEAD = {
    "VARIABLESHOW": (
        "SHOW is not a query here: \\dt lists the tables, and SELECT name, setting FROM pg_settings "
        "WHERE name = '...' shows a setting."
    ),
    "EXPLAIN": "EXPLAIN does not run here; run the query itself (with a LIMIT) to see its rows.",
}
# Size arguments a call may take as a constant: beyond these one value (or one array) is
# bigger than anything the result cap lets through, and the backend would build it whole.
MAX_CONSTANT_BYTES = 1 << 20
_SIZED_ARG = {"repeat": 1, "lpad": 1, "rpad": 1}


@dataclass(frozen=True)
class Problem:
    what: str  # as the model wrote it: "pg_sleep()", "SIMILAR TO", "pg_roles", "users.password_hash"
    why: str
    instead: str


def check_read(sql: Any) -> str:
    """The query as written up to the end of its statement (a trailing ``;`` and anything after
    it dropped, so it can be wrapped), or QueryError saying what to change."""
    from pglast import ast

    try:
        raw = parse(sql, noun="query", empty="Empty query: send one SELECT (or WITH / VALUES / TABLE) statement.")
    except QueryError as exc:
        misspelt = misspelt_command(sql)
        if misspelt is None:
            dialect = _dialect_hint(sql, exc.message)
            if dialect:
                raise QueryError(f"{exc.message} {dialect}") from None
            if isinstance(sql, str) and "`" in sql:
                raise QueryError(
                    f'{exc.message} PostgreSQL quotes names with double quotes ("name"), not backticks; '
                    "most names here need no quotes at all."
                ) from None
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
        instead = _STATEMENT_INSTEAD.get(word, _WRITE_HINT)
        shown = "SHOW" if word == "VARIABLESHOW" else word
        raise QueryError(f"Only read queries run here: {shown} is not allowed on the read path. {instead}")
    problems = _problems(stmt)
    if problems:
        raise QueryError(refusal_message(problems))
    start, length = raw[0].stmt_location, raw[0].stmt_len
    return (sql[: start + length] if length else sql).strip().rstrip(";").strip()


def _dialect_hint(sql: Any, message: str) -> str | None:
    """What to write instead of another dialect's syntax PostgreSQL does not parse."""
    first = _FIRST_WORD.match(sql) if isinstance(sql, str) else None
    if first and first.group(1).upper() in ("DESCRIBE", "DESC"):
        return "DESCRIBE is not PostgreSQL: send \\d TABLE (e.g. \\d lead_scores), or query information_schema.columns."
    if "LIMIT #,#" in message:
        return "Write LIMIT count OFFSET skip (LIMIT 20 OFFSET 10) instead."
    if isinstance(sql, str) and re.search(r"\b(REGEXP|RLIKE)\b", sql, re.I):
        return "PostgreSQL matches regular expressions with ~ (~* ignoring case): WHERE name ~* '^dev'."
    if isinstance(sql, str) and re.search(r"\bSELECT\s+TOP\s+\d", sql, re.I):
        return "PostgreSQL writes SELECT TOP n as ... ORDER BY ... LIMIT n."
    return None


def refusal_message(problems: list[Problem]) -> str:
    """One paragraph naming every refused part, each with why and what to write instead."""
    unique = list(dict.fromkeys(problems))
    parts = [f"{p.what} {p.why} (instead: {p.instead})" for p in unique]
    if len(parts) == 1:
        head = "Not run: 1 part of this query is not allowed on the read path"
    else:
        head = f"Not run: {len(parts)} parts of this query are not allowed on the read path"
    return f"{head}. " + "; ".join(f"{i}. {text}" for i, text in enumerate(parts, 1)) + "."


def _problems(stmt) -> list[Problem]:
    problems: list[Problem] = []
    relations = list(_relations(stmt, frozenset()))
    partial: dict[str, str] = {}  # alias or name -> relation with a column that is not readable
    for rv in relations:
        kind, refused = classify(rv.schemaname, rv.relname)
        shown = f"{rv.schemaname}.{rv.relname}" if rv.schemaname else rv.relname
        if refused:
            problems.append(Problem(shown, refused[0], refused[1]))
        elif rv.relname in PARTLY_READABLE and kind in ("lead", "catalog"):
            partial[rv.alias.aliasname if rv.alias else rv.relname] = rv.relname
    for node in walk(stmt):
        problems += _check_node(node, partial)
    problems += _stars(stmt, partial)
    problems += _aggregate_bound(stmt)
    return problems


def _relations(node, ctes: frozenset[str]) -> Iterator[Any]:
    """Every RangeVar that names a table, view or catalog (not a CTE in scope)."""
    from pglast import ast

    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _relations(item, ctes)
        return
    if not isinstance(node, ast.Node):
        return
    if isinstance(node, ast.RangeVar):
        if node.schemaname is None and node.relname in ctes:
            return
        yield node
        return
    with_clause = getattr(node, "withClause", None) if isinstance(node, ast.SelectStmt) else None
    if with_clause is not None:
        names = [cte.ctename for cte in with_clause.ctes or ()]
        seen = set(ctes)
        for cte in with_clause.ctes or ():
            # a recursive WITH sees all its names; a plain one only the earlier ones (and itself never)
            visible = ctes | set(names) if with_clause.recursive else frozenset(seen)
            yield from _relations(cte.ctequery, frozenset(visible))
            seen.add(cte.ctename)
        ctes = ctes | set(names)
    for attr in node:
        if attr == "withClause" and with_clause is not None:
            continue
        value = getattr(node, attr, None)
        if isinstance(value, (ast.Node, list, tuple)):
            yield from _relations(value, ctes)


def _check_node(node, partial: dict[str, str]) -> list[Problem]:
    from pglast import ast
    from pglast.enums import CoercionForm

    if isinstance(node, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)):
        return [Problem(f"a {_command(node)} inside the query", "changes data", _WRITE_HINT)]
    if isinstance(node, ast.FuncCall):
        name = function_name(node)
        if not is_allowed(name, read=True):
            syntax = node.funcformat == CoercionForm.COERCE_SQL_SYNTAX or name[-1] in SQL_SYNTAX
            return [Problem(*refusal(name, syntax=syntax))]
        return _sized(name[-1], node)
    if isinstance(node, ast.LockingClause):
        return [Problem("FOR UPDATE / FOR SHARE", "locks rows", "drop it: a read locks no rows")]
    if isinstance(node, ast.IntoClause):
        return [Problem("SELECT INTO", "creates a table", "drop INTO: the result is kept as a DataFrame")]
    if isinstance(node, ast.ParamRef):
        return [Problem(f"the parameter ${node.number}", "has no value here", "write the value into the query")]
    cast: Any = node.typeName.names if isinstance(node, ast.TypeCast) and node.typeName is not None else None
    if cast and cast[-1].sval == "regrole":
        return [
            Problem(
                "::regrole",
                "names the database's logins, which are not readable here",
                "current_user names your own login",
            )
        ]
    if isinstance(node, (ast.ColumnRef, ast.A_Indirection)):
        fields: Any = node.fields if isinstance(node, ast.ColumnRef) else node.indirection
        names: list[Any] = [getattr(f, "sval", None) for f in fields or ()]
        for field in names:
            if field in ATTRIBUTE_NOTATION_DENIED:
                return [Problem(field, "is a function with side effects", "drop it")]
        if isinstance(node, ast.ColumnRef):
            return _columns(names, partial)
    return []


def _columns(names: list[Any], partial: dict[str, str]) -> list[Problem]:
    """A column that is not readable, named as table.column; a whole-row reference to such a table."""
    if not partial:
        return []
    column = names[-1]
    owner = partial.get(names[-2]) if len(names) >= 2 else None
    candidates = [owner] if owner else list(dict.fromkeys(partial.values()))
    for relation in candidates:
        entry = DENIED_COLUMNS.get((relation, column)) if column else None
        if entry:
            return [Problem(f"{relation}.{column}", entry[0], entry[1])]
    if len(names) == 1 and names[0] in partial:  # the whole row, as a value (row_to_json(u))
        relation = partial[names[0]]
        return [_whole_row(relation, f"the whole row of {names[0]}")]
    return []


def _whole_row(relation: str, what: str) -> Problem:
    hidden = [c for (r, c) in DENIED_COLUMNS if r == relation]
    shown = ", ".join(f"{relation}.{c}" for c in hidden)
    readable = next((why for (r, _), (_, why) in DENIED_COLUMNS.items() if r == relation and "readable" in why), None)
    instead = f"list the columns: {readable}" if readable else f"name the columns you need, without {', '.join(hidden)}"
    return Problem(what, f"would include {shown}, which is not readable", instead)


def _stars(stmt, partial: dict[str, str]) -> list[Problem]:
    """``*`` or ``alias.*`` in a SELECT whose own FROM reads a partly readable relation."""
    from pglast import ast

    if not partial:
        return []
    problems = []
    for node in walk(stmt):
        if not isinstance(node, ast.SelectStmt) or not node.targetList:
            continue
        direct = dict(_direct_relations(node.fromClause or ()))
        for target in node.targetList:
            ref = target.val
            fields: Any = ref.fields if isinstance(ref, ast.ColumnRef) else None
            if not fields or not isinstance(fields[-1], ast.A_Star):
                continue
            qualifier = fields[-2].sval if len(fields) >= 2 else None
            for alias, relation in direct.items():
                if relation in PARTLY_READABLE and qualifier in (None, alias):
                    problems.append(_whole_row(relation, f"SELECT {qualifier + '.' if qualifier else ''}*"))
    return problems


def _direct_relations(items) -> Iterator[tuple[Any, Any]]:
    from pglast import ast

    for item in items:
        if isinstance(item, ast.RangeVar):
            yield (item.alias.aliasname if item.alias else item.relname), item.relname
        elif isinstance(item, ast.JoinExpr):
            yield from _direct_relations((item.larg, item.rarg))


def _sized(name: str, call) -> list[Problem]:
    """A constant size argument that would make one value bigger than any result may be."""
    index = _SIZED_ARG.get(name)
    args = call.args or ()
    if index is None or len(args) <= index:
        return []
    size = _constant(args[index])
    if size is None or size <= MAX_CONSTANT_BYTES:
        return []
    return [
        Problem(
            f"{name}(..., {size:g})",
            f"builds one value of {size:,.0f} characters, more than the {MAX_CONSTANT_BYTES:,} the read path "
            "lets one call build",
            "a smaller size, or aggregate: the result is cut at NEXUS_RESULT_MAX_BYTES anyway",
        )
    ]


# Aggregates that build one value out of all their input rows (in the backend, whole).
_BUILDING_AGGREGATES = frozenset(
    {"string_agg", "array_agg", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "xmlagg"}
)
MAX_AGGREGATE_BYTES = 256 << 20


def _aggregate_bound(stmt) -> list[Problem]:
    """An aggregate that would build one value out of constant-sized generated rows bigger than
    ``MAX_AGGREGATE_BYTES``: rows from generate_series with constant bounds, times the largest
    constant size a call in the statement builds (16 bytes an element at least)."""
    from pglast import ast

    calls = [n for n in walk(stmt) if isinstance(n, ast.FuncCall)]
    aggregates = sorted({function_name(c)[-1] for c in calls} & _BUILDING_AGGREGATES)
    if not aggregates:
        return []
    rows, size = 1.0, 16.0
    for call in calls:
        name, args = function_name(call)[-1], call.args or ()
        if name == "generate_series" and len(args) >= 2:
            low, high = _constant(args[0]), _constant(args[1])
            step = _constant(args[2]) if len(args) > 2 else 1.0
            if low is not None and high is not None and step:
                rows *= max(1.0, (high - low) / abs(step) + 1)
        elif name in _SIZED_ARG and len(args) > _SIZED_ARG[name]:
            size = max(size, _constant(args[_SIZED_ARG[name]]) or 0)
    if rows * size <= MAX_AGGREGATE_BYTES:
        return []
    return [
        Problem(
            f"{aggregates[0]}() over generate_series",
            f"would build one value of about {rows * size / (1 << 20):,.0f} MiB in the database server, more "
            f"than the {MAX_AGGREGATE_BYTES >> 20} MiB the read path lets one statement build",
            "fewer generated rows or smaller values; count(*) or sum() for totals",
        )
    ]


def _constant(node) -> float | None:
    """The number a constant expression (a literal, a cast of one, a product of them) stands for."""
    from pglast import ast

    if isinstance(node, ast.TypeCast):
        return _constant(node.arg)
    if isinstance(node, ast.A_Const) and not node.isnull:
        val = node.val
        raw = getattr(val, "ival", None)
        if raw is None:
            raw = getattr(val, "fval", None)
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None
    if isinstance(node, ast.A_Expr) and node.name and node.name[0].sval in ("*", "^", "+") and node.lexpr:
        left, right = _constant(node.lexpr), _constant(node.rexpr)
        if left is None or right is None:
            return None
        op = node.name[0].sval
        return left * right if op == "*" else (left**right if op == "^" else left + right)
    return None


# -- what is sent ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rewritten:
    """The statement as sent, and how to map a position in it back to the text the model wrote."""

    text: str
    shifts: tuple[tuple[int, int], ...] = ()  # (position in the original where a rewrite ends, delta)
    exact: bool = True  # False: the statement was rebuilt from its tree, positions do not map back

    def original_position(self, position: int) -> int | None:
        if not self.exact:
            return None
        for end, delta in self.shifts:
            if position > end + delta:
                position -= delta
        return position


def _ident_text(token: str) -> str:
    """An identifier token as the parser reads it: quoted kept as is, unquoted lower-cased."""
    return token[1:-1].replace('""', '"') if token.startswith('"') else token.lower()


def rewrite(text: str, value_bound: int | None = None) -> Rewritten:
    """``text`` (already checked) with the relations a reader would read wrongly replaced by the
    product's equivalents: pg_settings without custom settings, and the information_schema views
    that list only what the reader owns read from the catalog instead. Data-sized size arguments
    are clamped and, with ``value_bound``, every value-building aggregate is guarded
    (``guard_aggregates``)."""
    from pglast import ast

    raw = parse(text, noun="query", empty="Empty query.")
    clamped = _clamp_sizes(raw[0].stmt)
    guarded = value_bound is not None and guard_aggregates(raw[0].stmt, value_bound)
    exact = not (clamped or guarded)
    if not exact:
        from pglast.stream import RawStream

        text = RawStream()(raw[0].stmt)
        raw = parse(text, noun="query", empty="Empty query.")
    from pglast.parser import scan

    edits: list[tuple[int, int, str]] = []
    tokens = scan(text)
    for rv in _relations(raw[0].stmt, frozenset()):
        if rv.schemaname in (None, "pg_catalog") and rv.relname == "pg_settings":
            body = SETTINGS_VIEW
        elif rv.schemaname == "information_schema" and rv.relname in SCHEMA_VIEWS:
            body = SCHEMA_VIEWS[rv.relname]
        else:
            continue
        # The name as written ends with the first identifier token from its start that is the
        # relation's name (a schema, quotes and comments may come before it).
        end = next(
            (
                t.end + 1
                for t in tokens
                if t.start >= rv.location and _ident_text(text[t.start : t.end + 1]) == rv.relname
            ),
            None,
        )
        if end is None:  # never silently send the unfiltered relation
            raise QueryError(f"Write {rv.relname} as a plain name (no comments inside it).")
        alias = "" if isinstance(rv.alias, ast.Alias) else f" AS {rv.relname}"
        start = rv.location
        before = [t for t in tokens if t.end < start and t.name not in ("C_COMMENT", "SQL_COMMENT")]
        if before and before[-1].name == "TABLE":  # TABLE name is SELECT * FROM name
            start = before[-1].start
            body = f"SELECT * FROM ({body})"
        edits.append((start, end, f"({body}){alias}" if start == rv.location else f"{body}{alias}"))
    shifts = []
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    for start, end, new in sorted(edits):
        shifts.append((end, len(new) - (end - start)))
    return Rewritten(text, tuple(shifts), exact)


def _clamp_sizes(stmt) -> bool:
    """Bound every size argument that comes from the data (``repeat(x, stars * 1000)``) at
    ``MAX_CONSTANT_BYTES``, as a constant one is: the backend would otherwise build a value of up to
    1 GB per row. True when the tree was changed."""
    from pglast import ast, enums

    changed = False
    for node in walk(stmt):
        if not isinstance(node, ast.FuncCall):
            continue
        index = _SIZED_ARG.get(function_name(node)[-1])
        args = list(node.args or ())
        if index is None or len(args) <= index or _constant(args[index]) is not None:
            continue
        bound = ast.A_Const(val=ast.Integer(ival=MAX_CONSTANT_BYTES))
        args[index] = ast.MinMaxExpr(op=enums.MinMaxOp.IS_LEAST, args=(args[index], bound))
        node.args = tuple(args)
        changed = True
    return changed


# What one input row adds to a built value beyond its own bytes (array slot, JSON punctuation and
# keys, the parse tree of jsonb): a few words, so many tiny rows count too.
_ROW_OVERHEAD = 16
# jsonb_agg / jsonb_object_agg hold a parsed tree of every element until the end, several times
# the bytes of the elements (measured in benchmarks/bench_read_memory.py): counted at this weight.
_TREE_WEIGHT = {"jsonb_agg": 4, "jsonb_object_agg": 4}


def guard_aggregates(stmt, bound: int) -> bool:
    """Put ``nexus_lab.value_bound`` (schema migration 6) next to every aggregate that builds one
    value out of its input rows: ``string_agg(x, d ORDER BY o) FILTER (WHERE f)`` becomes
    ``CASE WHEN nexus_lab.value_bound(<bytes of x and d>, bound, 'string_agg()') FILTER (WHERE f)
    < 0 THEN NULL ELSE string_agg(x, d ORDER BY o) FILTER (WHERE f) END``. Both aggregates see the
    same rows in the same Agg node; the guard adds up the bytes that go into the value (text by
    its length, anything else by ``pg_column_size``, plus a per-row overhead) and stops the
    statement with SQLSTATE 54000 once they pass ``bound``, so the backend holds at most a small
    multiple of it. The aggregate itself, ORDER BY, DISTINCT, FILTER and OVER are untouched and
    a top-level one keeps its column name. ``ARRAY(SELECT ...)`` builds one value too and gets the
    same guard as a window over its rows. True when the tree was changed."""
    from pglast import ast, enums

    changed = False

    def guarded(node):
        if isinstance(node, ast.FuncCall) and not node.agg_star:
            name = function_name(node)
            if (len(name) == 2 and name[0] != "pg_catalog") or name[-1] not in _BUILDING_AGGREGATES or not node.args:
                return None  # no arguments: the server says what is wrong with the call
            what, args, size = f"{name[-1]}()", list(node.args or ()), _bytes
            if name[-1] == "string_agg":
                size = _text_bytes
            return _guard(node, what, args, size, node.agg_filter, node.over, name[-1], bound)
        if isinstance(node, ast.SubLink) and node.subLinkType == enums.SubLinkType.ARRAY_SUBLINK:
            return _guard_array(node, bound)
        if isinstance(node, (ast.JsonArrayAgg, ast.JsonObjectAgg)):
            c, arg = node.constructor, node.arg
            assert arg is not None  # the grammar gives every JSON aggregate its argument
            if isinstance(arg, ast.JsonValueExpr):
                what, args = "JSON_ARRAYAGG", [arg.raw_expr]
            else:
                what, args = "JSON_OBJECTAGG", [arg.key, getattr(arg.value, "raw_expr", None)]
            return _guard(node, what, args, _bytes, c.agg_filter if c else None, c.over if c else None, "", bound)
        return None

    def visit(node):
        nonlocal changed
        for attr in node:
            value = getattr(node, attr, None)
            if isinstance(value, ast.Node):
                visit(value)
                new = guarded(value)
                if new is not None:
                    if isinstance(node, ast.ResTarget) and node.name is None:
                        node.name = _column_name(value)  # the column keeps the name PostgreSQL gives it
                    setattr(node, attr, new)
                    changed = True
            elif isinstance(value, tuple):
                items = list(value)
                for i, item in enumerate(items):
                    if isinstance(item, ast.Node):
                        visit(item)
                        new = guarded(item)
                        if new is not None:
                            items[i], changed = new, True
                setattr(node, attr, tuple(items))

    visit(stmt)
    return changed


_ARRAY_GUARD = (
    "SELECT CASE WHEN {schema}.value_bound(pg_column_size(nexus_array.nexus_v)::int8 + {overhead}, {bound}::int8, "
    "'ARRAY(SELECT ...)') OVER () < 0 THEN NULL ELSE nexus_array.nexus_v END FROM (SELECT 1) AS nexus_array(nexus_v)"
)


def _guard_array(node, bound: int):
    """``ARRAY(SELECT e ...)`` as ``ARRAY(SELECT <e, guarded> FROM (SELECT e ...) AS nexus_array(nexus_v))``:
    the window guard sees every row before the first is handed on (rows past work_mem wait on
    disk, within temp_file_limit), and the rows keep their order."""
    import pglast

    from .schema import PRODUCT_SCHEMA

    sql = _ARRAY_GUARD.format(schema=PRODUCT_SCHEMA, overhead=_ROW_OVERHEAD, bound=int(bound))
    template: Any = pglast.parse_sql(sql)[0].stmt
    template.fromClause[0].subquery = node.subselect
    node.subselect = template
    return node


def _column_name(node) -> str:
    from pglast import ast

    if isinstance(node, ast.SubLink):
        return "array"
    if isinstance(node, ast.FuncCall):
        return function_name(node)[-1]
    return "json_arrayagg" if isinstance(node, ast.JsonArrayAgg) else "json_objectagg"


def _row_overhead():
    """The per-row overhead as a bigint: the sum of sizes never overflows an integer."""
    from pglast import ast

    return ast.TypeCast(
        arg=ast.A_Const(val=ast.Integer(ival=_ROW_OVERHEAD)), typeName=ast.TypeName(names=(ast.String(sval="int8"),))
    )


def _guard(node, what: str, args: list, size, agg_filter, over, name: str, bound: int):
    from pglast import ast, enums

    from .schema import PRODUCT_SCHEMA

    def const(value):
        return ast.A_Const(val=ast.Integer(ival=value) if isinstance(value, int) else ast.String(sval=value))

    def op(sym: str, left, right):
        return ast.A_Expr(kind=enums.A_Expr_Kind.AEXPR_OP, name=(ast.String(sval=sym),), lexpr=left, rexpr=right)

    total = size(args)
    weight = _TREE_WEIGHT.get(name, 1)
    if weight != 1:
        total = op("*", total, const(weight))
    check = ast.FuncCall(
        funcname=(ast.String(sval=PRODUCT_SCHEMA), ast.String(sval="value_bound")),
        args=(
            total,
            ast.TypeCast(arg=const(bound), typeName=ast.TypeName(names=(ast.String(sval="int8"),))),
            ast.TypeCast(arg=const(what), typeName=ast.TypeName(names=(ast.String(sval="text"),))),
        ),
        agg_filter=agg_filter,
        over=over,
    )
    return ast.CaseExpr(
        args=(ast.CaseWhen(expr=op("<", check, const(0)), result=ast.A_Const(isnull=True)),),
        defresult=node,
    )


def _bytes(args: list):
    """Bytes of any values, as stored (``pg_column_size``), with a NULL as nothing, plus a row."""
    from pglast import ast, enums

    total: Any = _row_overhead()
    for arg in args:
        size = ast.FuncCall(funcname=(ast.String(sval="pg_column_size"),), args=(arg,))
        term = ast.CoalesceExpr(args=(size, ast.A_Const(val=ast.Integer(ival=0))))
        total = ast.A_Expr(kind=enums.A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="+"),), lexpr=total, rexpr=term)
    return total


def _text_bytes(args: list):
    """string_agg's bytes: the value's length (NULL when it is NULL: string_agg skips it, and so
    does the guard, whose step is strict) and the delimiter's, plus a row."""
    from pglast import ast, enums

    def plus(left, right):
        return ast.A_Expr(kind=enums.A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="+"),), lexpr=left, rexpr=right)

    def length(arg):
        return ast.FuncCall(funcname=(ast.String(sval="octet_length"),), args=(arg,))

    total = plus(_row_overhead(), length(args[0]))
    if len(args) > 1:
        total = plus(total, ast.CoalesceExpr(args=(length(args[1]), ast.A_Const(val=ast.Integer(ival=0)))))
    return total


# Words a PostgreSQL statement can start with: what a misspelt first word is matched against.
COMMANDS = (
    "SELECT",
    "WITH",
    "VALUES",
    "TABLE",
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "EXPLAIN",
    "SHOW",
    "SET",
    "COPY",
    "CREATE",
    "ALTER",
    "DROP",
    "TRUNCATE",
    "GRANT",
    "REVOKE",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "ANALYZE",
    "VACUUM",
    "CALL",
    "DO",
    "LOCK",
    "NOTIFY",
    "LISTEN",
    "PREPARE",
    "EXECUTE",
    "DECLARE",
    "FETCH",
    "COMMENT",
)
_FIRST_WORD = re.compile(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*\(*\s*([A-Za-z_]+)", re.S)


def misspelt_command(sql: Any) -> tuple[str, str] | None:
    """(the first word, the command it is closest to) when the statement starts with a word that is
    no SQL command but nearly one ('selct' -> SELECT); else None."""
    match = _FIRST_WORD.match(sql) if isinstance(sql, str) else None
    if match is None or match.group(1).upper() in COMMANDS:
        return None
    word = match.group(1)
    if word.upper() in ("DESCRIBE", "DESC"):
        return None
    close = difflib.get_close_matches(word.upper(), COMMANDS, n=1, cutoff=0.6)
    return (word, close[0]) if close else None


def _command(stmt) -> str:
    from pglast import ast

    names = {
        ast.InsertStmt: "INSERT",
        ast.UpdateStmt: "UPDATE",
        ast.DeleteStmt: "DELETE",
        ast.MergeStmt: "MERGE",
        ast.CopyStmt: "COPY",
        ast.DoStmt: "DO",
        ast.CallStmt: "CALL",
        ast.TruncateStmt: "TRUNCATE",
        ast.VariableSetStmt: "SET",
        ast.TransactionStmt: "a transaction command",
        ast.ExplainStmt: "EXPLAIN",
        ast.LockStmt: "LOCK",
        ast.NotifyStmt: "NOTIFY",
        ast.ListenStmt: "LISTEN",
        ast.VacuumStmt: "VACUUM",
    }
    for cls, word in names.items():
        if isinstance(stmt, cls):
            return word
    return type(stmt).__name__.removesuffix("Stmt").upper() or "this statement"
