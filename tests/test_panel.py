"""The chat panel's kernel side, driven the way the browser drives it: messages in, synced state out.

Real database, real ``openai`` client, a loopback scripted model; no browser (that is
``tests/browser/test_chat_panel.py``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
from scripted import TIER_SQL, dashboard, message

from nexusleads_lab.agent.assistant import Assistant
from nexusleads_lab.agent.events import STEP_FIELDS
from nexusleads_lab.agent.live import UPDATES_PER_SECOND
from nexusleads_lab.agent.streaming import partial_display_text
from nexusleads_lab.testing.modelserver import text, tool_calls
from nexusleads_lab.ui.panel import ChatPanel

API_KEY = "sk-test-PANEL-SECRET-0123456789abcdef"
ORG = "globex-cloud"  # every panel's assistant here is scoped to it, as NEXUS_ORG would


@pytest.fixture()
def make_panel(scripted_assistant):
    """A panel over an assistant wired to a scripted model; returns (panel, assistant)."""
    made: list[ChatPanel] = []

    def make(steps, *, user: str | None = None, database=None) -> tuple[ChatPanel, Assistant]:
        assistant = scripted_assistant(steps, user=user, org=ORG, database=database, api_key=API_KEY)
        panel = ChatPanel(assistant)
        panel.sent = []  # custom messages to the browser (toasts)
        panel.send = lambda content, buffers=None: panel.sent.append(content)
        made.append(panel)
        return panel, assistant

    yield make
    for panel in made:  # the assistants close after, with scripted_assistant
        panel.handle({"type": "stop"})
        panel.wait(5)
        panel.close()


def ask(panel: ChatPanel, question: str, timeout: float = 30) -> None:
    panel.handle({"type": "ask", "text": question})
    assert panel.wait(timeout), "the turn did not finish"


def wait_for(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_question_shows_the_user_message_the_steps_and_the_dashboard(make_panel, db):
    panel, _ = make_panel(
        [
            tool_calls([("psql", {"sql": TIER_SQL})]),
            text(
                dashboard(
                    {"type": "widgets", "items": [{"title": "Tiers", "value": "3"}]},
                    {"type": "bars", "label": "Leads by tier", "source": "r1", "x": "tier", "y": "n"},
                    {"type": "table", "source": "r1"},
                )
            ),
        ]
    )
    seen_turns: list[dict] = []
    panel.observe(lambda change: seen_turns.append(change["new"]), names="turn")

    ask(panel, "How are leads spread over tiers?")

    user, answer = panel.messages
    assert user["role"] == "user" and user["text"] == "How are leads spread over tiers?"
    assert answer["role"] == "assistant" and "error" not in answer
    (step,) = answer["steps"]
    assert set(step) == set(STEP_FIELDS), "one step shape, from the event to the JavaScript"
    assert step["tool"] == "psql" and step["command"] == TIER_SQL and step["status"] == "completed"
    assert step["rows"] == 3 and step["elapsed_ms"] > 0 and step["result_id"] == "r1"
    response = answer["response"]
    assert response["type"] == "dashboard"
    truth = db.engine_for(ORG).read(TIER_SQL).df
    bars = response["sections"][1]
    assert [i["name"] for i in bars["items"]] == list(truth["tier"]) and bars["sql"] == TIER_SQL
    assert response["sections"][2]["rows"][0]["tier"] == truth["tier"][0]
    # while it ran, the panel showed the step live; now the turn is over
    assert any(t.get("phase") == "working" and t["steps"][0]["status"] == "started" for t in seen_turns)
    assert panel.busy is False and panel.turn == {} and panel.streaming == ""
    assert panel.conversation_id and panel.conversation_id in [c["id"] for c in panel.conversations]


def test_stop_during_a_slow_stream_cancels_the_turn(make_panel):
    panel, _ = make_panel([text(message("word " * 400), chunk_size=4, delay=0.05), text(message("after"))])
    panel.handle({"type": "ask", "text": "talk slowly"})
    wait_for(lambda: panel.streaming, what="the answer to start streaming")
    assert panel.busy
    stopped = time.monotonic()
    panel.handle({"type": "stop"})
    assert panel.wait(5)
    assert time.monotonic() - stopped < 2
    last = panel.messages[-1]
    assert last["cancelled"] and last["error"].startswith("Stopped")
    assert panel.busy is False and panel.streaming == ""
    ask(panel, "next")
    assert panel.messages[-1]["response"] == {"type": "message", "text": "after"}


def test_a_second_question_while_busy_is_refused_with_a_toast(make_panel):
    panel, _ = make_panel([text(message("slow " * 100), chunk_size=4, delay=0.03)])
    panel.handle({"type": "ask", "text": "first"})
    panel.handle({"type": "ask", "text": "second"})
    wait_for(lambda: [m["text"] for m in panel.messages if m["role"] == "user"] == ["first"], what="the first question")
    assert panel.sent[-1]["type"] == "toast" and "stop it first" in panel.sent[-1]["text"]
    panel.handle({"type": "stop"})
    assert panel.wait(5)


def _lead_ids(db, n=3):
    return (
        db.engine_for(ORG)
        .read(f"SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id DESC LIMIT {n}")
        .df["id"]
        .tolist()
    )


def _write_count(db, proposal_id: str) -> int:
    with db.connect_admin() as conn:
        return conn.execute("SELECT count(*) FROM write_audit WHERE confirmation_id = %s", (proposal_id,)).fetchone()[0]


def test_confirm_changes_the_database_exactly_once_and_shows_the_outcome(make_panel, db):
    ids = _lead_ids(db)
    where = f"id IN ({', '.join(map(str, ids))})"
    sql = f"UPDATE lead_scores SET status = 'contacted', status_changed_at = now() WHERE {where}"
    panel, assistant = make_panel(
        [
            text(
                json.dumps(
                    {"type": "confirm", "id": "x", "title": "Mark 3 contacted", "summary": "Three leads", "sql": sql}
                )
            ),
            text(message("Marked them as contacted.")),
        ]
    )
    ask(panel, "mark these three as contacted")
    seen: list[tuple[str, str | None, str]] = []
    assistant.subscribe(lambda e: seen.append((e.type, getattr(e, "origin", None), threading.current_thread().name)))
    card = panel.messages[-1]["response"]
    assert card["type"] == "confirm" and card["sql"] == sql and card["dry_run_rows"] == 3  # already canonical
    # the card shows, before the click, each lead's status going from new to contacted
    (statement,) = card["preview"]
    assert (statement["action"], statement["table"], statement["rows"]) == ("update", "lead_scores", 3)
    shown = {r["key"]["id"]: (r["before"]["status"], r["after"]["status"]) for r in statement["sample"]}
    assert shown == {i: ("new", "contacted") for i in ids}
    status = f"SELECT DISTINCT status FROM lead_scores WHERE {where}"
    assert list(db.engine.read(status).df["status"]) == ["new"], "nothing is written before the click"
    try:
        panel.handle({"type": "confirm", "id": card["id"], "sql": card["sql"]})
        assert panel.wait(30)
        assert list(db.engine.read(status).df["status"]) == ["contacted"]
        outcome = next(m["outcome"] for m in panel.messages if (m.get("response") or {}).get("id") == card["id"])
        assert outcome["status"] == "confirmed" and outcome["rows_affected"] == 3
        assert panel.messages[-1]["response"]["text"] == "Marked them as contacted."
        assert not [m for m in panel.messages if m["role"] == "user" and m["text"].startswith("CONFIRM_ACTION")]
        # the follow-up is a turn the assistant runs, as it runs the panel's questions: no panel thread
        assert [origin for kind, origin, _ in seen if kind == "turn.started"] == ["panel"]
        assert {thread for kind, _, thread in seen if kind == "turn.completed"} == {"nexus-turn"}
        # a second click (another view, a stale page) does not write again
        panel.handle({"type": "confirm", "id": card["id"], "sql": card["sql"]})
        assert panel.wait(10)
        assert _write_count(db, card["id"]) == 1
    finally:
        db.engine.write([f"UPDATE lead_scores SET status = 'new' WHERE {where}"], [3])


def test_cancel_on_a_card_writes_nothing(make_panel, db):
    ids = _lead_ids(db, 2)
    sql = f"UPDATE lead_scores SET status = 'disqualified' WHERE id IN ({', '.join(map(str, ids))})"
    panel, assistant = make_panel(
        [text(json.dumps({"type": "confirm", "id": "y", "title": "Disqualify", "summary": "Two", "sql": sql}))]
    )
    ask(panel, "disqualify two")
    card = panel.messages[-1]["response"]
    panel.handle({"type": "cancel_confirm", "id": card["id"]})
    assert panel.messages[-1]["outcome"]["status"] == "cancelled"
    assert _write_count(db, card["id"]) == 0
    assert len(assistant.server.requests) == 1, "cancelling needs no model call"


def test_a_tampered_confirmation_is_refused_on_the_card(make_panel, db):
    lead = int(db.engine_for(ORG).read("SELECT min(id) AS id FROM lead_scores").df["id"][0])
    sql = f"UPDATE lead_scores SET status = status WHERE id = {lead}"  # one row, so Confirm is on
    panel, _ = make_panel(
        [text(json.dumps({"type": "confirm", "id": "z", "title": "No-op", "summary": "s", "sql": sql}))]
    )
    ask(panel, "propose")
    card = panel.messages[-1]["response"]
    panel.handle({"type": "confirm", "id": card["id"], "sql": "DELETE FROM lead_scores"})
    assert panel.wait(10)
    outcome = panel.messages[-1]["outcome"]
    assert outcome["status"] == "failed" and "not the SQL that was shown" in outcome["error"]
    assert _write_count(db, card["id"]) == 0


def test_history_new_open_rename_delete(make_panel):
    panel, _ = make_panel([text(message("one")), text(message("two"))])
    ask(panel, "first question")
    first = panel.conversation_id
    panel.handle({"type": "new"})
    assert panel.messages == [] and panel.conversation_id is None
    ask(panel, "second question")
    second = panel.conversation_id
    assert second != first
    assert [c["id"] for c in panel.conversations] == [second, first]  # latest first

    panel.handle({"type": "rename", "id": first, "title": "Tier questions"})
    assert {c["id"]: c["title"] for c in panel.conversations}[first] == "Tier questions"

    panel.handle({"type": "open", "id": first})
    assert panel.conversation_id == first
    assert [m.get("text") for m in panel.messages if m["role"] == "user"] == ["first question"]
    assert panel.messages[-1]["response"]["text"] == "one"

    panel.handle({"type": "delete", "id": first})
    assert panel.conversation_id is None and panel.messages == []
    assert [c["id"] for c in panel.conversations] == [second]

    panel.handle({"type": "open", "id": str(uuid.uuid4())})
    assert panel.sent[-1]["type"] == "toast" and panel.sent[-1]["level"] == "error"


def test_a_new_panel_starts_its_own_conversation_and_the_history_opens_the_other_on_purpose(make_panel, db):
    user = f"restore-{uuid.uuid4().hex[:6]}"
    ids = _lead_ids(db, 1)
    sql = f"UPDATE lead_scores SET status = status WHERE id = {ids[0]}"
    panel, _ = make_panel(
        [
            tool_calls([("psql", {"sql": TIER_SQL})]),
            text(dashboard({"type": "table", "source": "r1"})),
            text(json.dumps({"type": "confirm", "id": "n", "title": "Touch one", "summary": "s", "sql": sql})),
            text(message("Done.")),
        ],
        user=user,
    )
    ask(panel, "tiers?")
    ask(panel, "touch one lead")
    card = panel.messages[-1]["response"]
    panel.handle({"type": "confirm", "id": card["id"], "sql": card["sql"]})
    assert panel.wait(30)
    before = panel.messages

    # Another notebook: a fresh assistant and panel for the same user. It does not take over the
    # first notebook's conversation; its history lists it, and opening it shows it whole.
    restored, other = make_panel([text(message("unused"))], user=user)
    assert restored.conversation_id is None and restored.messages == [] and other.thread.id is None
    assert [c["id"] for c in restored.conversations] == [panel.conversation_id]
    restored.handle({"type": "open", "id": panel.conversation_id})
    assert restored.conversation_id == panel.conversation_id

    def shape(items):
        return [
            (
                m["role"],
                m.get("text") or (m.get("response") or {}).get("type"),
                m.get("outcome", {}).get("status"),
                [(s["command"], s.get("rows")) for s in m.get("steps", [])],
            )
            for m in items
        ]

    assert shape(restored.messages) == shape(before)
    assert restored.messages[1]["steps"][0]["elapsed_ms"] > 0
    assert restored.messages[3]["outcome"] == {
        "id": card["id"],
        "status": "confirmed",
        "rows_affected": 1,
        "text": "Done: 1 row changed.",
    }


def test_the_header_names_the_organization_the_panel_reads_and_writes(make_panel):
    panel, assistant = make_panel([text(message("hi"))])
    assert panel.get_state()["scope"] == assistant.scope_label == f"organization {ORG}"


def test_widget_state_never_holds_the_api_key_or_a_database_password(make_panel, db):
    from nexusleads_lab.config import Settings
    from nexusleads_lab.db.database import Database

    leaky = Database(
        admin_url=db.admin_url,
        settings=Settings(agent_database_url="postgresql://nexus_agent:pg-password-SECRET@127.0.0.1:1/plg", org=ORG),
    )
    panel, _ = make_panel([tool_calls([("psql", {"sql": "SELECT 1"})]), text(message("no db"))], database=leaky)
    ask(panel, "try the database")
    assert panel.messages[-1]["steps"][0]["status"] == "failed"
    state = json.dumps(panel.get_state(), default=str)
    assert "Cannot connect" in state  # the failure is shown ...
    secrets = [API_KEY, "pg-password-SECRET"]
    secrets += [urlsplit(url).password for url in (db.admin_url, db.writer_url, db.agent_url) if urlsplit(url).password]
    for secret in secrets:
        assert secret not in state  # ... without what would let somebody in
    leaky.close()


def test_streaming_text_reaches_the_browser_at_most_about_30_times_a_second(make_panel):
    answer = "x" * 2000
    panel, _ = make_panel([text(message(answer), chunk_size=1, delay=0.001)])
    syncs: list[float] = []
    original = panel.send_state

    def counting_send_state(key=None):
        keys = [key] if isinstance(key, str) else list(key or [])
        if "streaming" in keys:
            syncs.append(time.monotonic())
        return original(key)

    panel.send_state = counting_send_state
    counted = []
    panel.assistant.subscribe(
        lambda event: counted.append(1) if event.type == "agent.text" and event.status == "streaming" else None
    )
    ask(panel, "stream a lot", timeout=60)

    assert len(counted) >= 2000, "the model really streamed 2,000 deltas"
    assert panel.messages[-1]["response"]["text"] == answer
    busiest = max(sum(1 for t in syncs if start <= t < start + 1.0) for start in syncs)
    print(f"\n{len(counted)} deltas -> {len(syncs)} streaming syncs; busiest second: {busiest}")
    assert busiest <= UPDATES_PER_SECOND + 6, f"{busiest} streaming syncs in one second"
    assert len(syncs) < len(counted) / 10


def test_the_streaming_text_is_always_what_some_prefix_of_the_answer_shows(make_panel):
    # prose that holds back a fence and a brace in progress, after a first call's own prose
    first = "Let me check `the tiers` first {quickly}.\n"
    answer = "Here is what I found:\n\n- `hot` leads {most of them}\n- warm\n\n```sql\nSELECT 1\n```\nDone."
    panel, _ = make_panel(
        [
            tool_calls([("psql", {"sql": TIER_SQL})], content=first, chunk_size=1),
            text(answer, chunk_size=1, delay=0.004),
        ]
    )
    seen: list[str] = []
    panel.observe(lambda change: seen.append(change["new"]), names="streaming")
    ask(panel, "what about the tiers?")

    possible = {partial_display_text(s[:i]) for s in (first, answer) for i in range(len(s) + 1)}
    shown = [v for v in seen if v]
    assert len(shown) >= 5, "the answer streamed into the panel"
    assert all(v in possible for v in shown), [v for v in shown if v not in possible]
    assert shown[-1] == answer, "the whole answer stood before the message replaced it"
    assert panel.messages[-1]["response"]["text"] == answer and panel.streaming == ""


def test_each_answer_says_what_it_cost_in_its_steps_line(make_panel):
    panel, _ = make_panel(
        [
            tool_calls(
                [("psql", {"sql": TIER_SQL})],
                usage={"prompt_tokens": 900, "completion_tokens": 100, "total_tokens": 1000},
            ),
            text(
                message("Three tiers."), usage={"prompt_tokens": 1000, "completion_tokens": 140, "total_tokens": 1140}
            ),
        ]
    )
    ask(panel, "Which tiers?")
    cost = panel.messages[-1]["cost"]
    assert cost.startswith("Ran 1 step · ") and cost.endswith(" · 2,140 tokens"), cost


def test_the_header_names_the_model_mode_never_a_model_when_none_is_configured(db, monkeypatch, tmp_path):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NEXUS_REPLAY", "NEXUS_RECORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NEXUS_MODEL", "gpt-4.1-mini")
    labels = []
    for env in ({}, {"NEXUS_REPLAY": str(tmp_path / "quickstart.cassette.jsonl")}, {"OPENAI_API_KEY": "sk-x"}):
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            assistant = Assistant(database=db, org=ORG, user=f"p-{uuid.uuid4().hex[:8]}")
            panel = ChatPanel(assistant, restore=False)
            labels.append(panel.get_state()["model_name"])
            panel.close()
            assistant.close()
    assert labels == ["no model configured", "replay quickstart.cassette.jsonl", "gpt-4.1-mini"]


def test_a_card_that_would_change_nothing_keeps_confirm_off_and_runs_nothing(make_panel, db):
    sql = "UPDATE lead_scores SET status = status WHERE false"
    panel, _ = make_panel(
        [text(json.dumps({"type": "confirm", "id": "n", "title": "No-op", "summary": "s", "sql": sql}))]
    )
    ask(panel, "propose nothing")
    item = panel.messages[-1]
    assert item["blocked"].startswith("Confirm is off: the preview changes no rows")
    panel.handle({"type": "confirm", "id": item["response"]["id"], "sql": sql})  # a click the browser would not send
    assert panel.wait(10)
    assert "outcome" not in panel.messages[-1] and _write_count(db, item["response"]["id"]) == 0
    assert panel.sent[-1]["level"] == "error" and "Nothing was run" in panel.sent[-1]["text"]


# -- the controller without a widget, following every turn of its assistant -------------------------


@pytest.fixture()
def controller_over(scripted_assistant):
    """A ChatController over a scripted assistant whose patches land in a list; returns (controller, assistant, patches)."""
    made = []

    def make(steps):
        from nexusleads_lab.ui.chat import ChatController

        assistant = scripted_assistant(steps, org=ORG, api_key=API_KEY)
        patches: list[dict] = []
        toasts: list[dict] = []
        controller = ChatController(assistant, sink=patches.append, notify=toasts.append)
        made.append(controller)
        return controller, assistant, patches

    yield make
    for controller in made:  # the assistants close after, with scripted_assistant
        controller.close()


def test_a_turn_asked_elsewhere_shows_live_in_the_controller_with_its_steps_in_order(controller_over):
    controller, assistant, patches = controller_over(
        [
            tool_calls([("psql", {"sql": TIER_SQL})]),
            text(message("Three **tiers**."), chunk_size=3, delay=0.01),
            text(message("Hot is smallest.")),
        ]
    )
    assistant.ask("How many tiers?", origin="cell")  # a cell's turn: nobody told the panel
    assistant.ask("Which is smallest?", origin="code")

    roles = [(m["role"], m.get("text") or m["response"]["text"]) for m in controller.messages]
    assert roles == [
        ("user", "How many tiers?"),
        ("assistant", "Three **tiers**."),
        ("user", "Which is smallest?"),
        ("assistant", "Hot is smallest."),
    ]
    (step,) = controller.messages[1]["steps"]
    assert set(step) == set(STEP_FIELDS) and step["command"] == TIER_SQL and step["status"] == "completed"
    assert controller.messages[1]["html"] == "<p>Three <strong>tiers</strong>.</p>\n"  # rendered once, in Python
    # while the first ran: its step live, then the answer streaming as text, then idle again
    turns = [p["turn"] for p in patches if p.get("turn")]
    assert any(t["phase"] == "working" and t["steps"][0]["status"] == "started" for t in turns)
    assert {t["origin"] for t in turns} == {"cell", "code"}
    # each answer's text streamed: a prefix of one answer at a time (how many depends on the
    # throttle's clock), and at least once per turn, since a finished text is always flushed
    streamed = [p["streaming"] for p in patches if p.get("streaming")]
    assert len(streamed) >= 2 and all(
        s and ("Three **tiers**.".startswith(s) or "Hot is smallest.".startswith(s)) for s in streamed
    )
    assert "Three **tiers**." in streamed and streamed[-1] == "Hot is smallest."
    assert controller.state["busy"] is False and controller.state["turn"] == {}
    assert controller.state["conversation_id"] == assistant.thread.id
    assert [i["key"] for i in controller.messages] == [m["key"] for m in controller.messages]  # keys stay put


def test_a_confirmation_made_in_code_updates_the_card_and_a_closed_controller_follows_nothing(controller_over, db):
    lead = int(db.engine_for(ORG).read("SELECT min(id) AS id FROM lead_scores").df["id"][0])
    sql = f"UPDATE lead_scores SET status = status WHERE id = {lead}"
    controller, assistant, _ = controller_over(
        [
            text(json.dumps({"type": "confirm", "id": "k", "title": "Touch one", "summary": "s", "sql": sql})),
            text(message("later")),
        ]
    )
    assistant.ask("touch one lead", origin="cell")
    card = controller.messages[-1]
    assert card["response"]["type"] == "confirm" and "outcome" not in card
    assistant.confirm(card["response"]["id"])  # nexus.confirm(), a cell card, the CLI: not the panel
    assert controller.messages[-1]["outcome"] == {
        "id": card["response"]["id"],
        "status": "confirmed",
        "rows_affected": 1,
        "text": "Done: 1 row changed.",
    }
    assert [m["role"] for m in controller.messages] == ["user", "assistant"], "the outcome is no question"

    controller.close()
    before = list(controller.messages)
    assistant.ask("anyone there?")
    assert controller.messages == before


def test_a_failing_view_does_not_stop_the_controller_or_the_turn(controller_over):
    controller, assistant, _ = controller_over([text(message("fine"))])
    assistant.subscribe(lambda event: 1 / 0)
    result = assistant.ask("still answered?")
    assert result.ok and controller.messages[-1]["response"]["text"] == "fine"


def test_the_front_end_modules_join_into_one_module_anywidget_can_load(tmp_path, monkeypatch):
    from nexusleads_lab.ui import esm

    joined = esm.bundle("panel/index.js")
    assert ChatPanel._esm == joined
    assert "\nimport " not in joined and joined.count("export default") == 1
    for name in ("dom.js", "format.js", "html.js", "lab.js", "sections.js", "panel.js"):
        assert f'__nx["panel/{name}"] = (() => {{' in joined
    assert "renderMarkdown" not in joined, "no Markdown parser in the front end"

    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "a.js").write_text('import * as b from "./b.js";\nexport default {};\n')
    monkeypatch.setattr(esm, "asset", lambda name: tmp_path / "js" / name)
    with pytest.raises(esm.BundleError, match="an import this joiner does not handle"):
        esm.bundle.__wrapped__("a.js")


def test_both_confirm_cards_get_the_preview_as_the_cell_renders_it_with_hostile_values_as_text():
    from nexusleads_lab.safetext import safe_response
    from nexusleads_lab.ui.chat import answer_item
    from nexusleads_lab.ui.confirm import ConfirmCard
    from nexusleads_lab.ui.html import preview_html

    xss = "<img src=x onerror=alert(1)>"
    proposal = safe_response(
        {
            "type": "confirm",
            "id": "c_pv",
            "title": "Note",
            "summary": "One note",
            "sql": "UPDATE t SET note = '…'",
            "dry_run_rows": 1,
            "preview": [
                {
                    "action": "update",
                    "table": "t",
                    "rows": 1,
                    "keys": ["id"],
                    "columns": ["note"],
                    "sample": [{"key": {"id": 7}, "before": {"note": "old"}, "after": {"note": xss}}],
                }
            ],
        }
    )
    item = answer_item("k", proposal, [], [])
    card = ConfirmCard(proposal, object())
    try:
        assert item["preview_html"] == card.preview_html == preview_html(proposal)  # one renderer for every card
        assert "&lt;img src=x onerror=alert(1)&gt;" in card.preview_html and "<img" not in card.preview_html
        assert 'class="nxl-pv-before nxl-pv-short">old</span>' in card.preview_html
    finally:
        card.close()


def test_the_panel_shows_every_number_as_the_cell_does(make_panel, db):
    import re

    from nexusleads_lab.ui.html import table_html, widgets_html

    sql = (
        "SELECT tier, avg(score)::float8 AS mean_score, min(score)::float8 / 1000 AS small, count(*) AS n"
        " FROM lead_scores GROUP BY tier ORDER BY tier"
    )
    panel, _ = make_panel(
        [
            tool_calls([("psql", {"sql": sql})]),
            text(
                dashboard(
                    {
                        "type": "widgets",
                        "items": [{"title": "Mean", "value": 123.456}, {"title": "Tiny", "value": 0.012345}],
                    },
                    {"type": "bars", "label": "Mean by tier", "source": "r1", "x": "tier", "y": "mean_score"},
                    {"type": "table", "source": "r1"},
                )
            ),
        ]
    )
    ask(panel, "scores by tier")
    widgets, bars, table = panel.messages[-1]["response"]["sections"]
    truth = db.engine_for(ORG).read(sql).df
    # The cell's own HTML for the same sections holds exactly the panel's texts.
    cell_widgets = re.findall(r'nxl-kpi-value">([^<]*)<', widgets_html(widgets))
    assert [i["shown"] for i in widgets["items"]] == cell_widgets == ["123.46", "0.0123"]
    cell_rows = re.findall(r"<tr>(.*?)</tr>", table_html(table).split("<tbody>")[1])
    cell_cells = [re.findall(r"<td[^>]*>([^<]*)</td>", r) for r in cell_rows]
    assert table["shown_rows"] == cell_cells and len(cell_cells) == len(truth)
    assert table["numeric"] == [False, True, True, True]
    decimals = {len(row[1].split(".")[1]) for row in table["shown_rows"]}
    assert decimals == {2}, "a column's numbers line up on the same decimals"
    assert [i["shown"] for i in bars["items"]] == [row[1] for row in table["shown_rows"]]


def test_a_panel_is_handed_its_assistant_or_session_and_says_so_without_one():
    # The view never reaches up for the kernel's session itself (%nexus panel hands it in).
    with pytest.raises(TypeError, match=r"ChatPanel needs an assistant or a session: ChatPanel\(session=nexus\)"):
        ChatPanel()
