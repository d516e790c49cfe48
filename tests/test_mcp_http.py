"""``nexus-lab mcp --http``: streamable HTTP at /mcp through the SDK's client, behind the same token
rules as ``nexus-lab serve``: the verified token alone names the user and the organization."""

from __future__ import annotations

import json
import time

import httpx2
import jwt
import pytest

from nexusleads_lab.agent.assistant import Assistant
from nexusleads_lab.agent.confirm import ConfirmationError

from mcp_clients import HttpServer, database_state, http_session, run, server_env

SECRET = "mcp-test-secret-0123456789abcdef-0123"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
COUNT = "SELECT count(*) AS n FROM lead_scores"


def token(org: str, user: str = "http-user", **claims) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "org": org, "iat": now, "exp": now + 600, **claims}, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def servers(db):
    """Two replicas over the one database, as behind a load balancer."""
    env = server_env(db, NEXUS_AUTH_SECRET=SECRET, NEXUS_ORG="", NEXUS_USER="someone-else")
    replicas = [HttpServer(env), HttpServer(env)]
    yield replicas
    for replica in replicas:
        replica.close()


def bad_tokens() -> dict[str, str | None]:
    now = int(time.time())
    claims = {"sub": "http-user", "org": "acme-analytics"}
    unsigned = jwt.encode({**claims, "exp": now + 600}, key=None, algorithm="none")  # type: ignore[arg-type]
    return {
        "missing": None,
        "bad signature": jwt.encode(
            {**claims, "exp": now + 600}, "another-secret-0123456789abcdef-xyz", algorithm="HS256"
        ),
        "expired": jwt.encode({**claims, "exp": now - 60}, SECRET, algorithm="HS256"),
        "alg none": unsigned,
        "no exp": jwt.encode(claims, SECRET, algorithm="HS256"),
    }


def test_each_bad_token_gets_401_and_a_foreign_origin_403(servers):
    url = servers[0].url
    headers = {"Accept": "application/json, text/event-stream"}
    for why, bad in bad_tokens().items():
        auth = {"Authorization": f"Bearer {bad}"} if bad else {}
        response = httpx2.post(url, json=INITIALIZE, headers={**headers, **auth}, timeout=30)
        assert response.status_code == 401, why
        assert response.headers["www-authenticate"].startswith("Bearer") and SECRET not in response.text
    cookie = httpx2.post(url, json=INITIALIZE, headers=headers, cookies={"nexus_session": token("acme-analytics")})
    assert cookie.status_code == 401, "only a bearer token names the caller"
    good = {**headers, "Authorization": f"Bearer {token('acme-analytics')}"}
    foreign = httpx2.post(url, json=INITIALIZE, headers={**good, "Origin": "https://evil.example"}, timeout=30)
    assert foreign.status_code == 403
    same = httpx2.post(url, json=INITIALIZE, headers={**good, "Origin": f"http://127.0.0.1:{servers[0].port}"})
    assert same.status_code == 200 and same.json()["result"]["serverInfo"]["name"] == "nexusleads-lab"


def test_two_organizations_through_two_tokens_see_their_own_rows_on_either_replica(db, servers):
    expected = {org: int(db.engine_for(org).read(COUNT).df["n"][0]) for org in ("acme-analytics", "pico-labs")}
    assert expected["acme-analytics"] != expected["pico-labs"]

    async def body():
        seen = {}
        for org, replica in (("acme-analytics", servers[0]), ("pico-labs", servers[1]), ("pico-labs", servers[0])):
            async with http_session(replica.url, token(org)) as session:
                tools = (await session.list_tools()).tools
                result = await session.call_tool("psql", {"sql": COUNT})
                seen.setdefault(org, []).append(result.structured_content["rows"][0]["n"])
                assert {t.name for t in tools} == {"psql", "propose_write", "show_dashboard"}
        return seen

    seen = run(body)
    assert seen == {"acme-analytics": [expected["acme-analytics"]], "pico-labs": [expected["pico-labs"]] * 2}


def test_a_proposal_over_http_belongs_to_the_tokens_user_and_runs_only_when_confirmed(db, servers):
    ids = db.engine_for("pico-labs").read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 2").df
    sql = f"UPDATE lead_scores SET status = 'contacted' WHERE id IN ({', '.join(map(str, ids['id']))})"
    states = []

    async def body():
        async with http_session(servers[1].url, token("pico-labs", user="dana")) as session:
            await session.call_tool("psql", {"sql": "SELECT 1"})  # the caller's scope is made
            states.append(database_state(db))
            proposed = await session.call_tool("propose_write", {"sql": sql, "title": "two contacted"})
            pid = proposed.structured_content["id"]
            again = await session.call_tool("psql", {"sql": f"CONFIRM_ACTION: {pid}"})
            return proposed, again

    proposed, again = run(body)
    before = states[0]
    assert proposed.structured_content["dry_run_rows"] == 2 and again.is_error
    assert database_state(db) == before
    stranger = Assistant(database=db, user="someone-else", org="pico-labs")
    with pytest.raises(ConfirmationError, match="No pending confirmation"):
        stranger.confirm(proposed.structured_content["id"])
    dana = Assistant(database=db, user="dana", org="pico-labs")
    assert dana.confirm(proposed.structured_content["id"]).rows_affected == 2
    for assistant in (stranger, dana):
        assistant.close()


def test_the_response_carries_structured_rows_as_json(servers):
    headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token('acme-analytics')}"}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "psql", "arguments": {"sql": COUNT}}}
    response = httpx2.post(servers[0].url, json=call, headers={**headers, "MCP-Protocol-Version": "2025-06-18"})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["structuredContent"]["rows"][0]["n"] > 0 and json.loads(result["content"][0]["text"])["rows"]


def test_without_a_secret_only_a_loopback_host_is_answered_as_the_local_user(db):
    server = HttpServer(server_env(db, NEXUS_ORG="pico-labs", NEXUS_USER="local-analyst"))
    try:
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "psql", "arguments": {"sql": COUNT}},
        }
        rebound = httpx2.post(server.url, json=call, headers={**headers, "Host": f"evil.example:{server.port}"})
        local = httpx2.post(server.url, json=call, headers=headers, timeout=60)
    finally:
        server.close()
    assert rebound.status_code == 403, "a DNS-rebound name is not this machine's user"
    assert local.status_code == 200
    expected = int(db.engine_for("pico-labs").read(COUNT).df["n"][0])
    assert local.json()["result"]["structuredContent"]["rows"][0]["n"] == expected


def test_a_tokens_organization_the_database_does_not_serve_names_no_other_organization(servers):
    async def body():
        async with http_session(servers[0].url, token("no-such-org")) as session:
            return await session.call_tool("psql", {"sql": COUNT})

    result = run(body)
    text = result.content[0].text
    assert result.is_error and "not served by this database" in text
    assert "acme" not in text and "pico" not in text
