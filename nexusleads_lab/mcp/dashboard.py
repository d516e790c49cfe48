"""``show_dashboard``: a dashboard response over the caller's own queries, as an MCP App.

The agent sends the product's dashboard JSON (sections naming sources ``r1``, ``r2``, ...) and
the SELECT behind each source; each runs through the read path as ``psql`` does, the response is
resolved and rendered by the product's own answer renderer (the static HTML a saved notebook
keeps: values escaped, Markdown without raw HTML, charts as PNG, nothing loaded from the
network). Hosts with MCP Apps draw it in the ``ui://`` shell below; the others, and the model,
get the text rendering. The HTML rides in the result's ``_meta``, so no model pays for it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from mcp_types import CallToolResult, TextContent

from ..db.errors import QueryError
from ..safetext import visible
from .tools import Scope

APP_URI = "ui://nexusleads-lab/dashboard.html"
HTML_KEY = "nexusleads-lab/html"
MAX_QUERIES = 8
DESCRIPTION = (
    "Show the person a dashboard: `response` is a dashboard JSON (as the plg-database skill describes) whose "
    "sections name sources r1, r2, ...; `queries` maps each source to its SELECT. Drawn in hosts with MCP Apps."
)

# The host renders this in a sandboxed iframe and hands it the tool result (MCP Apps, `ui/*` over
# postMessage). It only places the product's own escaped HTML; it loads nothing.
APP_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>NexusLeads dashboard</title></head>
<body style="margin:0;font-family:system-ui,sans-serif"><div id="app">Waiting for the dashboard…</div>
<script>
let next = 0;
const request = (method, params) => window.parent.postMessage({jsonrpc: "2.0", id: ++next, method, params}, "*");
window.addEventListener("message", (event) => {
  const message = event.data || {};
  if (message.id === 1 && message.result) {
    window.parent.postMessage({jsonrpc: "2.0", method: "ui/notifications/initialized", params: {}}, "*");
  }
  if (message.method === "ui/notifications/tool-result") {
    const meta = (message.params && message.params._meta) || {};
    const html = meta["nexusleads-lab/html"];
    if (typeof html === "string") document.getElementById("app").innerHTML = html;
  }
});
request("ui/initialize", {appInfo: {name: "nexusleads-lab", version: "1"}, appCapabilities: {},
                          protocolVersion: "2026-01-26"});
</script></body></html>
"""


def show_dashboard(scope: Scope, response: dict[str, Any], queries: dict[str, str]) -> CallToolResult:
    from ..agent.responses.parse import parse_response
    from ..ui.render import render_response
    from ..ui.text import response_text

    if len(queries) > MAX_QUERIES:
        return _error(f"At most {MAX_QUERIES} queries per dashboard; aggregate in SQL instead.")
    frames = {}
    for source, sql in queries.items():
        try:
            frames[source] = scope.engine.read(sql)  # drawn from Arrow: no DataFrame needed
        except QueryError as exc:
            return _error(f"Query {source} was refused, so nothing is shown: {exc.paragraph()}")
    parsed = parse_response(json.dumps({**response, "type": "dashboard"}, default=str), frames)
    data = parsed.response.model_dump(mode="json")
    if data.get("type") != "dashboard":
        return _error(f"That is not a dashboard the product can draw: {visible(' '.join(parsed.notes)[:1000])}")
    parts = render_response(data, interactive=False)
    for part in parts:
        if part.later is not None:
            part.data = part.later()
    html = "".join(_html(part.data) for part in parts)
    text = response_text(data)  # as the terminal and a notebook's text/plain read it
    notes = [visible(str(n)) for n in parsed.notes]
    if notes:
        text += "\n\n" + "\n".join(f"note: {n}" for n in notes)
    structured = {
        "title": data.get("title"),
        "sections": [s.get("type") for s in data.get("sections") or []],
        "notes": notes,
    }
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=structured, meta={HTML_KEY: html}
    )


def _html(bundle: dict[str, Any]) -> str:
    if "text/html" in bundle:
        return str(bundle["text/html"])
    png = bundle.get("image/png")
    if png:
        data = png if isinstance(png, str) else base64.b64encode(png).decode()
        alt = visible(str(bundle.get("text/plain", "chart"))).replace('"', "&quot;").replace("<", "&lt;")
        return f'<img alt="{alt}" src="data:image/png;base64,{data}" style="max-width:100%">'
    return ""


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=visible(message))], is_error=True)
