"""`nexus-lab serve`: a real uvicorn server on a loopback port, a real WebSocket client speaking the
original `/ws/codex` protocol, the REST conversation API, and token identity; the scripted model
answers through the real `openai` client."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace

import httpx
import pytest
from scripted import STATUS_SQL, TIER_SQL, confirm, message
from servers import END, ORG, OTHER_ORG, SECRET, LiveServer, free_port, send, until_end
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from nexusleads_lab.cli import main
from nexusleads_lab.config import ServeLimits
from nexusleads_lab.db.database import Database
from nexusleads_lab.db.embedded import start_embedded, stop_embedded
from nexusleads_lab.db.store import ConversationStore
from nexusleads_lab.replay.cassette import last_user_message
from nexusleads_lab.server.auth import issue_token
from nexusleads_lab.testing.modelserver import (
    ModelServer,
    Script,
    disconnect_after,
    http_error,
    text,
    tool_calls,
)


def test_a_chat_with_two_psql_steps_streams_every_event_in_the_original_protocols_order(serve):
    answer = "The tiers are counted and the statuses too; " * 4
    live = serve(
        [
            tool_calls([("psql", {"sql": TIER_SQL})]),
            tool_calls([("psql", {"sql": STATUS_SQL})]),
            text(message(answer), chunk_size=4),
        ]
    )
    with connect(live.ws) as ws:
        send(ws, type="chat", message="tiers, then statuses")
        frames = until_end(ws)
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "turn.started" and kinds[1] == "session.id", kinds
    assert uuid.UUID(frames[1]["sessionId"])
    actions = [(f["action"], f["tool"], f["status"], f.get("command")) for f in frames if f["type"] == "agent.action"]
    assert actions == [
        ("command", "psql", "started", TIER_SQL),
        ("command", "psql", "completed", TIER_SQL),
        ("command", "psql", "started", STATUS_SQL),
        ("command", "psql", "completed", STATUS_SQL),
    ]
    texts = [f for f in frames if f["type"] == "agent.text"]
    assert texts[0]["status"] == "streaming" and set(texts[0]) >= {"text", "status"} and "keep" not in texts[0]
    assert [t["status"] for t in texts][-1] == "done" and all(t["status"] == "streaming" for t in texts[:-1])
    streamed = [t["text"] for t in texts[:-1]]
    assert all(b.startswith(a) for a, b in itertools.pairwise(streamed)), "each frame is the whole text so far"
    assert kinds[-2:] == ["agent.text", "turn.completed"]
    assert kinds.index("agent.text") > max(i for i, k in enumerate(kinds) if k == "agent.action")
    done = frames[-1]
    assert json.loads(done["text"]) == {"type": "message", "text": answer}
    assert json.loads(texts[-1]["text"])["text"] == answer
    assert done["usage"]["total_tokens"] > 0


def test_confirm_action_runs_the_shown_write_exactly_once(serve, db):
    reader = db.engine_for(ORG)
    lead = int(reader.read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 1").df["id"][0])
    sql = f"UPDATE lead_scores SET status = 'contacted' WHERE id = {lead}"
    live = serve([text(confirm(sql, "Mark one"))])
    try:
        with connect(live.ws) as ws:
            send(ws, type="chat", message="mark that lead as contacted")
            frames = until_end(ws)
            session = next(f["sessionId"] for f in frames if f["type"] == "session.id")
            card = json.loads(frames[-1]["text"])
            assert card["type"] == "confirm" and card["id"] != "model-chosen" and card["dry_run_rows"] == 1
            assert card["sql"] == sql and json.loads(frames[-2]["text"])["id"] == card["id"]
            status = reader.read(f"SELECT status FROM lead_scores WHERE id = {lead}").df["status"][0]
            assert status == "new", "nothing runs before the click"

            send(ws, type="chat", message=f"CONFIRM_ACTION: {card['id']}", sessionId=session)
            clicked = until_end(ws)
            assert [f["type"] for f in clicked] == ["turn.started", "confirm.resolved", "agent.text", "turn.completed"]
            assert clicked[1]["id"] == card["id"] and clicked[1]["status"] == "confirmed"
            assert clicked[1]["rowsAffected"] == 1

            send(ws, type="chat", message=f"CONFIRM_ACTION: {card['id']}", sessionId=session)
            again = until_end(ws)
            assert [f["type"] for f in again] == ["turn.started", "error"], "a used confirmation does not run again"
        assert reader.read(f"SELECT status FROM lead_scores WHERE id = {lead}").df["status"][0] == "contacted"
        with db.connect_admin() as conn:
            runs = conn.execute("SELECT count(*) FROM write_audit WHERE confirmation_id = %s", (card["id"],)).fetchone()
        assert runs[0] == 1
    finally:
        db.engine.write([f"UPDATE lead_scores SET status = 'new' WHERE id = {lead}"], [1])


def test_confirm_action_with_a_made_up_or_another_orgs_id_is_one_error_and_runs_nothing(serve, db):
    reader = db.engine_for(ORG)
    lead = int(reader.read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 1").df["id"][0])
    live = serve([text(confirm(f"UPDATE lead_scores SET status = 'contacted' WHERE id = {lead}"))], secret=SECRET)
    with connect(f"{live.ws}?token={issue_token(SECRET, 'alice', ORG)}") as ws:
        send(ws, type="chat", message="mark that lead as contacted")
        card = json.loads(until_end(ws)[-1]["text"])
    assert card["type"] == "confirm"
    for who, proposal in [
        (issue_token(SECRET, "alice", OTHER_ORG), card["id"]),
        (issue_token(SECRET, "alice", ORG), "x" * 24),
    ]:
        with connect(f"{live.ws}?token={who}") as ws:
            send(ws, type="chat", message=f"CONFIRM_ACTION: {proposal}")
            assert [f["type"] for f in until_end(ws)] == ["turn.started", "error"]
    assert reader.read(f"SELECT status FROM lead_scores WHERE id = {lead}").df["status"][0] == "new"


def test_bad_frames_get_one_error_each_and_the_connection_stays_usable(serve):
    live = serve([text(message("still here"))])
    with connect(live.ws, max_size=None) as ws:
        unknown, empty = json.dumps({"type": "bogus"}), json.dumps({"type": "chat"})
        for bad in ["{not json", "[1, 2]", unknown, empty, "x" * (2 * 1024 * 1024)]:
            ws.send(bad)
            assert json.loads(ws.recv(timeout=10))["type"] == "error", bad[:20]
        ws.send(b"\x00\x01binary")
        assert json.loads(ws.recv(timeout=10))["type"] == "error"
        send(ws, type="chat", message="are you there?")
        frames = until_end(ws)
    assert frames[-1]["type"] == "turn.completed" and json.loads(frames[-1]["text"])["text"] == "still here"


def test_a_client_that_disconnects_mid_turn_cancels_it_and_the_server_goes_on(serve):
    # Unstopped, the slow answer would stream for half a minute.
    live = serve([text(message("slow " * 200), chunk_size=2, delay=0.05), text(message("next"))])
    with connect(live.ws) as ws:
        send(ws, type="chat", message="a slow answer")
        frames = [json.loads(ws.recv(timeout=10)) for _ in range(2)]
        assert [f["type"] for f in frames] == ["turn.started", "session.id"]
        while json.loads(ws.recv(timeout=10))["type"] != "agent.text":
            pass
    url = f"{live.http}/api/chat/conversations/{frames[1]['sessionId']}"
    deadline = time.monotonic() + 10
    while not (answers := [i for i in httpx.get(url).json()["transcript"] if i["kind"] == "answer"]):
        assert time.monotonic() < deadline, "the abandoned turn was not cancelled"
        time.sleep(0.1)
    assert answers[0]["cancelled"] is True, "stored as cancelled, the conversation intact"
    with connect(live.ws) as ws:
        send(ws, type="chat", message="and now?")
        assert json.loads(until_end(ws)[-1]["text"])["text"] == "next"


def test_stop_cancels_the_running_turn_and_the_conversation_goes_on(serve):
    live = serve([text(message("slow " * 200), chunk_size=2, delay=0.05), text(message("after the stop"))])
    with connect(live.ws) as ws:
        send(ws, type="chat", message="a slow answer")
        frames = [json.loads(ws.recv(timeout=10)) for _ in range(2)]
        session = frames[1]["sessionId"]
        while json.loads(ws.recv(timeout=10))["type"] != "agent.text":
            pass
        started = time.monotonic()
        send(ws, type="stop", sessionId=session)
        stopped = until_end(ws)[-1]
        assert stopped["type"] == "error" and stopped["cancelled"] is True and time.monotonic() - started < 5
        send(ws, type="chat", message="go on", sessionId=session)
        frames = until_end(ws)
    assert [f["sessionId"] for f in frames if f["type"] == "session.id"] == [session], "the same conversation"
    assert json.loads(frames[-1]["text"])["text"] == "after the stop"


def test_reset_forgets_the_session_and_a_later_chat_with_its_id_resumes_from_the_store(serve):
    live = serve([text(message("one")), text(message("two"))])
    with connect(live.ws) as ws:
        send(ws, type="chat", message="first")
        session = next(f["sessionId"] for f in until_end(ws) if f["type"] == "session.id")
        send(ws, type="reset", sessionId=session)
        send(ws, type="chat", message="second", sessionId=session)
        frames = until_end(ws)
        assert json.loads(frames[-1]["text"])["text"] == "two"
    with httpx.Client(base_url=live.http) as http:
        items = http.get(f"/api/chat/conversations/{session}").json()["transcript"]
    assert [i["text"] for i in items if i["kind"] == "question"] == ["first", "second"]


def test_rest_lists_renames_reads_and_deletes_the_callers_conversations(serve):
    live = serve([text(message("hello"))])
    with connect(live.ws) as ws:
        send(ws, type="chat", message="say hello")
        first = next(f["sessionId"] for f in until_end(ws) if f["type"] == "session.id")
    with httpx.Client(base_url=live.http) as http:
        created = http.post("/api/chat/conversations", json={"title": "Second"})
        assert created.status_code == 201
        second = created.json()["id"]
        listed = http.get("/api/chat/conversations").json()
        assert [c["id"] for c in listed] == [second, first], "the caller's own, newest first"
        renamed = http.patch(f"/api/chat/conversations/{first}", json={"title": "Greetings"})
        assert renamed.status_code == 200 and renamed.json()["title"] == "Greetings"
        one = http.get(f"/api/chat/conversations/{first}").json()
        assert one["title"] == "Greetings"
        assert [item["kind"] for item in one["transcript"]][:2] == ["question", "answer"]
        assert one["transcript"][0]["text"] == "say hello"
        assert http.patch(f"/api/chat/conversations/{first}", json={"title": " "}).status_code == 422
        assert http.delete(f"/api/chat/conversations/{second}").status_code == 204
        assert http.get(f"/api/chat/conversations/{second}").status_code == 404
        assert http.get("/api/chat/conversations/not-a-uuid").status_code == 404
        assert [c["id"] for c in http.get("/api/chat/conversations").json()] == [first]


def test_with_a_secret_no_token_is_refused_and_one_org_cannot_touch_anothers_conversation(serve):
    live = serve(secret=SECRET)
    alice = {"Authorization": f"Bearer {issue_token(SECRET, 'alice', ORG)}"}
    mallory = {"Authorization": f"Bearer {issue_token(SECRET, 'alice', OTHER_ORG)}"}
    expired = {"Authorization": f"Bearer {issue_token(SECRET, 'alice', ORG, ttl_seconds=-10)}"}
    forged = {"Authorization": f"Bearer {issue_token('another-secret-' + uuid.uuid4().hex, 'alice', ORG)}"}
    with httpx.Client(base_url=live.http) as http:
        for headers in [{}, expired, forged]:
            refused = http.get("/api/chat/conversations", headers=headers)
            assert refused.status_code == 401 and refused.json() == {"detail": "Unauthorized"}
        mine = http.post("/api/chat/conversations", json={"title": "Org A only"}, headers=alice).json()["id"]
        url = f"/api/chat/conversations/{mine}"
        assert http.get(url, headers=mallory).status_code == 404
        assert http.patch(url, json={"title": "taken"}, headers=mallory).status_code == 404
        assert http.delete(url, headers=mallory).status_code == 404
        assert mine not in [c["id"] for c in http.get("/api/chat/conversations", headers=mallory).json()]
        assert http.get(url, headers=alice).json()["title"] == "Org A only", "nothing changed"
        with httpx.Client(base_url=live.http, cookies={"nexus_session": issue_token(SECRET, "alice", ORG)}) as browser:
            assert browser.get(url).status_code == 200, "the session cookie is a token too"
        assert http.delete(url, headers=alice).status_code == 204

    for url in [live.ws, f"{live.ws}?token={issue_token(SECRET, 'alice', ORG, ttl_seconds=-10)}"]:
        with pytest.raises(InvalidStatus) as refused:
            connect(url)
        assert refused.value.response.status_code == 401, "refused in the handshake, never accepted"
    with connect(f"{live.ws}?token={issue_token(SECRET, 'alice', OTHER_ORG)}") as ws:
        send(ws, type="chat", message="resume org A's conversation", sessionId=mine)
        assert [f["type"] for f in until_end(ws)] == ["turn.started", "error"]


def test_without_a_secret_serve_refuses_a_non_loopback_host(monkeypatch, capsys):
    monkeypatch.delenv("NEXUS_AUTH_SECRET", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "3999"]) == 2
    err = capsys.readouterr().err
    assert "Refusing to serve on 0.0.0.0" in err and "NEXUS_AUTH_SECRET" in err


def echo(request):
    """A scripted answer naming the question it answers, streamed slowly enough to overlap."""
    return text(message(f"re: {last_user_message(request)}"), chunk_size=3, delay=0.01)


def psql_then_answer(request):
    """One psql step, then an answer: decided per request, so concurrent sessions share a script."""
    if request["messages"][-1]["role"] == "tool":
        return text(message(f"re: {last_user_message(request)}"))
    return tool_calls([("psql", {"sql": TIER_SQL})])


def transcript(live: LiveServer, session: str) -> list[dict]:
    return httpx.get(f"{live.http}/api/chat/conversations/{session}", timeout=10).json()["transcript"]


@pytest.mark.parametrize("replicas", [1, 2], ids=["one-server", "two-replicas"])
def test_two_connections_with_one_session_id_run_two_whole_turns_one_after_the_other(serve, replicas):
    live = serve([echo] * 3)
    other = live if replicas == 1 else serve(replica_of=live)  # another process, as far as the turn can tell
    with connect(live.ws) as ws:
        send(ws, type="chat", message="start")
        session = next(f["sessionId"] for f in until_end(ws) if f["type"] == "session.id")
    received: dict[str, list[tuple[float, dict]]] = {}

    def turn(name: str, ws: ClientConnection, go: threading.Barrier) -> None:
        go.wait()
        send(ws, type="chat", message=name, sessionId=session)
        frames = received[name] = []
        while not frames or frames[-1][1]["type"] not in END:
            frames.append((time.monotonic(), json.loads(ws.recv(timeout=30))))

    go = threading.Barrier(2)
    with connect(live.ws) as a, connect(other.ws) as b:
        threads = [threading.Thread(target=turn, args=(n, ws, go)) for n, ws in (("from a", a), ("from b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    windows = []
    for name, frames in received.items():
        kinds = [f["type"] for _, f in frames]
        assert kinds[0] == "turn.started" and kinds[-1] == "turn.completed", (name, kinds)
        assert kinds.count("turn.completed") == 1 and "error" not in kinds
        assert json.loads(frames[-1][1]["text"])["text"] == f"re: {name}", "its own answer, none lost"
        assert {f["sessionId"] for _, f in frames if f["type"] == "session.id"} == {session}
        assert len({f["turnId"] for _, f in frames if "turnId" in f}) == 1, "one turn's events on one connection"
        first_output = next(t for t, f in frames if f["type"] in ("agent.text", "agent.action"))
        windows.append((first_output, frames[-1][0], name))  # the turn's first model output .. its end
    (_, first_end, first), (second_start, _, second) = sorted(windows)
    assert first_end <= second_start, "the second turn started only after the first ended"
    items = transcript(live, session)
    assert [i["kind"] for i in items] == ["question", "answer"] * 3, "each turn ran once, none interleaved"
    assert [i["text"] for i in items if i["kind"] == "question"] == ["start", first, second]
    later = live.model.requests[-1]["messages"]
    assert [m["content"] for m in later if m["role"] == "user"] == ["start", first, second], (
        "the second connection's turn continued after the first one's, not beside it"
    )


def test_a_lease_left_by_a_replica_that_died_runs_out_and_the_next_turn_runs(serve, db):
    live = serve([echo] * 2)
    with connect(live.ws) as ws:
        send(ws, type="chat", message="start")
        session = next(f["sessionId"] for f in until_end(ws) if f["type"] == "session.id")
        # A replica took the conversation's lease for a turn and died: nobody renews or gives it back.
        store = ConversationStore(db.store_url(ORG), ORG, live.local.user, guard=True)
        assert store.claim(session, "crashed-replica:1:abc", ttl_s=1.5) is not None
        assert store.claim(session, "someone-else", ttl_s=30) is None, "a live lease is not taken"
        asked = time.monotonic()
        send(ws, type="chat", message="after the crash", sessionId=session)
        frames = until_end(ws)
        waited = time.monotonic() - asked
    store.close()
    assert frames[-1]["type"] == "turn.completed" and json.loads(frames[-1]["text"])["text"] == "re: after the crash"
    assert waited >= 1.0, "the turn waited for the dead replica's lease to run out"
    assert [i["text"] for i in transcript(live, session) if i["kind"] == "question"] == ["start", "after the crash"]
    with db.connect_admin() as admin:
        holder = admin.execute("SELECT turn_holder FROM chat_conversations WHERE id = %s", (session,)).fetchone()[0]
    assert holder is None, "the turn gave its lease back"


@pytest.mark.parametrize(
    "failure",
    [
        http_error(429, "Rate limit reached; slow down."),
        http_error(500, "The model broke.", should_retry=False),
        disconnect_after(3),
    ],
    ids=["429", "500", "cut-stream"],
)
def test_a_failing_model_is_one_error_and_the_conversation_goes_on(serve, failure):
    live = serve([failure, text(message("recovered"))])
    with connect(live.ws) as ws:
        send(ws, type="chat", message="this one fails")
        frames = until_end(ws)
        kinds = [f["type"] for f in frames]
        assert kinds[-1] == "error" and kinds.count("error") == 1 and "turn.completed" not in kinds, kinds
        assert frames[-1]["message"].strip()
        session = next(f["sessionId"] for f in frames if f["type"] == "session.id")
        send(ws, type="chat", message="and now?", sessionId=session)
        again = until_end(ws)
    assert again[-1]["type"] == "turn.completed" and json.loads(again[-1]["text"])["text"] == "recovered"
    items = transcript(live, session)
    assert [i["text"] for i in items if i["kind"] == "question"] == ["this one fails", "and now?"]


def test_the_database_restarting_mid_session_is_one_clear_error_and_the_next_turn_works(serve, db):
    live = serve([echo] * 3)
    pgdata = db.embedded.pgdata
    with connect(live.ws) as ws:
        send(ws, type="chat", message="one")
        session = next(f["sessionId"] for f in until_end(ws) if f["type"] == "session.id")
        assert stop_embedded(pgdata)
        try:
            send(ws, type="chat", message="two", sessionId=session)
            down = until_end(ws)
        finally:
            restarted = start_embedded(pgdata)
        assert restarted.admin_url == db.embedded.admin_url
        assert [f["type"] for f in down] == ["turn.started", "error"]
        assert "conversation store" in down[-1]["message"] and "Traceback" not in down[-1]["message"]
        send(ws, type="chat", message="three", sessionId=session)
        frames = until_end(ws)
    assert frames[-1]["type"] == "turn.completed" and json.loads(frames[-1]["text"])["text"] == "re: three"
    assert [i["text"] for i in transcript(live, session) if i["kind"] == "question"] == ["one", "three"]


def _client_backends(db) -> int:
    with db.connect_admin(autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0])


def _threads(prefix: str) -> int:
    return sum(t.name.startswith(prefix) for t in threading.enumerate())


def slow_psql_then_answer(request):
    """``psql_then_answer``, each reply streamed slowly, so that concurrent turns overlap."""
    if request["messages"][-1]["role"] == "tool":
        return text(message(f"re: {last_user_message(request)}"), delay=0.1)
    return tool_calls([("psql", {"sql": TIER_SQL})], delay=0.05)


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    return max(itertools.accumulate(step for _, step in edges))


def test_twenty_sessions_run_their_turns_at_once_on_a_bounded_number_of_database_connections(serve, db):
    sessions, pool, store_pool = 20, 2, 2
    small = Database(
        admin_url=db.admin_url,
        embedded=db.embedded,
        settings=replace(db.settings, limits=replace(db.settings.limits, pool_size=pool, store_pool_size=store_pool)),
    )
    live = serve(
        [slow_psql_then_answer] * (2 * sessions),
        max_turns=sessions,
        database=small,
        limits=ServeLimits(turns_per_user=sessions, sessions_per_user=sessions),
    )
    baseline, tool_threads = _client_backends(db), _threads("nexus-tool")
    peak = {"db": 0, "tool": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["db"] = max(peak["db"], _client_backends(db) - baseline)
            peak["tool"] = max(peak["tool"], _threads("nexus-tool") - tool_threads)
            time.sleep(0.02)

    answers: dict[int, dict] = {}
    spans: list[tuple[float, float]] = []
    hold = threading.Event()

    def ask(n: int) -> None:
        with connect(live.ws) as ws:
            send(ws, type="chat", message=f"question {n}")
            frames = [json.loads(ws.recv(timeout=60))]
            started = time.monotonic()
            frames += until_end(ws, timeout=60)
            spans.append((started, time.monotonic()))
            answers[n] = frames[-1]
            hold.wait(timeout=60)  # stay connected while the idle sessions are counted

    sampler = threading.Thread(target=sample)
    sampler.start()
    clients = [threading.Thread(target=ask, args=(n,)) for n in range(sessions)]
    for t in clients:
        t.start()
    deadline = time.monotonic() + 120
    while len(answers) < sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    sampler.join()
    idle = _client_backends(db) - baseline
    hold.set()
    for t in clients:
        t.join(timeout=60)
    small.close()
    assert sorted(answers) == list(range(sessions))
    for n, end in answers.items():
        assert end["type"] == "turn.completed" and json.loads(end["text"])["text"] == f"re: question {n}"
    # The turns ran side by side, many more of them than there are connections ...
    assert _most_at_once(spans) > pool + store_pool, spans
    # ... and the process never held more connections than its pools (plus one admin connection
    # made once, when the organization's roles are first checked), busy or idle.
    assert 0 < peak["db"] <= pool + store_pool + 1, peak
    assert idle <= pool + store_pool + 1, idle
    assert peak["tool"] <= sessions, peak


def test_serve_with_two_workers_answers_rest_and_a_websocket_chat_and_exits_on_terminate(db, tmp_path):
    model = ModelServer(Script([echo]))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    env.update(
        NEXUS_HOME=str(db.embedded.pgdata.parent),
        NEXUS_USER=f"workers-{uuid.uuid4().hex[:6]}",
        NEXUS_ORG=ORG,
        OPENAI_BASE_URL=model.base_url,
        OPENAI_API_KEY="k",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "nexusleads_lab.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                listed = httpx.get(f"{base}/api/chat/conversations", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the workers did not start"
                time.sleep(0.2)
        assert listed.status_code == 200 and listed.json() == []
        with connect(f"ws://127.0.0.1:{port}/ws/codex", compression="deflate") as ws:
            # offered, and declined: small JSON frames gain little from zlib, which costs memory and CPU
            assert ws.protocol.extensions == []
            send(ws, type="chat", message="hello workers")
            frames = until_end(ws, timeout=60)
        assert frames[-1]["type"] == "turn.completed", frames
        assert json.loads(frames[-1]["text"])["text"] == "re: hello workers"
        session = next(f["sessionId"] for f in frames if f["type"] == "session.id")
        assert [c["id"] for c in httpx.get(f"{base}/api/chat/conversations", timeout=5).json()] == [session]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            model.close()
    assert proc.returncode is not None
