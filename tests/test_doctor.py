"""`nexus-lab doctor`, run as a user runs it, against recorded servers on the loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from provider_streams import load

from nexusleads_lab.testing.modelserver import ModelServer, RawReply, Script

API_KEY = "sk-proj-ZG9jdG9yLWNoZWNrcy10aGUta2V5LTEyMzQ1Ng"


@pytest.fixture()
def doctor(db, tmp_path):
    def run(
        *args: str,
        server: ModelServer | None = None,
        base_url: str | None = None,
        model: str = "probe-model",
        env_extra: dict | None = None,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
        env.update(NEXUS_HOME=str(db.embedded.pgdata.parent), NEXUS_USER="doc", NEXUS_ORG="acme-analytics")
        if server is not None or base_url is not None:
            env.update(OPENAI_BASE_URL=base_url or server.base_url, OPENAI_API_KEY=API_KEY, NEXUS_MODEL=model)
        env.update(env_extra or {})
        return subprocess.run(
            [sys.executable, "-m", "nexusleads_lab.cli", "doctor", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=tmp_path,
        )

    return run


def test_a_good_server_is_usable_and_every_check_says_yes(doctor):
    with ModelServer(Script(load("openai").steps()[:1])) as server:
        proc = doctor("--json", server=server)
        (request,) = server.requests
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    check = report["server"]
    assert report["usable"] and report["problems"] == [] and report["database"]["ok"]
    assert "acme-analytics" in report["database"]["scope"] and "projects visible" in report["database"]["scope"]
    assert (
        check["answers"],
        check["streams"],
        check["calls_tools"],
        check["parallel_calls"],
        check["reports_usage"],
    ) == (True, True, True, True, True)
    assert check["usage"] == {"prompt_tokens": 812, "completion_tokens": 61, "total_tokens": 873}
    assert check["quirks"] == []
    assert request["stream"] is True and [t["function"]["name"] for t in request["tools"]] == ["psql", "read_file"]
    assert request["model"] == "probe-model"


def test_a_quirky_server_is_usable_and_its_quirks_are_named(doctor):
    with ModelServer(Script(load("ollama-0.20-same-index").steps()[:1])) as server:
        proc = doctor(server=server)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "in parallel   yes (2 calls in one answer)" in proc.stdout
    assert "parallel calls sharing one index" in proc.stdout and "verdict       usable" in proc.stdout
    with ModelServer(Script(load("ollama-0.4-no-index").steps()[:1])) as server:
        report = json.loads(doctor("--json", server=server).stdout)
    check = report["server"]
    assert report["usable"] and check["calls_tools"] and not check["parallel_calls"] and not check["reports_usage"]
    assert "tool-call fragments without index" in check["quirks"]


def test_a_server_that_never_calls_tools_is_not_usable_and_says_why(doctor):
    chatty = RawReply(
        (
            'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant",'
            '"content":"I cannot run SQL, but SELECT 1 returns 1."},"finish_reason":null}]}',
            'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
            "data: [DONE]",
        )
    )
    with ModelServer(Script([chatty])) as server:
        proc = doctor(server=server)
    assert proc.returncode == 1
    assert "calls tools   no" in proc.stdout and "did not call the psql tool" in proc.stdout
    assert "tool calling" in proc.stdout and "probe-model" in proc.stdout


def test_a_server_that_is_down_is_not_usable_and_the_key_is_not_shown(doctor):
    server = ModelServer(Script([]))
    url = server.base_url
    server.close()
    proc = doctor("--json", base_url=url)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["server"]["answers"] is False and report["database"]["ok"]
    assert report["problems"] == [
        f"Nothing answers at {url}: start the model server, or check OPENAI_BASE_URL (host, port, /v1)."
    ]
    assert API_KEY not in proc.stdout + proc.stderr


def test_without_a_model_configured_doctor_says_what_to_set(doctor):
    proc = doctor()
    assert proc.returncode == 1
    assert "model         not configured" in proc.stdout and "Set OPENAI_API_KEY" in proc.stdout


def test_a_database_that_cannot_be_reached_is_not_usable_and_its_password_is_not_shown(doctor):
    with ModelServer(Script(load("openai").steps()[:1])) as server:
        proc = doctor(
            "--json", server=server, env_extra={"DATABASE_URL": "postgresql://plg:doctor-SECRET-pw@127.0.0.1:1/plg"}
        )
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert not report["database"]["ok"] and report["server"]["calls_tools"], "the model server is still checked"
    assert report["problems"][0].startswith("The database cannot be read")
    assert "doctor-SECRET-pw" not in proc.stdout + proc.stderr


def test_a_server_that_ignores_stream_true_is_not_usable(doctor):
    whole = {
        "id": "c",
        "object": "chat.completion",
        "model": "probe-model",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "psql", "arguments": '{"sql": "SELECT 1 AS one"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102},
    }
    with ModelServer(Script([RawReply(body=whole)])) as server:
        proc = doctor(server=server)
    assert proc.returncode == 1
    assert "streams       no (0 chunks)" in proc.stdout and "not as a stream of events" in proc.stdout
