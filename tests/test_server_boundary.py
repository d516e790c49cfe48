"""`nexus-lab serve` tried from outside, as a foreign page, a rebinding name, a forged or odd token,
a malformed body or frame would: each a real uvicorn on a loopback port (`test_server.serve`),
the real database, the real `openai` client against the scripted model."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import socket
import time
import uuid

import httpx
import jwt
import pytest
from scripted import message
from servers import ORG, SECRET, send, until_end
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from nexusleads_lab.config import ServeLimits
from nexusleads_lab.db.demo import ORGS
from nexusleads_lab.server import create_app
from nexusleads_lab.server.auth import issue_token
from nexusleads_lab.testing.modelserver import text

API = "/api/chat/conversations"
SLUGS = [slug for slug, *_ in ORGS]


def conversations_of(db, user: str) -> int:
    with db.connect_admin() as conn:
        return conn.execute("SELECT count(*) FROM chat_conversations WHERE user_name = %s", (user,)).fetchone()[0]


def refused_status(url: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(url, **kwargs)
    return refused.value.response.status_code


def bearer(user: str = "alice", org: str = ORG, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, user, org, **claims)}"}


# -- Origin and Host -------------------------------------------------------------------------


def test_a_foreign_origin_cannot_open_a_socket_or_change_anything_in_either_mode(serve, db):
    for secret in ("", SECRET):
        live = serve([text(message("mine"))], secret=secret)
        user = f"cross-{uuid.uuid4().hex[:8]}" if secret else live.local.user
        token = f"?token={issue_token(SECRET, user, ORG)}" if secret else ""
        cookie = {"Cookie": f"nexus_session={issue_token(SECRET, user, ORG)}"} if secret else {}
        port = live.http.rsplit(":", 1)[1]
        for origin in (f"http://127.0.0.1:{int(port) + 1}", f"http://localhost:{port}", "http://evil.example", "null"):
            assert refused_status(live.ws + token, origin=origin) == 403, origin
            assert refused_status(live.ws, origin=origin, additional_headers=cookie) == 403, origin
            with httpx.Client(base_url=live.http, headers={"Origin": origin, **cookie}) as http:
                assert http.post(API, json={"title": "cross-site"}).status_code == 403
        assert conversations_of(db, user) == 0, "nothing was created"
        with connect(live.ws + token, origin=live.http) as ws:  # the server's own page may
            send(ws, type="chat", message="hello")
            assert json.loads(until_end(ws)[-1]["text"])["text"] == "mine"
        assert conversations_of(db, user) == 1


def in_own_loop(coroutine):
    """Run ``coroutine`` on a new event loop in a thread of its own: the browser tests' sync
    Playwright keeps a loop running in the test thread for the rest of the session."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


def test_a_socket_behind_a_root_path_goes_through_the_router_with_the_same_origin_and_host_rules():
    """The sockets are served before FastAPI's stack (``app.App``); under an ASGI root_path they
    are its routes, refused and accepted alike."""
    from nexusleads_lab.server.auth import Identity

    app = create_app(database=object(), client=object(), local=Identity(user="bench", org=None))

    async def exchange(path: str, root: str, headers: list[tuple[bytes, bytes]]) -> list[dict]:
        sent: list[dict] = []
        incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]

        async def receive() -> dict:
            return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "path": root + path,
            "raw_path": (root + path).encode(),
            "root_path": root,
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "subprotocols": [],
            "extensions": {"websocket.http.response": {}},
        }
        await app(scope, receive, send)
        return sent

    own = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")]
    for path in ("/ws/codex", "/ws/panel"):
        for root in ("", "/lab"):
            for headers in (
                [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://evil.example")],
                [(b"host", b"evil.example")],
            ):
                sent = in_own_loop(exchange(path, root, headers))
                assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 403, (path, root)
            assert in_own_loop(exchange(path, root, own))[0]["type"] == "websocket.accept", (path, root)


def test_an_allowed_origin_from_the_environment_may_drive_the_socket(serve, monkeypatch):
    monkeypatch.setenv("NEXUS_ALLOWED_ORIGINS", "http://localhost:5173, https://app.example")
    live = serve([text(message("from the dev server"))])
    with connect(live.ws, origin="http://localhost:5173") as ws:
        send(ws, type="chat", message="hello")
        assert json.loads(until_end(ws)[-1]["text"])["text"] == "from the dev server"
    assert refused_status(live.ws, origin="http://localhost:5174") == 403


def test_in_local_mode_a_rebinding_host_reads_and_changes_nothing(serve, db):
    live = serve([text(message("hello"))])
    with httpx.Client(base_url=live.http) as http:
        mine = http.post(API, json={"title": "Private"}).json()["id"]
        rebound = {"Host": f"attacker.example:{live.http.rsplit(':', 1)[1]}"}
        for method, path, body in [
            ("GET", API, None),
            ("GET", f"{API}/{mine}", None),
            ("POST", API, {}),
            ("PATCH", f"{API}/{mine}", {"title": "x"}),
            ("DELETE", f"{API}/{mine}", None),
            ("GET", "/", None),
            ("GET", "/openapi.json", None),
        ]:
            answer = http.request(method, path, json=body, headers=rebound)
            assert answer.status_code == 403, (method, path)
            assert "Private" not in answer.text and mine not in answer.text
        host, port = live.http.removeprefix("http://").split(":")
        for path in ("/ws/codex", "/ws/panel"):  # the rebound name in the URL, so in Host; the socket to 127.0.0.1
            sock = socket.create_connection((host, int(port)))
            assert refused_status(f"ws://attacker.example:{port}{path}", sock=sock) == 403, path
        assert http.get(f"{API}/{mine}").json()["title"] == "Private", "unchanged"
        assert http.get(API, headers={"Host": "localhost"}).status_code == 200, "a loopback name is fine"
    assert conversations_of(db, live.local.user) == 1


def test_state_changing_requests_need_json_and_an_empty_cross_site_post_creates_nothing(serve, db):
    live = serve()
    with httpx.Client(base_url=live.http) as http:
        for headers, body in [
            ({}, b""),
            ({"Content-Type": "text/plain"}, b'{"title": "t"}'),
            ({"Content-Type": "application/x-www-form-urlencoded"}, b"title=t"),
            ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x--"),
        ]:
            assert http.post(API, content=body, headers=headers).status_code == 415, headers
        assert http.post(API, content=b"", headers={"Origin": "http://127.0.0.1:1"}).status_code == 403
        assert conversations_of(db, live.local.user) == 0
        assert http.post(API, json={}).status_code == 201


# -- authenticate before accepting -------------------------------------------------------------


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_an_unauthenticated_socket_is_refused_before_it_can_send_a_frame(serve):
    live = serve(secret=SECRET)
    assert refused_status(live.ws) == 401
    assert refused_status(f"{live.ws}?token=not-a-token") == 401
    host, port = live.http.removeprefix("http://").split(":")
    frame = b"\x82\xff" + (16 * 1024 * 1024).to_bytes(8, "big") + b"\0\0\0\0"  # binary, masked, 16 MiB
    before = _rss_kib()
    answers = []
    for _ in range(8):  # 8 x 16 MiB: buffered, that is 128 MiB more in this process
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.sendall(
                b"GET /ws/codex HTTP/1.1\r\nHost: " + f"{host}:{port}".encode() + b"\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            answers.append(raw.recv(200).split(b"\r\n")[0])
            sent = 0
            try:
                raw.sendall(frame)
                for _ in range(16 * 16):
                    raw.sendall(b"\0" * 65536)
                    sent += 65536
            except OSError:
                pass  # the server closed the connection
    assert answers == [b"HTTP/1.1 401 Unauthorized"] * 8
    assert _rss_kib() - before < 48 * 1024, "the refused sockets' bytes were not kept"


def test_a_chat_frame_over_one_mebibyte_is_one_error_and_one_beyond_the_transport_closes(serve):
    live = serve([text(message("still here"))])
    with connect(live.ws, max_size=None) as ws:
        ws.send("x" * (1024 * 1024 + 1))
        assert "too long" in json.loads(ws.recv(timeout=10))["message"]
        deep = '{"type": "chat", "message": "hi", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
        ws.send(deep)
        assert "nested too deeply" in json.loads(ws.recv(timeout=10))["message"]
        send(ws, type="chat", message="are you there?")
        assert json.loads(until_end(ws)[-1]["text"])["text"] == "still here"
    with connect(live.ws, max_size=None) as ws:
        ws.send("x" * (5 * 1024 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009, "message too big"


# -- tokens and tenants ------------------------------------------------------------------------


def test_only_one_organizations_slug_is_a_scope_and_odd_claims_are_401(serve):
    live = serve(secret=SECRET)
    odd = [
        {"org": "*"},
        {"org": "Acme"},
        {"org": "acme analytics"},
        {"org": "acme\u0000"},
        {"org": ""},
        {"org": ["acme"]},
        {"org": {"a": [[[[1]]]]}},
        {"sub": "alice\u0000"},
        {"sub": "alice\n"},
        {"sub": ""},
        {"sub": 7},
        {"sub": "\ud800"},
    ]
    with httpx.Client(base_url=live.http) as http:
        for claims in odd:
            payload = {"sub": "alice", "org": ORG, "exp": int(time.time()) + 600, **claims}
            token = jwt.encode(payload, SECRET, algorithm="HS256")
            answer = http.get(API, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401 and answer.json() == {"detail": "Unauthorized"}, claims
            assert refused_status(f"{live.ws}?token={token}") == 401, claims
        assert http.get(API, headers=bearer()).status_code == 200


def test_an_unknown_organization_is_403_naming_only_its_slug(serve):
    live = serve(secret=SECRET)
    with httpx.Client(base_url=live.http) as http:
        answer = http.get(API, headers=bearer(org="no-such-org"))
        assert answer.status_code == 403 and "no-such-org" in answer.text
        assert not [slug for slug in SLUGS if slug in answer.text], answer.text
        assert http.post(API, json={}, headers=bearer(org="no-such-org")).status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{live.ws}?token={issue_token(SECRET, 'alice', 'no-such-org')}")
    body = refused.value.response.body.decode()
    assert refused.value.response.status_code == 403 and "no-such-org" in body
    assert not [slug for slug in SLUGS if slug in body], body


def test_exp_is_required_and_bounded_and_aud_and_iss_are_checked_when_set(serve):
    live = serve(secret=SECRET, limits=ServeLimits(token_max_hours=2, audience="nexus", issuer="https://login.example"))
    now = int(time.time())
    good = {"sub": "alice", "org": ORG, "aud": "nexus", "iss": "https://login.example"}
    cases = {
        "fine": ({**good, "exp": now + 3600}, 200),
        "no exp": (good, 401),
        "year 9999": ({**good, "exp": 253402300799}, 401),
        "3 hours": ({**good, "exp": now + 3 * 3600}, 401),
        "no aud": ({**good, "aud": None, "exp": now + 60}, 401),
        "other aud": ({**good, "aud": "billing", "exp": now + 60}, 401),
        "other iss": ({**good, "iss": "https://evil.example", "exp": now + 60}, 401),
    }
    with httpx.Client(base_url=live.http) as http:
        for name, (claims, status) in cases.items():
            token = jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")
            assert http.get(API, headers={"Authorization": f"Bearer {token}"}).status_code == status, name


def test_a_verified_token_is_decoded_once_and_refused_from_the_second_it_expires(monkeypatch):
    from nexusleads_lab.server import auth

    authenticator = auth.Authenticator(auth.AuthSettings(SECRET, max_hours=2))
    token = issue_token(SECRET, "alice", ORG, ttl_seconds=60)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    decoded: list[str] = []
    decode = jwt.decode
    monkeypatch.setattr(auth.jwt, "decode", lambda token, *a, **k: decoded.append(token) or decode(token, *a, **k))
    assert authenticator.verify(token) == authenticator.verify(token) == auth.Identity("alice", ORG)
    assert len(decoded) == 1, "a token already verified is not decoded again"
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (forged, issue_token("y" * 40, "alice", ORG)):
        for _ in range(2):
            with pytest.raises(auth.Unauthorized):
                authenticator.verify(bad)
    monkeypatch.setattr(auth.time, "time", lambda: exp + auth.LEEWAY_S)  # jwt.decode's own clock is its own
    monkeypatch.setattr(auth.jwt, "decode", lambda *a, **k: (_ for _ in ()).throw(jwt.ExpiredSignatureError("expired")))
    with pytest.raises(auth.Unauthorized, match="expired"):
        authenticator.verify(token)


def test_a_secret_shorter_than_32_bytes_is_refused_at_start(db, monkeypatch, capsys):
    from nexusleads_lab.cli import main

    with pytest.raises(ValueError, match="at least 32"):
        create_app(secret="x", database=db)
    monkeypatch.setenv("NEXUS_AUTH_SECRET", "short-secret")
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "NEXUS_AUTH_SECRET is 12 bytes long" in err and "secrets.token_urlsafe" in err and "short-secret" not in err


def test_nul_makes_a_different_user_refused_not_merged(serve, db):
    live = serve(secret=SECRET)
    with httpx.Client(base_url=live.http) as http:
        created = http.post(API, json={"title": "Alice's"}, headers=bearer("nul-alice\ufffd")).json()["id"]
        nul = jwt.encode({"sub": "nul-alice\u0000", "org": ORG, "exp": int(time.time()) + 60}, SECRET, "HS256")
        assert http.get(API, headers={"Authorization": f"Bearer {nul}"}).status_code == 401
        assert created in [c["id"] for c in http.get(API, headers=bearer("nul-alice\ufffd")).json()]


def test_a_store_that_cannot_be_reached_says_so_with_an_error_id_and_no_dsn(serve, db, caplog):
    from nexusleads_lab.db.embedded import start_embedded, stop_embedded

    live = serve()
    pgdata = db.embedded.pgdata
    with httpx.Client(base_url=live.http, timeout=60) as http:
        http.get(API).raise_for_status()
        assert stop_embedded(pgdata)
        try:
            with caplog.at_level("ERROR", logger="nexusleads_lab.server"):
                down = http.get(API)
        finally:
            start_embedded(pgdata)
        detail = down.json()["detail"]
        assert down.status_code == 503 and "error id" in detail, detail
        for leak in ("postgresql://", ".s.PGSQL", str(pgdata), "socket", "Traceback", "psycopg"):
            assert leak not in detail, leak
        error_id = detail.split("error id ")[1].split(")")[0]
        assert any(error_id in record.getMessage() for record in caplog.records), "the id is in the server's log"
        assert http.get(API).status_code == 200


# -- malformed input ---------------------------------------------------------------------------


def test_deep_json_lone_surrogates_and_bidi_titles_get_a_clear_answer(serve):
    live = serve()
    with httpx.Client(base_url=live.http) as http:
        deep = b'{"title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        answer = http.post(API, content=deep, headers={"Content-Type": "application/json"})
        assert answer.status_code in (400, 422), answer.text
        made = http.post(API, content=b'{"title": "half \\ud800 a pair"}', headers={"Content-Type": "application/json"})
        assert made.status_code == 201 and made.json()["title"] == "half \ufffd a pair"
        tricky = http.post(API, json={"title": "invoice \u202egpj.exe"}).json()
        assert tricky["title"] == "invoice \\u202Egpj.exe", "the override is shown, not obeyed"
        assert http.get(f"{API}/{tricky['id']}").json()["title"] == "invoice \\u202Egpj.exe"
        assert http.get(API).status_code == 200, "the server goes on"


def test_api_docs_are_off_unless_asked_for(serve):
    live = serve()
    assert httpx.get(f"{live.http}/docs").status_code == 404
    assert httpx.get(f"{live.http}/redoc").status_code == 404
    assert httpx.get(f"{live.http}/openapi.json").status_code == 200
    with_docs = serve(limits=ServeLimits(api_docs=True))
    assert httpx.get(f"{with_docs.http}/docs").status_code == 200


# -- bounded responses ---------------------------------------------------------------------------


def test_ten_thousand_conversations_page_to_the_end(serve, db):
    live = serve()
    user = live.local.user
    with db.connect_admin() as conn:
        conn.execute(
            "INSERT INTO chat_conversations (org, user_name, title, updated_at)"
            " SELECT %s, %s, 'c' || n, now() - n * interval '1 second' FROM generate_series(1, 10000) n",
            (ORG, user),
        )
    seen: list[str] = []
    with httpx.Client(base_url=live.http) as http:
        assert len(http.get(API).json()) == 100, "a page by default"
        before = None
        while True:
            page = http.get(API, params={"limit": 500, **({"before": before} if before else {})}).json()
            if not page:
                break
            seen += [c["id"] for c in page]
            before = page[-1]["id"]
        assert http.get(API, params={"limit": 501}).status_code == 422
    assert len(seen) == len(set(seen)) == 10_000
    with db.connect_admin() as conn:
        conn.execute("DELETE FROM chat_conversations WHERE user_name = %s", (user,))


def test_a_long_transcript_comes_in_pages(serve, db):
    live = serve()
    with httpx.Client(base_url=live.http) as http:
        conversation = http.post(API, json={"title": "long"}).json()["id"]
    from nexusleads_lab.db.store import ConversationStore

    store = ConversationStore(db.store_url(ORG), ORG, live.local.user, guard=True)
    for n in range(300):
        store.append(conversation, "user", {"message": {"role": "user", "content": f"q{n}"}})
        answer = json.dumps({"type": "message", "text": f"a{n}"})
        store.append(conversation, "assistant", {"message": {"role": "assistant", "content": answer}})
    store.close()
    with httpx.Client(base_url=live.http) as http:
        last = http.get(f"{API}/{conversation}").json()
        assert last["transcript_total"] == 600 and len(last["transcript"]) == 200 and last["transcript_from"] == 400
        assert last["transcript"][-2]["text"] == "q299"
        questions: list[str] = []
        before = None
        while before != 0:
            page = http.get(
                f"{API}/{conversation}", params={"limit": 150, **({"before": before} if before is not None else {})}
            ).json()
            questions = [i["text"] for i in page["transcript"] if i["kind"] == "question"] + questions
            before = page["transcript_from"]
    assert questions == [f"q{n}" for n in range(300)]


def test_serve_says_which_scope_it_serves_and_refuses_a_malformed_local_org(monkeypatch, capsys):
    from nexusleads_lab.cli import main
    from nexusleads_lab.server.app import describe_scope

    monkeypatch.delenv("NEXUS_AUTH_SECRET", raising=False)
    monkeypatch.delenv("NEXUS_ORG", raising=False)
    monkeypatch.setenv("NEXUS_USER", "scope-ann")
    said = describe_scope(None)
    assert "scope-ann across EVERY organization" in said and "Set NEXUS_ORG=<organization slug>" in said
    monkeypatch.setenv("NEXUS_ORG", ORG)
    assert f"in organization {ORG} (NEXUS_ORG)" in describe_scope(None)
    monkeypatch.setenv("NEXUS_ORG", "*")
    assert main(["serve", "--port", "1"]) == 2
    assert "NEXUS_ORG='*' is not an organization slug" in capsys.readouterr().err


def test_a_lone_surrogate_in_a_chat_message_is_answered_and_stored(serve):
    live = serve([text(message("answered"))])
    with connect(live.ws) as ws:
        ws.send('{"type": "chat", "message": "half a pair: \\ud800 here"}')
        frames = until_end(ws)
    assert frames[-1]["type"] == "turn.completed" and json.loads(frames[-1]["text"])["text"] == "answered"
    session = next(f["sessionId"] for f in frames if f["type"] == "session.id")
    items = httpx.get(f"{live.http}{API}/{session}").json()["transcript"]
    assert items[0]["text"] == "half a pair: \ufffd here"


def test_the_pages_socket_answers_deep_json_with_a_toast_and_stays_open(serve):
    live = serve()
    with connect(live.ws.replace("codex", "panel")) as page:
        assert json.loads(page.recv(timeout=30))["type"] == "state"
        page.send('{"type": "refresh", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
        toast = json.loads(page.recv(timeout=30))
        assert toast["type"] == "msg" and "does not understand" in toast["content"]["text"]
        page.send(json.dumps({"type": "ask", "text": "still there?"}))
        assert json.loads(page.recv(timeout=30))["type"] == "state", "the socket goes on"


@pytest.mark.parametrize(
    "frame",
    [
        '{"type": "chat", "message": "half a pair: \\ud800 here"}',
        '{"type": "chat", "message": "a pair \\ud83d\\ude00 and a NUL \\u0000"}',
        '{"type": "chat", "n": 123456789012345678901234567890, "f": 1e400, "x": NaN}',
        '{"type": "chat", "x": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"type": "chat", "x": ' + "[" * 900 + "]" * 900 + "}",
        '{"type": "chat"',
        '{"type": "chat"} trailing',
        "",
    ],
)
def test_a_frame_reads_as_the_standard_librarys_json_would_read_it(frame):
    from nexusleads_lab.server.ws import _readable, read_frame

    def outcome(read):
        try:
            return "value", read(frame)
        except RecursionError:
            return "too deep", None
        except ValueError:
            return "not JSON", None

    got, expected = outcome(read_frame), outcome(lambda text: _readable(json.loads(text)))
    assert got[0] == expected[0] and repr(got[1]) == repr(expected[1])


def test_a_client_that_does_not_read_gets_every_frame_whole_and_in_order_when_it_does(serve, monkeypatch):
    """The socket's frames are written per batch at once while the client keeps up; once the
    server's buffer is full they wait for ASGI's send, in line, and nothing overtakes them."""
    from websockets.client import ClientProtocol
    from websockets.frames import Opcode
    from websockets.uri import parse_uri

    from nexusleads_lab.server import ws as ws_module

    waited = []
    send_when_writable = ws_module.Connection._send

    async def counting_send(self, frame):
        waited.append(frame)
        await send_when_writable(self, frame)

    monkeypatch.setattr(ws_module.Connection, "_send", counting_send)
    first, second = "0123456789abcdef" * 16_000, "fedcba9876543210" * 16_000  # 256 KB each, sent twice a turn
    live = serve([text(message(first), chunk_size=64_000), text(message(second), chunk_size=64_000)])
    # Small kernel buffers both ways (the accepted socket inherits the listener's), so what the
    # client leaves unread stays in the server's own buffer, beyond its high-water mark (64 KiB).
    live.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client = ClientProtocol(parse_uri(live.ws), max_size=None)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(live.ws.rsplit(":", 1)[1].split("/")[0])))
    sock.settimeout(30)
    frames: list[dict] = []

    def read(until) -> None:
        while not until():
            client.receive_data(sock.recv(1 << 20))
            frames.extend(json.loads(e.data) for e in client.events_received() if e.opcode is Opcode.TEXT)

    def chat(**fields) -> None:
        client.send_text(json.dumps({"type": "chat", **fields}).encode())
        sock.sendall(b"".join(client.data_to_send()))

    with sock:
        client.send_request(client.connect())
        sock.sendall(b"".join(client.data_to_send()))
        while client.state.name == "CONNECTING" and client.handshake_exc is None:
            client.receive_data(sock.recv(65536))
        assert client.handshake_exc is None
        client.events_received()
        chat(message="a long answer, please")
        read(lambda: any(f["type"] == "session.id" for f in frames))
        chat(message="and another", sessionId=next(f["sessionId"] for f in frames if f["type"] == "session.id"))
        time.sleep(4)  # both turns end while nothing is read
        read(lambda: [f["type"] for f in frames].count("turn.completed") == 2)
    assert waited, "the server's buffer never filled: this test did not wait behind a full one"
    assert not [f for f in frames if f["type"] == "error"]
    done = [
        json.loads(f["text"])["text"]
        for f in frames
        if f["type"] in ("agent.text", "turn.completed") and f.get("status", "done") == "done"
    ]
    assert done == [first, first, second, second]
    kinds = [f["type"] for f in frames]
    assert kinds[:2] == ["turn.started", "session.id"] and kinds[-2:] == ["agent.text", "turn.completed"], kinds


def test_a_frame_the_socket_could_not_take_at_once_is_overtaken_by_none_after_it():
    from types import SimpleNamespace

    from nexusleads_lab.server.auth import Identity
    from nexusleads_lab.server.connections import WRITE_TEXTS
    from nexusleads_lab.server.ws import Connection

    wire: list[str] = []  # what reaches the client, in order, either way
    buffer_full = True

    def write_texts(texts):
        if buffer_full:
            return False
        wire.extend(json.loads(t)["type"] for t in texts)
        return True

    class Socket:
        def __init__(self) -> None:
            self.scope = {"extensions": {WRITE_TEXTS: {"write": write_texts}}}
            self.app = SimpleNamespace(state=SimpleNamespace(nexus=None))

        async def send(self, message):
            await asyncio.sleep(0.01)  # waits for the client to read
            wire.append(json.loads(message["text"])["type"])

    async def run() -> None:
        nonlocal buffer_full
        connection = Connection(Socket(), Identity(user="u", org=None))  # type: ignore[arg-type]
        sender = asyncio.create_task(connection._send_loop())
        connection.post({"type": "first"})
        buffer_full = False
        connection.post({"type": "second"})
        await asyncio.sleep(0.05)
        connection.post({"type": "third"})
        sender.cancel()

    in_own_loop(run())
    assert wire == ["first", "second", "third"]
