"""The ASGI application: one FastAPI app over ``Assistant``s made for each verified caller."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from ..agent.assistant import Assistant
from .auth import Authenticator, Identity

SECRET_ENV = "NEXUS_AUTH_SECRET"
# Frames up to this size reach the protocol, which answers an oversized message with an `error`
# event on a connection that stays open (the transport's own limit would close it).
WS_MAX_SIZE = 16 * 1024 * 1024

AssistantFactory = Callable[[Identity], Assistant]


@dataclass(frozen=True)
class ServerState:
    auth: Authenticator
    make_assistant: AssistantFactory


def secret_from_env() -> str | None:
    return os.environ.get(SECRET_ENV, "").strip() or None


def create_app(
    *,
    secret: str | None = None,
    database: Any = None,
    client: Any = None,
    assistant_factory: AssistantFactory | None = None,
    local: Identity | None = None,
) -> FastAPI:
    """The server's app. ``secret`` (default ``NEXUS_AUTH_SECRET``) turns on token identity;
    ``database`` and ``client`` (an ``openai.OpenAI``) default to the environment's, as
    ``Assistant()``'s do; ``assistant_factory`` replaces how an assistant is made for a caller."""
    from . import page, rest, ws

    def make_assistant(identity: Identity) -> Assistant:
        return Assistant(database=database, client=client, user=identity.user, org=identity.org)

    app = FastAPI(
        title="NexusLeads Lab",
        description="The PLG Lead Sourcer chat: the `/ws/codex` WebSocket protocol and the conversation API.",
    )
    app.state.nexus = ServerState(
        auth=Authenticator(secret if secret is not None else secret_from_env(), local),
        make_assistant=assistant_factory or make_assistant,
    )
    app.include_router(rest.router)
    app.add_api_websocket_route("/ws/codex", ws.codex)
    page.mount_page(app)
    return app


def serve(host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(create_app(), host=host, port=port, ws_max_size=WS_MAX_SIZE, log_level="info")
