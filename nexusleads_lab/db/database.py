"""Which database is active, and getting it ready: DATABASE_URL, or the embedded server."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import fasteners
import psycopg

from ..config import Settings, data_home
from . import schema
from .embedded import EmbeddedServer, start_embedded
from .engine import Engine
from .errors import QueryError, mask_url

log = logging.getLogger(__name__)


@dataclass
class Database:
    """The active database: where it is, how each role reaches it, and its engine."""

    admin_url: str
    agent_url: str | None
    writer_url: str
    embedded: EmbeddedServer | None = None
    settings: Settings = field(default_factory=Settings)
    _engine: Engine | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def kind(self) -> str:
        return "embedded" if self.embedded else "DATABASE_URL"

    @property
    def masked_url(self) -> str:
        return mask_url(self.admin_url)

    def describe(self) -> str:
        where = f"embedded PostgreSQL at {self.embedded.pgdata}" if self.embedded else "DATABASE_URL"
        return f"{where} ({self.masked_url})"

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = Engine(self.agent_url, self.writer_url, self.settings.limits)
            return self._engine

    def connect_admin(self, **kwargs) -> psycopg.Connection:
        try:
            return psycopg.connect(self.admin_url, connect_timeout=10, **kwargs)
        except psycopg.OperationalError as exc:
            raise QueryError(f"Cannot connect to {self.masked_url}: {mask_url(str(exc)).strip()}") from None

    def table_sizes(self) -> list[tuple[str, int]]:
        with self.connect_admin(autocommit=True) as conn:
            out = []
            for table in schema.LEAD_TABLES + schema.CHAT_TABLES:
                exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]
                if exists:
                    out.append((table, conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]))
            return out

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def _with_user(url: str, user: str, password: str | None) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    cred = f"{user}:{password}" if password else user
    return urlunsplit(parts._replace(netloc=f"{cred}@{host}"))


def _prepare_embedded(server: EmbeddedServer, *, seed: bool, contributors: int | None) -> None:
    """Migrate, create the roles and load demo data once; concurrent first starts wait."""
    with fasteners.InterProcessLock(str(server.pgdata.parent / ".setup.lock")):
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            schema.migrate(conn)
            schema.ensure_roles(conn)
            if seed and not conn.execute("SELECT EXISTS (SELECT 1 FROM organizations)").fetchone()[0]:
                from .demo import DEFAULT_CONTRIBUTORS, load_demo_data

                started = time.perf_counter()
                summary = load_demo_data(conn, contributors=contributors or DEFAULT_CONTRIBUTORS)
                log.info("demo data loaded in %.1fs: %s", time.perf_counter() - started, summary)


def open_database(
    settings: Settings | None = None,
    *,
    pgdata: Path | None = None,
    seed: bool = True,
    contributors: int | None = None,
) -> Database:
    """The active database, ready to query (embedded: started, migrated, seeded on first use)."""
    settings = settings or Settings.from_env()
    if settings.database_url:
        admin = settings.database_url
        agent = settings.agent_database_url or _with_user(
            admin, schema.AGENT_ROLE, os.environ.get("NEXUS_AGENT_PASSWORD") or None
        )
        writer = os.environ.get("NEXUS_WRITER_DATABASE_URL") or admin
        db = Database(admin_url=admin, agent_url=agent, writer_url=writer, settings=settings)
        with db.connect_admin(autocommit=True) as conn:
            if os.environ.get("NEXUS_MIGRATE", "1") != "0":
                schema.migrate(conn)
        return db
    server = start_embedded(pgdata or data_home() / "pgdata")
    _prepare_embedded(server, seed=seed, contributors=contributors)
    return Database(
        admin_url=server.admin_url,
        agent_url=settings.agent_database_url or server.url_for(schema.AGENT_ROLE),
        writer_url=server.url_for(schema.WRITER_ROLE),
        embedded=server,
        settings=settings,
    )


_active: Database | None = None
_active_lock = threading.Lock()


def get_database() -> Database:
    """The process-wide active database (opened on first use)."""
    global _active
    with _active_lock:
        if _active is None:
            _active = open_database()
        return _active


def set_database(db: Database | None) -> None:
    global _active
    with _active_lock:
        _active = db
