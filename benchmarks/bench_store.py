#!/usr/bin/env python
"""The conversation store's CPU per turn: one server turn's store calls, alone.

    .venv/bin/python benchmarks/bench_store.py [--turns 300] [--pgdata DIR]

A turn as ``nexus-lab serve`` runs bench_server.py's turn: a new session's conversation
(``Conversations.start``), its lease taken, the question, two steps of one tool call each
(``record_calls``), the answer, the lease given back; through the server's pooled store, against
the embedded PostgreSQL. Reports this process's CPU per turn (client side: psycopg, libpq and our
code; PostgreSQL's own backends not counted) and wall time, then the lease renewing thread's CPU
while no turn runs. Run it with ``PYTHONPATH=<another tree>`` to measure another version's code.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import DATA_DIR, log, med, quiet_warnings  # noqa: E402

PGDATA = DATA_DIR / "store" / "pgdata"
USER = "bench-store"

TIERS = "SELECT tier, count(*) AS leads FROM lead_scores GROUP BY tier ORDER BY tier"
STATUSES = "SELECT status, count(*) AS leads FROM lead_scores GROUP BY status ORDER BY status"


def step(n: int, sql: str):
    """One step's tool call and its outcome, as the turn records them (a 40-row preview)."""
    from nexusleads_lab.agent.completion import PreparedCall
    from nexusleads_lab.agent.tools import ToolOutcome

    call_id = f"call_{n}abcdefghijklmnop"
    arguments = json.dumps({"sql": sql})
    rows = [{"tier": f"tier-{i}", "leads": 1000 + i} for i in range(40)]
    content = json.dumps({"result_id": f"r{n}", "columns": ["tier", "leads"], "rows": rows, "row_count": 40})
    call = PreparedCall(call_id, "psql", arguments, True, arguments)
    outcome = ToolOutcome(
        call_id,
        "psql",
        {"sql": sql},
        content,
        True,
        12.345,
        result_id=f"r{n}",
        result=SimpleNamespace(sql=sql, row_count=40, truncated=False),  # type: ignore[arg-type]
    )
    return call, outcome


ANSWER = json.dumps({"type": "dashboard", "title": "Leads", "blocks": [{"type": "text", "text": "x" * 600}]})


def one_turn(conversations, steps, *, leased: bool = False) -> None:
    conversations.new_thread()
    if leased:  # the conversation made with its first turn's lease (Conversations.start(lease=True))
        conversations.start("How many leads per tier and status? " * 2, "bench-model", lease=True)
    else:
        conversations.start("How many leads per tier and status? " * 2, "bench-model")
    with conversations.lease(lambda: False):
        conversations.record_question("How many leads per tier and status? " * 2)
        for call in steps:
            conversations.record_calls("", [call])
        conversations.record_answer(
            ANSWER,
            {"response": {"type": "dashboard"}, "notes": [], "elapsed_ms": 123.4, "usage": {"total_tokens": 900}},
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--pgdata", type=Path, default=PGDATA)
    ap.add_argument(
        "--leased", action="store_true", help="start each conversation with its turn's lease (one claim less)"
    )
    ap.add_argument("--idle", type=float, default=30.0, help="seconds to watch the lease thread with no turn running")
    args = ap.parse_args(argv)
    quiet_warnings()
    import nexusleads_lab
    from nexusleads_lab.agent.conversations import Conversations
    from nexusleads_lab.config import Settings
    from nexusleads_lab.db import open_database
    from nexusleads_lab.db.demo import ORGS
    from nexusleads_lab.db.store import ConversationStore

    log(f"code: {Path(nexusleads_lab.__file__).parent}")
    db = open_database(Settings(), pgdata=args.pgdata, contributors=300)
    try:
        org = ORGS[0][0]
        with db.connect_admin(autocommit=True) as admin:  # earlier runs' conversations: each run starts alike
            admin.execute("DELETE FROM chat_conversations WHERE user_name = %s", (USER,))
        pool = db.store_pool(org)
        store = ConversationStore(db.store_url(org), org, USER, guard=True, pool=pool)
        conversations = Conversations(lambda: store, lambda: 100_000)
        steps = [step(1, TIERS), step(2, STATUSES)]
        for _ in range(args.warmup):
            one_turn(conversations, steps, leased=args.leased)
        cpu, wall = [], []
        for _ in range(args.turns):
            c0, t0 = time.process_time(), time.perf_counter()
            one_turn(conversations, steps, leased=args.leased)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - t0)
        print(
            f"store calls of one turn: CPU median {med(cpu) * 1000:.2f} ms, mean {sum(cpu) / len(cpu) * 1000:.2f} ms;"
            f" wall median {med(wall) * 1000:.2f} ms ({args.turns} turns)"
        )
        starts = []
        for _ in range(args.turns):
            conversations.new_thread()
            c0 = time.process_time()
            conversations.start("a new session's first question", "bench-model")
            starts.append(time.process_time() - c0)
        print(f"Conversations.start: CPU median {med(starts) * 1000:.2f} ms")
        if args.idle > 0:
            c0, t0 = time.process_time(), time.perf_counter()
            time.sleep(args.idle)
            idle = time.process_time() - c0
            print(f"idle (lease thread running, no turn): {idle * 1000:.2f} ms CPU in {time.perf_counter() - t0:.0f} s")
        store.close()
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
