"""The loopback model server and cassettes, exercised through the real ``openai`` client.

Everything goes over HTTP on 127.0.0.1 so the SSE framing, fragment
reassembly, error mapping and retries are the client's real behaviour.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

from nexusleads_lab.replay import (
    CassetteMatcher,
    Recorder,
    assemble_completion,
    load_cassette,
    normalise_request,
    recording_async_http_client,
    recording_http_client,
    start_replay_server,
)
from nexusleads_lab.testing.modelserver import (
    ModelServer,
    Replay,
    Script,
    disconnect_after,
    http_error,
    text,
    tool_calls,
)

API_KEY = "sk-test-DO-NOT-LEAK-4f9a2c81"
QUESTION = "How many leads do we have, and what do my notes say?"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "psql",
            "description": "Run read-only SQL.",
            "parameters": {"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a workspace file.",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    },
]


def client_for(srv: ModelServer, **kwargs: Any) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=srv.base_url, api_key="test", **kwargs)


def ask(client: openai.OpenAI, question: str = "hi", **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": question}], **kwargs
    )


@dataclass
class Turn:
    """What a streaming client reassembles from one answer."""

    content: str = ""
    content_deltas: int = 0
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    call_deltas: dict[int, list[Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Any = None
    chunks: int = 0


def consume(stream: Any) -> Turn:
    """Accumulate streamed deltas by tool-call index, as any Chat Completions client must."""
    turn = Turn()
    for chunk in stream:
        turn.chunks += 1
        if chunk.usage is not None:
            turn.usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                turn.content += delta.content
                turn.content_deltas += 1
            for fragment in delta.tool_calls or []:
                turn.call_deltas.setdefault(fragment.index, []).append(fragment)
                slot = turn.calls.setdefault(fragment.index, {"id": None, "name": "", "arguments": ""})
                if fragment.id:
                    slot["id"] = fragment.id
                if fragment.function and fragment.function.name:
                    slot["name"] += fragment.function.name
                if fragment.function and fragment.function.arguments:
                    slot["arguments"] += fragment.function.arguments
            if choice.finish_reason:
                turn.finish_reason = choice.finish_reason
    return turn


# --------------------------------------------------------------------------- streaming shapes


def test_streaming_text_arrives_in_several_deltas() -> None:
    answer = "There are 3000 contributors in the demo database."
    with ModelServer(Script([text(answer, chunk_size=7)])) as srv:
        turn = consume(ask(client_for(srv), "count them", stream=True))
        assert srv.requests[0]["messages"] == [{"role": "user", "content": "count them"}]
        assert srv.requests[0]["stream"] is True
    assert turn.content == answer
    assert turn.content_deltas == -(-len(answer) // 7)  # ceil: one delta per 7 characters
    assert turn.finish_reason == "stop"
    assert turn.usage is None  # not asked for


def test_usage_chunk_arrives_last_when_requested() -> None:
    usage = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
    with ModelServer([text("Five tokens of answer.", usage=usage)]) as srv:
        chunks = list(ask(client_for(srv), stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 16
    assert chunks[-1].usage.prompt_tokens == 11
    assert all(c.usage is None for c in chunks[:-1])


def test_parallel_tool_calls_stream_fragmented_arguments_that_reassemble() -> None:
    calls = [
        ("psql", {"sql": "select count(*) from contributors where country = 'DE'"}),
        ("read_file", {"path": "notes/leads.md"}),
    ]
    with ModelServer([tool_calls(calls, content="Let me check.", fragment_size=6)]) as srv:
        turn = consume(ask(client_for(srv), stream=True, tools=TOOLS))
    assert turn.finish_reason == "tool_calls"
    assert turn.content == "Let me check."
    assert sorted(turn.calls) == [0, 1]
    for index, (name, arguments) in enumerate(calls):
        reassembled = turn.calls[index]
        assert reassembled["name"] == name
        assert json.loads(reassembled["arguments"]) == arguments
        deltas = turn.call_deltas[index]
        assert len(deltas) >= 3, "arguments must arrive in several fragments"
        first, *later = deltas
        assert first.id and first.id.startswith("call_") and first.type == "function"
        assert first.function.name == name and first.function.arguments
        # Later fragments carry only index + more arguments, as OpenAI sends them.
        assert all(d.id is None and d.function.name is None and d.function.arguments for d in later)
    assert turn.calls[0]["id"] != turn.calls[1]["id"]


def test_non_streamed_request_gets_a_plain_completion() -> None:
    with ModelServer([tool_calls([("psql", {"sql": "select 1"})], ids=["call_fixed"]), text("Done.")]) as srv:
        client = client_for(srv)
        first = ask(client, tools=TOOLS)
        second = ask(client)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("call_fixed", "psql", {"sql": "select 1"})
    ]
    assert second.choices[0].message.content == "Done."
    assert second.usage is not None and second.usage.total_tokens > 0


def test_models_endpoint_lists_the_served_model() -> None:
    with ModelServer([], model="lab-model") as srv:
        assert [m.id for m in client_for(srv).models.list()] == ["lab-model"]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("status", "error_class"), [(429, openai.RateLimitError), (500, openai.InternalServerError)])
def test_http_errors_map_to_openai_exceptions(status: int, error_class: type[Exception]) -> None:
    with ModelServer([http_error(status, f"synthetic {status} failure")]) as srv:
        with pytest.raises(error_class) as caught:
            ask(client_for(srv, max_retries=0), stream=True)
        assert len(srv.requests) == 1
    assert caught.value.status_code == status
    assert f"synthetic {status} failure" in str(caught.value)
    assert caught.value.body["message"] == f"synthetic {status} failure"


def test_client_retries_a_500_and_then_succeeds() -> None:
    with ModelServer([http_error(500, "transient", retry_after_ms=5), text("Recovered answer.")]) as srv:
        turn = consume(ask(client_for(srv, max_retries=2), stream=True))
        assert len(srv.requests) == 2
        assert srv.requests[0]["messages"] == srv.requests[1]["messages"]
    assert turn.content == "Recovered answer."


def test_mid_stream_disconnect_raises_while_iterating_and_server_keeps_serving() -> None:
    content = "A long answer that never finishes because the connection dies."
    with ModelServer([disconnect_after(3, content, chunk_size=8), text("Next answer.")]) as srv:
        client = client_for(srv, max_retries=2)
        received: list[str] = []
        stream = ask(client, stream=True)
        with pytest.raises(openai.APIConnectionError) as caught:
            for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
        assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
        # Role chunk + two content chunks arrived before the drop; no retry happens mid-stream.
        assert received == ["", content[:8], content[8:16]]
        assert len(srv.requests) == 1
        assert consume(ask(client, stream=True)).content == "Next answer."


def test_exhausted_script_fails_clearly_without_client_retries() -> None:
    with ModelServer([text("only answer")]) as srv:
        client = client_for(srv, max_retries=2)
        assert consume(ask(client, stream=True)).content == "only answer"
        with pytest.raises(openai.InternalServerError) as caught:
            ask(client, "second question", stream=True)
        assert len(srv.requests) == 2  # x-should-retry: false stops the client retrying
    assert "scripted model: no more scripted responses (request 2)" in str(caught.value)
    assert "second question" in str(caught.value)


def test_responder_bug_is_reported_as_500_and_server_survives() -> None:
    def broken(request: dict[str, Any]) -> Any:
        raise KeyError("missing tool result")

    with ModelServer([broken, text("fine")]) as srv:
        client = client_for(srv)
        with pytest.raises(openai.InternalServerError, match="KeyError"):
            ask(client, stream=True)
        assert consume(ask(client, stream=True)).content == "fine"
        assert len(srv.errors) == 1 and "missing tool result" in srv.errors[0]


def test_delay_lets_a_client_cancel_mid_stream() -> None:
    content = "x" * 200
    with ModelServer([text(content, chunk_size=1, delay=0.02), text("after cancel")]) as srv:
        client = client_for(srv)
        started = time.monotonic()
        stream = ask(client, stream=True)
        seen = [next(stream), next(stream)]
        stream.close()
        assert time.monotonic() - started < 1.0  # the full answer would take ~4 s
        assert seen[1].choices[0].delta.content == "x"
        deadline = time.monotonic() + 2.0
        while not srv.aborted and time.monotonic() < deadline:
            time.sleep(0.02)
        assert srv.aborted == [1]
        assert consume(ask(client, stream=True)).content == "after cancel"


def test_callable_step_answers_from_the_request() -> None:
    def echo_tool_result(request: dict[str, Any]) -> Any:
        result = json.loads(request["messages"][-1]["content"])
        return text(f"The answer is {result['value']}.")

    with ModelServer([tool_calls([("psql", {"sql": "select 42"})]), echo_tool_result]) as srv:
        client = client_for(srv)
        call = consume(ask(client, stream=True, tools=TOOLS)).calls[0]
        messages = [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": call["id"], "type": "function", "function": {"name": "psql", "arguments": call["arguments"]}}
                ],
            },
            {"role": "tool", "tool_call_id": call["id"], "content": json.dumps({"value": 42})},
        ]
        final = consume(client.chat.completions.create(model="m", messages=messages, stream=True))
    assert final.content == "The answer is 42."


# --------------------------------------------------------------------------- record and replay


def run_tool(name: str, arguments: dict[str, Any], elapsed_ms: float) -> str:
    """Fake tools whose output carries volatile fields, like the real ones do."""
    if name == "psql":
        return json.dumps(
            {"columns": ["count"], "rows": [[3000]], "query_id": str(uuid.uuid4()), "elapsed_ms": elapsed_ms}
        )
    return f"# notes\nFocus on German maintainers. (read in {elapsed_ms} ms at 2026-05-09T10:11:12Z)"


def run_agent(client: openai.OpenAI, question: str, *, elapsed_ms: float, stream: bool = True) -> list[Turn]:
    """A minimal agent loop: ask, run requested tools, feed results back, until a plain answer."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You answer questions about the leads database."},
        {"role": "user", "content": question},
    ]
    turns: list[Turn] = []
    for _ in range(4):
        if stream:
            turn = consume(
                client.chat.completions.create(
                    model="gpt-test",
                    messages=messages,
                    tools=TOOLS,
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
        else:
            message = (
                client.chat.completions.create(model="gpt-test", messages=messages, tools=TOOLS).choices[0].message
            )
            turn = Turn(content=message.content or "")
            for i, c in enumerate(message.tool_calls or []):
                turn.calls[i] = {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
        turns.append(turn)
        if not turn.calls:
            return turns
        messages.append(
            {
                "role": "assistant",
                "content": turn.content or None,
                "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in turn.calls.values()
                ],
            }
        )
        for c in turn.calls.values():
            result = run_tool(c["name"], json.loads(c["arguments"]), elapsed_ms)
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": result})
    raise AssertionError("agent did not finish")


def scripted_session() -> Script:
    def answer_from_results(request: dict[str, Any]) -> Any:
        rows = next(
            json.loads(m["content"])["rows"]
            for m in request["messages"]
            if m["role"] == "tool" and m["content"].startswith("{")
        )
        return text(f"You have {rows[0][0]} leads; your notes say to focus on German maintainers.")

    return Script(
        [
            tool_calls(
                [("psql", {"sql": "select count(*) from contributors"}), ("read_file", {"path": "notes/leads.md"})],
                content="Checking the database and your notes.",
            ),
            answer_from_results,
        ]
    )


def record_session(path: Path, *, stream: bool = True) -> list[Turn]:
    with ModelServer(scripted_session()) as live:
        client = openai.OpenAI(
            base_url=live.base_url, api_key=API_KEY, max_retries=0, http_client=recording_http_client(path)
        )
        return run_agent(client, QUESTION, elapsed_ms=12.3, stream=stream)


def signature(turns: list[Turn]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    return [(t.content, [(c["id"], c["name"], json.loads(c["arguments"])) for c in t.calls.values()]) for t in turns]


def test_record_then_replay_gives_identical_content_and_tool_calls(tmp_path: Path) -> None:
    cassette = tmp_path / "session.jsonl"
    recorded = record_session(cassette)
    assert recorded[-1].content == "You have 3000 leads; your notes say to focus on German maintainers."

    lines = cassette.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    entries = [json.loads(line) for line in lines]
    assert all(set(e) == {"model", "request", "response"} and "chunks" in e["response"] for e in entries)
    assert entries[0]["request"]["tools"] == ["psql", "read_file"]
    # Volatile parts are masked, call ids aliased, so a re-run can match exactly.
    tool_messages = [m for m in entries[1]["request"]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call#1", "call#2"]
    assert '"elapsed_ms": <n>' in tool_messages[0]["content"] and "<uuid>" in tool_messages[0]["content"]

    # Different timings and UUIDs on the re-run: still an exact match, in order.
    with start_replay_server(cassette) as replay:
        client = openai.OpenAI(base_url=replay.base_url, api_key="other", max_retries=0)
        replayed = run_agent(client, QUESTION, elapsed_ms=98.7)
        assert isinstance(replay.responder, Replay) and replay.responder.unused == []
        # A non-streamed re-run is answered from the same streamed recording.
        folded = run_agent(client, QUESTION, elapsed_ms=5.0, stream=False)
    assert signature(replayed) == signature(recorded)
    assert signature(folded) == signature(recorded)
    assert replayed[-1].usage is not None  # the recorded usage chunk is replayed too


def test_non_streamed_recording_replays_to_a_streaming_client(tmp_path: Path) -> None:
    cassette = tmp_path / "plain.jsonl"
    recorded = record_session(cassette, stream=False)
    assert all("completion" in json.loads(line)["response"] for line in cassette.read_text().splitlines())
    with start_replay_server(cassette) as replay:
        replayed = run_agent(
            openai.OpenAI(base_url=replay.base_url, api_key="x", max_retries=0), QUESTION, elapsed_ms=1.0
        )
    assert signature(replayed) == signature(recorded)
    assert len(replayed[0].call_deltas[0]) >= 2  # re-chunked, not one blob


def test_replay_with_a_changed_question_fails_naming_the_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "session.jsonl"
    record_session(cassette)
    with start_replay_server(cassette) as replay:
        client = openai.OpenAI(base_url=replay.base_url, api_key="x", max_retries=2)
        with pytest.raises(openai.NotFoundError) as caught:
            run_agent(client, "Which companies employ the most maintainers?", elapsed_ms=1.0)
        assert len(replay.requests) == 1  # not retried
    message = str(caught.value)
    assert (
        f"“Which companies employ the most maintainers?” is not one of the questions this demo has recorded answers "
        f"for, and with no model connected it can answer only those: “{QUESTION}”." in message
    )
    # A person without a key cannot re-record: the way on is a model of their own.
    assert "re-record" not in message.lower()
    assert "export OPENAI_API_KEY, or run a local OpenAI-compatible server" in message
    assert "(README › Use a local model)" in message


def test_a_cassette_miss_reaches_the_person_whole_naming_the_cassette_and_the_question(db, tmp_path, monkeypatch):
    from nexusleads_lab.agent.assistant import Assistant

    cassette = tmp_path / "quickstart.cassette.jsonl"
    record_session(cassette)
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NEXUS_RECORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEXUS_REPLAY", str(cassette))
    question = (
        "Which companies employ the most maintainers of the Kafka clients we track, and how many of "
        "those maintainers have we already contacted this quarter across every channel?"
    )
    assistant = Assistant(database=db, org="acme-analytics", user="miss")
    try:
        result = assistant.ask(question)
    finally:
        assistant.close()
    assert not result.ok
    assert result.error.startswith(
        "“Which companies employ the most maintainers of the Kafka clients we track, and how many of those "
        "maintainers have we…” is not one of the questions this demo has recorded answers for"
    ), result.error
    assert f"it can answer only those: “{QUESTION}”." in result.error
    assert result.error.endswith("then set REPLAY = None in the notebook's first cell and restart the kernel.")
    assert "404" not in result.error and "re-record" not in result.error.lower()


def test_cassette_never_contains_the_api_key(tmp_path: Path) -> None:
    cassette = tmp_path / "session.jsonl"
    record_session(cassette)
    content = cassette.read_text(encoding="utf-8")
    assert content.count("\n") == 2
    assert API_KEY not in content
    assert "Bearer" not in content and "authorization" not in content.lower()


def test_recorder_redacts_secret_values_and_credential_keys(tmp_path: Path) -> None:
    path = tmp_path / "direct.jsonl"
    recorder = Recorder(path, secrets=["sk-live-abcdef123456"])
    request = {
        "model": "m",
        "api_key": "sk-other-999999999",
        "messages": [{"role": "user", "content": "my key is sk-live-abcdef123456"}],
    }
    completion = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "api_key": "sk-x-1234567890",
    }
    recorder.record_completion(request, completion, secrets=["tok-extra-0001"])
    recorder.record_stream(
        {"messages": [{"role": "user", "content": "tok-extra-0001"}]}, [], secrets=["tok-extra-0001"]
    )
    content = path.read_text(encoding="utf-8")
    for secret in ("sk-live-abcdef123456", "sk-other-999999999", "sk-x-1234567890", "tok-extra-0001"):
        assert secret not in content
    assert content.count("<redacted>") == 3
    assert json.loads(content.splitlines()[0])["request"]["messages"][0]["content"] == "my key is <redacted>"


def test_async_client_records_a_stream(tmp_path: Path) -> None:
    cassette = tmp_path / "async.jsonl"

    async def main(base_url: str) -> str:
        client = openai.AsyncOpenAI(
            base_url=base_url, api_key=API_KEY, max_retries=0, http_client=recording_async_http_client(cassette)
        )
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "async hi"}], stream=True
        )
        parts = [chunk.choices[0].delta.content or "" async for chunk in stream]
        await client.close()
        return "".join(parts)

    with ModelServer([text("streamed asynchronously")]) as srv:
        # On its own thread: a session-scoped Playwright (sync API) may own this thread's loop.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            answer = pool.submit(asyncio.run, main(srv.base_url)).result(timeout=30)
        assert answer == "streamed asynchronously"
    [exchange] = load_cassette(cassette)
    assert exchange.request == {"messages": [{"role": "user", "content": "async hi"}]}
    assert assemble_completion(exchange.response["chunks"])["choices"][0]["message"]["content"] == (
        "streamed asynchronously"
    )
    assert API_KEY not in cassette.read_text()


def test_failed_exchanges_are_not_recorded(tmp_path: Path) -> None:
    cassette = tmp_path / "failures.jsonl"
    with ModelServer([http_error(500, "boom"), disconnect_after(2), text("good")]) as srv:
        client = openai.OpenAI(
            base_url=srv.base_url, api_key=API_KEY, max_retries=0, http_client=recording_http_client(cassette)
        )
        with pytest.raises(openai.InternalServerError):
            ask(client, stream=True)
        with pytest.raises(openai.APIConnectionError):
            consume(ask(client, stream=True))
        assert consume(ask(client, stream=True)).content == "good"
    assert [e.request["messages"][0]["content"] for e in load_cassette(cassette)] == ["hi"]
    assert len(load_cassette(cassette)) == 1


# --------------------------------------------------------------------------- normalisation and matching


def _request(question: str, tool_output: str, call_id: str) -> dict[str, Any]:
    return {
        "model": "whatever",
        "temperature": 0.3,
        "tools": list(reversed(TOOLS)),
        "messages": [
            {"role": "user", "content": question},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": "psql", "arguments": '{"sql":"select 1"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": tool_output},
        ],
    }


def test_normalisation_ignores_model_ids_timings_and_formatting() -> None:
    a = _request("q", '{"rows": 1, "elapsed_ms": 12.3, "id": "6f1c2e0a-3b4d-4c5e-8f90-123456789abc"} 4 ms', "call_AAA")
    b = _request("q", '{"rows": 1, "elapsed_ms": 7, "id": "0b8e1f7c-1111-4222-8333-444455556666"} 19.5 ms', "call_BBB")
    b["model"] = "another-model"
    b["messages"][1]["tool_calls"][0]["function"]["arguments"] = '{ "sql": "select 1" }'
    b["messages"][1]["content"] = None
    assert normalise_request(a) == normalise_request(b)
    normalised = normalise_request(a)
    assert normalised["tools"] == ["psql", "read_file"]
    assert normalised["messages"][1]["tool_calls"] == [
        {"id": "call#1", "name": "psql", "arguments": '{"sql": "select 1"}'}
    ]
    assert normalise_request(normalised) == normalised  # idempotent: cassettes may be hand-edited
    # Real differences survive normalisation.
    assert normalise_request(_request("q", '{"rows": 2}', "c")) != normalise_request(_request("q", '{"rows": 1}', "c"))


def test_matcher_prefers_exact_then_reuses_then_answers_the_turn_but_never_over_other_data(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    recorder = Recorder(path)
    for rows in (1, 2):
        recorder.record_completion(_request("q", f'{{"rows": {rows}}}', "c"), {"choices": [], "n": rows})
    recorder.record_completion(_request("other", "{}", "c"), {"choices": [], "n": 3})
    result = '{"result_id":"r4","row_count":1}'
    recorder.record_completion(_request("ids", result, "c"), {"choices": [], "n": 4})
    matcher = CassetteMatcher(load_cassette(path))

    exact = CassetteMatcher(load_cassette(path))
    assert exact.match(_request("q", '{"rows": 2}', "x")).response["completion"]["n"] == 2  # exact beats order
    assert exact.match(_request("q", '{"rows": 2}', "x")).response["completion"]["n"] == 2  # re-run reuses it
    # Tool output drifted (rows: 9): the recorded answer would show numbers that are not true here.
    assert exact.match(_request("q", '{"rows": 9}', "x")) is None
    assert [e.response["completion"]["n"] for e in exact.unused] == [1, 3, 4]
    assert matcher.match(_request("never asked", "{}", "c")) is None

    # The same turn in another conversation (earlier questions before it, its result numbered r1
    # here): answered, with the recording's result ids mapped onto this conversation's.
    elsewhere = _request("ids", result.replace("r4", "r1"), "x")
    elsewhere["messages"][:0] = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "ok"}]
    found = exact.find(elsewhere)
    assert found is not None and found.exchange.response["completion"]["n"] == 4
    assert found.result_ids == {"r4": "r1"}
    assert exact.questions() == ["q", "other", "ids"]


def _listen_overflows() -> int | None:
    """The kernel's count of connections dropped because a listening socket's queue was full."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split()[1:], values.split()[1:]))
            return int(fields["ListenOverflows"]) if "ListenOverflows" in fields else None
    return None


def test_a_burst_of_connections_is_queued_not_dropped() -> None:
    """A server whose turns start together opens dozens of model connections at once. With
    socketserver's backlog of 5 the kernel dropped the rest of the SYNs and each client retried
    1, 3, 7, 15 ... s later: the server benchmark's p99 "added" latency was mostly those retries."""
    import socket

    before = _listen_overflows()
    if before is None:
        pytest.skip("no /proc/net/netstat to read the kernel's listen-queue overflows from")
    with ModelServer(Script([text("unused")])) as srv:
        port = httpx.URL(srv.base_url).port
        socks = []
        try:
            for _ in range(300):  # connects without waiting for the server to accept each
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                socks.append(s)
            time.sleep(0.5)  # the handshakes complete (or the SYNs are dropped) meanwhile
            after = _listen_overflows()
        finally:
            for s in socks:
                s.close()
    assert after == before, f"{after - before} connections dropped by the model server's full listen queue"
