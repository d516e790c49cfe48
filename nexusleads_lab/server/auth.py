"""Who is asking the server: a verified token's claims, or the local user on a loopback host.

With a secret every request carries an HS256 JWT (``sub`` = user, ``org`` = organization slug,
``exp`` required and honoured) as ``Authorization: Bearer``, the ``nexus_session`` cookie or, on a
WebSocket, ``?token=``. The organization scope comes from the verified ``org`` claim only.
Without a secret the server is the local user's own (the original's local-development mode) and
binds to loopback only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from ..config import current_org, current_user

COOKIE = "nexus_session"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Identity:
    user: str
    org: str | None  # None only for the local user without NEXUS_ORG (every organization)


class Unauthorized(Exception):
    """No valid token; the reason stays in the server's log, the caller learns nothing more."""


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_refusal(host: str, secret: str | None) -> str | None:
    """Why the server must not listen on ``host`` (None: it may)."""
    if secret or is_loopback(host):
        return None
    return (
        f"Refusing to serve on {host}: without NEXUS_AUTH_SECRET the server answers as the local user "
        f"({current_user()}), so it only listens on a loopback address such as 127.0.0.1. Set "
        "NEXUS_AUTH_SECRET (tokens are HS256 JWTs with sub = user and org = organization slug) to serve "
        "other hosts, or use --host 127.0.0.1."
    )


class Authenticator:
    def __init__(self, secret: str | None, local: Identity | None = None) -> None:
        self.secret = secret or None
        self.local = local or Identity(user=current_user(), org=current_org())

    def verify(self, token: str | None) -> Identity:
        if self.secret is None:
            return self.local
        if not token:
            raise Unauthorized("no token")
        try:
            claims = jwt.decode(token, self.secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "org"]})
        except jwt.PyJWTError as exc:
            raise Unauthorized(str(exc)) from None
        user, org = claims.get("sub"), claims.get("org")
        if not isinstance(user, str) or not user.strip() or not isinstance(org, str) or not org.strip():
            raise Unauthorized("sub and org must be non-empty strings")
        return Identity(user=user.strip(), org=org.strip())

    def identify(
        self, headers: Mapping[str, str], cookies: Mapping[str, str], query: Mapping[str, str] | None = None
    ) -> Identity:
        """The caller of one request: header first, then cookie, then (WebSocket only) ``?token=``."""
        token = None
        authorization = headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            token = credentials.strip()
        token = token or cookies.get(COOKIE) or (query or {}).get("token")
        return self.verify(token)


def issue_token(secret: str, user: str, org: str, ttl_seconds: int = 3600) -> str:
    """A token for ``user`` in ``org`` (for tests and for an operator's scripts)."""
    import time

    now = int(time.time())
    return jwt.encode({"sub": user, "org": org, "iat": now, "exp": now + ttl_seconds}, secret, algorithm=ALGORITHM)
