"""The chat panel in real JupyterLab + Chromium: the side area, streaming, steps, dashboards,
confirmations, Stop, history, reloads, hostile data and a long conversation.

Each test but the first runs as its own user (``%env NEXUS_USER=...``), so its history starts
from a known place, and in a notebook named
``chat-*.ipynb``: the lab is shared, and JupyterLab gives a notebook path's running kernel to
whoever opens that path next.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from contextlib import contextmanager

import psycopg
import pytest
from playwright.sync_api import expect
from scripted import KPI_SQL, STATUS_SQL, kpi_widgets, message

from nexusleads_lab.db.dml import plan_write
from nexusleads_lab.db.store import ConversationStore
from nexusleads_lab.testing.modelserver import http_error, text, tool_calls

from checks import SLOW_SQL
from lab_harness import (
    ARTIFACTS,
    add_kernelspec,
    cell,
    open_notebook,
    restart_kernel_from_the_menu,
    run_all_cells,
    run_cell,
    screenshot,
    use_kernel,
    wait_for_idle,
    widen_side_area,
    write_notebook,
)

pytestmark = pytest.mark.browser

PANEL = "#jp-right-stack .nx-panel"
ORG = "acme-analytics"  # the lab's NEXUS_ORG (see conftest.py)
XSS = "<img src=x onerror=alert(1)>"
HOT_SQL = (
    "SELECT c.github_login, c.name, c.company, l.score, l.status FROM lead_scores l "
    "JOIN contributors c ON c.id = l.contributor_id WHERE l.tier = 'hot' AND l.status = 'new' "
    "ORDER BY l.score DESC, c.github_login LIMIT 8"
)


def dashboard_script() -> list:
    return [
        tool_calls([("psql", {"sql": KPI_SQL}), ("psql", {"sql": STATUS_SQL})]),
        tool_calls([("psql", {"sql": HOT_SQL})]),
        text(
            json.dumps(
                {
                    "type": "dashboard",
                    "title": "Hot leads to contact",
                    "sections": [
                        kpi_widgets(),
                        {"type": "bars", "label": "Pipeline by status", "source": "r2", "x": "status", "y": "n"},
                        {
                            "type": "line",
                            "label": "New hot leads per week",
                            "points": [
                                {"x": f"W{w}", "y": y}
                                for w, y in zip(range(1, 11), [14, 18, 17, 23, 21, 28, 26, 33, 31, 38])
                            ],
                        },
                        {"type": "table", "title": "Top new hot leads", "source": "r3"},
                        {
                            "type": "pills",
                            "label": "Status",
                            "source": "r2",
                            "label_column": "status",
                            "count_column": "n",
                        },
                    ],
                }
            ),
            chunk_size=48,
        ),
    ]


@pytest.fixture()
def dialogs(page):
    """Alerts the page raised (an XSS would be one); leaving the page is always allowed."""
    seen: list[str] = []

    def on_dialog(dialog):
        if dialog.type == "beforeunload":
            dialog.accept()
        else:
            seen.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen


def open_with_panel(page, lab, name: str, *, user: str | None = None, cells=()) -> None:
    setup = ([f"%env NEXUS_USER={user}"] if user else []) + ["%load_ext nexusleads_lab", *cells, "%nexus panel"]
    write_notebook(lab, name, setup)
    open_notebook(page, lab, name)
    run_all_cells(page)
    page.wait_for_selector(PANEL, state="attached", timeout=60_000)
    widen_side_area(page)


@contextmanager
def dark_theme(page):
    """JupyterLab Dark for the duration, then Light again."""
    try:
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=20_000)
        page.wait_for_timeout(800)
        yield
    finally:
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'", timeout=20_000)


def ask(page, question: str) -> None:
    box = page.locator(f"{PANEL} .nx-input")
    box.fill(question)
    box.press("Enter")


def answers(page):
    return page.locator(f"{PANEL} .nx-messages .nx-bot")


def test_the_panel_sits_in_the_side_area_streams_answers_and_renders_dashboards(lab, page, db, dialogs):
    open_with_panel(page, lab, "chat-panel.ipynb")
    if page.locator(f"{PANEL} .nx-messages .nx-msg").count():
        page.click(f"{PANEL} .nx-new-btn")  # this user may have talked before: start fresh
    expect(page.locator(f"{PANEL} .nx-empty")).to_be_visible()
    # its own tab in the right side area
    expect(page.locator("#jp-right-stack .jupyterlab-sidecar")).to_have_count(1)
    expect(page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab", has_text="Nexus")).to_have_count(1)

    # Enter sends; the answer streams in (partial text first), then stands complete
    hello = "Hello! Ask me about **projects**, repositories, contributors and lead scores. " * 4
    lab.model.set_script([text(message(hello.strip()), chunk_size=4, delay=0.03)])
    ask(page, "Hi, what can you do?")
    expect(page.locator(f"{PANEL} .nx-user .nx-bubble").last).to_have_text("Hi, what can you do?")
    expect(page.locator(f"{PANEL} .nx-input")).to_have_value("")
    streaming = page.locator(f"{PANEL} .nx-live .nx-streaming")
    expect(streaming).to_contain_text("Hello", timeout=15_000)
    partial = streaming.inner_text()
    final = answers(page).last.locator(".nx-md")
    expect(final).to_have_text(hello.strip().replace("**", ""), timeout=30_000)
    assert 0 < len(partial.strip()) < len(final.inner_text())
    expect(final.locator("strong").first).to_have_text("projects")
    # Shift+Enter is a new line, not a send
    box = page.locator(f"{PANEL} .nx-input")
    box.fill("line one")
    box.press("Shift+Enter")
    box.type("line two")
    expect(box).to_have_value("line one\nline two")
    assert page.locator(f"{PANEL} .nx-user").count() == 1
    box.fill("")

    # a dashboard in a new conversation: steps, KPI cards, bars, a line chart, a table and pills
    page.click(f"{PANEL} .nx-new-btn")
    expect(page.locator(f"{PANEL} .nx-messages .nx-msg")).to_have_count(0)
    lab.model.set_script(dashboard_script())
    ask(page, "Which hot leads should we contact first?")
    dash = answers(page).last.locator(".nx-dash")
    expect(dash).to_be_visible(timeout=60_000)
    expect(page.locator(f"{PANEL} .nx-title-text")).to_have_text("Which hot leads should we contact first?")
    truth = db.engine_for(ORG).read(KPI_SQL).df.iloc[0]
    kpis = dash.locator(".nx-kpi-value")
    expect(kpis).to_have_count(3)
    expect(kpis.nth(0)).to_have_text(f"{int(truth['leads']):,}")
    expect(kpis.nth(1)).to_have_text(f"{int(truth['hot']):,}")
    statuses = db.engine_for(ORG).read(STATUS_SQL).df
    expect(dash.locator(".nx-bar-row")).to_have_count(len(statuses))
    expect(dash.locator(".nx-bar-name").first).to_have_text(statuses["status"][0])
    expect(dash.locator(".nx-line-chart polyline")).to_have_count(1)
    hot = db.engine_for(ORG).read(HOT_SQL).df
    table = dash.locator(".nx-table-section table")
    expect(table.locator("tbody tr")).to_have_count(len(hot))
    expect(table.locator("tbody tr").first.locator("td").first).to_have_text(hot["github_login"][0])
    expect(dash.locator(".nx-pill")).to_have_count(len(statuses))

    # the steps collapse to "Ran 3 steps"; each opens to its SQL, rows and time
    steps = answers(page).last.locator(".nx-steps")
    expect(steps.locator(".nx-steps-toggle")).to_contain_text("Ran 3 steps")
    expect(steps.locator(".nx-step-list")).to_be_hidden()
    steps.locator(".nx-steps-toggle").click()
    first = steps.locator(".nx-step").first
    expect(first.locator(".nx-step-meta")).to_contain_text("1 row")
    first.locator(".nx-step-head").click()
    expect(first.locator(".nx-sql")).to_have_text(KPI_SQL)
    expect(first.locator(".nx-step-facts")).to_contain_text("ms")
    first.locator(".nx-step-head").click()
    expect(first.locator(".nx-sql")).to_be_hidden()

    # "Copy SQL" and "Insert as cell" on a step
    third = steps.locator(".nx-step").nth(2)
    third.locator(".nx-step-head").click()
    third.get_by_role("button", name="Copy SQL").click()
    expect(page.locator(f"{PANEL} .nx-toast").last).to_contain_text("SQL")
    third.get_by_role("button", name="Insert as cell").click()
    expect(page.locator(f"{PANEL} .nx-toast").last).to_contain_text("Inserted as cell 3 of chat-panel.ipynb")
    sources = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells.map(c => c.getSource())"
    )
    assert sources[2] == f"%%nexus sql\n{HOT_SQL}"
    assert page.locator(".jp-NotebookPanel:visible .jp-Cell").count() == 3
    run_cell(page, 2)  # the inserted cell runs: the same rows, now a DataFrame in the notebook
    expect(page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(2).locator(".jp-OutputArea")).to_contain_text(
        hot["github_login"][0]
    )

    # the product shot for the README: the notebook with the inserted query, the panel beside it
    expect(page.locator(f"{PANEL} .nx-toast")).to_have_count(0, timeout=10_000)
    page.locator(f"{PANEL} .nx-scroll").evaluate(
        "(s) => { const q = [...s.querySelectorAll('.nx-user')].pop();"
        " s.scrollTop += q.getBoundingClientRect().top - s.getBoundingClientRect().top - 10; }"
    )
    page.wait_for_timeout(800)
    shot = screenshot(page, "panel.png")
    assert shot.stat().st_size > 20_000

    # JupyterLab's dark theme: the panel follows its colours
    background = lambda: page.locator(PANEL).evaluate("(n) => getComputedStyle(n).backgroundColor")  # noqa: E731
    light = background()
    with dark_theme(page):
        assert background() != light
        screenshot(page, "panel-dark.png")
    assert dialogs == []


def _new_lead_ids(db, n: int) -> list[int]:
    return (
        db.engine_for(ORG)
        .read(f"SELECT id FROM lead_scores WHERE status = 'new' AND tier = 'warm' ORDER BY id DESC LIMIT {n}")
        .df["id"]
        .tolist()
    )


def test_confirm_on_the_card_previews_the_change_and_changes_the_database_exactly_once(lab, page, db, dialogs):
    ids = _new_lead_ids(db, 2)
    where = f"id IN ({', '.join(map(str, ids))})"
    note = f"Intro sent {XSS}"
    sql = plan_write(
        f"UPDATE lead_scores SET status = 'contacted', status_changed_at = now() WHERE {where};"
        f"INSERT INTO outreach_events (lead_id, channel, outcome, note) VALUES ({ids[0]}, 'email', 'sent', '{note}')"
    ).sql  # the canonical text, as the card shows it
    statuses = lambda: sorted(db.engine.read(f"SELECT status FROM lead_scores WHERE {where}").df["status"])  # noqa: E731
    open_with_panel(page, lab, "chat-confirm.ipynb", user=f"panel-{uuid.uuid4().hex[:8]}")
    expect(page.locator(f"{PANEL} .nx-subtitle")).to_contain_text(f"organization {ORG}")
    lab.model.set_script(
        [
            text(
                json.dumps(
                    {
                        "type": "confirm",
                        "id": "m2",
                        "title": "Mark 2 warm leads as contacted",
                        "summary": "Sets both leads' status to contacted and logs the intro email.",
                        "sql": sql,
                    }
                )
            ),
            text(message("Done: both leads are now **contacted**.")),
        ]
    )
    ask(page, "Mark these two warm leads as contacted and log the intro")
    card = page.locator(f"{PANEL} .nx-confirm")
    expect(card).to_be_visible(timeout=30_000)
    expect(card.locator(".nx-confirm-title")).to_have_text("Mark 2 warm leads as contacted")
    expect(card.locator(".nx-confirm-sql")).to_have_text(sql)

    # the preview, statement by statement: both leads from new to contacted, then the new event
    expect(card.locator(".nxl-dry")).to_have_text("Preview: this changes 3 rows in 2 statements.")
    expect(card.locator(".nxl-pv-head")).to_have_text(
        ["1. update lead_scores: 2 rows", "2. insert outreach_events: 1 row"]
    )
    updated, inserted = card.locator(".nxl-pv-stmt").nth(0), card.locator(".nxl-pv-stmt").nth(1)
    for i, lead in enumerate(sorted(ids)):
        row = updated.locator("tbody tr").nth(i).locator("td")
        expect(row.nth(0)).to_have_text(str(lead))
        expect(row.nth(1)).to_have_text("new → contacted")
    expect(inserted.locator("th")).to_have_text(["lead_id", "channel", "outcome", "note"])
    expect(inserted.locator("tbody td")).to_have_text([str(ids[0]), "email", "sent", note])  # the bio-style tag is text
    assert page.locator(f"{PANEL} img[src='x']").count() == 0
    card.scroll_into_view_if_needed()
    screenshot(page, "panel-confirm-preview.png", page.locator(PANEL))
    widen_side_area(page, 360)  # a narrow side area: values wrap, wide rows scroll sideways
    card.scroll_into_view_if_needed()
    screenshot(page, "panel-confirm-preview-narrow.png", page.locator(PANEL))
    widen_side_area(page, 500)
    with dark_theme(page):
        card.scroll_into_view_if_needed()
        screenshot(page, "panel-confirm-preview-dark.png", page.locator(PANEL))

    assert statuses() == ["new", "new"], "nothing is written before the click"
    proposal = card.get_attribute("data-id")
    try:
        card.locator(".nx-confirm-yes").click()
        expect(page.locator(f"{PANEL} .nx-confirm .nx-outcome")).to_have_text("Done: 3 rows changed.", timeout=30_000)
        expect(page.locator(f"{PANEL} .nx-confirm .nx-confirm-yes")).to_be_disabled()
        expect(page.locator(f"{PANEL} .nx-confirm .nx-confirm-no")).to_be_disabled()
        expect(answers(page).last.locator(".nx-md")).to_contain_text("both leads are now contacted", timeout=30_000)
        assert statuses() == ["contacted", "contacted"]
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            audit = conn.execute(
                "SELECT count(*), min(sql) FROM write_audit WHERE confirmation_id = %s", (proposal,)
            ).fetchone()
            events = conn.execute("SELECT count(*) FROM outreach_events WHERE note = %s", (note,)).fetchone()[0]
        assert audit == (1, sql) and events == 1
        screenshot(page, "panel-confirm.png", page.locator(PANEL))
    finally:
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            conn.execute(f"UPDATE lead_scores SET status = 'new' WHERE {where}")
            conn.execute("DELETE FROM outreach_events WHERE note = %s", (note,))
    assert dialogs == []


def test_stop_ends_a_long_query_or_a_streaming_answer_and_the_panel_goes_on(lab, page, dialogs):
    open_with_panel(page, lab, "chat-stop.ipynb", user=f"panel-{uuid.uuid4().hex[:8]}")
    send = page.locator(f"{PANEL} .nx-send")

    # a query that would run for 30 s: the live steps say "Working…", Stop cancels it
    lab.model.set_script([tool_calls([("psql", {"sql": SLOW_SQL})])])
    ask(page, "Take your time")
    live = page.locator(f"{PANEL} .nx-live .nx-steps-live")
    expect(live.locator(".nx-steps-toggle")).to_contain_text("Working… 1 step", timeout=15_000)
    expect(live.locator(".nx-step .nx-spinner")).to_have_count(1)
    started = time.monotonic()
    send.click()
    expect(answers(page).last.locator(".nx-error.nx-cancelled")).to_contain_text("Stopped", timeout=10_000)
    print(f"\nStop during a 30 s query -> cancelled answer shown: {time.monotonic() - started:.2f} s")
    expect(answers(page).last.locator(".nx-steps-toggle")).to_have_text("Ran 1 step · 1 stopped")

    # an answer that would stream for half a minute
    lab.model.set_script([text(message("word " * 800), chunk_size=3, delay=0.03)])
    ask(page, "Talk for a long time")
    expect(page.locator(f"{PANEL} .nx-live .nx-streaming")).to_be_visible(timeout=15_000)
    expect(send).to_have_attribute("aria-label", "Stop")
    started = time.monotonic()
    send.click()
    stopped = answers(page).last.locator(".nx-error.nx-cancelled")
    expect(stopped).to_contain_text("Stopped", timeout=10_000)
    print(f"Stop during streaming -> cancelled answer shown: {time.monotonic() - started:.2f} s")
    # A wait for the UI state, not a speed check: on a loaded 2-core CI machine the worker's
    # wrap-up (storing the stopped turn, refreshing the list) can take a few seconds.
    expect(send).to_have_attribute("aria-label", "Send", timeout=20_000)
    expect(page.locator(f"{PANEL} .nx-live")).to_be_hidden()
    # bouncing dots while nothing has come back yet
    lab.model.set_script([lambda request: (time.sleep(1.5), text(message("Back again.")))[1]])
    ask(page, "Are you still there?")
    expect(page.locator(f"{PANEL} .nx-live .nx-dots")).to_be_visible(timeout=5_000)
    expect(answers(page).last.locator(".nx-md")).to_have_text("Back again.", timeout=30_000)
    expect(page.locator(f"{PANEL} .nx-dots")).to_have_count(0)
    assert dialogs == []


def test_history_lists_opens_renames_deletes_and_the_panel_survives_a_reload(lab, page, dialogs):
    open_with_panel(page, lab, "chat-history.ipynb", user=f"panel-{uuid.uuid4().hex[:8]}")
    lab.model.set_script([text(message("Three tiers: hot, warm and cold.")), text(message("Five statuses."))])
    ask(page, "Which lead tiers exist?")
    expect(answers(page).last.locator(".nx-md")).to_have_text("Three tiers: hot, warm and cold.", timeout=30_000)
    page.click(f"{PANEL} .nx-new-btn")
    expect(page.locator(f"{PANEL} .nx-empty")).to_be_visible()
    ask(page, "Which statuses exist?")
    expect(answers(page).last.locator(".nx-md")).to_have_text("Five statuses.", timeout=30_000)

    page.click(f"{PANEL} .nx-history-btn")
    rows = page.locator(f"{PANEL} .nx-history .nx-conv")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".nx-conv-title")).to_have_text("Which statuses exist?")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bnx-active\b"))
    # rename the older one (renaming makes it the most recently updated)
    rows.nth(1).get_by_role("button", name="Rename").click()
    title = page.locator(f"{PANEL} .nx-rename")
    title.fill("Lead tiers")
    title.press("Enter")
    expect(rows.locator(".nx-conv-title")).to_have_text(["Lead tiers", "Which statuses exist?"])
    # open it
    rows.filter(has_text="Lead tiers").locator(".nx-conv-open").click()
    expect(page.locator(f"{PANEL} .nx-history")).to_be_hidden()
    expect(page.locator(f"{PANEL} .nx-title-text")).to_have_text("Lead tiers")
    expect(answers(page).last.locator(".nx-md")).to_have_text("Three tiers: hot, warm and cold.")
    # delete the other
    page.click(f"{PANEL} .nx-history-btn")
    other = rows.filter(has_text="Which statuses exist?")
    other.get_by_role("button", name="Delete").click()
    other_confirm = page.locator(f"{PANEL} .nx-conv").filter(has_text="Delete “Which statuses exist?”?")
    other_confirm.get_by_role("button", name="Delete").click()
    expect(rows).to_have_count(1)
    expect(rows.locator(".nx-conv-title")).to_have_text(["Lead tiers"])

    # `%nexus panel` again: still one side tab, the same conversation
    run_cell(page, 2)
    expect(page.locator("#jp-right-stack .jupyterlab-sidecar")).to_have_count(1)
    page.wait_for_selector(PANEL, state="attached", timeout=30_000)
    expect(page.locator(f"{PANEL} .nx-title-text")).to_have_text("Lead tiers")

    # a page reload: the side tab comes back with the conversation (it lives in the kernel)
    page.reload()
    page.wait_for_selector(PANEL, state="attached", timeout=60_000)
    expect(page.locator(f"{PANEL} .nx-title-text")).to_have_text("Lead tiers", timeout=30_000)
    expect(page.locator(f"{PANEL} .nx-messages .nx-user .nx-bubble")).to_have_text(["Which lead tiers exist?"])
    expect(page.locator(f"{PANEL} .nx-messages .nx-bot .nx-md")).to_have_text(["Three tiers: hot, warm and cold."])

    # a kernel restart, then Run All: the conversation comes back, in one tab (the dead one closes)
    page.wait_for_function(_KERNEL_READY, timeout=60_000)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    page.wait_for_function(_KERNEL_READY, timeout=60_000)
    stale = page.locator(PANEL).first
    expect(stale.locator(".nx-notice")).to_contain_text("this panel is disconnected", timeout=30_000)
    expect(stale.locator(".nx-input")).to_be_disabled()
    run_all_cells(page)
    panels = page.locator(PANEL)
    expect(panels).to_have_count(1, timeout=60_000)
    expect(page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab", has_text="Nexus")).to_have_count(1)
    fresh = panels.last
    expect(fresh.locator(".nx-title-text")).to_have_text("Lead tiers", timeout=30_000)
    expect(fresh.locator(".nx-messages .nx-bot .nx-md")).to_have_text(["Three tiers: hot, warm and cold."])
    expect(fresh.locator(".nx-input")).to_be_enabled()
    assert dialogs == []


_KERNEL_READY = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext.session && w.sessionContext.session.kernel;
  return Boolean(kernel && kernel.status === 'idle' && w.sessionContext.isReady);
}"""


def test_an_injected_bio_stays_inert_text_in_the_panel(lab, page, dialogs):
    bio_sql = "SELECT github_login, name, bio FROM contributors WHERE github_login = 'mallory-injector'"
    open_with_panel(page, lab, "chat-xss.ipynb", user=f"panel-{uuid.uuid4().hex[:8]}")
    lab.model.set_script(
        [
            tool_calls([("psql", {"sql": bio_sql})]),
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
    ask(page, "Who is mallory-injector?")
    table = answers(page).last.locator(".nx-table")
    expect(table.locator("td").filter(has_text=XSS)).to_have_count(1, timeout=30_000)
    expect(answers(page).last.locator(".nx-dash-title")).to_have_text("mallory-injector <b>bold?</b>")
    ask(page, "Quote the bio")
    quote = answers(page).last.locator(".nx-md")
    expect(quote).to_contain_text(f"Their bio says: {XSS}", timeout=30_000)
    expect(quote).to_contain_text("<script>alert(3)</script>")
    assert quote.locator("a").count() == 0, "a javascript: link stays text"
    page.wait_for_timeout(500)
    assert page.locator(f"{PANEL} img, {PANEL} script, {PANEL} b").count() == 0
    assert dialogs == []


def _seed_long_conversation(db, user: str, pairs: int = 100) -> str:
    """``pairs`` questions and answers (every fourth a dashboard) stored as the agent stores them."""
    store = ConversationStore(db.admin_url, "acme-analytics", user)
    conversation = store.create(title="A long afternoon of questions")
    for i in range(pairs):
        question = f"Question {i + 1}: how are the leads of project {i % 7} doing?"
        store.append(conversation, "user", {"message": {"role": "user", "content": question}})
        if i % 4 == 3:
            response = {
                "type": "dashboard",
                "title": f"Project {i % 7}",
                "sections": [
                    {
                        "type": "widgets",
                        "items": [{"title": "Leads", "value": 100 + i}, {"title": "Hot", "value": i % 13}],
                    },
                    {
                        "type": "bars",
                        "label": "By status",
                        "items": [
                            {"name": s, "value": (i * k) % 50 + 1}
                            for k, s in enumerate(("new", "contacted", "qualified", "converted"), 1)
                        ],
                    },
                    {
                        "type": "table",
                        "columns": ["login", "score"],
                        "rows": [{"login": f"dev{j}", "score": 90 - j} for j in range(8)],
                        "total_rows": 8,
                    },
                ],
            }
        else:
            response = {
                "type": "message",
                "text": f"Answer {i + 1}: **{i % 13} hot leads**, most of them *new*.\n\n- warm: {i}\n- cold: {2 * i}",
            }
        store.append(
            conversation,
            "assistant",
            {
                "message": {"role": "assistant", "content": json.dumps(response)},
                "meta": {"response": response, "notes": []},
            },
        )
    store.close()
    return conversation


def test_a_200_message_conversation_stays_usable(lab, page, db, dialogs):
    user = f"panel-long-{uuid.uuid4().hex[:8]}"
    long = _seed_long_conversation(db, user)
    # A notebook's panel shows its own conversation: this one opens the stored one on purpose.
    write_notebook(
        lab,
        "chat-long.ipynb",
        [f"%env NEXUS_USER={user}", "%load_ext nexusleads_lab", f"%nexus resume {long}", "%nexus panel"],
    )
    open_notebook(page, lab, "chat-long.ipynb")
    started = time.monotonic()
    run_all_cells(page, wait=False)
    messages = page.locator(f"{PANEL} .nx-messages .nx-msg")
    expect(messages).to_have_count(200, timeout=60_000)
    shown_s = time.monotonic() - started
    first_render_ms = float(page.locator(PANEL).get_attribute("data-first-render-ms"))
    widen_side_area(page)

    # it scrolls: to the top and back to the latest answer
    scroller = page.locator(f"{PANEL} .nx-scroll")
    at_bottom = "(s) => s.scrollHeight - s.scrollTop - s.clientHeight < 4"
    page.wait_for_function(f"() => ({at_bottom})(document.querySelector('{PANEL} .nx-scroll'))", timeout=10_000)
    scroller.evaluate("(s) => { s.scrollTop = 0; }")
    expect(messages.first).to_be_in_viewport()
    expect(messages.last).not_to_be_in_viewport()
    scroller.evaluate("(s) => { s.scrollTop = s.scrollHeight; }")
    expect(messages.last).to_be_in_viewport()

    # it still takes a question, and only the new messages are rendered
    lab.model.set_script([text(message("Still here, all 200 messages later."))])
    node_before = messages.nth(10).evaluate("(n) => (n.dataset.probe = 'kept', n.dataset.key)")
    asked = time.monotonic()
    ask(page, "Are you still responsive?")
    expect(answers(page).last.locator(".nx-md")).to_have_text("Still here, all 200 messages later.", timeout=30_000)
    answer_s = time.monotonic() - asked
    expect(messages).to_have_count(202)
    assert messages.nth(10).get_attribute("data-probe") == "kept", f"message {node_before} was rebuilt"
    update_render_ms = float(page.locator(PANEL).get_attribute("data-render-ms"))
    expect(messages.last).to_be_in_viewport()
    # once the kernel has the model client warm, a turn in this long conversation
    lab.model.set_script([text(message("And again."))])
    asked = time.monotonic()
    ask(page, "Once more?")
    expect(answers(page).last.locator(".nx-md")).to_have_text("And again.", timeout=30_000)
    second_s = time.monotonic() - asked

    report = (
        f"200-message conversation: shown {shown_s:.2f} s after running the cells (kernel start of the panel, "
        f"history load, sync and render); first render {first_render_ms:.0f} ms in the browser; "
        f"the first question of the session answered on screen in {answer_s:.2f} s (includes the kernel building its "
        f"model client), the next in {second_s:.2f} s; rendering the new messages took {update_render_ms:.1f} ms"
    )
    print("\n" + report)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "panel-200-messages.txt").write_text(report + "\n")
    assert dialogs == []


# -- the panel at the side area's default width ------------------------------------------------------

WIDE_TOKEN = "leads_scored_in_the_whole_observation_window_per_team_and_day"  # longer than the SQL block is wide
TEAMS_SQL = (
    "SELECT team, day, avg_score AS " + WIDE_TOKEN + ", avg_score FROM (VALUES "
    "('Observability Platform Engineering', '2025-07-06', 12.5), ('Data Infrastructure', '2025-07-07', 3.0), "
    "('Streaming', '2025-07-08', 7.25)) AS lead_scores_by_team(team, day, avg_score) ORDER BY avg_score DESC"
)
REVIEW = "Weekly review of the Kafka Ecosystem project: funnel by status and new leads per week"
LONG_LABEL = "Average lead score per team over the whole observation window"
LONG_ERROR = (
    "The database refused the connection to /home/analyst/.local/share/nexusleads-lab/pgdata/a-folder-name-without-"
    "any-spaces-in-it-at-all/postgresql.sock while reading lead_scores_by_team_and_week"
)

_OVERFLOW = """(body) => {
  const limit = body.getBoundingClientRect().right + 0.5;
  const sideways = (el) => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX);
  const bad = [];
  for (const el of body.querySelectorAll('*')) {
    let p = el.parentElement, inside = false;
    for (; p && p !== body; p = p.parentElement) if (sideways(p)) { inside = true; break; }
    const r = el.getBoundingClientRect();
    if (!inside && r.width > 0 && r.right > limit) bad.push(`${el.tagName}.${el.className} ends ${Math.round(r.right - limit)} px past the panel`);
  }
  return {scrollWidth: body.scrollWidth, clientWidth: body.clientWidth, bad};
}"""

# On how many rendered lines ``token`` lies inside ``el`` (1: the line breaks around it, not inside it).
_LINES_OF = """(el, token) => {
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode()); ) {
    const at = node.textContent.indexOf(token);
    if (at < 0) continue;
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + token.length);
    return new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top))).size;
  }
  return -1;
}"""


def test_at_its_default_width_the_panel_wraps_between_words_and_nothing_leaves_it(lab, page, dialogs):
    user = f"panel-width-{uuid.uuid4().hex[:8]}"
    write_notebook(lab, "chat-width.ipynb", [f"%env NEXUS_USER={user}", "%load_ext nexusleads_lab", "%nexus panel"])
    open_notebook(page, lab, "chat-width.ipynb")
    run_all_cells(page)
    page.wait_for_selector(PANEL, state="attached", timeout=60_000)  # as JupyterLab opens it: not widened
    width = page.locator("#jp-right-stack").bounding_box()["width"]
    lab.model.set_script(
        [
            tool_calls(
                [("psql", {"sql": TEAMS_SQL})],
                usage={"prompt_tokens": 900, "completion_tokens": 100, "total_tokens": 1000},
            ),
            text(
                json.dumps(
                    {
                        "type": "dashboard",
                        "title": REVIEW,
                        "sections": [
                            {
                                "type": "widgets",
                                "items": [
                                    {
                                        "title": "Teams with scored leads this week",
                                        "source": "r1",
                                        "column": "avg_score",
                                    }
                                ],
                            },
                            {"type": "table", "title": LONG_LABEL, "source": "r1"},
                        ],
                    }
                ),
                usage={"prompt_tokens": 1000, "completion_tokens": 140, "total_tokens": 1140},
            ),
            http_error(400, LONG_ERROR),
        ]
    )
    ask(page, REVIEW)
    answer = answers(page).last
    expect(answer.locator(".nx-table tbody tr")).to_have_count(3, timeout=60_000)

    # what it cost, in the collapsed steps line: 1,000 + 1,140 tokens over the turn's two model calls
    toggle = answer.locator(".nx-steps-toggle")
    expect(toggle).to_have_text(re.compile(r"^Ran 1 step · (\d+ ms|\d+\.\d s) · 2,140 tokens$"))

    # one column's numbers share their decimals; dates and numbers stay on one line, words wrap whole
    table = answer.locator(".nx-table")
    expect(table.locator("tbody tr td:last-child")).to_have_text(["12.50", "7.25", "3.00"])
    cells = table.locator("tbody td")
    for word in ("Observability", "Engineering", "Infrastructure", "2025-07-06", "12.50"):
        cell_ = cells.filter(has_text=word).first
        assert cell_.evaluate(_LINES_OF, word) == 1, f"{word!r} is broken across lines"
    # labels cut to fit show their whole text on hover
    expect(answer.locator(".nx-section-label")).to_have_attribute("title", LONG_LABEL)
    expect(answer.locator(".nx-kpi-title")).to_have_attribute("title", "Teams with scored leads this week")
    title = page.locator(f"{PANEL} .nx-title-text")  # the stored title: the question, cut by the store
    expect(title).to_have_attribute("title", re.compile(r"^Weekly review of the Kafka Ecosystem project: funnel"))
    assert title.evaluate("(n) => n.scrollWidth > n.clientWidth"), "the header is narrower than the title"
    stored_title = title.get_attribute("title")

    # the query's SQL wraps between tokens; the token wider than the block scrolls inside it
    toggle.click()
    answer.locator(".nx-step-head").first.click()
    sql = answer.locator(".nx-step .nx-sql")
    expect(sql).to_have_text(TEAMS_SQL)
    for token in ("lead_scores_by_team(team,", "'Observability", "Engineering',", "avg_score"):
        assert sql.evaluate(_LINES_OF, token) == 1, f"the SQL breaks inside {token!r}"
    assert sql.evaluate("(pre) => pre.scrollWidth > pre.clientWidth"), "the wide token scrolls inside its block"

    # an error paragraph wraps inside its box
    ask(page, "And the weekly trend?")
    error = answers(page).last.locator(".nx-error")
    expect(error).to_contain_text("postgresql.sock", timeout=30_000)

    body = page.locator(f"{PANEL} .nx-scroll")
    measured = body.evaluate(_OVERFLOW)
    assert measured["scrollWidth"] <= measured["clientWidth"] and measured["bad"] == [], measured
    err_box, panel_box = error.bounding_box(), body.bounding_box()
    assert err_box["x"] + err_box["width"] <= panel_box["x"] + panel_box["width"] + 0.5
    answer.scroll_into_view_if_needed()
    screenshot(page, "panel-default-width.png")

    # the delete prompt names the conversation it deletes
    page.click(f"{PANEL} .nx-history-btn")
    row = page.locator(f"{PANEL} .nx-history .nx-conv").first
    expect(row.locator(".nx-conv-title")).to_have_attribute("title", stored_title)
    row.get_by_role("button", name="Delete").click()
    prompt = row.locator(".nx-conv-ask")
    expect(prompt).to_have_text("Delete “Weekly review of the Kafka…”?")
    assert prompt.evaluate("(n) => n.scrollWidth <= n.clientWidth"), "the prompt is shown whole"
    screenshot(page, "panel-default-width-delete.png")
    row.get_by_role("button", name="Keep").click()
    page.locator(f"{PANEL} .nx-history").get_by_role("button", name="Close").click()
    expect(page.locator(f"{PANEL} .nx-history")).to_be_hidden()

    # wider: the panel takes the side area's width
    widen_side_area(page, 900)
    grown = page.locator(PANEL).bounding_box()["width"]
    assert grown >= 880, f"the panel stays {grown:.0f} px wide in a 900 px side area (default {width:.0f} px)"
    expect(answers(page).nth(0).locator(".nx-table-wrap")).to_be_visible()
    table_box = answers(page).nth(0).locator(".nx-table-wrap").bounding_box()
    assert table_box["width"] > width, "the table uses the wider panel"
    answers(page).nth(0).locator(".nx-dash").scroll_into_view_if_needed()
    screenshot(page, "panel-wide.png")
    assert dialogs == []


# -- a kernel restart ------------------------------------------------------------------------------


def _nexus_tabs(page):
    return page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab", has_text="Nexus")


def _tab_index(page) -> int:
    return page.evaluate(
        "() => [...document.querySelectorAll('.jp-SideBar.jp-mod-right .lm-TabBar-tab')]"
        ".findIndex((t) => t.textContent.includes('Nexus'))"
    )


def test_after_a_kernel_restart_load_ext_alone_brings_back_the_same_conversation_in_the_same_tab(lab, page, dialogs):
    # A kernel as a new user's machine starts it: no NEXUS_USER or NEXUS_ORG; the notebook's first
    # cell sets them, as the shipped notebooks do.
    add_kernelspec(lab, "python3-bare", {"NEXUS_USER": "", "NEXUS_ORG": ""})
    user = f"restart-{uuid.uuid4().hex[:8]}"
    path = write_notebook(
        lab,
        "chat-restart.ipynb",
        [
            f"import os\nos.environ['NEXUS_USER'] = '{user}'\nos.environ['NEXUS_ORG'] = '{ORG}'",
            "%load_ext nexusleads_lab",
            "%nexus panel",
            "%nexus status",
        ],
    )
    use_kernel(path, "python3-bare")
    open_notebook(page, lab, "chat-restart.ipynb")
    for i in range(3):
        run_cell(page, i)
    page.wait_for_selector(PANEL, state="attached", timeout=60_000)
    widen_side_area(page)
    lab.model.set_script([text(message("Three tiers: hot, warm and cold."))])
    ask(page, "Which lead tiers exist?")
    expect(answers(page).last.locator(".nx-md")).to_have_text("Three tiers: hot, warm and cold.", timeout=30_000)
    expect(_nexus_tabs(page)).to_have_count(1)
    where = _tab_index(page)

    restart_kernel_from_the_menu(page)
    stale = page.locator(PANEL)
    expect(stale.locator(".nx-notice")).to_contain_text("this panel is disconnected", timeout=30_000)
    expect(stale.locator(".nx-notice code")).to_have_text("%load_ext nexusleads_lab")
    expect(stale.locator(".nx-input")).to_be_disabled()
    screenshot(page, "panel-after-restart.png")

    # exactly the line the panel names, nothing else of the notebook
    run_cell(page, 1)
    panel = page.locator(PANEL)
    expect(panel).to_have_count(1, timeout=30_000)
    expect(_nexus_tabs(page)).to_have_count(1)
    assert _tab_index(page) == where, "the panel came back in the place of its tab"
    expect(panel.locator(".nx-notice")).to_be_hidden()
    expect(panel.locator(".nx-input")).to_be_enabled()
    expect(panel.locator(".nx-title-text")).to_have_text("Which lead tiers exist?", timeout=30_000)
    expect(panel.locator(".nx-messages .nx-bot .nx-md")).to_have_text(["Three tiers: hot, warm and cold."])
    expect(panel.locator(".nx-subtitle")).to_contain_text(f"organization {ORG}")
    screenshot(page, "panel-restored.png")

    # the same person in the same conversation: the next question carries the earlier one
    lab.model.set_script([text(message("Five statuses."))])
    ask(page, "And statuses?")
    expect(answers(page).last.locator(".nx-md")).to_have_text("Five statuses.", timeout=30_000)
    questions = [m["content"] for m in lab.model.requests[0]["messages"] if m["role"] == "user"]
    assert questions == ["Which lead tiers exist?", "And statuses?"]
    run_cell(page, 3)
    status = page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(3).locator(".jp-OutputArea")
    expect(status).to_contain_text(f"user       {user} (from remembered for chat-restart.ipynb)")
    expect(status).to_contain_text(f"organization {ORG} (from remembered for chat-restart.ipynb;")

    # a panel the person closed stays closed after the next restart
    _nexus_tabs(page).click(button="middle")  # closes a tab, as its close icon does
    expect(page.locator(PANEL)).to_have_count(0)
    page.wait_for_timeout(500)  # the closed view tells the kernel
    restart_kernel_from_the_menu(page)
    run_cell(page, 1)
    page.wait_for_timeout(1000)
    expect(page.locator(PANEL)).to_have_count(0)
    expect(_nexus_tabs(page)).to_have_count(0)
    assert dialogs == []


# -- one event stream: the panel follows every turn and every confirmation --------------------------


def _prompt_busy(page, index: int) -> bool:
    return page.evaluate(
        "(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node.querySelector('.jp-InputPrompt').textContent.includes('*')",
        index,
    )


def test_questions_asked_in_cells_stream_into_the_open_panel_in_order_with_their_steps(lab, page, dialogs):
    first_q, second_q = "How are leads spread over tiers?", "And which tier is largest?"
    first_a = "The leads spread over three tiers: hot, warm and cold. " * 8
    second_a = "**Cold** is the largest tier by far. " * 6
    write_notebook(
        lab,
        "chat-live.ipynb",
        [
            f"%env NEXUS_USER=live-{uuid.uuid4().hex[:8]}",
            "%load_ext nexusleads_lab",
            "%nexus panel",
            f"%%nexus\n{first_q}",
            f"%%nexus\n{second_q}",
        ],
    )
    open_notebook(page, lab, "chat-live.ipynb")
    for index in range(3):
        run_cell(page, index)
    page.wait_for_selector(PANEL, state="attached", timeout=60_000)
    widen_side_area(page)
    expect(page.locator(f"{PANEL} .nx-empty")).to_be_visible()
    lab.model.set_script(
        [
            tool_calls([("psql", {"sql": STATUS_SQL})]),
            text(message(first_a.strip()), chunk_size=4, delay=0.02),
            text(message(second_a.strip()), chunk_size=4, delay=0.02),
        ]
    )

    run_cell(page, 3, wait=False)
    run_cell(page, 4, wait=False)
    # the first cell's question, its step and its answer streaming, in the panel while the cell runs
    expect(page.locator(f"{PANEL} .nx-user .nx-bubble").first).to_have_text(first_q, timeout=30_000)
    streaming = page.locator(f"{PANEL} .nx-live .nx-streaming")
    expect(streaming).to_contain_text("The leads spread", timeout=30_000)
    assert _prompt_busy(page, 3), "the panel showed the answer before the cell finished"
    expect(page.locator(f"{PANEL} .nx-live .nx-steps")).to_contain_text("1 step")
    # then the second cell's, after the first's answer
    expect(streaming).to_contain_text("is the largest tier", timeout=30_000)
    assert _prompt_busy(page, 4), "the second answer streamed into the panel while its cell ran"
    wait_for_idle(page)

    messages = page.locator(f"{PANEL} .nx-messages > .nx-msg")
    expect(messages).to_have_count(4, timeout=30_000)
    kinds = messages.evaluate_all("(nodes) => nodes.map((n) => n.classList.contains('nx-user') ? 'user' : 'bot')")
    assert kinds == ["user", "bot", "user", "bot"]
    expect(page.locator(f"{PANEL} .nx-messages .nx-user .nx-bubble")).to_have_text([first_q, second_q])
    first, second = answers(page).nth(0), answers(page).nth(1)
    expect(first.locator(".nx-steps-toggle")).to_contain_text("Ran 1 step")
    first.locator(".nx-steps-toggle").click()
    first.locator(".nx-step-head").click()
    expect(first.locator(".nx-sql")).to_have_text(STATUS_SQL)
    expect(first.locator(".nx-md")).to_have_text(first_a.strip())
    expect(second.locator(".nx-md")).to_have_text(second_a.strip().replace("**", ""))
    expect(second.locator(".nx-md strong").first).to_have_text("Cold")  # the kernel's Markdown, once it stands
    # the cells show their own answers as before
    expect(cell(page, 3)).to_contain_text("The leads spread")
    expect(cell(page, 4)).to_contain_text("largest tier")
    assert dialogs == []


def test_a_confirmation_made_in_a_cell_updates_the_panels_card(lab, page, db, dialogs):
    lead = int(db.engine_for(ORG).read("SELECT min(id) AS id FROM lead_scores").df["id"][0])
    sql = f"UPDATE lead_scores SET status = status WHERE id = {lead}"  # one row, changes nothing
    write_notebook(
        lab,
        "chat-live-confirm.ipynb",
        [
            f"%env NEXUS_USER=live-{uuid.uuid4().hex[:8]}",
            "%load_ext nexusleads_lab",
            "%nexus panel",
            "%%nexus\nTouch the first lead",
            "nexus.confirm()",
        ],
    )
    open_notebook(page, lab, "chat-live-confirm.ipynb")
    for index in range(3):
        run_cell(page, index)
    page.wait_for_selector(PANEL, state="attached", timeout=60_000)
    lab.model.set_script(
        [text(json.dumps({"type": "confirm", "id": "t1", "title": "Touch one lead", "summary": "s", "sql": sql}))]
    )
    run_cell(page, 3)
    card = page.locator(f"{PANEL} .nx-confirm")
    expect(card).to_be_visible(timeout=30_000)
    expect(card.locator(".nx-confirm-yes")).to_be_enabled()
    run_cell(page, 4)  # nexus.confirm(): the code path of the cell card's button
    expect(card.locator(".nx-outcome")).to_have_text("Done: 1 row changed.", timeout=15_000)
    expect(card.locator(".nx-confirm-yes")).to_be_disabled()
    expect(card.locator(".nx-confirm-no")).to_be_disabled()
    assert page.locator(f"{PANEL} .nx-messages .nx-user").count() == 1, "the outcome is no question bubble"
    assert dialogs == []


FAKE_MODEL_RENDER = """async ({ esm, state }) => {
  const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
  const { default: widget } = await import(url);
  const handlers = {};
  const sent = [];
  const used = new Set();
  const model = {
    get: (name) => state[name],
    set: (name, value) => { state[name] = value; },
    on: (name, fn) => { (handlers[name] = handlers[name] || []).push(fn); },
    off: (name, fn) => { handlers[name] = (handlers[name] || []).filter((g) => g !== fn); },
    send: (msg) => { sent.push(msg); },
    save_changes: () => {},
  };
  const spy = new Proxy(model, { get: (target, key) => { used.add(String(key)); return target[key]; } });
  const el = document.getElementById("root");
  const cleanup = widget.render({ model: spy, el });
  const change = (patch) => {
    Object.assign(state, patch);
    for (const name of Object.keys(patch)) for (const fn of handlers["change:" + name] || []) fn();
  };
  window.fake = { cleanup, change, sent, used, handlers, state };
  return typeof cleanup;
}"""


def test_the_panel_renders_over_a_plain_object_with_the_models_five_calls(page, dialogs):
    from nexusleads_lab.agent.events import AgentAction
    from nexusleads_lab.ui.chat import answer_item
    from nexusleads_lab.ui.panel import ChatPanel
    from nexusleads_lab.words import UI

    answer = answer_item(
        "a1",
        {"type": "message", "text": f"Hello **there**: ![pixel](http://127.0.0.1:9/p.png) {XSS}"},
        [],
        [
            AgentAction(
                action="command",
                call_id="c1",
                tool="psql",
                status="completed",
                command=STATUS_SQL,
                result_id="r1",
                rows=4,
                truncated=False,
                elapsed_ms=3.2,
            ),
        ],
        elapsed_ms=1200,
    )
    state = {
        "messages": [{"key": "u1", "role": "user", "text": "Hi"}, answer],
        "conversations": [],
        "conversation_id": None,
        "busy": False,
        "turn": {},
        "streaming": "",
        "notice": "",
        "model_name": "scripted",
        "scope": f"organization {ORG}",
        "sql_cell": "%%nexus sql\n{sql}",
        "words": UI,
    }
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_content('<!doctype html><html><body><div id="root"></div></body></html>')
    assert page.evaluate(FAKE_MODEL_RENDER, {"esm": ChatPanel._esm, "state": state}) == "function"

    root = page.locator("#root .nx-panel")
    expect(root.locator(".nx-user .nx-bubble")).to_have_text("Hi")
    body = root.locator(".nx-bot .nx-md")
    expect(body.locator("strong")).to_have_text("there")
    expect(body).to_contain_text(XSS)  # raw HTML in the answer is text
    expect(body.locator("a.nx-md-image")).to_have_attribute("href", "http://127.0.0.1:9/p.png")
    assert root.locator("img").count() == 0
    expect(root.locator(".nx-steps-toggle")).to_contain_text("Ran 1 step")
    expect(root.locator(".nx-subtitle")).to_have_text(f"PLG leads · organization {ORG} · scripted")

    # a live turn: its steps and the answer so far as plain text (Markdown marks and all)
    page.evaluate("""() => fake.change({ busy: true, turn: { id: "t2", phase: "working", steps: [
        { call_id: "c2", tool: "psql", status: "started", command: "SELECT 1" }] } })""")
    page.evaluate("() => fake.change({ streaming: 'So far **bold** <b>x</b>' })")
    expect(root.locator(".nx-live .nx-streaming")).to_contain_text("So far **bold** <b>x</b>")
    expect(root.locator(".nx-live .nx-step-what")).to_have_text("SELECT 1")
    assert root.locator(".nx-live b, .nx-live strong").count() == 0

    # the view's requests go back through send; render's cleanup takes everything away
    page.evaluate("() => fake.change({ busy: false, turn: {}, streaming: '' })")
    root.locator(".nx-input").fill("Top hot leads")
    root.locator(".nx-input").press("Enter")
    assert page.evaluate("() => fake.sent") == [{"type": "ask", "text": "Top hot leads"}]
    page.evaluate("() => fake.cleanup()")
    assert page.locator("#root *").count() == 0
    assert page.evaluate("() => Object.values(fake.handlers).every((fns) => fns.length === 0)")
    used = set(page.evaluate("() => [...fake.used]"))
    assert used <= {"get", "set", "on", "off", "send", "save_changes", "widget_manager", "comm_live"}, used
    assert [u for u in requests if not u.startswith(("about:", "blob:", "data:"))] == []
    assert dialogs == []
