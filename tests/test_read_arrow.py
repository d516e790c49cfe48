"""A read's result stays Arrow on the server's path: what the model reads and the dashboard drawn
from it are byte for byte what the pandas DataFrame gives, for every type a query can return
(NULLs, exact numerics, intervals, json, uuid, arrays, dates Python cannot hold, a value cut on the
server); the notebook still gets the same DataFrame, built once, when it asks."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest

from nexusleads_lab import fastjson
from nexusleads_lab.agent.responses import parse_response
from nexusleads_lab.agent.tools import PREVIEW_ROWS, _cell, preview_payload
from nexusleads_lab.config import EngineLimits
from nexusleads_lab.db import Engine
from nexusleads_lab.db.engine import arrow_to_pandas
from nexusleads_lab.db.frames import Frames

ORG = "acme-analytics"

# Three rows of every kind of column: ordinary values, NULLs, and the awkward ones.
BATTERY = """
SELECT * FROM (VALUES
  (1, 'one'::text, 1::int2, 2::int4, 3::int8, 1.5::float4, 2.25::float8, 12.50::numeric, true,
   date '2024-03-01', timestamp '2024-03-01 12:00:00.5', timestamptz '2024-03-01 12:00:00+00',
   timestamp '2024-03-01 00:00:00', date '2024-01-01', time '12:34:56', interval '1 day 02:03:04.5',
   '5c2f1a6e-3b1e-4a51-9d0e-3a9a1e2b3c4d'::uuid, '{"k": [1, 2]}'::jsonb, '{"a": "b"}'::json, ARRAY[1, 2],
   ARRAY['a', 'b'], '10.0.0.1'::inet, int4range(1, 5), '\\xdeadbeef'::bytea, '42', repeat('x', 120),
   12345678901234567890.12::numeric, 'NaN'::float8),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, 'three', -7, 0, 9007199254740993, 'Infinity', '-Infinity', 'NaN', false,
   date '0044-03-15 BC', timestamp '2024-12-31 23:59:59.999999', timestamptz '1999-01-01 00:00:00+00',
   'infinity', 'infinity', time '00:00:00', interval '1 mon 2 days', '00000000-0000-0000-0000-000000000000',
   '[1, "two", null]'::jsonb, 'null'::json, ARRAY[]::int[], ARRAY[NULL, 'c'], '10.1.0.0/16'::cidr,
   'empty'::int4range, '\\x'::bytea, 'seven', '', -0.5::numeric, 0::float8)
) AS t(i, label, i2, i4, i8, f4, f8, num, b, d, ts, tstz, ts_inf, d_inf, tm, iv, u, jb, js, ai, at, ip, r,
       bin, numtext, long, bignum, fnan)
ORDER BY i
"""


@pytest.fixture(scope="module")
def battery(db):
    return db.engine_for(ORG).read(BATTERY)


def _pandas_preview(result_id: str, result) -> str:
    """The model's preview as it was made from the DataFrame (before reads stayed Arrow)."""
    head = result.df.head(PREVIEW_ROWS)
    rows = [[_cell(v) for v in row] for row in head.itertuples(index=False, name=None)]
    for position in result.numeric_text:
        for row, value in zip(rows, result.exact_values(position, len(rows))):
            row[position] = value
    columns = [{"name": str(n), "type": t} for n, t in result.column_types.items()]
    if len(columns) != len(result.df.columns):
        columns = [{"name": str(n), "type": str(d)} for n, d in zip(result.df.columns, result.df.dtypes)]
    payload: dict[str, Any] = {
        "result_id": result_id,
        "row_count": result.row_count,
        "truncated": result.truncated,
        "columns": columns,
        "preview_rows": len(rows),
        "rows": rows,
    }
    if result.truncated:
        payload["note"] = result.truncation_note
    return fastjson.dumps(payload, default=str)


def _fresh(result):
    """The same result, its DataFrame not built yet (``battery`` is shared by the tests)."""
    return type(result)(**{k: getattr(result, k) for k in result.__dataclass_fields__ if k != "_df"})


def test_the_model_reads_every_type_exactly_as_the_dataframe_gave_it(battery):
    result = _fresh(battery)
    preview = preview_payload("r1", result)
    assert result._df is None, "the preview is made without building the DataFrame"
    assert preview == _pandas_preview("r1", result)
    row = json.loads(preview)["rows"][0]
    names = list(result.table.column_names)
    assert row[names.index("num")] == "12.50" and row[names.index("bignum")] == "12345678901234567890.12"
    assert row[names.index("u")] == '"5c2f1a6e-3b1e-4a51-9d0e-3a9a1e2b3c4d"'


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 AS a, 'x' AS a",  # duplicate names: the frame's own column types
        "SELECT tier, count(*) AS n FROM lead_scores GROUP BY tier ORDER BY tier",
        "SELECT * FROM lead_scores WHERE false",
        "SELECT g, g * 1.5 AS x FROM generate_series(1, 60) AS g",
    ],
)
def test_other_shapes_preview_as_the_dataframe_did(db, sql):
    result = db.engine_for(ORG).read(sql)
    assert preview_payload("r1", result) == _pandas_preview("r1", result)


def test_a_value_cut_on_the_server_previews_as_the_dataframe_did(db):
    engine = Engine(db.engine_for(ORG).agent_url, None, EngineLimits(result_max_bytes=1 << 20), scope=ORG)
    try:
        result = engine.read("SELECT 1 AS i, repeat('x', 3 << 20) AS big, 'short' AS s")
    finally:
        engine.close()
    assert result.truncated_by == "value"
    assert preview_payload("r1", result) == _pandas_preview("r1", result)


def _dashboard(names: list[str]) -> str:
    sections: list[dict[str, Any]] = [{"type": "table", "source": "r1"}]
    sections.append(
        {
            "type": "widgets",
            "items": [
                {"title": f"{c} {row}", "source": "r1", "column": c, "row": row} for c in names for row in (0, 1, -1)
            ],
        }
    )
    for c in names:
        sections += [
            {"type": "bars", "source": "r1", "x": c, "y": c},
            {"type": "bars", "source": "r1", "x": "label", "y": c, "limit": 2},
            {"type": "line", "source": "r1", "x": c, "y": "i8"},
            {"type": "line", "source": "r1", "x": "i", "y": [c, "f8"]},
            {"type": "line", "source": "r1", "x": "i", "y": "i4", "series": c},
            {"type": "pills", "source": "r1", "label_column": c, "count_column": c},
            {"type": "table", "source": "r1", "columns": [c, "label"], "limit": 2},
        ]
    return json.dumps({"type": "dashboard", "title": "Every type", "sections": sections})


def _drawn(parsed) -> str:
    return json.dumps([parsed.response.model_dump(mode="json"), parsed.notes], sort_keys=True)


def test_a_dashboard_over_every_type_is_drawn_as_from_the_dataframe(battery):
    result = _fresh(battery)
    text = _dashboard(list(result.table.column_names))
    frames = Frames()
    frames.keep("r1", result)
    from_arrow = parse_response(text, frames)
    assert from_arrow.response.type == "dashboard"
    frame = arrow_to_pandas(result.table)
    frame.attrs["sql"] = result.sql  # as the DataFrame carried its query
    assert _drawn(from_arrow) == _drawn(parse_response(text, {"r1": frame}))


def test_a_dashboard_of_numbers_by_label_or_time_is_drawn_without_a_dataframe(db):
    result = db.engine_for(ORG).read(
        "SELECT tier, count(*) AS n, avg(score) AS mean, max(scored_at) AS last FROM lead_scores GROUP BY tier"
    )
    frames = Frames()
    frames.keep("r1", result)
    text = json.dumps(
        {
            "type": "dashboard",
            "title": "Tiers",
            "sections": [
                {"type": "widgets", "items": [{"title": "Leads", "source": "r1", "column": "n"}]},
                {"type": "bars", "source": "r1", "x": "tier", "y": "n"},
                {"type": "line", "source": "r1", "x": "last", "y": "mean"},
                {"type": "pills", "source": "r1", "label_column": "tier", "count_column": "n"},
                {"type": "table", "source": "r1"},
            ],
        }
    )
    parsed = parse_response(text, frames)
    assert not parsed.notes and len(parsed.response.sections) == 5
    assert result._df is None, "the server drew it from Arrow"
    assert _drawn(parsed) == _drawn(parse_response(text, {"r1": result.df}))


def test_the_notebook_gets_the_same_dataframe_built_once(battery):
    result = _fresh(battery)
    frames = Frames()
    frames.keep("r1", result)
    frame = frames["r1"]
    expected = arrow_to_pandas(result.table)
    assert frame is result.df is frames["r1"], "built once, then kept"
    assert list(frame.dtypes.astype(str)) == list(expected.dtypes.astype(str))
    assert frame.equals(expected) and frame.attrs["sql"] == result.sql
    assert isinstance(result.table, pa.Table) and list(frames) == ["r1"] and dict(frames.items())["r1"] is frame


def test_two_columns_of_one_name_keep_their_own_values_in_the_dataframe(db):
    frame = db.engine_for(ORG).read("SELECT 1 AS a, 'x' AS a, 2.5::float8 AS a").df
    assert list(frame.columns) == ["a", "a", "a"]
    assert [frame.iloc[0, i] for i in range(3)] == [1, "x", 2.5]
    assert str(frame.dtypes.iloc[0]) == "Int32" and frame.dtypes.iloc[2] == "float64"
