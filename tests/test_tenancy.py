"""Organizations are isolated by the database: a scoped session reads and changes only its own
organization's rows, whatever SQL it runs (through the product, or on a raw connection)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from nexusleads_lab.agent.confirm import Confirmations
from nexusleads_lab.db.demo import ORGS
from nexusleads_lab.db.schema import LEAD_TABLES, org_role_names
from nexusleads_lab.db.store import ConversationStore

from checks import fingerprint

SLUGS = [o[0] for o in ORGS]

# Each table's rows that belong to organization %(org)s, by their keys, as the admin sees them.
OWN_ROWS = {
    "organizations": "SELECT id::text AS k FROM organizations WHERE slug = %(org)s",
    "users": "SELECT u.id::text AS k FROM users u JOIN organizations o ON o.id = u.org_id WHERE o.slug = %(org)s",
    "projects": "SELECT p.id::text AS k FROM projects p JOIN organizations o ON o.id = p.org_id WHERE o.slug = %(org)s",
    "repositories": (
        "SELECT r.id::text AS k FROM repositories r JOIN projects p ON p.id = r.project_id"
        " JOIN organizations o ON o.id = p.org_id WHERE o.slug = %(org)s"
    ),
    "repository_contributors": (
        "SELECT rc.repository_id || ':' || rc.contributor_id AS k FROM repository_contributors rc"
        " JOIN repositories r ON r.id = rc.repository_id JOIN projects p ON p.id = r.project_id"
        " JOIN organizations o ON o.id = p.org_id WHERE o.slug = %(org)s"
    ),
    "lead_scores": (
        "SELECT l.id::text AS k FROM lead_scores l JOIN projects p ON p.id = l.project_id"
        " JOIN organizations o ON o.id = p.org_id WHERE o.slug = %(org)s"
    ),
    "outreach_events": (
        "SELECT e.id::text AS k FROM outreach_events e JOIN lead_scores l ON l.id = e.lead_id"
        " JOIN projects p ON p.id = l.project_id JOIN organizations o ON o.id = p.org_id WHERE o.slug = %(org)s"
    ),
    "contributors": (
        "SELECT c.id::text AS k FROM contributors c WHERE c.id IN ("
        " SELECT l.contributor_id FROM lead_scores l JOIN projects p ON p.id = l.project_id"
        " JOIN organizations o ON o.id = p.org_id WHERE o.slug = %(org)s"
        " UNION SELECT rc.contributor_id FROM repository_contributors rc JOIN repositories r ON r.id = rc.repository_id"
        " JOIN projects p ON p.id = r.project_id JOIN organizations o ON o.id = p.org_id WHERE o.slug = %(org)s)"
    ),
}
KEY = {"repository_contributors": "repository_id || ':' || contributor_id"}


def visible_keys(run, table: str) -> list[str]:
    return sorted(run(f"SELECT ({KEY.get(table, 'id')})::text AS k FROM {table}"))


@pytest.fixture(scope="module")
def own_rows(db) -> dict[str, dict[str, list[str]]]:
    with db.connect_admin(autocommit=True) as conn:
        return {
            org: {t: sorted(r[0] for r in conn.execute(sql, {"org": org}).fetchall()) for t, sql in OWN_ROWS.items()}
            for org in SLUGS
        }


def test_every_table_holding_organization_data_is_covered():
    assert set(OWN_ROWS) == set(LEAD_TABLES)


@pytest.mark.parametrize("org", SLUGS)
def test_an_organizations_scope_sees_exactly_its_own_rows(db, own_rows, org):
    engine = db.engine_for(org)
    for table in LEAD_TABLES:
        seen = visible_keys(lambda sql: engine.read(sql).df["k"].tolist(), table)
        assert seen == own_rows[org][table], f"{org} sees other rows of {table}"
        assert seen or table in ("outreach_events",), f"{org} sees none of its own {table}"


def test_the_all_organizations_scope_sees_everything(db):
    with db.connect_admin(autocommit=True) as conn:
        for table in LEAD_TABLES:
            total = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert db.engine.read(f"SELECT count(*) AS n FROM {table}").df["n"][0] == total


def _raw(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def _counts(conn) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0] for t in LEAD_TABLES}


class Raw:
    """A raw connection that comes back after a setting made the server close it (say a 1 ms
    idle_session_timeout): the attempt failed, the next one gets a fresh session of the same login."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = _raw(url)

    def attempt(self, sql: str, *params) -> None:
        if self.conn.closed or self.conn.broken:
            self.conn = _raw(self.url)
        try:
            self.conn.execute(sql, params or None)
        except psycopg.Error:
            pass

    def counts(self) -> dict[str, int]:
        """Row counts as this session sees them now; settings that only make counting fail
        (timeouts, which cannot widen anything) are reset first."""
        if self.conn.closed or self.conn.broken:
            self.conn = _raw(self.url)
        for timeout in ("statement", "transaction", "idle_session", "idle_in_transaction_session", "lock"):
            self.attempt(f"RESET {timeout}_timeout")
        if self.conn.closed or self.conn.broken:
            self.conn = _raw(self.url)
        return _counts(self.conn)


def test_escape_attempts_on_a_raw_reader_connection_widen_nothing(db, own_rows):
    """Past every guard of the product: the organization's own login, the SQL it likes."""
    org, other = "pico-labs", "acme-analytics"
    mine = {t: len(own_rows[org][t]) for t in LEAD_TABLES}
    with db.connect_admin(autocommit=True) as admin:
        roles = [r[0] for r in admin.execute("SELECT rolname FROM pg_roles").fetchall()]
        settings = [
            r[0]
            for r in admin.execute("SELECT name FROM pg_settings WHERE context IN ('user', 'superuser')").fetchall()
        ]
    raw = Raw(db.engine_for(org).agent_url)
    assert raw.counts() == mine
    for role in roles:  # SET ROLE to every role there is
        raw.attempt(f'SET ROLE "{role}"')
        assert raw.counts() == mine, role
        raw.attempt("SELECT set_config('role', %s, false)", role)
        assert raw.counts() == mine, role
        raw.attempt(f'SET SESSION AUTHORIZATION "{role}"')
        raw.attempt("RESET ROLE")
    for name in [*settings, "nexus.org", "app.current_org", "request.jwt.claims", "app.tenant"]:
        for value in (other, "*", "off", "1"):
            raw.attempt("SELECT set_config(%s, %s, false)", name, value)
        assert raw.counts() == mine, name
    for sql in (
        "SET default_transaction_read_only = off",
        "SET search_path = pg_temp, public",
        "CREATE FUNCTION pg_temp.nexus_scope() RETURNS text LANGUAGE sql AS $$ SELECT '*' $$",
        "CREATE FUNCTION pg_temp.nexus_scope_org() RETURNS bigint LANGUAGE sql AS $$ SELECT 1::bigint $$",
        "CREATE OR REPLACE FUNCTION public.nexus_scope() RETURNS text LANGUAGE sql AS $$ SELECT '*' $$",
        "UPDATE nexus_scopes SET org_slug = NULL",
        "INSERT INTO nexus_scopes VALUES (session_user, NULL)",
        "CREATE TEMP VIEW everything AS SELECT * FROM lead_scores",
        "CREATE FUNCTION pg_temp.all_leads() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM public.lead_scores $$",
    ):
        raw.attempt(sql)
    assert raw.counts() == mine
    # a temporary view and a SECURITY DEFINER function of its own run as itself: still scoped
    for probe in ("SELECT count(*) FROM pg_temp.everything", "SELECT pg_temp.all_leads()"):
        assert raw.conn.execute(probe).fetchone()[0] == mine["lead_scores"]
    # an attempt to turn row security off makes queries fail, never widen
    raw.attempt("SET row_security = off")
    with pytest.raises(psycopg.Error, match="row-level security"):
        raw.conn.execute("SELECT count(*) FROM public.lead_scores").fetchone()
    raw.conn.close()
    with db.connect_admin(autocommit=True) as admin:
        assert (
            admin.execute(
                "SELECT count(*) FROM nexus_scopes WHERE org_slug IS NULL AND role_name LIKE '%pico%'"
            ).fetchone()[0]
            == 0
        )
        assert (
            admin.execute(
                "SELECT prosrc FROM pg_proc WHERE proname = 'nexus_scope' AND pronamespace = 'public'::regnamespace"
            )
            .fetchone()[0]
            .strip()
            .startswith("SELECT coalesce")
        )


def test_a_raw_writer_connection_changes_nothing_of_another_organization(db):
    org, other = "pico-labs", "acme-analytics"
    theirs = db.engine_for(other).read("SELECT id, project_id FROM lead_scores ORDER BY id LIMIT 5").df
    ids = ", ".join(map(str, theirs["id"]))
    their_project = int(theirs["project_id"][0])
    my_lead = int(db.engine_for(org).read("SELECT id FROM lead_scores ORDER BY id LIMIT 1").df["id"][0])
    their_org = int(db.engine_for(other).read("SELECT id FROM organizations").df["id"][0])
    before = fingerprint(db)
    with _raw(db.engine_for(org).writer_url) as conn:
        assert conn.execute(f"UPDATE lead_scores SET status = 'converted' WHERE id IN ({ids})").rowcount == 0
        assert conn.execute(f"DELETE FROM outreach_events WHERE lead_id IN ({ids})").rowcount == 0
        assert conn.execute(f"DELETE FROM projects WHERE id = {their_project}").rowcount == 0
        for sql in (
            f"INSERT INTO outreach_events (lead_id, channel, outcome) VALUES ({theirs['id'][0]}, 'email', 'sent')",
            f"UPDATE lead_scores SET project_id = {their_project} WHERE id = {my_lead}",
            f"INSERT INTO projects (org_id, name) VALUES ({their_org}, 'planted')",
            f"UPDATE projects SET org_id = {their_org}",
        ):
            with pytest.raises(psycopg.Error), conn.transaction():
                conn.execute(sql)
    assert fingerprint(db) == before


def test_a_confirmed_cross_organization_update_by_id_changes_nothing(db):
    theirs = (
        db.engine_for("acme-analytics").read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 5").df
    )
    ids = ", ".join(map(str, theirs["id"]))
    store = ConversationStore(db.admin_url, "pico-labs", f"x-{uuid.uuid4().hex[:6]}")
    c = Confirmations(store, lambda: db.engine_for("pico-labs"))
    before = fingerprint(db)
    proposal = c.propose(
        None, "Convert theirs", "by id", f"UPDATE lead_scores SET status = 'converted' WHERE id IN ({ids})"
    )
    assert proposal.dry_run_rows == 0 and proposal.preview[0]["sample"] == []
    outcome = c.confirm(proposal.id, proposal.sql)
    assert outcome.status == "confirmed" and outcome.rows_affected == 0
    assert fingerprint(db) == before
    store.close()


def test_an_unknown_organization_is_a_clear_error_not_an_empty_scope(db):
    from nexusleads_lab.db import QueryError

    with pytest.raises(QueryError, match=r"no organization 'acme' .*acme-analytics"):
        db.engine_for("acme")


def test_the_conversation_store_of_an_organization_reaches_only_its_own_conversations(db):
    from nexusleads_lab.db import QueryError

    alice = ConversationStore(db.store_url("pico-labs"), "pico-labs", "alice-t", guard=True)
    mine = alice.create("pico plans")
    alice.append(mine, "user", {"message": {"role": "user", "content": "pico plan"}})
    bob = ConversationStore(db.store_url("acme-analytics"), "acme-analytics", "bob-t", guard=True)
    theirs = bob.create("acme plans")
    bob.append(theirs, "user", {"message": {"role": "user", "content": "acme secret"}})
    with _raw(db.store_url("pico-labs")) as conn:  # the store's own login, any SQL
        seen = {r[0] for r in conn.execute("SELECT org FROM chat_conversations").fetchall()}
        assert seen == {"pico-labs"}
        assert (
            conn.execute(
                "SELECT count(*) FROM chat_messages m JOIN chat_conversations c ON c.id = m.conversation_id"
                " WHERE c.org <> 'pico-labs'"
            ).fetchone()[0]
            == 0
        )
        assert conn.execute("UPDATE chat_conversations SET title = 'x' WHERE id = %s", (theirs,)).rowcount == 0
        assert conn.execute("DELETE FROM chat_messages WHERE conversation_id = %s", (theirs,)).rowcount == 0
        for sql in (
            "INSERT INTO chat_conversations (org, user_name) VALUES ('acme-analytics', 'alice-t')",
            f"UPDATE chat_conversations SET org = 'acme-analytics' WHERE id = '{mine}'",
            # a message into another organization's conversation, or one of ours moved there
            f"INSERT INTO chat_messages (conversation_id, seq, role, content) VALUES ('{theirs}', 99, 'user', '{{}}')",
            f"UPDATE chat_messages SET conversation_id = '{theirs}' WHERE conversation_id = '{mine}'",
            "SELECT count(*) FROM lead_scores",
            "SELECT count(*) FROM nexus_scopes",
        ):
            with pytest.raises(psycopg.Error), conn.transaction():
                conn.execute(sql)
    assert [m.content["message"]["content"] for m in bob.messages(theirs)] == ["acme secret"]
    # a store that could do more than its job is refused at connect time
    for url, why in (
        (db.admin_url, "superuser"),
        (db.engine_for("pico-labs").agent_url, "can read the lead tables"),
        (db.store_url("acme-analytics"), "bound to organization acme-analytics"),
    ):
        with pytest.raises(QueryError, match=why):
            ConversationStore(url, "pico-labs", "alice-t", guard=True).list()
    for store in (alice, bob):
        store.close()


def test_an_organization_role_that_could_step_outside_its_policies_is_refused(db):
    from nexusleads_lab.db import Engine, QueryError

    role = org_role_names("pico-labs")[0]
    db.engine_for("pico-labs")  # its roles exist
    with db.connect_admin(autocommit=True) as admin:
        admin.execute(f'GRANT nexus_read_all TO "{role}"')  # a DBA's mistake: now it could SET ROLE past the policies
    try:
        engine = Engine(db.engine_for("pico-labs").agent_url, None, scope="pico-labs")
        with pytest.raises(QueryError, match="group roles would not enforce that"):
            engine.read("SELECT 1")
        engine.close()
    finally:
        with db.connect_admin(autocommit=True) as admin:
            admin.execute(f'REVOKE nexus_read_all FROM "{role}"')
