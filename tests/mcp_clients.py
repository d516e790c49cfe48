"""MCP sessions for tests, through the SDK's own stdio and streamable-HTTP clients against a real
``nexus-lab mcp`` process, and the database state a read or a proposal must leave unchanged."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from nexusleads_lab.mcp.dashboard import APP_URI, HTML_KEY

from checks import fingerprint, sequences

NEXUS_LAB = str(Path(sys.executable).with_name("nexus-lab"))


def server_env(db, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    env.update(NEXUS_HOME=str(db.embedded.pgdata.parent), NEXUS_USER="mcp-user", NEXUS_ORG="acme-analytics")
    env.update(extra)
    return env


@asynccontextmanager
async def stdio_session(env: dict[str, str]):
    params = StdioServerParameters(command=NEXUS_LAB, args=["mcp"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        # The caller's scope is made on its first call (its organization's roles, on first use in a
        # fresh database): done here, so a test's "before" is taken after it.
        await session.call_tool("psql", {"sql": "SELECT 1"})
        yield session


@asynccontextmanager
async def http_session(url: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as client,
        streamable_http_client(url, http_client=client) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def run(body: Callable[[], Awaitable[Any]]) -> Any:
    """Run an async client body to its end, on its own thread (Playwright's sync API keeps an
    event loop running on the test's)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, body).result()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpServer:
    """``nexus-lab mcp --http`` as a subprocess on a free loopback port."""

    def __init__(self, env: dict[str, str], host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc = subprocess.Popen(
            [NEXUS_LAB, "mcp", "--http", "--host", host, "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"nexus-lab mcp --http exited: {self.proc.stdout.read() if self.proc.stdout else ''}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        self.close()
        raise RuntimeError("nexus-lab mcp --http did not start listening")

    def close(self) -> str:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out or ""


def database_state(db) -> dict[str, Any]:
    """Everything a statement on the read path must leave as it was."""
    with db.connect_admin(autocommit=True) as conn:
        extra = conn.execute(
            "SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'),"
            " (SELECT count(*) FROM pg_largeobject_metadata),"
            " (SELECT coalesce(string_agg(setdatabase || ':' || setrole || ':' || array_to_string(setconfig, ','),"
            "  ';' ORDER BY setdatabase, setrole), '') FROM pg_db_role_setting),"
            " (SELECT string_agg(rolname || ':' || rolsuper || rolcreaterole || rolbypassrls || coalesce("
            "  array_to_string(rolconfig, ','), ''), ';' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'nexus%')"
        ).fetchone()
    data_sequences = {n: at for n, at in sequences(db).items() if not n.startswith(("chat_", "write_audit"))}
    return {
        **fingerprint(db),
        "sequences": data_sequences,
        "advisory": extra[0],
        "large_objects": extra[1],
        "db_role_settings": extra[2],
        "roles": extra[3],
    }


def text_of(result) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


# -- show_dashboard, shared by test_mcp and the browser's MCP App test ------------------------------

DASHBOARD = {
    "title": "Leads by tier",
    "sections": [
        {"type": "widgets", "items": [{"title": "Hot leads", "source": "r1", "column": "hot"}]},
        {"type": "bars", "label": "By tier", "source": "r2", "x": "tier", "y": "n"},
        {"type": "table", "title": "Tiers", "source": "r2"},
    ],
}
DASHBOARD_QUERIES = {
    "r1": "SELECT count(*) AS hot FROM lead_scores WHERE tier = 'hot'",
    "r2": "SELECT tier, count(*) AS n FROM lead_scores GROUP BY tier ORDER BY tier",
}


def show_dashboard_result(db):
    """``show_dashboard`` called as the caller of the first demo organization: the database before, the
    tool, its app resource, a shown dashboard and one refused for a write among its queries (a hostile
    title checked escaped on the way)."""

    async def body():
        async with stdio_session(server_env(db)) as session:
            before = database_state(db)
            tool = next(t for t in (await session.list_tools()).tools if t.name == "show_dashboard")
            app = await session.read_resource(APP_URI)
            shown = await session.call_tool("show_dashboard", {"response": DASHBOARD, "queries": DASHBOARD_QUERIES})
            refused = await session.call_tool(
                "show_dashboard",
                {"response": DASHBOARD, "queries": {**DASHBOARD_QUERIES, "r2": "DELETE FROM lead_scores"}},
            )
            hostile = await session.call_tool(
                "show_dashboard",
                {"response": {**DASHBOARD, "title": "<script>alert(1)</script>\u202e"}, "queries": DASHBOARD_QUERIES},
            )
            assert "<script>" not in hostile.meta[HTML_KEY] and "&lt;script&gt;" in hostile.meta[HTML_KEY]
            assert "\u202e" not in hostile.meta[HTML_KEY] + text_of(hostile)
            return before, tool, app, shown, refused

    return run(body)
