"""The statement as sent: the model's query wrapped so the server bounds what comes back.

The wrapper renames the query's columns positionally (so duplicate names work) and, from the
result's described types, bounds every variable-width value on the server before it travels:
text and bytea longer than the per-value bound are cut to a prefix, other wide values (jsonb,
arrays, records) over it become NULL, and a last column says which rows lost something. Types
the Arrow driver would hand over as opaque bytes (inet, ranges, tsvector, ...) travel as their
PostgreSQL text form. The row cap is the wrapper's LIMIT.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import pyarrow as pa

CUT_COLUMN = "nexus_cut"
# Types the driver delivers as Arrow values of their own; everything else opaque goes as text.
_NATIVE = ("int", "float", "bool", "date", "timestamp", "time", "interval", "uuid", "numeric", "decimal")


def _ident(i: int) -> str:
    return f"nexus_c{i}"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _kind(field: pa.Field) -> str:
    """ "fixed" (travels as is), "text" (cut to a prefix), "wide" (NULL when too big) or "opaque"."""
    typ = field.type
    if isinstance(typ, pa.BaseExtensionType):
        name = getattr(typ, "extension_name", "")
        if name == "arrow.uuid":
            return "fixed"
        if name == "arrow.opaque":
            meta = field.metadata or {}
            pg = (meta.get(b"POSTGRESQL:type") or b"").decode()
            return "fixed" if pg == "numeric" else "opaque"
        return "wide"  # arrow.json
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ):
        return "text"
    if pa.types.is_large_binary(typ):
        return "text"
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_struct(typ):
        return "wide"
    return "fixed"


def per_value_bound(schema: pa.Schema, max_bytes: int) -> int:
    """Bytes one value may have: a row stays within a quarter of the result cap, at least 4 KiB."""
    wide = sum(1 for f in schema if _kind(f) != "fixed") or 1
    return max(4096, max_bytes // (4 * wide))


def wrap(text: str, schema: pa.Schema, limit: int, bound: int) -> tuple[str, int]:
    """``SELECT <bounded columns> FROM (text) AS nexus_result(nexus_c1, ...) LIMIT limit``, and
    where ``text`` starts in it (to map the server's error positions back)."""
    columns, cuts = [], []
    for i, field in enumerate(schema, 1):
        col, kind = _ident(i), _kind(field)
        if kind == "opaque":
            # the output function: inet as 10.0.0.1 (a cast to text would add /32)
            col, kind = f"(CASE WHEN {col} IS NULL THEN NULL ELSE format('%s', {col}) END)", "text"
        if kind == "text":
            if not pa.types.is_binary(field.type) and not pa.types.is_large_binary(field.type):
                col = f"{col}::text"  # "char", name, varchar: one type for both branches of the CASE
            size = f"octet_length({col})"
            expr = f"CASE WHEN {size} > {bound} THEN substring({col} FROM 1 FOR {bound // 4}) ELSE {col} END"
        elif kind == "wide":
            size = f"pg_column_size({col})"
            expr = f"CASE WHEN {size} > {bound} THEN NULL ELSE {col} END"
        else:
            expr, size = col, None
        if size:
            cuts.append(f"coalesce({size} > {bound}, false)")
        columns.append(f"{expr} AS {quote(field.name)}")
    cut = " OR ".join(cuts) or "false"
    names = ", ".join(_ident(i) for i in range(1, len(schema) + 1))
    head = f"SELECT {', '.join(columns)}, ({cut}) AS {CUT_COLUMN} FROM (\n"
    return head + text + f"\n) AS nexus_result({names}) LIMIT {int(limit)}", len(head)


_STATEMENTS: OrderedDict[tuple[str, int, int], tuple[pa.Schema, str, int, int]] = OrderedDict()
_STATEMENTS_LOCK = threading.Lock()
_MAX_STATEMENTS = 256


def statement(text: str, schema: pa.Schema, limit: int, max_bytes: int) -> tuple[str, int, int]:
    """``wrap`` with ``per_value_bound(schema, max_bytes)``: the statement to send for ``text`` whose
    columns were just described as ``schema``, where ``text`` starts in it, and ``object_columns`` of
    its result (``client_cost``). The same text described the same way (its types and their
    metadata) makes the same statement, so it is built once and kept (a few hundred).

    The result's object columns are counted on the described columns: the wrapper keeps each
    column's kind (a text, wide or opaque value stays an object, a fixed one stays itself) and adds
    one bool, so the count is the same, without reading the result's freshly imported schema."""
    key = (text, limit, max_bytes)
    with _STATEMENTS_LOCK:
        hit = _STATEMENTS.get(key)
        if hit is not None and hit[0].equals(schema, check_metadata=True):
            _STATEMENTS.move_to_end(key)
            return hit[1], hit[2], hit[3]
    wrapped, head = wrap(text, schema, limit, per_value_bound(schema, max_bytes))
    objects = object_columns(schema)
    with _STATEMENTS_LOCK:
        _STATEMENTS[key] = (schema, wrapped, head, objects)
        while len(_STATEMENTS) > _MAX_STATEMENTS:
            _STATEMENTS.popitem(last=False)
    return wrapped, head, objects


def object_columns(schema: pa.Schema) -> int:
    """How many of a result's columns become Python objects in pandas (``client_cost``)."""
    return sum(1 for f in schema if _kind(f) != "fixed" or isinstance(f.type, pa.BaseExtensionType))


def client_cost(batch: pa.RecordBatch, objects: int | None = None) -> int:
    """Bytes a batch will take in the kernel: its Arrow buffers and, for columns that become Python
    objects in pandas, about one object per value on top (the pandas copy holds them). ``objects``:
    ``object_columns(batch.schema)``, when the caller counted them once for all its batches.

    The buffers' whole size (``get_total_buffer_size``), not ``nbytes``: for a batch as the driver
    hands it over (no offset, no buffer shared) the two differ only by the few bytes a buffer holds
    past the values (a variable-width column's last offset), and ``nbytes`` walks every column's
    referenced ranges, about fifty times the cost. Never less than ``nbytes`` there, so the cap
    holds as before."""
    if objects is None:
        objects = object_columns(batch.schema)
    return batch.get_total_buffer_size() * 2 + batch.num_rows * objects * 64
