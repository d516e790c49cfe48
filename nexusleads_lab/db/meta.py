"""psql's describe commands (``\\dt``, ``\\d NAME``, ``\\d+ NAME``, ``\\dn``, ``\\dv``, ``\\di``),
answered from the catalog through the read path (the same gate, role and scope as any query)
and printed the way psql prints them. Models trained on psql sessions write these first.

Owners are left out: they are role names, which the read path does not show. Any other
backslash command gets one sentence saying it is not supported and what to use instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from ..words import noun
from .errors import QueryError
from .schema import LEAD_TABLES

SUPPORTED = ("\\dt", "\\d NAME", "\\d+ NAME", "\\dn", "\\dv", "\\di")
_COMMAND = re.compile(r"^\s*\\([A-Za-z]+)(\+?)(?:\s+(.*?))?\s*;?\s*$", re.S)
_KINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "i": "index",
    "S": "sequence",
    "f": "foreign table",
    "I": "partitioned index",
}
_TITLES = {
    "r": "Table",
    "p": "Partitioned table",
    "v": "View",
    "m": "Materialized view",
    "i": "Index",
    "S": "Sequence",
    "f": "Foreign table",
    "I": "Partitioned index",
}
_USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_temp'"


def is_meta(sql: object) -> bool:
    """A psql backslash command rather than SQL."""
    return isinstance(sql, str) and sql.lstrip().startswith("\\")


@dataclass
class MetaOutput:
    command: str
    text: str  # what psql would print


Read = Callable[[str], pd.DataFrame]


def describe(command: str, read: Read) -> MetaOutput:
    """Answer one psql describe command; ``read`` runs a catalog query through the read path.
    Raises QueryError for a command psql has but this does not answer."""
    match = _COMMAND.match(command)
    if match is None:
        raise QueryError(_unsupported(command.strip().split()[0] if command.strip() else "\\"))
    name, plus, arg = match.group(1), match.group(2) == "+", (match.group(3) or "").strip()
    if name == "d" and arg:
        return MetaOutput(command, _describe_relation(arg, plus, read))
    if name in ("d", "dt", "dv", "di"):
        kinds = {"d": "rvmSfp", "dt": "rp", "dv": "v", "di": "iI"}[name]
        return MetaOutput(command, _list_relations(kinds, arg, plus, read))
    if name == "dn":
        return MetaOutput(command, _list_schemas(plus, read))
    raise QueryError(_unsupported("\\" + name + ("+" if plus else "")))


def _unsupported(word: str) -> str:
    instead = {
        "\\l": "SELECT current_database() names this database; the read path sees no other",
        "\\du": "role names are not readable here; current_user names your login",
        "\\dg": "role names are not readable here; current_user names your login",
        "\\df": "SELECT proname FROM pg_proc WHERE proname LIKE '...'",
        "\\x": "every result is a table already; select fewer columns to see them side by side",
        "\\c": "there is one database here",
        "\\conninfo": "SELECT current_database(), current_user",
        "\\timing": "every result says how long it took",
        "\\q": "nothing to quit: send the next query",
    }.get(word.rstrip("+"), "write the SQL itself, e.g. SELECT ... FROM information_schema.columns")
    return (
        f"{word} is not supported here: the psql tool answers {', '.join(SUPPORTED)} and runs SQL; "
        f"for {word}: {instead}."
    )


def _s(value) -> str:
    """A cell as psql prints it: NULL is empty."""
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pattern(arg: str) -> str:
    """A psql name pattern (``*`` and ``?`` wildcards, optional schema.) as a regex condition."""
    if not arg:
        return ""
    schema, _, rel = arg.rpartition(".")
    condition = ""
    for column, part in (("n.nspname", schema), ("c.relname", rel)):
        if part:
            regex = "^(" + re.escape(part.strip('"')).replace(r"\*", ".*").replace(r"\?", ".") + ")$"
            condition += f" AND {column} ~ {_literal(regex)}"
    return condition


def _list_relations(kinds: str, arg: str, plus: bool, read: Read) -> str:
    visible = "" if arg else f" AND {_USER_SCHEMAS} AND pg_catalog.pg_table_is_visible(c.oid)"
    kinds_sql = ", ".join(_literal(k) for k in kinds)
    index_table = ", t.relname AS tbl" if "i" in kinds else ", NULL AS tbl"
    join = (
        " LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid LEFT JOIN pg_catalog.pg_class t ON t.oid = i.indrelid"
        if "i" in kinds
        else ""
    )
    df = read(
        f"SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind{index_table},"
        " pg_catalog.obj_description(c.oid, 'pg_class') AS description"
        f" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace{join}"
        f" WHERE c.relkind IN ({kinds_sql}){visible}{_pattern(arg)} ORDER BY 1, 2"
    )
    if not arg:  # what the reader can read, not every table of a shared database
        table = df["tbl"] if "i" in kinds else df["name"]
        df = df[(df["schema"] != "public") | table.isin(LEAD_TABLES) | ~df["kind"].isin(["r", "i"])]
    if df.empty:
        what = {"rvmSfp": "relations", "rp": "tables", "v": "views", "iI": "indexes"}.get(kinds, "relations")
        return f"Did not find any {what}" + (f' named "{arg}".' if arg else ".")
    headers = ["Schema", "Name", "Type"] + (["Table"] if "i" in kinds else []) + (["Description"] if plus else [])
    rows = []
    for r in df.itertuples(index=False):
        row = [r.schema, r.name, _KINDS.get(r.kind, r.kind)]
        row += [_s(r.tbl)] if "i" in kinds else []
        row += [_s(r.description)] if plus else []
        rows.append(row)
    return aligned("List of relations", headers, rows)


def _list_schemas(plus: bool, read: Read) -> str:
    df = read(
        "SELECT n.nspname AS name, pg_catalog.obj_description(n.oid, 'pg_namespace') AS description"
        f" FROM pg_catalog.pg_namespace n WHERE {_USER_SCHEMAS} ORDER BY 1"
    )
    headers = ["Name"] + (["Description"] if plus else [])
    rows = [[r.name] + ([_s(r.description)] if plus else []) for r in df.itertuples(index=False)]
    return aligned("List of schemas", headers, rows)


def _describe_relation(arg: str, plus: bool, read: Read) -> str:
    found = read(
        "SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,"
        " pg_catalog.pg_get_viewdef(c.oid, true) AS viewdef"
        " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE c.oid = pg_catalog.to_regclass({_literal(arg)})"
    )
    if found.empty:
        return f'Did not find any relation named "{arg}".'
    rel = found.iloc[0]
    oid = int(rel["oid"])
    cols = read(
        "SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,"
        " (SELECT co.collname FROM pg_catalog.pg_collation co, pg_catalog.pg_type t WHERE co.oid = a.attcollation"
        "  AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS collation,"
        " a.attnotnull AS notnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) AS default,"
        " CASE a.attstorage WHEN 'p' THEN 'plain' WHEN 'e' THEN 'external' WHEN 'm' THEN 'main'"
        "  ELSE 'extended' END AS storage, pg_catalog.col_description(a.attrelid, a.attnum) AS description"
        " FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid"
        f" AND d.adnum = a.attnum WHERE a.attrelid = {oid} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
    )
    kind = rel["kind"]
    title = f'{_TITLES.get(kind, "Relation")} "{rel["schema"]}.{rel["name"]}"'
    headers = ["Column", "Type", "Collation", "Nullable", "Default"] + (["Storage", "Description"] if plus else [])
    rows = []
    for c in cols.itertuples(index=False):
        row = [c.name, c.type, _s(c.collation), "not null" if _s(c.notnull) == "True" else "", _s(c.default)]
        rows.append(row + ([c.storage, _s(c.description)] if plus else []))
    footer: list[str] = []
    if kind in ("r", "p", "m"):
        footer += _table_footer(oid, read)
    if kind in ("v", "m") and plus and isinstance(rel["viewdef"], str):
        footer += ["View definition:", *(" " + line for line in rel["viewdef"].splitlines())]
    return aligned(title, headers, rows, footer=footer, count=False)


def _table_footer(oid: int, read: Read) -> list[str]:
    footer: list[str] = []
    idx = read(
        "SELECT c2.relname AS name, i.indisprimary AS primary, i.indisunique AS unique,"
        " pg_catalog.pg_get_indexdef(i.indexrelid, 0, true) AS definition, con.contype::text AS contype"
        " FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c2 ON c2.oid = i.indexrelid"
        " LEFT JOIN pg_catalog.pg_constraint con ON con.conrelid = i.indrelid AND con.conindid = i.indexrelid"
        f" AND con.contype IN ('p', 'u', 'x') WHERE i.indrelid = {oid} ORDER BY i.indisprimary DESC, c2.relname"
    )
    if not idx.empty:
        footer.append("Indexes:")
        for r in idx.itertuples(index=False):
            using = r.definition.split(" USING ", 1)[-1]
            kind = "PRIMARY KEY, " if r.primary else ("UNIQUE CONSTRAINT, " if r.contype == "u" else "")
            if not kind and r.unique:
                kind = "UNIQUE, "
            footer.append(f'    "{r.name}" {kind}{using}')
    cons = read(
        "SELECT con.conname AS name, con.contype::text AS kind, pg_catalog.pg_get_constraintdef(con.oid, true) AS definition,"
        " src.relname AS source, con.conrelid::bigint AS rel"
        " FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class src ON src.oid = con.conrelid"
        f" WHERE (con.conrelid = {oid} AND con.contype IN ('c', 'f')) OR (con.confrelid = {oid} AND con.contype = 'f')"
        " ORDER BY con.conname"
    )
    own = cons[cons["rel"] == oid] if not cons.empty else cons
    for kind, heading in (("c", "Check constraints:"), ("f", "Foreign-key constraints:")):
        part = own[own["kind"] == kind] if not own.empty else own
        if not part.empty:
            footer.append(heading)
            footer += [f'    "{r.name}" {r.definition}' for r in part.itertuples(index=False)]
    refs = cons[(cons["kind"] == "f") & (cons["rel"] != oid)] if not cons.empty else cons
    if not refs.empty:
        footer.append("Referenced by:")
        footer += [f'    TABLE "{r.source}" CONSTRAINT "{r.name}" {r.definition}' for r in refs.itertuples(index=False)]
    return footer


def aligned(
    title: str, headers: list[str], rows: list[list], *, footer: list[str] | None = None, count: bool = True
) -> str:
    """psql's aligned format: a centred title, centred headers, ``-+-`` rules, ``(N rows)``."""
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    total = sum(widths) + 3 * (len(widths) - 1) + 2
    lines = [title.center(total).rstrip()]
    lines.append(" " + " | ".join(h.center(w) for h, w in zip(headers, widths)).rstrip())
    lines.append("-" + "-+-".join("-" * w for w in widths) + "-")
    for r in cells:
        lines.append(" " + " | ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    lines += footer or []
    if count:
        lines.append(f"({len(cells)} {noun(len(cells), 'row')})")  # psql's own footer: no thousands separator
    return "\n".join(lines) + "\n"


def run(engine, command: str) -> MetaOutput:
    """``describe`` through an engine's read path (its gate, role and scope)."""
    return describe(command, lambda sql: engine.read(sql).df)
