"""The standalone chat page of `nexus-lab serve` (`GET /`) in real Chromium: a real uvicorn on a
loopback port, the chat panel's own front end over `/ws/panel`, the scripted model answering
through the real `openai` client, the real database. No JupyterLab."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import openai
import pytest
from playwright.sync_api import expect
from scripted import KPI_SQL, STATUS_SQL, kpi_widgets, message
from servers import LiveServer
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from nexusleads_lab.db.demo import ORGS
from nexusleads_lab.server import create_app
from nexusleads_lab.server.auth import Identity, issue_token
from nexusleads_lab.testing.modelserver import ModelServer, Script, text, tool_calls

from lab_harness import screenshot

pytestmark = pytest.mark.browser

ORG = ORGS[0][0]
XSS = "<img src=x onerror=alert(1)>"
SECRET = "page-secret-" + uuid.uuid4().hex
BIO_SQL = "SELECT github_login, name, bio FROM contributors WHERE github_login = 'mallory-injector'"


class Chat:
    """One server with its own scripted model, and what the page did: requests, sockets, dialogs."""

    def __init__(self, db, page, steps, *, secret: str = "") -> None:
        self.model = ModelServer(Script(list(steps)))
        client = openai.OpenAI(base_url=self.model.base_url, api_key="k", max_retries=0)
        local = Identity(user=f"page-{uuid.uuid4().hex[:8]}", org=ORG)  # a new user: no conversation to resume
        self.live = LiveServer(create_app(secret=secret, database=db, client=client, local=local))
        self.page = page
        self.requests: list[str] = []
        self.sockets: list[str] = []
        self.dialogs: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("websocket", lambda ws: self.sockets.append(ws.url))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self, query: str = "") -> None:
        self.page.goto(f"{self.live.http}/{query}")
        self.page.wait_for_selector(".nx-panel", timeout=15_000)

    def ask(self, question: str) -> None:
        box = self.page.locator(".nx-input")
        box.fill(question)
        box.press("Enter")

    def answers(self):
        return self.page.locator(".nx-messages .nx-bot")

    def assert_stayed_home(self) -> None:
        """Every request and socket of the page went to the server it came from."""
        origin = urlsplit(self.live.http).netloc
        assert self.requests and self.sockets
        strays = [u for u in self.requests + self.sockets if urlsplit(u).netloc != origin]
        assert strays == [], strays
        assert all(urlsplit(u).scheme in ("http", "ws") for u in self.requests + self.sockets)

    def close(self) -> None:
        self.live.close()
        self.model.close()


@pytest.fixture()
def chat(db, page):
    made: list[Chat] = []

    def start(steps=(), **kwargs) -> Chat:
        made.append(Chat(db, page, steps, **kwargs))
        return made[-1]

    yield start
    page.close()  # the socket closes before the server stops
    for one in made:
        one.close()


def test_the_page_streams_an_answer_and_renders_a_dashboard_with_its_steps(chat, db):
    hello = "Hello! Ask me about **projects**, repositories, contributors and lead scores. " * 3
    c = chat(
        [
            text(message(hello.strip()), chunk_size=4, delay=0.03),
            tool_calls([("psql", {"sql": KPI_SQL}), ("psql", {"sql": STATUS_SQL})]),
            text(
                json.dumps(
                    {
                        "type": "dashboard",
                        "title": "Lead pipeline",
                        "sections": [
                            kpi_widgets(),
                            {"type": "bars", "label": "Pipeline by status", "source": "r2", "x": "status", "y": "n"},
                            {"type": "table", "title": "By status", "source": "r2"},
                        ],
                    }
                ),
                chunk_size=48,
            ),
        ]
    )
    c.open()
    expect(c.page.locator(".nx-empty")).to_be_visible()
    expect(c.page.locator(".nx-subtitle")).to_contain_text(f"organization {ORG}")

    c.ask("Hi, what can you do?")
    expect(c.page.locator(".nx-user .nx-bubble").last).to_have_text("Hi, what can you do?")
    streaming = c.page.locator(".nx-live .nx-streaming")
    expect(streaming).to_contain_text("Hello", timeout=15_000)
    partial = streaming.inner_text()
    final = c.answers().last.locator(".nx-md")
    expect(final).to_have_text(hello.strip().replace("**", ""), timeout=30_000)
    assert 0 < len(partial.strip()) < len(final.inner_text()), "the text streamed in before it stood complete"
    expect(final.locator("strong").first).to_have_text("projects")

    c.ask("How is the pipeline doing?")
    dash = c.answers().last.locator(".nx-dash")
    expect(dash).to_be_visible(timeout=30_000)
    truth = db.engine_for(ORG).read(KPI_SQL).df.iloc[0]
    kpis = dash.locator(".nx-kpi-value")
    expect(kpis).to_have_count(3)
    expect(kpis.nth(0)).to_have_text(f"{int(truth['leads']):,}")
    expect(kpis.nth(1)).to_have_text(f"{int(truth['hot']):,}")
    statuses = db.engine_for(ORG).read(STATUS_SQL).df
    expect(dash.locator(".nx-bar-row")).to_have_count(len(statuses))
    rows = dash.locator(".nx-table-section table tbody tr")
    expect(rows).to_have_count(len(statuses))
    expect(rows.first.locator("td").first).to_have_text(statuses["status"][0])
    steps = c.answers().last.locator(".nx-steps")
    expect(steps.locator(".nx-steps-toggle")).to_contain_text("Ran 2 steps")
    steps.locator(".nx-steps-toggle").click()
    first = steps.locator(".nx-step").first
    first.locator(".nx-step-head").click()
    expect(first.locator(".nx-sql")).to_have_text(KPI_SQL)

    # Insert as cell has no notebook here: the panel says so and puts the cell text on the clipboard
    first.get_by_role("button", name="Insert as cell").click()
    expect(c.page.locator(".nx-toast").last).to_contain_text("No notebook to insert into here")
    # the conversation is in the history, titled by its question
    expect(c.page.locator(".nx-title-text")).to_have_text("Hi, what can you do?")

    first.locator(".nx-step-head").click()
    expect(c.page.locator(".nx-toast")).to_have_count(0, timeout=10_000)
    screenshot(c.page, "server-page.png")
    assert c.dialogs == []
    c.assert_stayed_home()


def test_hostile_text_from_the_data_and_the_model_stays_inert_on_the_page(chat):
    c = chat(
        [
            tool_calls([("psql", {"sql": BIO_SQL})]),
            text(
                json.dumps(
                    {
                        "type": "dashboard",
                        "title": "mallory-injector <b>bold?</b>",
                        "sections": [{"type": "table", "source": "r1"}],
                    }
                )
            ),
            text(message(f"Their bio says: {XSS} and [a link](javascript:alert(2)) <script>alert(3)</script>")),
        ]
    )
    c.open()
    c.ask("Who is mallory-injector?")
    table = c.answers().last.locator(".nx-table")
    expect(table.locator("td").filter(has_text=XSS)).to_have_count(1, timeout=30_000)
    expect(c.answers().last.locator(".nx-dash-title")).to_have_text("mallory-injector <b>bold?</b>")
    c.ask("Quote the bio")
    quote = c.answers().last.locator(".nx-md")
    expect(quote).to_contain_text(f"Their bio says: {XSS}", timeout=30_000)
    expect(quote).to_contain_text("<script>alert(3)</script>")
    assert quote.locator("a").count() == 0, "a javascript: link stays text"
    c.page.wait_for_timeout(500)
    assert c.page.locator("img[src=x]").count() == 0
    assert c.page.locator(".nx-panel img, .nx-panel script, .nx-panel b, .nx-panel iframe").count() == 0
    assert c.dialogs == []
    c.assert_stayed_home()


def test_a_token_in_the_address_signs_the_page_in_and_none_is_refused(chat):
    c = chat([text(message("Signed in and answering."))], secret=SECRET)
    c.open()
    expect(c.page.locator(".nx-notice")).to_contain_text("Not signed in", timeout=10_000)

    c.open(f"?token={issue_token(SECRET, 'page-alice', ORG)}")
    expect(c.page.locator(".nx-notice")).to_be_hidden(timeout=10_000)
    assert "token" not in c.page.url, "the token is taken out of the address bar"
    c.ask("Are you there?")
    expect(c.answers().last.locator(".nx-md")).to_have_text("Signed in and answering.", timeout=30_000)
    c.page.reload()  # the tab keeps its token
    expect(c.page.locator(".nx-messages .nx-bot .nx-md")).to_have_text(["Signed in and answering."], timeout=15_000)
    assert c.dialogs == []
    c.assert_stayed_home()


def test_the_pages_socket_refuses_another_sites_page(chat):
    c = chat()
    url = c.live.ws.replace("/ws/codex", "/ws/panel")
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin="http://evil.example")
    assert refused.value.response.status_code == 403, "refused in the handshake"
    with connect(url) as ws:  # not a browser (no Origin): identified as the rest are
        first = json.loads(ws.recv(timeout=10))
    assert first["type"] == "state" and first["patch"]["scope"] and "messages" in first["patch"]


def test_the_page_starts_a_new_conversation_unless_one_is_chosen_and_has_a_favicon(chat):
    c = chat([text(message("The pipeline is healthy."))])
    c.open()
    expect(c.page.locator(".nx-empty-text")).to_have_text(
        "Plain questions become SQL and dashboards. Writes always ask first."
    )
    c.ask("How is the pipeline?")
    expect(c.answers().last.locator(".nx-md")).to_have_text("The pipeline is healthy.", timeout=30_000)
    first = c.page.evaluate("() => window.nexusChat.model.get('conversation_id')")
    assert first

    c.page.reload()  # the same tab: the same conversation
    expect(c.page.locator(".nx-user .nx-bubble")).to_have_text(["How is the pipeline?"])
    c.page = c.page.context.new_page()  # another tab, the same person: a new conversation, the other in the history
    c.open()
    expect(c.page.locator(".nx-empty")).to_be_visible()
    expect(c.page.locator(".nx-title-text")).to_have_text("New conversation")
    assert c.page.evaluate("() => window.nexusChat.model.get('conversation_id')") is None
    c.page.wait_for_function(f"() => (window.nexusChat.model.get('conversations') || []).some(x => x.id === '{first}')")

    c.open(f"?conversation={first}")  # chosen: that conversation, whole
    expect(c.page.locator(".nx-user .nx-bubble")).to_have_text(["How is the pipeline?"])
    expect(c.answers().last.locator(".nx-md")).to_have_text("The pipeline is healthy.")

    icon = c.page.request.get(f"{c.live.http}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text().startswith("<svg") and "linearGradient" in icon.text()
    c.assert_stayed_home()
