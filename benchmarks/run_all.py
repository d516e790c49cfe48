#!/usr/bin/env python
"""Run every benchmark, print the tables and write them as Markdown.

    .venv/bin/python benchmarks/run_all.py [--quick] [--only engine,rls,agent,browser,server] [--stop-servers]

Writes ``benchmarks/results/engine.md``, ``benchmarks/results/rls.md`` (row-level security
overhead and the write-proposal preview), ``benchmarks/results/agent.md`` and
``benchmarks/results/browser.md`` (a ``%%nexus`` dashboard and chart outputs in real JupyterLab
and Chromium) and ``benchmarks/results/server.md`` (200 concurrent ``/ws/codex`` sessions against a
1 s model, beside ``@openai/codex`` run once per turn), each with the date, the machine's core count and a note on noise.
``benchmarks/update_readme.py`` copies them into README.md between the
``<!-- bench:*:start/end -->`` markers.

Each benchmark runs in its own process (a 1M-row fetch leaves a large heap behind that would
skew the agent timings). The engine benchmark runs first: on a first run it seeds the 1M-row
bench database (a few minutes), which the row-level security benchmark then measures and the
agent benchmark also uses for real lead rows.
The embedded bench servers keep running afterwards (so the next run starts warm) unless
``--stop-servers`` is given.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, DATA_DIR, PY, RESULTS_DIR, ROOT, child_env, log, quiet_warnings

BENCHES = {
    "engine": (BENCH_DIR / "bench_engine.py", RESULTS_DIR / "engine.md"),
    "read_memory": (BENCH_DIR / "bench_read_memory.py", RESULTS_DIR / "read_memory.md"),
    "rls": (BENCH_DIR / "bench_rls.py", RESULTS_DIR / "rls.md"),
    "agent": (BENCH_DIR / "bench_agent.py", RESULTS_DIR / "agent.md"),
    "browser": (BENCH_DIR / "bench_browser.py", RESULTS_DIR / "browser.md"),
    "server": (BENCH_DIR / "bench_server.py", RESULTS_DIR / "server.md"),
}


def stop_servers() -> None:
    quiet_warnings()
    from nexusleads_lab.db.embedded import stop_embedded

    for pgdata in (DATA_DIR / "engine" / "pgdata", DATA_DIR / "agent" / "pgdata"):
        if pgdata.exists() and stop_embedded(pgdata):
            log(f"stopped the bench server in {pgdata.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run all benchmarks and write results/*.md")
    ap.add_argument("--quick", action="store_true", help="smoke-test iteration counts (not for publishing)")
    ap.add_argument("--only", default=",".join(BENCHES), help=f"comma list: {', '.join(BENCHES)}")
    ap.add_argument("--stop-servers", action="store_true", help="stop the embedded bench servers at the end")
    args = ap.parse_args(argv)
    chosen = [name for name in args.only.split(",") if name]
    unknown = [n for n in chosen if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")

    started = time.perf_counter()
    failed = []
    for name in chosen:
        script, out = BENCHES[name]
        cmd = [PY, str(script), "--out", str(out)] + (["--quick"] if args.quick else [])
        log(f"running {name} benchmarks: {' '.join(cmd[1:])}")
        t0 = time.perf_counter()
        # Tables go to stdout, progress to stderr: both pass straight through.
        rc = subprocess.call(cmd, cwd=str(ROOT), env=child_env())
        log(f"{name} benchmarks finished in {time.perf_counter() - t0:.0f} s (exit {rc})")
        if rc != 0:
            failed.append(name)
    if args.stop_servers:
        stop_servers()
    log(f"all done in {time.perf_counter() - started:.0f} s")
    for name in chosen:
        if name not in failed:
            print(f"wrote {BENCHES[name][1].relative_to(ROOT)}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
