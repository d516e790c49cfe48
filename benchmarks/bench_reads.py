#!/usr/bin/env python
"""CPU of a turn's reads alone: two `psql` tool calls (read + the model's preview), their results
kept as the turn keeps them, and the dashboard resolved from them (bench_server.py's exact turn).

    .venv/bin/python benchmarks/bench_reads.py [--tree PATH ...] [--rounds 5] [--turns 200]

Each ``--tree`` (default: this checkout) is a folder holding a ``nexusleads_lab`` package, for
example one made with ``git archive main nexusleads_lab | tar -x -C /tmp/main``; each runs in its
own process against one embedded PostgreSQL, and the trees take turns round by round, so a noisy
machine slows all of them alike. Prints the median CPU (this process's, not PostgreSQL's) per turn.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from bench_server import DASHBOARD, STATUS_SQL, TIER_SQL  # noqa: E402  (the turn bench_server.py plays)


def child(pgdata: str, turns: int) -> None:
    """One round in this process: ``turns`` turns, then one line of JSON with the CPU of each."""
    from nexusleads_lab.agent.conversations import Thread
    from nexusleads_lab.agent.responses import parse_response
    from nexusleads_lab.agent.tools import ToolRunner
    from nexusleads_lab.config import Settings
    from nexusleads_lab.db import open_database
    from nexusleads_lab.db.demo import ORGS

    db = open_database(Settings(), pgdata=Path(pgdata), contributors=3000)
    engine = db.engine_for(ORGS[0][0])
    runner = ToolRunner(lambda: engine, lambda: None)

    def turn() -> None:
        thread = Thread(id=None)
        for rid, sql in (("r1", TIER_SQL), ("r2", STATUS_SQL)):
            outcome = runner.run(rid, "psql", json.dumps({"sql": sql}), rid)
            assert outcome.ok and outcome.result is not None, outcome.content
            if hasattr(thread.frames, "keep"):  # as a turn keeps a result (main kept its DataFrame)
                thread.frames.keep(rid, outcome.result)
            else:
                thread.frames[rid] = outcome.result.df
        parsed = parse_response(DASHBOARD, thread.frames)
        assert not parsed.notes, parsed.notes
        parsed.response.model_dump(mode="json")

    for _ in range(20):
        turn()
    cpu = []
    for _ in range(turns):
        started = time.process_time_ns()
        turn()
        cpu.append(time.process_time_ns() - started)
    print(json.dumps(cpu))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", help="a folder holding nexusleads_lab (default: this checkout)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument("--pgdata", help="the embedded database's folder (default: a temporary one)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.turns)
        return 0
    trees = args.tree or [str(ROOT)]
    pgdata = args.pgdata or str(Path(tempfile.mkdtemp(prefix="bench-reads-")) / "pgdata")
    samples: dict[str, list[int]] = {tree: [] for tree in trees}
    for _ in range(args.rounds):
        for tree in trees:
            env = {**os.environ, "PYTHONPATH": tree}
            out = subprocess.run(
                [sys.executable, __file__, "--child", pgdata, "--turns", str(args.turns)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            samples[tree] += json.loads(out.stdout.strip().splitlines()[-1])
    for tree, cpu in samples.items():
        print(f"{statistics.median(cpu) / 1e6:7.3f} ms CPU per turn (median of {len(cpu)})  {tree}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
