"""Which pages may talk to the server, checked before any route runs (Jupyter Server's model).

- **Host** (``local_hostnames``): without a secret the server is the local user's own, so every
  request and handshake must name a loopback host (``localhost``, ``127.0.0.1``, ``[::1]``); a
  DNS-rebound name (``attacker.example`` resolving to 127.0.0.1) makes the page same-origin with
  the server, and only the ``Host`` header still tells it apart.
- **Origin** (``allow_origin``): a WebSocket handshake or a state-changing request (POST, PUT,
  PATCH, DELETE) that carries an ``Origin`` must come from the server's own origin or one listed in
  ``NEXUS_ALLOWED_ORIGINS``. Another port or a sibling subdomain is the same *site*, so the
  ``nexus_session`` cookie goes with its requests whatever ``SameSite`` says: only the origin check
  stops such a page. A request without ``Origin`` is not a browser's cross-origin one.
- **Content type**: a POST, PUT or PATCH must be ``application/json``; a page elsewhere can send
  an HTML form's types without asking, but JSON only after a CORS preflight this server never grants.

Refusals are a 403 (415 for the content type) or a refused handshake (HTTP 403), before the app.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from .auth import is_loopback

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def host_name(host: str) -> str:
    try:
        return urlsplit(f"//{host}").hostname or ""
    except ValueError:  # a malformed port or bracket
        return ""


@functools.lru_cache(maxsize=1024)  # a handful of hosts and origins; each check was a URL parse per request
def loopback_host(host: str) -> bool:
    """``host`` (a ``Host`` header) names a loopback address."""
    return is_loopback(host_name(host))


@functools.lru_cache(maxsize=1024)
def same_origin(origin: str, host: str, allowed: frozenset[str]) -> bool:
    """``origin`` (a browser's ``Origin`` header) is this server's own page, or an allowed one."""
    origin = origin.strip().rstrip("/").lower()
    if origin in allowed or "*" in allowed:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc == host.strip().lower()


class Guard:
    """ASGI middleware: the Host, Origin and content-type rules above, for every route."""

    def __init__(self, app: ASGIApp, *, local: bool, allowed_origins: frozenset[str]) -> None:
        self.app = app
        self.local = local
        self.allowed = allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        refusal = self.refusal(scope)
        if refusal is None:
            return await self.app(scope, receive, send)
        status, reason = refusal
        log.info(
            "refused %s %s: %s (origin %r, host %r)",
            scope["type"],
            scope.get("path"),
            reason,
            _header(scope, b"origin"),
            _header(scope, b"host"),
        )
        if scope["type"] == "websocket":
            await refuse_handshake(scope, send, status, reason)
        else:
            await respond(send, status, reason)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        host = _header(scope, b"host") or ""
        if self.local and not loopback_host(host):
            return 403, "This server answers only on a loopback address (localhost, 127.0.0.1, [::1])."
        method = scope.get("method", "GET")
        origin = _header(scope, b"origin")
        checked = scope["type"] == "websocket" or method in CHANGES
        if checked and origin is not None and not same_origin(origin, host, self.allowed):
            return 403, "Cross-origin request refused: only this server's own pages (or NEXUS_ALLOWED_ORIGINS) may."
        if scope["type"] == "http" and method in WITH_BODY:
            kind = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if kind != "application/json":
                return 415, "Send the request body as JSON, with Content-Type: application/json."
        return None


async def respond(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def refuse_handshake(scope: Scope, send: Send, status: int, detail: str) -> None:
    """Refuse a WebSocket handshake with an HTTP status, before it is accepted: the client never
    gets an open socket to send frames into. Without the server's denial-response extension the
    status is 403 (a close before accept)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})
