"""The MCP server: the ``psql`` and ``propose_write`` tools and the skills, for one database.

Each call runs as a caller: on stdio the environment's (``NEXUS_USER``, ``NEXUS_ORG``), over HTTP
the verified token's (``http.py`` puts it on the request). A caller's scope is its organization's
engine (the reader role, row-level security) and its own proposals, as for every other view.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated, Any

from mcp.server.apps import Apps
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult
from pydantic import Field

from .._version import __version__
from ..agent.confirm import Confirmations
from ..config import current_org, current_user
from ..db.errors import QueryError
from ..db.schema import ALL_ORGS
from ..db.store import ConversationStore
from ..server.auth import Identity
from . import dashboard, tools
from .resources import add_skills

IDENTITY_KEY = "nexus_identity"  # where http.py leaves the verified caller in the request's state
INSTRUCTIONS = (
    "NexusLeads Lab: the PLG lead database (projects, repositories, contributors, lead scores, outreach). "
    "Read the plg-database skill resource for the schema. psql reads; propose_write only records a proposal "
    "that a person confirms outside this conversation."
)


class Scopes:
    """The ``tools.Scope`` of each recent caller, per (user, organization). A scope holds no
    connection of its own (its store borrows from the database's bounded pool), so forgetting the
    least recent of ``keep`` costs only rebuilding it."""

    def __init__(self, database: Any, keep: int = 1024) -> None:
        self._database = database
        self._scopes: OrderedDict[tuple[str, str | None], tools.Scope] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def get(self, identity: Identity) -> tools.Scope:
        key = (identity.user, None if identity.org in (None, ALL_ORGS) else identity.org)
        with self._lock:
            scope = self._scopes.get(key)
            if scope is None:
                scope = self._scopes[key] = self._make(*key)
                while len(self._scopes) > self._keep:
                    self._scopes.popitem(last=False)
            self._scopes.move_to_end(key)
            return scope

    def _make(self, user: str, org: str | None) -> tools.Scope:
        db = self._database
        engine = db.engine_for(org)
        store = ConversationStore(db.store_url(org), org or ALL_ORGS, user, guard=True, pool=db.store_pool(org))
        return tools.Scope(user=user, org=org, engine=engine, confirmations=Confirmations(store, lambda: engine))


def local_identity() -> Identity:
    return Identity(user=current_user(), org=current_org())


def build_server(database: Any, *, local: Identity | None = None) -> MCPServer:
    """The server over ``database``; a call without a verified caller runs as ``local``."""
    scopes = Scopes(database)
    fallback = local or local_identity()

    def scope_of(ctx: Context) -> tools.Scope:
        request = ctx.request_context.request
        state = getattr(request, "scope", {}).get("state", {}) if request is not None else {}
        verified = state.get(IDENTITY_KEY)
        try:
            return scopes.get(verified or fallback)
        except QueryError as exc:
            if verified is None:  # the local user's own NEXUS_ORG: the whole paragraph helps
                raise ToolError(exc.paragraph()) from None
            # A token's organization this database does not serve: no word on which ones it does.
            raise ToolError("The organization in your token is not served by this database.") from None

    apps = Apps()
    apps.add_html_resource(
        dashboard.APP_URI, dashboard.APP_HTML, name="dashboard", description="The product's dashboard, drawn offline"
    )

    @apps.tool(
        resource_uri=dashboard.APP_URI,
        name="show_dashboard",
        description=dashboard.DESCRIPTION,
        annotations=tools.SHOW_ANNOTATIONS,
    )
    def show_dashboard(
        response: Annotated[dict[str, Any], Field(description="the dashboard JSON")],
        queries: Annotated[dict[str, str], Field(description="source id -> SELECT")],
        ctx: Context,
    ) -> CallToolResult:
        return dashboard.show_dashboard(scope_of(ctx), response, queries)

    server: MCPServer = MCPServer("nexusleads-lab", version=__version__, instructions=INSTRUCTIONS, extensions=[apps])

    @server.tool(name="psql", description=tools.PSQL_DESCRIPTION, annotations=tools.PSQL_ANNOTATIONS)
    def psql(sql: Annotated[str, Field(description="one SELECT statement")], ctx: Context) -> CallToolResult:
        return tools.psql(scope_of(ctx), sql)

    @server.tool(name="propose_write", description=tools.PROPOSE_DESCRIPTION, annotations=tools.PROPOSE_ANNOTATIONS)
    def propose_write(
        sql: Annotated[str, Field(description="the INSERT/UPDATE/DELETE to propose")],
        ctx: Context,
        title: Annotated[str | None, Field(description="short title for the person")] = None,
        summary: Annotated[str | None, Field(description="what it changes and why")] = None,
    ) -> CallToolResult:
        return tools.propose_write(scope_of(ctx), sql, title, summary)

    add_skills(server)
    return server
