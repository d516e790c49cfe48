"""``%nexus`` in a real IPython shell: the scripted model through the real openai client, the real database."""

from __future__ import annotations

import _thread
import base64
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import types
import uuid
from html import unescape
from itertools import pairwise
from pathlib import Path

import nbformat
import pytest
from IPython.utils.capture import capture_output
from scripted import STATUS_SQL, TIER_SQL, dashboard, message

from nexusleads_lab.agent.streaming import partial_display_text
from nexusleads_lab.session import get_session
from nexusleads_lab.testing.modelserver import ModelServer, Script, text, tool_calls
from nexusleads_lab.ui.charts import VEGA_MIME as VEGA
from nexusleads_lab.ui.parts import WIDGET_VIEW
from nexusleads_lab.ui.turn import TurnView

from checks import fingerprint, lead_sequences

API_KEY = "sk-test-magic-SECRET-0123456789"
ORG = "northwind-data"  # every assistant here is scoped to it, as NEXUS_ORG would
BIO_SQL = "SELECT github_login, bio FROM contributors WHERE github_login = 'mallory-injector'"
XSS = "<img src=x onerror=alert(1)>"


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ip(tmp_path_factory, ipython_shell):
    with pytest.MonkeyPatch.context() as env:  # what the session remembers stays in a throwaway home
        env.setenv("NEXUS_HOME", str(tmp_path_factory.mktemp("nexus-home")))
        env.delenv("JPY_SESSION_NAME", raising=False)
        ipython_shell.run_cell("%load_ext nexusleads_lab")
        yield ipython_shell


@pytest.fixture()
def nexus(ip, scripted_assistant):
    """``script(steps)`` points the kernel session's assistant at a fresh scripted model."""
    session = get_session()

    def script(steps, *, user: str | None = None) -> ModelServer:
        assistant = scripted_assistant(steps, user=user, org=ORG, api_key=API_KEY)
        session.attach(assistant)
        return assistant.server

    session.frames.clear()
    yield script
    session.attach(None)  # before scripted_assistant closes them


def run(ip, cell: str):
    """Run a cell; return (result, outputs, stdout, stderr)."""
    with capture_output() as cap:
        result = ip.run_cell(cell)
    return result, cap.outputs, cap.stdout, cap.stderr


def htmls(outputs) -> str:
    return "\n".join(o.data.get("text/html", "") for o in outputs)


def preview_rows(card_html: str) -> list[list[str]]:
    """The confirm card's preview table as the person reads it: one list of cell texts per row."""
    rows = re.findall(r'<tr data-action="\w+">(.*?)</tr>', card_html)
    cell = lambda td: unescape(re.sub(r"<[^>]+>", "", td))  # noqa: E731
    return [[cell(td) for td in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in rows]


def widget(model_id: str):
    from ipywidgets.widgets import widget as w

    registry = getattr(w, "_instances", None) or w.Widget.widgets
    return registry[model_id]


FULL_DASHBOARD = [
    tool_calls([("psql", {"sql": TIER_SQL}), ("psql", {"sql": STATUS_SQL})]),
    text(
        dashboard(
            {
                "type": "widgets",
                "items": [
                    {"title": "Tiers", "value": "3", "subtext": "hot, warm, cold"},
                    {"title": "Hot leads", "source": "r1", "column": "n", "row": 1},
                ],
            },
            {"type": "bars", "label": "Leads by tier", "source": "r1", "x": "tier", "y": "n"},
            {"type": "table", "title": "Pipeline", "source": "r2"},
            {"type": "pills", "label": "Status", "source": "r2", "label_column": "status", "count_column": "n"},
            title="Lead overview",
        )
    ),
]


# -- loading ------------------------------------------------------------------------------------


def test_loading_the_extension_imports_nothing_heavy():
    probe = textwrap.dedent(
        """
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        before = set(sys.modules)
        shell.run_line_magic("load_ext", "nexusleads_lab")
        assert "nexus" in shell.magics_manager.magics["cell"]
        heavy = ("pandas", "openai", "altair", "psycopg", "pyarrow", "anywidget", "vl_convert", "httpx")
        print(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- asking -------------------------------------------------------------------------------------


def test_a_cell_question_shows_live_steps_then_the_dashboard_and_keeps_every_frame(ip, nexus, db):
    nexus(FULL_DASHBOARD)
    result, outputs, _, _ = run(ip, "%%nexus -o tiers\nHow are leads spread over tiers?")
    assert result.success, result.error_in_exec
    live, summary, *answer = outputs
    # the live view first, then the same output replaced by the static steps summary + KPI cards
    assert WIDGET_VIEW in live.data and live.update is False
    assert summary.update is True and summary.transient["display_id"] == live.transient["display_id"]
    assert "Ran 2 steps" in summary.data["text/html"] and "nxl-kpi" in summary.data["text/html"]
    assert "Lead overview" in summary.data["text/html"]
    assert TIER_SQL.replace("*", "*") in summary.data["text/html"]  # SQL is there, inside the collapsed step
    # the chart holds its place until the table below is shown, then becomes one output:
    # Vega for JupyterLab's renderer and a PNG for viewers without it, no widget, no HTML
    chart_slot, rest, chart = answer
    assert "nxl-table" in rest.data["text/html"] and "nxl-pill" in rest.data["text/html"]
    assert chart.update and chart.transient["display_id"] == chart_slot.transient["display_id"]
    assert set(chart.data) == {VEGA, "image/png", "text/plain"}
    assert chart.metadata[VEGA]["embed_options"]["actions"] is False
    assert chart.data[VEGA]["marks"] and base64.b64decode(chart.data["image/png"]).startswith(b"\x89PNG")
    # every DataFrame is in the notebook, with its SQL
    truth = db.engine_for(ORG).read(TIER_SQL).df
    session = get_session()
    assert list(session.frames) == ["r1", "r2"]
    assert ip.user_ns["tiers"] is session.frames["r2"] is ip.user_ns["_nexus_df"] is session.df
    assert session.frames["r1"].attrs["sql"] == TIER_SQL and ip.user_ns["tiers"].attrs["sql"] == STATUS_SQL
    assert list(session.frames["r1"]["n"]) == list(truth["n"])
    assert ip.user_ns["nexus"] is session


def test_every_static_part_carries_a_fallback_for_viewers_without_a_kernel(ip, nexus):
    nexus(FULL_DASHBOARD)
    _, outputs, _, _ = run(ip, "%%nexus\noverview please")
    final = [o for o in outputs if WIDGET_VIEW not in o.data]
    html = htmls(final)
    for needle in ("nxl-kpi", "nxl-table", "nxl-pill", "Ran 2 steps"):
        assert needle in html
    # in their final state, no output is a widget alone, and each chart carries its picture
    live = [o for o in outputs if WIDGET_VIEW in o.data]
    assert live and all((o.transient or {}).get("display_id") for o in live), "the turn ran as a live view"
    final = {}
    for o in outputs:
        key = (o.transient or {}).get("display_id") or id(o)
        final[key] = o if o.update or key not in final else final[key]
    assert not any(WIDGET_VIEW in o.data for o in final.values())
    charts = [o for o in final.values() if VEGA in o.data]
    assert charts and all("image/png" in o.data and "text/html" not in o.data for o in charts)


def test_a_trend_is_a_line_chart_and_static_charts_can_be_asked_for(ip, nexus):
    monthly = "SELECT date_trunc('month', scored_at) AS month, tier, count(*) AS n FROM lead_scores GROUP BY 1, 2 ORDER BY 1, 2"
    line = {"type": "line", "label": "Leads scored per month", "source": "r1", "x": "month", "y": "n", "series": "tier"}
    nexus(
        [
            tool_calls([("psql", {"sql": monthly})]),
            text(dashboard(line)),
            tool_calls([("psql", {"sql": monthly})]),
            text(dashboard(line)),
        ]
    )
    _, outputs, _, _ = run(ip, "%nexus leads scored per month by tier")
    chart = next(o for o in outputs if VEGA in o.data and o.update)
    assert "Leads scored per month" in json.dumps(chart.data[VEGA]) and "hot" in json.dumps(chart.data[VEGA])
    assert chart.data["text/plain"].startswith("Leads scored per month: line chart")
    try:
        run(ip, "%config Nexus.interactive_charts = False")
        _, outputs, _, _ = run(ip, "%nexus the same, as a picture")
    finally:
        run(ip, "%config Nexus.interactive_charts = True")
    widgets = [o for o in outputs if WIDGET_VIEW in o.data]
    assert len(widgets) == 1, "only the live turn view"
    picture = next(o for o in outputs if "image/png" in o.data)
    assert VEGA not in picture.data, "the chart is a picture only"


def test_a_message_renders_as_sanitised_markdown(ip, nexus):
    nexus([text(message(f"**Bold** and `code`. The bio says {XSS} <script>alert('x')</script>"))])
    _, outputs, _, _ = run(ip, "%nexus say something")
    html = htmls(outputs)
    assert re.search(r"<strong( style=\"[^\"]*\")?>Bold</strong>", html) and re.search(
        r"<code( style=\"[^\"]*\")?>code</code>", html
    )
    assert XSS not in html and "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_injected_bio_is_inert_text_in_tables(ip, nexus):
    nexus(
        [
            tool_calls([("psql", {"sql": BIO_SQL})]),
            text(dashboard({"type": "table", "source": "r1"}, title=f"Who is {XSS}?")),
        ]
    )
    _, outputs, _, _ = run(ip, "%%nexus\nTell me about mallory-injector")
    html = htmls(outputs)
    assert "mallory-injector" in html
    assert "<img" not in html.replace("&lt;img", "") and "<script>alert" not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 2  # the title and the bio cell


def test_live_updates_reach_the_browser_at_most_30_times_a_second(ip, nexus, monkeypatch):
    sent = []
    original = TurnView.send_state
    construction = {"_esm", "_css", "_anywidget_id"}  # anywidget sends these once as the view is built

    def spy(self, key=None):
        if not (isinstance(key, str) and key in construction):
            sent.append(time.monotonic())
        return original(self, key)

    monkeypatch.setattr(TurnView, "send_state", spy)
    nexus([text(message("word " * 240), chunk_size=3, delay=0.004)])  # ~400 chunks over ~1.6 s
    started = time.monotonic()
    result, _, _, _ = run(ip, "%nexus talk for a while")
    elapsed = time.monotonic() - started
    assert result.success
    during = [s for s in sent if s <= started + elapsed]
    assert len(during) >= 5, "the view updated live"
    gaps = [round(b - a, 4) for a, b in pairwise(during)]
    # the first update, one every 1/30 s, the final state, and the emptying before it closes
    assert len(during) <= 30 * elapsed + 3, (len(during), elapsed, gaps)


def test_the_live_text_is_always_what_some_prefix_of_the_answer_shows(ip, nexus, monkeypatch):
    sent: list[str] = []
    original = TurnView.send_state

    def spy(self, key=None):
        keys = [key] if isinstance(key, str) else list(key or [])
        if "text" in keys:
            sent.append(self.text)
        return original(self, key)

    monkeypatch.setattr(TurnView, "send_state", spy)
    answer = "Here is what I found:\n\n- `hot` leads {most of them}\n- warm\n\n```sql\nSELECT 1\n```\nDone."
    nexus([text(answer, chunk_size=1, delay=0.004)])  # prose: a fence and a brace are held back, then shown
    result, _, _, _ = run(ip, "%nexus what did you find?")
    assert result.success
    possible = {partial_display_text(answer[:i]) for i in range(len(answer) + 1)}
    shown = [v for v in sent if v]
    assert len(shown) >= 5, "the text streamed into the cell"
    assert all(v in possible for v in shown), [v for v in shown if v not in possible]
    assert shown[-1] == answer


def test_interrupting_the_kernel_stops_the_turn_cleanly(ip, nexus):
    server = nexus([text(message("slow " * 400), chunk_size=4, delay=0.02), text(message("after the stop"))])
    threading.Timer(0.6, _thread.interrupt_main).start()
    result, outputs, _, _ = run(ip, "%nexus go slowly")
    assert result.success, "an interrupt ends the turn, not the cell with a traceback"
    assert "Stopped" in htmls(outputs)
    _, outputs, _, _ = run(ip, "%nexus and now?")
    assert "after the stop" in htmls(outputs)
    assert len(server.requests) == 2


def test_model_override_new_and_thread_options(ip, nexus):
    server = nexus([text(message("one")), text(message("two")), text(message("three"))])
    session = get_session()
    run(ip, "%nexus --model special-model first question")
    first = session.thread_id
    assert server.requests[0]["model"] == "special-model" and session.assistant.model != "special-model"
    run(ip, "%nexus --new second question")
    assert session.thread_id not in (None, first)
    run(ip, f"%nexus --thread {first[:8]} third question")
    assert session.thread_id == first
    users = [m["content"] for m in server.requests[2]["messages"] if m["role"] == "user"]
    assert users == ["first question", "third question"]


def test_config_sets_the_model_and_opens_the_sql(ip, nexus):
    server = nexus([tool_calls([("psql", {"sql": TIER_SQL})]), text(message("done"))])
    try:
        run(ip, "%config Nexus.model = 'configured-model'")
        run(ip, "%config Nexus.show_sql = True")
        _, outputs, _, _ = run(ip, "%nexus tiers?")
    finally:
        run(ip, "%config Nexus.show_sql = False")
        run(ip, "%config Nexus.model = None")
    assert server.requests[0]["model"] == "configured-model"
    assert re.search(r'<details class="nxl-steps" (style="[^"]*" )?open', htmls(outputs))


def test_config_model_renames_the_open_panels_header_at_once(ip, nexus, monkeypatch):
    from nexusleads_lab.ui.panel import panel_for

    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)  # a live model: the header names it
    monkeypatch.delenv("NEXUS_REPLAY", raising=False)
    nexus([text(message("done"))])
    panel = panel_for(get_session())
    before = panel.model_name
    try:
        run(ip, "%config Nexus.model = 'configured-model'")
        assert panel.model_name == "configured-model" != before
    finally:
        run(ip, "%config Nexus.model = None")
    assert panel.model_name == before, "back to the environment's model"


def test_a_failed_turn_fails_the_cell_with_one_paragraph(ip, nexus):
    nexus([tool_calls([("psql", {"sql": TIER_SQL})])])  # then the script runs out: the model service answers 500
    result, outputs, stdout, stderr = run(ip, "%nexus -o tiers anything")
    assert not result.success, "Run All stops at the question that failed"
    shown = (stdout + stderr).strip().splitlines()
    assert len(shown) == 1 and "HTTP 500" in shown[0] and "Traceback" not in stdout + stderr
    assert "Ran 1 step" in htmls(outputs), "the steps that did run stay visible"
    assert ip.user_ns["tiers"].attrs["sql"] == TIER_SQL, "and their DataFrames are kept"


def test_a_turn_result_prints_as_one_line(ip, nexus):
    nexus([tool_calls([("psql", {"sql": TIER_SQL})]), text(message("ok"))])
    _, _, stdout, _ = run(ip, "nexus.ask('tiers?')")
    assert re.search(r"<TurnResult message · 1 steps · r1>", stdout), stdout


# -- confirm ------------------------------------------------------------------------------------


def test_the_confirm_card_runs_the_shown_sql_once_and_records_the_outcome(ip, nexus, db):
    ids = (
        db.engine_for(ORG).read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 2").df["id"].tolist()
    )
    sql = f"UPDATE lead_scores SET status = 'contacted', status_changed_at = now() WHERE id IN ({ids[0]}, {ids[1]})"
    nexus(
        [
            text(
                json.dumps(
                    {"type": "confirm", "id": "x", "title": "Mark 2 contacted", "summary": "Two leads", "sql": sql}
                )
            )
        ]
    )
    _, outputs, _, _ = run(ip, "%nexus mark these two as contacted")
    card_output = next(
        o for o in outputs if WIDGET_VIEW in o.data and o.update is False and "CONFIRM" in o.data["text/plain"]
    )
    twin = card_output  # one output: the live card, and the same card as HTML for viewers without it
    assert "nxl-confirm-static" in twin.data["text/html"] and "<strong>2</strong> rows" in twin.data["text/html"]
    # before the click the person sees each lead's status go from new to contacted
    assert [row[:2] for row in preview_rows(twin.data["text/html"])] == [[str(i), "new → contacted"] for i in ids]
    card = widget(card_output.data[WIDGET_VIEW]["model_id"])
    assert [(s["action"], s["rows"]) for s in card.proposal["preview"]] == [("update", 2)]
    try:
        with capture_output() as cap:
            card.handle({"action": "confirm", "sql": card.proposal["sql"]})
            card.handle({"action": "confirm", "sql": card.proposal["sql"]})  # a double click
        assert card.status == "confirmed" and card.rows_affected == 2
        status = db.engine.read(f"SELECT DISTINCT status FROM lead_scores WHERE id IN ({ids[0]}, {ids[1]})").df
        assert list(status["status"]) == ["contacted"]
        with db.connect_admin() as conn:
            audit = conn.execute(
                "SELECT count(*) FROM write_audit WHERE confirmation_id = %s", (card.proposal["id"],)
            ).fetchone()[0]
        assert audit == 1
        updated = [o for o in cap.outputs if o.update]
        assert len(updated) == 1 and updated[0].transient["display_id"] == card_output.transient["display_id"]
        assert "Done: 2 rows changed." in updated[0].data["text/html"]
        assert WIDGET_VIEW not in updated[0].data, "the saved notebook keeps the outcome, not the buttons"
    finally:
        db.engine.write([sql.replace("'contacted'", "'new'")], [2])


def test_the_card_shows_a_confirmation_made_in_code(ip, nexus, db):
    """`nexus.confirm()` (or the panel) resolves the proposal: the card must not stay clickable."""
    sql = "UPDATE lead_scores SET status = status WHERE false"
    nexus([text(json.dumps({"type": "confirm", "id": "x", "title": "Nothing", "summary": "no-op", "sql": sql}))])
    _, outputs, _, _ = run(ip, "%nexus propose a no-op")
    card_output = next(o for o in outputs if WIDGET_VIEW in o.data and "CONFIRM" in o.data["text/plain"])
    card = widget(card_output.data[WIDGET_VIEW]["model_id"])
    assert card.status == "pending"
    result, shown, _, _ = run(ip, "outcome = nexus.confirm()")
    assert result.success and ip.user_ns["outcome"].status == "confirmed"
    assert card.status == "confirmed" and card.rows_affected == 0
    # the saved notebook's static twin of the card is updated too
    assert any(o.update and "Done: 0 rows changed." in o.data.get("text/html", "") for o in shown)
    with capture_output():
        card.handle({"action": "confirm", "sql": sql})  # a late click runs nothing
    assert card.status == "confirmed"


def test_the_saved_card_shows_each_statements_rows_before_and_after_as_inert_text():
    from nexusleads_lab.ui.html import confirm_html

    note = f"hi {XSS}"
    proposal = {
        "type": "confirm",
        "id": "c_x",
        "title": f"Log {XSS}",
        "summary": "Two statements",
        "sql": f"INSERT INTO outreach_events (lead_id, channel, outcome, note) VALUES (7, 'email', 'sent', '{note}');\n"
        "DELETE FROM outreach_events WHERE lead_id = 7;",
        "dry_run_rows": 7,
        "dry_run_error": None,
        "preview": [
            {
                "action": "insert",
                "table": "outreach_events",
                "rows": 1,
                "keys": [],
                "columns": ["lead_id", "note"],
                "sample": [{"key": {}, "before": None, "after": {"lead_id": 7, "note": note}}],
            },
            {
                "action": "delete",
                "table": "outreach_events",
                "rows": 6,
                "keys": ["id"],
                "columns": [],
                "sample": [
                    {"key": {"id": i}, "before": {"id": i, "note": XSS if i == 1 else None}, "after": None}
                    for i in range(1, 6)
                ],
            },
        ],
    }
    card = confirm_html(proposal)
    assert "<img" not in card and card.count("&lt;img src=x onerror=alert(1)&gt;") == 4  # title, SQL, two values
    assert "Preview: this changes <strong>7</strong> rows in 2 statements." in card
    assert "1. insert outreach_events: 1 row</div>" in card and "2. delete outreach_events: 6 rows</div>" in card
    assert preview_rows(card) == [["7", note]] + [[str(i), XSS if i == 1 else "NULL"] for i in range(1, 6)]
    assert "and 1 more row</div>" in card


def test_a_card_whose_preview_changes_nothing_cannot_be_clicked(ip, nexus, db):
    sql = "UPDATE lead_scores SET status = status WHERE false"
    nexus([text(json.dumps({"type": "confirm", "id": "x", "title": "Nothing", "summary": "no-op", "sql": sql}))])
    _, outputs, _, _ = run(ip, "%nexus propose a no-op")
    card_output = next(o for o in outputs if WIDGET_VIEW in o.data and "CONFIRM" in o.data["text/plain"])
    card = widget(card_output.data[WIDGET_VIEW]["model_id"])
    assert card.blocked.startswith("Confirm is off: the preview changes no rows")
    assert "Confirm is off: the preview changes no rows" in card_output.data["text/html"]

    def audits() -> int:
        with db.connect_admin() as conn:
            return conn.execute("SELECT count(*) FROM write_audit").fetchone()[0]

    before, held, positions = audits(), fingerprint(db), lead_sequences(db)
    with capture_output():
        card.handle({"action": "confirm", "sql": sql})  # a click the browser would not send
    assert card.status == "pending"
    assert audits() == before and fingerprint(db) == held and lead_sequences(db) == positions, "nothing ran"


def test_a_tampered_confirmation_is_refused(ip, nexus, db):
    lead = db.engine_for(ORG).read("SELECT min(id) AS id FROM lead_scores").df["id"][0]
    sql = f"UPDATE lead_scores SET status = status WHERE id = {lead}"
    nexus([text(json.dumps({"type": "confirm", "id": "x", "title": "Nothing", "summary": "no-op", "sql": sql}))])
    _, outputs, _, _ = run(ip, "%nexus propose a no-op")
    card_output = next(o for o in outputs if WIDGET_VIEW in o.data and "CONFIRM" in o.data["text/plain"])
    card = widget(card_output.data[WIDGET_VIEW]["model_id"])
    with capture_output():
        card.handle({"action": "confirm", "sql": "DELETE FROM lead_scores"})
    assert card.status == "error" and "not the SQL that was shown" in card.message


# -- %nexus sql ---------------------------------------------------------------------------------


def test_sql_runs_straight_on_the_database_and_binds_the_frame(ip, nexus, db):
    nexus([])
    result, outputs, _, _ = run(ip, "%nexus sql -o by_tier " + TIER_SQL)
    assert result.success
    df = ip.user_ns["by_tier"]
    assert df.attrs["sql"] == TIER_SQL and ip.user_ns["_nexus_df"] is df
    assert list(df["n"]) == list(db.engine_for(ORG).read(TIER_SQL).df["n"])
    frame_output, caption = outputs  # pandas' own display of the DataFrame, then where it is kept
    assert "tier" in frame_output.data["text/plain"] and "sql1" in htmls([caption])
    query = "-- how many projects?\nSELECT count(*) AS n FROM projects"
    result, _, _, _ = run(ip, f"%%nexus sql -o projects\n{query}")
    assert result.success and get_session().frames["sql2"].attrs["sql"] == query
    assert ip.user_ns["projects"]["n"][0] > 0


def test_a_failing_query_shows_one_paragraph_not_a_traceback(ip, nexus):
    nexus([])
    result, _, stdout, stderr = run(ip, "%nexus sql SELECT nonexistent_col FROM contributors")
    assert not result.success
    shown = stdout + stderr
    assert "42703" in shown and "does not exist" in shown
    assert "Traceback" not in shown and len(shown.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "line",
    [
        "%nexus --bogus how many?",
        "%nexus -o 1bad how many?",
        "%nexus --thread",
        "%nexus",
        "%nexus sql -o",
        "%nexus sql --nope SELECT 1",
        "%nexus resume",
        "%nexus status --verbose",
        "%%nexus history\nsome body",
    ],
)
def test_bad_options_give_a_one_line_usage_error(ip, nexus, line):
    nexus([])
    result, outputs, stdout, stderr = run(ip, line)
    assert not result.success
    lines = (stdout + stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("UsageError: %"), lines
    assert outputs == []


# -- sub-commands -------------------------------------------------------------------------------


def test_history_resume_and_reset(ip, nexus):
    nexus([text(message("first answer")), text(message("second answer"))], user=f"hist-{uuid.uuid4().hex[:6]}")
    session = get_session()
    run(ip, "%nexus The first question")
    first = session.thread_id
    _, outputs, _, _ = run(ip, "%nexus history")
    assert "The first question" in htmls(outputs) and first[:8] in htmls(outputs)
    _, _, stdout, _ = run(ip, "%nexus reset")
    assert "New conversation" in stdout and session.thread_id is None
    _, outputs, stdout, _ = run(ip, f"%nexus resume {first[:8]}")
    assert "The first question" in stdout and session.thread_id == first
    # the resumed conversation is shown from its transcript: the question, then its answer
    shown = htmls(outputs)
    assert shown.index("You asked") < shown.index("The first question") < shown.index("first answer")
    result, _, stdout, _ = run(ip, "%nexus resume 00000000")
    assert not result.success and "No conversation" in stdout and "Traceback" not in stdout


def test_frames_of_an_earlier_conversation_stay_under_their_own_name(ip, nexus):
    nexus(
        [
            tool_calls([("psql", {"sql": TIER_SQL})]),
            text(message("a")),
            tool_calls([("psql", {"sql": STATUS_SQL})]),
            text(message("b")),
        ]
    )
    session = get_session()
    run(ip, "%nexus first")
    first = session.thread_id
    run(ip, "%nexus --new second")
    assert session.frames["r1"].attrs["sql"] == STATUS_SQL
    assert session.frames[f"{first[:8]}:r1"].attrs["sql"] == TIER_SQL


def test_skills_status_and_help(ip, nexus, db, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "https://proxy-user:proxy-SECRET@llm.example.test/v1")
    nexus([])
    _, outputs, _, _ = run(ip, "%nexus skills")
    assert "plg-database" in htmls(outputs)
    _, _, status, _ = run(ip, "%nexus status --full")
    assert "model" in status and "database" in status and "northwind-data" in status
    assert API_KEY not in status and "proxy-SECRET" not in status and "API key    set" in status
    for url in (db.admin_url, db.agent_url, db.writer_url):
        password = re.match(r"postgres(?:ql)?://[^:/@]+:([^@]*)@", url or "")
        if password and password.group(1):
            assert password.group(1) not in status
    _, _, help_, _ = run(ip, "%nexus help")
    for word in ("sql", "panel", "history", "resume", "reset", "skills", "status", "--show-sql", "-o"):
        assert word in help_


def test_a_question_that_starts_like_a_subcommand_is_still_a_question(ip, nexus):
    server = nexus([text(message("answered"))])
    run(ip, "%nexus status of the hot leads?")
    assert [m["content"] for m in server.requests[0]["messages"] if m["role"] == "user"] == ["status of the hot leads?"]


def test_a_skill_mention_on_the_magic_line_is_not_taken_for_a_variable(ip, nexus):
    server = nexus([text(message("ok"))])
    ip.user_ns["plg"] = "not a skill"
    run(ip, "%nexus $plg-database how many hot leads are there?")
    sent = server.requests[0]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["$plg-database how many hot leads are there?"]
    assert any(m["role"] == "system" and "Skill `plg-database`" in m["content"] for m in sent)


def test_panel_opens_the_chat_panel_or_says_why_not(ip, nexus, monkeypatch):
    nexus([])
    opened = []
    fake = types.ModuleType("nexusleads_lab.ui.panel")
    fake.open_panel = opened.append
    monkeypatch.setitem(sys.modules, "nexusleads_lab.ui.panel", fake)
    assert run(ip, "%nexus panel")[0].success and opened == [get_session()]
    monkeypatch.setitem(sys.modules, "nexusleads_lab.ui.panel", None)
    result, _, stdout, _ = run(ip, "%nexus panel")
    assert result.success and "chat panel is not part of this installation" in stdout


# -- a saved notebook without a kernel ----------------------------------------------------------


@pytest.mark.slow
def test_an_executed_notebook_exported_to_html_keeps_the_static_fallbacks(db, pg_root, tmp_path):
    server = ModelServer(Script([*FULL_DASHBOARD, text(message(f"The bio reads {XSS}"))]))
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
    )
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext nexusleads_lab"),
        nbformat.v4.new_code_cell("%%nexus\nLead overview"),
        nbformat.v4.new_code_cell("%%nexus\nWhat does mallory's bio say?"),
    ]
    path = tmp_path / "export.ipynb"
    nbformat.write(nb, path)
    env = {
        **os.environ,
        "NEXUS_HOME": str(pg_root / "main"),
        "NEXUS_USER": "exporter",
        "NEXUS_ORG": ORG,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": server.base_url,
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    try:
        subprocess.run(
            [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute", str(path)],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
    finally:
        server.close()
    html = Path(tmp_path / "export.html").read_text()
    for needle in ("Ran 2 steps", "nxl-kpi", "Lead overview", "nxl-table", "nxl-pill"):
        assert needle in html, needle
    assert html.count('src="data:image/png;base64,') == 1, "the chart, as its picture"
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and XSS not in html


def test_a_saved_status_shows_nothing_private(db, pg_root, tmp_path):
    """``%nexus status`` as a shared notebook keeps it: what answers, where, as whom, and no
    machine path, no host or port, no key status; ``--full`` (for the live session) has them."""
    import nbclient

    cassette = tmp_path / "recordings" / "quickstart.cassette.jsonl"
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nb.cells = [
        nbformat.v4.new_code_cell(c) for c in ("%load_ext nexusleads_lab", "%nexus status", "%nexus status --full")
    ]
    env = {
        **os.environ,
        "NEXUS_HOME": str(pg_root / "main"),
        "NEXUS_USER": "analyst",
        "NEXUS_ORG": "acme-analytics",
        "NEXUS_REPLAY": str(cassette),
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": "http://127.0.0.1:45999/v1",
    }
    nbclient.NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    saved, full = (json.dumps(c.outputs) for c in nb.cells[1:])
    for line in (
        "model      replay quickstart.cassette.jsonl",
        "database   embedded PostgreSQL",
        "user       analyst",
        "scope      organization acme-analytics",
    ):
        assert line in saved, line
    for private in (str(tmp_path), str(pg_root), os.path.expanduser("~"), "127.0.0.1", "45999", "API key", API_KEY):
        assert private not in saved, private
    assert "127.0.0.1:45999" in full and "API key    set" in full and API_KEY not in full


def test_a_notebook_comes_back_as_the_same_person_unless_the_environment_says_otherwise(tmp_path, monkeypatch):
    from nexusleads_lab.config import RememberedIdentity

    for var in ("NEXUS_USER", "JUPYTERHUB_USER", "NEXUS_ORG"):
        monkeypatch.delenv(var, raising=False)
    review = RememberedIdentity("/home/ana/work/review.ipynb", home=tmp_path)
    assert review.update(user="ana", org="acme-analytics", conversation_id="c1", panel_open=True)
    assert not review.update(user="ana"), "nothing changed, nothing written"
    # after a restart: the same notebook path, nothing set by a cell
    again = RememberedIdentity("/home/ana/work/review.ipynb", home=tmp_path)
    identity = again.resolve()
    assert (identity.user, identity.org, identity.user_from, identity.org_from) == (
        "ana",
        "acme-analytics",
        "remembered",
        "remembered",
    )
    assert again.load()["conversation_id"] == "c1" and again.load()["panel_open"] is True
    assert again.where == "for review.ipynb", "status names the notebook, never its folder"
    # another notebook does not inherit it; explicit variables win over what was remembered
    assert RememberedIdentity("/home/ana/work/other.ipynb", home=tmp_path).resolve().org is None
    monkeypatch.setenv("NEXUS_ORG", "globex-cloud")
    monkeypatch.setenv("JUPYTERHUB_USER", "ana-hub")
    identity = again.resolve()
    assert (identity.user, identity.org, identity.user_from, identity.org_from) == (
        "ana-hub",
        "globex-cloud",
        "JUPYTERHUB_USER",
        "NEXUS_ORG",
    )


def test_running_the_load_ext_cell_again_is_quiet_and_keeps_the_magics(ip, capsys):
    """Every Run All reruns a notebook's first cell: no IPython "already loaded ... %reload_ext"."""
    capsys.readouterr()
    for _ in range(2):
        assert ip.run_cell("%load_ext nexusleads_lab").success
    out = capsys.readouterr().out
    assert "already loaded" not in out and out == ""
    assert "nexus" in ip.magics_manager.magics["line"] and "nexus" in ip.magics_manager.magics["cell"]
