"""The real Codex CLI (``@openai/codex``, pinned in the Makefile) drives ``nexus-lab mcp`` in
``codex exec`` with ``approval_policy = "never"`` and a read-only sandbox, its model played by a
scripted loopback Responses API. It reads real rows, is refused a DELETE, records a proposal, and
every attempt of the agent to confirm it (through the tools, or through its shell with
``nexus-lab confirm``) changes nothing; the person's ``nexus-lab confirm <id>`` then changes
exactly the rows shown."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from codex_stub import ResponsesStub, function_call, message, outputs
from mcp_clients import NEXUS_LAB, database_state, server_env

ROOT = Path(__file__).resolve().parents[1]
CODEX = Path(os.environ.get("NEXUS_CODEX") or ROOT / ".venv/codex/node_modules/.bin/codex")
ORG = "acme-analytics"
READ = "SELECT id, status FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 3"
NS = "mcp__nexus"
RAW_WRITE = (
    "import os, psycopg; c = psycopg.connect(os.environ['WRITER_URL'], autocommit=True); "
    "print(c.execute('UPDATE lead_scores SET score = 0').rowcount, 'rows written')"
)

if not CODEX.exists():
    if os.environ.get("NEXUS_REQUIRE_CODEX") == "1":
        raise RuntimeError(f"NEXUS_REQUIRE_CODEX=1 but the Codex CLI is not at {CODEX}: run `make codex` (needs npm).")
    pytest.skip(
        f"the Codex CLI is not installed at {CODEX}: `make codex` installs it (needs Node.js and npm)",
        allow_module_level=True,
    )


def agent(conversation: list[dict]) -> list[dict]:
    """The scripted model: each step looks at what the earlier tool calls returned."""
    seen = outputs(conversation)
    if "read" not in seen:
        return [function_call("read", "psql", {"sql": READ}, NS)]
    if "delete" not in seen:
        return [function_call("delete", "psql", {"sql": "DELETE FROM lead_scores"}, NS)]
    if "propose" not in seen:
        ids = [row["id"] for row in json.loads(seen["read"][seen["read"].index("{") :])["rows"]]
        sql = f"UPDATE lead_scores SET status = 'contacted' WHERE id IN ({', '.join(map(str, ids))})"
        return [function_call("propose", "propose_write", {"sql": sql, "title": "Mark contacted"}, NS)]
    pid = re.search(r"c_[A-Za-z0-9_-]{20,}", seen["propose"]).group(0)
    attempts = [
        ("tool-psql", "psql", {"sql": f"nexus-lab confirm {pid}"}, NS),
        ("tool-propose", "propose_write", {"sql": f"CONFIRM_ACTION: {pid}"}, NS),
        ("shell", "exec_command", {"cmd": f"{NEXUS_LAB} confirm {pid}"}, None),
        # past the speed bump: only the sandbox (no socket to the database) stands in the way
        (
            "shell-unmarked",
            "exec_command",
            {"cmd": f"env -u CODEX_TOOL_CALL_ID -u CODEX_THREAD_ID {NEXUS_LAB} confirm {pid}"},
            None,
        ),
        # past the product altogether: the writer role's own connection, as the agent's shell sees it
        ("shell-raw", "exec_command", {"cmd": f"{sys.executable} -c {shlex.quote(RAW_WRITE)}"}, None),
        (
            "shell-escalated",
            "exec_command",
            {
                "cmd": f"{NEXUS_LAB} confirm {pid}",
                "sandbox_permissions": "require_escalated",
                "justification": "confirm the write",
            },
            None,
        ),
    ]
    for call_id, name, arguments, namespace in attempts:
        if call_id not in seen:
            return [function_call(call_id, name, arguments, namespace)]
    return [message(f"Proposed {pid}; a person confirms it with nexus-lab confirm {pid}.")]


def codex_config(db, stub: ResponsesStub) -> str:
    env = server_env(db, NEXUS_ORG=ORG, NEXUS_USER="codex-user")
    mcp_env = ", ".join(f'{k} = "{env[k]}"' for k in ("NEXUS_HOME", "NEXUS_ORG", "NEXUS_USER"))
    return f"""
model = "scripted"
model_provider = "stub"
approval_policy = "never"
sandbox_mode = "read-only"

[model_providers.stub]
name = "loopback stub"
base_url = "{stub.base_url}"
env_key = "STUB_API_KEY"
wire_api = "responses"

[mcp_servers.nexus]
command = "{NEXUS_LAB}"
args = ["mcp"]
env = {{ {mcp_env} }}
startup_timeout_sec = 120
required = true

[mcp_servers.nexus.tools.propose_write]
approval_mode = "approve"
"""


@pytest.mark.slow
def test_codex_reads_is_refused_a_delete_proposes_and_only_the_person_confirms(db, tmp_path):
    ids = db.engine_for(ORG).read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 3").df["id"]
    ids = ids.tolist()
    home = tmp_path / "codex-home"
    home.mkdir()
    before = database_state(db)
    with ResponsesStub(agent) as stub:
        (home / "config.toml").write_text(codex_config(db, stub))
        # The agent's shell would reach the same database as the person: same environment.
        env = {
            **server_env(db, NEXUS_ORG=ORG, NEXUS_USER="codex-user"),
            "CODEX_HOME": str(home),
            "STUB_API_KEY": "not-a-real-key",
            "WRITER_URL": db.engine_for(ORG).writer_url,
        }
        proc = subprocess.run(
            [
                str(CODEX),
                "exec",
                "--skip-git-repo-check",
                "-C",
                str(tmp_path),
                "Mark the three newest leads contacted.",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = outputs(stub.requests[-1]["input"])
    tools = {t.get("name"): t for t in stub.requests[0]["tools"]}
    assert {t["name"] for t in tools[NS]["tools"]} == {"psql", "propose_write", "show_dashboard"}

    # The model saw the real rows, and was refused the DELETE with the read path's message.
    read = json.loads(seen["read"][seen["read"].index("{") :])
    assert [row["id"] for row in read["rows"]] == ids and {row["status"] for row in read["rows"]} == {"new"}
    assert "DELETE is not allowed on the read path" in seen["delete"]
    pid = re.search(r"c_[A-Za-z0-9_-]{20,}", seen["propose"]).group(0)
    assert f"nexus-lab confirm {pid}" in seen["propose"] and '"dry_run_rows":3' in seen["propose"].replace(" ", "")
    assert f"Proposed {pid}" in proc.stdout

    # Every attempt of the agent to confirm changed nothing, and left the id usable.
    refused = subprocess.run(
        [NEXUS_LAB, "sql", f"nexus-lab confirm {pid}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(db, NEXUS_ORG=ORG),
    ).stderr
    assert refused.removeprefix("nexus-lab: ").strip() in json.loads(seen["tool-psql"])[-1]["text"]
    assert "Nothing was proposed" in seen["tool-propose"]
    assert "Refusing to confirm from an agent's shell (CODEX_TOOL_CALL_ID is set)" in seen["shell"]
    assert "Process exited with code 1" in seen["shell-unmarked"], seen["shell-unmarked"][-2000:]
    assert "rows affected" not in seen["shell-unmarked"]
    assert "Operation not permitted" in seen["shell-raw"] and "rows written" not in seen["shell-raw"]
    assert "approval policy is Never" in seen["shell-escalated"]
    assert database_state(db) == before

    # The person confirms: exactly the rows shown change, once.
    confirmed = subprocess.run(
        [NEXUS_LAB, "confirm", "--json", pid],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(db, NEXUS_ORG=ORG, NEXUS_USER="codex-user"),
    )
    assert json.loads(confirmed.stdout) == {"id": pid, "status": "confirmed", "rows_affected": 3, "error": None}
    now = db.engine_for(ORG).read(f"SELECT id, status FROM lead_scores WHERE id IN ({', '.join(map(str, ids))})").df
    assert sorted(now["id"].tolist()) == ids and set(now["status"]) == {"contacted"}
    after = database_state(db)
    assert {k for k in before if before[k] != after[k]} == {"lead_scores"}
