"""``nexus-lab mcp --http``: MCP's streamable HTTP transport at ``/mcp``, stateless, behind the
same token rules as ``nexus-lab serve``.

Every request is judged before the SDK sees it: a foreign ``Origin`` gets 403 (the MCP spec asks
servers to check it: a web page must not drive a local server), and the caller comes from
``Authorization: Bearer`` verified by ``server.auth.Authenticator`` only (no cookie, no query
token); a missing or bad token gets 401. Without a secret the server is the local user's, so it
answers only requests addressed to a loopback host (DNS rebinding) and binds only to loopback.
Stateless: no session lives in a process, so replicas behind a load balancer share one database.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..server.auth import Authenticator, AuthSettings, Unauthorized, is_loopback
from .server import IDENTITY_KEY

log = logging.getLogger(__name__)
ENDPOINT = "/mcp"


class Gate:
    """ASGI middleware: Origin, Host and the bearer token, then the caller in the request state."""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            log.info("mcp request refused: foreign origin %r", origin)
            await _refuse(scope, receive, send, 403, "This origin may not use the MCP endpoint.")
            return
        if self.auth.secret is None and not is_loopback(_host_name(host)):
            log.info("mcp request refused: host %r without a secret", host)
            await _refuse(scope, receive, send, 403, "Without NEXUS_AUTH_SECRET only a loopback host is served.")
            return
        scheme, _, token = headers.get("authorization", "").partition(" ")
        try:
            identity = self.auth.verify(token.strip() if scheme.lower() == "bearer" else None)
        except Unauthorized as exc:
            log.info("mcp request refused: %s", exc)  # the reason stays here; the caller learns nothing more
            await _refuse(
                scope,
                receive,
                send,
                401,
                "A valid bearer token is required.",
                {"www-authenticate": 'Bearer realm="nexus-lab"'},
            )
            return
        scope.setdefault("state", {})[IDENTITY_KEY] = identity
        await self.app(scope, receive, send)


async def _refuse(scope, receive, send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    await JSONResponse({"error": message}, status_code=status, headers=headers)(scope, receive, send)


def _host_name(host: str) -> str:
    """The name in a Host header: without its port, IPv6 brackets kept apart."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def create_app(database, secret: str | None) -> ASGIApp:
    """The HTTP app: the SDK's stateless streamable-HTTP app behind the ``Gate``."""
    from mcp.server.transport_security import TransportSecuritySettings

    from .server import build_server

    server = build_server(database)
    app = server.streamable_http_app(
        streamable_http_path=ENDPOINT,
        stateless_http=True,
        json_response=True,
        # The Gate checks Origin and Host for every address, not the SDK's loopback-only list.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    # The same token rules as `nexus-lab serve`: org a slug, exp required and bounded, aud/iss when set.
    return Gate(app, Authenticator(AuthSettings.from_env(secret) if secret else None))


def serve_http(database, host: str, port: int, secret: str | None) -> None:
    import uvicorn

    uvicorn.run(create_app(database, secret), host=host, port=port, log_level="info")
