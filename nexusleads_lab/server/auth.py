"""Who is asking the server: a verified token's claims, or the local user on a loopback host.

With a secret every request carries an HS256 JWT (``sub`` = user, ``org`` = one organization's
slug, ``exp`` required and at most ``NEXUS_TOKEN_MAX_HOURS`` ahead; ``aud``/``iss`` checked when
``NEXUS_AUTH_AUDIENCE``/``NEXUS_AUTH_ISSUER`` are set) as ``Authorization: Bearer``, the
``nexus_session`` cookie or, on a WebSocket, ``?token=``. The organization scope comes from the
verified ``org`` claim only, and a token can never name every organization: that scope exists
only for the local user without a secret, who is served on loopback only.

``verify_token(token, settings)`` is the one check, shared by every transport that takes tokens.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt

from ..config import ServeLimits, current_org, current_user

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

COOKIE = "nexus_session"
ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_USER = 200
LEEWAY_S = 5  # clock skew tolerated between the issuer and this server


@dataclass(frozen=True)
class Identity:
    user: str
    org: str | None  # None only for the local user without NEXUS_ORG (every organization)


@dataclass(frozen=True)
class AuthSettings:
    """How tokens are checked: the secret and the bounds on their claims."""

    secret: str
    max_hours: float = 24.0
    audience: str | None = None
    issuer: str | None = None

    @classmethod
    def from_env(cls, secret: str) -> AuthSettings:
        limits = ServeLimits.from_env()
        return cls(secret, limits.token_max_hours, limits.audience, limits.issuer)


class Unauthorized(Exception):
    """No valid token; the reason stays in the server's log, the caller learns nothing more."""


def secret_refusal(secret: str | None) -> str | None:
    """Why ``secret`` cannot sign tokens (None: it can)."""
    if secret is None or len(secret.encode()) >= MIN_SECRET_BYTES:
        return None
    return (
        f"NEXUS_AUTH_SECRET is {len(secret.encode())} bytes long; an HS256 secret needs at least "
        f"{MIN_SECRET_BYTES} random bytes, or anyone can guess it and sign tokens. Generate one with "
        '`python -c "import secrets; print(secrets.token_urlsafe(48))"` and give the same value to '
        "whatever issues the tokens."
    )


def valid_org(org: object) -> bool:
    return isinstance(org, str) and SLUG.match(org) is not None


def valid_user(user: object) -> bool:
    """A user name: printable text; NUL (which the database cannot hold, so ``alice\\0`` would
    become ``alice\\ufffd``) and other control characters are refused, not rewritten."""
    return (
        isinstance(user, str)
        and 0 < len(user) <= MAX_USER
        and user == user.strip()
        and user.isprintable()
        and not any(0xD800 <= ord(c) <= 0xDFFF for c in user)
    )


def verify_token(token: str, settings: AuthSettings) -> Identity:
    """The identity a token proves, or ``Unauthorized`` (whose text is for the server's log)."""
    return _verified(token, settings)[0]


def _verified(token: str, settings: AuthSettings) -> tuple[Identity, float]:
    """``verify_token``'s identity and the token's ``exp``."""
    options = {
        "require": ["exp", "sub", "org"] + (["aud"] if settings.audience else []) + (["iss"] if settings.issuer else [])
    }
    try:
        claims = jwt.decode(
            token,
            settings.secret,
            algorithms=[ALGORITHM],
            options=options,  # type: ignore[arg-type]
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=LEEWAY_S,
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    except Exception as exc:  # malformed claims a JWT library did not expect (deep JSON, odd types)
        raise Unauthorized(f"unreadable token: {type(exc).__name__}") from None
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp - time.time() > settings.max_hours * 3600 + LEEWAY_S:
        raise Unauthorized(f"exp is more than NEXUS_TOKEN_MAX_HOURS={settings.max_hours:g} hours ahead")
    user, org = claims.get("sub"), claims.get("org")
    if not valid_user(user):
        raise Unauthorized("sub must be a printable user name without control characters")
    if not valid_org(org):
        raise Unauthorized("org must be one organization's slug (lower-case letters, digits, dashes)")
    return Identity(user=user, org=org), int(exp)  # type: ignore[arg-type]  # int: as jwt.decode reads exp


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


def bearer(
    headers: Mapping[str, str], cookies: Mapping[str, str], query: Mapping[str, str] | None = None
) -> str | None:
    """The request's token: header first, then cookie, then (WebSocket only) ``?token=``."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return cookies.get(COOKIE) or (query or {}).get("token") or None


class Authenticator:
    """Who a request's token proves. A token verified once is remembered (the last
    ``REMEMBERED`` of them) until its ``exp``: every check ``verify_token`` makes of a valid token
    stays true until then (the secret, audience and issuer are the authenticator's, ``nbf`` and
    ``iat`` only pass more easily later), and decoding one was ~70 µs of the event loop per
    request and socket."""

    REMEMBERED = 1024

    def __init__(self, settings: AuthSettings | None, local: Identity | None = None) -> None:
        self.settings = settings
        self.local = local or Identity(user=current_user(), org=current_org())
        self._known: OrderedDict[str, tuple[Identity, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def secret(self) -> str | None:
        return self.settings.secret if self.settings else None

    def verify(self, token: str | None) -> Identity:
        if self.settings is None:
            return self.local
        if not token:
            raise Unauthorized("no token")
        with self._lock:
            known = self._known.get(token)
            if known is not None:
                self._known.move_to_end(token)
        if known is not None and known[1] > time.time() - LEEWAY_S:  # as jwt.decode checks exp
            return known[0]
        try:
            identity, exp = _verified(token, self.settings)
        except Unauthorized:
            with self._lock:
                self._known.pop(token, None)
            raise
        with self._lock:
            self._known[token] = (identity, exp)
            if len(self._known) > self.REMEMBERED:
                self._known.popitem(last=False)
        return identity

    def identify(self, conn: HTTPConnection, *, query: bool = False) -> Identity:
        """The caller of one request or socket (``query``: a ``?token=`` counts too). The local user
        needs no token, so the headers, cookies and query are read only with a secret."""
        if self.settings is None:
            return self.local
        return self.verify(bearer(conn.headers, conn.cookies, conn.query_params if query else None))


def issue_token(secret: str, user: str, org: str, ttl_seconds: int = 3600, **claims: object) -> str:
    """A token for ``user`` in ``org`` (for tests and for an operator's scripts)."""
    now = int(time.time())
    payload = {"sub": user, "org": org, "iat": now, "exp": now + ttl_seconds, **claims}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)
