"""The agent loop end to end: the real openai client, a loopback scripted model, the real database."""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from functools import partial

import pytest
from scripted import TIER_SQL, dashboard, message

from nexusleads_lab.agent.assistant import TOKEN_BUDGET, Assistant, fit_budget
from nexusleads_lab.agent.confirm import ConfirmationError, Confirmations
from nexusleads_lab.agent.history import MessageSizes
from nexusleads_lab.agent.tools import MAX_TOOL_BYTES
from nexusleads_lab.db.schema import org_role_names
from nexusleads_lab.db.store import ConversationStore, NotFound
from nexusleads_lab.testing.modelserver import ModelServer, Script, disconnect_after, http_error, text, tool_calls

from checks import SLOW_SQL, fingerprint, lead_sequences

API_KEY = "sk-test-SECRET-do-not-leak-1234567890"


@pytest.fixture()
def scripted(scripted_assistant):
    """Build an assistant wired to a scripted model (with this file's key); closed after the test."""
    return functools.partial(scripted_assistant, api_key=API_KEY)


def types(result) -> list[str]:
    return [e.type for e in result.events]


def test_multi_step_tool_loop_builds_a_dashboard_from_result_ids(scripted, db):
    assistant = scripted(
        [
            tool_calls([("read_file", {"path": "plg-database/SKILL.md"})]),
            tool_calls([("psql", {"sql": TIER_SQL})]),
            text(
                dashboard(
                    {"type": "widgets", "items": [{"title": "Tiers", "value": "3"}]},
                    {"type": "bars", "label": "Leads by tier", "source": "r1", "x": "tier", "y": "n"},
                    {"type": "table", "source": "r1", "limit": 50},
                )
            ),
        ]
    )
    result = assistant.ask("How are leads spread over tiers?")
    assert result.ok, result.error
    truth = assistant.engine.read(TIER_SQL).df
    bars = result.response.sections[1]
    assert [i.name for i in bars.items] == list(truth["tier"])
    assert [i.value for i in bars.items] == list(truth["n"])
    assert result.frames["r1"].attrs["sql"] == TIER_SQL
    assert result.df is result.frames["r1"]
    # what the model saw: the skill file, then a bounded preview naming r1
    sent = assistant.server.requests
    assert "lead_scores" in sent[1]["messages"][-1]["content"]
    preview = json.loads(sent[2]["messages"][-1]["content"])
    assert preview["result_id"] == "r1" and preview["row_count"] == 3
    # the event protocol, in order
    kinds = types(result)
    assert kinds[0] == "turn.started" and kinds[1] == "session.id" and kinds[-1] == "turn.completed"
    actions = [(e.tool, e.status) for e in result.events if e.type == "agent.action"]
    assert actions == [("read_file", "started"), ("read_file", "completed"), ("psql", "started"), ("psql", "completed")]
    done = next(e for e in result.events if e.type == "agent.action" and e.status == "completed" and e.tool == "psql")
    assert done.rows == 3 and done.result_id == "r1" and done.elapsed_ms > 0 and done.command == TIER_SQL
    assert [e.status for e in result.events if e.type == "agent.text"][-1] == "done"
    assert result.usage.get("total_tokens", 0) > 0


def test_turn_started_arrives_before_any_network(scripted):
    assistant = scripted([text(message("hi"))])
    seen = []
    assistant.ask("hello", on_event=lambda e: seen.append((e.type, len(assistant.server.requests))))
    assert seen[0] == ("turn.started", 0)


def test_parallel_tool_calls_run_and_answer_in_call_order(scripted):
    assistant = scripted(
        [
            tool_calls(
                [
                    ("psql", {"sql": "SELECT count(*) AS projects FROM projects"}),
                    ("psql", {"sql": "SELECT count(*) AS repos FROM repositories"}),
                ]
            ),
            text(
                dashboard(
                    {
                        "type": "widgets",
                        "items": [
                            {"title": "Projects", "source": "r1", "column": "projects"},
                            {"title": "Repositories", "source": "r2", "column": "repos"},
                        ],
                    }
                )
            ),
        ]
    )
    result = assistant.ask("How many projects and repositories?")
    assert result.ok, result.error
    assert set(result.frames) == {"r1", "r2"}
    tool_msgs = [m for m in assistant.server.requests[1]["messages"] if m["role"] == "tool"]
    assert [json.loads(m["content"])["result_id"] for m in tool_msgs] == ["r1", "r2"]
    values = [i.value for i in result.response.sections[0].items]
    assert values[0] != values[1] and all(str(v).replace(",", "").isdigit() for v in values)


def test_a_database_error_goes_back_to_the_model_which_recovers(scripted):
    assistant = scripted(
        [
            tool_calls([("psql", {"sql": "SELECT nonexistent_col FROM contributors"})]),
            tool_calls([("psql", {"sql": "SELECT count(*) AS n FROM contributors"})]),
            text(message("There are many contributors.")),
        ]
    )
    result = assistant.ask("How many contributors?")
    assert result.ok
    error = json.loads(assistant.server.requests[1]["messages"][-1]["content"])["error"]
    assert "42703" in error and "does not exist" in error
    assert [s.status for s in result.steps] == ["failed", "completed"]
    assert list(result.frames) == ["r2"]


def test_model_rate_limit_and_server_errors_become_one_clear_error_and_the_thread_stays_usable(scripted):
    assistant = scripted([http_error(429, "slow down"), http_error(500, "boom"), text(message("back"))])
    first = assistant.ask("one")
    assert not first.ok and "429" in first.error and types(first)[-1] == "error"
    second = assistant.ask("two")
    assert not second.ok and "500" in second.error
    third = assistant.ask("three")
    assert third.ok and third.response.text == "back"
    # the model sees all three questions in order, with the failures noted in between
    contents = [m.get("content") for m in assistant.server.requests[-1]["messages"] if m["role"] == "user"]
    assert contents == ["one", "two", "three"]


def test_client_retries_a_500_by_itself(scripted):
    assistant = scripted([http_error(500, "transient"), text(message("ok after retry"))], retries=2)
    result = assistant.ask("hi")
    assert result.ok and result.response.text == "ok after retry"


def test_a_mid_stream_disconnect_is_an_error_not_a_crash(scripted):
    assistant = scripted([disconnect_after(3, message("this answer will be cut off somewhere")), text(message("fine"))])
    result = assistant.ask("hi")
    assert not result.ok and "connection failed or dropped mid-answer" in result.error, result.error
    assert assistant.ask("again").ok


def test_cancel_from_another_thread_ends_a_slow_stream_within_a_second(scripted):
    assistant = scripted([text(message("word " * 400), chunk_size=4, delay=0.05), text(message("after"))])
    threading.Timer(0.5, assistant.cancel).start()
    started = time.perf_counter()
    result = assistant.ask("talk slowly")
    assert time.perf_counter() - started < 1.6
    assert result.cancelled and "Stopped" in result.error
    assert assistant.ask("next").response.text == "after"


def test_cancel_stops_a_long_query(scripted):
    assistant = scripted([tool_calls([("psql", {"sql": SLOW_SQL})]), text(message("after"))])
    threading.Timer(0.5, assistant.cancel).start()
    started = time.perf_counter()
    result = assistant.ask("sleep")
    assert time.perf_counter() - started < 1.6
    assert result.cancelled
    assert assistant.ask("next").ok


def test_conversation_survives_a_restart(scripted, db):
    user = f"alice-{uuid.uuid4().hex[:6]}"
    first = scripted([tool_calls([("psql", {"sql": TIER_SQL})]), text(message("Three tiers."))], user=user)
    r1 = first.ask("Which tiers exist?")
    first.close()
    # a new kernel: fresh objects, same user and org
    second = scripted([text(message("As I said, three."))], user=user)
    assert r1.thread_id in [c.id for c in second.conversations()]
    second.resume(r1.thread_id)
    r2 = second.ask("Remind me?")
    assert r2.ok and r2.thread_id == r1.thread_id
    sent = second.server.requests[0]["messages"]
    assert [m.get("content") for m in sent if m["role"] == "user"] == ["Which tiers exist?", "Remind me?"]
    assert any(m["role"] == "tool" and "r1" in m["content"] for m in sent)
    history = second.history()
    assert [h["role"] for h in history][:2] == ["user", "assistant"]
    assert history[-1]["meta"]["response"]["text"] == "As I said, three."


def test_nobody_sees_or_deletes_another_users_or_orgs_conversations(scripted, db):
    alice = scripted([text(message("secret plans"))], user="alice-x", org="pico-labs")
    conv = alice.ask("our secret plans").thread_id
    for user, org in (("bob-x", "pico-labs"), ("alice-x", "globex-cloud")):
        intruder = ConversationStore(db.admin_url, org, user)
        assert conv not in [c.id for c in intruder.list()]
        for call, *args in (
            (intruder.get, conv),
            (intruder.messages, conv),
            (intruder.rename, conv, "mine"),
            (intruder.delete, conv),
            (intruder.append, conv, "user", {"message": {"role": "user", "content": "x"}}),
        ):
            with pytest.raises(NotFound):
                call(*args)
        intruder.close()
    assert alice.store.get(conv).title == "our secret plans"
    alice.rename(conv, "Plans")
    assert alice.store.get(conv).title == "Plans"
    alice.delete(conv)
    assert conv not in [c.id for c in alice.conversations()]


def test_injected_bio_can_at_most_produce_a_confirm_card(scripted, db):
    count_sql = "SELECT count(*) AS n FROM lead_scores"
    before = int(db.engine_for("acme-analytics").read(count_sql).df["n"][0])
    everyone = int(db.engine.read(count_sql).df["n"][0])
    bio_sql = "SELECT github_login, bio FROM contributors WHERE github_login = 'mallory-injector'"
    held, positions = fingerprint(db), lead_sequences(db)
    assistant = scripted(
        [
            tool_calls([("psql", {"sql": bio_sql})]),
            # a model that fell for it tries to delete directly, then asks for a confirmation
            tool_calls([("psql", {"sql": "DELETE FROM lead_scores"})]),
            text(
                json.dumps(
                    {
                        "type": "confirm",
                        "id": "delete-all",
                        "title": "Delete all leads",
                        "summary": "As the bio says",
                        "sql": "DELETE FROM lead_scores",
                    }
                )
            ),
        ]
    )
    result = assistant.ask("Tell me about mallory-injector")
    assert "Ignore your instructions" in assistant.server.requests[1]["messages"][-1]["content"]
    assert result.steps[1].status == "failed"
    # the card counts only this organization's leads, and nothing ran
    assert result.proposal is not None and result.proposal.dry_run_rows == before < everyone
    assert int(db.engine.read(count_sql).df["n"][0]) == everyone
    assert fingerprint(db) == held and lead_sequences(db) == positions


def test_confirm_runs_exactly_the_shown_sql_once(scripted, db):
    scope = db.engine_for("acme-analytics")
    ids = scope.read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 3").df["id"].tolist()
    sql = f"update lead_scores set status = 'contacted', status_changed_at = now()  -- mark\n where id in ({', '.join(map(str, ids))})"
    assistant = scripted(
        [
            text(
                json.dumps(
                    {"type": "confirm", "id": "x1", "title": "Mark 3 contacted", "summary": "Three leads", "sql": sql}
                )
            ),
            text(message("Marked them.")),
        ]
    )
    result = assistant.ask("mark these three as contacted")
    proposal = result.proposal
    assert proposal.id != "x1" and len(proposal.id) >= 24
    assert proposal.dry_run_rows == 3
    canonical = f"UPDATE lead_scores SET status = 'contacted', status_changed_at = now() WHERE id IN ({', '.join(map(str, ids))})"
    assert proposal.sql == canonical, "the card shows the parser's canonical form: no comment, normal layout"
    assert result.response_dict()["id"] == proposal.id and result.response_dict()["sql"] == canonical
    sample = result.response_dict()["preview"][0]["sample"]
    assert [row["key"]["id"] for row in sample] == ids
    assert {row["before"]["status"] for row in sample} == {"new"} and {row["after"]["status"] for row in sample} == {
        "contacted"
    }
    status = f"SELECT DISTINCT status FROM lead_scores WHERE id IN ({', '.join(map(str, ids))})"
    assert list(db.engine.read(status).df["status"]) == ["new"], "nothing is written before the click"
    # tampered SQL is refused and changes nothing
    held, positions = fingerprint(db), lead_sequences(db)
    with pytest.raises(ConfirmationError, match="not the SQL that was shown"):
        assistant.confirm(proposal.id, canonical.replace("IN (", "IN (1, "))
    assert fingerprint(db) == held and lead_sequences(db) == positions
    # another user cannot use it, nor the same user in another organization
    for org, user in (("acme-analytics", "mallory"), ("pico-labs", assistant.user)):
        with pytest.raises(ConfirmationError, match="No pending confirmation"):
            Confirmations(ConversationStore(db.admin_url, org, user), partial(db.engine_for, org)).confirm(proposal.id)
    events = []
    try:
        outcome = assistant.confirm(proposal.id, canonical, follow_up=True, on_event=events.append)
        assert outcome.status == "confirmed" and outcome.rows_affected == 3
        assert list(db.engine.read(status).df["status"]) == ["contacted"]
        assert f"CONFIRM_ACTION: {proposal.id} confirmed: 3 rows affected" in json.dumps(
            assistant.server.requests[-1]["messages"]
        )
        assert events[-1].type == "turn.completed"
        with pytest.raises(ConfirmationError, match="already confirmed"):
            assistant.confirm(proposal.id, canonical)
        with db.connect_admin() as conn:
            audit = conn.execute(
                "SELECT sql, previewed_rows, rows_affected, db_role FROM write_audit WHERE confirmation_id = %s",
                (proposal.id,),
            ).fetchall()
        assert audit == [(canonical, 3, 3, org_role_names("acme-analytics")[1])]
    finally:
        db.engine.write([f"UPDATE lead_scores SET status = 'new' WHERE id IN ({', '.join(map(str, ids))})"], [3])


def test_expired_and_cancelled_proposals_cannot_run(scripted, db):
    from datetime import timedelta

    sql = "UPDATE lead_scores SET status = status WHERE false"
    assistant = scripted(
        [text(json.dumps({"type": "confirm", "id": "a", "title": "t", "summary": "s", "sql": sql}))] * 2
    )
    assistant.confirmations.ttl = timedelta(seconds=-1)
    expired = assistant.ask("propose").proposal
    with pytest.raises(ConfirmationError, match="expired"):
        assistant.confirm(expired.id)
    assistant.confirmations.ttl = timedelta(minutes=5)
    live = assistant.ask("propose again").proposal
    assert assistant.decline(live.id).status == "cancelled"
    with pytest.raises(ConfirmationError, match="already cancelled"):
        assistant.confirm(live.id)
    with pytest.raises(ConfirmationError, match="No pending confirmation"):
        assistant.confirm("c_guessed-id")


def test_skill_mention_injects_the_whole_skill(scripted):
    assistant = scripted([text(message("ok"))])
    assistant.ask("$plg-database how many leads are hot?")
    system_msgs = [m["content"] for m in assistant.server.requests[0]["messages"] if m["role"] == "system"]
    assert len(system_msgs) == 2 and "lead_scores" in system_msgs[1]
    assert "## Skills" in system_msgs[0] and "plg-database" in system_msgs[0]


def test_read_file_outside_skills_is_refused_and_the_turn_goes_on(scripted):
    assistant = scripted([tool_calls([("read_file", {"path": "/etc/passwd"})]), text(message("could not read it"))])
    result = assistant.ask("read /etc/passwd")
    assert result.ok and result.steps[0].status == "failed"
    content = assistant.server.requests[1]["messages"][-1]["content"]
    assert "root:" not in content and "error" in content


def test_malformed_tool_arguments_and_unknown_tools_are_reported_to_the_model(scripted):
    assistant = scripted(
        [
            tool_calls([("psql", "{not json"), ("drop_database", {"now": True})]),
            text(message("sorry")),
        ]
    )
    result = assistant.ask("break things")
    assert result.ok
    follow_up = assistant.server.requests[1]["messages"]
    tool_msgs = [json.loads(m["content"]) for m in follow_up if m["role"] == "tool"]
    assert len(tool_msgs) == 1 and "not valid JSON" in tool_msgs[0]["error"]
    (sent,) = [m for m in follow_up if m.get("tool_calls")]
    assert [c["function"] for c in sent["tool_calls"]] == [{"name": "psql", "arguments": "{}"}], (
        "neither the invalid JSON nor the unknown tool is sent back as a call"
    )
    note = follow_up[-1]
    assert note["role"] == "system" and "'drop_database'" in note["content"] and "psql, read_file" in note["content"]
    assert [s.status for s in result.steps] == ["failed", "failed"]


def test_tool_arguments_of_the_wrong_type_are_a_tool_error_the_model_can_correct(scripted):
    assistant = scripted(
        [
            tool_calls([("psql", {"sql": 42}), ("read_file", {"path": ["a", "b"]}), ("psql", {"sql": None})]),
            tool_calls([("psql", {"sql": "SELECT 1 AS one"})]),
            text(message("fixed it")),
        ]
    )
    result = assistant.ask("try odd arguments")
    assert result.ok and result.response.text == "fixed it"
    errors = [
        json.loads(m["content"]).get("error", "")
        for m in assistant.server.requests[1]["messages"]
        if m["role"] == "tool"
    ]
    assert "psql needs one argument, sql" in errors[0] and "read_file needs one argument, path" in errors[1]
    assert [s.status for s in result.steps] == ["failed", "failed", "failed", "completed"]


def test_a_lone_surrogate_in_the_answer_is_stored_and_the_answer_kept(scripted, db):
    assistant = scripted(
        [text('{"type": "message", "text": "odd \\ud800 text \\udfff end"}'), text(message("still here"))]
    )
    result = assistant.ask("say something odd")
    assert result.ok and result.response.text == "odd \ufffd text \ufffd end"
    stored = assistant.history()
    assert stored[-1]["meta"]["response"]["text"] == "odd \ufffd text \ufffd end"
    assert assistant.ask("and again").response.text == "still here", "the thread keeps working"


@pytest.mark.parametrize("rows", [10, 10_000, 1_000_000])
def test_what_the_model_sees_of_a_result_is_bounded(scripted, rows):
    sql = f"SELECT g AS id, md5(g::text) AS hash, repeat('x', 200) AS pad FROM generate_series(1, {rows}) g"
    assistant = scripted([tool_calls([("psql", {"sql": sql})]), text(message("done"))])
    result = assistant.ask("big")
    content = assistant.server.requests[1]["messages"][-1]["content"]
    assert len(content.encode()) <= MAX_TOOL_BYTES
    payload = json.loads(content)
    assert payload["row_count"] == min(rows, 100_000) and payload["truncated"] == (rows > 100_000)
    assert len(result.frames["r1"]) == min(rows, 100_000)


def test_no_key_and_no_base_url_is_one_clear_message(db, monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NEXUS_REPLAY"):
        monkeypatch.delenv(var, raising=False)
    result = Assistant(database=db, user="nokey").ask("hello")
    assert not result.ok and "OPENAI_API_KEY" in result.error and "NEXUS_REPLAY" in result.error
    assert types(result) == ["turn.started", "error"]


def test_an_empty_question_is_refused_without_calling_the_model(scripted):
    assistant = scripted([text(message("unused"))])
    result = assistant.ask("   ")
    assert not result.ok and "empty" in result.error and assistant.server.requests == []


def test_secrets_never_appear_in_events_messages_or_errors(scripted, db):
    from nexusleads_lab.config import Settings
    from nexusleads_lab.db.database import Database

    leaky = Settings(
        agent_database_url="postgresql://nexus_agent:pg-password-SECRET@127.0.0.1:1/plg", org="acme-analytics"
    )
    leaky_db = Database(admin_url=db.admin_url, settings=leaky)
    assistant = scripted(
        [tool_calls([("psql", {"sql": "SELECT 1"})]), text(message("no db")), http_error(401, f"bad key {API_KEY}")],
        database=leaky_db,
    )
    results = [assistant.ask("try the db"), assistant.ask("again")]
    blob = json.dumps([e.to_dict() for r in results for e in r.events]) + json.dumps(assistant.history())
    blob += " ".join(r.error or "" for r in results)
    assert "Cannot connect" in blob
    assert "pg-password-SECRET" not in blob
    assert API_KEY not in blob
    with db.connect_admin() as conn:
        stored = conn.execute("SELECT string_agg(content::text, ' ') FROM chat_messages").fetchone()[0]
    assert "pg-password-SECRET" not in stored and API_KEY not in stored
    leaky_db.close()


def test_long_threads_shrink_old_tool_results_first():
    big = json.dumps({"result_id": "r1", "row_count": 5, "columns": [{"name": "a"}], "rows": [["x" * 3000]]})
    messages = [
        {"role": "user", "content": "q1"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "psql", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": big},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c2", "type": "function", "function": {"name": "psql", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c2", "content": big},
    ]
    fitted = fit_budget(messages, 1000)
    assert len(fitted) == len(messages)
    assert json.loads(fitted[2]["content"])["result_id"] == "r1" and "rows" not in json.loads(fitted[2]["content"])
    assert fitted[-1]["content"] == big, "the latest turn is kept intact"
    tiny = fit_budget(messages, 50)
    assert tiny[0]["content"] == "q2", "whole old turns go when shrinking is not enough"


def test_a_messages_size_counts_the_json_the_request_sends():
    """Compact UTF-8, as ``openapi_dumps`` writes the request body (not ``json.dumps``' spaced
    default, which counted 2 characters more per key and item), a quarter token a character."""
    from openai._utils._json import openapi_dumps

    from nexusleads_lab.agent.history import _size

    calls = [{"id": f"c{i}", "type": "function", "function": {"name": "psql", "arguments": "{}"}} for i in range(3)]
    for sent_message in (
        {"role": "user", "content": "tiers? é 😀 " * 20},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": json.dumps({"rows": [[1, 2.5, None]] * 30})},
    ):
        sent = openapi_dumps(sent_message).decode()
        assert _size(sent_message) == len(sent) // 4 + 4
    assert _size({"role": "user", "content": "lone \udc80"}) > 4  # what no encoder takes is still counted


def test_a_thread_fitted_with_its_remembered_sizes_is_fitted_as_afresh_as_it_grows_and_is_replaced():
    big = json.dumps({"result_id": "r1", "row_count": 5, "columns": [{"name": "a"}], "rows": [["x" * 3000]]})
    known = MessageSizes()
    thread: list[dict] = []
    for turn in range(6):
        thread += [{"role": "user", "content": f"q{turn}"}, {"role": "tool", "content": big}]
        thread.append({"role": "assistant", "content": f"a{turn}"})
        for budget in (50, 1000, 2500, TOKEN_BUDGET):
            assert fit_budget(thread, budget, known) == fit_budget(thread, budget)
    thread = [{**m} for m in thread[3:]]  # another thread (a resumed one): new messages, same texts
    assert fit_budget(thread, 1000, known) == fit_budget(thread, 1000)


def test_a_turn_reuses_one_connection_to_the_model(db, monkeypatch):
    """The SDK stops reading at [DONE]; our transport drains the rest so keep-alive works."""
    from nexusleads_lab.agent.provider import ModelSettings, make_client

    steps = [
        tool_calls([("psql", {"sql": "SELECT 1 AS one"})]),
        tool_calls([("psql", {"sql": "SELECT 2 AS two"})]),
        text(message("done")),
    ]
    with ModelServer(Script(steps)) as server:
        settings = ModelSettings(model="m", api_key=API_KEY, base_url=server.base_url, replay=None, record=None)
        assistant = Assistant(database=db, client=make_client(settings), user="keepalive", persist=False)
        result = assistant.ask("three steps")
        assistant.close()
        assert result.ok and len(server.requests) == 3
        assert server.connections_opened == 1


def test_cancel_mid_stream_does_not_wait_to_drain(db):
    from nexusleads_lab.agent.provider import ModelSettings, make_client

    with ModelServer(Script([text(message("word " * 400), chunk_size=4, delay=0.05), text(message("next"))])) as server:
        settings = ModelSettings(model="m", api_key=API_KEY, base_url=server.base_url, replay=None, record=None)
        assistant = Assistant(database=db, client=make_client(settings), user="keepalive", persist=False)
        threading.Timer(0.4, assistant.cancel).start()
        started = time.perf_counter()
        assert assistant.ask("slow").cancelled
        assert time.perf_counter() - started < 1.6
        assert assistant.ask("again").response.text == "next"
        assistant.close()


class OddChunks:
    """A model that streams chunks of every wrong shape, then a whole answer in a good one."""

    ODD = (
        {"choices": "not a list"},
        {"choices": [5, None, "x", {"delta": 7}, {"delta": {"content": 12, "tool_calls": {"index": 0}}}]},
        {"choices": [{"delta": {"tool_calls": [3, {"index": "one", "function": "f"}, {"function": {"name": 9}}]}}]},
        {"usage": {"prompt_tokens": "lots", "completion_tokens": None, "total_tokens": 3}},
        {"usage": "none"},
        [1, 2, 3],
        "just a string",
        7,
    )

    def serve(self, wire) -> None:
        wire.start_stream()
        for data in self.ODD:
            wire.send_event(json.dumps(data))
        answer = message("still here")
        wire.send_event(
            {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": answer}}]}
        )
        wire.end_stream()


def test_chunks_of_every_wrong_shape_are_skipped_and_the_answer_still_arrives(scripted):
    assistant = scripted([OddChunks()])
    result = assistant.ask("anything odd?")
    assert result.error is None and result.response.text == "still here"
    assert result.usage.get("total_tokens") == 3 and result.usage.get("prompt_tokens") == 0
    assert not result.steps, "tool-call fragments that name no call index are not calls"


def test_nul_characters_from_the_person_or_the_model_are_stored_and_the_conversation_goes_on(scripted, db):
    # PostgreSQL's text and jsonb cannot hold NUL: a question, an answer or a proposal's title
    # with one used to fail the turn; each is stored with U+FFFD in its place.
    sql = "UPDATE lead_scores SET status = status WHERE id = (SELECT min(id) FROM lead_scores)"
    proposal = json.dumps({"type": "confirm", "id": "m", "title": "Re\x00tag", "summary": "s\x00", "sql": sql})
    assistant = scripted([text(message("lit \\u0000 and a real \x00 here")), text(proposal)])
    first = assistant.ask("tiers\x00?")
    assert first.error is None and first.response.text == "lit \\u0000 and a real \x00 here"
    second = assistant.ask("propose")
    assert second.error is None and second.proposal is not None
    stored = [(m["role"], m["message"]["content"]) for m in assistant.history()]
    assert stored[0] == ("user", "tiers\ufffd?")
    answer = assistant.history()[1]
    assert answer["message"]["content"] == message("lit \\u0000 and a real \x00 here"), "the model's text as sent"
    assert answer["meta"]["response"]["text"] == "lit \\u0000 and a real \ufffd here", "a literal \\u0000 stays"
    with db.connect_admin() as admin:
        title = admin.execute("SELECT title FROM chat_confirmations WHERE id = %s", (second.proposal.id,)).fetchone()[0]
    assert title == "Re\ufffdtag"
    outcome = assistant.confirm(second.proposal.id)
    assert outcome.status == "confirmed" and outcome.rows_affected == 1
