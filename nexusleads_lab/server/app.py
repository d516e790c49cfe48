"""The ASGI application: one FastAPI app over ``Assistant``s made for each verified caller.

One process holds one ``Database``, whose bounded pools are the only database connections its
sessions use (per organization: ``NEXUS_POOL_SIZE`` for reads, ``NEXUS_STORE_POOL_SIZE`` for the
conversation store, one writer), one model client with a bounded connection pool that every
session shares, one bounded pool of turn threads and one of tool threads, whatever the number of
sessions. A turn waits for the model on its thread, holding no connection.

Before any route: the Host and Origin rules (``guard``); before a socket is accepted: its token,
its organization and its identity's share (``ws``); every client connection under the budget of
``connections``; every log record without tokens (``logs``).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..agent.assistant import Assistant
from ..config import ServeLimits, allowed_origins, auth_secret, current_org, current_user, serve_turns
from ..safetext import without_surrogates
from . import logs
from .auth import Authenticator, AuthSettings, Identity, secret_refusal
from .errors import incident
from .guard import ASGIApp, Guard, Receive, Scope, Send
from .quota import Quota
from .tenancy import Tenants

# The transport's limit: a chat frame is capped lower (ws.MAX_MESSAGE, 1 MiB of text) and
# answered with an `error` on a connection that stays open; a frame beyond this closes it (1009).
WS_MAX_SIZE = 4 * 1024 * 1024
APP_FACTORY = "nexusleads_lab.server.app:serving_app"
HTTP_PROTOCOL = "nexusleads_lab.server.connections:GuardedH11Protocol"
WS_PROTOCOL = "nexusleads_lab.server.connections:WebSocketProtocol"
# libuv's event loop (uvloop): its polling, callbacks, transports and cross-thread wake-ups in C
# are ~0.6 ms less of the loop's CPU per /ws/codex session than asyncio's (benchmarks/bench_ws.py).
LOOP = "asyncio" if sys.platform == "win32" else "uvloop"

# No permessage-deflate on sockets: the protocol's frames are a few hundred bytes of JSON, where
# zlib saves little, while each connection's compressor and decompressor cost ~300 KiB of memory
# and every frame a compression pass (benchmarks/profile_turn.py, bench_server.py).
WS_PER_MESSAGE_DEFLATE = False

AssistantFactory = Callable[[Identity], Assistant]
log = logging.getLogger(__name__)


@dataclass
class ServerState:
    auth: Authenticator
    make_assistant: AssistantFactory
    turns: ThreadPoolExecutor  # every turn, resume and close of this process runs here
    tools: ThreadPoolExecutor
    max_turns: int
    locks: Any = None  # ws.ConversationLocks: one turn at a time per conversation in this process
    tenants: Any = None  # tenancy.Tenants
    quota: Any = None  # quota.Quota
    model_client: Any = None  # the process's shared model client (None: each assistant makes its own)

    def close(self) -> None:
        self.turns.shutdown(wait=False, cancel_futures=True)
        self.tools.shutdown(wait=False, cancel_futures=True)
        if self.model_client is not None:
            with contextlib.suppress(Exception):
                self.model_client.close()


class SharedSkills:
    """The process's skills, found again at most every ``max_age_s``: every session of a server
    starts in the same folder, and listing the skill folders for each new session was ~1 ms of
    its CPU. A skill added or edited on disk reaches new sessions within ``max_age_s``."""

    def __init__(self, max_age_s: float = 2.0) -> None:
        self._max_age_s = max_age_s
        self._found: Any = None
        self._at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        from ..agent.skills import discover_skills

        with self._lock:
            now = time.monotonic()
            if self._found is None or now - self._at > self._max_age_s:
                self._found, self._at = discover_skills(), now
            return self._found


SocketHandler = Callable[[WebSocket], Any]


class App(FastAPI):
    """FastAPI, whose sockets (``/ws/codex``, ``/ws/panel``) are served before its middleware
    and router: the same handler, behind the same ``Guard``, given a Starlette ``WebSocket``
    directly. The way through FastAPI's middleware (its error, telemetry, body-limit and
    exception layers, each wrapping every frame sent), its router and its dependency solving was
    a third of the event loop's CPU for a connection (``benchmarks/bench_ws.py``). Every socket is
    a route too (``add_socket``): a scope this shortcut does not take (an ASGI ``root_path``) goes
    that way, with the same rules."""

    def __init__(self, *, guard: Callable[[ASGIApp], Guard], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._guard = guard
        self._sockets: dict[str, ASGIApp] = {}

    def add_socket(self, path: str, handler: SocketHandler) -> None:
        async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            await handler(WebSocket(scope, receive, send))

        self._sockets[path] = self._guard(endpoint)
        self.add_api_websocket_route(path, handler)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not self.root_path and not scope.get("root_path"):
            socket = self._sockets.get(scope["path"])
            if socket is not None:
                scope["app"] = self
                return await socket(scope, receive, send)
        await super().__call__(scope, receive, send)


def secret_from_env() -> str | None:
    return auth_secret()


def shared_model_client(max_connections: int) -> Any:
    """One model client for every session of the process, its connection pool bounded; None
    when no model is configured (each turn then says what to set)."""
    from ..agent.provider import ModelConfigError, ModelSettings, make_client

    try:
        return make_client(ModelSettings.from_env(), max_connections=max_connections)
    except ModelConfigError:
        return None


def create_app(
    *,
    secret: str | None = None,
    database: Any = None,
    client: Any = None,
    assistant_factory: AssistantFactory | None = None,
    local: Identity | None = None,
    max_turns: int | None = None,
    limits: ServeLimits | None = None,
    freeze_heap: bool = False,
) -> App:
    """The server's app. ``secret`` (default ``NEXUS_AUTH_SECRET``; at least 32 bytes) turns on
    token identity; ``database`` and ``client`` (an ``openai.OpenAI``) default to the
    environment's (one of each for the whole process); ``max_turns`` (default
    ``NEXUS_SERVE_TURNS``, 256) bounds the turns running at once; ``limits`` (default
    ``ServeLimits.from_env()``) what each user and address gets; ``assistant_factory`` replaces
    how an assistant is made for a caller. ``freeze_heap``: when the app starts, what the
    process holds is put out of the cyclic collector's way (``settle_heap``; a server process's
    own, as ``serve`` runs it, not one shared with other work)."""
    from . import page, rest, ws

    secret = secret if secret is not None else auth_secret()
    refusal = secret_refusal(secret or None)
    if refusal:
        raise ValueError(refusal)
    limits = limits or ServeLimits.from_env()
    logs.install()
    turns = max_turns or serve_turns()
    turn_pool = ThreadPoolExecutor(max_workers=turns, thread_name_prefix="nexus-turn")
    tool_pool = ThreadPoolExecutor(max_workers=turns, thread_name_prefix="nexus-tool")
    model_client = None if client is not None else shared_model_client(turns)
    shared: list[Any] = [database]
    shared_lock = threading.Lock()

    def the_database() -> Any:
        with shared_lock:
            if shared[0] is None:
                from ..db.database import get_database

                shared[0] = get_database()
            return shared[0]

    skills = SharedSkills()

    def make_assistant(identity: Identity) -> Assistant:
        return Assistant(
            database=the_database(),
            client=client or model_client,
            user=identity.user,
            org=identity.org,
            tool_pool=tool_pool,
            turn_pool=turn_pool,
            pooled_store=True,
            skills=skills(),
        )

    settings = None
    if secret:
        settings = AuthSettings(secret, limits.token_max_hours, limits.audience, limits.issuer)
    state = ServerState(
        auth=Authenticator(settings, local),
        make_assistant=assistant_factory or make_assistant,
        turns=turn_pool,
        tools=tool_pool,
        max_turns=turns,
        locks=ws.ConversationLocks(),
        tenants=Tenants(the_database),
        quota=Quota(limits.turns_per_user, limits.sessions_per_user),
        model_client=model_client,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if freeze_heap:
            settle_heap()
        try:
            yield
        finally:
            state.close()

    docs = limits.api_docs  # Swagger UI and ReDoc load their scripts from a CDN
    origins = allowed_origins()
    local_only = settings is None
    app = App(
        guard=lambda inner: Guard(inner, local=local_only, allowed_origins=origins),
        title="NexusLeads Lab",
        description="The PLG Lead Sourcer chat: the `/ws/codex` WebSocket protocol and the conversation API.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.state.nexus = state
    app.include_router(rest.router)
    app.add_socket("/ws/codex", ws.codex)
    page.mount_page(app)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(Exception, _failed)
    app.add_middleware(Guard, local=local_only, allowed_origins=origins)
    return app


def serving_app() -> App:
    """The app as ``serve`` runs it (uvicorn's factory in each ``--workers`` process)."""
    return create_app(freeze_heap=True)


def settle_heap() -> None:
    """Move what the process holds at start (its imports, pandas, pyarrow, pydantic's models,
    the app) out of the cyclic collector's generations (``gc.freeze``), after one collection frees
    what is garbage already. A full collection walks every object it tracks, every thread stopped
    meanwhile: the ~340,000 a server's imports hold took ~175 ms here, and with 50 turns at once
    the full collections cost ~0.6 ms of CPU a turn, 0.2 ms frozen (``benchmarks/profile_turn.py
    --phases``). What is made later (sessions, turns) is collected as before; a frozen object
    still goes when its last reference does, and only a cycle among frozen objects outlives its
    use, which the startup's modules and pools never do before the process ends."""
    gc.collect()
    gc.freeze()


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, without echoing the input (it may hold what JSON cannot encode)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{"loc": list(e.get("loc", ())), "msg": without_surrogates(str(e.get("msg", "")))} for e in errors]
    return JSONResponse({"detail": detail}, 422)


async def _too_deep(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "The request body is nested too deeply to read; send a flat JSON object."}, 400)


async def _failed(request: Request, exc: Exception) -> JSONResponse:
    error_id = incident(f"{request.method} {request.url.path} failed", exc)
    return JSONResponse({"detail": f"The server failed to answer (error id {error_id}); try again."}, 500)


def describe_scope(secret: str | None) -> str:
    """What ``nexus-lab serve`` says at start about whom it answers for."""

    if secret:
        return (
            "Serving each token's own organization (its verified org claim); a token cannot ask for every organization."
        )
    org = current_org()
    if org:
        return f"Serving as the local user {current_user()} in organization {org} (NEXUS_ORG), on loopback only."
    return (
        f"Serving as the local user {current_user()} across EVERY organization (NEXUS_ORG is not set), on "
        "loopback only. Set NEXUS_ORG=<organization slug> to serve one organization."
    )


def serve(host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    from .connections import default_budget

    budget = default_budget()
    print(describe_scope(auth_secret()), file=sys.stderr)
    print(f"Connections: {budget.describe()}.", file=sys.stderr)
    options: dict[str, Any] = dict(
        host=host,
        port=port,
        ws_max_size=WS_MAX_SIZE,
        log_level="info",
        http=HTTP_PROTOCOL,
        ws=WS_PROTOCOL,
        loop=LOOP,
        timeout_keep_alive=5,
        ws_per_message_deflate=WS_PER_MESSAGE_DEFLATE,
    )
    from .uvicorn_server import Server, run_workers  # uvicorn.run's, on a server that idles quietly

    if workers > 1:  # each worker process builds its own app (and its own pools) from the factory
        with contextlib.suppress(KeyboardInterrupt):
            run_workers(uvicorn.Config(APP_FACTORY, factory=True, workers=workers, **options))
        return

    server = Server(uvicorn.Config(serving_app(), **options))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE
