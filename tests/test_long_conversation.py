"""A conversation of 20,000 messages through the real server: its transcript comes in bounded pages
that add up to the whole, and resuming it reads only the tail the model's token budget keeps,
while its results go on numbering after the highest id anywhere in it."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from scripted import message
from servers import ORG, send, until_end
from websockets.sync.client import connect

from nexusleads_lab.agent.assistant import TOKEN_BUDGET, fit_budget
from nexusleads_lab.db.store import ConversationStore
from nexusleads_lab.testing.modelserver import text, tool_calls

API = "/api/chat/conversations"
TURNS = 5_000  # four messages each: question, psql call, its result, answer
OLD_HIGH = 90_000  # the highest result id, in the oldest turn: far outside what the model sees


def fill(db, conversation: str) -> None:
    """5,000 stored turns in one INSERT (what 5,000 real turns would have stored)."""
    with db.connect_admin() as conn:
        conn.execute(
            """
            INSERT INTO chat_messages (conversation_id, seq, role, content)
            SELECT %(c)s, (t - 1) * 4 + s.k, s.role, s.content
            FROM generate_series(1, %(turns)s) t, LATERAL (VALUES
              (1, 'user', jsonb_build_object('message', jsonb_build_object('role', 'user', 'content', 'q' || t))),
              (2, 'assistant', jsonb_build_object('message', jsonb_build_object('role', 'assistant',
                 'content', NULL, 'tool_calls', jsonb_build_array(jsonb_build_object('id', 'c' || t,
                 'type', 'function', 'function', jsonb_build_object('name', 'psql',
                 'arguments', '{"sql":"SELECT ' || t || '"}')))))),
              (3, 'tool', jsonb_build_object('message', jsonb_build_object('role', 'tool', 'tool_call_id', 'c' || t,
                 'content', '{"result_id":"r' || CASE WHEN t = 1 THEN %(high)s ELSE t END
                            || '","row_count":1,"rows":[["' || repeat('x', 300) || '"]]}'),
                 'meta', jsonb_build_object('ok', true, 'rows', 1,
                 'result_id', 'r' || CASE WHEN t = 1 THEN %(high)s ELSE t END))),
              (4, 'assistant', jsonb_build_object('message', jsonb_build_object('role', 'assistant',
                 'content', '{"type":"message","text":"a' || t || '"}')))
            ) AS s(k, role, content)
            """,
            {"c": conversation, "turns": TURNS, "high": OLD_HIGH},
        )


@pytest.fixture()
def rows_read(monkeypatch):
    """Messages the conversation store hands back, per request; reading a whole conversation fails."""
    counts: list[int] = []
    page, find = ConversationStore.page, ConversationStore.find

    def counted(original):
        def read(self, *args, **kwargs):
            got = original(self, *args, **kwargs)
            counts[-1] += len(got)
            return got

        return read

    def whole(self, conversation_id):
        raise AssertionError("the whole conversation was read")

    monkeypatch.setattr(ConversationStore, "page", counted(page))
    monkeypatch.setattr(ConversationStore, "find", counted(find))
    monkeypatch.setattr(ConversationStore, "load", whole)
    return counts


def long_conversation(live, db) -> str:
    with httpx.Client(base_url=live.http) as http:
        conversation = http.post(API, json={"title": "long"}).json()["id"]
    fill(db, conversation)
    return conversation


def test_a_transcript_of_20000_messages_comes_in_bounded_pages_that_add_up(serve, db, rows_read):
    live = serve()
    conversation = long_conversation(live, db)
    questions: list[str] = []
    answers: list[str] = []
    results: list[str] = []
    before = None
    with httpx.Client(base_url=live.http) as http:
        while before != 0:
            rows_read.append(0)
            reply = http.get(f"{API}/{conversation}", params={"limit": 400, **({"before": before} if before else {})})
            page = reply.json()
            assert page["transcript_total"] == 4 * TURNS
            assert len(page["transcript"]) <= 400 and len(reply.content) < 400 * 1024
            assert rows_read[-1] <= 4 * 400, "one page reads about its own messages, not the conversation"
            assert page["transcript_from"] < (before if before is not None else 4 * TURNS + 1)
            questions = [i["text"] for i in page["transcript"] if i["kind"] == "question"] + questions
            page_answers = [i for i in page["transcript"] if i["kind"] == "answer"]
            answers = [i["response"]["text"] for i in page_answers] + answers
            results = [s["result_id"] for i in page_answers for s in i["steps"]] + results
            before = page["transcript_from"]
    assert len(rows_read) == TURNS * 2 // 400 + (1 if TURNS * 2 % 400 else 0)
    assert questions == [f"q{t}" for t in range(1, TURNS + 1)]
    assert answers == [f"a{t}" for t in range(1, TURNS + 1)]
    assert results == [f"r{OLD_HIGH}"] + [f"r{t}" for t in range(2, TURNS + 1)]


def test_resuming_20000_messages_reads_the_tail_the_budget_keeps_and_numbers_results_after_the_highest(
    serve, db, rows_read
):
    live = serve([tool_calls([("psql", {"sql": "SELECT 42 AS answer"})]), text(message("Forty-two."))])
    conversation = long_conversation(live, db)
    store = ConversationStore(db.store_url(ORG), ORG, live.local.user, guard=True)
    stored = whole_thread(store, conversation)
    store.close()
    rows_read.append(0)
    with connect(live.ws) as ws:
        send(ws, type="chat", message="and now?", sessionId=conversation)
        frames = until_end(ws)
    assert frames[-1]["type"] == "turn.completed", frames[-1]
    done = [f for f in frames if f["type"] == "agent.action" and f["status"] == "completed"]
    assert [f["resultId"] for f in done] == [f"r{OLD_HIGH + 1}"]
    assert json.loads(frames[-1]["text"])["text"] == "Forty-two."
    # what the model got: exactly what the whole thread would have sent, from a bounded read
    sent = live.model.requests[0]["messages"][1:]
    assert sent == fit_budget([*stored, {"role": "user", "content": "and now?"}], TOKEN_BUDGET)
    assert 0 < len(sent) < 4 * TURNS // 10
    assert rows_read[-1] <= len(sent) + 2 * 200, "resume reads the tail it sends, and at most a page more"
    with httpx.Client(base_url=live.http) as http:
        assert http.get(f"{API}/{conversation}").json()["transcript_total"] == 4 * TURNS + 4


def whole_thread(store: ConversationStore, conversation: str) -> list[dict]:
    """Every message the model was ever sent in the conversation, read the long way."""
    rows = store.query(
        "SELECT content FROM chat_messages WHERE conversation_id = %s ORDER BY seq", (conversation,), fetch="all"
    )
    return [r[0]["message"] for r in rows]


def test_a_page_before_position_zero_is_empty_and_a_new_conversation_has_none(serve, db):
    live = serve()
    with httpx.Client(base_url=live.http) as http:
        conversation = http.post(API, json={"title": "empty"}).json()["id"]
        page = http.get(f"{API}/{conversation}").json()
        assert (page["transcript"], page["transcript_total"], page["transcript_from"]) == ([], 0, 0)
        assert http.get(f"{API}/{uuid.uuid4()}").status_code == 404


def test_pages_of_any_size_add_up_to_the_whole_transcript_with_cards_and_their_later_outcomes(db):
    """Questions, steps, answers, a confirmation card whose outcome arrives turns later, a refused
    proposal, a failed turn's note: walked in pages of every size, the items are the whole
    transcript's, each once, and the card carries its outcome on whichever page it is."""
    from nexusleads_lab.agent.assistant import Assistant

    assistant = Assistant(database=db, user=f"pages-{uuid.uuid4().hex[:6]}", org=ORG, client=object())
    store = assistant.store
    conversation = store.create("mixed")

    def add(role: str, message: dict, **content) -> None:
        store.append(conversation, role, {"message": {"role": role, **message}, **content})

    card = {"type": "confirm", "id": "p-1", "title": "Close it", "summary": "s", "sql": "UPDATE x SET y = 1"}
    for t in range(12):
        add("user", {"content": f"q{t}"})
        if t == 3:
            add("assistant", {"content": json.dumps(card)}, meta={"response": card})
            continue
        if t == 5:
            add("assistant", {"content": "bad"}, meta={"refused": "no"})
            add("user", {"content": "CONFIRM_REFUSED: no"}, kind="confirm_refused")
        if t == 8:
            outcome = {"id": "p-1", "status": "confirmed", "rows_affected": 1, "error": None}
            add("user", {"content": "CONFIRM_ACTION: p-1"}, meta={"outcome": outcome}, kind="confirm_action")
            add("assistant", {"content": "ok"}, kind="confirm_action")
            continue
        call = {"id": f"c{t}", "type": "function", "function": {"name": "psql", "arguments": '{"sql": "SELECT 1"}'}}
        add("assistant", {"content": None, "tool_calls": [call]})
        add("tool", {"tool_call_id": f"c{t}", "content": '{"result_id": "r1"}'}, meta={"ok": True, "result_id": "r1"})
        if t == 10:
            add("assistant", {"content": "(The previous turn ended early: boom)"}, meta={"error": "boom"}, kind="note")
        else:
            answer = {"type": "message", "text": f"a{t}"}
            add("assistant", {"content": json.dumps(answer)}, meta={"response": answer})
    whole = [item.to_dict() for item in assistant.transcript(conversation)]
    assert [i["outcome"]["status"] for i in whole if i["kind"] == "answer" and i["outcome"]] == ["confirmed"]
    for limit in (1, 2, 3, 5, 8, 1000):
        items: list[dict] = []
        before = None
        while before != 0:
            page = assistant.transcript_page(conversation, limit=limit, before=before)
            assert len(page.items) <= max(limit, 2), "more than the limit only for one whole turn"
            items = [item.to_dict() for item in page.items] + items
            before = page.start
        assert items == whole, limit
    assistant.close()
