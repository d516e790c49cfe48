"""The documented production setup, end to end, as a DBA and an analyst would run it.

A separate PostgreSQL database owned by a non-superuser `plg_user` (the original design's
owner): `nexus-lab db` migrates it as the owner, `nexus-lab seed` loads it, `nexus-lab db roles`
and `nexus-lab db roles --org SLUG` run through `psql` as a superuser, and then the product
reads and writes only as the least-privilege roles, scoped by row-level security.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import psycopg
import pytest

from nexusleads_lab.db.schema import org_role_names
from nexusleads_lab.testing.modelserver import ModelServer, Script, text

ORG = "acme-analytics"
PASSWORDS = {"plg_user": "plg_password", "agent": "agent-pw-123", "writer": "writer-pw-456"}

pytestmark = pytest.mark.skipif(shutil.which("psql") is None, reason="needs the psql client (CI installs it)")


def _url(server, user: str, password: str | None, dbname: str) -> str:
    base = server.admin_url.replace(
        "postgresql://postgres:@/postgres?", f"postgresql://{user}{':' + password if password else ''}@/{dbname}?", 1
    )
    assert base != server.admin_url
    return base


@pytest.fixture(scope="module")
def prod(empty_server):
    """A database owned by plg_user, migrated and seeded by the product as that owner."""
    dbname = "plg_" + uuid.uuid4().hex[:8]
    with psycopg.connect(empty_server.admin_url, autocommit=True) as su:
        exists = su.execute("SELECT 1 FROM pg_roles WHERE rolname = 'plg_user'").fetchone()
        if not exists:
            su.execute("CREATE ROLE plg_user LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD 'plg_password'")
        su.execute(f"CREATE DATABASE {dbname} OWNER plg_user")
    info = {
        "dbname": dbname,
        "owner_url": _url(empty_server, "plg_user", PASSWORDS["plg_user"], dbname),
        "superuser_url": _url(empty_server, "postgres", None, dbname),
        "server": empty_server,
    }
    yield info
    with psycopg.connect(empty_server.admin_url, autocommit=True) as su:
        su.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")


def cli(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    full.update({"NEXUS_USER": "dba-test"})
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "nexusleads_lab.cli", *args],
        capture_output=True,
        text=True,
        env=full,
        input=stdin,
        timeout=180,
    )


def psql(url: str, script: str, *variables: str) -> subprocess.CompletedProcess:
    args = ["psql", url, "-X", "-q", "-f", "-"]
    for v in variables:
        args += ["-v", v]
    return subprocess.run(args, capture_output=True, text=True, input=script, timeout=120)


def test_the_documented_production_path_works_on_a_non_superuser_owned_database(prod):
    owner = {"DATABASE_URL": prod["owner_url"]}
    role_vars = (f"agent_password={PASSWORDS['agent']}", f"writer_password={PASSWORDS['writer']}")

    # A script run before the schema exists fails whole: nothing half-applied.
    early_org = "early-" + uuid.uuid4().hex[:6]
    early = psql(prod["superuser_url"], cli("db", "roles", "--org", early_org).stdout, *role_vars)
    assert (
        early.returncode != 0 and "run `nexus-lab db` with DATABASE_URL set to the tables' owner first" in early.stderr
    )
    with psycopg.connect(prod["superuser_url"]) as su:
        assert su.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", (f"%{early_org}%",)).fetchone()[0] == 0

    # 1. migrate as the owner, 2. load data as the owner
    shown = cli("db", "--json", env=owner)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["schema_version"] >= 3 and "plg_password" not in shown.stdout
    seeded = cli("seed", "--contributors", "400", "--json", env=owner)
    assert seeded.returncode == 0, seeded.stderr

    # Before the roles exist, reads refuse with how to fix it (the owner is never used for the model's SQL).
    refused = cli("sql", "SELECT 1", env={**owner, "NEXUS_AGENT_DATABASE_URL": prod["owner_url"]})
    assert (
        refused.returncode == 1
        and "owns the product's tables" in refused.stderr
        and "nexus-lab db roles" in refused.stderr
    )

    # 3. the shared roles and one organization's roles, as a superuser, twice (re-runnable)
    for _ in range(2):
        for args in (("db", "roles"), ("db", "roles", "--org", ORG)):
            script = cli(*args).stdout
            assert "plg_password" not in script and PASSWORDS["agent"] not in script
            ran = psql(prod["superuser_url"], script, *role_vars)
            assert ran.returncode == 0, ran.stderr

    scoped = {**owner, "NEXUS_ORG": ORG, "NEXUS_AGENT_PASSWORD": PASSWORDS["agent"]}
    out = cli(
        "sql",
        "--json",
        "SELECT count(DISTINCT o.slug) AS orgs, count(*) AS leads FROM lead_scores l "
        "JOIN projects p ON p.id = l.project_id JOIN organizations o ON o.id = p.org_id",
        env=scoped,
    )
    assert out.returncode == 0, out.stderr
    with psycopg.connect(prod["owner_url"]) as own:
        truth = own.execute(
            "SELECT count(*) FROM lead_scores l JOIN projects p ON p.id = l.project_id JOIN organizations o ON o.id = p.org_id"
            " WHERE o.slug = %s",
            (ORG,),
        ).fetchone()[0]
        total = own.execute("SELECT count(*) FROM lead_scores").fetchone()[0]
    assert json.loads(out.stdout)["rows"] == [{"orgs": 1, "leads": truth}] and truth < total

    # The owner (the web app beside us) keeps every privilege it had.
    with psycopg.connect(prod["owner_url"], autocommit=True) as own:
        assert own.execute("SELECT count(*) FROM lead_scores").fetchone()[0] == total
        assert (
            own.execute("SELECT pg_cancel_backend(0)").fetchone()[0] is False
        )  # still allowed: not revoked from PUBLIC
        assert own.execute("SELECT count(*) FROM organizations").fetchone()[0] == 4

    # Writes: without a writer URL they are refused, never run as the owner.
    lead = int(
        json.loads(
            cli(
                "sql", "--json", "SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 1", env=scoped
            ).stdout
        )["rows"][0]["id"]
    )
    sql = f"UPDATE lead_scores SET status = 'contacted', status_changed_at = now() WHERE id = {lead}"
    proposal = json.dumps({"type": "confirm", "id": "x", "title": "Contact one", "summary": "One lead", "sql": sql})
    with ModelServer(Script([text(proposal), text(proposal)])) as server:
        model = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-prod-test"}
        asked = cli("ask", "--json", "contact it", env={**scoped, **model})
        assert asked.returncode == 0, asked.stderr
        card = json.loads(asked.stdout.splitlines()[-1])["response"]
        assert card["dry_run_rows"] == 1 and "NEXUS_WRITER_DATABASE_URL" in card["dry_run_error"]
        nope = cli("confirm", card["id"], env=scoped)
        assert nope.returncode == 1 and "Confirmed writes are not configured" in nope.stderr

        # The owner as the writer is refused at connect time.
        as_owner = cli("confirm", card["id"], env={**scoped, "NEXUS_WRITER_DATABASE_URL": prod["owner_url"]})
        assert as_owner.returncode == 1 and "owns the product's tables" in as_owner.stdout + as_owner.stderr

        writer_url = _url(prod["server"], org_role_names(ORG)[1], PASSWORDS["writer"], prod["dbname"])
        with_writer = {**scoped, "NEXUS_WRITER_DATABASE_URL": writer_url}
        asked = cli("ask", "--json", "contact it", env={**with_writer, **model})
        card = json.loads(asked.stdout.splitlines()[-1])["response"]
        assert card["dry_run_error"] is None and card["dry_run_rows"] == 1
        done = cli("confirm", "--json", card["id"], env=with_writer)
    assert json.loads(done.stdout) == {"id": card["id"], "status": "confirmed", "rows_affected": 1, "error": None}
    with psycopg.connect(prod["owner_url"]) as own:
        assert own.execute("SELECT status FROM lead_scores WHERE id = %s", (lead,)).fetchone()[0] == "contacted"
        row = own.execute(
            "SELECT org, previewed_rows, rows_affected, db_role FROM write_audit WHERE confirmation_id = %s",
            (card["id"],),
        ).fetchone()
    assert row == (ORG, 1, 1, org_role_names(ORG)[1])


def test_the_roles_script_states_what_it_needs_and_touches_no_other_role(prod):
    script = cli("db", "roles").stdout
    assert "as a superuser" in script.splitlines()[1] + script.splitlines()[2]
    assert "FROM PUBLIC" not in script and "plg_user" not in script
