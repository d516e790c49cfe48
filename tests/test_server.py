"""`nexus-lab serve`: a real uvicorn server on a loopback port, a real WebSocket client speaking the
original `/ws/codex` protocol, the REST conversation API, and token identity; the scripted model
answers through the real `openai` client."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
import uuid

import httpx
import openai
import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from nexusleads_lab.cli import main
from nexusleads_lab.db.demo import ORGS
from nexusleads_lab.server import create_app
from nexusleads_lab.server.app import WS_MAX_SIZE
from nexusleads_lab.server.auth import Identity, issue_token
from nexusleads_lab.testing.modelserver import ModelServer, Script, text, tool_calls

ORG, OTHER_ORG = ORGS[0][0], ORGS[1][0]
SECRET = "test-secret-" + uuid.uuid4().hex
TIER_SQL = "SELECT tier, count(*) AS n FROM lead_scores GROUP BY tier ORDER BY tier"
STATUS_SQL = "SELECT status, count(*) AS n FROM lead_scores GROUP BY status ORDER BY status"
END = ("turn.completed", "error")


class LiveServer:
    """The app on uvicorn in a thread, on a free loopback port."""

    def __init__(self, app) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=WS_MAX_SIZE)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/ws/codex"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.socket.close()


@pytest.fixture()
def serve(db):
    running: list[tuple[LiveServer, ModelServer]] = []

    def start(steps=(), *, secret: str = "", user: str | None = None) -> LiveServer:
        model = ModelServer(Script(list(steps)))
        client = openai.OpenAI(base_url=model.base_url, api_key="k", max_retries=0)
        local = Identity(user=user or f"srv-{uuid.uuid4().hex[:8]}", org=ORG)
        live = LiveServer(create_app(secret=secret, database=db, client=client, local=local))
        running.append((live, model))
        return live

    yield start
    for live, model in running:
        live.close()
        model.close()


def message(t: str) -> str:
    return json.dumps({"type": "message", "text": t})


def confirm(sql: str, title: str = "Change") -> str:
    return json.dumps({"type": "confirm", "id": "model-chosen", "title": title, "summary": "s", "sql": sql})


def send(ws: ClientConnection, **frame) -> None:
    ws.send(json.dumps(frame))


def until_end(ws: ClientConnection, timeout: float = 30) -> list[dict]:
    """Frames up to and including the turn's end (turn.completed or error)."""
    frames = []
    while True:
        frames.append(json.loads(ws.recv(timeout=timeout)))
        if frames[-1]["type"] in END:
            return frames


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
        for bad in ["{not json", "[1, 2]", unknown, empty, "x" * 10_000_000]:
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
        with connect(url) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    with connect(f"{live.ws}?token={issue_token(SECRET, 'alice', OTHER_ORG)}") as ws:
        send(ws, type="chat", message="resume org A's conversation", sessionId=mine)
        assert [f["type"] for f in until_end(ws)] == ["turn.started", "error"]


def test_without_a_secret_serve_refuses_a_non_loopback_host(monkeypatch, capsys):
    monkeypatch.delenv("NEXUS_AUTH_SECRET", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "3999"]) == 2
    err = capsys.readouterr().err
    assert "Refusing to serve on 0.0.0.0" in err and "NEXUS_AUTH_SECRET" in err
