"""What one client or one user can take from `nexus-lab serve`, and what sessions give back: a
real server (in this process on a loopback port, or `nexus-lab serve` itself in a subprocess,
where its file descriptors, memory and log are read), the scripted model through the real
`openai` client, the real database."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import openai
import pytest
from scripted import message
from servers import ORG, SECRET, free_port, send, until_end
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from nexusleads_lab.config import ServeLimits
from nexusleads_lab.replay.cassette import last_user_message
from nexusleads_lab.server.auth import issue_token
from nexusleads_lab.server.connections import ConnectionBudget
from nexusleads_lab.testing.modelserver import ModelServer, text


class Echo:
    """Answers every request, naming the question; ``delay`` per two-character chunk."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def __call__(self, request):
        return text(message(f"re: {last_user_message(request)}"), chunk_size=2, delay=self.delay)

    def step_for(self, request, number):
        return self(request)


def ask(url: str, question: str, **kwargs) -> list[dict]:
    with connect(url, **kwargs) as ws:
        send(ws, type="chat", message=question)
        return until_end(ws, timeout=60)


def from_address(address: str, port: int) -> socket.socket:
    """A connection to the server on 127.0.0.1 from another loopback address (another client)."""
    sock = socket.socket()
    sock.bind((address, 0))
    sock.connect(("127.0.0.1", port))
    return sock


# -- fair share ---------------------------------------------------------------------------------


def test_one_users_burst_is_refused_beyond_its_share_and_another_users_turn_is_not_delayed(serve, db):
    slow = Echo(delay=0.03)  # ~1 s a turn: the burst's turns overlap
    live = serve([slow] * 60, secret=SECRET, limits=ServeLimits(turns_per_user=4, sessions_per_user=8))
    alice = f"{live.ws}?token={issue_token(SECRET, 'burst-alice', ORG)}"
    bob = f"{live.ws}?token={issue_token(SECRET, 'burst-bob', ORG)}"
    started = time.monotonic()
    assert json.loads(ask(bob, "baseline")[-1]["text"])["text"] == "re: baseline"
    baseline = time.monotonic() - started

    opened = contextlib.ExitStack()
    sockets = [opened.enter_context(connect(alice)) for _ in range(8)]
    with pytest.raises(InvalidStatus) as ninth:
        connect(alice)
    assert ninth.value.response.status_code == 429, "at most NEXUS_MAX_SESSIONS_PER_USER sockets"
    for n in range(40):
        send(sockets[n % 8], type="chat", message=f"burst {n}")
    time.sleep(0.2)
    started = time.monotonic()
    during = ask(bob, "during the burst")
    delayed = time.monotonic() - started
    ends = []
    for ws in sockets:
        mine = 0
        while mine < 5:  # each socket sent 5 messages: each ends in turn.completed or an error
            frame = json.loads(ws.recv(timeout=60))
            if frame["type"] in ("turn.completed", "error"):
                ends.append(frame)
                mine += 1
    opened.close()
    assert json.loads(during[-1]["text"])["text"] == "re: during the burst"
    completed = [e for e in ends if e["type"] == "turn.completed"]
    busy = [e["message"] for e in ends if e["type"] == "error"]
    assert len(completed) == 4 and len(busy) == 36, (len(completed), busy[:3])
    assert all(m.startswith("busy: 4 turns running; wait or stop one") for m in busy), busy[0]
    with db.connect_admin() as conn:
        made = conn.execute("SELECT count(*) FROM chat_conversations WHERE user_name = 'burst-alice'").fetchone()[0]
    assert made == 4, "a refused message creates no conversation"
    assert delayed < 3 * baseline, (baseline, delayed)


def _toast(ws) -> str:
    while True:
        frame = json.loads(ws.recv(timeout=30))
        if frame["type"] == "msg" and frame["content"].get("type") == "toast":
            return frame["content"]["text"]


def _page_started(ws, question: str) -> bool:
    """Ask from the page: True once its turn runs, False if it was refused as busy."""
    ws.send(json.dumps({"type": "ask", "text": question}))
    while True:
        frame = json.loads(ws.recv(timeout=30))
        if frame["type"] == "state" and frame["patch"].get("busy") is True:
            return True
        if frame["type"] == "msg" and frame["content"].get("text", "").startswith("busy:"):
            return False


def _panel_idle(ws) -> None:
    """Frames until the page's state says its turn ended."""
    while True:
        frame = json.loads(ws.recv(timeout=30))
        if frame["type"] == "state" and frame["patch"].get("busy") is False:
            return


def test_the_chat_pages_turns_share_the_users_turns_with_the_protocol_socket(serve):
    slow = Echo(delay=0.03)
    live = serve([slow] * 6, secret=SECRET, limits=ServeLimits(turns_per_user=1, sessions_per_user=4))
    token = issue_token(SECRET, f"share-{uuid.uuid4().hex[:6]}", ORG)
    codex, panel = f"{live.ws}?token={token}", f"{live.ws.replace('codex', 'panel')}?token={token}"
    with connect(codex) as ws, connect(panel) as page:
        assert json.loads(page.recv(timeout=30))["type"] == "state"
        send(ws, type="chat", message="a slow one")
        assert json.loads(ws.recv(timeout=30))["type"] == "turn.started"
        page.send(json.dumps({"type": "ask", "text": "from the page"}))
        assert _toast(page).startswith("busy: 1 turns running; wait or stop one")
        assert until_end(ws)[-1]["type"] == "turn.completed"

        while not _page_started(page, "now the page"):  # the slow turn stores its end after its last event
            time.sleep(0.1)
        send(ws, type="chat", message="while the page asks")
        refused = json.loads(ws.recv(timeout=30))
        assert refused["type"] == "error" and refused["message"].startswith("busy: 1 turns running"), refused
        _panel_idle(page)
        send(ws, type="chat", message="after the page")
        assert json.loads(until_end(ws)[-1]["text"])["text"] == "re: after the page"


# -- slow and crowding clients -----------------------------------------------------------------


def test_trickled_headers_are_dropped_and_a_crowd_from_one_address_leaves_room_for_others(serve):
    budget = ConnectionBudget(total=50, per_address=5, header_timeout_s=1.0)
    live = serve(budget=budget)
    port = int(live.http.rsplit(":", 1)[1])
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"GET /api/chat/conversations HTTP/1.1\r\n")
    trickled, closed = 0, False
    for _ in range(30):  # a header byte every 0.3 s: 9 s if the server waits for it
        time.sleep(0.3)
        try:
            slow.sendall(b"X")
            trickled += 1
        except OSError:
            closed = True
            break
        slow.settimeout(0.01)
        try:
            if slow.recv(100) == b"":
                closed = True
                break
        except TimeoutError:
            pass
    slow.close()
    assert closed and trickled < 29, "the server dropped the trickling connection"

    crowd = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    extra = socket.create_connection(("127.0.0.1", port))
    extra.settimeout(5)
    assert extra.recv(200).startswith(b"HTTP/1.1 503"), "the sixth from one address is refused at once"
    extra.close()
    with from_address("127.0.0.2", port) as other:  # another client is not crowded out
        other.sendall(b"GET /api/chat/conversations HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        other.settimeout(10)
        assert other.recv(100).startswith(b"HTTP/1.1 200")
    for sock in crowd:  # headers never came: each is dropped, and the address may connect again
        sock.settimeout(5)
        assert sock.recv(100) == b""
        sock.close()
    assert httpx.get(f"{live.http}/api/chat/conversations").status_code == 200


# -- `nexus-lab serve` itself ----------------------------------------------------------------------


def _serve_process(db, tmp_path: Path, model: ModelServer, *, nofile: int | None = None, workers: int = 1, **env_extra):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    env.update(
        NEXUS_HOME=str(db.embedded.pgdata.parent),
        NEXUS_USER=f"proc-{uuid.uuid4().hex[:6]}",
        OPENAI_BASE_URL=model.base_url,
        OPENAI_API_KEY="k",
        **env_extra,
    )

    def limit_files() -> None:
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    log = open(tmp_path / "serve.log", "w+")  # noqa: SIM115 - read back after the process ends
    proc = subprocess.Popen(
        [sys.executable, "-m", "nexusleads_lab.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=limit_files,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        try:
            httpx.get(f"{base}/openapi.json", timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
    return proc, base, port, log


def _stop(proc, log) -> str:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    log.seek(0)
    text_ = log.read()
    log.close()
    return text_


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_six_hundred_sessions_opened_and_closed_leave_file_descriptors_and_memory_at_baseline(db, tmp_path):
    model = ModelServer(Echo())
    proc, base, _, log = _serve_process(db, tmp_path, model, NEXUS_ORG=ORG)
    url = base.replace("http", "ws") + "/ws/codex"
    try:
        for n in range(100):  # warm: imports, pools, caches
            assert ask(url, f"warm {n}")[-1]["type"] == "turn.completed"
        time.sleep(1)
        fds, rss, dialled = _fds(proc.pid), _rss_mib(proc.pid), model.connections_opened
        for n in range(600):
            assert ask(url, f"session {n}")[-1]["type"] == "turn.completed", n
        time.sleep(1)
        fds_after, rss_after = _fds(proc.pid), _rss_mib(proc.pid)
        dialled = model.connections_opened - dialled
    finally:
        output = _stop(proc, log)
        model.close()
    assert dialled <= 4, f"600 sessions opened {dialled} connections to the model: one client per process reuses them"
    assert fds_after <= fds + 4, (fds, fds_after)
    # Each leaked session held ~1 MB (its client, pool and cycles): 600 would be ~600 MB.
    assert rss_after - rss < 40, (rss, rss_after)
    assert f"in organization {ORG} (NEXUS_ORG)" in output and "open-files limit" in output


def test_a_burst_under_a_low_open_files_limit_never_locks_the_others_out(db, tmp_path):
    model = ModelServer(Echo(delay=0.01))
    proc, base, port, log = _serve_process(db, tmp_path, model, nofile=400, NEXUS_ORG=ORG)
    url = base.replace("http", "ws") + "/ws/codex"
    crowd: list[socket.socket] = []
    try:
        for _ in range(300):  # idle connections from one address: far beyond its share
            try:
                crowd.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
        bursts = []

        def burst(n: int) -> None:
            try:
                bursts.append(ask(url, f"burst {n}")[-1]["type"])
            except Exception as exc:  # refused: the address is full
                bursts.append(type(exc).__name__)

        threads = [threading.Thread(target=burst, args=(n,)) for n in range(50)]
        for t in threads:
            t.start()
        sock = from_address("127.0.0.2", port)
        host = f"127.0.0.1:{port}"
        frames = ask(f"ws://{host}/ws/codex", "another client, during the burst", sock=sock)
        for t in threads:
            t.join(timeout=120)
        for s in crowd:
            s.close()
        time.sleep(1)
        after = ask(url, "after the burst")
    finally:
        output = _stop(proc, log)
        model.close()
    assert json.loads(frames[-1]["text"])["text"] == "re: another client, during the burst"
    assert json.loads(after[-1]["text"])["text"] == "re: after the burst"
    assert "Too many open files" not in output
    assert "open-files limit 400: at most 200 client connections" in output


def test_the_access_log_never_shows_a_token(db, tmp_path):
    model = ModelServer(Echo())
    secret = "log-secret-" + uuid.uuid4().hex
    proc, base, _, log = _serve_process(db, tmp_path, model, NEXUS_AUTH_SECRET=secret)
    token = issue_token(secret, "log-alice", ORG)
    try:
        frames = ask(base.replace("http", "ws") + f"/ws/codex?token={token}", "hello")
        httpx.get(f"{base}/api/chat/conversations?token={token}&x=1")
        httpx.get(f"{base}/api/chat/conversations", headers={"Authorization": f"Bearer {token}"})
        with pytest.raises(InvalidStatus):
            connect(base.replace("http", "ws") + f"/ws/codex?access_token={token}")
    finally:
        output = _stop(proc, log)
        model.close()
    assert frames[-1]["type"] == "turn.completed"
    assert token not in output and token.split(".")[2] not in output
    assert output.count("token=[redacted]") >= 3, output
    assert "Serving each token's own organization" in output


def test_closing_an_assistant_closes_the_model_client_it_made(db, monkeypatch):
    from nexusleads_lab.agent.assistant import Assistant

    model = ModelServer(Echo())
    monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    try:
        own = Assistant(database=db, org=ORG, user=f"close-{uuid.uuid4().hex[:6]}", persist=False)
        made = own.client()
        shared = openai.OpenAI(base_url=model.base_url, api_key="k")  # a client somebody else owns
        given = Assistant(database=db, org=ORG, user="given", client=shared, persist=False)
        own.close()
        given.close()
        assert made.is_closed(), "its sockets go now, not when the garbage collector finds it"
        assert not shared.is_closed(), "a client it was given is its owner's to close"
    finally:
        model.close()


def _loop_wakeups(pid: int) -> int:
    """How often the server's event loop (its main thread) has gone to sleep and been woken."""
    with open(f"/proc/{pid}/task/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt_switches:"))


def test_a_server_at_rest_sleeps_and_still_stops_at_once_when_told(db, tmp_path):
    """uvicorn's own loop wakes ten times a second to see whether it should stop (~1.6 ms of CPU a
    second at rest); `serve`'s wakes once a second, and a stop request wakes it at once."""
    model = ModelServer(Echo())
    proc, base, _, log = _serve_process(db, tmp_path, model, NEXUS_ORG=ORG)
    try:
        assert ask(base.replace("http", "ws") + "/ws/codex", "hello")[-1]["type"] == "turn.completed"
        time.sleep(1)
        before, started = _loop_wakeups(proc.pid), time.monotonic()
        time.sleep(4)
        woken = _loop_wakeups(proc.pid) - before
        seconds = time.monotonic() - started
        assert woken <= 2 * seconds + 3, f"{woken} wake-ups in {seconds:.1f} s at rest"
        proc.send_signal(subprocess.signal.SIGINT)  # as Ctrl-C: the loop is woken, shuts down, exits 0
        assert proc.wait(timeout=30) == 0
    finally:
        output = _stop(proc, log)
        model.close()
    assert "Finished server process" in output, output


def _workers(pid: int) -> list[int]:
    """The worker processes a `serve --workers N` supervisor started (not multiprocessing's helpers)."""
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        children = [int(c) for c in fh.read().split()]
    found = []
    for child in children:
        with contextlib.suppress(OSError), open(f"/proc/{child}/cmdline", "rb") as fh:
            if b"spawn_main" in fh.read():
                found.append(child)
    return found


def test_each_worker_of_serve_workers_sleeps_at_rest_and_all_stop_on_ctrl_c(db, tmp_path):
    """uvicorn's supervisor makes each worker's server itself, on uvicorn's loop that wakes ten times
    a second: two workers at rest woke twenty times a second between them. `serve --workers 2`'s
    workers run `serve`'s server, and a Ctrl-C to the supervisor still stops them all."""
    model = ModelServer(Echo())
    proc, base, _, log = _serve_process(db, tmp_path, model, workers=2, NEXUS_ORG=ORG)
    try:
        url = base.replace("http", "ws") + "/ws/codex"
        for n in range(4):  # the kernel hands each connection to whichever worker accepts first
            assert ask(url, f"hello {n}")[-1]["type"] == "turn.completed"
        workers = _workers(proc.pid)
        assert len(workers) == 2, workers
        time.sleep(1)
        before, started = [_loop_wakeups(w) for w in workers], time.monotonic()
        time.sleep(4)
        woken = [_loop_wakeups(w) - b for w, b in zip(workers, before)]
        seconds = time.monotonic() - started
        for n in woken:
            assert n <= 2 * seconds + 3, f"{woken} wake-ups of the workers' loops in {seconds:.1f} s at rest"
        proc.send_signal(subprocess.signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{w}").exists() for w in workers):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            time.sleep(0.1)
    finally:
        output = _stop(proc, log)
        model.close()
    assert output.count("Application startup complete") == 2, output


def test_should_exit_set_from_another_thread_wakes_the_server(monkeypatch):
    """Tests and embedding code stop the server by setting ``should_exit`` from another thread: with
    an hour between ticks, only the wake-up can end it."""
    import uvicorn

    from nexusleads_lab.server import uvicorn_server

    async def app(scope, receive, send):  # pragma: no cover - never called
        raise AssertionError

    monkeypatch.setattr(uvicorn_server, "TICK_S", 3600.0)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn_server.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    time.sleep(0.3)  # the main loop is waiting on its (hour-long) tick
    server.should_exit = True
    thread.join(timeout=20)
    sock.close()
    assert not thread.is_alive(), "the server did not stop when told"


def test_serve_puts_its_startup_heap_out_of_the_collectors_walk_and_still_frees_later_cycles():
    """A full collection walks every object the collector tracks; a server's imports (pandas,
    pyarrow, pydantic's models) are ~340,000 of them, and under a burst the full collections cost a
    tenth of a turn's CPU. `serve`'s app (and `--workers`' factory) freezes what it holds when it
    starts; sessions made later are still freed when they end, cycles included."""
    import gc
    import weakref

    from fastapi.testclient import TestClient

    from nexusleads_lab.server.app import APP_FACTORY, serving_app

    assert APP_FACTORY.endswith(":serving_app")

    class Session:  # a session's assistant and its turn refer to each other
        pass

    gc.collect()
    walked_before = len(gc.get_objects())
    try:
        with TestClient(serving_app()):  # its lifespan runs as under uvicorn
            frozen, walked = gc.get_freeze_count(), len(gc.get_objects())
            a, b = Session(), Session()
            a.peer, b.peer = b, a
            gone = weakref.ref(a)
            del a, b
            gc.collect()
            assert gone() is None, "a cycle made after the start was not freed"
    finally:
        gc.unfreeze()
    assert frozen >= walked_before * 0.9, (frozen, walked_before)
    assert walked < walked_before // 10, (walked, walked_before)
