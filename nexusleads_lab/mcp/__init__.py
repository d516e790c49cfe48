"""``nexus-lab mcp``: the guarded read path and person-confirmed writes as a Model Context Protocol
server, for Codex CLI, Claude Code, jupyter-ai, VS Code and any other MCP client.

``server`` builds the SDK server (the tools in ``tools``, results bounded by ``results``, the
skills from ``resources``); ``http`` serves it over streamable HTTP behind the token rules.
"""

from __future__ import annotations

__all__ = ["serve_http", "serve_stdio"]


def serve_stdio(database) -> None:
    """Serve on standard input and output until the client closes them."""
    from .server import build_server

    build_server(database).run("stdio")


def serve_http(database, host: str, port: int, secret: str | None) -> None:
    from .http import serve_http as run

    run(database, host, port, secret)
