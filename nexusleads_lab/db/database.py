"""Which database is active, and getting it ready: DATABASE_URL, or the embedded server."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import fasteners
import psycopg

from ..config import Settings, data_home, migrate_on_open, role_password
from . import schema
from .embedded import EmbeddedServer, start_embedded
from .engine import Engine, is_url
from .errors import QueryError, connect_failure, mask_url

log = logging.getLogger(__name__)


def _scalar(conn: psycopg.Connection, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """The one value of a query that always returns one row (an aggregate, an EXISTS)."""
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise QueryError(f"Expected one row from: {sql}")
    return row[0]


@dataclass
class Database:
    """The active database: where it is, how each scope's roles reach it, and their engines.

    A scope is an organization slug, or None for every organization. Each scope has its own
    engine, whose reader and writer log in as that scope's roles, so row-level security
    decides what its SQL can see and change.
    """

    admin_url: str
    embedded: EmbeddedServer | None = None
    settings: Settings = field(default_factory=Settings)
    _engines: dict = field(default_factory=dict, repr=False)
    _store_pools: dict = field(default_factory=dict, repr=False)
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
    def scope_label(self) -> str:
        from .guard import describe_scope

        return describe_scope(self.scope)

    @property
    def scope(self) -> str | None:
        """The session's scope (NEXUS_ORG), which ``engine`` serves."""
        return self.settings.org

    @property
    def engine(self) -> Engine:
        return self.engine_for(self.settings.org)

    @property
    def agent_url(self) -> str | None:
        """How the session scope's reader logs in."""
        return self.engine.agent_url

    @property
    def writer_url(self) -> str | None:
        return self.engine.writer_url

    def engine_for(self, org: str | None) -> Engine:
        """The engine of one scope: an organization slug, or None for every organization."""
        with self._lock:
            engine = self._engines.get(org)
            if engine is None:
                agent_url, writer_url = self._role_urls(org)
                engine = Engine(agent_url, writer_url, self.settings.limits, scope=org)
                self._engines[org] = engine
            return engine

    def _role_urls(self, org: str | None) -> tuple[str, str | None]:
        reader, writer = schema.role_names(org)
        if self.embedded is not None:
            if org is not None:
                self._ensure_org(org)
            agent = self.settings.agent_database_url if org == self.settings.org else None
            return agent or self.embedded.url_for(reader), self.embedded.url_for(writer)
        if org == self.settings.org and self.settings.agent_database_url:
            agent = self.settings.agent_database_url
        else:
            agent = _with_user(self.admin_url, reader, role_password("agent"))
        explicit = self.settings.writer_database_url
        if explicit and org != self.settings.org:  # same server, that scope's writer role
            explicit = _with_user(explicit, writer, role_password("writer"))
        return agent, explicit  # no writer URL: confirmed writes are refused, never run as the owner

    def store_url(self, org: str | None) -> str:
        """How the conversation store of a scope logs in: its own role, bound to that scope."""
        role = schema.store_role_name(org)
        if self.embedded is not None:
            if org is not None:
                self.engine_for(org)  # the organization exists and its roles are there
            return self.embedded.url_for(role)
        if org == self.settings.org and self.settings.store_database_url:
            return self.settings.store_database_url
        return _with_user(self.admin_url, role, role_password("store"))

    def store_pool(self, org: str | None):
        """The process's bounded pool of conversation-store connections for one scope (a server's
        sessions share it; ``NEXUS_STORE_POOL_SIZE`` connections at most)."""
        from .schema import ALL_ORGS
        from .store import StorePool

        url = self.store_url(org)
        with self._lock:
            pool = self._store_pools.get(org)
            if pool is None:
                pool = StorePool(url, org or ALL_ORGS, size=self.settings.limits.store_pool_size)
                self._store_pools[org] = pool
            return pool

    def _ensure_org(self, org: str) -> None:
        """Embedded only: the organization must exist; create its roles on first use."""
        with self.connect_admin(autocommit=True) as conn:
            known = [r[0] for r in conn.execute("SELECT slug FROM organizations ORDER BY slug").fetchall()]
            if org not in known:
                raise QueryError(
                    f"There is no organization {org!r} in this database (NEXUS_ORG). Organizations: "
                    f"{', '.join(known) or 'none yet'}. Set NEXUS_ORG to one of them, or unset it for "
                    "the all-organizations scope."
                )
            schema.ensure_org_roles(conn, org)

    def connect_admin(self, **kwargs) -> psycopg.Connection:
        try:
            return psycopg.connect(self.admin_url, connect_timeout=10, **kwargs)
        except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
            raise QueryError(f"Cannot connect to {self.masked_url}: {connect_failure(exc)}") from None

    def table_sizes(self) -> list[tuple[str, int]]:
        with self.connect_admin(autocommit=True) as conn:
            out = []
            for table in schema.LEAD_TABLES + schema.CHAT_TABLES:
                if _scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (table,)):
                    out.append((table, _scalar(conn, f"SELECT count(*) FROM {table}")))
            return out

    def close(self) -> None:
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
            pools, self._store_pools = list(self._store_pools.values()), {}
        for engine in engines:
            engine.close()
        for pool in pools:
            pool.close()


def check_url(name: str, url: str | None) -> None:
    """Refuse a URL libpq would misread: an unencoded '@' in the password makes the rest of the
    password the host name, and it would then appear in the connection error."""
    if url and is_url(url):
        netloc = urlsplit(url).netloc
        if netloc.count("@") > 1:
            raise QueryError(
                f"{name} has more than one '@' before the host: percent-encode an '@' in the password "
                "as %40 (and ':' as %3A, '/' as %2F, '%' as %25), or use the key=value form."
            )


def _with_user(url: str, user: str, password: str | None) -> str:
    """The same server and database as ``url`` (a URL or a key=value string), another login."""
    if not is_url(url):
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = {k: v for k, v in conninfo_to_dict(url).items() if k not in ("user", "password")}
        return make_conninfo("", **params, user=user, **({"password": password} if password else {}))
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    cred = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{cred}@{host}"))


def _prepare_embedded(server: EmbeddedServer, *, seed: bool, contributors: int | None) -> None:
    """Migrate, create the roles and load demo data once; concurrent first starts wait."""
    lock = fasteners.InterProcessLock(str(server.pgdata.parent / ".setup.lock"))
    with lock, psycopg.connect(server.admin_url, autocommit=True) as conn:
        schema.migrate(conn)
        schema.ensure_roles(conn)
        if seed and not _scalar(conn, "SELECT EXISTS (SELECT 1 FROM organizations)"):
            from .demo.load import DEFAULT_CONTRIBUTORS, load_demo_data

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
        for name, url in (
            ("DATABASE_URL", settings.database_url),
            ("NEXUS_AGENT_DATABASE_URL", settings.agent_database_url),
            ("NEXUS_WRITER_DATABASE_URL", settings.writer_database_url),
            ("NEXUS_STORE_DATABASE_URL", settings.store_database_url),
        ):
            check_url(name, url)
        db = Database(admin_url=settings.database_url, settings=settings)
        if migrate_on_open():
            with db.connect_admin(autocommit=True) as conn:
                schema.migrate(conn)
        return db
    server = start_embedded(pgdata or data_home() / "pgdata")
    _prepare_embedded(server, seed=seed, contributors=contributors)
    return Database(admin_url=server.admin_url, embedded=server, settings=settings)


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
