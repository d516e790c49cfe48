"""Hostile queries cannot exhaust the kernel's memory or the server's disk: results are capped by
bytes as they stream in, and the agent's role spills little to disk. Each case ends in a clear
truncation or error, and the next query works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from nexusleads_lab.config import EngineLimits
from nexusleads_lab.db import Engine, QueryError

WIDE = "SELECT g, repeat('y', 100000) AS big FROM generate_series(1, 20000) g"  # 2 GB if read whole

MEASURE = textwrap.dedent(
    """
    import json, os, resource, sys
    from nexusleads_lab.config import EngineLimits
    from nexusleads_lab.db import Engine
    engine = Engine(sys.argv[1], None, EngineLimits(result_max_bytes=int(sys.argv[3])))
    engine.read("SELECT 1 AS warm")  # imports, pool, driver: part of the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = engine.read(sys.argv[2])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    after = engine.read("SELECT 42 AS answer").df["answer"][0]
    print(json.dumps({"base": base, "peak": peak, "rows": result.row_count, "truncated_by": result.truncated_by,
                      "note": result.truncation_note, "after": int(after)}))
    """
)


def measure(db, sql: str, cap: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, db.engine.agent_url, sql, str(cap)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_two_gigabyte_result_stops_at_the_byte_cap_with_memory_bounded(db):
    cap = 128 * 1024 * 1024
    out = measure(db, WIDE, cap)
    assert out["truncated_by"] == "bytes" and 0 < out["rows"] < 20000
    assert "NEXUS_RESULT_MAX_BYTES" in out["note"] and "128 MiB" in out["note"]
    assert out["peak"] - out["base"] < 2 * cap, (
        f"grew {(out['peak'] - out['base']) / 2**20:.0f} MiB for a {cap / 2**20:.0f} MiB cap"
    )
    assert out["after"] == 42


def test_the_model_and_the_person_are_told_why_the_result_stops(db):
    from nexusleads_lab.agent.tools import preview_payload

    engine = Engine(db.engine.agent_url, None, EngineLimits(result_max_bytes=8 * 1024 * 1024))
    result = engine.read(WIDE)
    assert result.truncated and result.truncated_by == "bytes" and result.to_dict()["truncated_by"] == "bytes"
    payload = json.loads(preview_payload("r1", result))
    assert payload["truncated"] is True and "result size cap" in payload["note"]
    capped = engine.read("SELECT g FROM generate_series(1, 100) g", row_cap=10)
    assert capped.truncated_by == "rows" and "row cap of 10" in capped.truncation_note
    engine.close()


def test_one_huge_array_is_bounded_and_the_next_query_works(db):
    engine = Engine(db.engine.agent_url, None, EngineLimits(result_max_bytes=32 * 1024 * 1024))
    try:
        result = engine.read("SELECT array_agg(g) AS a FROM generate_series(1, 50000000) g")
        assert result.truncated_by == "bytes" and result.row_count == 0
    except QueryError as exc:  # refused before it runs (the value it would build), or the server gives up
        assert "\n" not in str(exc) and (exc.sqlstate or "array_agg() over generate_series" in exc.message)
    assert engine.read("SELECT 7 AS n").df["n"][0] == 7
    engine.close()


def test_a_sort_that_would_spill_gigabytes_fails_at_the_temp_file_limit(db):
    with pytest.raises(QueryError) as info:
        db.engine.read("SELECT g, md5(g::text) AS h FROM generate_series(1, 200000000) g ORDER BY 2 LIMIT 1")
    assert info.value.sqlstate in ("53400", "57014"), str(info.value)  # temp_file_limit, or the timeout first
    assert db.engine.read("SELECT 1 AS one").df["one"][0] == 1
    with db.connect_admin(autocommit=True) as conn:
        settings = dict(
            conn.execute(
                "SELECT split_part(s, '=', 1), split_part(s, '=', 2) FROM pg_db_role_setting r"
                " JOIN pg_roles o ON o.oid = r.setrole, unnest(r.setconfig) s WHERE o.rolname = 'nexus_agent'"
            ).fetchall()
        )
    assert settings["temp_file_limit"] == "512MB" and settings["work_mem"] == "32MB"
