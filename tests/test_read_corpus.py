"""The read path against the SQL real models write (tests/fixtures/read_corpus.yaml), as an
organization's reader: every harmless statement runs, every refusal names everything it refused
with what to write instead, psql's describe commands answer, and no secret kept with ALTER
DATABASE/ROLE ... SET, no other organization's name and no all-organization volume comes back,
whichever way it is asked. Run on the embedded database and on the documented production path
(a database owned by a non-superuser, roles from `nexus-lab db roles --dedicated` run by psql).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml

from nexusleads_lab.db import Engine, QueryError, meta
from nexusleads_lab.db.relations import DENIED_COLUMNS, READABLE_CATALOG
from nexusleads_lab.db.schema import LEAD_TABLES, org_role_names

CORPUS = yaml.safe_load((Path(__file__).parent / "fixtures" / "read_corpus.yaml").read_text())
ORG = "acme-analytics"
SECRET_DB = "jwt-db-" + uuid.uuid4().hex
SECRET_ROLE = "jwt-role-" + uuid.uuid4().hex


def test_the_corpus_is_as_large_and_varied_as_the_issue_asks():
    statements = [e["sql"] for part in CORPUS.values() for e in part]
    assert len(statements) >= 120 + 35 and len(set(statements)) == len(statements)
    assert len(CORPUS["harmless"]) >= 120


def _plant(admin_url: str, dbname: str, reader: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as su:
        su.execute(f"ALTER DATABASE {dbname} SET app.settings.jwt_secret = '{SECRET_DB}'")
        su.execute(f"ALTER ROLE \"{reader}\" SET app.role_secret = '{SECRET_ROLE}'")


def _unplant(admin_url: str, dbname: str, reader: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as su:
        su.execute(f"ALTER DATABASE {dbname} RESET app.settings.jwt_secret")
        su.execute(f'ALTER ROLE "{reader}" RESET app.role_secret')


def _others(admin_url: str) -> list[str]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute("SELECT slug, name FROM organizations WHERE slug <> %s", (ORG,)).fetchall()
    assert rows, "other organizations to look for"
    return [v for row in rows for v in row]


def _leaks(text: str, others: list[str]) -> list[str]:
    lowered = text.lower()
    found = [s for s in (SECRET_DB, SECRET_ROLE) if s in text]
    return found + [o for o in others if o.lower() in lowered]


def _outcome(engine: Engine, sql: str) -> tuple[str, str]:
    """("ok", what came back) or ("refused", the message)."""
    try:
        if meta.is_meta(sql):
            return "ok", meta.run(engine, sql).text
        result = engine.read(sql)
    except QueryError as exc:
        return "refused", exc.paragraph()
    return "ok", result.df.to_json(
        orient="values", date_format="iso", default_handler=str
    ) + f" rows={result.row_count}"


def run_corpus(engine: Engine, others: list[str]) -> list[str]:
    """Every way the corpus fails, one line each (empty: it all behaved)."""
    failures: list[str] = []
    for entry in CORPUS["harmless"]:
        status, text = _outcome(engine, entry["sql"])
        if status != "ok":
            failures.append(f"harmless statement refused: {entry['sql']!r}: {text}")
        elif int(text.rsplit("rows=", 1)[1]) < entry.get("min_rows", 0):
            failures.append(f"fewer rows than {entry['min_rows']}: {entry['sql']!r}: {text[:300]}")
        failures += [f"leak {leak!r} from {entry['sql']!r}" for leak in _leaks(text, others)]
    for entry in CORPUS["psql"]:
        status, text = _outcome(engine, entry["sql"])
        missing = [s for s in entry["shows"] if s not in text]
        if status != "ok" or missing:
            failures.append(f"{entry['sql']} does not show {missing}: {text[:300]}")
    for entry in CORPUS["refused"] + CORPUS["hostile"]:
        status, text = _outcome(engine, entry["sql"])
        failures += [f"leak {leak!r} from {entry['sql']!r}" for leak in _leaks(text, others)]
        if entry.get("leak_check"):  # readable, and nothing it shows leaks
            if status != "ok":
                failures.append(f"a leak check did not run: {entry['sql']!r}: {text}")
            continue
        if status != "refused":
            failures.append(f"not refused: {entry['sql']!r}: {text[:200]}")
            continue
        unnamed = [n for n in entry["names"] if n not in text]
        instead = entry.get("instead")
        if unnamed:
            failures.append(f"refusal of {entry['sql']!r} does not name {unnamed}: {text}")
        if instead and instead.lower() not in text.lower():
            failures.append(f"refusal of {entry['sql']!r} does not offer {instead!r}: {text}")
        if not instead and "instead" not in text.lower():
            failures.append(f"refusal of {entry['sql']!r} offers no alternative: {text}")
    return failures


def readable_relations(admin_url: str) -> list[str]:
    """``SELECT cols FROM rel`` for every relation the read path reads, with the readable columns."""
    with psycopg.connect(admin_url) as conn:
        rels = [("public", t) for t in LEAD_TABLES] + [("pg_catalog", r) for r in sorted(READABLE_CATALOG)]
        rels += conn.execute(
            "SELECT 'information_schema', table_name FROM information_schema.tables"
            " WHERE table_schema = 'information_schema' ORDER BY 2"
        ).fetchall()
        out = []
        for schema, rel in rels:
            cols = [
                r[0]
                for r in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
                    " ORDER BY attnum",
                    (f"{schema}.{rel}",),
                ).fetchall()
            ]
            cols = [c for c in cols if (rel, c) not in DENIED_COLUMNS]
            if cols:
                out.append(
                    f"SELECT {', '.join(psycopg.sql.Identifier(c).as_string(conn) for c in cols)} FROM {schema}.{rel}"
                )
    assert len(out) > 60
    return out


def leaks_from_every_readable_relation(engine: Engine, admin_url: str, others: list[str]) -> list[str]:
    failures = []
    for sql in readable_relations(admin_url):
        status, text = _outcome(engine, sql)
        # a few information_schema views are not granted to PUBLIC: the server's refusal, no leak
        if status != "ok" and not (" information_schema." in sql and "(42501)" in text):
            failures.append(f"a readable relation is refused: {sql}: {text}")
        failures += [f"leak {leak!r} from {sql}" for leak in _leaks(text, others)]
    return failures


@pytest.fixture(scope="module")
def embedded_reader(db):
    """An organization's reader of the embedded database, with secrets planted in its settings."""
    reader = org_role_names(ORG)[0]
    db.engine_for(ORG)  # its roles exist
    _plant(db.admin_url, "postgres", reader)
    engine = Engine(db.engine_for(ORG).agent_url, None, scope=ORG)  # new sessions: they get the settings
    try:
        yield engine
    finally:
        engine.close()
        _unplant(db.admin_url, "postgres", reader)


def test_the_corpus_on_the_embedded_database(db, embedded_reader):
    assert run_corpus(embedded_reader, _others(db.admin_url)) == []


def test_no_readable_relation_shows_a_secret_or_another_organization_embedded(db, embedded_reader):
    # the secrets are really there: the admin session of the same database sees them
    with psycopg.connect(db.admin_url) as conn:
        assert conn.execute("SELECT current_setting('app.settings.jwt_secret')").fetchone()[0] == SECRET_DB
    assert leaks_from_every_readable_relation(embedded_reader, db.admin_url, _others(db.admin_url)) == []


def test_a_refusal_names_every_part_at_once_as_written():
    from nexusleads_lab.db.readsql import check_read

    with pytest.raises(QueryError) as caught:
        check_read(
            "SELECT pg_sleep(1), similar_to_escape('x'), reltuples, current_setting('a') FROM pg_class, pg_roles r"
            " JOIN pg_stat_activity a ON true"
        )
    text = caught.value.paragraph()
    assert "5 parts" in text or "6 parts" in text, text
    for name in ("pg_sleep()", "pg_roles", "pg_stat_activity", "current_setting()", "pg_class.reltuples"):
        assert name in text
    assert text.count("instead:") >= 5


def test_the_rewritten_catalog_views_keep_server_error_positions(db, embedded_reader):
    sql = "SELECT constraint_name FROM information_schema.check_constraints WHERE nope = 1"
    with pytest.raises(QueryError) as caught:
        embedded_reader.read(sql)
    assert caught.value.sqlstate == "42703" and caught.value.position == sql.index("nope") + 1


# -- the documented production path: a non-superuser owner, `db roles --dedicated` by psql --------

PSQL = shutil.which("psql")


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "nexusleads_lab.cli", *args],
        capture_output=True,
        text=True,
        env={**full, **env},
        timeout=300,
    )


@pytest.fixture(scope="module")
def dedicated(empty_server):
    if PSQL is None:
        pytest.skip("needs the psql client (CI installs it)")
    dbname = "corpus_" + uuid.uuid4().hex[:8]
    base = empty_server.admin_url
    with psycopg.connect(base, autocommit=True) as su:
        if not su.execute("SELECT 1 FROM pg_roles WHERE rolname = 'plg_user'").fetchone():
            su.execute("CREATE ROLE plg_user LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD 'plg_password'")
        su.execute(f"CREATE DATABASE {dbname} OWNER plg_user")
    owner = base.replace("postgresql://postgres:@/postgres?", f"postgresql://plg_user:plg_password@/{dbname}?")
    superuser = base.replace("/postgres?", f"/{dbname}?")
    try:
        for args in (("db",), ("seed", "--contributors", "400")):
            done = _cli(*args, env={"DATABASE_URL": owner})
            assert done.returncode == 0, done.stderr
        for args in (("db", "roles", "--dedicated"), ("db", "roles", "--org", ORG)):
            script = _cli(*args, env={}).stdout
            ran = subprocess.run(
                [PSQL, superuser, "-X", "-q", "-f", "-", "-v", "agent_password=agent-pw"],
                input=script,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert ran.returncode == 0, ran.stderr
        reader = org_role_names(ORG)[0]
        _plant(superuser, dbname, reader)
        url = base.replace("postgresql://postgres:@/postgres?", f"postgresql://{reader}:agent-pw@/{dbname}?")
        engine = Engine(url, None, scope=ORG)
        yield {"engine": engine, "superuser": superuser, "url": url}
        engine.close()
    finally:
        with psycopg.connect(base, autocommit=True) as su:
            su.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")


def test_the_corpus_on_the_dedicated_production_path(dedicated):
    assert run_corpus(dedicated["engine"], _others(dedicated["superuser"])) == []


def test_the_aggregate_guard_works_on_the_dedicated_path(dedicated):
    """Migration 6 made the guard as the tables' owner, the roles script granted it: an aggregate
    within the bound returns what the built-in returns, one past it is stopped by name."""
    from nexusleads_lab.config import EngineLimits

    small = Engine(dedicated["url"], None, EngineLimits(result_max_bytes=4 << 20), scope=ORG)
    try:
        logins = small.read("SELECT string_agg(github_login, ',' ORDER BY github_login) AS s FROM contributors").df
        plain = small.read("SELECT github_login FROM contributors ORDER BY github_login").df
        assert logins["s"][0] == ",".join(plain["github_login"])
        with pytest.raises(QueryError) as caught:
            small.read("SELECT array_agg(repeat(a.github_login, 50)) FROM contributors a, contributors b")
        assert caught.value.sqlstate == "54000" and "array_agg() would build one value" in caught.value.message
    finally:
        small.close()


def test_no_readable_relation_shows_a_secret_or_another_organization_dedicated(dedicated):
    others = _others(dedicated["superuser"])
    assert leaks_from_every_readable_relation(dedicated["engine"], dedicated["superuser"], others) == []


def test_dedicated_roles_revoke_what_public_could_read_even_without_the_gate(dedicated):
    """The gate refuses these by name; on a dedicated database the server refuses them too."""
    bare = Engine(dedicated["url"], None, scope=ORG, check=lambda s: s.strip().rstrip(";"))
    try:
        for sql in (
            "SELECT setconfig FROM pg_db_role_setting",
            "SELECT count(*) FROM pg_stat_activity",
            "SELECT n_live_tup FROM pg_stat_user_tables",
            "SELECT pg_stat_get_live_tuples(0)",
        ):
            with pytest.raises(QueryError) as caught:
                bare.read(sql)
            assert caught.value.sqlstate == "42501", caught.value.paragraph()
        names = bare.read("SELECT rolname FROM pg_roles WHERE rolname LIKE 'nexus_%'").df["rolname"].tolist()
        assert names and not any(ORG in n or "northwind" in n for n in names), "role names are opaque"
    finally:
        bare.close()


def test_renamed_roles_keep_an_existing_database_working(db):
    """A database whose organization roles still carry the slug (earlier versions) is migrated:
    the roles are renamed to the opaque names, their scope binding follows, reads work."""
    from nexusleads_lab.db import schema

    slug = "globex-cloud"
    old_reader, old_writer, old_store = schema.legacy_org_role_names(slug)
    new_reader = org_role_names(slug)[0]
    with db.connect_admin(autocommit=True) as admin:
        for role in (new_reader, org_role_names(slug)[1], schema.store_role_name(slug)):
            admin.execute(f'DROP OWNED BY "{role}"') if admin.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
            ).fetchone() else None
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')
            admin.execute("DELETE FROM nexus_scopes WHERE role_name = %s", (role,))
        for old in (old_reader, old_writer, old_store):  # the layout an earlier version left
            admin.execute(f'CREATE ROLE "{old}" LOGIN')
            admin.execute(
                "INSERT INTO nexus_scopes (role_name, org_slug) VALUES (%s, %s) ON CONFLICT DO NOTHING", (old, slug)
            )
        admin.execute(f'GRANT nexus_read TO "{old_reader}"')
        schema.ensure_org_roles(admin, slug)
        roles = {r[0] for r in admin.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'nexus_%'").fetchall()}
        bound = admin.execute("SELECT org_slug FROM nexus_scopes WHERE role_name = %s", (new_reader,)).fetchone()
    assert old_reader not in roles and new_reader in roles and bound == (slug,)
    engine = Engine(db.embedded.url_for(new_reader), None, scope=slug)
    try:
        assert engine.read("SELECT count(DISTINCT slug) AS n FROM organizations").df["n"].tolist() == [1]
    finally:
        engine.close()


def test_describe_commands_through_the_psql_tool_and_the_cli(db):
    from nexusleads_lab.agent.tools import ToolRunner

    runner = ToolRunner(lambda: db.engine_for(ORG), lambda: None)
    out = runner.run("c1", "psql", json.dumps({"sql": "\\d lead_scores"}), "r1")
    assert out.ok and 'Table "public.lead_scores"' in out.content and "REFERENCES contributors(id)" in out.content
    bad = runner.run("c2", "psql", json.dumps({"sql": "\\copy x to y"}), "r2")
    assert not bad.ok and "\\copy is not supported here" in bad.content and "\\dt" in bad.content
    env = {"NEXUS_HOME": str(Path(db.embedded.pgdata).parent), "NEXUS_ORG": ORG}
    shown = _cli("sql", "--json", "\\dt", env=env)
    assert shown.returncode == 0, shown.stderr
    listed = json.loads(shown.stdout)["output"]
    assert "List of relations" in listed and "(8 rows)" in listed and "chat_messages" not in listed
