"""The wrapped statement is kept per text and described schema: the same text described with
other types (a migration) is wrapped anew, never with the bounds of the old types."""

from __future__ import annotations

import pyarrow as pa

from nexusleads_lab.db import bounded


def test_the_same_text_described_alike_is_wrapped_once_and_described_otherwise_anew():
    text = "SELECT x FROM t"
    narrow = pa.schema([pa.field("x", pa.int32())])
    wide = pa.schema([pa.field("x", pa.string())])
    first = bounded.statement(text, narrow, 11, 1 << 20)
    assert bounded.statement(text, pa.schema([pa.field("x", pa.int32())]), 11, 1 << 20) is not None
    assert bounded.statement(text, narrow, 11, 1 << 20) == first
    changed = bounded.statement(text, wide, 11, 1 << 20)
    assert changed != first and "octet_length" in changed[0], "a text column is bounded"
    assert changed == (*bounded.wrap(text, wide, 11, bounded.per_value_bound(wide, 1 << 20)), 1)
    assert first[2] == 0, "an int column is no object"
    opaque = pa.schema([pa.field("x", pa.opaque(pa.binary(), "inet", "postgresql"), metadata={b"k": b"v"})])
    assert bounded.statement(text, opaque, 11, 1 << 20) == (
        *bounded.wrap(text, opaque, 11, bounded.per_value_bound(opaque, 1 << 20)),
        1,
    )


def test_types_told_apart_by_their_metadata_alone_are_wrapped_apart():
    text = "SELECT y FROM t"
    typ = pa.opaque(pa.binary(), "unknown", "postgresql")
    numeric = pa.schema([pa.field("y", typ, metadata={b"POSTGRESQL:type": b"numeric"})])
    inet = pa.schema([pa.field("y", typ, metadata={b"POSTGRESQL:type": b"inet"})])
    as_numeric = bounded.statement(text, numeric, 5, 1 << 20)
    as_inet = bounded.statement(text, inet, 5, 1 << 20)
    assert "format(" not in as_numeric[0] and "format(" in as_inet[0]
    assert bounded.statement(text, numeric, 5, 1 << 20) == as_numeric
