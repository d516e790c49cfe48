"""Shared fixtures: a real embedded PostgreSQL per test session, in a throwaway folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from nexusleads_lab.config import AGENT_SHELL_MARKERS, Settings
from nexusleads_lab.db import Database, open_database
from nexusleads_lab.db.embedded import start_embedded, stop_embedded

TEST_CONTRIBUTORS = int(os.environ.get("NEXUS_TEST_CONTRIBUTORS", "3000"))

# `nexus-lab confirm` refuses in an agent's tool shell; run from one (Codex, Claude Code), the
# tests still play the person, so its markers do not reach the commands they start.
for _marker in AGENT_SHELL_MARKERS:
    os.environ.pop(_marker, None)


@pytest.fixture(scope="session")
def pg_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="nexus-test-"))
    yield root
    for pgdata in root.glob("*/pgdata"):
        stop_embedded(pgdata)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def db(pg_root: Path) -> Database:
    """The embedded database with demo data, as a user gets it (roles, schema, data)."""
    database = open_database(Settings(), pgdata=pg_root / "main" / "pgdata", contributors=TEST_CONTRIBUTORS)
    yield database
    database.close()


@pytest.fixture(scope="session")
def empty_server(pg_root: Path):
    """A second embedded server with nothing in it (for migrations and the generator)."""
    return start_embedded(pg_root / "empty" / "pgdata")


@pytest.fixture()
def fresh_database_url(empty_server) -> str:
    """A brand-new, empty database on the empty server, dropped after the test."""
    name = "t_" + os.urandom(6).hex()
    with psycopg.connect(empty_server.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = empty_server.admin_url.replace("/postgres?", f"/{name}?")
    yield url
    with psycopg.connect(empty_server.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
