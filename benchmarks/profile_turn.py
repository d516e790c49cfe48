#!/usr/bin/env python
"""Server CPU per turn of `benchmarks/bench_server.py`'s exact turn, and where it goes.

    .venv/bin/python benchmarks/profile_turn.py [--turns 40] [--ref worktree --ref HEAD~3]
        [--concurrent 1] [--profile [--top 25]] [--py-spy PATH [--keep DIR]]

Each ``--ref`` (default: the working tree) is one server process (the same child as
bench_server.py: uvicorn, its own embedded PostgreSQL, the scripted model's two `psql` calls and
a dashboard, 3 model requests a turn). The servers' turns are interleaved, round by round, so a
noisy machine slows all of them alike; the CPU is the server process's own, in nanoseconds from
each thread's /proc/<pid>/task/*/schedstat, without the clients, the model or PostgreSQL.
``--py-spy`` samples the servers with py-spy ``--gil`` (the thread holding the interpreter, so
waits are not counted) after the warm-up and prints each function's share; ``--profile`` runs
them under cProfile with a per-thread CPU clock (much slower; it inflates many small calls).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_server as bs  # noqa: E402
from _common import log, med, quiet_warnings  # noqa: E402


def cpu_ns(pid: int) -> int:
    """CPU time of the process's live threads in nanoseconds (schedstat: /proc/pid/stat counts in
    10 ms ticks, too coarse for one turn). The server's threads are pools that live as long as it."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended between the listing and the read
    return total


def threads_ns(pid: int) -> dict[str, tuple[int, int]]:
    """Each live thread's CPU in ns and how many times it was put on a CPU (schedstat's third
    field: a wake-up each, mostly), by thread name (comm) and id."""
    out = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as fh:
                name = fh.read().strip()
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                fields = fh.read().split()
            out[f"{name}:{task}"] = (int(fields[0]), int(fields[2]))
        except (OSError, ValueError, IndexError):
            pass
    return out


def process_ticks(pid: int) -> tuple[int, int]:
    """The process's user and system time in clock ticks (/proc/pid/stat), threads that ended included."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


async def warm_up(servers: list[dict], turns: int) -> None:
    """Imports, first connections, caches: not what a turn costs once the server runs."""
    for s in servers:
        for i in range(turns):
            ws = await bs.open_ws(s["ws"])
            try:
                await bs.one_turn(ws, f"qw{s['n']}-{i}", 120)
            finally:
                await ws.close()


async def measure(servers: list[dict], turns: int, concurrent: int) -> None:
    for s in servers:
        s["cpu"] = []
        s["wall"] = []
        s["threads0"], s["ticks0"] = threads_ns(s["pid"]), process_ticks(s["pid"])
    for round_ in range(turns):
        order = servers if round_ % 2 == 0 else servers[::-1]
        for s in order:
            conns = await asyncio.gather(*(bs.open_ws(s["ws"]) for _ in range(concurrent)))
            try:
                cpu0, t0 = cpu_ns(s["pid"]), time.perf_counter()
                done = await asyncio.gather(
                    *(bs.one_turn(ws, f"q{s['n']}-{round_}-{k}", 120) for k, ws in enumerate(conns))
                )
                s["cpu"].append((cpu_ns(s["pid"]) - cpu0) / 1e9 / concurrent)
                s["wall"].append(time.perf_counter() - t0)
                bad = [a for t in done for a in t.anomalies + t.failed]
                if bad:
                    log(f"{s['name']}: {bad[:3]}")
            finally:
                await asyncio.gather(*(c.close() for c in conns))
    for s in servers:
        s["threads1"], s["ticks1"] = threads_ns(s["pid"]), process_ticks(s["pid"])


def phase_table(path: Path, turns: int) -> str:
    """What the server's clocks added up over the measured turns (the warm-up's snapshot taken off)."""
    start = path.with_name(path.name + ".start")
    if not path.exists() or not start.exists():
        return "  (no phases written)"
    before = json.loads(start.read_text())
    clocks = {
        k: (ns - before.get(k, [0, 0])[0], n - before.get(k, [0, 0])[1])
        for k, (ns, n) in json.loads(path.read_text()).items()
    }
    rows = sorted(clocks.items(), key=lambda kv: -kv[1][0])
    return "\n".join(f"  {ns / 1e6 / turns:7.2f} ms  {calls / turns:5.1f} calls  {name}" for name, (ns, calls) in rows)


def thread_names(py_spy: str, pid: int) -> dict[str, str]:
    """Thread id -> Python thread name, from ``py-spy dump`` (the OS name is "python" for all)."""
    dump = subprocess.run([py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60).stdout
    return dict(re.findall(r'^Thread (\d+) \([^)]*\): "(.*)"', dump, flags=re.M))


def thread_table(s: dict, turns: int) -> str:
    """CPU per turn by thread name (a pool's threads summed), and the whole process's from its
    ticks (which also counts threads that ended during the run, which schedstat cannot see)."""
    by_name: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    names = s.get("names", {})
    for key, (ns, slices) in s["threads1"].items():
        tid = key.split(":")[1]
        name = names.get(tid, key.split(":")[0]).rstrip("0123456789_-")
        ns0, slices0 = s["threads0"].get(key, (0, 0))
        by_name[name] += ns - ns0
        runs[name] += slices - slices0
    gone = [k for k in s["threads0"] if k not in s["threads1"]]
    lines = [
        f"  {ns / 1e6 / turns:7.2f} ms  {runs[name] / turns:6.1f} runs on a CPU  {name or '?'}"
        for name, ns in by_name.most_common()
        if ns > 0
    ]
    hz = os.sysconf("SC_CLK_TCK")
    user, system = ((s["ticks1"][i] - s["ticks0"][i]) * 1000 / hz / turns for i in (0, 1))
    lines.append(
        f"  {user + system:7.2f} ms  whole process (/proc/pid/stat ticks, ended threads included):"
        f" user {user:.2f}, system {system:.2f}"
    )
    if gone:
        lines.append(f"  ({len(gone)} threads ended during the run)")
    return "\n".join(lines)


def spy_table(path: Path, top: int) -> str:
    """Collapsed stacks (py-spy --format raw) as each function's inclusive and own share of samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for f in stack.split(";")[1:]
        ]
        for f in set(frames):
            inclusive[f] += n
        if frames:
            own[frames[-1]] += n
    lines = [f"{total} samples"]
    lines += [f"{n / total:6.1%} {own[f] / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    lines += ["-- own time --"]
    lines += [f"{n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", action="append", help="server code: worktree (default) or a git ref; repeat to compare")
    ap.add_argument("--turns", type=int, default=40, help="measured rounds per server")
    ap.add_argument("--concurrent", type=int, default=1, help="turns at once per round")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--delay", type=float, default=0.05, help="seconds the model waits before each answer")
    ap.add_argument(
        "--threads", action="store_true", help="print the CPU per turn of each thread (named with --py-spy)"
    )
    ap.add_argument("--phases", action="store_true", help="CPU per turn inside bench_server.PHASES' calls")
    ap.add_argument("--profile", action="store_true", help="cProfile every server thread; print the top functions")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--py-spy", help="a py-spy binary: sample the servers' CPU (not waits) while measuring")
    ap.add_argument("--spy-args", help='py-spy sampling options instead of "--gil --nonblocking" (e.g. "--native")')
    ap.add_argument("--keep", type=Path, help="a folder to keep py-spy's raw stacks and the cProfile stats in")
    args = ap.parse_args(argv)
    quiet_warnings()
    from nexusleads_lab.testing.modelserver import ModelServer

    refs = args.ref or ["worktree"]
    temp = Path(tempfile.mkdtemp(prefix="nexus-profile-turn-"))
    servers: list[dict] = []
    env_profile = {}
    try:
        model = bs.BenchModel(args.delay)
        with ModelServer(model) as srv:
            for n, ref in enumerate(refs):
                where = temp / f"s{n}"
                where.mkdir()
                code, name = bs.code_under_test(ref, where)
                out = where / "profile.out"
                if args.profile:
                    env_profile = {"NEXUS_BENCH_PROFILE": str(out)}
                elif args.phases:
                    env_profile = {"NEXUS_BENCH_PHASES": str(where / "phases.json")}
                proc, info = bs.start_server(where / "pgdata", srv.base_url, code, extra_env=env_profile)
                servers.append(
                    {
                        "n": n,
                        "name": f"{ref} ({name})",
                        "proc": proc,
                        "pid": proc.pid,
                        "ws": info["ws"],
                        "profile": out,
                        "phases": where / "phases.json",
                    }
                )
            log(f"{len(servers)} server(s) up: {args.turns} rounds of {args.concurrent} turn(s) each")
            asyncio.run(warm_up(servers, args.warmup))
            if args.phases:
                for s in servers:
                    os.kill(s["pid"], signal.SIGUSR1)
                time.sleep(0.5)
            spies = []
            if args.py_spy:
                for s in servers:
                    s["spy"] = where = temp / f"spy{s['n']}.txt"
                    cmd = [
                        args.py_spy,
                        "record",
                        "--pid",
                        str(s["pid"]),
                        *(args.spy_args.split() if args.spy_args else ["--gil", "--nonblocking"]),
                        "--rate",
                        "250",
                        "--format",
                        "raw",
                        "--output",
                        str(where),
                    ]
                    spies.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                time.sleep(1.0)
            try:
                asyncio.run(measure(servers, args.turns, args.concurrent))
                if args.threads and args.py_spy:
                    for s in servers:
                        s["names"] = thread_names(args.py_spy, s["pid"])
            finally:
                for spy in spies:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=30)
                for s in servers:
                    bs.stop_server(s["proc"])
        for s in servers:
            cpu = s["cpu"]
            print(
                f"{s['name']}: server CPU per turn median {med(cpu) * 1000:.1f} ms, mean "
                f"{sum(cpu) / len(cpu) * 1000:.1f} ms over {len(cpu)} rounds of {args.concurrent} "
                f"(round wall median {med(s['wall']) * 1000:.0f} ms)"
            )
        if args.phases:
            for s in servers:
                print(f"\n== {s['name']}: CPU per turn inside each call (inclusive) ==")
                print(phase_table(s["phases"], args.turns * args.concurrent))
        if args.threads:
            for s in servers:
                print(f"\n== {s['name']}: CPU per turn by thread ==")
                print(thread_table(s, args.turns * args.concurrent))
        for s in servers:
            if s.get("spy") and s["spy"].exists():
                print(f"\n== {s['name']}: py-spy, share of on-CPU samples (inclusive) ==")
                print(spy_table(s["spy"], args.top))
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(s["spy"], args.keep / f"spy{s['n']}.txt")
        if args.profile:
            for s in servers:
                if not s["profile"].exists():
                    print(f"{s['name']}: no profile written")
                    continue
                for key in ("cumulative", "tottime"):
                    buf = io.StringIO()
                    if args.keep:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        shutil.copy(s["profile"], args.keep / f"profile{s['n']}.out")
                    stats = pstats.Stats(str(s["profile"]), stream=buf)
                    stats.strip_dirs().sort_stats(key).print_stats(args.top)
                    print(f"\n== {s['name']}: top {args.top} by {key} ==")
                    print(buf.getvalue().split("\n", 6)[-1])
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
