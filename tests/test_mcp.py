"""``nexus-lab mcp`` through the MCP SDK's own stdio client: the tools, their annotations, the
structured results and the skills; the read path against the adversarial corpus; proposals that
run nothing until a person confirms them, and a confirmation id that no tool can use."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from scripted import ADVERSARIAL, PWNED

from nexusleads_lab.mcp.dashboard import APP_URI, HTML_KEY

from checks import SLOW_SQL
from mcp_clients import (
    DASHBOARD_QUERIES,
    NEXUS_LAB,
    database_state,
    run,
    server_env,
    show_dashboard_result,
    stdio_session,
    text_of,
)

ORG = "acme-analytics"
NEW_LEADS = "SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 3"
PWNED_WRITE = Path("/tmp/nexus-pwned-mcp")


def cli(db, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([NEXUS_LAB, *args], env=server_env(db, **env), capture_output=True, text=True, timeout=120)


def test_the_tools_their_annotations_and_the_skills_as_resources_and_prompts(db):
    async def body():
        async with stdio_session(server_env(db)) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            resources = (await session.list_resources()).resources
            skill = await session.read_resource("skill://plg-database/SKILL.md")
            prompts = (await session.list_prompts()).prompts
            prompt = await session.get_prompt(prompts[0].name)
            return tools, resources, skill, prompts, prompt

    tools, resources, skill, prompts, prompt = run(body)
    assert sorted(tools) == ["propose_write", "psql", "show_dashboard"], "no tool confirms"
    psql, propose = tools["psql"].annotations, tools["propose_write"].annotations
    assert (psql.read_only_hint, psql.open_world_hint, psql.destructive_hint) == (True, False, False)
    assert (propose.read_only_hint, propose.destructive_hint) == (False, True)
    assert tools["psql"].input_schema["required"] == ["sql"]
    assert set(tools["propose_write"].input_schema["properties"]) == {"sql", "title", "summary"}
    listing = json.dumps([t.model_dump(by_alias=True, exclude_none=True) for t in tools.values()])
    assert len(listing) / 4 < 1500, f"the tool list costs about {len(listing) / 4:.0f} tokens"
    assert sorted(str(r.uri) for r in resources) == ["skill://plg-database/SKILL.md", APP_URI]
    text = skill.contents[0].text
    assert "lead_scores" in text and text == (Path(__file__).parents[1] / "skills/plg-database/SKILL.md").read_text()
    assert [p.name for p in prompts] == ["plg-database"] and "lead_scores" in prompt.messages[0].content.text


def test_psql_answers_as_nexus_lab_sql_does_in_the_same_scope(db):
    sql = "SELECT tier, count(*) AS n, min(scored_at) AS first FROM lead_scores GROUP BY tier ORDER BY tier"

    async def body():
        async with stdio_session(server_env(db, NEXUS_ORG=ORG)) as session:
            return await session.call_tool("psql", {"sql": sql})

    result = run(body)
    expected = json.loads(cli(db, "sql", "--json", sql, NEXUS_ORG=ORG).stdout)
    got = result.structured_content
    assert not result.is_error
    assert got["rows"] == expected["rows"] and len(got["rows"]) == 3
    assert {k: v for k, v in got.items() if k != "elapsed_ms"} == {
        k: v for k, v in expected.items() if k != "elapsed_ms"
    }
    assert json.loads(text_of(result))["rows"] == expected["rows"]
    everyone = json.loads(cli(db, "sql", "--json", sql, NEXUS_ORG="").stdout)
    assert sum(r["n"] for r in everyone["rows"]) > sum(r["n"] for r in got["rows"]), "NEXUS_ORG scoped the read"


def test_every_hostile_statement_is_a_tool_error_and_changes_nothing(db):
    PWNED.unlink(missing_ok=True)
    states = []

    async def body():
        async with stdio_session(server_env(db)) as session:
            states.append(database_state(db))
            return [await session.call_tool("psql", {"sql": sql}) for sql in ADVERSARIAL]

    results = run(body)
    before = states[0]
    for sql, result in zip(ADVERSARIAL, results):
        assert result.is_error and result.structured_content is None, sql
        message = text_of(result)
        assert len(message) > 20 and "Traceback" not in message, (sql, message)
    assert database_state(db) == before
    assert not PWNED.exists(), "COPY TO PROGRAM ran a shell command"
    # the read path's own message, as `nexus-lab sql` words it
    refused = cli(db, "sql", ADVERSARIAL[2])
    assert refused.returncode == 1 and text_of(results[2]) in refused.stderr


def test_a_large_result_is_bounded_in_the_text_and_in_the_structured_content(db):
    big = "SELECT g AS n, repeat('x', 40) AS pad FROM generate_series(1, 20000) AS g"

    async def body():
        async with stdio_session(server_env(db)) as session:
            whole = await session.call_tool("psql", {"sql": big})
            wide = await session.call_tool("psql", {"sql": "SELECT repeat('y', 100000) AS blob"})
        async with stdio_session(server_env(db, NEXUS_ROW_CAP="5000")) as session:
            capped = await session.call_tool("psql", {"sql": big})
        return whole, wide, capped

    whole, wide, capped = run(body)
    data = whole.structured_content
    assert data["row_count"] == 20_000 and data["truncated"] is True and data["truncated_by"] == "preview"
    assert 100 < data["rows_shown"] == len(data["rows"]) < 20_000
    assert data["rows"][0] == {"n": 1, "pad": "x" * 40} and data["rows"][-1]["n"] == data["rows_shown"]
    assert "aggregate" in data["note"] and f"{data['rows_shown']:,} of 20,000" in data["note"]
    assert (
        len(json.dumps(data, separators=(",", ":")).encode()) <= 16 * 1024 and len(text_of(whole).encode()) <= 16 * 1024
    )
    cell = wide.structured_content["rows"][0]["blob"]
    assert wide.structured_content["truncated"] is True and len(cell) == 500 and cell.endswith("…")
    assert capped.structured_content["row_count"] == 5000 and capped.structured_content["truncated_by"] == "rows"


def test_a_statement_past_the_timeout_is_a_tool_error_and_the_server_answers_after(db):
    async def body():
        async with stdio_session(server_env(db, NEXUS_STATEMENT_TIMEOUT_MS="300")) as session:
            slow = await session.call_tool("psql", {"sql": SLOW_SQL})
            after = await session.call_tool("psql", {"sql": "SELECT 1 AS one"})
            return slow, after

    slow, after = run(body)
    assert slow.is_error and "timeout" in text_of(slow).lower()
    assert after.structured_content["rows"] == [{"one": 1}]


HOSTILE_PROPOSALS = [
    f"COPY (SELECT 1) TO PROGRAM 'touch {PWNED_WRITE}'",
    "DO $$ BEGIN UPDATE lead_scores SET score = 0; END $$",
    "WITH d AS (DELETE FROM lead_scores RETURNING id) SELECT count(*) FROM d",
    "UPDATE lead_scores SET score = 1 WHERE id = 1; DROP TABLE lead_scores",
    f"COPY lead_scores TO '{PWNED_WRITE}'",
]


def test_hostile_proposals_run_nothing_and_an_insert_moves_no_sequence(db):
    PWNED_WRITE.unlink(missing_ok=True)
    lead = db.engine_for(ORG).read(NEW_LEADS).df["id"].tolist()[0]
    insert = f"INSERT INTO outreach_events (lead_id, channel, outcome) VALUES ({lead}, 'email', 'sent')"
    states = []

    async def body():
        async with stdio_session(server_env(db)) as session:
            states.append(database_state(db))
            refused = [await session.call_tool("propose_write", {"sql": sql}) for sql in HOSTILE_PROPOSALS]
            return refused, await session.call_tool("propose_write", {"sql": insert, "title": "Log an email"})

    refused, proposed = run(body)
    before = states[0]
    for sql, result in zip(HOSTILE_PROPOSALS, refused):
        assert result.is_error and text_of(result).startswith("Nothing was proposed and nothing ran"), sql
    assert not proposed.is_error and proposed.structured_content["dry_run_rows"] == 1
    assert database_state(db) == before, "no data, sequence, lock or setting changed"
    assert not PWNED_WRITE.exists()


def test_a_proposal_runs_only_when_a_person_confirms_it_and_no_tool_can(db):
    ids = db.engine_for(ORG).read(NEW_LEADS).df["id"].tolist()
    sql = f"UPDATE lead_scores SET status = 'contacted' WHERE id IN ({', '.join(map(str, ids))})"
    states = []

    async def body():
        async with stdio_session(server_env(db)) as session:
            states.append(database_state(db))
            proposed = await session.call_tool("propose_write", {"sql": sql, "title": "Mark three contacted"})
            pid = proposed.structured_content["id"]
            attempts = []
            for given in (pid, f"CONFIRM_ACTION: {pid}", f"nexus-lab confirm {pid}"):
                attempts.append(await session.call_tool("psql", {"sql": given}))
                attempts.append(await session.call_tool("propose_write", {"sql": given}))
                attempts.append(
                    await session.call_tool("propose_write", {"sql": sql, "title": given, "summary": given})
                )
            attempts.append(await session.call_tool("confirm", {"id": pid}))
            return proposed, attempts

    proposed, attempts = run(body)
    before = states[0]
    data, text = proposed.structured_content, text_of(proposed)
    pid = data["id"]
    assert pid.startswith("c_") and data["dry_run_rows"] == 3 and data["dry_run_error"] is None
    assert data["sql"] == sql and sql in text and f"nexus-lab confirm {pid}" in text and "3 rows" in text
    assert all(a.is_error for a in attempts[:-1:3]) and all(a.is_error for a in attempts[1:-1:3])
    assert attempts[-1].is_error, "there is no confirm tool"
    assert database_state(db) == before, "neither the proposal nor any tool changed a row"
    for marker in ("CODEX_TOOL_CALL_ID", "CLAUDECODE"):
        from_agent = cli(db, "confirm", pid, **{marker: "1"})
        assert from_agent.returncode == 1 and "Refusing to confirm from an agent's shell" in from_agent.stderr
    assert database_state(db) == before
    confirmed = cli(db, "confirm", "--json", pid)
    assert confirmed.returncode == 0, confirmed.stderr
    assert json.loads(confirmed.stdout) == {"id": pid, "status": "confirmed", "rows_affected": 3, "error": None}
    after = db.engine_for(ORG).read(f"SELECT status FROM lead_scores WHERE id IN ({', '.join(map(str, ids))})").df
    assert after["status"].tolist() == ["contacted"] * 3
    changed = database_state(db)
    assert {k for k in before if before[k] != changed[k]} == {"lead_scores"}
    again = cli(db, "confirm", pid)
    assert again.returncode == 1 and "only once" in again.stderr


def test_a_proposal_aimed_at_another_organizations_rows_previews_nothing_and_changes_nothing(db):
    other = db.engine_for("pico-labs").read(NEW_LEADS).df["id"].tolist()
    sql = f"UPDATE lead_scores SET status = 'contacted' WHERE id IN ({', '.join(map(str, other))})"
    states = []

    async def body():
        async with stdio_session(server_env(db, NEXUS_ORG=ORG)) as session:
            states.append(database_state(db))
            return await session.call_tool("propose_write", {"sql": sql})

    proposed = run(body)
    before = states[0]
    assert proposed.structured_content["dry_run_rows"] == 0
    confirmed = cli(db, "confirm", "--json", proposed.structured_content["id"], NEXUS_ORG=ORG)
    assert json.loads(confirmed.stdout)["rows_affected"] == 0
    assert database_state(db) == before


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1"])
def test_http_on_a_public_address_without_a_secret_is_refused(db, host):
    proc = subprocess.run(
        [NEXUS_LAB, "mcp", "--http", "--host", host, "--port", "1"],
        env=server_env(db),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"Refusing to serve on {host}" in proc.stderr and "NEXUS_AUTH_SECRET" in proc.stderr


def test_a_database_that_cannot_be_reached_is_one_paragraph_on_stderr_without_the_password(db):
    proc = subprocess.run(
        [NEXUS_LAB, "mcp"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=server_env(db, DATABASE_URL="postgresql://plg_user:pg-SECRET-pw@127.0.0.1:1/plg"),
    )
    assert proc.returncode == 1 and proc.stdout == "", "stdout is the protocol: nothing else goes there"
    assert proc.stderr.startswith("nexus-lab: Cannot connect") and "pg-SECRET-pw" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_show_dashboard_is_an_mcp_app_over_the_callers_own_queries_with_a_text_fallback(db):
    before, tool, app, shown, refused = show_dashboard_result(db)
    hot = int(db.engine_for(ORG).read(DASHBOARD_QUERIES["r1"]).df["hot"][0])
    tiers = db.engine_for(ORG).read(DASHBOARD_QUERIES["r2"]).df
    assert tool.meta["ui"]["resourceUri"] == APP_URI and tool.annotations.read_only_hint is True
    assert (
        app.contents[0].mime_type == "text/html;profile=mcp-app"
        and "ui/notifications/tool-result" in app.contents[0].text
    )
    assert not shown.is_error
    text, html = text_of(shown), shown.meta[HTML_KEY]
    assert f"[Hot leads: {hot:,}]" in text or f"[Hot leads: {hot}]" in text
    for tier, n in zip(tiers["tier"], tiers["n"]):
        assert tier in text and tier in html and f"{n:,}" in html
    assert html.count("data:image/png;base64,") == 1, "the bar chart is a picture, drawn offline"
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org", "")
    assert shown.structured_content == {"title": "Leads by tier", "sections": ["widgets", "bars", "table"], "notes": []}
    assert refused.is_error and "Query r2 was refused" in text_of(refused)
    assert database_state(db) == before
