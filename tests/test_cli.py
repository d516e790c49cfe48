"""The `nexus-lab` command line, run as a user runs it: a subprocess against the real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nexusleads_lab.db.schema import org_role_names
from nexusleads_lab.testing.modelserver import ModelServer, Script, text, tool_calls

API_KEY = "sk-cli-SECRET-0987654321"


@pytest.fixture()
def run(db, tmp_path):
    """Run nexus-lab with the test database as the user's embedded database."""

    def _run(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
        full_env.update(NEXUS_HOME=str(db.embedded.pgdata.parent), NEXUS_USER="cli-user", NEXUS_ORG="pico-labs")
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "nexusleads_lab.cli", *args],
            capture_output=True,
            text=True,
            env=full_env,
            input=stdin,
            timeout=120,
            cwd=tmp_path,
        )

    return _run


def test_sql_answers_the_tier_question_as_a_table(run):
    proc = run("sql", "select tier, count(*) from lead_scores group by 1 order by 1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["tier", "count"]
    assert [line.split()[0] for line in lines[1:4]] == ["cold", "hot", "warm"]
    assert "(3 rows" in proc.stdout


def test_sql_json_is_machine_readable(run, db):
    proc = run("sql", "--json", "select tier, count(*) as n from lead_scores group by 1 order by 1")
    out = json.loads(proc.stdout)
    truth = db.engine_for("pico-labs").read("select tier, count(*) as n from lead_scores group by 1 order by 1").df
    assert out["row_count"] == 3 and out["truncated"] is False
    assert out["rows"] == [{"tier": t, "n": int(n)} for t, n in zip(truth["tier"], truth["n"])]
    assert out["columns"] == {"tier": "text", "n": "int8"}


def test_sql_refuses_a_write_with_a_clear_error_and_exit_code(run):
    proc = run("sql", "DELETE FROM lead_scores")
    assert proc.returncode == 1
    assert "Only read queries run here" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("sql", "--json", "select nope from lead_scores")
    assert proc.returncode == 1 and "42703" in json.loads(proc.stdout)["error"]


def test_sql_reads_standard_input_and_honours_the_row_cap(run):
    proc = run("sql", "--json", "--row-cap", "5", "-", stdin="SELECT g FROM generate_series(1, 100) g")
    out = json.loads(proc.stdout)
    assert out["row_count"] == 5 and out["truncated"] is True


def test_bad_options_give_a_usage_error(run):
    proc = run("sql", "--row-cap", "zero", "select 1")
    assert proc.returncode == 2 and "expected a whole number" in proc.stderr
    proc = run("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_db_shows_the_active_database_masked_and_the_table_sizes(run):
    proc = run("db", "--json")
    info = json.loads(proc.stdout)
    assert info["kind"] == "embedded" and info["schema_version"] >= 2
    assert info["tables"]["contributors"] > 0 and "lead_scores" in info["tables"]
    human = run("db").stdout
    assert "embedded PostgreSQL" in human and "lead_scores" in human


def test_db_roles_prints_an_atomic_script_for_a_production_admin(run):
    proc = run("db", "roles")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "\\set ON_ERROR_STOP on" in lines and lines.index("BEGIN;") < lines.index("COMMIT;")
    assert (
        'CREATE ROLE "nexus_agent" LOGIN' in proc.stdout
        and "CREATE POLICY nexus_scope ON lead_scores AS RESTRICTIVE" in proc.stdout
    )
    assert "password_hash" not in proc.stdout.split("GRANT SELECT (")[1].split(")")[0]
    assert "FROM PUBLIC" not in proc.stdout, "the shared script changes no other role's privileges"
    org = run("db", "roles", "--org", "acme-analytics")
    reader = org_role_names("acme-analytics")[0]
    assert f'CREATE ROLE "{reader}" LOGIN' in org.stdout and "'acme-analytics'" in org.stdout
    assert "nexus_agent_acme" not in org.stdout.split("Login roles:")[1].split("\n")[0], "role names name no customer"
    dedicated = run("db", "roles", "--dedicated")
    assert (
        "REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC" in dedicated.stdout
        and "temp_file_limit = '512MB'" in dedicated.stdout
    )
    bad = run("db", "roles", "--org", "Bad Slug")
    assert bad.returncode == 1 and "not an organization slug" in bad.stderr


def test_a_database_url_password_never_reaches_the_output(run):
    proc = run("db", env={"DATABASE_URL": "postgresql://plg_user:pg-SECRET-pw@127.0.0.1:1/plg_lead_sourcer"})
    assert proc.returncode == 1
    assert "pg-SECRET-pw" not in proc.stdout + proc.stderr
    assert "Cannot connect to postgresql://plg_user:***@127.0.0.1:1/plg_lead_sourcer" in proc.stderr


def test_ask_prints_events_as_json_lines_and_the_dashboard(run, db):
    sql = "SELECT tier, count(*) AS n FROM lead_scores GROUP BY 1 ORDER BY 1"
    answer = json.dumps(
        {
            "type": "dashboard",
            "title": "Tiers",
            "sections": [{"type": "bars", "label": "Leads by tier", "source": "r1", "x": "tier", "y": "n"}],
        }
    )
    with ModelServer(Script([tool_calls([("psql", {"sql": sql})]), text(answer)])) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": API_KEY}
        proc = run("ask", "--json", "lead tiers?", env=env)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["type"] for e in events][:2] == ["turn.started", "session.id"]
    assert events[-1]["type"] == "turn.completed"
    bars = events[-1]["response"]["sections"][0]
    truth = db.engine_for("pico-labs").read(sql).df
    assert [i["value"] for i in bars["items"]] == list(truth["n"])
    assert API_KEY not in proc.stdout + proc.stderr
    # the conversation is listed for this user
    listed = json.loads(run("conversations", "--json").stdout)
    assert events[1]["sessionId"] in [c["id"] for c in listed]


def test_ask_then_confirm_from_the_terminal(run, db):
    scope = db.engine_for("pico-labs")
    lead = int(scope.read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id DESC LIMIT 1").df["id"][0])
    sql = f"UPDATE lead_scores SET status = 'contacted' WHERE id = {lead} /* \x1b[2K\x1b[1A hidden */"
    proposal = json.dumps({"type": "confirm", "id": "x", "title": "Contact one", "summary": "One lead", "sql": sql})
    with ModelServer(Script([text(proposal)])) as server:
        proc = run("ask", "mark it contacted", env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": API_KEY})
    assert "CONFIRM: Contact one" in proc.stdout and "would change 1 row)" in proc.stdout
    assert f"UPDATE lead_scores SET status = 'contacted' WHERE id = {lead}\n" in proc.stdout
    assert "\x1b" not in proc.stdout + proc.stderr and "hidden" not in proc.stdout, (
        "the comment and its escapes are gone"
    )
    assert f"id={lead}: status: new -> contacted" in proc.stdout
    confirm_id = proc.stdout.split("nexus-lab confirm ")[1].split()[0]
    status = f"SELECT status FROM lead_scores WHERE id = {lead}"
    assert db.engine.read(status).df["status"][0] == "new"
    try:
        done = run("confirm", "--json", confirm_id)
        assert json.loads(done.stdout) == {"id": confirm_id, "status": "confirmed", "rows_affected": 1, "error": None}
        assert db.engine.read(status).df["status"][0] == "contacted"
        again = run("confirm", confirm_id)
        assert again.returncode == 1 and "already confirmed" in again.stderr
    finally:
        with db.connect_admin(autocommit=True) as conn:
            conn.execute("UPDATE lead_scores SET status = 'new' WHERE id = %s", (lead,))


def test_ask_without_a_model_says_what_to_set(run):
    proc = run("ask", "hello")
    assert proc.returncode == 1
    assert "OPENAI_API_KEY" in proc.stderr and "Traceback" not in proc.stderr


def test_record_then_replay_gives_the_same_answer_without_a_key(run, tmp_path):
    cassette = tmp_path / "session.jsonl"
    sql = "SELECT count(*) AS n FROM projects"
    answer = json.dumps(
        {
            "type": "dashboard",
            "title": "Projects",
            "sections": [{"type": "widgets", "items": [{"title": "Projects", "source": "r1", "column": "n"}]}],
        }
    )
    with ModelServer(Script([tool_calls([("psql", {"sql": sql})]), text(answer)])) as server:
        live = run(
            "ask",
            "--json",
            "how many projects?",
            env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": API_KEY, "NEXUS_RECORD": str(cassette)},
        )
    assert live.returncode == 0, live.stderr
    assert cassette.exists() and API_KEY not in cassette.read_text()
    replayed = run("ask", "--json", "how many projects?", env={"NEXUS_REPLAY": str(cassette)})
    assert replayed.returncode == 0, replayed.stderr
    last = lambda proc: json.loads(proc.stdout.splitlines()[-1])  # noqa: E731
    assert last(replayed)["response"] == last(live)["response"]
    diverged = run("ask", "--json", "something never recorded", env={"NEXUS_REPLAY": str(cassette)})
    assert diverged.returncode == 1
    # one friendly paragraph: what was asked, the questions the recording can answer, how to connect a model
    (error,) = [json.loads(line) for line in diverged.stdout.splitlines() if '"type": "error"' in line]
    assert "something never recorded" in error["message"] and "how many projects?" in error["message"]
    assert "OPENAI_API_KEY" in error["message"] and "re-record" not in error["message"]


def test_seed_refuses_to_overwrite_without_reset(run, db):
    before = db.engine.read("SELECT count(*) AS n FROM contributors").df["n"][0]
    proc = run("seed", "--contributors", "50")
    assert proc.returncode == 1 and "reset" in proc.stderr
    assert db.engine.read("SELECT count(*) AS n FROM contributors").df["n"][0] == before


def test_seed_creates_a_fresh_embedded_database_and_loads_it(run, tmp_path):
    home = tmp_path / "home"
    try:
        proc = run("seed", "--json", "--contributors", "300", "--seed", "11", env={"NEXUS_HOME": str(home)})
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["tables"]["contributors"] == 300 and out["seed"] == 11
        again = run(
            "sql", "--json", "SELECT count(*) AS n FROM contributors", env={"NEXUS_HOME": str(home), "NEXUS_ORG": ""}
        )
        assert json.loads(again.stdout)["rows"] == [{"n": 300}], "without NEXUS_ORG: every organization"
        scoped = run(
            "sql",
            "--json",
            "SELECT count(*) AS n FROM contributors",
            env={"NEXUS_HOME": str(home), "NEXUS_ORG": "pico-labs"},
        )
        assert 0 < json.loads(scoped.stdout)["rows"][0]["n"] < 300
    finally:
        run("db", "stop", env={"NEXUS_HOME": str(home)})


def test_sql_shows_infinite_and_out_of_range_dates_without_a_traceback(run):
    sql = "SELECT 'infinity'::date AS d, '-infinity'::timestamptz AS t, '10000-01-01'::date AS far, '0044-03-15 BC'::date AS bc"
    human = run("sql", sql)
    assert human.returncode == 0 and "Traceback" not in human.stderr, human.stderr
    assert (
        "infinity" in human.stdout
        and "-infinity" in human.stdout
        and "10000-01-01" in human.stdout
        and "BC" in human.stdout
    )
    rows = json.loads(run("sql", "--json", sql).stdout)["rows"]
    assert rows == [{"d": "infinity", "t": "-infinity", "far": "10000-01-01", "bc": "0044-03-15 BC"}]


CANARIES = [
    ("url", "postgresql://plg_user:{pw}@127.0.0.1:1/plg", "c@nary:a%r/y-Url1"),
    ("url-encoded", "postgresql://plg_user:{pw}@127.0.0.1:1/plg", "canary%40Enc%3A5"),
    ("kv", "host=127.0.0.1 port=1 user=plg_user password='{pw}' dbname=plg", "c an@ary Kv2"),
    ("kv-bare", "host=127.0.0.1 port=1 user=plg_user password={pw} dbname=plg", "canaryKv3"),
    ("bad-option", "postgresql://plg_user:{pw}@127.0.0.1:1/plg?sslmode=bogus", "canary:Opt4"),
]


@pytest.mark.parametrize("form,template,canary", CANARIES, ids=[c[0] for c in CANARIES])
def test_a_password_never_reaches_output_in_any_connection_form(run, db, tmp_path, form, template, canary):
    bad = template.format(pw=canary)
    for args in (("db",), ("sql", "SELECT 1"), ("sql", "--json", "SELECT 1")):
        proc = run(*args, env={"DATABASE_URL": bad})
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        out = proc.stdout + proc.stderr
        assert canary not in out and not any(p in out for p in _pieces(canary)), out
    # the agent's own role URL with the canary: through a turn, its events, the store and the cassette
    cassette = tmp_path / f"{form}.jsonl"
    with ModelServer(
        Script([tool_calls([("psql", {"sql": "SELECT 1"})]), text(json.dumps({"type": "message", "text": "no"}))])
    ) as server:
        env = {
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": API_KEY,
            "NEXUS_RECORD": str(cassette),
            "NEXUS_AGENT_DATABASE_URL": bad,
        }
        proc = run("ask", "--json", "try the database", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Cannot connect" in proc.stdout
    blob = proc.stdout + proc.stderr + cassette.read_text()
    with db.connect_admin() as conn:
        blob += conn.execute("SELECT coalesce(string_agg(content::text, ' '), '') FROM chat_messages").fetchone()[0]
    assert canary not in blob and not any(p in blob for p in _pieces(canary))


def _pieces(secret: str) -> list[str]:
    """Parts of a password a parser might split it into (at @ : % / or a space), long enough to mean it."""
    import re as _re

    return [p for p in _re.split(r"[@:%/ ]", secret) if len(p) >= 4]


def test_psql_gets_the_password_from_the_environment_not_the_command_line(tmp_path, monkeypatch):
    from nexusleads_lab.config import Settings
    from nexusleads_lab.db.database import Database

    # A scope's role logs in on DATABASE_URL's server with its password, quoted in either URL form.
    monkeypatch.setenv("NEXUS_STORE_PASSWORD", "p@ss:w/rd%")
    url = Database("postgresql://x@db.example:5432/plg", settings=Settings()).store_url(None)
    assert url == "postgresql://nexus_store:p%40ss%3Aw%2Frd%25@db.example:5432/plg"
    monkeypatch.setenv("NEXUS_STORE_PASSWORD", "n3w pw")
    kv = Database("host=db.example dbname=plg user=x password=old", settings=Settings()).store_url(None)
    assert "user=nexus_store" in kv and "password='n3w pw'" in kv and "old" not in kv
    fake = tmp_path / "psql"
    fake.write_text('#!/bin/sh\necho ARGV: "$@"\necho ENV: $PGPASSWORD\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEXUS_", "DATABASE_URL"))}
    env.update(
        PATH=f"{tmp_path}:{env['PATH']}",
        NEXUS_MIGRATE="0",
        DATABASE_URL="postgresql://plg_user:Sup3r%40Secret@127.0.0.1:1/plg",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "nexusleads_lab.cli", "psql"], capture_output=True, text=True, env=env, timeout=60
    )
    argv = next((line for line in proc.stdout.splitlines() if line.startswith("ARGV:")), "")
    assert argv and "Sup3r" not in argv and "ENV: Sup3r@Secret" in proc.stdout, proc.stdout + proc.stderr


def test_sql_shows_terminal_escapes_from_data_instead_of_obeying_them(run):
    proc = run("sql", "SELECT E'\\x1b]52;c;ZXZpbA==\\x07 and \\x1b[2J' AS payload")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "\\x1B]52;c;ZXZpbA==\\x07" in proc.stdout


def test_ask_json_prints_each_edit_once_so_a_megabyte_answer_prints_a_few_megabytes(run):
    words = ("Leads **grow** where `stars` meet {issues}; see the table below.\n" * 16667)[:1_000_000]
    answer = json.dumps({"type": "message", "text": words})
    with ModelServer(Script([text(answer, chunk_size=256)])) as server:
        proc = run(
            "ask", "--json", "tell me everything", env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": API_KEY}
        )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    streaming = [e for e in events if e["type"] == "agent.text" and e["status"] == "streaming"]
    (done,) = [e for e in events if e["type"] == "agent.text" and e["status"] == "done"]
    shown = ""
    for e in streaming:
        assert "text" not in e, "a streaming event carries its edit, not the whole text"
        shown = shown[: e["keep"]] + e["delta"]
    assert len(streaming) >= 3000 and shown == done["text"] == words
    assert events[-1]["type"] == "turn.completed" and events[-1]["response"]["text"] == words
    size = len(answer.encode())
    printed = len(proc.stdout.encode())
    print(f"\n{printed / size:.2f}x the answer printed in {len(events)} lines")
    # the edits once, the done text, the completed turn's raw text and response: four copies
    assert printed < 5 * size


def test_a_misspelt_first_keyword_is_answered_with_the_nearest_sql_command(run):
    proc = run("sql", "selct * from projects")
    assert proc.returncode == 1
    assert "The query starts with 'selct', which is not an SQL command: did you mean SELECT?" in proc.stderr
    assert "SELCT" not in proc.stderr


def _ask_two_questions(run, user: str) -> str:
    sql = "SELECT tier, count(*) AS n FROM lead_scores GROUP BY 1 ORDER BY 1"
    answer = json.dumps(
        {
            "type": "dashboard",
            "title": "Tiers",
            "sections": [{"type": "bars", "label": "Leads by tier", "source": "r1", "x": "tier", "y": "n"}],
        }
    )
    steps = [
        tool_calls([("psql", {"sql": sql})]),
        text(answer),
        text(json.dumps({"type": "message", "text": "Three tiers."})),
    ]
    with ModelServer(Script(steps)) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": API_KEY, "NEXUS_USER": user}
        first = run("ask", "--json", "lead tiers?", env=env)
        thread = json.loads(first.stdout.splitlines()[1])["sessionId"]
        run("ask", "--thread", thread, "how many tiers?", env=env)
    return thread


def test_conversations_name_whose_they_are_and_show_a_readable_transcript_by_id_prefix(run):
    user = "transcript-" + os.urandom(3).hex()
    empty = run("conversations", env={"NEXUS_USER": user})
    assert (
        empty.returncode == 0 and empty.stdout.strip() == f"No conversations yet for {user} in organization pico-labs."
    )
    thread = _ask_two_questions(run, user)
    shown = run("conversations", "--show", thread[:8], env={"NEXUS_USER": user})
    assert shown.returncode == 0, shown.stderr
    lines = [line.split("] ", 1)[-1].strip() for line in shown.stdout.splitlines()]
    assert lines == [
        f"{user}: lead tiers?",
        "step psql: SELECT tier, count(*) AS n FROM lead_scores GROUP BY 1 ORDER BY 1",
        "3 rows as r1",
        "assistant: dashboard “Tiers”: Leads by tier (3 bars)",
        f"{user}: how many tiers?",
        "assistant: Three tiers.",
    ]
    assert "{" not in shown.stdout and "'role'" not in shown.stdout, "no Python reprs"
    as_json = json.loads(run("conversations", "--json", "--show", thread, env={"NEXUS_USER": user}).stdout)
    assert [m["role"] for m in as_json] == ["user", "assistant", "tool", "assistant", "user", "assistant"]


def test_conversation_id_prefixes_must_be_unique_and_unknown_ones_say_so(run, db):
    from nexusleads_lab.db.store import ConversationStore

    user = "prefix-" + os.urandom(3).hex()
    store = ConversationStore(db.store_url("pico-labs"), "pico-labs", user)
    ids = [store.create(title=f"Question {i}") for i in range(17)]  # 17 ids: two share a first hex digit
    store.close()
    unknown = run("conversations", "--show", "zz", env={"NEXUS_USER": user})
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        f"nexus-lab: No conversation of {user} in organization pico-labs has an id beginning 'zz'; "
        "`nexus-lab conversations` lists them with their ids."
    )
    first = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) >= 2)
    twins = [i for i in ids if i.startswith(first)]
    ambiguous = run("conversations", "--delete", first, env={"NEXUS_USER": user})
    assert ambiguous.returncode == 1
    assert f"'{first}' begins {len(twins)} conversation ids of {user} in organization pico-labs: " in ambiguous.stderr
    assert all(t[:13] in ambiguous.stderr for t in twins[:5]) and "give more of the id." in ambiguous.stderr
    renamed = run("conversations", "--rename", twins[0][:10], "Tier review", env={"NEXUS_USER": user})
    assert renamed.returncode == 0, renamed.stderr
    listed = {c["id"]: c["title"] for c in json.loads(run("conversations", "--json", env={"NEXUS_USER": user}).stdout)}
    assert listed[twins[0]] == "Tier review" and len(listed) == 17, "the ambiguous delete deleted nothing"
    assert run("conversations", "--delete", twins[1][:10], env={"NEXUS_USER": user}).returncode == 0
    assert twins[1] not in {
        c["id"] for c in json.loads(run("conversations", "--json", env={"NEXUS_USER": user}).stdout)
    }
