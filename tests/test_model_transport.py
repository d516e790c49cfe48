"""One chat request as `agent.transport` sends and reads it, side by side with the plain `openai`
SDK against the same loopback server: the same request on the wire, the same retries, the same
exceptions and messages, the same chunks out of the same SSE bytes however they are split.

Each side-by-side test runs both ways the transport sends: ``httpx`` (a plain SDK client: through
its httpx client, as for a recording or a proxy) and ``lean`` (``make_client``'s transport:
``http.client`` over ``agent.http_pool``)."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx2
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._streaming import SSEDecoder

from nexusleads_lab.agent import transport
from nexusleads_lab.agent.model_call import open_stream, request_body
from nexusleads_lab.agent.transport import ChatStream, LeanTransport
from nexusleads_lab.testing.modelserver import ModelServer, RawReply, Script, disconnect_after, http_error, text

MESSAGES = [{"role": "user", "content": "Leads by tier, née ünïcode?"}]


def sdk_stream(client: openai.OpenAI):
    """The same request through the SDK's own request loop and stream (what the product used to call)."""
    return client.post(
        "/chat/completions",
        cast_to=object,
        body=request_body("m", MESSAGES),
        stream=True,
        stream_cls=openai.Stream[object],
    )


def ours(client: openai.OpenAI):
    return open_stream(client, "m", MESSAGES)


@pytest.fixture(params=["httpx", "lean"])
def way(request) -> str:
    return request.param


def client_for(way: str, base_url: str, *, limits: httpx2.Limits | None = None, **options) -> openai.OpenAI:
    """An SDK client whose chat requests ``open_stream`` sends the given way (the SDK's own
    requests always go through its httpx client)."""
    if way == "lean":
        lean = LeanTransport(limits=limits) if limits is not None else LeanTransport()
        client = openai.OpenAI(base_url=base_url, http_client=openai.DefaultHttpxClient(transport=lean), **options)
        assert transport._prepared_for(client).route is not None, "the chat requests take the lean way"
        return client
    if limits is not None:
        options["http_client"] = openai.DefaultHttpxClient(limits=limits)
    return openai.OpenAI(base_url=base_url, **options)


def outcome(send, client: openai.OpenAI):
    """The chunks a stream gave, or the exception it raised: (class, message, status, body)."""
    try:
        # each answer has its own id and time
        return ("chunks", [{k: v for k, v in c.items() if k not in ("id", "created")} for c in send(client)])
    except openai.APIError as exc:
        return (type(exc), str(exc), getattr(exc, "status_code", None), exc.body)
    except json.JSONDecodeError as exc:
        return (type(exc), str(exc))


class SeeHeaders:
    """Records the request headers the server received, then answers with ``then``."""

    def __init__(self, seen: list[dict[str, str]], then) -> None:
        self.seen, self.then = seen, then

    def serve(self, wire) -> None:
        self.seen.append({k.lower(): v for k, v in wire._handler.headers.items()})
        self.then.serve(wire)


def test_the_server_sees_the_request_the_sdk_sends_and_the_answer_reads_the_same(way):
    seen: list[dict[str, str]] = []
    with ModelServer(Script([SeeHeaders(seen, text("Same answer.")) for _ in range(2)])) as server:
        client = client_for(way, server.base_url, api_key="sk-test-key", max_retries=0)
        assert outcome(sdk_stream, client) == outcome(ours, client)
        client.close()
    assert seen[0] == seen[1] and seen[1]["authorization"] == "Bearer sk-test-key"
    assert seen[1]["user-agent"].startswith("OpenAI/Python") and seen[1]["x-stainless-retry-count"] == "0"
    assert server.requests[0] == server.requests[1]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429, 500, 503])
def test_an_http_error_is_the_sdks_own_exception_with_its_message(status, way):
    step = http_error(status, f"refused with {status}", code="nope", should_retry=False)
    with ModelServer(Script([step, step])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=2)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[2] == status and f"refused with {status}" in mine[1]
    assert len(server.requests) == 2, "x-should-retry: false is obeyed"


def test_an_error_body_that_is_not_json_reads_as_the_sdk_reads_it(way):
    class Plain:
        def serve(self, wire) -> None:
            handler = wire._handler
            handler.send_response(502)
            handler.send_header("Content-Type", "text/html")
            handler.send_header("Content-Length", "15")
            handler.send_header("x-should-retry", "false")
            handler.end_headers()
            handler.wfile.write(b"<h1>gateway</h1>"[:15])

    with ModelServer(Script([Plain(), Plain()])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] is openai.InternalServerError


@pytest.fixture()
def sleeps(monkeypatch):
    """The retry waits the client asked for on the test's thread (the SDK's ``time.sleep`` is the
    time module's: other threads of the test process sleep through it too), slept for at most 10 ms."""
    waits: list[float] = []
    real = time.sleep
    me = threading.get_ident()

    def sleep(seconds: float) -> None:
        if threading.get_ident() != me:
            real(seconds)
            return
        waits.append(seconds)
        real(min(seconds, 0.01))

    monkeypatch.setattr(openai._base_client.time, "sleep", sleep)
    return waits


def test_429_and_5xx_are_retried_after_the_wait_the_server_asks_then_the_answer_streams(sleeps, way):
    runs = {}
    for name, send in (("sdk", sdk_stream), ("ours", ours)):
        seen: list[dict[str, str]] = []
        steps = [
            SeeHeaders(seen, http_error(429, "slow down", retry_after_ms=40)),
            SeeHeaders(seen, RawReply(status=503, headers={"Retry-After": "2"}, body={"error": {"message": "busy"}})),
            SeeHeaders(seen, text("Third time.")),
        ]
        sleeps.clear()
        with ModelServer(Script(steps)) as server:
            client = client_for(way, server.base_url, api_key="k", max_retries=2)
            runs[name] = (outcome(send, client), list(sleeps), [h["x-stainless-retry-count"] for h in seen])
            client.close()
    assert runs["ours"] == runs["sdk"]
    chunks, waits, tries = runs["ours"]
    assert chunks[0] == "chunks" and waits == [0.04, 2.0] and tries == ["0", "1", "2"]


def test_the_last_retry_failing_raises_the_last_status_and_waits_back_off_in_between(sleeps, way):
    step = http_error(500, "still broken")
    with ModelServer(Script([step] * 6)) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=2)
        theirs = outcome(sdk_stream, client)
        their_waits = list(sleeps)
        sleeps.clear()
        mine = outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] is openai.InternalServerError and len(server.requests) == 6
    assert len(sleeps) == len(their_waits) == 2 and all(0 < w <= 8 for w in sleeps)


def test_nothing_listening_is_a_connection_error_after_the_retries(sleeps, way):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = client_for(way, f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=1)
    theirs = outcome(sdk_stream, client)
    mine = outcome(ours, client)
    client.close()
    assert mine == theirs and mine[0] is openai.APIConnectionError and len(sleeps) == 2


@pytest.mark.parametrize("where", ["before the headers", "mid-stream"])
def test_a_read_timeout_is_the_sdks_timeout_error(where, way):
    slow = http_error(500, "late", delay=1.0) if where == "before the headers" else text("a b c d e f", delay=0.5)
    with ModelServer(Script([slow, slow])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0, timeout=0.2)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] is openai.APITimeoutError


@pytest.mark.parametrize(
    "event",
    [
        'data: {"error": {"message": "Provider disconnected", "code": 502}}',
        'data: {"error": "a bare string"}',
        'data: {"error": {"code": 500}}',
        "data: {not json",
        "data: [DONE] and more",
    ],
)
def test_an_error_or_garbage_inside_a_200_stream_is_what_the_sdk_raises(event, way):
    head = 'data: {"choices": [{"index": 0, "delta": {"content": "Hal"}}]}'
    reply = RawReply((head, event, "data: [DONE]"))
    with ModelServer(Script([reply, reply])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs


def test_three_answers_in_a_row_share_one_connection(way):
    with ModelServer(Script([text("one"), text("two"), text("three", chunk_size=1)])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        answers = [
            "".join(c["choices"][0]["delta"].get("content") or "" for c in ours(client) if c["choices"])
            for _ in range(3)
        ]
        client.close()
    assert answers == ["one", "two", "three"] and server.connections_opened == 1


def test_a_stream_closed_from_another_thread_stops_at_once_and_is_not_drained(way):
    with ModelServer(Script([text("word " * 200, chunk_size=5, delay=0.05), text("next")])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        stream = ours(client)
        read = []
        threading.Timer(0.3, stream.close).start()
        with pytest.raises((openai.APIConnectionError, httpx2.StreamClosed)):
            for chunk in stream:
                read.append(chunk)
        assert 0 < len(read) < 50, "stopped long before the answer's 200 chunks"
        assert outcome(ours, client)[0] == "chunks", "the next request is answered"
        client.close()


def test_a_connection_cut_mid_stream_is_the_sdks_connection_error(way):
    cut = disconnect_after(3)
    with ModelServer(Script([cut, cut])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] is openai.APIConnectionError


def test_a_connect_that_times_out_is_the_sdks_timeout_error(way):
    with socket.socket() as full:  # a listener whose queue is full: further SYNs go unanswered
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        queued = [socket.create_connection(full.getsockname(), timeout=2)]  # the one place in its queue
        base_url = "http://{}:{}/v1".format(*full.getsockname())
        client = client_for(way, base_url, api_key="k", max_retries=0, timeout=httpx2.Timeout(5.0, connect=0.2))
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
        for s in queued:
            s.close()
    assert mine == theirs and mine[0] is openai.APITimeoutError


class Pieces:
    """A 200 stream whose bytes go out in the given HTTP chunks, cut anywhere (mid-line, between CR
    and LF, inside a UTF-8 character)."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def serve(self, wire) -> None:
        wire.start_stream()
        for piece in self.pieces:
            wire._write_chunk(piece)
            wire._handler.wfile.flush()
        wire._handler.wfile.write(b"0\r\n\r\n")


def test_sse_bytes_cut_anywhere_on_the_wire_read_as_the_sdk_reads_them(way):
    raw = b"".join(line + b"\r\n" for event in EVENTS for line in [*event.split(b"\n"), b""])
    points = [1, 7, 15, 16, 30, 31, 55, 56, 57, 90, 120, 121, 140, 170]
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    with ModelServer(Script([Pieces(pieces), Pieces(pieces)])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs == ("chunks", [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}, {"text": "café €"}])


def answer_text(stream) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in stream if c["choices"])


class Gzipped:
    """A 200 stream (or an error) whose body is gzip-encoded, as a compressing proxy sends it."""

    def __init__(self, status: int = 200) -> None:
        self.status = status

    def serve(self, wire) -> None:
        import gzip

        if self.status == 200:
            events = ['{"choices": [{"index": 0, "delta": {"content": "zip"}}]}', "[DONE]"]
            raw, kind = "".join(f"data: {e}\n\n" for e in events).encode(), "text/event-stream"
        else:
            raw, kind = json.dumps({"error": {"message": "squeezed out"}}).encode(), "application/json"
        body = gzip.compress(raw)
        handler = wire._handler
        handler.send_response(self.status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("x-should-retry", "false")
        handler.end_headers()
        handler.wfile.write(body)


@pytest.mark.parametrize("status", [200, 503])
def test_a_gzip_encoded_answer_or_error_reads_as_the_sdk_reads_it(status, way):
    with ModelServer(Script([Gzipped(status), Gzipped(status)])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs
    assert mine[0] == "chunks" if status == 200 else mine[0] is openai.InternalServerError


def test_a_redirect_is_followed_as_the_sdk_follows_it(way):
    with ModelServer(Script([])) as server:
        moved = RawReply(status=307, headers={"Location": f"{server.base_url}/chat/completions"}, body={})
        server.responder = Script([moved, text("moved"), moved, text("moved")])
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] == "chunks" and len(server.requests) == 4


def test_a_proxy_mounted_on_the_client_is_used_as_the_sdk_uses_it():
    """A mount (a proxy) for the base URL sends the chat requests through httpx, to the proxy
    (here the loopback server, asked as a proxy, answers 404 for the full URL). Environment proxies
    are not read once a transport is given (httpx's rule), so make_client's clients never have one."""
    with ModelServer(Script([])) as proxy:
        mounts = {"http://": httpx2.HTTPTransport(proxy=proxy.base_url.removesuffix("/v1"))}
        http_client = openai.DefaultHttpxClient(transport=LeanTransport(), mounts=mounts)
        client = openai.OpenAI(base_url="http://model.invalid/v1", api_key="k", max_retries=0, http_client=http_client)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] is openai.NotFoundError
    assert "no route POST http://model.invalid/v1/chat/completions" in mine[1]


def test_make_client_takes_the_lean_way_and_a_recording_client_takes_httpx(tmp_path):
    from nexusleads_lab.agent.provider import ModelSettings, make_client

    with ModelServer(Script([text("live"), text("recorded")])) as server:
        plain = ModelSettings(model="m", api_key="k", base_url=server.base_url, replay=None, record=None)
        recording = ModelSettings(
            model="m", api_key="k", base_url=server.base_url, replay=None, record=str(tmp_path / "c.json")
        )
        answers = []
        for settings in (plain, recording):
            client = make_client(settings, max_connections=4)
            answers.append((answer_text(ours(client)), transport._prepared_for(client).route is not None))
            client.close()
    assert answers == [("live", True), ("recorded", False)]
    assert "recorded" in (tmp_path / "c.json").read_text(), "the recorder saw the exchange"


def test_the_pool_is_bounded_a_request_waits_its_pool_timeout_then_gets_a_freed_connection(way):
    with ModelServer(Script([text("one"), text("two"), text("three"), text("four")])) as server:
        client = client_for(
            way,
            server.base_url,
            api_key="k",
            max_retries=0,
            timeout=httpx2.Timeout(10.0, pool=0.2),
            limits=httpx2.Limits(max_connections=2),
        )
        held = [ours(client), ours(client)]  # answered, not read: both connections in use
        assert outcome(ours, client)[0] is openai.APITimeoutError
        held[0].close()
        assert answer_text(ours(client)) == "three"
        assert answer_text(held[1]) == "two"
        client.close()
    assert server.connections_opened == 3, "the closed stream's connection was not reused"


class Closes:
    """Answers, then closes the connection once the answer is out (without saying so first)."""

    def __init__(self, then) -> None:
        self.then = then

    def serve(self, wire) -> None:
        self.then.serve(wire)
        wire._handler.close_connection = True


def wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.01)


def test_a_keep_alive_connection_the_server_closed_is_not_used_again(way):
    with ModelServer(Script([Closes(text("one")), text("two")])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        assert answer_text(ours(client)) == "one"
        wait_until(lambda: not server._connections)  # the server has closed it
        assert answer_text(ours(client)) == "two"
        client.close()
    assert server.connections_opened == 2 and len(server.requests) == 2


def test_an_idle_connection_older_than_the_keep_alive_expiry_is_not_used_again(way):
    with ModelServer(Script([text("one"), text("two")])) as server:
        limits = httpx2.Limits(max_connections=4, keepalive_expiry=0.05)
        client = client_for(way, server.base_url, api_key="k", max_retries=0, limits=limits)
        assert answer_text(ours(client)) == "one"
        time.sleep(0.2)
        assert answer_text(ours(client)) == "two"
        client.close()
    assert server.connections_opened == 2


class Hangs:
    """Starts the answer, then says nothing more until ``released`` (a model server that stalls)."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def serve(self, wire) -> None:
        wire.start_stream()
        wire.send_event({"choices": [{"index": 0, "delta": {"content": "Hal"}}]})
        self.released.wait(30)


# -- the lean way's own promises -----------------------------------------------------------------


class Silent:
    """Reads the request and closes the connection without a word (as a server whose idle
    timeout struck just as the request arrived)."""

    def serve(self, wire) -> None:
        wire._handler.close_connection = True


def test_a_request_lost_on_a_reused_connection_is_sent_once_more_on_a_new_one():
    with ModelServer(Script([text("one"), Silent(), text("two")])) as server:
        client = client_for("lean", server.base_url, api_key="k", max_retries=0)
        assert answer_text(ours(client)) == "one"
        assert answer_text(ours(client)) == "two"
        client.close()
    assert server.connections_opened == 2 and len(server.requests) == 3


def test_only_once_and_never_on_a_new_connection():
    with ModelServer(Script([text("one"), Silent(), Silent(), Silent()])) as server:
        client = client_for("lean", server.base_url, api_key="k", max_retries=0)
        assert answer_text(ours(client)) == "one"
        assert outcome(ours, client)[0] is openai.APIConnectionError
        assert len(server.requests) == 3, "the reused connection, then one new one"
        assert outcome(ours, client)[0] is openai.APIConnectionError
        client.close()
    assert len(server.requests) == 4, "a new connection lost is not sent again"


def test_a_read_waiting_on_a_silent_server_ends_at_once_when_the_stream_or_the_client_is_closed():
    hangs = [Hangs(), Hangs()]
    with ModelServer(Script(hangs)) as server:
        client = client_for("lean", server.base_url, api_key="k", max_retries=0)
        for stop in ("stream", "client"):
            stream = ours(client)
            seen: list = []

            def read(stream=stream, seen=seen) -> None:
                try:
                    for chunk in stream:
                        seen.append(chunk)
                except openai.APIConnectionError as exc:
                    seen.append(exc)

            reader = threading.Thread(target=read)
            reader.start()
            wait_until(lambda seen=seen: len(seen) == 1)  # blocked on the next bytes now
            stream.close() if stop == "stream" else client.close()
            reader.join(10)
            assert not reader.is_alive() and isinstance(seen[-1], openai.APIConnectionError), stop
        for hang in hangs:
            hang.released.set()
        wait_until(lambda: not server._connections)  # every socket of the client was closed


def test_closing_the_client_closes_every_connection_idle_or_in_use(way):
    with ModelServer(Script([text("one"), text("two")])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        unread = ours(client)  # its connection in use, never read
        assert answer_text(ours(client)) == "two"  # read on a second one, idle now
        assert server.connections_opened == 2 and len(server._connections) == 2
        client.close()
        wait_until(lambda: not server._connections)
        del unread


def tls_server(server: ModelServer, tmp_path) -> tuple[str, str]:
    """Serve ``server`` over TLS with a certificate for 127.0.0.1 from a test CA; -> (https base
    URL, the CA's PEM file)."""
    import datetime
    import ipaddress
    import ssl

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(text: str):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder(
            name("test CA"), name("test CA"), ca_key.public_key(), 1, now, now + datetime.timedelta(days=1)
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder(
            ca.subject, name("127.0.0.1"), key.public_key(), 2, now, now + datetime.timedelta(days=1)
        )
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, chain = tmp_path / "ca.pem", tmp_path / "server.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    httpd = server._httpd
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    return server.base_url.replace("http://", "https://"), str(ca_file)


@pytest.mark.parametrize("trusted", [True, False])
def test_an_https_base_url_is_tls_with_the_certificate_verified(trusted, way, tmp_path, monkeypatch):
    with ModelServer(Script([text("secret"), text("secret")])) as server:
        base_url, ca_file = tls_server(server, tmp_path)
        if trusted:
            monkeypatch.setenv("SSL_CERT_FILE", ca_file)  # httpx's context trusts it, so both ways do
        client = client_for(way, base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs
    assert mine[0] == "chunks" if trusted else mine[0] is openai.APIConnectionError


# -- SSE framing: the same chunks as the SDK's decoder, however the bytes are split -------------


def sdk_chunks(parts: list[bytes]) -> list:
    out = []
    for sse in SSEDecoder().iter_bytes(iter(parts)):
        if sse.data.startswith("[DONE]"):
            break
        out.append(sse.json())
    return out


def our_chunks(parts: list[bytes]) -> list:
    request = httpx2.Request("POST", "http://model.test/v1/chat/completions")
    return list(ChatStream(httpx2.Response(200, content=iter(parts), request=request)))


EVENTS = [
    b'data: {"n": 1}',
    b'data:{"n": 2}',  # no space after the colon
    b": keep-alive",  # a comment, not an event
    b'event: message\ndata: {"n": 3}',  # a field the chat stream does not use
    b'data: {"n":\ndata:  4}',  # two data lines are one value, joined by a newline
    b'data: {"text": "caf\xc3\xa9 \xe2\x82\xac"}',  # UTF-8 split wherever the bytes split
    b"data: [DONE]",
    b'data: {"n": "after done"}',
]


@settings(max_examples=300, deadline=None)
@given(
    ending=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=1, max_value=200), max_size=12),
)
def test_any_line_ending_and_any_split_of_the_bytes_gives_the_sdks_chunks(ending, cuts):
    raw = b"".join(line + ending for event in EVENTS for line in [*event.split(b"\n"), b""])
    points = sorted({c % len(raw) for c in cuts} - {0})
    parts = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)])]
    assert our_chunks(parts) == sdk_chunks(parts) == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}, {"text": "café €"}]


def test_a_crlf_split_between_two_parts_ends_one_line_not_two():
    parts = [b'data: {"n":\r', b"\ndata: 1}\r\n\r\n", b"data: [DONE]\r\n\r\n"]
    assert our_chunks(parts) == sdk_chunks(parts) == [{"n": 1}]


def test_an_event_cut_off_by_the_end_of_the_stream_is_not_read():
    parts = [b'data: {"n": 1}\n\n', b'data: {"n": 2}']
    assert our_chunks(parts) == sdk_chunks(parts) == [{"n": 1}]


# -- the response head as a server may write it ---------------------------------------------------


class RawHead:
    """An answer whose head is written byte for byte: ``status`` and ``fields`` (each a header
    line without its CRLF), then a chunked SSE stream (status 200) or a JSON error body; ``before``
    is written first (an informational answer)."""

    def __init__(self, fields: list[bytes], status: int = 200, *, before: bytes = b"", chunked: bool = True) -> None:
        self.fields, self.status, self.before, self.chunked = fields, status, before, chunked

    def serve(self, wire) -> None:
        if self.status == 200:
            events = ['{"choices": [{"index": 0, "delta": {"content": "head"}}]}', "[DONE]"]
            body = "".join(f"data: {e}\n\n" for e in events).encode()
        else:
            body = json.dumps({"error": {"message": f"refused with {self.status}"}}).encode()
        fields = list(self.fields)
        if self.chunked:
            fields.append(b"Transfer-Encoding: chunked")
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        elif not any(f.lower().startswith(b"content-length") for f in fields):
            fields.append(b"Content-Length: %d" % len(body))
        head = b"HTTP/1.1 %d Whatever\r\n" % self.status + b"".join(f + b"\r\n" for f in fields) + b"\r\n"
        wire.started = True
        wire._handler.wfile.write(self.before + head + body)


def error_fields(send, client: openai.OpenAI) -> list[tuple[str, str]]:
    with pytest.raises(openai.APIStatusError) as caught:
        list(send(client))
    return [(k, v) for k, v in caught.value.response.headers.multi_items() if k not in ("date", "server")]


ODD_HEADS = {
    "odd casing": [b"CONTENT-type: text/event-stream", b"x-Should-RETRY: false"],
    "repeated fields": [b"X-Trace: a", b"Set-Cookie: a=1", b"X-Trace: b", b"Set-Cookie: b=2", b"x-should-retry: false"],
    "a folded field": [b"X-Long: first", b"\t second  ", b"  third", b"x-should-retry: false"],
    "blanks around values": [b"X-Pad:  \t padded \t ", b"X-Empty:", b"x-should-retry:false"],
    "a 60 KB field": [b"X-Big: " + b"x" * 60_000, b"x-should-retry: false"],
    "latin-1 bytes": [b"X-Name: caf\xe9", b"x-should-retry: false"],
    "a control character h11 lets through": [b"Set-Cookie: a=\x01b", b"x-should-retry: false"],
}


@pytest.mark.parametrize("head", list(ODD_HEADS), ids=list(ODD_HEADS))
def test_header_fields_as_a_server_may_write_them_read_as_httpx_reads_them(head, way):
    fields = ODD_HEADS[head]
    with ModelServer(Script([RawHead(fields), RawHead(fields), RawHead(fields, 429), RawHead(fields, 429)])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        streams = outcome(sdk_stream, client), outcome(ours, client)
        errors = error_fields(sdk_stream, client), error_fields(ours, client)
        client.close()
    assert streams[1] == streams[0] == ("chunks", [{"choices": [{"index": 0, "delta": {"content": "head"}}]}])
    assert errors[1] == errors[0] and ("x-should-retry", "false") in errors[1]


def test_a_folded_line_is_joined_to_its_field_by_a_space_and_values_lose_their_blanks():
    fields = ODD_HEADS["a folded field"] + ODD_HEADS["blanks around values"][:2]
    with ModelServer(Script([RawHead(fields, 429)])) as server:
        client = client_for("lean", server.base_url, api_key="k", max_retries=0)
        seen = dict(error_fields(ours, client))
        client.close()
    assert seen["x-long"] == "first second   third" and seen["x-pad"] == "padded" and seen["x-empty"] == ""


def test_informational_answers_before_the_answer_are_skipped(way):
    before = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    reply = RawHead([b"Content-Type: text/event-stream"], before=before)
    with ModelServer(Script([reply, reply, text("next")])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        assert answer_text(ours(client)) == "next"
        client.close()
    assert mine == theirs and mine[0] == "chunks"


MALFORMED_HEADS = {
    "a line with no colon": [b"X-Fine: yes", b"no colon here", b"X-After: lost"],
    "a blank before the colon": [b"X-Name : value"],
    "a space inside the name": [b"X Name: value"],
    "a NUL in a value": [b"X-Nul: a\x00b"],
    "a fold before any field": [b" folded"],
}


@pytest.mark.parametrize("head", list(MALFORMED_HEADS), ids=list(MALFORMED_HEADS))
def test_a_malformed_head_is_a_connection_error_as_with_httpx(head, way):
    reply = RawHead(MALFORMED_HEADS[head])
    with ModelServer(Script([reply, reply])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] is openai.APIConnectionError


class CutHead:
    """Writes part of a head and closes the connection."""

    def serve(self, wire) -> None:
        wire.started = True
        wire._handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        wire.drop()


def test_a_head_cut_off_by_the_close_is_a_connection_error_and_not_sent_again(way):
    with ModelServer(Script([CutHead(), CutHead()])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] is openai.APIConnectionError and len(server.requests) == 2


@pytest.mark.parametrize(
    "fields",
    [[b"X-Big: " + b"x" * 70_000], [b"X-Field-%d: %d" % (n, n) for n in range(101)]],
    ids=["a line over 64 KiB", "101 fields"],
)
def test_a_head_beyond_http_clients_bounds_is_a_connection_error(fields):
    with ModelServer(Script([RawHead(fields), text("next")])) as server:
        client = client_for("lean", server.base_url, api_key="k", max_retries=0)
        assert outcome(ours, client)[0] is openai.APIConnectionError
        assert answer_text(ours(client)) == "next"
        client.close()


class Extended:
    """A 200 stream whose chunks carry extensions and whose end carries a trailer field."""

    def serve(self, wire) -> None:
        wire.start_stream()
        for event in ['{"n": 1}', '{"n": 2}', "[DONE]"]:
            data = f"data: {event}\n\n".encode()
            wire._handler.wfile.write(b'%x;name=value;quoted="a;b"\r\n%s\r\n' % (len(data), data))
        wire._handler.wfile.write(b"0;last\r\nX-Trailer: done\r\n\r\n")


def test_chunk_extensions_and_trailers_read_as_httpx_reads_them_and_the_connection_is_kept(way):
    with ModelServer(Script([Extended(), Extended(), Extended()])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs = outcome(sdk_stream, client)
        before = server.connections_opened
        mine, again = outcome(ours, client), outcome(ours, client)
        client.close()
    assert mine == theirs == again == ("chunks", [{"n": 1}, {"n": 2}])
    if way == "lean":  # (the SDK closes its stream at [DONE], before the end of the body)
        assert server.connections_opened - before == 1, "read to the end of the trailer, then kept"


# -- JSON as json reads it ------------------------------------------------------------------------


def test_chunk_values_read_as_json_reads_them(way):
    """Integers past 64 bits stay exact, ``NaN`` and out-of-range floats read as ``json`` reads
    them, escapes of lone surrogates are kept (the reader drops them later)."""
    events = (
        'data: {"big": 12345678901234567890123, "neg": -9223372036854775809, "n": 1234567890123456789}',
        'data: {"nan": NaN, "inf": 1e400, "small": 5e-324, "s": "\\ud800 \\u00e9"}',
        "data: [DONE]",
    )
    reply = RawReply(events)
    with ModelServer(Script([reply, reply])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert repr(mine) == repr(theirs)
    assert mine[1][0] == {"big": 12345678901234567890123, "neg": -9223372036854775809, "n": 1234567890123456789}


@pytest.mark.parametrize("data", [b"\xef\xbb\xbf{}", b'{"s": "\xff"}'], ids=["a byte-order mark", "bytes not UTF-8"])
def test_a_data_event_json_would_not_read_fails_as_it_does_in_the_sdk(data, way):
    reply = Pieces([b"data: " + data + b"\n\n", b"data: [DONE]\n\n"])
    with ModelServer(Script([reply, reply])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        failures = []
        for send in (sdk_stream, ours):
            with pytest.raises(ValueError) as caught:
                list(send(client))
            failures.append(caught.value)
        client.close()
    theirs, mine = failures
    assert type(mine) is type(theirs)  # (a UnicodeDecodeError counts its position in another string)
    if isinstance(mine, json.JSONDecodeError):
        assert str(mine) == str(theirs)


def test_a_lone_surrogate_in_a_message_is_sent_escaped(way):
    """The one difference from the SDK's own encoder, which fails the request with
    ``UnicodeEncodeError``: a client's frame may carry ``\\ud800``, and JSON can say it."""
    with ModelServer(Script([text("ok")])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        assert answer_text(open_stream(client, "m", [{"role": "user", "content": "half \ud800 a pair"}])) == "ok"
        client.close()
    assert server.requests[0]["messages"][0]["content"] == "half \ud800 a pair"


def test_a_default_header_http_would_refuse_sends_the_chat_requests_through_httpx():
    """The lean way's request head is checked once, when the client's first chat request is
    prepared: a header with a line break cannot be written there, so httpx sends (and judges) it."""
    bad = {"X-Note": "one\r\nInjected: two"}
    with ModelServer(Script([text("one"), text("two")])) as server:
        lean = LeanTransport()
        http_client = openai.DefaultHttpxClient(transport=lean)
        client = openai.OpenAI(
            base_url=server.base_url, api_key="k", max_retries=0, default_headers=bad, http_client=http_client
        )
        assert transport._prepared_for(client).route is None
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        client.close()
    assert mine == theirs and mine[0] is openai.APIConnectionError and not server.requests


class Switches:
    """Answers 101 Switching Protocols, then speaks something else on the connection."""

    def serve(self, wire) -> None:
        wire.started = True
        wire._handler.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\n")
        wire._handler.wfile.write(b"\x81\x05hello")
        wire._handler.close_connection = True


def test_a_switch_of_protocols_never_asked_for_is_a_connection_error_as_with_httpx(way):
    with ModelServer(Script([Switches(), Switches(), text("next")])) as server:
        client = client_for(way, server.base_url, api_key="k", max_retries=0)
        theirs, mine = outcome(sdk_stream, client), outcome(ours, client)
        assert answer_text(ours(client)) == "next"
        client.close()
    assert mine == theirs and mine[0] is openai.APIConnectionError
