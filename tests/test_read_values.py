"""Values reach the model, `nexus-lab sql --json` and the DataFrame readable: PostgreSQL's text
form (or ISO 8601) for the model and the JSON, the matching pandas type in the DataFrame. One
test per type, plus what the server bounds (one huge value) and the SQLSTATE of an error met
while rows stream in."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from nexusleads_lab.agent.tools import preview_payload
from nexusleads_lab.config import EngineLimits
from nexusleads_lab.db import Engine, QueryError

ORG = "acme-analytics"


def _read(db, sql: str):
    result = db.engine_for(ORG).read(sql)
    preview = json.loads(preview_payload("r1", result))
    return result, preview["rows"][0][0], preview["columns"][0]["type"]


@pytest.fixture(scope="module")
def cli_json(db):
    """One `nexus-lab sql --json` call with every type, as the CLI prints it."""
    sql = (
        "SELECT interval '1 day 02:03:04.5' AS i, 12.50::numeric AS n, "
        "'5c2f1a6e-3b1e-4a51-9d0e-3a9a1e2b3c4d'::uuid AS u, ARRAY[1, 2, 3] AS a, '{\"k\": [1, 2]}'::jsonb AS j, "
        "'10.0.0.1'::inet AS ip, int4range(1, 5) AS r, timestamptz '2024-03-01 12:00:00+00' AS t"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    env.update(NEXUS_HOME=str(Path(db.embedded.pgdata).parent), NEXUS_ORG=ORG)
    proc = subprocess.run(
        [sys.executable, "-m", "nexusleads_lab.cli", "sql", "--json", sql],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["rows"][0]


def test_an_interval_is_a_timedelta_and_reads_as_postgresql_writes_it(db, cli_json):
    result, cell, kind = _read(db, "SELECT interval '40 days 03:00:01' AS age")
    assert result.df["age"].dtype == "timedelta64[ns]" and result.df["age"][0] == pd.Timedelta(days=40, seconds=10801)
    assert kind == "interval" and "40 days 03:00:01" in cell and "DateOffset" not in json.dumps(cell)
    assert cli_json["i"] == "P1DT2H3M4.500S"  # ISO 8601 duration
    months = db.engine_for(ORG).read("SELECT interval '1 mon 2 days' AS m").df["m"][0]
    assert months == pd.Timedelta(days=32), "a month counts 30 days, as extract(epoch) counts it"


def test_age_and_timestamp_differences_are_timedeltas(db):
    df = (
        db.engine_for(ORG)
        .read("SELECT now() - scored_at AS waited, age(now(), scored_at) AS age FROM lead_scores LIMIT 3")
        .df
    )
    assert df["waited"].dtype == "timedelta64[ns]" and (df["waited"] > pd.Timedelta(0)).all()
    assert df["age"].dtype == "timedelta64[ns]"


def test_a_numeric_keeps_its_scale_for_the_model_and_json_and_is_a_float_in_the_frame(db, cli_json):
    result, cell, kind = _read(db, "SELECT 12.50::numeric AS n")
    assert result.df["n"].dtype == "float64" and result.df["n"][0] == 12.5
    assert cell == "12.50" and kind == "numeric", "a float would drop the scale PostgreSQL shows"
    assert cli_json["n"] == "12.50"


def test_a_numeric_beyond_float_precision_reaches_the_model_digit_for_digit(db):
    result, cell, _ = _read(db, "SELECT 12345678901234567890.12 AS big")
    assert cell == "12345678901234567890.12" and float(cell) == result.df["big"][0]


def test_a_numeric_a_float_prints_exactly_stays_a_json_number(db):
    result = db.engine_for(ORG).read("SELECT 3::numeric AS i, 0.1::numeric AS f, -7.25::numeric AS g")
    row = json.loads(preview_payload("r1", result))["rows"][0]
    assert row == [3, 0.1, -7.25] and [type(v) for v in row] == [int, float, float]


def test_numeric_nan_and_infinity_read_as_postgresql_writes_them(db):
    result = db.engine_for(ORG).read("SELECT 'NaN'::numeric AS x, '-Infinity'::numeric AS m")
    row = json.loads(preview_payload("r1", result))["rows"][0]
    assert row == ["NaN", "-Infinity"] and pd.isna(result.df["x"][0]) and result.df["m"][0] == float("-inf")


def test_a_null_numeric_is_null_everywhere(db):
    result = db.engine_for(ORG).read("SELECT NULL::numeric AS z, avg(score) AS a FROM lead_scores WHERE false")
    row = json.loads(preview_payload("r1", result))["rows"][0]
    assert row == [None, None] and result.df["z"].isna().all()


def test_a_uuid_is_a_uuid(db, cli_json):
    text = "5c2f1a6e-3b1e-4a51-9d0e-3a9a1e2b3c4d"
    result, cell, kind = _read(db, f"SELECT '{text}'::uuid AS u")
    assert result.df["u"][0] == uuid.UUID(text) and text in json.dumps(cell) and kind == "uuid"
    assert cli_json["u"] == text


def test_an_array_is_a_list(db, cli_json):
    result, cell, _ = _read(db, "SELECT ARRAY['a', 'b'] AS a")
    assert result.df["a"][0] == ["a", "b"] and "a" in json.dumps(cell)
    assert cli_json["a"] == [1, 2, 3]


def test_jsonb_is_python_objects(db, cli_json):
    result, cell, kind = _read(db, "SELECT '{\"k\": [1, 2]}'::jsonb AS j")
    assert result.df["j"][0] == {"k": [1, 2]} and kind == "jsonb" and json.loads(cell) == {"k": [1, 2]}
    assert cli_json["j"] == {"k": [1, 2]}


def test_inet_reads_as_its_address(db, cli_json):
    result, cell, kind = _read(db, "SELECT '10.0.0.1'::inet AS ip, '10.1.0.0/16'::cidr AS net")
    assert result.df["ip"][0] == "10.0.0.1" and result.df["net"][0] == "10.1.0.0/16" and cell == "10.0.0.1"
    assert kind == "inet" and cli_json["ip"] == "10.0.0.1"


def test_a_range_reads_as_postgresql_writes_it(db, cli_json):
    result, cell, _ = _read(db, "SELECT int4range(1, 5) AS r, tstzrange('2024-01-01', '2024-02-01') AS t")
    assert result.df["r"][0] == "[1,5)" and cell == "[1,5)" and result.df["t"][0].startswith('["2024-01-01')
    assert cli_json["r"] == "[1,5)"


def test_a_timestamp_with_zone_is_an_aware_timestamp(db, cli_json):
    result, cell, kind = _read(db, "SELECT timestamptz '2024-03-01 12:00:00+00' AS t")
    value = result.df["t"][0]
    assert value.tzinfo is not None and value == pd.Timestamp(dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC))
    assert "2024-03-01" in json.dumps(cell) and kind == "timestamptz"
    assert cli_json["t"].startswith("2024-03-01T12:00:00")


def test_one_huge_value_is_cut_on_the_server_and_said_so(db):
    engine = Engine(db.engine_for(ORG).agent_url, None, EngineLimits(result_max_bytes=1024 * 1024), scope=ORG)
    try:
        result = engine.read("SELECT repeat('x', 1000000) || repeat('y', 1000000) AS big, 7 AS n")
        assert result.truncated and result.truncated_by == "value" and result.df["n"][0] == 7
        assert "too large to bring back whole" in result.truncation_note
        assert 0 < len(result.df["big"][0]) <= 1024 * 1024 // 4
        wide = engine.read("SELECT jsonb_build_object('k', repeat('j', 1000000)) AS j")
        assert wide.df["j"][0] is None and wide.truncated_by == "value"
    finally:
        engine.close()


def test_an_error_met_while_rows_stream_keeps_its_sqlstate(db):
    with pytest.raises(QueryError) as caught:
        db.engine_for(ORG).read("SELECT 1 / (g - 50000) FROM generate_series(1, 100000) g")
    assert caught.value.sqlstate == "22012" and "(22012)" in caught.value.paragraph()


def test_a_float_infinity_reads_as_postgresql_writes_it_and_the_preview_is_json(db):
    """``json`` wrote a bare ``Infinity`` token here (not JSON); the preview now says what PostgreSQL
    writes, as a numeric column does, and NaN stays null as pandas shows it."""
    result = db.engine_for(ORG).read(
        "SELECT 'Infinity'::float8 AS p, '-Infinity'::float4 AS m, 'NaN'::float8 AS n, 1e16::float8 AS big"
    )
    text = preview_payload("r1", result)
    row = json.loads(text, parse_constant=lambda token: pytest.fail(f"not JSON: {token}"))["rows"][0]
    assert row == ["Infinity", "-Infinity", None, 1e16]


def test_the_preview_reads_as_the_json_module_wrote_it(db, monkeypatch):
    """The preview is encoded by ``fastjson`` now: side by side with ``json.dumps`` (the encoder it
    replaced), the same JSON value for every kind of cell; only a float's spelling may differ
    (``1e16`` for ``1e+16``)."""
    from nexusleads_lab.agent import tools

    result = db.engine_for(ORG).read(
        "SELECT g, g * 1.5e-7::float8 AS small, g * 1e16::float8 AS large, 'é ☃ \U0001f600'::text AS t,"
        " '{\"a\": [1, 2.5]}'::jsonb AS j, ARRAY[g, NULL] AS arr, timestamptz '2024-03-01 12:00:00+00' AS ts, '5c2f1a6e-3b1e-4a51-9d0e-3a9a1e2b3c4d'::uuid AS u,"
        " 12.50::numeric AS num, interval '1 day' AS iv, date '2024-03-01' AS d FROM generate_series(1, 30) AS g"
    )
    text = preview_payload("r1", result)
    with monkeypatch.context() as patch:
        patch.setattr(
            tools, "_dumpb", lambda p: json.dumps(p, ensure_ascii=False, default=str, separators=(",", ":")).encode()
        )
        old = preview_payload("r1", result)
    assert json.loads(text) == json.loads(old) and text != old, "the floats are spelled otherwise, the values alike"
    row = json.loads(text)["rows"][0]
    assert row[3] == "é ☃ \U0001f600" and row[8] == "12.50" and len(json.loads(text)["rows"]) == 20
