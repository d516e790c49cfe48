"""Settings read from the environment: one place that knows every variable the product honours."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePath

import platformdirs

PACKAGE_DIR = Path(__file__).resolve().parent


def data_home() -> Path:
    """Per-user folder for the embedded database and other local state (``NEXUS_HOME`` overrides)."""
    override = os.environ.get("NEXUS_HOME")
    return Path(override).expanduser() if override else Path(platformdirs.user_data_dir("nexusleads-lab"))


def current_user() -> str:
    """Who is asking: ``NEXUS_USER``, else the JupyterHub user, else the OS user."""
    for var in ("NEXUS_USER", "JUPYTERHUB_USER"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "analyst"


def current_org() -> str | None:
    """The organization slug this session is scoped to (``NEXUS_ORG``), or None for every
    organization (the explicit admin scope)."""
    return os.environ.get("NEXUS_ORG", "").strip() or None


def auth_secret() -> str | None:
    """``nexus-lab serve``'s token secret (``NEXUS_AUTH_SECRET``): with it every request carries a
    signed token; without it the server answers only on loopback, as the local user."""
    return os.environ.get("NEXUS_AUTH_SECRET", "").strip() or None


def serve_turns(default: int = 256) -> int:
    """How many turns one ``nexus-lab serve`` process runs at once (``NEXUS_SERVE_TURNS``); more wait.
    A running turn is a thread waiting for the model; its database work waits for the bounded pools."""
    value = _int_env("NEXUS_SERVE_TURNS", default)
    if value < 1:
        raise ValueError(f"NEXUS_SERVE_TURNS must be at least 1, got {value}")
    return value


def allowed_origins() -> frozenset[str]:
    """Origins besides the server's own whose pages may open its sockets and change its data
    (``NEXUS_ALLOWED_ORIGINS``, comma-separated ``scheme://host[:port]``, e.g. the web app's dev
    server); Jupyter Server's ``allow_origin``."""
    raw = os.environ.get("NEXUS_ALLOWED_ORIGINS", "")
    return frozenset(o.strip().rstrip("/").lower() for o in raw.split(",") if o.strip())


@dataclass(frozen=True)
class ServeLimits:
    """What one ``nexus-lab serve`` process grants each identity and each client address."""

    turns_per_user: int = 4  # NEXUS_MAX_TURNS_PER_USER: turns running or waiting, per user in an org
    sessions_per_user: int = 8  # NEXUS_MAX_SESSIONS_PER_USER: open sockets per user in an org
    connections: int = 0  # NEXUS_MAX_CONNECTIONS: client connections at once (0: half the open-files limit)
    connections_per_address: int = 64  # NEXUS_MAX_CONNECTIONS_PER_ADDRESS
    header_timeout_s: float = 5.0  # NEXUS_HEADER_TIMEOUT_S: a request's headers must be complete by then
    token_max_hours: float = 24.0  # NEXUS_TOKEN_MAX_HOURS: the longest a token may be valid from now
    audience: str | None = None  # NEXUS_AUTH_AUDIENCE: the ``aud`` every token must name, when set
    issuer: str | None = None  # NEXUS_AUTH_ISSUER: the ``iss`` every token must carry, when set
    api_docs: bool = False  # NEXUS_API_DOCS=1: serve /docs and /redoc (they load scripts from a CDN)

    @classmethod
    def from_env(cls) -> ServeLimits:
        limits = cls(
            turns_per_user=_int_env("NEXUS_MAX_TURNS_PER_USER", cls.turns_per_user),
            sessions_per_user=_int_env("NEXUS_MAX_SESSIONS_PER_USER", cls.sessions_per_user),
            connections=_int_env("NEXUS_MAX_CONNECTIONS", cls.connections),
            connections_per_address=_int_env("NEXUS_MAX_CONNECTIONS_PER_ADDRESS", cls.connections_per_address),
            header_timeout_s=_float_env("NEXUS_HEADER_TIMEOUT_S", cls.header_timeout_s),
            token_max_hours=_float_env("NEXUS_TOKEN_MAX_HOURS", cls.token_max_hours),
            audience=os.environ.get("NEXUS_AUTH_AUDIENCE", "").strip() or None,
            issuer=os.environ.get("NEXUS_AUTH_ISSUER", "").strip() or None,
            api_docs=os.environ.get("NEXUS_API_DOCS", "").strip() == "1",
        )
        for name, value in (
            ("NEXUS_MAX_TURNS_PER_USER", limits.turns_per_user),
            ("NEXUS_MAX_SESSIONS_PER_USER", limits.sessions_per_user),
            ("NEXUS_MAX_CONNECTIONS_PER_ADDRESS", limits.connections_per_address),
            ("NEXUS_HEADER_TIMEOUT_S", limits.header_timeout_s),
            ("NEXUS_TOKEN_MAX_HOURS", limits.token_max_hours),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if limits.connections < 0:
            raise ValueError(f"NEXUS_MAX_CONNECTIONS must be 0 (automatic) or positive, got {limits.connections}")
        return limits


# -- who a kernel session asks as ------------------------------------------------------------


def notebook_path() -> str | None:
    """The notebook this kernel runs for: jupyter_server sets ``JPY_SESSION_NAME`` for its kernels
    (the same value after a restart); None in a console, a script or nbclient."""
    return os.environ.get("JPY_SESSION_NAME", "").strip() or None


@dataclass(frozen=True)
class Identity:
    """The user and organization of a kernel session, and where each came from."""

    user: str
    org: str | None
    user_from: str  # "NEXUS_USER", "JUPYTERHUB_USER", "remembered", "the OS user"
    org_from: str  # "NEXUS_ORG", "remembered", "not set"


class RememberedIdentity:
    """The last identity of one notebook (org, user, open conversation, whether the chat panel
    was open), kept in ``NEXUS_HOME`` so that after a kernel restart ``%load_ext nexusleads_lab``
    alone comes back as the same person in the same conversation. Kernels without a notebook
    path share one per-user record. Explicit ``NEXUS_USER`` / ``NEXUS_ORG`` still win."""

    def __init__(self, notebook: str | None = None, home: Path | None = None) -> None:
        self.notebook = notebook
        key = hashlib.sha256(notebook.encode()).hexdigest()[:24] if notebook else "default"
        self.path = (home or data_home()) / "sessions" / f"{key}.json"

    @property
    def where(self) -> str:
        """How status names the record: the notebook's file name (never its folder), or the default."""
        return f"for {PurePath(self.notebook).name}" if self.notebook else "for kernels without a notebook"

    def load(self) -> dict:
        try:
            value = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) and value.get("notebook") == self.notebook else {}

    def update(self, **fields) -> bool:
        """Merge ``fields`` into the record; written only when something changed. True if written."""
        current = self.load()
        merged = {**current, **fields, "notebook": self.notebook}
        if merged == current:
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp = self.path.with_suffix(f".{os.getpid()}.tmp")
            temp.write_text(json.dumps(merged, indent=1))
            os.replace(temp, self.path)
        except OSError:  # a read-only home must not break a question
            return False
        return True

    def resolve(self) -> Identity:
        return resolve_identity(self.load())


def resolve_identity(remembered: dict | None = None) -> Identity:
    """Environment first (an admin's or JupyterHub's choice), then what this notebook last used."""
    remembered = remembered or {}
    user, user_from = None, "the OS user"
    for var in ("NEXUS_USER", "JUPYTERHUB_USER"):
        if os.environ.get(var, "").strip():
            user, user_from = os.environ[var].strip(), var
            break
    if user is None and remembered.get("user"):
        user, user_from = str(remembered["user"]), "remembered"
    org, org_from = current_org(), "NEXUS_ORG"
    if org is None:
        org, org_from = (str(remembered["org"]), "remembered") if remembered.get("org") else (None, "not set")
    return Identity(user or current_user(), org, user_from, org_from)


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class EngineLimits:
    """Bounds every agent read runs under."""

    statement_timeout_ms: int = 15_000
    row_cap: int = 100_000
    result_max_bytes: int = 256 * 1024 * 1024  # Arrow bytes one read may bring into the kernel
    pool_size: int = 4  # read connections open at once per scope, per process (more reads wait)
    store_pool_size: int = 4  # a server's conversation-store connections per scope, per process

    @classmethod
    def from_env(cls) -> EngineLimits:
        limits = cls(
            statement_timeout_ms=_int_env("NEXUS_STATEMENT_TIMEOUT_MS", cls.statement_timeout_ms),
            row_cap=_int_env("NEXUS_ROW_CAP", cls.row_cap),
            result_max_bytes=_int_env("NEXUS_RESULT_MAX_BYTES", cls.result_max_bytes),
            pool_size=_int_env("NEXUS_POOL_SIZE", cls.pool_size),
            store_pool_size=_int_env("NEXUS_STORE_POOL_SIZE", cls.store_pool_size),
        )
        for name, value in (("NEXUS_POOL_SIZE", limits.pool_size), ("NEXUS_STORE_POOL_SIZE", limits.store_pool_size)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        return limits


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    agent_database_url: str | None = None
    writer_database_url: str | None = None
    store_database_url: str | None = None
    org: str | None = None  # NEXUS_ORG: the scope of everything this session runs
    limits: EngineLimits = field(default_factory=EngineLimits)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            agent_database_url=os.environ.get("NEXUS_AGENT_DATABASE_URL") or None,
            writer_database_url=os.environ.get("NEXUS_WRITER_DATABASE_URL") or None,
            store_database_url=os.environ.get("NEXUS_STORE_DATABASE_URL") or None,
            org=current_org(),
            limits=EngineLimits.from_env(),
        )


# -- the model service, confirmations, the database's roles, agent shells -------------------------


@dataclass(frozen=True)
class ModelEnv:
    """The model service the environment names (``agent/provider.py``'s ``ModelSettings`` adds its defaults)."""

    model: str | None = None  # NEXUS_MODEL
    api_key: str | None = None  # OPENAI_API_KEY
    base_url: str | None = None  # OPENAI_BASE_URL
    replay: str | None = None  # NEXUS_REPLAY: a cassette to answer from
    record: str | None = None  # NEXUS_RECORD: a cassette to record into

    @classmethod
    def from_env(cls) -> ModelEnv:
        return cls(
            model=os.environ.get("NEXUS_MODEL") or None,
            api_key=os.environ.get("OPENAI_API_KEY") or None,
            base_url=os.environ.get("OPENAI_BASE_URL") or None,
            replay=os.environ.get("NEXUS_REPLAY") or None,
            record=os.environ.get("NEXUS_RECORD") or None,
        )

    @property
    def names_a_model(self) -> bool:
        """A key, a server or a replay: the kernel was told which model answers."""
        return bool(self.api_key or self.base_url or self.replay)


def replay_from(cassette: str) -> None:
    """Answer from ``cassette`` from now on in this process, as if it had started with ``NEXUS_REPLAY``
    set (a restarted notebook that replayed before; every later ``ModelEnv.from_env`` sees it)."""
    os.environ["NEXUS_REPLAY"] = cassette


def confirm_ttl() -> timedelta:
    """How long a proposed write can be confirmed (``NEXUS_CONFIRM_TTL_MINUTES``, 15 by default)."""
    return timedelta(minutes=_int_env("NEXUS_CONFIRM_TTL_MINUTES", 15))


ROLE_PASSWORDS = {"agent": "NEXUS_AGENT_PASSWORD", "writer": "NEXUS_WRITER_PASSWORD", "store": "NEXUS_STORE_PASSWORD"}


def role_password(role: str) -> str | None:
    """The password of a scope's ``agent``, ``writer`` or ``store`` login role on ``DATABASE_URL``'s
    server, when its URL is built from the admin URL (``NEXUS_AGENT_PASSWORD`` and so on)."""
    return os.environ.get(ROLE_PASSWORDS[role]) or None


def migrate_on_open() -> bool:
    """Whether opening ``DATABASE_URL`` migrates its schema first (``NEXUS_MIGRATE=0`` skips it)."""
    return os.environ.get("NEXUS_MIGRATE", "1") != "0"


# Set by agents in the shells they run tool calls in (Codex: every exec; Claude Code: its Bash tool).
AGENT_SHELL_MARKERS = ("CODEX_TOOL_CALL_ID", "CODEX_THREAD_ID", "CLAUDECODE")


def agent_shell_marker() -> str | None:
    """The variable that says this process runs in an agent's tool shell, or None in a person's."""
    return next((name for name in AGENT_SHELL_MARKERS if os.environ.get(name)), None)


def environment_with(**extra: str) -> dict[str, str]:
    """This process's environment plus ``extra``, for a program it hands over to (``nexus-lab psql``)."""
    return {**os.environ, **extra}
