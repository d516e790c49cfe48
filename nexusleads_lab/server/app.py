"""The ASGI application: one FastAPI app over ``Assistant``s made for each verified caller.

One process holds one ``Database``, whose bounded pools are the only database connections its
sessions use (per organization: ``NEXUS_POOL_SIZE`` for reads, ``NEXUS_STORE_POOL_SIZE`` for the
conversation store, one writer), one bounded pool of turn threads and one of tool threads,
whatever the number of sessions. A turn waits for the model on its thread, holding no connection.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from ..agent.assistant import Assistant
from ..config import auth_secret, serve_turns
from .auth import Authenticator, Identity

# Frames up to this size reach the protocol, which answers an oversized message with an `error`
# event on a connection that stays open (the transport's own limit would close it).
WS_MAX_SIZE = 16 * 1024 * 1024
APP_FACTORY = "nexusleads_lab.server.app:create_app"

AssistantFactory = Callable[[Identity], Assistant]


@dataclass
class ServerState:
    auth: Authenticator
    make_assistant: AssistantFactory
    turns: ThreadPoolExecutor  # every turn, resume and close of this process runs here
    tools: ThreadPoolExecutor
    max_turns: int
    locks: Any = None  # ws.ConversationLocks: one turn at a time per conversation in this process

    def close(self) -> None:
        self.turns.shutdown(wait=False, cancel_futures=True)
        self.tools.shutdown(wait=False, cancel_futures=True)


def secret_from_env() -> str | None:
    return auth_secret()


def create_app(
    *,
    secret: str | None = None,
    database: Any = None,
    client: Any = None,
    assistant_factory: AssistantFactory | None = None,
    local: Identity | None = None,
    max_turns: int | None = None,
) -> FastAPI:
    """The server's app. ``secret`` (default ``NEXUS_AUTH_SECRET``) turns on token identity;
    ``database`` and ``client`` (an ``openai.OpenAI``) default to the environment's, as
    ``Assistant()``'s do (one ``Database`` for the whole process); ``max_turns`` (default
    ``NEXUS_SERVE_TURNS``, 256) bounds the turns running at once; ``assistant_factory`` replaces
    how an assistant is made for a caller. Called without arguments it is uvicorn's factory."""
    from . import page, rest, ws

    turns = max_turns or serve_turns()
    turn_pool = ThreadPoolExecutor(max_workers=turns, thread_name_prefix="nexus-turn")
    tool_pool = ThreadPoolExecutor(max_workers=turns, thread_name_prefix="nexus-tool")
    shared: list[Any] = [database]
    shared_lock = threading.Lock()

    def the_database() -> Any:
        with shared_lock:
            if shared[0] is None:
                from ..db.database import get_database

                shared[0] = get_database()
            return shared[0]

    def make_assistant(identity: Identity) -> Assistant:
        return Assistant(database=the_database(), client=client, user=identity.user, org=identity.org,
                         tool_pool=tool_pool, pooled_store=True)  # fmt: skip

    state = ServerState(
        auth=Authenticator(secret if secret is not None else auth_secret(), local),
        make_assistant=assistant_factory or make_assistant,
        turns=turn_pool,
        tools=tool_pool,
        max_turns=turns,
        locks=ws.ConversationLocks(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="NexusLeads Lab",
        description="The PLG Lead Sourcer chat: the `/ws/codex` WebSocket protocol and the conversation API.",
        lifespan=lifespan,
    )
    app.state.nexus = state
    app.include_router(rest.router)
    app.add_api_websocket_route("/ws/codex", ws.codex)
    page.mount_page(app)
    return app


def serve(host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    if workers > 1:  # each worker process builds its own app (and its own pools) from the factory
        uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers,
                    ws_max_size=WS_MAX_SIZE, log_level="info")  # fmt: skip
        return
    uvicorn.run(create_app(), host=host, port=port, ws_max_size=WS_MAX_SIZE, log_level="info")
