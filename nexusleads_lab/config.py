"""Settings read from the environment: one place that knows every variable the product honours."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

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


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


@dataclass(frozen=True)
class EngineLimits:
    """Bounds every agent read runs under."""

    statement_timeout_ms: int = 15_000
    row_cap: int = 100_000
    result_max_bytes: int = 256 * 1024 * 1024  # Arrow bytes one read may bring into the kernel
    pool_size: int = 4

    @classmethod
    def from_env(cls) -> "EngineLimits":
        return cls(
            statement_timeout_ms=_int_env("NEXUS_STATEMENT_TIMEOUT_MS", cls.statement_timeout_ms),
            row_cap=_int_env("NEXUS_ROW_CAP", cls.row_cap),
            result_max_bytes=_int_env("NEXUS_RESULT_MAX_BYTES", cls.result_max_bytes),
        )


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    agent_database_url: str | None = None
    writer_database_url: str | None = None
    store_database_url: str | None = None
    org: str | None = None  # NEXUS_ORG: the scope of everything this session runs
    limits: EngineLimits = field(default_factory=EngineLimits)

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            agent_database_url=os.environ.get("NEXUS_AGENT_DATABASE_URL") or None,
            writer_database_url=os.environ.get("NEXUS_WRITER_DATABASE_URL") or None,
            store_database_url=os.environ.get("NEXUS_STORE_DATABASE_URL") or None,
            org=current_org(),
            limits=EngineLimits.from_env(),
        )
