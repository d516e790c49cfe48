#!/usr/bin/env python
"""CPU of the model call alone: ``agent.model_call.complete`` (send one streamed chat request,
read its chunks into a completion, follow the answer's text), per request, against a loopback
model server answering as `bench_server.py`'s turn does (two `psql` calls, then a dashboard).

    .venv/bin/python benchmarks/bench_model_call.py [--ref main --ref worktree] [--turns 300] [--rounds 10]
        [--chunk-size 64] [--http httpx]

Each ``--ref`` (default: the working tree; else a git ref, exported) is one child process with
its own model server and client; the parent interleaves them round by round, so a noisy machine
slows all alike. The CPU is the calling thread's own (``time.thread_time``): not the model
server's threads, so it is what a turn's thread spends on its model calls. ``--http httpx`` gives
the calls a plain SDK client instead of ``make_client``'s, so they go through its httpx client
(what a recording or a custom client takes) rather than ``agent.http_pool``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_server as bs  # noqa: E402
from _common import CHILD_MARK, PY, log, med  # noqa: E402


def child(warm_up: int, chunk_size: int, http: str) -> None:
    """Answer ``N`` lines on stdin with the CPU seconds of N turns' requests (three each), one JSON line."""
    from nexusleads_lab.agent.model_call import complete
    from nexusleads_lab.agent.prompt import system_prompt
    from nexusleads_lab.agent.provider import ModelSettings, make_client
    from nexusleads_lab.agent.turn import Turn
    from nexusleads_lab.testing.modelserver import ModelServer, text, tool_calls

    class ThreeSteps:
        """The bench turn's answers, by how many tool results the request carries."""

        def step_for(self, request, number):
            done = sum(1 for m in request.get("messages") or [] if m.get("role") == "tool")
            if done == 0:
                return tool_calls([("psql", {"sql": bs.TIER_SQL})])
            if done == 1:
                return tool_calls([("psql", {"sql": bs.STATUS_SQL})])
            return text(bs.DASHBOARD, chunk_size=chunk_size)

    server = ModelServer(ThreeSteps())
    settings = ModelSettings(
        model="scripted-model", api_key="bench", base_url=server.base_url, replay=None, record=None
    )
    if http == "httpx":
        import httpx2
        import openai

        limits = httpx2.Limits(max_connections=8)
        http_client = openai.DefaultHttpxClient(limits=limits)
        client = openai.OpenAI(base_url=server.base_url, api_key="bench", timeout=120.0, http_client=http_client)
    else:
        client = make_client(settings, max_connections=8)
    system = {"role": "system", "content": system_prompt(user="bench", org="acme", skills_listing="")}
    preview = "tier,n\n" + "\n".join(f"t{i},{i * 7}" for i in range(20))

    def one_turn(cpu: list[float]) -> None:
        messages: list = [system, {"role": "user", "content": "Leads by tier and by status, as a dashboard."}]
        turn = Turn("q", origin="bench", settings=settings, publish=lambda event: None, watched=False)
        for _ in range(3):
            t0 = time.thread_time()
            completion = complete(turn, client, messages)
            cpu.append(time.thread_time() - t0)
            for call in completion.calls:
                messages.append(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": call.id,
                                "type": "function",
                                "function": {"name": call.name, "arguments": call.arguments},
                            }
                        ],
                    }
                )
                messages.append({"role": "tool", "tool_call_id": call.id, "content": preview})
        assert completion.text and not completion.calls, completion

    for _ in range(warm_up):
        one_turn([])
    opened = server.connections_opened
    print(CHILD_MARK + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cpu: list[float] = []
        for _ in range(int(line)):
            one_turn(cpu)
        print(CHILD_MARK + json.dumps({"cpu": cpu, "connections": server.connections_opened - opened}), flush=True)
    client.close()
    server.close()


def _answer(proc: subprocess.Popen) -> dict:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(CHILD_MARK):
            return json.loads(line[len(CHILD_MARK) :])
    raise RuntimeError(f"the child exited with {proc.wait()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", action="append", help="code: worktree (default) or a git ref; repeat to compare")
    ap.add_argument("--turns", type=int, default=300, help="turns per ref (3 requests each)")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds the turns are split into")
    ap.add_argument("--warm-up", type=int, default=20)
    ap.add_argument(
        "--chunk-size",
        type=int,
        default=64,
        help="characters of the final answer per chunk (a real model: ~4, a token)",
    )
    ap.add_argument(
        "--http",
        choices=["make_client", "httpx"],
        default="make_client",
        help="the client: make_client's (default), or a plain SDK client (its httpx client)",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.warm_up, args.chunk_size, args.http)
        return 0
    refs = args.ref or ["worktree"]
    runs = []
    with tempfile.TemporaryDirectory() as temp:
        try:
            for n, ref in enumerate(refs):
                where = Path(temp) / str(n)
                where.mkdir()
                code, name = bs.code_under_test(ref, where)
                cmd = [PY, __file__, "--child", "--warm-up", str(args.warm_up), "--chunk-size", str(args.chunk_size)]
                cmd += ["--http", args.http]
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=bs.server_env(code), cwd=bs.ROOT
                )
                runs.append({"name": f"{ref} ({name})", "proc": proc, "cpu": [], "connections": 0})
            for run in runs:
                _answer(run["proc"])
            per_round = max(1, args.turns // args.rounds)
            for round_ in range(args.rounds):
                for run in runs if round_ % 2 == 0 else runs[::-1]:
                    proc = run["proc"]
                    proc.stdin.write(f"{per_round}\n")
                    proc.stdin.flush()
                    answer = _answer(proc)
                    run["cpu"] += answer["cpu"]
                    run["connections"] += answer["connections"]
        finally:
            for run in runs:
                run["proc"].stdin.close()
                run["proc"].wait(timeout=30)
    base = None
    for run in runs:
        cpu = run["cpu"]
        per_request = med(cpu) * 1e6
        per_turn = sum(cpu) / (len(cpu) / 3) * 1e3
        base = base or per_request
        log(
            f"{run['name']}: {per_request:.0f} µs CPU per request (median of {len(cpu)}), {per_turn:.2f} ms per turn "
            f"(mean), {run['connections'] / len(cpu):.2f} connections per request, x{base / per_request:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
