"""``%%nexus`` cells in real JupyterLab + Chromium: the scripted model, the real database."""

from __future__ import annotations

import json
import re
import uuid

import nbformat
import psycopg
import pytest
from playwright.sync_api import expect
from scripted import KPI_SQL, STATUS_SQL, kpi_widgets

from nexusleads_lab.testing.modelserver import text, tool_calls

from lab_harness import cell, open_notebook, run_cell, screenshot, wait_for_idle, write_notebook

ORG = "acme-analytics"  # the lab's NEXUS_ORG (see conftest.py): every answer is in its scope

pytestmark = pytest.mark.browser


def setup_cells(*cells: str) -> list[str]:
    """A notebook of its own user (other browser tests share this lab), the extension, then ``cells``."""
    return [f"%env NEXUS_USER=cell-{uuid.uuid4().hex[:8]}\n%load_ext nexusleads_lab", *cells]


XSS = "<img src=x onerror=alert(1)>"
REPOS_SQL = (
    "SELECT r.full_name, count(*) AS contributors FROM repository_contributors rc "
    "JOIN repositories r ON r.id = rc.repository_id GROUP BY r.full_name ORDER BY contributors DESC, r.full_name LIMIT 20"
)
HOT_SQL = (
    "SELECT c.github_login, c.name, c.company, l.score, l.status FROM lead_scores l "
    "JOIN contributors c ON c.id = l.contributor_id WHERE l.tier = 'hot' ORDER BY l.score DESC, c.github_login LIMIT 50"
)


def dashboard_script() -> list:
    """Four queries, then 4 KPIs, a 20-bar chart, a 50-row table and status pills (also the benchmark's)."""
    return [
        tool_calls([("psql", {"sql": KPI_SQL}), ("psql", {"sql": REPOS_SQL})]),
        tool_calls([("psql", {"sql": HOT_SQL}), ("psql", {"sql": STATUS_SQL})]),
        text(
            json.dumps(
                {
                    "type": "dashboard",
                    "title": "Lead pipeline overview",
                    "sections": [
                        kpi_widgets(hot="Hot leads", average=True),
                        {
                            "type": "bars",
                            "label": "Top 20 repositories by contributors",
                            "source": "r2",
                            "x": "full_name",
                            "y": "contributors",
                        },
                        {"type": "table", "title": "Hottest 50 leads", "source": "r3", "limit": 50},
                        {
                            "type": "pills",
                            "label": "Pipeline status",
                            "source": "r4",
                            "label_column": "status",
                            "count_column": "n",
                        },
                    ],
                }
            ),
            chunk_size=64,
        ),
    ]


def test_a_question_cell_shows_steps_kpis_chart_and_table(lab, page, db):
    lab.model.set_script(dashboard_script())
    write_notebook(lab, "cell-dashboard.ipynb", setup_cells("%%nexus\nGive me an overview of the lead pipeline"))
    open_notebook(page, lab, "cell-dashboard.ipynb")
    run_cell(page, 0)
    run_cell(page, 1)
    out = cell(page, 1).locator(".jp-OutputArea")

    # the steps: collapsed to "Ran 4 steps", each expandable to its SQL, rows and time
    steps = out.locator(".nxl-steps").first
    expect(steps.locator("summary").first).to_have_text(re.compile(r"^Ran 4 steps · [\d.]+ (ms|s) · [\d,]+ tokens$"))
    expect(steps.locator(".nxl-sql").first).to_be_hidden()
    steps.locator("summary").first.click()
    first_step = steps.locator(".nxl-step").first
    expect(first_step.locator(".nxl-step-meta")).to_contain_text("1 row")
    first_step.locator("summary").click()
    expect(first_step.locator(".nxl-sql")).to_have_text(KPI_SQL)
    steps.locator("summary").first.click()  # collapse again for the screenshot

    # the KPI values are the database's
    truth = db.engine_for(ORG).read(KPI_SQL).df.iloc[0]
    kpis = out.locator(".nxl-kpi")
    expect(kpis).to_have_count(4)
    expect(kpis.nth(0).locator(".nxl-kpi-value")).to_have_text(f"{int(truth['leads']):,}")
    expect(kpis.nth(1).locator(".nxl-kpi-value")).to_have_text(f"{int(truth['hot']):,}")

    # the chart is drawn by JupyterLab's own Vega renderer (its picture twin is not shown here)
    chart = out.locator(".jp-RenderedVega5").first
    expect(chart.locator("canvas")).to_be_attached(timeout=30_000)
    expect(out.locator(".jp-RenderedImage")).to_have_count(0)
    bars = chart.evaluate(
        "n => { const c = n.querySelector('canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let k = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && d[i + 2] > 200 && d[i + 1] < 140) k++; return k; }"
    )
    assert bars > 2000, f"the bars are painted ({bars} accent pixels)"

    # the table has the organization's hottest leads (at most 50)
    hot = db.engine_for(ORG).read(HOT_SQL).df
    first_login = hot["github_login"][0]
    table = out.locator(".nxl-table")
    expect(table.locator("tbody tr")).to_have_count(len(hot))
    expect(table.locator("tbody tr").first.locator("td").first).to_have_text(first_login)
    expect(out.locator(".nxl-pill")).not_to_have_count(0)

    page.wait_for_timeout(300)
    screenshot(page, "dashboard.png", cell(page, 1))


def test_a_turn_shows_dots_then_live_steps_then_the_answer_typing_in(lab, page):
    answer = "Hot leads are the **smallest** tier, and most of them have not been contacted yet. " * 3
    lab.model.set_script(
        [
            # about two seconds of pure CPU (pg_sleep is not on the read path's allow-list)
            tool_calls(
                [("psql", {"sql": "SELECT count(*) AS n FROM (SELECT generate_series(1, 100000000)) AS busy"})],
                delay=0.2,
            ),
            text(json.dumps({"type": "message", "text": answer}), chunk_size=4, delay=0.02),
        ]
    )
    write_notebook(lab, "cell-live.ipynb", setup_cells("%%nexus\nHow many leads are there?"))
    open_notebook(page, lab, "cell-live.ipynb")
    run_cell(page, 0)
    run_cell(page, 1, wait=False)
    out = cell(page, 1).locator(".jp-OutputArea")
    expect(out.locator(".nxl-dots")).to_be_visible(timeout=20_000)
    running = out.locator(".nxl-step[data-status='started']")
    expect(running).to_be_visible(timeout=20_000)
    expect(out.locator(".nxl-steps > summary")).to_have_text("Working… 1 step")
    expect(out.locator(".nxl-dots")).to_be_hidden()
    expect(running.locator(".nxl-step-cmd")).to_contain_text("generate_series(1, 100000000)")
    screenshot(page, "steps-live.png", cell(page, 1))
    stream = out.locator(".nxl-stream")
    expect(stream).to_contain_text("Hot leads are the", timeout=20_000)
    expect(out.locator(".nxl-step[data-status='completed'] .nxl-step-meta")).to_contain_text("1 row")
    screenshot(page, "answer-streaming.png", cell(page, 1))
    wait_for_idle(page)
    expect(out.locator(".nxl-steps > summary")).to_have_text(
        re.compile(r"^Ran 1 step · [\d.]+ (ms|s) · [\d,]+ tokens$")
    )
    expect(out.locator(".nxl-md strong")).to_have_count(3)  # the streamed text, now rendered markdown
    expect(out.locator(".nxl-dots")).to_have_count(0)


def test_confirm_changes_the_database_exactly_once_and_shows_the_outcome(lab, page, db):
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM lead_scores WHERE status = 'new' AND tier = 'hot' ORDER BY id LIMIT 3"
            )
        ]
    id_list = ", ".join(map(str, ids))
    sql = f"UPDATE lead_scores SET status = 'contacted', status_changed_at = now() WHERE id IN ({id_list})"
    lab.model.set_script(
        [
            text(
                json.dumps(
                    {
                        "type": "confirm",
                        "id": "mark-3",
                        "title": "Mark 3 hot leads as contacted",
                        "summary": "Sets status to contacted for the three hottest new leads.",
                        "sql": sql,
                    }
                )
            ),
        ]
    )
    write_notebook(lab, "cell-confirm.ipynb", setup_cells("%%nexus\nMark the top three new hot leads as contacted"))
    open_notebook(page, lab, "cell-confirm.ipynb")
    run_cell(page, 0)
    run_cell(page, 1)
    out = cell(page, 1).locator(".jp-OutputArea")
    card = out.locator(".nxl-confirm-live")
    card.wait_for(state="attached", timeout=30_000)
    expect(card.locator(".nxl-sql")).to_have_text(sql)
    expect(card.locator(".nxl-dry")).to_have_text("Preview: this changes 3 rows in lead_scores.")
    # the preview: each lead by id, its status going from new to contacted, before any click
    rows = card.locator(".nxl-pv-table tbody tr")
    expect(rows).to_have_count(3)
    expect(card.locator(".nxl-pv-table th")).to_have_text(["id", "status", "status_changed_at"])
    for i, lead in enumerate(ids):
        expect(rows.nth(i).locator("td")).to_have_count(3)
        expect(rows.nth(i).locator("td").nth(0)).to_have_text(str(lead))
        expect(rows.nth(i).locator("td").nth(1)).to_have_text("new → contacted")
    expect(rows.first.locator(".nxl-pv-after").first).to_be_visible()
    expect(card.locator(".nxl-pv-more")).to_have_count(0)  # all three rows are shown
    expect(out.locator(".nxl-confirm")).to_have_count(
        1
    )  # the card once: its HTML form is for viewers without the widget
    screenshot(page, "confirm.png", cell(page, 1))

    def statuses():
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            return [r[0] for r in conn.execute(f"SELECT status FROM lead_scores WHERE id IN ({id_list}) ORDER BY id")]

    assert statuses() == ["new"] * 3, "nothing is written before the click"
    confirm = card.get_by_role("button", name="Confirm")
    confirm.dblclick()  # a double click must not run it twice
    # once resolved, the card is its final static form: the outcome, no buttons
    done = out.locator(".nxl-confirm-static")
    expect(done.locator(".nxl-outcome")).to_have_text("Done: 3 rows changed.", timeout=15_000)
    expect(out.locator(".nxl-confirm")).to_have_count(1)
    expect(out.get_by_role("button")).to_have_count(0)
    try:
        assert statuses() == ["contacted"] * 3
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            audit = conn.execute("SELECT count(*), min(sql) FROM write_audit WHERE sql = %s", (sql,)).fetchone()
        assert audit == (1, sql)
        screenshot(page, "confirm-done.png", cell(page, 1))
        # the saved notebook keeps the card once, in its final state, for readers without a kernel
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=15_000)
        saved = nbformat.read(lab.root / "cell-confirm.ipynb", as_version=4)
        htmls = [o.get("data", {}).get("text/html", "") for o in saved.cells[1].outputs]
        twin = [h for h in htmls if 'class="nxl-confirm ' in h]
        assert len(twin) == 1 and "Done: 3 rows changed." in twin[0] and "Not confirmed" not in twin[0]
        assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in saved.cells[1].outputs)
        assert (
            len(re.findall(r'<span class="nxl-pv-after nxl-pv-short"( style="[^"]*")?>contacted</span>', twin[0])) == 3
        )  # and what it changed
    finally:
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            conn.execute(f"UPDATE lead_scores SET status = 'new' WHERE id IN ({id_list})")


def test_an_injected_bio_renders_as_inert_text(lab, page):
    bio_sql = "SELECT github_login, name, bio FROM contributors WHERE github_login = 'mallory-injector'"
    lab.model.set_script(
        [
            tool_calls([("psql", {"sql": bio_sql})]),
            text(
                json.dumps(
                    {"type": "dashboard", "title": "mallory-injector", "sections": [{"type": "table", "source": "r1"}]}
                )
            ),
            text(json.dumps({"type": "message", "text": f"Their bio says: {XSS} (I will not follow it)."})),
        ]
    )
    write_notebook(lab, "cell-xss.ipynb", setup_cells("%%nexus\nWho is mallory-injector?", "%%nexus\nQuote the bio"))
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_notebook(page, lab, "cell-xss.ipynb")
    for i in range(3):
        run_cell(page, i)
    table_cell = cell(page, 1)
    expect(table_cell.locator(".nxl-table td").filter(has_text=XSS)).to_have_count(1)
    expect(cell(page, 2).locator(".nxl-md")).to_contain_text(XSS)
    page.wait_for_timeout(500)
    assert dialogs == []
    assert page.locator(".jp-OutputArea img[src='x']").count() == 0
    screenshot(page, "xss.png", table_cell)
