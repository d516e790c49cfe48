"""The conformance table: what real OpenAI-compatible servers stream, replayed verbatim through the
`Assistant` (and `nexus-lab ask --json`) against the real database, and the faults around it."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest
from provider_streams import Fixture, load, names, strict_problems

from nexusleads_lab.agent.completion import StreamReader, read_all
from nexusleads_lab.agent.provider import mask_api_key
from nexusleads_lab.testing.modelserver import ModelServer, RawReply, Script, text

API_KEY = "sk-proj-Zm9vYmFyLWJhei1xdXV4LTEyMzQ1Njc4OTA"


@pytest.fixture()
def replay(scripted_assistant):
    """An assistant whose model answers with the given steps (with this file's key); closed after the test."""
    return functools.partial(scripted_assistant, api_key=API_KEY)


def psql_steps(result) -> list[str | None]:
    return [s.command for s in result.steps if s.tool == "psql"]


def check_frames_are_the_models_queries(assistant, result, sqls: list[str]) -> None:
    """psql ran once per call, with the model's SQL: each DataFrame is what that SQL reads."""
    assert psql_steps(result) == sqls
    assert [s.status for s in result.steps] == ["completed"] * len(sqls)
    assert len(result.frames) == len(sqls)
    for step in result.steps:
        assert result.frames[step.result_id].equals(assistant.engine.read(step.command).df)


# -- every provider and quirk, through the Assistant ---------------------------------------------


@pytest.mark.parametrize("name", names())
def test_each_recorded_provider_stream_gives_the_models_queries_a_strict_follow_up_and_the_usage(replay, name):
    fixture = load(name)
    expect = fixture.expect
    assistant = replay(fixture.steps())
    result = assistant.ask("How many leads per tier, and how many projects?")

    check_frames_are_the_models_queries(assistant, result, expect["sql"])
    requests = assistant.server.requests
    assert len(requests) == 2, "one request for the calls, one follow-up with their results"
    assert strict_problems(requests[1]) == []
    (sent,) = [m for m in requests[1]["messages"] if m.get("tool_calls")]
    assert [json.loads(c["function"]["arguments"])["sql"] for c in sent["tool_calls"]] == expect["sql"]
    assert result.usage == expect["usage"], "the provider's own figure, once per request"
    if "error" in expect:
        assert not result.ok and expect["error"] in result.error and assistant.model in result.error
        assert [e.type for e in result.events][-1] == "error"
        return
    assert result.ok, result.error
    assert result.response.text == expect["answer"]
    (completed,) = [e for e in result.events if e.type == "turn.completed"]
    assert completed.usage == expect["usage"], "the cost line and the usage event agree with the provider"


# -- what the reader notices (the doctor lists it) -------------------------------------------------

QUIRKS = {
    "ollama-0.4-no-index": ["tool-call fragments without index", "finish_reason stop after tool calls"],
    "ollama-0.20-same-index": ["parallel calls sharing one index", "a whole call in one fragment"],
    "vllm-glm-restate": [
        "the last fragment restates id and name",
        "usage on 6 chunks (cumulative: the last one counts)",
    ],
    "llamacpp": [
        "reasoning_content (the model's thinking, not shown as the answer)",
        "arguments begin in the first (header) fragment",
    ],
    "lmstudio": ["empty name on later fragments"],
    "vllm-glm-remaining-args": ["the whole call sent again after it was complete"],
    "litellm-summary-chunk": ["the whole call sent again after it was complete"],
    "litellm-new-id": ["a new id on every fragment of one call"],
    "groq": ["usage reported twice (usage and x_groq.usage)", "a whole call in one fragment"],
    "mistral": ["tool-call fragments without index", "tool-call header without type"],
    "xai": [
        "tool-call fragments without index",
        "total_tokens is not prompt + completion",
        "usage on 3 chunks (cumulative: the last one counts)",
    ],
    "dashscope": ["empty id on later fragments"],
    "azure-openai": ["chunks with no choices (choices: [])", "extra fields (prompt_filter_results)"],
    "openai": [],
}


@pytest.mark.parametrize("name", sorted(QUIRKS))
def test_the_reader_names_the_quirks_each_provider_showed(name):
    completion = read_all(load(name).chunks(0))
    assert all(q in completion.quirks for q in QUIRKS[name]), completion.quirks
    if not QUIRKS[name]:
        assert completion.quirks == []


def test_finish_reason_and_usage_on_one_chunk_and_cumulative_usage_are_counted_once():
    mistral = read_all(load("mistral").chunks(0))
    assert mistral.finish_reason == "tool_calls" and mistral.usage == {
        "prompt_tokens": 881,
        "completion_tokens": 65,
        "total_tokens": 946,
    }
    vllm = read_all(load("vllm-glm-restate").chunks(0))
    assert vllm.usage == {"prompt_tokens": 611, "completion_tokens": 30, "total_tokens": 641}
    assert [c.name for c in vllm.calls] == ["psql"], "the restated name is not appended (no 'psqlpsql')"


# -- variations every server may show ---------------------------------------------------------------


def _with_events(fixture: Fixture, reply: int, events: list[str]) -> list[RawReply]:
    steps = fixture.steps()
    steps[reply] = RawReply(tuple(events))
    return steps


@pytest.mark.parametrize("finish", ["stop", "eos", None, "missing"])
def test_a_tool_call_is_run_whatever_finish_reason_follows_it(replay, finish):
    fixture = load("openai")
    events = []
    for event in fixture.replies[0]:
        if '"finish_reason":"tool_calls"' in event:
            if finish == "missing":
                event = event.replace(',"finish_reason":"tool_calls"', "")
            else:
                event = event.replace('"finish_reason":"tool_calls"', f'"finish_reason":{json.dumps(finish)}')
        events.append(event)
    assistant = replay(_with_events(fixture, 0, events))
    result = assistant.ask("tiers and projects")
    check_frames_are_the_models_queries(assistant, result, fixture.expect["sql"])
    assert result.ok and result.response.text == fixture.expect["answer"]
    assert strict_problems(assistant.server.requests[1]) == []


def test_keep_alive_comments_and_a_stream_without_done_change_nothing(replay):
    fixture = load("openai")
    steps = [
        RawReply(tuple(e for ev in events if ev != "data: [DONE]" for e in (": keep-alive", ev)))
        for events in fixture.replies
    ]
    assistant = replay(steps)
    result = assistant.ask("tiers and projects")
    check_frames_are_the_models_queries(assistant, result, fixture.expect["sql"])
    assert result.response.text == fixture.expect["answer"] and result.usage == fixture.expect["usage"]


def test_a_server_that_ignores_stream_options_reports_no_usage_rather_than_a_made_up_one(replay):
    fixture = load("ollama-0.4-no-index")
    assistant = replay(fixture.steps())
    result = assistant.ask("projects?")
    assert assistant.server.requests[0]["stream_options"] == {"include_usage": True}
    assert result.ok and result.usage == {}
    (completed,) = [e for e in result.events if e.type == "turn.completed"]
    assert not completed.usage


# -- bad input and faults ----------------------------------------------------------------------------


def chunk(delta: dict, finish: str | None = None, **extra) -> str:
    body = {
        "id": "chatcmpl-t",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return "data: " + json.dumps(body, separators=(",", ":"))


def call_fragment(index: int, arguments: str, *, call_id: str | None = None, name: str | None = None) -> dict:
    fragment: dict = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        fragment.update(id=call_id, type="function")
        fragment["function"]["name"] = name
    return fragment


ANSWER = RawReply((chunk({"role": "assistant", "content": "Done."}), chunk({}, "stop"), "data: [DONE]"))


def test_twenty_parallel_calls_all_run_and_each_is_answered(replay):
    sqls = [f"SELECT {n} AS n" for n in range(20)]
    events = [chunk({"role": "assistant", "content": None})]
    for n, sql in enumerate(sqls):
        events.append(chunk({"tool_calls": [call_fragment(n, "", call_id=f"call_{n:02d}x", name="psql")]}))
        args = json.dumps({"sql": sql})
        events += [
            chunk({"tool_calls": [call_fragment(n, args[:7])]}),
            chunk({"tool_calls": [call_fragment(n, args[7:])]}),
        ]
    events += [chunk({}, "tool_calls"), "data: [DONE]"]
    assistant = replay([RawReply(tuple(events)), ANSWER])
    result = assistant.ask("twenty numbers")
    assert result.ok and result.response.text == "Done."
    check_frames_are_the_models_queries(assistant, result, sqls)
    follow_up = assistant.server.requests[1]
    assert strict_problems(follow_up) == []
    assert sum(m["role"] == "tool" for m in follow_up["messages"]) == 20


def test_arguments_that_never_close_are_a_tool_error_and_never_sent_back(replay):
    events = (
        chunk({"role": "assistant", "content": None}),
        chunk(
            {"tool_calls": [call_fragment(0, '{"sql": "SELECT count(*) FROM proj', call_id="call_cut", name="psql")]}
        ),
        chunk({}, "tool_calls"),
        "data: [DONE]",
    )
    assistant = replay([RawReply(events), ANSWER])
    result = assistant.ask("projects?")
    assert result.ok and result.response.text == "Done."
    assert [s.status for s in result.steps] == ["failed"] and not result.frames, "nothing ran"
    follow_up = assistant.server.requests[1]
    assert strict_problems(follow_up) == []
    (tool,) = [m for m in follow_up["messages"] if m["role"] == "tool"]
    assert "not valid JSON" in json.loads(tool["content"])["error"]
    assert 'FROM proj"' not in json.dumps(follow_up), "the broken arguments are not re-sent"


def test_a_stream_cut_mid_call_fails_the_turn_with_a_sentence_and_runs_nothing(replay):
    events = (
        chunk({"role": "assistant", "content": None}),
        chunk({"tool_calls": [call_fragment(0, '{"sql": "SELECT', call_id="call_cut", name="psql")]}),
    )
    assistant = replay([RawReply(events, drop=True), text("unused")])
    result = assistant.ask("projects?")
    assert not result.ok and not result.steps
    assert "dropped mid-answer" in result.error and "ask again" in result.error
    assert assistant.ask("again").response.text == "unused", "the thread goes on"


@pytest.mark.parametrize("given", ["PSQL", " psql ", "Psql\n"])
def test_a_tool_name_in_another_case_or_with_spaces_runs_that_tool(replay, given):
    events = (
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": given, "arguments": '{"sql":"SELECT 1 AS one"}'},
                    }
                ]
            },
            "tool_calls",
        ),
        "data: [DONE]",
    )
    assistant = replay([RawReply(events), ANSWER])
    result = assistant.ask("one")
    check_frames_are_the_models_queries(assistant, result, ["SELECT 1 AS one"])
    assert strict_problems(assistant.server.requests[1]) == []


def test_an_unknown_tool_is_told_to_the_model_with_the_tool_list_and_not_sent_as_a_call(replay):
    events = (
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_x",
                        "type": "function",
                        "function": {"name": "run_sql", "arguments": '{"query":"SELECT 1"}'},
                    }
                ]
            },
            "tool_calls",
        ),
        "data: [DONE]",
    )
    assistant = replay([RawReply(events), ANSWER])
    result = assistant.ask("one")
    assert result.ok and result.response.text == "Done." and not result.frames
    follow_up = assistant.server.requests[1]
    assert strict_problems(follow_up) == []
    note = follow_up["messages"][-1]
    assert note["role"] == "system" and "'run_sql'" in note["content"] and "psql, read_file" in note["content"]


def test_a_stream_with_no_text_and_no_call_is_a_failed_turn_naming_the_model(replay):
    empty = RawReply((chunk({"role": "assistant", "content": ""}), chunk({}, "stop"), "data: [DONE]"))
    assistant = replay([empty])
    result = assistant.ask("anything")
    assert not result.ok and result.response is None
    assert "scripted" not in result.error and assistant.model in result.error
    assert "no text and no tool call" in result.error and "finish_reason 'stop'" in result.error
    kinds = [e.type for e in result.events]
    assert kinds[-1] == "error" and "turn.completed" not in kinds and kinds.count("error") == 1


def test_reasoning_alone_is_never_the_answer(replay):
    thinking = RawReply(
        (
            chunk({"role": "assistant", "content": None, "reasoning_content": "Let me think about the tiers"}),
            chunk({"content": None, "reasoning_content": " very carefully."}),
            chunk({}, "stop"),
            "data: [DONE]",
        )
    )
    assistant = replay([thinking])
    result = assistant.ask("tiers?")
    assert not result.ok and "thinking" in result.error
    shown = json.dumps([e.to_dict() for e in result.events])
    assert "very carefully" not in shown


def test_a_429_with_retry_after_is_retried_as_told_then_one_clear_sentence(replay):
    limited = RawReply(
        status=429,
        headers={"Retry-After": "1"},
        body={
            "error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}
        },
    )
    assistant = replay([limited, limited, limited], retries=2)
    result = assistant.ask("tiers?")
    assert len(assistant.server.requests) == 3, "the client retried twice, as configured"
    assert not result.ok
    assert "429" in result.error and "Rate limit reached" in result.error
    assert "3 tries" in result.error and "wait 1 second before asking again" in result.error


def test_a_429_asking_to_wait_longer_than_the_client_retries_is_not_retried_and_says_how_long(replay):
    limited = RawReply(
        status=429,
        headers={"Retry-After": "3600"},
        body={"error": {"message": "Rate limit reached for tokens per day", "type": "tokens"}},
    )
    assistant = replay([limited, limited, limited], retries=2)
    result = assistant.ask("tiers?")
    assert len(assistant.server.requests) == 1, "the client read Retry-After and did not retry"
    assert "1 try did not get through" in result.error and "wait 3600 seconds" in result.error


def test_an_error_chunk_mid_answer_fails_the_turn_with_the_providers_words(replay):
    fixture = load("openrouter-error")
    assistant = replay([fixture.steps()[1], text("later")])
    result = assistant.ask("how many?")
    assert not result.ok and "Provider disconnected unexpectedly" in result.error
    assert assistant.ask("again").response.text == "later"


def test_garbage_in_a_data_event_is_a_clear_failure(replay):
    assistant = replay([RawReply(("data: {not json", "data: [DONE]"))])
    result = assistant.ask("hi")
    assert not result.ok and "not JSON" in result.error and assistant.model in result.error


# -- the reader alone: assembly rules --------------------------------------------------------------


def test_fragments_without_index_follow_their_call_and_each_new_named_call_starts_one():
    reader = StreamReader()
    reader.feed(
        {"choices": [{"delta": {"tool_calls": [{"id": "a", "function": {"name": "psql", "arguments": '{"sql":'}}]}}]}
    )
    reader.feed({"choices": [{"delta": {"tool_calls": [{"function": {"arguments": '"SELECT 1"}'}}]}}]})
    reader.feed(
        {"choices": [{"delta": {"tool_calls": [{"id": "b", "function": {"name": "read_file", "arguments": "{}"}}]}}]}
    )
    calls = reader.finish().calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("a", "psql", '{"sql":"SELECT 1"}'),
        ("b", "read_file", "{}"),
    ]


# -- secrets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("placeholder", ["ollama", "EMPTY", "x", "lm-studio"])
def test_a_placeholder_key_leaves_the_providers_error_readable(placeholder):
    message = f"model 'llama3' not found, try pulling it first (ollama pull llama3); key {placeholder}; EMPTY x"
    assert mask_api_key(message, placeholder) == message


def test_a_real_key_is_masked_wherever_it_stands_as_a_whole_token():
    message = f"Incorrect API key provided: {API_KEY}. Bearer {API_KEY}, key={API_KEY}"
    assert mask_api_key(message, API_KEY) == "Incorrect API key provided: ***. Bearer ***, key=***"
    assert mask_api_key(f"x{API_KEY}y", API_KEY) == f"x{API_KEY}y", "only as a whole token"


def test_an_error_from_a_local_server_with_a_placeholder_key_reaches_the_person_intact(replay):
    refused = RawReply(
        status=404,
        body={"error": {"message": 'model "ollama-llama3" not found, try pulling it first', "type": "api_error"}},
    )
    assistant = replay([refused], api_key="ollama")
    result = assistant.ask("hi")
    assert 'model "ollama-llama3" not found' in result.error and "***" not in result.error


def test_a_real_key_in_an_error_never_reaches_the_person(replay):
    refused = RawReply(status=400, body={"error": {"message": f"bad request from key {API_KEY}", "type": "x"}})
    assistant = replay([refused])
    result = assistant.ask("hi")
    assert API_KEY not in result.error and "bad request from key ***" in result.error


# -- through the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("name", names())
def test_nexus_lab_ask_json_with_recorded_streams(db, tmp_path, name):
    fixture = load(name)
    expect = fixture.expect
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    with ModelServer(Script(fixture.steps())) as server:
        env.update(
            NEXUS_HOME=str(db.embedded.pgdata.parent),
            NEXUS_USER="cli-user",
            NEXUS_ORG="acme-analytics",
            OPENAI_BASE_URL=server.base_url,
            OPENAI_API_KEY=API_KEY,
            NEXUS_MODEL="recorded-model",
        )
        proc = subprocess.run(
            [sys.executable, "-m", "nexusleads_lab.cli", "ask", "--json", "tiers and projects?"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=tmp_path,
        )
        requests = server.requests
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    actions = [e for e in events if e["type"] == "agent.action"]
    assert [e["command"] for e in actions if e["status"] == "started"] == expect["sql"]
    assert sorted(e["command"] for e in actions if e["status"] == "completed") == sorted(expect["sql"])
    assert strict_problems(requests[1]) == []
    if "error" in expect:  # the provider's error inside its 200 stream: a failed turn in its words, exit 1
        assert proc.returncode == 1, proc.stderr
        assert events[-1]["type"] == "error" and expect["error"] in events[-1]["message"]
        return
    assert proc.returncode == 0, proc.stderr
    (completed,) = [e for e in events if e["type"] == "turn.completed"]
    assert completed["usage"] == expect["usage"]
    assert completed["response"]["text"] == expect["answer"]


def test_finish_reason_error_without_an_error_object_is_a_failed_turn_not_an_answer(replay):
    broken = RawReply((chunk({"role": "assistant", "content": "Half an ans"}), chunk({}, "error"), "data: [DONE]"))
    assistant = replay([broken])
    result = assistant.ask("tiers?")
    assert not result.ok and result.response is None
    assert "finish_reason 'error'" in result.error and assistant.model in result.error


def test_arguments_sent_as_an_object_are_encoded_and_run():
    completion = read_all(
        [
            {
                "choices": [
                    {
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "c1",
                                    "type": "function",
                                    "function": {"name": "psql", "arguments": {"sql": "SELECT 1"}},
                                }
                            ]
                        }
                    }
                ]
            }
        ]
    )
    assert [(c.name, json.loads(c.arguments)) for c in completion.calls] == [("psql", {"sql": "SELECT 1"})]
    assert "arguments sent as a JSON object, not a string" in completion.quirks


def test_the_strict_check_refuses_what_the_old_reader_sent():
    # What Ollama 0.20's same-index calls used to become: one merged call, answered once.
    merged = {
        "id": "call_a",
        "type": "function",
        "function": {"name": "psqlpsql", "arguments": '{"sql":"SELECT 1"}{"sql":"SELECT 2"}'},
    }
    request = {
        "tools": [{"type": "function", "function": {"name": "psql"}}],
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": None, "tool_calls": [merged]},
            {"role": "system", "content": "a note too early"},
            {"role": "tool", "tool_call_id": "call_a"},
        ],
    }
    problems = strict_problems(request)
    assert any("'psqlpsql', not in the tool list" in p for p in problems)
    assert any("not a JSON object" in p for p in problems)
    assert any("a system message before calls" in p for p in problems)
