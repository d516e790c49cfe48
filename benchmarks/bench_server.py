#!/usr/bin/env python
"""How `nexus-lab serve` holds up: many concurrent `/ws/codex` sessions against a 1 s model.

    .venv/bin/python benchmarks/bench_server.py [--sessions 200] [--baseline 5] [--replicas 1,w2]
        [--ref worktree] [--before REF] [--out results/server.md] [--quick] [--no-codex]

The server runs as its own process (uvicorn on a loopback port, its own embedded PostgreSQL with
demo data in a temporary folder), so its RSS is read from /proc without the clients in it. This
process is the clients (asyncio `websockets`) and the scripted model, which answers every request
after ``--delay`` seconds: per question two `psql` tool calls, then a short dashboard, so three
model requests a turn. The model side records how long it spent serving each request, and
"added" is a turn's wall time (chat sent -> turn.completed received) minus that.

Rounds, in one run: a sequential baseline (1 session at a time), N connections opened idle, all N
asking at once, the N left open and idle, all closed, the baseline again. ``--replicas`` runs the
whole thing once per value: that many server processes over the one database, the sessions spread
over them round-robin as a load balancer would (RSS, CPU and threads summed over them); ``wN`` is
one ``nexus-lab serve --workers N`` as shipped (uvicorn's supervisor and N worker processes, one
socket; RSS, CPU and threads summed over the workers). ``--before REF`` runs every configuration
with that ref's code first, then with the measured code, and reports the CPU per turn side by side. CPU time
in the burst is read from /proc for the servers, this process (the clients and the model) and
PostgreSQL, to show where the added time goes.
Beside it, the original design's anchor: `@openai/codex` run once per turn against a loopback
Responses-API stub, if ``npx``/npm can provide it (``--no-codex`` skips it).
Nothing is asserted; the report says which targets were met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import (  # noqa: E402
    CHILD_MARK,
    PY,
    ROOT,
    atomic_write,
    child_answer,
    child_env,
    fmt_bytes,
    header,
    log,
    md_table,
    med,
    p,
    quiet_warnings,
)

MODS = ("nexusleads-lab", "uvicorn", "websockets", "fastapi", "openai", "psycopg")
CONTRIBUTORS = 3000
TIER_SQL = "SELECT tier, count(*) AS n FROM lead_scores GROUP BY tier ORDER BY tier"
STATUS_SQL = "SELECT status, count(*) AS n FROM lead_scores GROUP BY status ORDER BY status"
DASHBOARD = json.dumps(
    {
        "type": "dashboard",
        "title": "Leads",
        "sections": [
            {"type": "bars", "label": "Leads by tier", "source": "r1", "x": "tier", "y": "n"},
            {"type": "bars", "label": "Leads by status", "source": "r2", "x": "status", "y": "n"},
        ],
    }
)
TAG = re.compile(r"\[(q[0-9a-z-]+)\]")
TARGET_ADDED_MS = 100
TARGET_IDLE_BYTES = 5 * 1024 * 1024
TARGET_CPU_MS = 5
CODEX_VERSION = "0.171.0"
ISSUE_CODEX = {  # issue 12, measured earlier on this machine
    "spawn_to_exit_ms": 184,
    "before_first_request_ms": 130,
    "peak_rss_mib": 153,
    "private_mib": 28,
    "sdk_node_mib": 45,
    "fixed_request_kb": 61,
}


# -- the server process -----------------------------------------------------------------------


def serve_child(args: argparse.Namespace) -> None:
    """The server alone in this process: embedded PostgreSQL, the app, uvicorn on a loopback port."""
    quiet_warnings()
    import openai
    import uvicorn

    from nexusleads_lab.config import EngineLimits, Settings
    from nexusleads_lab.db import open_database
    from nexusleads_lab.db.demo import ORGS
    from nexusleads_lab.db.embedded import stop_embedded
    from nexusleads_lab.server import create_app
    from nexusleads_lab.server.app import WS_MAX_SIZE
    from nexusleads_lab.server.auth import Identity

    pgdata = Path(args.pgdata)
    db = open_database(Settings(limits=EngineLimits.from_env()), pgdata=pgdata, contributors=CONTRIBUTORS)
    try:  # the client `serve` makes for itself: a bounded pool whose connections are kept alive
        from nexusleads_lab.agent.provider import ModelSettings, make_client

        settings = ModelSettings(
            model="bench",
            api_key="bench",
            base_url=args.model_url,
            replay=None,
            record=None,
            timeout_s=600,
            max_retries=0,
        )
        client = make_client(settings, max_connections=256)
    except (ImportError, TypeError):  # code under test from before make_client took max_connections
        client = openai.OpenAI(base_url=args.model_url, api_key="bench", max_retries=0, timeout=600)
    served = {"database": db, "client": client, "local": Identity(user="bench", org=ORGS[0][0])}
    if "freeze_heap" in inspect.signature(create_app).parameters:  # as `serve` makes it, where the code has it
        served["freeze_heap"] = True
    app = create_app(**served)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)  # clients may connect before uvicorn starts accepting
    port = sock.getsockname()[1]
    protocols = {}
    try:  # the server's own connection handling, where the measured code has it
        from nexusleads_lab.server.app import HTTP_PROTOCOL, WS_PROTOCOL

        protocols = {"http": HTTP_PROTOCOL, "ws": WS_PROTOCOL}
    except ImportError:
        pass
    try:  # as `serve` runs it, where the measured code says
        from nexusleads_lab.server.app import WS_PER_MESSAGE_DEFLATE

        protocols["ws_per_message_deflate"] = WS_PER_MESSAGE_DEFLATE
    except ImportError:
        pass
    try:  # the event loop `serve` runs on, where the measured code names one (asyncio's before)
        from nexusleads_lab.server.app import LOOP

        protocols["loop"] = LOOP
    except ImportError:
        protocols["loop"] = "asyncio"
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=WS_MAX_SIZE, **protocols)
    try:  # as `serve` runs it, where the measured code has its own server loop
        from nexusleads_lab.server.uvicorn_server import Server
    except ImportError:
        Server = uvicorn.Server
    server = Server(config)

    profile = os.environ.get("NEXUS_BENCH_PROFILE")  # benchmarks/profile_turn.py --profile: every thread's calls
    profiles = _profile_threads() if profile else []
    phases = os.environ.get("NEXUS_BENCH_PHASES")  # benchmarks/profile_turn.py --phases: CPU inside named calls
    clocks = _phase_clocks() if phases else {}
    if phases:  # SIGUSR1: the clocks so far (after the warm-up), to be taken from the final ones
        signal.signal(signal.SIGUSR1, lambda *_: Path(phases + ".start").write_text(json.dumps(clocks)))
    try:
        with contextlib.suppress(KeyboardInterrupt):  # how the parent stops it (at any point after this)
            child_answer(
                {
                    "ws": f"ws://127.0.0.1:{port}/ws/codex",
                    "admin_url": db.admin_url,
                    "pool_size": db.settings.limits.pool_size if hasattr(db.settings, "limits") else None,
                    "store_pool_size": getattr(db.settings.limits, "store_pool_size", None),
                }
            )
            server.run(sockets=[sock])  # on config.loop
    finally:
        if profile:
            _dump_profiles(profiles, profile)
        if phases:
            Path(phases).write_text(json.dumps(clocks))
        db.close()
        stop_embedded(pgdata)


#: What ``--phases`` times: the calling thread's CPU inside each (inclusive; nested ones count twice).
PHASES = (
    "nexusleads_lab.agent.assistant:Assistant._run",
    "nexusleads_lab.agent.model_call:open_stream",
    "nexusleads_lab.agent.model_call:complete",
    "nexusleads_lab.agent.tool_calls:run_calls",
    "nexusleads_lab.agent.tools:ToolRunner.run",
    "nexusleads_lab.db.engine:Engine.read",
    "nexusleads_lab.db.store:StorePool.query",
    "nexusleads_lab.agent.assistant:Assistant._finish",
    "nexusleads_lab.agent.turn:Turn.emit",
    "nexusleads_lab.agent.assistant:Assistant._loop",
    "nexusleads_lab.agent.assistant:Assistant.__init__",
    "nexusleads_lab.agent.assistant:Assistant.close",
    "nexusleads_lab.agent.assistant:Assistant._new_turn",
    "nexusleads_lab.agent.assistant:Assistant._request_messages",
    "nexusleads_lab.agent.responses:parse_response",
    "nexusleads_lab.agent.turn:TurnResult.response_dict",
    "nexusleads_lab.agent.live:TurnState.apply",
    "nexusleads_lab.agent.conversations:Conversations.record_answer",
    "nexusleads_lab.agent.conversations:Conversations.record_calls",
    "nexusleads_lab.agent.conversations:Conversations.record_question",
    "nexusleads_lab.agent.conversations:Conversations.lease",
    "nexusleads_lab.server.ws:Connection._first",
    "nexusleads_lab.agent.assistant:Assistant.start_conversation",
    "nexusleads_lab.agent.parts:Parts._new_store",
    "nexusleads_lab.agent.streaming:partial_display_text",
    "nexusleads_lab.agent.bus:EventBus.publish",
    "nexusleads_lab.agent.tool_calls:_finished",
    "nexusleads_lab.agent.responses.resolve:_resolve_section",
    "nexusleads_lab.agent.responses.parse:_lenient_section",
    "nexusleads_lab.agent.turn:TurnResult.record",
    "nexusleads_lab.agent.completion:prepare_calls",
    "nexusleads_lab.agent.history:fit_budget",
    "nexusleads_lab.agent.prompt:system_prompt",
    "nexusleads_lab.agent.turn:Turn.finish",
)


def _phase_clocks() -> dict:
    """Wrap each of ``PHASES`` (where the measured code has it) to add up its thread's CPU in ns
    and its calls; functions imported by name elsewhere in the package are replaced there too."""
    import functools
    import importlib

    clocks: dict[str, list[int]] = {}

    def timed(name: str, fn):
        slot = clocks.setdefault(name, [0, 0])

        @functools.wraps(fn)
        def wrapper(*a, **k):
            t0 = time.thread_time_ns()
            try:
                return fn(*a, **k)
            finally:
                slot[0] += time.thread_time_ns() - t0
                slot[1] += 1

        return wrapper

    import gc

    collecting = [
        clocks.setdefault(f"gc (cyclic collections of generation {g}, any thread)", [0, 0]) for g in (0, 1, 2)
    ]
    started: list[int] = []

    def gc_clock(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(time.thread_time_ns())
        elif started:
            clock = collecting[info.get("generation", 2)]
            clock[0] += time.thread_time_ns() - started.pop()
            clock[1] += 1

    gc.callbacks.append(gc_clock)
    for spec in PHASES:
        module_name, _, path = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        owner, _, attr = path.rpartition(".")
        holder = getattr(module, owner) if owner else module
        fn = getattr(holder, attr, None)
        if fn is None:
            continue
        wrapped = timed(path, fn)
        setattr(holder, attr, wrapped)
        if not owner:
            for other in list(sys.modules.values()):
                if getattr(other, "__name__", "").startswith("nexusleads_lab") and getattr(other, attr, None) is fn:
                    setattr(other, attr, wrapped)
    return clocks


def _profile_threads() -> list:
    """cProfile in this thread and in every thread started from now on (cProfile sees one thread
    each; a turn runs on the event loop, a worker thread and the tool threads)."""
    import cProfile

    profiles: list[cProfile.Profile] = []

    def start(*_args) -> None:
        prof = cProfile.Profile(time.thread_time)  # CPU, not waiting: each thread its own clock
        profiles.append(prof)
        prof.enable()  # replaces this hook for the thread

    threading.setprofile(start)
    start()
    return profiles


def _dump_profiles(profiles: list, path: str) -> None:
    import pstats

    threading.setprofile(None)
    stats = None
    for prof in profiles:
        prof.disable()
        prof.snapshot_stats()
        if not prof.stats:
            continue
        if stats is None:
            stats = pstats.Stats(prof)
        else:
            stats.add(prof)
    if stats is not None:
        stats.dump_stats(path)


# -- the scripted model, timed on its own side ------------------------------------------------


@dataclass(frozen=True)
class TimedStep:
    inner: Any
    delay: float
    tag: str
    served: dict[str, list[float]]
    lock: threading.Lock

    def serve(self, wire) -> None:
        t0 = time.perf_counter()
        time.sleep(self.delay)
        self.inner.serve(wire)
        with self.lock:
            self.served.setdefault(self.tag, []).append(time.perf_counter() - t0)


@dataclass
class BenchModel:
    """Answers by the question's place in its turn: tool results so far 0 -> tiers, 1 -> statuses, 2 -> the dashboard."""

    delay: float
    served: dict[str, list[float]] = field(default_factory=dict)
    request_bytes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def step_for(self, request, number):
        from nexusleads_lab.replay.cassette import last_user_message
        from nexusleads_lab.testing.modelserver import text, tool_calls

        done = sum(1 for m in request.get("messages") or [] if isinstance(m, dict) and m.get("role") == "tool")
        found = TAG.search(last_user_message(request) or "")
        tag = found.group(1) if found else "untagged"
        if done == 0:
            with self.lock:
                self.request_bytes.append(len(json.dumps(request)))
            inner = tool_calls([("psql", {"sql": TIER_SQL})])
        elif done == 1:
            inner = tool_calls([("psql", {"sql": STATUS_SQL})])
        else:
            inner = text(DASHBOARD, chunk_size=64)
        return TimedStep(inner, self.delay, tag, self.served, self.lock)


# -- the clients ------------------------------------------------------------------------------


def order_anomalies(frames: list[dict]) -> list[str]:
    """Departures from the original protocol's order in one turn's frames (none expected)."""
    out = []
    kinds = [f.get("type") for f in frames]
    if not kinds or kinds[0] != "turn.started":
        out.append(f"first frame {kinds[:1]} is not turn.started")
    if not kinds or kinds[-1] not in ("turn.completed", "error"):
        out.append(f"last frame {kinds[-1:]} is neither turn.completed nor error")
    if kinds.count("turn.started") != 1 or kinds.count("turn.completed") + kinds.count("error") != 1:
        out.append("not exactly one turn.started and one end (turn.completed or error)")
    state: dict[str, str] = {}
    for f in frames:
        if f.get("type") != "agent.action":
            continue
        call, status = f.get("callId"), f.get("status")
        if status == "started":
            if call in state:
                out.append(f"{call} started twice")
            state[call] = "started"
        elif status in ("completed", "failed"):  # a failed step ended: a failure, not a lost event
            if state.get(call) != "started":
                out.append(f"{call} {status} before it started")
            state[call] = "ended"
    if "error" not in kinds and sorted(state.values()) != ["ended", "ended"]:
        out.append(f"psql actions {state} (expected 2, each started then ended)")
    texts = [i for i, k in enumerate(kinds) if k == "agent.text"]
    if "error" in kinds:
        pass  # a turn that failed as a whole: counted by ``failures``
    elif not texts or frames[texts[-1]].get("status") != "done":
        out.append("no agent.text done")
    elif "session.id" not in kinds or kinds.index("session.id") > min(
        [i for i, k in enumerate(kinds) if k == "agent.action"] or [len(kinds)]
    ):
        out.append("session.id missing or after the first action")
    return out


def failures(frames: list[dict]) -> list[str]:
    """What failed in one turn (the protocol reported it; nothing was lost): none expected."""
    out = [f"error: {str(f.get('message'))[:160]}" for f in frames if f.get("type") == "error"]
    out += [
        f"step failed: {str(f.get('error'))[:160]}"
        for f in frames
        if f.get("type") == "agent.action" and f.get("status") == "failed"
    ]
    return out


@dataclass
class Turn:
    tag: str
    wall: float
    frames: int
    anomalies: list[str]
    failed: list[str] = field(default_factory=list)
    sample: list[dict] = field(default_factory=list)  # an anomalous or failed turn's frames, condensed


async def open_ws(url: str):
    from websockets.asyncio.client import connect

    return await connect(url, max_size=None, open_timeout=60, ping_interval=None)


async def one_turn(ws, tag: str, timeout: float) -> Turn:
    frames = []
    t0 = time.perf_counter()
    await ws.send(json.dumps({"type": "chat", "message": f"[{tag}] lead tiers, then statuses?"}))
    while True:
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
        if frames[-1].get("type") in ("turn.completed", "error"):
            break
    anomalies, failed = order_anomalies(frames), failures(frames)
    sample = condensed(frames) if anomalies or failed else []
    return Turn(tag, time.perf_counter() - t0, len(frames), anomalies, failed, sample)


def condensed(frames: list[dict]) -> list[dict]:
    """What an anomalous turn's frames said, without the long texts."""
    keep = ("type", "status", "callId", "message", "command", "error")
    return [{k: str(f[k])[:300] for k in keep if k in f} for f in frames]


Pids = int | list[int]  # one server process, or the replicas' (summed)


def _each(pids: Pids) -> list[int]:
    return [pids] if isinstance(pids, int) else list(pids)


def rss_bytes(pids: Pids) -> int:
    total = 0
    for pid in _each(pids):
        with open(f"/proc/{pid}/status") as fh:
            total += next((int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:")), 0)
    return total


def cpu_seconds(pids: Pids) -> float:
    """User + system CPU time the processes have used so far."""
    total = 0
    for pid in _each(pids):
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds(pgdata: Path) -> float:
    """CPU time of the database server so far: the postmaster with its exited backends (reaped,
    so in its children's times) and the backends still running."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        elif int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def threads_of(pids: Pids) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/task")) for pid in _each(pids))


class Watcher:
    """Samples the servers' RSS, threads and database connections every 0.1 s."""

    def __init__(self, pid: Pids, admin_url: str) -> None:
        import psycopg

        self.pid = pid
        self.conn = psycopg.connect(admin_url, autocommit=True)
        self.peak_rss = 0
        self.peak_threads = 0
        self.peak_db: dict[str, int] = {}
        self.peak_db_total = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def db_now(self) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT coalesce(usename, '?'), count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1"
        ).fetchall()
        return {name: n for name, n in rows}

    def sample(self) -> None:
        self.peak_rss = max(self.peak_rss, rss_bytes(self.pid))
        self.peak_threads = max(self.peak_threads, threads_of(self.pid))
        now = self.db_now()
        total = sum(now.values())
        if total > self.peak_db_total:
            self.peak_db_total, self.peak_db = total, now

    def reset(self) -> None:
        self.peak_rss = self.peak_threads = self.peak_db_total = 0
        self.peak_db = {}

    def __enter__(self) -> Watcher:
        self.reset()
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(0.1):
                self.sample()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


async def settle(pid: Pids, seconds: float = 2.0) -> int:
    await asyncio.sleep(seconds)
    return rss_bytes(pid)


async def run_rounds(
    info: dict, pid: Pids, model: BenchModel, sessions: int, baseline: int, label: str, workers: int = 0
) -> dict:
    """``info["ws"]``: one server's URL, or the replicas' (session i goes to replica i mod n, as a
    round-robin load balancer would send it)."""
    urls = info["ws"] if isinstance(info["ws"], list) else [info["ws"]]
    watch = Watcher(pid, info["admin_url"])
    turns: dict[str, list[Turn]] = {"baseline": [], "burst": []}
    out: dict[str, Any] = {"sessions_asked": sessions}

    async def sequential(prefix: str, turns_: int = baseline) -> None:
        for i in range(turns_):
            ws = await open_ws(urls[i % len(urls)])
            try:
                turns["baseline"].append(await one_turn(ws, f"q{label}-{prefix}{i}", 120))
            finally:
                await ws.close()

    await sequential("a", max(baseline, len(urls)))  # also the warm-up (every replica): imports, first connections
    if workers:  # the kernel hands a shared socket's connections to whichever worker accepts first:
        # turns at once until every worker has answered some (a cold worker's first turn imports
        # and connects, which is not what a turn costs)
        for i in range(workers * 4):
            ws = await asyncio.gather(*(open_ws(urls[0]) for _ in range(workers * 2)))
            try:
                await asyncio.gather(*(one_turn(w, f"q{label}-w{i}-{k}", 120) for k, w in enumerate(ws)))
            finally:
                await asyncio.gather(*(w.close() for w in ws))
    cpu0 = cpu_seconds(pid)
    await sequential("c")  # the single-session turns whose CPU is counted
    out["cpu_per_turn_single"] = (cpu_seconds(pid) - cpu0) / max(baseline, 1)
    out["rss_rest"] = await settle(pid)
    out["db_rest"] = watch.db_now()
    out["threads_rest"] = threads_of(pid)

    conns = []
    try:
        t0 = time.perf_counter()
        opened = await asyncio.gather(*(open_ws(urls[i % len(urls)]) for i in range(sessions)), return_exceptions=True)
        conns = [c for c in opened if not isinstance(c, BaseException)]
        failures = [repr(c) for c in opened if isinstance(c, BaseException)]
        out["open_s"] = time.perf_counter() - t0
        out["open_failures"] = failures[:3]
        out["sessions"] = len(conns)
        out["rss_connected"] = await settle(pid)

        with watch:
            cpu0, own0, db0 = cpu_seconds(pid), time.process_time(), database_cpu_seconds(info["pgdata"])
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(one_turn(ws, f"q{label}-c{i}", 900) for i, ws in enumerate(conns)), return_exceptions=True
            )
            out["burst_s"] = time.perf_counter() - t0
            out["cpu_burst"] = cpu_seconds(pid) - cpu0
            out["cpu_load_burst"] = time.process_time() - own0  # the clients and the model (this process)
            out["cpu_db_burst"] = database_cpu_seconds(info["pgdata"]) - db0
        out["turn_failures"] = [repr(r) for r in results if isinstance(r, BaseException)][:3]
        turns["burst"] = [r for r in results if isinstance(r, Turn)]
        out["peak_rss"] = watch.peak_rss
        out["peak_threads"] = watch.peak_threads
        out["db_peak"] = watch.peak_db
        out["rss_idle"] = await settle(pid, 3.0)
        out["db_idle"] = watch.db_now()
        out["threads_idle"] = threads_of(pid)
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    out["rss_closed"] = await settle(pid, 3.0)
    out["db_closed"] = watch.db_now()
    await sequential("b")
    watch.conn.close()

    for kind, ts in turns.items():
        rows = []
        for t in ts:
            served = model.served.get(t.tag, [])
            rows.append(
                {
                    "wall": t.wall,
                    "model": sum(served),
                    "requests": len(served),
                    "added": t.wall - sum(served),
                    "anomalies": t.anomalies,
                    "failed": t.failed,
                    "frames": t.frames,
                    "sample": t.sample,
                }
            )
        out[kind] = rows
    return out


def code_under_test(ref: str, temp: Path) -> tuple[str | None, str]:
    """Where the server's code comes from: the working tree, or ``ref`` exported (others may be
    editing the tree while this runs); and how to name it in the report."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    if ref == "worktree":
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "nexusleads_lab"], capture_output=True, text=True, cwd=ROOT
        )
        return None, f"working tree at {head}" + (" with uncommitted changes" if dirty.stdout.strip() else "")
    commit = subprocess.run(["git", "rev-parse", "--short", ref], capture_output=True, text=True, cwd=ROOT, check=True)
    dest = temp / "code"
    dest.mkdir()
    archive = subprocess.run(["git", "archive", ref, "nexusleads_lab", "js"], capture_output=True, cwd=ROOT, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return str(dest), f"commit {commit.stdout.strip()}"


def server_env(code: str | None, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    env = {**child_env(), **(extra_env or {})}
    # Every session is the one local user "bench": the per-user fair share (issue 20) would refuse
    # all but 4 of them, so it is lifted here; the benchmark measures the process, not the quota.
    env.update(
        NEXUS_MAX_TURNS_PER_USER="100000",
        NEXUS_MAX_SESSIONS_PER_USER="100000",
        NEXUS_MAX_CONNECTIONS_PER_ADDRESS="100000",
    )
    if code:
        env["PYTHONPATH"] = code
    return env


def start_server(
    pgdata: Path, model_url: str, code: str | None, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, dict]:
    cmd = [PY, __file__, "--child", "--pgdata", str(pgdata), "--model-url", model_url]
    env = server_env(code, extra_env)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(CHILD_MARK):
            return proc, json.loads(line[len(CHILD_MARK) :])
    raise RuntimeError(f"the server process ended before it started (exit {proc.wait()})")


def start_serve_workers(
    home: Path, model_url: str, code: str | None, workers: int
) -> tuple[subprocess.Popen, list[int], str]:
    """``nexus-lab serve --workers N`` as shipped (uvicorn's supervisor and N worker processes, each
    its own app, pools and model client), over the embedded database in ``home`` (seeded already).
    Returns the supervisor, the workers' pids and the socket URL."""
    from nexusleads_lab.db.demo import ORGS

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = server_env(
        code,
        {
            "NEXUS_HOME": str(home),
            "OPENAI_BASE_URL": model_url,
            "OPENAI_API_KEY": "bench",
            "NEXUS_MODEL": "bench",
            "NEXUS_USER": "bench",
            "NEXUS_ORG": ORGS[0][0],
        },
    )
    env.pop("NEXUS_AUTH_SECRET", None)
    cmd = [
        PY,
        "-m",
        "nexusleads_lab.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(
        cmd, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nexus-lab serve --workers {workers} ended before it started (exit {proc.returncode})")
        children = _children(proc.pid)
        if len(children) >= workers and _answers(port):
            return proc, children, f"ws://127.0.0.1:{port}/ws/codex"
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"nexus-lab serve --workers {workers} did not answer within 300 s")


def _children(pid: int) -> list[int]:
    """The worker processes (uvicorn's supervisor also runs a resource tracker: not a worker)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = [int(k) for k in fh.read().split()]
    except OSError:
        return []
    out = []
    for kid in kids:
        try:
            cmdline = Path(f"/proc/{kid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            out.append(kid)
    return out


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return resp.status < 500
    except Exception as exc:
        return getattr(exc, "code", 500) < 500


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def parse_configs(text: str) -> list[tuple[str, int]]:
    """``1,2,w2`` -> one process, 2 replicas, one ``serve --workers 2``."""
    out = []
    for token in (t.strip() for t in text.split(",")):
        if token:
            out.append(("workers", int(token[1:])) if token.startswith("w") else ("replicas", int(token)))
    return out


def server_runs(args: argparse.Namespace) -> list[dict]:
    from nexusleads_lab.db.embedded import start_embedded, stop_embedded
    from nexusleads_lab.testing.modelserver import ModelServer

    temp = Path(tempfile.mkdtemp(prefix="nexus-bench-server-"))
    home = temp / "home"
    pgdata = home / "pgdata"
    runs = []
    try:
        codes = []  # (ref, where its code is, its name): --before first, then the code measured
        for n, ref in enumerate([args.before, args.ref] if args.before else [args.ref]):
            where = temp / f"code{n}"
            where.mkdir()
            code, name = code_under_test(ref, where)
            codes.append((ref, code, name))
        args.code_name = codes[-1][2]
        args.before_name = codes[0][2] if args.before else None
        for kind, count in args.replicas:
            for ref, code, name in codes:  # before and after back to back, per configuration
                model = BenchModel(args.delay)
                label = f"{'w' if kind == 'workers' else 'r'}{count}{'b' if ref == args.before and args.before else ''}"
                with ModelServer(model) as srv:
                    started = []
                    supervisor = None
                    try:
                        if kind == "replicas":
                            log(f"{name}: {count} server process(es): starting (the first start seeds the demo data)")
                            for _ in range(count):  # one after another: the first one migrates and seeds
                                started.append(start_server(pgdata, srv.base_url, code))
                            info = {**started[0][1], "ws": [i["ws"] for _, i in started], "pgdata": pgdata}
                            pids: Pids = [proc.pid for proc, _ in started]
                        else:
                            log(f"{name}: nexus-lab serve --workers {count}: seeding, then starting")
                            seeder, seeded = start_server(pgdata, srv.base_url, code)  # migrates and seeds once
                            stop_server(seeder)
                            # Running before the workers start (they open it on their first request):
                            # the watcher reads its connections from the start.
                            start_embedded(pgdata)
                            supervisor, pids, url = start_serve_workers(home, srv.base_url, code, count)
                            info = {**seeded, "ws": url, "pgdata": pgdata}
                        log(f"server pids {pids}: baseline x{args.baseline}, then {args.sessions} sessions at once")
                        workers = count if kind == "workers" else 0
                        result = asyncio.run(
                            run_rounds(info, pids, model, args.sessions, args.baseline, label, workers)
                        )
                    finally:
                        for proc, _ in started:
                            stop_server(proc)
                        if supervisor is not None:
                            stop_server(supervisor)
                            stop_embedded(pgdata)
                result.update(
                    replicas=count, kind=kind, ref=ref, code=name, before=bool(args.before and ref == args.before)
                )
                result["request_bytes"] = list(model.request_bytes)
                result["pool_size"] = info.get("pool_size")
                result["store_pool_size"] = info.get("store_pool_size")
                runs.append(result)
                log(f"{name}, {_replicas(result)}: burst {result.get('burst_s', float('nan')):.1f} s")
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return runs


# -- the anchor: @openai/codex, one process per turn --------------------------------------------


class _ResponsesStub(BaseHTTPRequestHandler):
    """A Responses-API stub answering at once with one short assistant message."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[float, int]]] = []

    def log_message(self, *a) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((time.perf_counter(), len(body)))
        rid, mid = "resp_bench", "msg_bench"
        item = {
            "type": "message",
            "id": mid,
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Done.", "annotations": []}],
        }
        resp = {"id": rid, "object": "response", "status": "completed", "model": "bench", "output": [item]}
        usage = {
            "input_tokens": 10,
            "output_tokens": 2,
            "total_tokens": 12,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
        events = [
            ("response.created", {"response": {**resp, "status": "in_progress", "output": []}}),
            (
                "response.output_item.added",
                {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}},
            ),
            ("response.output_text.delta", {"output_index": 0, "item_id": mid, "content_index": 0, "delta": "Done."}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            ("response.completed", {"response": {**resp, "usage": usage}}),
        ]
        data = "".join(f"event: {k}\ndata: {json.dumps({'type': k, **v})}\n\n" for k, v in events).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def codex_binary() -> Path | None:
    """The npm package in a cache folder outside the tree (installed once with npm, if npm works)."""
    npm = shutil.which("npm")
    if not npm:
        return None
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nexus-bench-codex"
    exe = home / "node_modules" / ".bin" / "codex"
    if not exe.exists():
        home.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(home), f"@openai/codex@{CODEX_VERSION}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0 or not exe.exists():
            log(f"npm install @openai/codex failed: {done.stderr[-400:]}")
            return None
    # What the SDK spawns: the vendored native binary (npm's `codex` is a Node launcher around it).
    native = sorted((home / "node_modules" / "@openai").glob("codex-linux-*/vendor/*/bin/codex"))
    return native[0] if native else exe


RUSAGE_PROBE = """
import resource, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True, stdin=subprocess.DEVNULL)
wall = time.perf_counter() - t
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, proc.returncode)
print(proc.stderr[-600:], file=sys.stderr)
"""


def codex_runs(runs: int) -> dict | None:
    exe = codex_binary()
    if exe is None:
        return None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ResponsesStub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    out: dict[str, list[float]] = {"wall": [], "first": [], "maxrss": [], "req_bytes": []}
    with tempfile.TemporaryDirectory(prefix="nexus-codex-") as home:
        (Path(home) / "config.toml").write_text(
            'model = "bench"\nmodel_provider = "x"\n\n[model_providers.x]\nname = "x"\n'
            f'base_url = "http://127.0.0.1:{port}/v1"\nwire_api = "responses"\nenv_key = "BENCH_KEY"\n'
        )
        env = {**child_env(), "CODEX_HOME": home, "BENCH_KEY": "bench"}
        work = Path(home) / "work"
        work.mkdir()
        for i in range(runs + 1):
            _ResponsesStub.seen = []
            t0 = time.perf_counter()
            cmd = [PY, "-c", RUSAGE_PROBE, str(exe), "exec", "--skip-git-repo-check", "-C", str(work), "say done"]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
            wall, maxrss, rc = done.stdout.split()
            if rc != "0" or not _ResponsesStub.seen:
                log(f"codex exec failed (exit {rc}): {done.stderr[-600:]}")
                httpd.shutdown()
                return None
            if i == 0:
                continue  # the first run fills caches
            out["wall"].append(float(wall))
            out["first"].append(_ResponsesStub.seen[0][0] - t0)
            out["maxrss"].append(int(maxrss) * 1024)
            out["req_bytes"].append(_ResponsesStub.seen[0][1])
    httpd.shutdown()
    return out


# -- the report -------------------------------------------------------------------------------


def _ms(x: float) -> str:
    return "n/a" if x != x else f"{x * 1000:,.0f}"


def _cpu_ms(x: float) -> str:
    """CPU per turn, a few milliseconds: a tenth shows what an integer hides (4.4 and 5.4 are not both 5)."""
    return "n/a" if x != x else f"{x * 1000:,.1f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _db(d: dict[str, int]) -> str:
    total = sum(d.values())
    return f"{total} ({', '.join(f'{k} {v}' for k, v in sorted(d.items()))})" if d else "0"


def _replicas(r: dict) -> str:
    n = r.get("replicas", 1)
    if r.get("kind") == "workers":
        return f"`nexus-lab serve --workers {n}` (one process group)"
    return "1 process" if n == 1 else f"{n} replicas, round-robin"


def _cpu_single(r: dict) -> float:
    return r.get("cpu_per_turn_single", float("nan"))


def _cpu_burst(r: dict) -> float:
    return r.get("cpu_burst", float("nan")) / max(r.get("sessions") or 1, 1)


def _idle_per_session(r: dict) -> float:
    n = r.get("sessions") or 0
    return (r["rss_idle"] - r["rss_rest"]) / n if n else float("nan")


def before_after(before: list[dict], after: list[dict], args: argparse.Namespace) -> str:
    """The --before code's runs beside the measured code's, configuration by configuration."""
    rows = []
    for b in before:
        a = next((r for r in after if (r.get("kind"), r.get("replicas")) == (b.get("kind"), b.get("replicas"))), None)
        if a is None:
            continue
        ab, aa = [t["added"] for t in b.get("burst", [])], [t["added"] for t in a.get("burst", [])]
        rows.append(
            [
                _replicas(b),
                f"{fmt_bytes(_idle_per_session(b))} -> {fmt_bytes(_idle_per_session(a))}",
                f"{_cpu_ms(_cpu_single(b))} -> **{_cpu_ms(_cpu_single(a))}**",
                f"{_cpu_ms(_cpu_burst(b))} -> **{_cpu_ms(_cpu_burst(a))}**",
                f"{_cpu_burst(b) / _cpu_burst(a):.2f}x" if _cpu_burst(a) > 0 else "n/a",
                f"{_ms(med(ab))} -> {_ms(med(aa))}",
                f"{_ms(p(ab, 99))} -> {_ms(p(aa, 99))}",
            ]
        )
    heads = [
        "server",
        "RSS / idle session",
        "CPU / turn, 1 session (ms)",
        f"CPU / turn, {args.sessions} at once (ms)",
        "before / after (N at once)",
        "added p50 (ms)",
        "added p99 (ms)",
    ]
    return md_table(heads, rows)


def report(all_runs: list[dict], codex: dict | None, args: argparse.Namespace) -> str:
    runs = [r for r in all_runs if not r.get("before")]
    before = [r for r in all_runs if r.get("before")]
    parts = [header("Server: concurrent `/ws/codex` sessions (`benchmarks/bench_server.py`)", MODS), ""]
    parts.append(
        f"Each session: one `chat`, read until `turn.completed`; the scripted model answers every request after "
        f"{args.delay:.1f} s (two `psql` tool calls, then a dashboard: 3 requests a turn). *Added* = the turn's "
        "wall time minus the model server's own serve time for that turn's requests. The server runs in its own "
        "process (its RSS from /proc), with its own embedded PostgreSQL; clients and model in another. "
        f"Baseline: 1 session at a time, {args.baseline} turns before and {args.baseline} after the burst, same run, "
        "after a warm-up (for `--workers N` also four rounds of 2N turns at once, so that every worker has answered some). "
        f"Server code: {args.code_name}."
    )
    parts.append("")
    rows = []
    for r in runs:
        burst, base = r.get("burst", []), r.get("baseline", [])
        added = [t["added"] for t in burst]
        base_added = [t["added"] for t in base]
        n = r.get("sessions", 0)
        idle = (r["rss_idle"] - r["rss_rest"]) / n if n else float("nan")
        connected = (r["rss_connected"] - r["rss_rest"]) / n if n else float("nan")
        lost = sum(len(t["anomalies"]) for t in burst + base) + (r["sessions_asked"] - len(burst))
        failed = sum(1 for t in burst + base if t.get("failed"))
        name = _replicas(r)
        rows.append(
            [
                name,
                f"{len(burst)}/{r['sessions_asked']}",
                _ms(med(base_added)),
                _ms(med(added)),
                _ms(p(added, 99)),
                f"{med(added) / med(base_added):,.1f}x" if base_added and added else "n/a",
                _ms(med([t["wall"] for t in burst])),
                f"{r.get('burst_s', float('nan')):.1f}",
                fmt_bytes(connected),
                fmt_bytes(idle),
                _db(r.get("db_peak", {})),
                _db(r.get("db_idle", {})),
                _db(r.get("db_closed", {})),
                str(lost),
                str(failed),
            ]
        )
    parts.append(
        md_table(
            [
                "server",
                "sessions ok",
                "added p50, 1 session (ms)",
                "added p50 (ms)",
                "added p99 (ms)",
                "p50 ratio to 1 session",
                "turn wall p50 (ms)",
                "all N done (s)",
                "RSS / connected session",
                "RSS / idle session (after its turn)",
                "DB connections at peak",
                "with N idle",
                "after close",
                "lost or misordered",
                "turns failed",
            ],
            rows,
        )
    )
    parts.append("")
    parts.append(
        md_table(
            [
                "server",
                "RSS at rest",
                "with N connected",
                "peak in burst",
                "with N idle",
                "after close",
                "threads rest / peak",
                "model requests / turn",
                "first request body",
                "server CPU / turn, 1 session (ms)",
                "server CPU / turn, N at once (ms)",
                "server CPU busy in the burst",
                "clients + model CPU busy in the burst",
                "PostgreSQL CPU busy in the burst",
            ],
            [
                [
                    _replicas(r),
                    fmt_bytes(r["rss_rest"]),
                    fmt_bytes(r["rss_connected"]),
                    fmt_bytes(r["peak_rss"]),
                    fmt_bytes(r["rss_idle"]),
                    fmt_bytes(r["rss_closed"]),
                    f"{r['threads_rest']} / {r['peak_threads']}",
                    f"{med([t['requests'] for t in r.get('burst', [])]):.0f}",
                    fmt_bytes(med(r["request_bytes"])),
                    _cpu_ms(r.get("cpu_per_turn_single", float("nan"))),
                    _cpu_ms(r.get("cpu_burst", float("nan")) / max(r.get("sessions") or 1, 1)),
                    f"{r.get('cpu_burst', float('nan')) / r.get('burst_s', float('nan')):.0%} of one core",
                    f"{r.get('cpu_load_burst', float('nan')) / r.get('burst_s', float('nan')):.0%} of one core",
                    f"{r.get('cpu_db_burst', float('nan')) / r.get('burst_s', float('nan')):.0%} of one core",
                ]
                for r in runs
            ],
        )
    )
    parts.append("")
    if before:
        parts.append(f"#### Server CPU per turn: {args.before_name} (before) -> {args.code_name} (after), back to back")
        parts.append("")
        parts.append(
            "Each configuration ran with the `--before` code, then with the measured code, in this run (same "
            "benchmark script, same machine load window). CPU: the server processes' user + system time from "
            f"/proc, 1 session at a time ({args.baseline} turns) and over the burst of {args.sessions} turns, "
            "divided by the turns."
        )
        parts.append("")
        parts.append(before_after(before, runs, args))
        parts.append("")
    parts.append("#### The anchor: the original design (`@openai/codex` exec, one process per turn)")
    parts.append("")
    if codex:
        parts.append(
            f"Re-measured in this run: `@openai/codex` {CODEX_VERSION} from npm, its native binary (what the SDK "
            "spawns; not the Node launcher) running `codex exec` against a loopback "
            f"Responses-API stub answering at once, {len(codex['wall'])} runs after one warm-up (peak RSS: the "
            "largest process of the run, `ru_maxrss`)."
        )
        parts.append("")
    else:
        parts.append("Not re-measured in this run (npm or `codex exec` unavailable): the issue's numbers only.")
        parts.append("")
    crow = [
        ["spawn to exit per turn (ms)", f"{ISSUE_CODEX['spawn_to_exit_ms']}"],
        ["spawn to first model request (ms)", f"{ISSUE_CODEX['before_first_request_ms']}"],
        [
            "peak RSS per turn",
            f"{ISSUE_CODEX['peak_rss_mib']} MiB (~{ISSUE_CODEX['private_mib']} MiB private) "
            f"+ the SDK's {ISSUE_CODEX['sdk_node_mib']} MiB Node process",
        ],
        ["fixed instructions + tools per request", f"{ISSUE_CODEX['fixed_request_kb']} KB"],
    ]
    if codex:
        crow[0].append(_ms(med(codex["wall"])))
        crow[1].append(_ms(med(codex["first"])))
        crow[2].append(fmt_bytes(med(codex["maxrss"])))
        crow[3].append(f"{fmt_bytes(med(codex['req_bytes']))} (whole first request body)")
    shipped = next((r for r in runs if r.get("replicas", 1) == 1), runs[0] if runs else None)
    ours = []
    if shipped and shipped.get("baseline"):
        base = shipped["baseline"]
        n = shipped.get("sessions") or 1
        ours = [
            _ms(med([t["added"] for t in base])) + " (added beyond the model, 1 session)",
            "0 (no process; the turn starts on a worker thread)",
            fmt_bytes((shipped["rss_idle"] - shipped["rss_rest"]) / n) + " per idle session, one server process",
            fmt_bytes(med(shipped["request_bytes"])) + " (whole first request body)",
        ]
    heads = ["per turn", "from the issue, not re-measured in this run"]
    if codex:
        heads.append("re-measured in this run")
    if ours:
        heads.append("`nexus-lab serve` (this run)")
        for row, v in zip(crow, ours):
            row.append(v)
    parts.append(md_table(heads, crow, "l" + "r" * (len(heads) - 1)))
    parts.append("")
    if shipped:
        added = [t["added"] for t in shipped.get("burst", [])]
        n = shipped.get("sessions") or 0
        idle = (shipped["rss_idle"] - shipped["rss_rest"]) / n if n else float("nan")
        lost = sum(len(t["anomalies"]) for t in shipped.get("burst", []) + shipped.get("baseline", []))
        lost += shipped["sessions_asked"] - len(shipped.get("burst", []))
        failed = sum(1 for t in shipped.get("burst", []) + shipped.get("baseline", []) if t.get("failed"))
        peak = sum(shipped.get("db_peak", {}).values())
        pool = shipped.get("pool_size") or 4
        store_pool = shipped.get("store_pool_size") or pool
        bound = pool + store_pool + 1  # reads, the conversation store, the writer (one organization)
        parts.append("#### Targets (issue 12), the server as shipped")
        parts.append("")
        parts.append(
            md_table(
                ["target", "measured", "verdict"],
                [
                    [
                        f"p99 added <= {TARGET_ADDED_MS} ms",
                        f"{_ms(p(added, 99))} ms",
                        _verdict(p(added, 99) * 1000 <= TARGET_ADDED_MS),
                    ],
                    ["<= 5 MB per idle session", fmt_bytes(idle), _verdict(idle <= TARGET_IDLE_BYTES)],
                    [
                        f"DB connections bounded by the pool size (read pool {pool} + store pool {store_pool} "
                        f"+ writer 1 = {bound})",
                        f"peak {peak} with {n} sessions",
                        _verdict(peak <= bound),
                    ],
                    ["0 lost or misordered events", str(lost), _verdict(lost == 0)],
                    ["every turn answered (no error, no failed step)", f"{failed} failed", _verdict(failed == 0)],
                    [
                        f"server CPU <= {TARGET_CPU_MS} ms per two-step turn, {n} at once (issue 20)",
                        f"{_cpu_ms(_cpu_burst(shipped))} ms",
                        _verdict(_cpu_burst(shipped) * 1000 <= TARGET_CPU_MS),
                    ],
                    [
                        f"server CPU <= {TARGET_CPU_MS} ms per two-step turn, 1 session at a time (the process "
                        f"idle while the model thinks)",
                        f"{_cpu_ms(_cpu_single(shipped))} ms",
                        _verdict(_cpu_single(shipped) * 1000 <= TARGET_CPU_MS),
                    ],
                ],
                "lrr",
            )
        )
    for r in runs:
        problems = [a for t in r.get("burst", []) + r.get("baseline", []) for a in t["anomalies"] + t.get("failed", [])]
        if problems or r.get("open_failures") or r.get("turn_failures"):
            parts.append("")
            parts.append(f"Problems ({_replicas(r)}): {problems[:5]} {r.get('open_failures')} {r.get('turn_failures')}")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--baseline", type=int, default=5, help="sequential turns before and after the burst")
    ap.add_argument("--delay", type=float, default=1.0, help="seconds the model waits before each answer")
    ap.add_argument(
        "--replicas",
        default="1,w2",
        help="comma list: N server processes over one database, sessions round-robin; wN: one `nexus-lab serve "
        "--workers N` process group",
    )
    ap.add_argument(
        "--before", help="a git ref run before the measured code, per configuration, for a before/after table"
    )
    ap.add_argument(
        "--ref", default="worktree", help="server code: the working tree, or a git ref exported for the run"
    )
    ap.add_argument("--codex-runs", type=int, default=5)
    ap.add_argument("--no-codex", action="store_true")
    ap.add_argument("--quick", action="store_true", help="20 sessions, 2 baseline turns")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "server.md")
    ap.add_argument("--json", type=Path, help="also write the raw numbers here")
    ap.add_argument("--from-json", type=Path, help="write the report again from a --json file; measure nothing")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pgdata", help=argparse.SUPPRESS)
    ap.add_argument("--model-url", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        serve_child(args)
        return 0
    if args.from_json:  # the report again from a run's raw numbers (--json), nothing measured
        saved = json.loads(args.from_json.read_text())
        args.replicas = parse_configs(args.replicas)
        args.code_name = next((r["code"] for r in saved["runs"] if not r.get("before")), "?")
        args.before_name = next((r["code"] for r in saved["runs"] if r.get("before")), None)
        args.sessions = next((r["sessions_asked"] for r in saved["runs"]), args.sessions)
        text = report(saved["runs"], saved["codex"], args)
        print(text)
        atomic_write(args.out, text)
        return 0
    quiet_warnings()
    if args.quick:
        args.sessions, args.baseline, args.codex_runs = 20, 2, 2
    args.replicas = parse_configs(args.replicas)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    codex = None if args.no_codex else codex_runs(args.codex_runs)
    runs = server_runs(args)
    text = report(runs, codex, args)
    if args.json:
        atomic_write(args.json, json.dumps({"runs": runs, "codex": codex}, indent=1, default=str))
    print(text)
    atomic_write(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
