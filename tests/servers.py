"""Servers for tests: ``nexus-lab serve``'s app on uvicorn in a thread (``LiveServer``), the ``serve``
fixture's factory of them (``Servers``), and the protocol socket's small client helpers."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import openai
import uvicorn
from websockets.sync.client import ClientConnection

from nexusleads_lab.config import ServeLimits
from nexusleads_lab.db.demo import ORGS
from nexusleads_lab.server import create_app
from nexusleads_lab.server.app import WS_MAX_SIZE
from nexusleads_lab.server.auth import Identity
from nexusleads_lab.server.connections import ConnectionBudget, WebSocketProtocol, guarded_protocol
from nexusleads_lab.server.uvicorn_server import Server
from nexusleads_lab.testing.modelserver import ModelServer, Script

ORG, OTHER_ORG = ORGS[0][0], ORGS[1][0]
SECRET = "test-secret-" + uuid.uuid4().hex
END = ("turn.completed", "error")


class LiveServer:
    """The app on uvicorn in a thread, on a free loopback port, with the connection rules of
    ``nexus-lab serve`` (``budget``: its own, default 200 connections, 5 s for headers)."""

    def __init__(self, app, budget: ConnectionBudget | None = None) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        port = self.socket.getsockname()[1]
        self.budget = budget or ConnectionBudget(total=200, per_address=200, header_timeout_s=5.0)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws_max_size=WS_MAX_SIZE,
            http=guarded_protocol(self.budget),
            ws=WebSocketProtocol,
        )
        self.server = Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/ws/codex"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.socket.close()


class Servers:
    """What the ``serve`` fixture hands a test: ``start(steps, ...)`` makes a ``LiveServer`` over the
    test database and a scripted model; ``close()`` stops every one (and its model)."""

    def __init__(self, db) -> None:
        self.db = db
        self.running: list[tuple[LiveServer, ModelServer | None]] = []

    def start(
        self,
        steps=(),
        *,
        secret: str = "",
        user: str | None = None,
        max_turns: int | None = None,
        database=None,
        replica_of: LiveServer | None = None,
        limits: ServeLimits | None = None,
        budget: ConnectionBudget | None = None,
    ) -> LiveServer:
        """A server; ``replica_of`` another: a second process's app over the same database, as
        the same local user, with the same model."""
        model = replica_of.model if replica_of else ModelServer(Script(list(steps)))
        client = openai.OpenAI(base_url=model.base_url, api_key="k", max_retries=0)
        local = replica_of.local if replica_of else Identity(user=user or f"srv-{uuid.uuid4().hex[:8]}", org=ORG)
        app = create_app(
            secret=secret,
            database=database or self.db,
            client=client,
            local=local,
            max_turns=max_turns,
            limits=limits or ServeLimits(),
        )
        live = LiveServer(app, budget)
        live.model, live.local = model, local
        self.running.append((live, None if replica_of else model))
        return live

    def close(self) -> None:
        for live, model in self.running:
            live.close()
            if model is not None:
                model.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send(ws: ClientConnection, **frame) -> None:
    ws.send(json.dumps(frame))


def until_end(ws: ClientConnection, timeout: float = 30) -> list[dict]:
    """Frames up to and including the turn's end (turn.completed or error)."""
    frames = []
    while True:
        frames.append(json.loads(ws.recv(timeout=timeout)))
        if frames[-1]["type"] in END:
            return frames
