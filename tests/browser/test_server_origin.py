"""A page on another port of the same host tries to drive `/ws/codex` in real Chromium, as the
signed-in user (a valid `nexus_session` cookie, SameSite=Strict: another port is the same site,
so the browser sends it) or, without a secret, as the local user: it asks the model for a one-row
UPDATE and confirms it. The row must not change. The same script from the server's own origin
does change it, so the attack page is not simply broken."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from servers import LiveServer

from nexusleads_lab.db.demo import ORGS
from nexusleads_lab.server import create_app
from nexusleads_lab.server.auth import Identity, issue_token
from nexusleads_lab.testing.modelserver import ModelServer, Script, text

pytestmark = pytest.mark.browser

ORG = ORGS[0][0]
SECRET = "origin-secret-" + uuid.uuid4().hex

ATTACK = """async (url) => await new Promise((resolve) => {
  const seen = [];
  let opened = false, clicked = false, sessionId = null, ws;
  const done = (why) => { try { ws.close(); } catch (_) {} resolve({ opened, seen, why }); };
  try { ws = new WebSocket(url); } catch (err) { resolve({ opened, seen, why: String(err) }); return; }
  ws.onopen = () => { opened = true; ws.send(JSON.stringify({ type: "chat", message: "mark that lead as contacted" })); };
  ws.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    seen.push(frame.type);
    if (frame.type === "session.id") sessionId = frame.sessionId;
    if (frame.type === "turn.completed" && !clicked) {
      const card = JSON.parse(frame.text);
      clicked = true;
      ws.send(JSON.stringify({ type: "chat", message: `CONFIRM_ACTION: ${card.id}`, sessionId }));
    }
    if (frame.type === "confirm.resolved") { seen.push(frame.status); done("resolved"); }
    if (frame.type === "error") done("error");
  };
  ws.onclose = () => done("closed");
  setTimeout(() => done("timeout"), 30000);
})"""


class AttackSite:
    """Another origin on this host: 127.0.0.1 on another port, one harmless page."""

    def __init__(self) -> None:
        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"<!doctype html><title>cute cats</title><p>cats</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode", ["token-cookie", "local"])
def test_a_page_on_another_port_cannot_confirm_a_write_through_the_socket(browser, db, mode):
    reader = db.engine_for(ORG)
    lead = int(reader.read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 1").df["id"][0])
    sql = f"UPDATE lead_scores SET status = 'contacted' WHERE id = {lead}"
    card = json.dumps({"type": "confirm", "id": "x", "title": "Mark one", "summary": "s", "sql": sql})
    model = ModelServer(Script([text(card), text(card)]))
    client = openai.OpenAI(base_url=model.base_url, api_key="k", max_retries=0)
    user = f"origin-{uuid.uuid4().hex[:8]}"
    secret = SECRET if mode == "token-cookie" else ""
    live = LiveServer(create_app(secret=secret, database=db, client=client, local=Identity(user=user, org=ORG)))
    site = AttackSite()
    context = browser.new_context()
    if secret:
        context.add_cookies(
            [
                {
                    "name": "nexus_session",
                    "value": issue_token(SECRET, user, ORG),
                    "domain": "127.0.0.1",
                    "path": "/",
                    "sameSite": "Strict",
                    "httpOnly": True,
                }
            ]
        )
    page = context.new_page()

    def status() -> str:
        return reader.read(f"SELECT status FROM lead_scores WHERE id = {lead}").df["status"][0]

    def conversations() -> int:
        with db.connect_admin() as conn:
            return conn.execute("SELECT count(*) FROM chat_conversations WHERE user_name = %s", (user,)).fetchone()[0]

    try:
        page.goto(site.url)
        attack = page.evaluate(ATTACK, live.ws)
        assert attack["opened"] is False and attack["seen"] == [], attack
        assert status() == "new", "the foreign page changed nothing"
        assert conversations() == 0 and model.requests == [], "nor asked anything"

        page.goto(f"{live.http}/openapi.json")  # the server's own origin, the same script
        own = page.evaluate(ATTACK, live.ws)
        assert own["opened"] is True and own["seen"][-1] == "confirmed", own
        assert status() == "contacted"
    finally:
        db.engine.write([f"UPDATE lead_scores SET status = 'new' WHERE id = {lead}"], [1])
        context.close()
        site.close()
        live.close()
        model.close()
