"""A turn the agent owns (``Assistant.start -> Turn``) and the one live fold every view draws from.

Real parts: the ``openai`` client against the loopback scripted model, the embedded database.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import replace

import openai
import pytest

from nexusleads_lab.agent import live
from nexusleads_lab.agent.assistant import Assistant
from nexusleads_lab.agent.events import (
    AgentAction,
    AgentText,
    ErrorEvent,
    SessionId,
    TurnCompleted,
    TurnStarted,
)
from nexusleads_lab.agent.live import Throttle, TurnState
from nexusleads_lab.agent.responses import Message, ResolvedConfirm
from nexusleads_lab.db import Database
from nexusleads_lab.db.errors import QueryError
from nexusleads_lab.replay.cassette import last_user_message
from nexusleads_lab.testing.modelserver import ModelServer, Script, text, tool_calls
from nexusleads_lab.ui.chat import ChatController

from checks import SLOW_SQL, product_locks

TIER_SQL = "SELECT tier, count(*) AS n FROM lead_scores GROUP BY tier ORDER BY tier"


def message(text_: str) -> str:
    return json.dumps({"type": "message", "text": text_})


@pytest.fixture()
def scripted(db):
    made: list[tuple[Assistant, ModelServer]] = []

    def make(steps, database=None, **kw) -> Assistant:
        server = ModelServer(Script(steps))
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        user = f"t-{uuid.uuid4().hex[:8]}"
        assistant = Assistant(database=database or db, client=client, org="acme-analytics", user=user, **kw)
        assistant.server = server
        made.append((assistant, server))
        return assistant

    yield make
    for assistant, server in made:
        assistant.cancel()
        assistant.close()
        server.close()


def stored_messages(assistant: Assistant) -> int:
    return len(assistant.history())


def test_a_stop_given_before_the_turns_first_step_ends_it_cancelled_with_nothing_run(scripted):
    slow = text(message("slow " * 200), chunk_size=4, delay=0.02)
    assistant = scripted([slow, text(message("after")), tool_calls([("psql", {"sql": SLOW_SQL})])])
    first = assistant.start("talk for a while", origin="code")
    waiting = assistant.start("count everything slowly", origin="panel")  # waits for the first turn
    waiting.cancel()  # before it took a single step
    first.result(30)
    stopped = waiting.result(30)
    assert stopped.cancelled and "Stopped" in stopped.error
    assert stopped.steps == [] and stopped.frames == {}, "no query ran"
    assert [e.type for e in stopped.events] == ["turn.started", "error"]
    assert len(assistant.server.requests) == 1, "the stopped turn never asked the model"
    assert stored_messages(assistant) == 2, "only the first turn's question and answer were stored"
    assert assistant.ask("and now?").response.text == "after", "the next turn is not stopped"


def test_a_stop_right_after_start_is_kept_even_when_the_turn_has_not_begun(scripted):
    assistant = scripted([tool_calls([("psql", {"sql": SLOW_SQL})], delay=0.5), text(message("after"))])
    turn = assistant.start("count everything slowly", origin="panel")
    turn.cancel()
    result = turn.result(30)
    assert result.cancelled and result.steps == [] and result.frames == {}
    assert assistant.ask("next").response.text == "after"


# A read that runs until it is cancelled, seen running by the lock it holds on lead_scores.
SLOW_READ = "SELECT count(*) AS n FROM lead_scores, generate_series(1, 1000000000000) AS g"


def reading(db) -> bool:
    return any(relation == "lead_scores" for *_, relation in product_locks(db))


def ask_or_start(assistant: Assistant, how: str, question: str):
    """A turn on this (the main) thread, whose one tool call runs on the tool pool, or on a turn
    thread (as every view and the server start one), whose one tool call runs on that thread."""
    if how == "asked":
        return assistant.ask(question)
    return assistant.start(question, origin="panel").result(30)


@pytest.mark.parametrize("how", ["asked", "started"])
def test_a_stop_reaches_a_query_running_for_a_turns_one_tool_call(scripted, db, how):
    assistant = scripted([tool_calls([("psql", {"sql": SLOW_READ})]), text(message("after"))])
    stopper = threading.Thread(target=lambda: (_wait_for(lambda: reading(db)), assistant.cancel()))
    stopper.start()
    result = ask_or_start(assistant, how, "count everything slowly")
    stopper.join()
    assert result.cancelled and [s.status for s in result.steps] == ["started"] and result.frames == {}
    _wait_for(lambda: not reading(db))
    assert assistant.ask("next").response.text == "after"


@pytest.mark.parametrize("how", ["asked", "started"])
def test_a_stop_reaches_a_tool_call_waiting_for_a_read_connection(scripted, db, how):
    one = replace(db.settings, limits=replace(db.settings.limits, pool_size=1))
    small = Database(admin_url=db.admin_url, embedded=db.embedded, settings=one)
    engine = small.engine_for("acme-analytics")

    def hold() -> None:  # the one read connection, busy until cancelled
        with contextlib.suppress(QueryError):
            engine.read(SLOW_READ)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        _wait_for(lambda: reading(db))
        waiting = "SELECT 42 AS waited_for_a_connection"
        assistant = scripted([tool_calls([("psql", {"sql": waiting})]), text(message("after"))], database=small)
        threading.Timer(0.5, assistant.cancel).start()
        result = ask_or_start(assistant, how, "the answer")
        assert holder.is_alive(), "the turn ended while the connection it waited for was still busy"
        assert result.cancelled and [s.status for s in result.steps] == ["started"] and result.frames == {}
    finally:
        engine.cancel()
        holder.join(30)
    assert assistant.ask("next").response.text == "after"
    small.close()


def _wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_per_turn_model_answers_its_own_turn_only_while_another_turn_runs(scripted):
    assistant = scripted(
        [
            tool_calls([("psql", {"sql": TIER_SQL})], delay=0.3),
            text(message("panel answer")),
            text(message("cell answer")),
        ]
    )
    default = assistant.model
    panel = assistant.start("panel question", origin="panel")
    for event in panel:  # the panel's turn is running: its first step has started
        if isinstance(event, AgentAction):
            break
    cell = assistant.start("cell question", origin="cell", model="cell-model")
    assert panel.result(30).response.text == "panel answer"
    assert cell.result(30).response.text == "cell answer"
    sent = [(last_user_message(r), r["model"]) for r in assistant.server.requests]
    assert sent == [("panel question", default), ("panel question", default), ("cell question", "cell-model")]
    assert assistant.model == default, "the shared assistant's model never changed"


def test_result_with_a_timeout_raises_timeout_error_and_the_turn_goes_on(scripted):
    assistant = scripted([text(message("slow " * 200), chunk_size=4, delay=0.02)])
    turn = assistant.start("talk for a while", origin="code")
    with pytest.raises(TimeoutError):
        turn.result(timeout=0.05)
    assert not turn.done()
    turn.cancel()
    result = turn.result(30)
    assert result.cancelled and not result.ok


def test_a_turns_events_by_iteration_are_the_ones_every_subscriber_gets(scripted):
    assistant = scripted([tool_calls([("psql", {"sql": TIER_SQL})]), text(message("Three tiers."))])
    seen = []
    assistant.subscribe(seen.append)
    turn = assistant.start("tiers?", origin="code")
    iterated = list(turn)
    assert iterated[0].type == "turn.started" and iterated[-1].type == "turn.completed"
    assert iterated == [e for e in seen if e.turn_id == turn.id]
    assert {e.turn_id for e in iterated} == {turn.id}
    assert turn.result().response.text == "Three tiers."
    assert [s.status for s in turn.result().steps] == ["completed"]


# What a model may answer, each shape the streaming display reads its own way.
STREAMED_ANSWERS = [
    json.dumps({"type": "message", "text": 'Three tiers, mostly cold. \u00e9 \ud83d\ude00 \\ " done'}),
    json.dumps(
        {"type": "dashboard", "title": "Leads", "sections": [{"type": "bars", "source": "r1", "x": "tier", "y": "n"}]}
    ),
    json.dumps({"type": "dashboard", "sections": [{"type": "pills", "items": []}], "title": "Title last"}),
    "Here it is:\n```json\n" + json.dumps({"type": "message", "text": "fenced"}) + "\n```",
    "Some prose first, then { a brace and ` a tick, and no JSON at all.",
    "Prose, then the answer " + json.dumps({"text": "untyped", "title": "ignored"}),
]


def test_the_done_text_is_what_the_stream_showed_and_what_the_whole_answer_shows(scripted):
    """The done ``agent.text`` is the streaming display's last text (not worked out again from the
    whole answer): the same as ``partial_display_text`` of the whole answer, however it was cut."""
    from nexusleads_lab.agent.events import ShownText
    from nexusleads_lab.agent.responses import partial_display_text

    steps = [tool_calls([("psql", {"sql": TIER_SQL})]), text(message("tiers"))]
    steps += [text(answer, chunk_size=size) for answer in STREAMED_ANSWERS for size in (1, 7)]
    assistant = scripted(steps)
    seen = []
    assistant.subscribe(seen.append)
    assistant.ask("tiers first")
    for answer in STREAMED_ANSWERS:
        for _ in (1, 7):
            seen.clear()
            result = assistant.ask("again")
            texts = [e for e in seen if isinstance(e, AgentText)]
            done = texts[-1]
            assert done.status == "done" and done.text == partial_display_text(answer), answer
            folded = ShownText()
            for edit in texts[:-1]:
                folded.apply(edit)
            assert folded.text == done.text, "the done text is what the edits showed"
            assert {e.turn_id for e in seen} == {seen[0].turn_id}, "every edit carries its turn id"
            merged = [e for e in result.events if isinstance(e, AgentText) and e.status == "streaming"]
            assert all(e.turn_id == seen[0].turn_id for e in merged), "the kept, merged edits too"


# -- the one fold ------------------------------------------------------------------------------------

RECORDED = [
    TurnStarted(turn_id="t1", question="tiers?", origin="cell"),
    SessionId(turn_id="t1", session_id="c1"),
    AgentAction(turn_id="t1", action="command", tool="psql", status="started", call_id="k1", command=TIER_SQL),
    AgentAction(
        turn_id="t1",
        action="command",
        tool="psql",
        status="completed",
        call_id="k1",
        result_id="r1",
        rows=3,
        truncated=False,
        elapsed_ms=4.5,
    ),
    AgentText(turn_id="t1", keep=0, delta="Three", status="streaming"),
    AgentText(turn_id="t1", keep=5, delta=" tiers, {", status="streaming"),
    AgentText(turn_id="t1", keep=12, delta=" mostly cold.", status="streaming"),  # cuts the held-back brace
    AgentText(turn_id="t1", text="Three tiers, mostly cold.", status="done"),
    TurnCompleted(turn_id="t1", text="{}", response={"type": "message", "text": "Three tiers, mostly cold."}),
]


def test_one_recorded_turn_folds_to_the_same_state_whichever_view_folds_it():
    states = []
    for _ in range(3):  # the cell, the panel and the socket each keep one
        state = TurnState()
        changed = [state.apply(event) for event in RECORDED]
        states.append(state)
        assert changed[1] is False, "a session id changes nothing a view shows"
    cell, panel, socket = states
    for state in states:
        assert state.id == "t1" and state.origin == "cell" and state.conversation_id == "c1"
        assert state.phase == "done" and state.over
        assert state.text.text == "Three tiers, mostly cold."
        [step] = state.steps.values()
        assert step.step() == {
            "call_id": "k1",
            "tool": "psql",
            "status": "completed",
            "command": TIER_SQL,
            "path": None,
            "result_id": "r1",
            "rows": 3,
            "truncated": False,
            "elapsed_ms": 4.5,
            "error": None,
        }
    assert cell.steps == panel.steps == socket.steps


def test_the_fold_keeps_a_failed_and_a_stopped_turn_apart():
    failed, stopped = TurnState(), TurnState()
    failed.apply(ErrorEvent(turn_id="t", message="The model service is down."))
    stopped.apply(ErrorEvent(turn_id="t", message="Stopped.", cancelled=True))
    assert failed.phase == stopped.phase == "error"
    assert (failed.cancelled, stopped.cancelled) == (False, True)
    assert failed.error == "The model service is down."


def test_every_throttle_takes_its_rate_from_the_one_setting(monkeypatch):
    monkeypatch.setattr(live, "UPDATES_PER_SECOND", 4.0)
    sent: list[int] = []
    throttle = Throttle(sent.append)
    assert throttle.rate == 4.0
    for value in range(1000):
        throttle.push(value)
    assert sent == [0], "the first value goes at once, the others wait their turn"
    throttle.flush()
    assert sent == [0, 999], "the latest value always gets through"


def test_throttles_wait_on_one_shared_timer_thread_and_each_latest_value_arrives_unflushed():
    sent: list[list[int]] = [[] for _ in range(20)]
    throttles = [Throttle(box.append, rate=50) for box in sent]
    timers_seen = 0
    for value in range(30):  # 20 answers streaming at once, a token every 5 ms
        for throttle in throttles:
            throttle.push(value)
        timers_seen = max(timers_seen, sum(isinstance(t, threading.Timer) for t in threading.enumerate()))
        time.sleep(0.005)
    deadline = time.monotonic() + 30
    while any(not box or box[-1] != 29 for box in sent) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(box[-1] == 29 and box == sorted(box) for box in sent), "every latest value, in order, without a flush"
    assert all(len(box) < 30 for box in sent), "throttled"
    assert timers_seen == 0, "no thread started per throttled window"
    assert [t.name for t in threading.enumerate()].count("nexus-throttle") == 1


def test_the_panel_streams_at_the_one_rate(scripted, monkeypatch):
    monkeypatch.setattr(live, "UPDATES_PER_SECOND", 5.0)
    assistant = scripted([text(message("word " * 300), chunk_size=2, delay=0.004)])
    syncs: list[float] = []
    controller = ChatController(
        assistant, sink=lambda patch: syncs.append(time.monotonic()) if patch.get("streaming") else None
    )
    started = time.monotonic()
    controller.handle({"type": "ask", "text": "talk"})
    assert controller.wait(60)
    elapsed = time.monotonic() - started
    controller.close()
    deltas = len([1 for _ in range(0, len(message("word " * 300)), 2)])
    assert len(syncs) >= 2, "the text streamed"
    assert len(syncs) <= 5 * elapsed + 2, (len(syncs), elapsed)
    assert len(syncs) < deltas / 10


def test_a_response_that_comes_in_as_a_dict_is_validated_once_and_goes_out_as_the_same_json():
    proposal = {
        "type": "confirm",
        "id": "p-1",
        "title": "Mark as hot",
        "summary": "3 leads",
        "sql": "UPDATE leads SET x = 1",
        "expires_at": "2026-12-07T15:00:00+00:00",
        "dry_run_rows": 3,
        "dry_run_error": None,
        "preview": [{"rows": 3, "sample": [{"key": {"id": 1}, "before": None, "after": None}]}],
        "stale": None,
    }
    completed = TurnCompleted(turn_id="t", text="{}", response=proposal)
    assert isinstance(completed.response, ResolvedConfirm) and completed.response.dry_run_rows == 3
    assert completed.to_dict()["response"] == proposal
    assert json.loads(completed.to_json())["response"] == proposal
    message_ = TurnCompleted(turn_id="t", text="{}", response={"type": "message", "text": "hi"})
    assert isinstance(message_.response, Message) and message_.to_dict()["response"] == {
        "type": "message",
        "text": "hi",
    }
