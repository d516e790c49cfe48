#!/usr/bin/env python
"""The server's own CPU per ``/ws/codex`` turn, without the model, the tools or the store.

    .venv/bin/python benchmarks/bench_ws.py [--ref worktree --ref main] [--turns 300] [--rounds 5]

Each ``--ref`` is one server process: ``create_app`` on uvicorn as ``nexus-lab serve`` configures
it, whose ``make_assistant`` builds a ``ScriptedAssistant`` (the real ``Assistant`` with its
parts, its bus and its ``Turn``) that answers at once with the nine events of
``bench_server.py``'s turn (``turn.started``, ``session.id``, two tool steps started and
completed, one streaming ``agent.text``, the answer, ``turn.completed``). So what is measured is
the socket's part of a turn alone: the handshake through the middleware and ``admit``, the
assistant made for the session, the pool hops, the events' way from the turn's thread to the
loop, their frames, and the tear-down. One turn = one connection (open, chat, read to
``turn.completed``, close), as bench_server.py and profile_turn.py do it. The refs' rounds are
interleaved; CPU is the server process's own (schedstat), per turn, over each round of
``--turns`` sequential turns: the median and the least of ``--rounds`` (on a shared machine the
least is the steadier), and of that the event loop's (the main thread's) alone.

``--ref bare`` is the floor under all of it: uvicorn as ``serve`` configures it, its protocols the
server's own, around a plain ASGI function that accepts, reads the chat and sends nine frames of
the same sizes, with nothing of the app (no middleware, no checks, no threads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from _common import log, med, quiet_warnings  # noqa: E402

MARK = "BENCH_WS_PORT "
QUESTION = "lead tiers, then statuses?"
ANSWER = json.dumps(
    {
        "type": "dashboard",
        "title": "Leads",
        "sections": [{"type": "bars", "label": "Leads by tier", "items": [{"name": "cold", "value": 533}]}],
    }
)


def serve() -> None:
    """The server alone in this process, the real ``make_assistant`` building scripted assistants."""
    quiet_warnings()
    from nexusleads_lab.agent.assistant import Assistant
    from nexusleads_lab.agent.events import AgentAction, AgentText, SessionId, TurnCompleted
    from nexusleads_lab.server import app as app_module
    from nexusleads_lab.server.auth import Identity

    class NoStore:
        def close(self) -> None:
            pass

    class ScriptedAssistant(Assistant):
        """The real assistant, its model, tools and store replaced by a script of one turn."""

        _no_store = NoStore()

        @property
        def store(self):  # type: ignore[override]
            return self._no_store

        def start_conversation(self, title: str, *, lease: bool = False):  # type: ignore[override]
            self.thread.id = str(uuid.uuid4())
            return self.thread

        def ask(self, question: str, *, on_event=None, origin: str = "code", model=None):  # type: ignore[override]
            turn = self._new_turn(question, origin=origin, model=model, on_event=on_event, watched=False)
            try:
                turn.emit(SessionId(session_id=self.thread.id))
                for n, sql in enumerate(("SELECT tier, count(*) FROM leads", "SELECT status, count(*) FROM leads")):
                    step = dict(action="command", tool="psql", call_id=f"call_{n}", command=sql)
                    turn.emit(AgentAction(status="started", **step))
                    turn.emit(AgentAction(status="completed", result_id=f"r{n}", rows=3, elapsed_ms=1.0, **step))
                turn.emit(AgentText(keep=0, delta="Leads", status="streaming"))
                turn.emit(AgentText(text=ANSWER, status="done"))
                turn.emit(TurnCompleted(text=ANSWER, usage={"input_tokens": 10, "output_tokens": 20}))
            finally:
                with self._turns_lock:
                    self._turns.discard(turn)
                turn.finish()
            return turn.result()

    app_module.Assistant = ScriptedAssistant  # type: ignore[misc]
    app = app_module.create_app(database=object(), client=object(), local=Identity(user="bench", org=None))
    _run_uvicorn(app)


def serve_bare() -> None:
    """uvicorn and the server's protocols around the nine frames alone (``--ref bare``)."""
    step = {"action": "command", "tool": "psql", "callId": "call_0", "command": "SELECT tier, count(*) FROM leads"}
    frames = [
        json.dumps(frame, ensure_ascii=False)
        for frame in (
            {"type": "turn.started"},
            {"type": "session.id", "sessionId": str(uuid.uuid4())},
            {"type": "agent.action", "status": "started", **step},
            {"type": "agent.action", "status": "completed", "resultId": "r0", "rows": 3, **step},
            {"type": "agent.action", "status": "started", **step},
            {"type": "agent.action", "status": "completed", "resultId": "r1", "rows": 3, **step},
            {"type": "agent.text", "text": "Leads", "status": "streaming"},
            {"type": "agent.text", "text": ANSWER, "status": "done"},
            {"type": "turn.completed", "text": ANSWER, "usage": {"input_tokens": 10, "output_tokens": 20}},
        )
    ]

    async def bare(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            for frame in frames:
                await send({"type": "websocket.send", "text": frame})

    _run_uvicorn(bare, lifespan="off")


def _run_uvicorn(app, **extra) -> None:  # type: ignore[no-untyped-def]
    """Serve ``app`` on a loopback port with the server's own protocols and limits; the port on stdout."""
    import socket

    import uvicorn

    from nexusleads_lab.server import app as app_module

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=sock.getsockname()[1],
        log_level="warning",
        ws_max_size=app_module.WS_MAX_SIZE,
        http=app_module.HTTP_PROTOCOL,
        ws=app_module.WS_PROTOCOL,
        ws_per_message_deflate=app_module.WS_PER_MESSAGE_DEFLATE,
        # serve's loop; code from before it named one ran on asyncio's (BENCH_WS_LOOP: another)
        loop=os.environ.get("BENCH_WS_LOOP") or getattr(app_module, "LOOP", "asyncio"),
        **extra,
    )
    print(MARK + str(sock.getsockname()[1]), flush=True)
    try:  # as `serve` runs it, where the measured code has its own server loop
        from nexusleads_lab.server.uvicorn_server import Server
    except ImportError:
        Server = uvicorn.Server
    Server(config).run(sockets=[sock])


def loop_ns(pid: int) -> int:
    """CPU of the process's main thread (the event loop) in nanoseconds."""
    with open(f"/proc/{pid}/task/{pid}/schedstat") as fh:
        return int(fh.read().split()[0])


def start(ref: str, temp: Path) -> dict:
    import bench_server as bs

    if ref == "bare":
        code, name = bs.code_under_test("worktree", temp)
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-bare"], stdout=subprocess.PIPE, text=True, env=bs.server_env(code)
        )
        return _started(proc, f"bare uvicorn ({name})")
    where = temp / f"s{len(list(temp.iterdir()))}"
    where.mkdir()
    code, name = bs.code_under_test(ref, where)
    env = bs.server_env(code)
    # the script's own folder first: this benchmark's serve() with the ref's package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (code, str(BENCH)) if p)
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    return _started(proc, f"{ref} ({name})")


def _started(proc: subprocess.Popen, name: str) -> dict:
    """The server ``proc`` once it has printed its port."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(MARK):
            return {"name": name, "proc": proc, "url": f"ws://127.0.0.1:{line[len(MARK) :].strip()}/ws/codex"}
    raise RuntimeError(f"the server ended before it started (exit {proc.wait()})")


async def turns(url: str, n: int) -> None:
    from websockets.asyncio.client import connect

    for _ in range(n):
        async with connect(url, max_size=None, ping_interval=None) as ws:
            await ws.send(json.dumps({"type": "chat", "message": QUESTION}))
            frames = 0
            while True:
                frame = json.loads(await ws.recv())
                frames += 1
                if frame["type"] in ("turn.completed", "error"):
                    break
            if frame["type"] != "turn.completed" or frames != 9:
                raise RuntimeError(f"unexpected turn: {frames} frames, last {frame}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--ref",
        action="append",
        help="server code: worktree (default), a git ref or bare (the floor); repeat to compare",
    )
    ap.add_argument("--turns", type=int, default=300, help="sequential turns per round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.serve_bare:
        serve_bare()
        return 0
    quiet_warnings()
    from profile_turn import cpu_ns

    servers = []
    with tempfile.TemporaryDirectory(prefix="nexus-bench-ws-") as temp:
        try:
            for ref in args.ref or ["worktree"]:
                servers.append({**start(ref, Path(temp)), "cpu": [], "loop": []})
            for s in servers:
                asyncio.run(turns(s["url"], 50))  # imports, caches, the pools' threads
            for round_ in range(args.rounds):
                for s in servers if round_ % 2 == 0 else servers[::-1]:
                    time.sleep(0.2)  # the previous round's tear-downs are over
                    cpu0, loop0 = cpu_ns(s["proc"].pid), loop_ns(s["proc"].pid)
                    asyncio.run(turns(s["url"], args.turns))
                    time.sleep(0.2)  # and this round's, counted
                    s["cpu"].append((cpu_ns(s["proc"].pid) - cpu0) / 1e6 / args.turns)
                    s["loop"].append((loop_ns(s["proc"].pid) - loop0) / 1e6 / args.turns)
                    log(f"{s['name']}: {s['cpu'][-1]:.3f} ms, the loop {s['loop'][-1]:.3f} ms")
        finally:
            for s in servers:
                s["proc"].terminate()
                s["proc"].wait(timeout=30)
    for s in servers:
        print(
            f"{s['name']}: server CPU per turn (connect, chat, 9 frames, close) median {med(s['cpu']):.3f} ms, "
            f"least {min(s['cpu']):.3f} ms over {len(s['cpu'])} rounds of {args.turns}; the event loop's "
            f"median {med(s['loop']):.3f} ms, least {min(s['loop']):.3f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
