"""``show_dashboard``'s MCP App in real Chromium: a host page puts the ``ui://`` resource in a
sandboxed iframe and speaks the Apps handshake over postMessage, as Claude, ChatGPT or VS Code
do; the dashboard the tool returned is drawn, and nothing is fetched from the network."""

from __future__ import annotations

from servers import ORG

from nexusleads_lab.mcp.dashboard import HTML_KEY

from mcp_clients import show_dashboard_result

HOST = """<!doctype html><html><body><iframe id="app" sandbox="allow-scripts" style="width:1200px;height:900px"></iframe>
<script>
const frame = document.getElementById("app");
window.messages = [];
window.addEventListener("message", (event) => {
  const message = event.data || {};
  window.messages.push(message.method || "result");
  if (message.method === "ui/initialize") {
    frame.contentWindow.postMessage({jsonrpc: "2.0", id: message.id, result: {protocolVersion: "2026-01-26",
      hostInfo: {name: "test host", version: "1"}, hostCapabilities: {}, hostContext: {}}}, "*");
  }
  if (message.method === "ui/notifications/initialized") {
    frame.contentWindow.postMessage({jsonrpc: "2.0", method: "ui/notifications/tool-result", params: window.toolResult}, "*");
  }
});
</script></body></html>"""


def test_the_dashboard_app_draws_the_tool_result_offline(db, page):
    _, _, app, shown, _ = show_dashboard_result(db)
    result = shown.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert HTML_KEY in result["_meta"]
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.set_content(HOST)
    page.evaluate(
        "([html, result]) => { window.toolResult = result; document.getElementById('app').srcdoc = html; }",
        [app.contents[0].text, result],
    )
    frame = page.frame_locator("#app")
    frame.locator("text=Hot leads").wait_for(timeout=30_000)
    hot = int(db.engine_for(ORG).read("SELECT count(*) AS n FROM lead_scores WHERE tier = 'hot'").df["n"][0])
    body = frame.locator("body").inner_text()
    assert "Leads by tier" in body and f"{hot:,}" in body and "Waiting for the dashboard" not in body
    assert frame.locator("img[src^='data:image/png']").count() == 1
    assert page.evaluate("window.messages") == ["ui/initialize", "ui/notifications/initialized"]
    assert [url for url in requests if not url.startswith(("about:", "data:"))] == []
    page.screenshot(path="tests/artifacts/mcp-app-dashboard.png")
