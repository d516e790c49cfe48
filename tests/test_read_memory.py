"""One statement cannot make either process hold much more than the result byte cap: the
kernel's peak grows by less than 2x NEXUS_RESULT_MAX_BYTES whatever the values (one 1 GB value
included), and the backend's peak stays within the bound the README documents. Peaks are read
in a fresh subprocess (ru_maxrss of the client, VmHWM of its backend from /proc), never timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from nexusleads_lab.db import QueryError
from nexusleads_lab.db.engine import aggregate_bound
from nexusleads_lab.db.schema import org_role_names

CAP = 32 * 1024 * 1024
# What the backend may add for one statement, measured over the hostile values below (README).
BACKEND_BOUND = 400 * 1024 * 1024
# A guarded aggregate stops once its input passed aggregate_bound(CAP): the backend then holds the
# value (up to twice its bytes while a buffer doubles), the guard's weighting, and the sort of an
# ORDER BY / DISTINCT (work_mem) on top; measured in benchmarks/results/read_memory.md.
GUARD_FACTOR = 4
SLACK = 64 * 1024 * 1024

MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    import psycopg
    from nexusleads_lab.config import EngineLimits
    from nexusleads_lab.db import Engine, QueryError
    url, admin, sql, cap, app = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    limits = EngineLimits(result_max_bytes=cap, pool_size=1, statement_timeout_ms=60000)
    engine = Engine(url, None, limits, scope="acme-analytics")
    engine.read("SELECT 1 AS warm")  # imports, connection, driver: part of the baseline
    with psycopg.connect(admin, autocommit=True) as conn:
        pid = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchone()[0]

    def hwm():
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    backend_base, base = hwm(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        result = engine.read(sql)
        outcome = {"rows": result.row_count, "truncated_by": result.truncated_by}
    except QueryError as exc:
        outcome = {"error": exc.paragraph()}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    backend_peak = hwm()
    after = int(engine.read("SELECT 42 AS answer").df["answer"][0])
    print(json.dumps({"client": peak - base, "backend": backend_peak - backend_base, "after": after, **outcome}))
    """
)

HOSTILE = {
    "one 1 GB value": "SELECT repeat('x', 1e9::int) AS v",
    "one 1 GB value, spelled as arithmetic": "SELECT repeat('x', (10^9)::int) AS v",
    "one 1 GB value from a data-sized argument": "SELECT repeat('x', 1000000000 + 0 * score) AS v FROM lead_scores LIMIT 1",
    "lpad to 1 GB": "SELECT lpad('', 1000000000 + 0 * score) AS v FROM lead_scores LIMIT 1",
    "a 2 GB-wide result": "SELECT g, repeat('y', 100000) AS big FROM generate_series(1, 20000) g",
    "string_agg over big groups": "SELECT g % 3 AS k, string_agg(repeat('z', 1000000), '') FROM generate_series(1, 900) g GROUP BY 1",
    "string_agg over a self-join of the data": "SELECT string_agg(a.bio, '') AS v FROM contributors a, contributors b",
    "array_agg over generate_series": "SELECT array_agg(g) FROM generate_series(1, 100000000) g",
    "jsonb_agg of wide rows": "SELECT jsonb_agg(repeat('q', 100000)) FROM generate_series(1, 5000)",
    "a 100 MB jsonb value": "SELECT jsonb_build_object('k', repeat('j', 1000000)) FROM generate_series(1, 100)",
    "array_agg over a self-join of the data": "SELECT array_agg(a.bio) FROM contributors a, contributors b",
    "json_agg of rows of a self-join": "SELECT json_agg(a) FROM contributors a, contributors b",
    "jsonb_agg over a self-join": "SELECT jsonb_agg(a.bio ORDER BY b.id) FROM contributors a, contributors b",
    "jsonb_object_agg over a self-join": (
        "SELECT jsonb_object_agg(a.github_login || b.github_login, a.bio) FROM contributors a, contributors b"
    ),
    "xmlagg (not on the read path)": "SELECT xmlagg(xmlelement(name b, a.bio)) FROM contributors a, contributors b",
    "string_agg of clamped repeats": "SELECT string_agg(repeat(a.bio, 1000 + 0 * b.followers), '') FROM contributors a, contributors b",
    "nested array_agg": (
        "SELECT array_agg(x) FROM (SELECT array_agg(a.bio) AS x FROM contributors a, contributors b GROUP BY b.id) t"
    ),
    "JSON_ARRAYAGG over a self-join": "SELECT JSON_ARRAYAGG(a.bio) FROM contributors a, contributors b",
    "ARRAY(SELECT ...) over a self-join": "SELECT ARRAY(SELECT a.bio FROM contributors a, contributors b) AS v",
    "DISTINCT, FILTER and OVER": (
        "SELECT string_agg(DISTINCT a.bio || b.github_login, ',') FILTER (WHERE a.id > 0) FROM contributors a, contributors b"
    ),
}
# Aggregates over the data itself: they build one value in the backend, which the read path's
# guard (readsql.guard_aggregates) stops at engine.aggregate_bound(CAP) bytes, with a message.
GUARDED = [
    name
    for name in HOSTILE
    if "self-join" in name or name in ("string_agg of clamped repeats", "nested array_agg", "DISTINCT, FILTER and OVER")
]


@pytest.fixture(scope="module")
def reader_url(db):
    db.engine_for("acme-analytics")
    role = org_role_names("acme-analytics")[0]
    return db.embedded.url_for(role)


def measure(db, url: str, sql: str) -> dict:
    app = "nexus-mem-" + uuid.uuid4().hex[:8]
    url = url + ("&" if "?" in url else "?") + f"application_name={app}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, url, db.admin_url, sql, str(CAP), app],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_one_statement_stays_within_the_bounds_in_both_processes(db, reader_url, name):
    out = measure(db, reader_url, HOSTILE[name])
    mib = 1 << 20
    assert out["client"] < 2 * CAP, f"{name}: the client grew {out['client'] / mib:.0f} MiB (cap {CAP / mib:.0f})"
    assert out["backend"] < BACKEND_BOUND, f"{name}: the backend grew {out['backend'] / mib:.0f} MiB: {out}"
    assert out["after"] == 42, "the next query works"
    assert "error" in out or out["rows"] >= 0
    if name in GUARDED:
        # Stopped while it builds: what the backend holds is a small multiple of the value bound.
        assert "error" in out and "would build one value of more than" in out["error"], out
        assert "NEXUS_RESULT_MAX_BYTES" in out["error"] and "Aggregate fewer rows" in out["error"], out
        assert out["backend"] < GUARD_FACTOR * aggregate_bound(CAP) + SLACK, out
    print(f"{name}: client +{out['client'] / mib:.1f} MiB, backend +{out['backend'] / mib:.1f} MiB, {out}")


SAME_AS_BUILTINS = {
    "ORDER BY inside": "SELECT tier, string_agg(status, ',' ORDER BY id DESC) AS s FROM lead_scores GROUP BY tier ORDER BY 1",
    "DISTINCT and FILTER": (
        "SELECT array_agg(DISTINCT status ORDER BY status) FILTER (WHERE score > 50) AS a FROM lead_scores"
    ),
    "a window": (
        "SELECT id, array_agg(score) OVER (PARTITION BY tier ORDER BY id ROWS 2 PRECEDING) AS w "
        "FROM lead_scores ORDER BY id LIMIT 20"
    ),
    "nested and in an expression": (
        "SELECT cardinality(array_agg(x)) AS n, upper(string_agg(t, '')) AS u "
        "FROM (SELECT ARRAY[min(id), max(id)] AS x, tier AS t FROM lead_scores GROUP BY tier) g"
    ),
    "json ones": (
        "SELECT json_agg(status ORDER BY id)::text AS j, jsonb_object_agg(tier, n)::text AS o "
        "FROM (SELECT id, status, tier, count(*) OVER (PARTITION BY tier) AS n FROM lead_scores) s"
    ),
    "ARRAY(SELECT ...)": "SELECT p.id, ARRAY(SELECT r.id FROM repositories r WHERE r.project_id = p.id ORDER BY r.id) AS r FROM projects p ORDER BY 1",
    "a column named after the aggregate": "SELECT s.string_agg FROM (SELECT string_agg(tier, '') FROM lead_scores) s",
}


@pytest.mark.parametrize("name", list(SAME_AS_BUILTINS))
def test_guarded_aggregates_return_what_the_builtins_return(db, reader_url, name):
    """Within the bound the guard changes nothing: the same reader's plain statement (psycopg,
    no rewrite) gives the same rows and column names."""
    import psycopg

    sql = SAME_AS_BUILTINS[name]
    result = db.engine_for("acme-analytics").read(sql)
    with psycopg.connect(reader_url) as conn:
        cur = conn.execute(sql)
        plain, names = cur.fetchall(), [c.name for c in cur.description]
    assert list(result.df.columns) == names
    got = [tuple(v.tolist() if hasattr(v, "tolist") else v for v in row) for row in result.df.itertuples(index=False)]
    assert got == [tuple(row) for row in plain] and plain


def test_an_aggregate_called_wrongly_gets_the_servers_error_not_a_crash(db):
    for sql in ("SELECT string_agg() FROM lead_scores", "SELECT array_agg(*) FROM lead_scores"):
        with pytest.raises(QueryError) as caught:
            db.engine_for("acme-analytics").read(sql)
        assert caught.value.sqlstate in ("42883", "42809", "42601"), caught.value.paragraph()


def test_a_batch_costs_at_least_its_referenced_bytes_for_every_kind_of_column(db):
    """``client_cost`` counts a batch's buffers whole (``get_total_buffer_size``, cheap) where it
    counted the bytes they reference (``nbytes``): on the driver's batches, never less, so a result
    stops at the byte cap no later than it did; and its object columns, counted on the described
    columns (``bounded.statement``), are those of the batches."""
    import pyarrow as pa

    from nexusleads_lab.db import bounded
    from nexusleads_lab.db.engine import _BATCH_HINT, _WRAP_HEAD, _WRAP_TAIL, _reset, _statement

    sql = (
        "SELECT g, (g % 30000)::int2 AS s, g * 0.5 AS f, (g % 7)::numeric / 3 AS num, md5(g::text) AS t,"
        " CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('é', g % 50) END AS maybe, jsonb_build_object('g', g) AS j,"
        " ARRAY[g, NULL] AS arr, '5c2f1a6e-3b1e-4a51-9d0e-3a9a1e2b3c4d'::uuid AS u, interval '1 day' * g AS iv,"
        " date '2024-01-01' + g AS d, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 s' AS ts,"
        " '10.0.0.1'::inet AS ip, decode(md5(g::text), 'hex') AS b, g % 2 = 0 AS flag"
        " FROM generate_series(1, 50000) AS g"
    )
    engine = db.engine_for("acme-analytics")
    conn = engine._reads.acquire()
    statement = _statement(conn)
    batches = 0
    try:
        statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": _BATCH_HINT})
        statement.set_sql_query(_WRAP_HEAD + sql + _WRAP_TAIL.format(limit=100_001))
        schema = pa.schema(statement.execute_schema())
        wrapped, _, objects = bounded.statement(sql, schema, 100_001, engine.limits.result_max_bytes)
        statement.set_sql_query(wrapped)
        stream, _ = statement.execute_query()
        reader = pa.RecordBatchReader._import_from_c(stream.address)
        for batch in reader:
            batches += 1
            assert objects == bounded.object_columns(batch.schema), "counted on the described columns, the same"
            assert bounded.client_cost(batch, objects) >= batch.nbytes * 2 + batch.num_rows * objects * 64
            for column in batch.columns:
                assert column.get_total_buffer_size() >= column.nbytes, column.type
        reader.close()
    finally:
        statement.close()
        engine._reads.release(conn, broken=not _reset(conn))
    assert batches >= 2, "the result spans several batches"
