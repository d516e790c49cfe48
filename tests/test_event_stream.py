"""One event stream: every view subscribes to the assistant; stored conversations read back as
one typed transcript."""

from __future__ import annotations

import gc
import json
import threading
import time
import weakref
from datetime import timedelta

import pytest
from scripted import TIER_SQL, confirm, message

from nexusleads_lab.agent.events import STEP_FIELDS, ConfirmResolved, ErrorEvent
from nexusleads_lab.agent.responses import response_json
from nexusleads_lab.agent.transcript import AnswerItem, OutcomeItem, QuestionItem
from nexusleads_lab.testing.modelserver import http_error, text, tool_calls

from checks import fingerprint

ORG = "acme-analytics"


@pytest.fixture()
def make(scripted_assistant):
    return scripted_assistant


def test_a_subscriber_sees_every_turn_whoever_asked_in_order_with_turn_ids(make):
    assistant = make([tool_calls([("psql", {"sql": TIER_SQL})]), text(message("one")), text(message("two"))])
    seen = []
    assistant.subscribe(seen.append)
    assistant.ask("first", origin="cell")
    assistant.ask("second", origin="panel")
    starts = [e for e in seen if e.type == "turn.started"]
    assert [(e.question, e.origin) for e in starts] == [("first", "cell"), ("second", "panel")]
    first, second = starts[0].turn_id, starts[1].turn_id
    assert first and second and first != second
    by_turn = [e.turn_id for e in seen]
    assert by_turn == sorted(by_turn, key=[first, second].index), "one turn's events, then the next's"
    kinds = [e.type for e in seen if e.turn_id == first]
    assert kinds[0] == "turn.started" and kinds[-1] == "turn.completed" and "agent.action" in kinds
    assert all(e.turn_id for e in seen), "every turn event says its turn"


def test_every_event_of_a_turn_goes_on_the_wire_as_its_model_dumps_it(make):
    assistant = make(
        [
            tool_calls([("psql", {"sql": TIER_SQL}), ("read_file", {"path": "nowhere/\udc80.md"})]),
            text(message("tiers é \ud83d\ude00")),
        ]
    )
    seen = []
    assistant.subscribe(seen.append)
    assistant.ask("tiers?")
    seen.append(ErrorEvent(turn_id="t", message="Stopped.", cancelled=True))
    seen.append(ConfirmResolved(proposal_id="p", status="failed", error="no", rows_affected=None))
    assert {e.type for e in seen} >= {"turn.started", "session.id", "agent.action", "agent.text", "turn.completed"}
    for event in seen:
        wire = event.to_dict()
        dumped = event.model_dump(mode="json", by_alias=True, exclude_none=True)
        assert (wire, list(wire)) == (dumped, list(dumped))
        assert json.loads(event.to_json()) == json.loads(json.dumps(wire))
        if event.type == "turn.completed":  # the response's JSON the turn stored goes out, the same as made anew
            assert wire["response"] == response_json(event.response) == assistant.history()[-1]["meta"]["response"]


def test_a_raising_subscriber_does_not_break_the_turn_or_the_others(make):
    assistant = make([text(message("fine"))])
    seen = []

    def broken(event):
        raise RuntimeError("a view broke")

    assistant.subscribe(broken)
    assistant.subscribe(seen.append)
    result = assistant.ask("still answered?")
    assert result.error is None and result.response.text == "fine"
    assert [e.type for e in seen][-1] == "turn.completed"


def test_unsubscribing_during_a_turn_stops_the_events_there(make):
    assistant = make([tool_calls([("psql", {"sql": TIER_SQL})]), text(message("done"))])
    seen = []
    unsubscribe = None

    def once(event):
        seen.append(event)
        if event.type == "agent.action":
            unsubscribe()

    unsubscribe = assistant.subscribe(once)
    result = assistant.ask("tiers")
    assert result.response.text == "done"
    assert [e.type for e in seen][-1] == "agent.action", "nothing after the unsubscribe"
    unsubscribe()  # twice is harmless


def test_a_weak_subscriber_goes_away_with_its_view(make):
    assistant = make([text(message("a")), text(message("b"))])

    class View:
        def __init__(self):
            self.events = []

        def on_event(self, event):
            self.events.append(event)

    view = View()
    assistant.subscribe(view.on_event, weak=True)
    assistant.ask("one")
    assert view.events
    gone = weakref.ref(view)
    del view
    gc.collect()
    assert gone() is None, "the assistant kept the view alive"
    assert assistant.ask("two").ok  # the dead view is dropped, nothing raises
    assert assistant.subscribers == 0


def test_every_confirmation_outcome_is_an_event_and_the_transcript_keeps_it_structured(make, db):
    ids = (
        db.engine_for(ORG).read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 2").df["id"].tolist()
    )
    sql = f"UPDATE lead_scores SET status = 'contacted' WHERE id IN ({ids[0]}, {ids[1]})"
    noop = "UPDATE lead_scores SET status = status WHERE false"
    assistant = make([text(confirm(sql, "Mark two")), text(confirm(noop, "Nothing"))])
    seen = []
    assistant.subscribe(seen.append)
    proposal = assistant.ask("mark two").proposal
    try:
        assistant.confirm(proposal.id, proposal.sql)
        second = assistant.ask("and nothing").proposal
        assistant.decline(second.id)
    finally:
        db.engine.write([sql.replace("'contacted'", "'new'")], [2])
    resolved = [e for e in seen if isinstance(e, ConfirmResolved)]
    assert [(e.proposal_id, e.status, e.rows_affected) for e in resolved] == [
        (proposal.id, "confirmed", 2),
        (second.id, "cancelled", None),
    ]
    assert all(e.conversation_id == assistant.thread.id and e.turn_id is None for e in resolved)
    assert resolved[0].to_dict()["type"] == "confirm.resolved" and resolved[0].to_dict()["id"] == proposal.id
    items = assistant.transcript()
    assert [type(i).__name__ for i in items] == ["QuestionItem", "AnswerItem", "QuestionItem", "AnswerItem"]
    assert items[1].outcome == {"id": proposal.id, "status": "confirmed", "rows_affected": 2, "error": None}
    assert items[3].outcome["status"] == "cancelled"
    # the outcome is stored as data beside the line the model reads
    stored = [m for m in assistant.history() if m.get("kind") == "confirm_action" and m["role"] == "user"]
    assert stored[0]["meta"]["outcome"]["rows_affected"] == 2


def test_a_transcript_with_a_failed_turn_a_cancelled_one_and_an_expired_proposal(make, db):
    noop = "UPDATE lead_scores SET status = status WHERE false"

    assistant = make(
        [
            tool_calls([("psql", {"sql": TIER_SQL})]),
            text(json.dumps({"type": "dashboard", "title": "Tiers", "sections": [{"type": "table", "source": "r1"}]})),
            http_error(400, "bad request", should_retry=False),
            text(message("x" * 4000), chunk_size=1, delay=0.01),
            text(confirm(noop)),
        ]
    )
    assistant.ask("tiers")
    failed = assistant.ask("fail please")
    assert failed.error
    timer = threading.Timer(0.3, assistant.cancel)
    timer.start()
    cancelled = assistant.ask("a long answer")
    timer.join()
    assert cancelled.cancelled
    assistant.confirmations.ttl = timedelta(seconds=-1)
    expired = assistant.ask("propose").proposal
    before = fingerprint(db)
    with pytest.raises(Exception, match="expired"):
        assistant.confirm(expired.id)
    assert fingerprint(db) == before
    items = assistant.transcript()
    answers = [i for i in items if isinstance(i, AnswerItem)]
    questions = [i.text for i in items if isinstance(i, QuestionItem)]
    assert questions == ["tiers", "fail please", "a long answer", "propose"]
    tiers, fail, stopped, card = answers
    assert tiers.response.type == "dashboard" and len(tiers.steps) == 1
    assert set(tiers.steps[0].step()) == set(STEP_FIELDS) and tiers.steps[0].command == TIER_SQL
    assert tiers.steps[0].status == "completed" and tiers.steps[0].result_id == "r1"
    assert tiers.elapsed_ms is not None and tiers.usage.get("total_tokens")
    assert fail.error and "400" in fail.error and not fail.cancelled
    assert stopped.cancelled and stopped.error.startswith("Stopped")
    assert card.response.type == "confirm" and card.outcome is None, "an expired proposal has no outcome"
    assert not any(isinstance(i, OutcomeItem) for i in items)


def test_a_confirmation_made_by_the_cli_in_another_process_reaches_subscribers_and_the_card(make, db):
    import os
    import subprocess
    import sys
    import time

    from nexusleads_lab.ui.confirm import ConfirmCard

    noop = "UPDATE lead_scores SET status = status WHERE false"
    assistant = make([text(confirm(noop, "Nothing"))])
    assistant.poll_interval = 0.2
    seen = []
    assistant.subscribe(seen.append)
    result = assistant.ask("propose a no-op")
    card = ConfirmCard(result.response_dict(), assistant)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    env.update(NEXUS_HOME=str(db.embedded.pgdata.parent), NEXUS_USER=assistant.user, NEXUS_ORG=ORG)
    proc = subprocess.run(
        [sys.executable, "-m", "nexusleads_lab.cli", "confirm", result.proposal.id],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 30
    while card.status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert card.status == "confirmed" and card.rows_affected == 0, "the open card follows the CLI"
    resolved = [e for e in seen if isinstance(e, ConfirmResolved)]
    assert [(e.proposal_id, e.status) for e in resolved] == [(result.proposal.id, "confirmed")], "once"
    assert assistant.poll_confirmations() == [], "and not again"
    card.close()


def test_a_confirmations_follow_up_turn_says_what_it_reports_and_a_stop_says_it_was_a_stop(make, db):
    noop = "UPDATE lead_scores SET status = status WHERE false"
    assistant = make(
        [text(confirm(noop)), text(message("Noted.")), text(message("y" * 3000), chunk_size=1, delay=0.01)]
    )
    seen = []
    assistant.subscribe(seen.append)
    proposal = assistant.ask("propose").proposal
    assistant.confirm(proposal.id, proposal.sql, follow_up=True)
    follow = [e for e in seen if e.type == "turn.started"][-1]
    assert follow.reports == proposal.id and follow.question.startswith("CONFIRM_ACTION:")
    timer = threading.Timer(0.3, assistant.cancel)
    timer.start()
    assistant.ask("long")
    timer.join()
    error = [e for e in seen if e.type == "error"][-1]
    assert error.cancelled is True
    first = next(e for e in seen if e.type == "turn.started")
    assert first.reports is None


def test_the_panels_card_follows_a_confirmation_made_by_the_cli_in_another_process(make, db):
    import os
    import subprocess
    import sys
    import time

    from nexusleads_lab.ui.chat import ChatController

    noop = "UPDATE lead_scores SET status = status WHERE false"
    assistant = make([text(confirm(noop, "Nothing"))])
    assistant.poll_interval = 0.2
    controller = ChatController(assistant, sink=lambda patch: None, restore=False)
    proposal = assistant.ask("propose a no-op", origin="cell").proposal

    def card():
        return next(m for m in controller.state["messages"] if (m.get("response") or {}).get("type") == "confirm")

    assert card().get("outcome") is None, "the panel shows the cell's proposal, unresolved"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    env.update(NEXUS_HOME=str(db.embedded.pgdata.parent), NEXUS_USER=assistant.user, NEXUS_ORG=ORG)
    proc = subprocess.run(
        [sys.executable, "-m", "nexusleads_lab.cli", "confirm", proposal.id],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 30
    while (card().get("outcome") or {}).get("status") != "confirmed" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert card()["outcome"]["status"] == "confirmed" and card()["outcome"].get("rows_affected") == 0
    controller.close()


def test_stopping_one_assistant_leaves_another_assistants_query_on_the_same_engine_alone(make, db):
    """A server shares one engine per organization between sessions: one session's Stop must not
    cancel another's query."""
    busy_sql = "SELECT count(*) AS n FROM (SELECT generate_series(1, 60000000)) AS g"  # a few seconds of CPU
    busy = make([tool_calls([("psql", {"sql": busy_sql})]), text(message("slow done"))])
    other = make([])
    assert busy.engine is other.engine, "both read through the process's one engine for the org"
    results = {}
    worker = threading.Thread(target=lambda: results.setdefault("busy", busy.ask("slow one")))
    worker.start()
    time.sleep(0.5)
    other.cancel()  # another session's Stop
    worker.join(timeout=120)
    assert results["busy"].error is None and results["busy"].response.text == "slow done"
    assert results["busy"].steps[0].status == "completed", "its query was not cancelled"
