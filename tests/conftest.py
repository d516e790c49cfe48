"""Shared fixtures: a real embedded PostgreSQL per test session, in a throwaway folder."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import openai
import psycopg
import pytest
from servers import Servers

from nexusleads_lab.agent.assistant import Assistant
from nexusleads_lab.config import AGENT_SHELL_MARKERS, Settings
from nexusleads_lab.db import Database, open_database
from nexusleads_lab.db.demo import ORGS
from nexusleads_lab.db.embedded import start_embedded, stop_embedded
from nexusleads_lab.testing.modelserver import ModelServer

TEST_CONTRIBUTORS = int(os.environ.get("NEXUS_TEST_CONTRIBUTORS", "3000"))
DEMO_ORG = ORGS[0][0]

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


@pytest.fixture()
def scripted_assistant(db):
    """``scripted_assistant(steps, ...) -> Assistant``: an assistant of the test database whose model is
    a loopback ``ModelServer`` answering ``steps`` (a list of steps, or a responder) through the real
    ``openai`` client; ``model=`` shares one such server between assistants instead. The server is
    ``assistant.server`` (what the model received). A fresh user of the first demo organization
    unless ``user`` / ``org`` say otherwise; ``retries`` and ``api_key`` reach the client, other
    options the ``Assistant``. Every assistant, then every server, is closed after the test."""
    made: list[Assistant] = []
    servers: dict[int, ModelServer] = {}

    def make(
        steps=(),
        *,
        model: ModelServer | None = None,
        user: str | None = None,
        org: str | None = DEMO_ORG,
        retries: int = 0,
        api_key: str = "test-key",
        database=None,
        **options,
    ) -> Assistant:
        server = model or ModelServer(list(steps) if isinstance(steps, tuple) else steps)
        servers[id(server)] = server
        client = openai.OpenAI(base_url=server.base_url, api_key=api_key, max_retries=retries)
        assistant = Assistant(
            database=database or db, client=client, org=org, user=user or f"t-{uuid.uuid4().hex[:8]}", **options
        )
        assistant.server = server  # type: ignore[attr-defined]
        made.append(assistant)
        return assistant

    yield make
    for assistant in made:
        assistant.close()
    for server in servers.values():
        server.close()


@pytest.fixture(scope="session")
def ipython_shell():
    """The process's one in-process IPython shell: IPython's test app starts once per process, so
    every module that needs a shell shares it (a second ``start_ipython()`` returns None)."""
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    return start_ipython() or get_ipython()


@pytest.fixture()
def serve(db):
    """``serve(steps, ...) -> LiveServer``: ``nexus-lab serve``'s app over the test database and a
    scripted model (``servers.Servers.start``); every one is stopped after the test."""
    servers = Servers(db)
    yield servers.start
    servers.close()
