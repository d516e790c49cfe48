"""Proposed writes against a hostile model: nothing runs before the click, the click runs what it
showed, and it changes exactly the rows it counted or nothing. Every case checks the database."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from nexusleads_lab.agent.confirm import ConfirmationError, Confirmations, ProposalError
from nexusleads_lab.config import Settings
from nexusleads_lab.db.database import Database
from nexusleads_lab.db.dml import plan_write
from nexusleads_lab.db.schema import org_role_names
from nexusleads_lab.db.store import ConversationStore
from nexusleads_lab.testing.modelserver import text

from checks import fingerprint, product_locks, sequences

ORG = "acme-analytics"
PWNED = Path("/tmp/nexus-pwned-write")


@pytest.fixture()
def confirmations(db):
    """Proposals as a fresh user of ORG (or another scope), through the product's own objects."""
    made = []

    def make(org: str | None = ORG, user: str | None = None, database=None) -> Confirmations:
        database = database or db
        store = ConversationStore(database.admin_url, org or "*", user or f"w-{uuid.uuid4().hex[:8]}")
        made.append(store)
        return Confirmations(store, lambda: database.engine_for(org))

    yield make
    for store in made:
        store.close()


def new_leads(db, org: str = ORG, n: int = 3) -> list[int]:
    sql = f"SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT {n}"
    return db.engine_for(org).read(sql).df["id"].tolist()


def ids_sql(ids) -> str:
    return ", ".join(map(str, ids))


def audit(db, proposal_id: str):
    with db.connect_admin() as conn:
        return conn.execute(
            "SELECT previewed_rows, found_rows, rows_affected, db_role, error FROM write_audit WHERE confirmation_id = %s",
            (proposal_id,),
        ).fetchall()


REFUSED = [
    ("SELECT 1", "SELECT"),
    (
        "WITH d AS (DELETE FROM lead_scores WHERE id IN (SELECT id FROM lead_scores LIMIT 5) RETURNING 1) SELECT 1 WHERE false",
        "SELECT",
    ),
    (
        "WITH d AS (DELETE FROM outreach_events RETURNING lead_id) UPDATE lead_scores SET score = 0 WHERE id IN (SELECT lead_id FROM d)",
        "WITH",
    ),
    ("DO $$ BEGIN UPDATE lead_scores SET score = 0 WHERE id < 5; END $$", "DO block"),
    (f"COPY (SELECT 1) TO PROGRAM 'touch {PWNED}'", "COPY"),
    (f"COPY lead_scores TO '{PWNED}'", "COPY"),
    ("CALL evil()", "CALL"),
    ("TRUNCATE lead_scores", "TRUNCATE"),
    ("DROP TABLE lead_scores", "Drop"),
    ("ALTER TABLE lead_scores ADD COLUMN x int", "AlterTable"),
    ("MERGE INTO lead_scores t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE", "MERGE"),
    ("BEGIN", "transaction"),
    ("SET ROLE postgres", "SET"),
    ("UPDATE chat_confirmations SET outcome = NULL", "chat_confirmations"),
    ("DELETE FROM write_audit", "write_audit"),
    ("UPDATE users SET password_hash = 'x'", "users"),
    ("UPDATE organizations SET plan = 'enterprise'", "organizations"),
    ("UPDATE contributors SET bio = 'x'", "contributors"),
    ("UPDATE pg_catalog.pg_authid SET rolsuper = true", "pg_catalog.pg_authid"),
    ("UPDATE lead_scores SET score = (SELECT length(password_hash) FROM users LIMIT 1)", "password_hash"),
    ("UPDATE lead_scores SET signals = (SELECT to_jsonb(m) FROM chat_messages m LIMIT 1)", "chat_messages"),
    ("UPDATE lead_scores SET score = 1 WHERE pg_advisory_lock(42) IS NOT NULL", "pg_advisory_lock"),
    (
        "UPDATE lead_scores SET score = 1 WHERE \"pg_advisory_xact_lock\"(hashtext('nexusleads_lab.migrate')) IS NULL",
        "pg_advisory_xact_lock",
    ),
    ("UPDATE lead_scores SET score = 1 WHERE pg_catalog.pg_sleep(30) IS NULL", "pg_catalog.pg_sleep"),
    ("UPDATE lead_scores SET score = 1 WHERE id IN (SELECT id FROM lead_scores FOR UPDATE)", "FOR UPDATE"),
    (
        "INSERT INTO outreach_events (id, lead_id, channel, outcome) VALUES (nextval('outreach_events_id_seq'), 1, 'email', 'sent')",
        "nextval",
    ),
    ("UPDATE lead_scores SET score = 1 WHERE pg_notify('c', 'x') IS NULL", "pg_notify"),
    ("UPDATE lead_scores SET signals = to_jsonb(pg_read_file('/etc/passwd'))", "pg_read_file"),
    ("UPDATE lead_scores SET score = 1 WHERE set_config('role', 'postgres', true) IS NULL", "set_config"),
    ("INSERT INTO outreach_events VALUES (1, 1, 'email', 'sent')", "columns"),
    (
        "INSERT INTO outreach_events (lead_id, channel, outcome) VALUES (1, 'email', 'sent') ON CONFLICT DO NOTHING",
        "ON CONFLICT",
    ),
    (
        "INSERT INTO outreach_events (lead_id, channel, outcome, occurred_at) VALUES (1, 'email', 'sent', DEFAULT)",
        "DEFAULT",
    ),
    ("UPDATE lead_scores SET (score, tier) = (1, 'cold')", "several columns"),
    ("UPDATE lead_scores SET score = 1 WHERE CURRENT OF c", "CURRENT OF"),
    ("UPDATE lead_scores SET score = $1", "parameter"),
    ("UPDATE ONLY lead_scores SET score = 1", "ONLY"),
    ("UPDATE lead_scores SET score = 1; SELECT 1", "Statement 2"),
    ("UPDATE lead_scores SET score = 1 WHERE id = 1; COMMIT; DELETE FROM outreach_events", "Statement 2"),
    ("DELETE FROM lead_scores l USING lead_scores s TABLESAMPLE SYSTEM (10) WHERE l.id = s.id", "TABLESAMPLE"),
    ('UPDATE lead_scores SET score = 1 WHERE id = 1 AND "nexus\u202e" = 1', "name"),
    ("UPDATE lead_scores SET", "does not parse"),
    ("", "no SQL statement"),
    ("  ;  ", "no SQL statement"),
    ("UPDATE lead_scores SET score = 1 WHERE id = '\x00'", "NUL"),
    ("UPDATE lead_scores SET note = '\ud800'", "surrogate"),
]


@pytest.mark.parametrize("sql,why", REFUSED, ids=[f"{i}-{w}" for i, (_, w) in enumerate(REFUSED)])
def test_a_proposal_outside_the_rules_is_refused_with_one_sentence_and_nothing_runs(db, confirmations, sql, why):
    PWNED.unlink(missing_ok=True)
    before, seqs = fingerprint(db), sequences(db)
    with pytest.raises(ProposalError) as info:
        confirmations().propose(None, "t", "s", sql)
    message = str(info.value)
    assert why in message and "\n" not in message and len(message) < 600, message
    assert fingerprint(db) == before and sequences(db) == seqs
    assert not PWNED.exists()
    assert product_locks(db) == []


def test_the_card_shows_the_parsers_canonical_text_so_a_hidden_or_true_is_visible_and_counted(db, confirmations):
    ids = new_leads(db, n=1)
    everyone_in_scope = int(db.engine_for(ORG).read("SELECT count(*) AS n FROM lead_scores").df["n"][0])
    # U+202E reverses the display of what follows: the comment "hides" OR true on screen.
    trick = f"UPDATE lead_scores SET score = score WHERE id = {ids[0]} /*\u202e eurt RO */ OR true"
    ansi = f"UPDATE lead_scores SET score = score WHERE id = {ids[0]} /* \x1b[2K\x1b[1A\x1b[8m */ OR true"
    for sql in (trick, ansi):
        proposal = confirmations().propose(None, "Touch one lead", "One lead", sql)
        assert proposal.sql == f"UPDATE lead_scores SET score = score WHERE id = {ids[0]} OR TRUE"
        assert proposal.dry_run_rows == everyone_in_scope, "the count is what the statement really touches"
        assert "\u202e" not in json.dumps(proposal.as_dict()) and "\x1b" not in json.dumps(proposal.as_dict())


def test_control_characters_in_literals_are_shown_escaped_and_run_as_written(db, confirmations):
    lead = new_leads(db, n=1)[0]
    note = "line one\nline two \u202e evil \x1b[31m red"
    sql = f"INSERT INTO outreach_events (lead_id, channel, outcome, note) VALUES ({lead}, 'email', 'sent', '{note}')"
    c = confirmations()
    proposal = c.propose(None, "Log", "one", sql)
    assert proposal.sql.endswith("E'line one\\nline two \\u202E evil \\x1B[31m red')")
    assert proposal.sql.isascii() and proposal.dry_run_rows == 1
    assert plan_write(proposal.sql).sql == proposal.sql, "the shown text is itself canonical"
    try:
        outcome = c.confirm(proposal.id, proposal.sql)
        assert outcome.status == "confirmed" and outcome.rows_affected == 1
        with db.connect_admin() as conn:
            stored = conn.execute(
                "SELECT note FROM outreach_events WHERE lead_id = %s ORDER BY id DESC LIMIT 1", (lead,)
            ).fetchone()[0]
        assert stored == note
    finally:
        with db.connect_admin() as conn:
            conn.execute("DELETE FROM outreach_events WHERE lead_id = %s AND note = %s", (lead, note))


def test_a_bulk_insert_select_previews_without_consuming_sequence_values_or_writing_wal(db, confirmations):
    # ~45,000 rows: run for real (as the old rolled-back dry run did) it writes many MB of WAL
    sql = (
        "INSERT INTO outreach_events (lead_id, channel, outcome, note) "
        "SELECT id, 'email', 'sent', 'bulk' FROM lead_scores, generate_series(1, 50) AS n"
    )
    with db.connect_admin(autocommit=True) as conn:
        wal_before = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        before, seqs = fingerprint(db), sequences(db)
        proposal = confirmations().propose(None, "Log everyone", "all", sql)
        assert sequences(db) == seqs, "previewing an INSERT consumed no sequence values"
        assert fingerprint(db) == before
        wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (wal_before,)).fetchone()[0]
    in_scope = int(db.engine_for(ORG).read("SELECT count(*) AS n FROM lead_scores").df["n"][0])
    assert proposal.dry_run_rows == 50 * in_scope
    assert len(proposal.preview[0]["sample"]) == 5 and proposal.preview[0]["sample"][0]["after"]["note"] == "bulk"
    # cluster-wide WAL also holds autovacuum's work from earlier tests: a generous bound, far below a real run
    assert wal < 2 * 1024 * 1024, f"the preview wrote {wal} bytes of WAL (only the proposal row may be written)"
    assert product_locks(db) == []


def test_a_preview_holds_no_lock_that_blocks_another_session(db, confirmations):
    ids = new_leads(db)
    sql = f"UPDATE lead_scores SET status = 'contacted' WHERE id IN ({ids_sql(ids)})"
    proposal = confirmations().propose(None, "t", "s", sql)
    assert proposal.dry_run_rows == 3
    assert product_locks(db) == []
    with psycopg.connect(db.admin_url, autocommit=True) as other:
        other.execute("SET lock_timeout = '200ms'")
        with other.transaction():  # would block if the preview had locked these rows
            other.execute(f"SELECT id FROM lead_scores WHERE id IN ({ids_sql(ids)}) FOR UPDATE NOWAIT").fetchall()


def test_a_preview_error_is_a_refusal_that_leaks_no_password_hash(db, confirmations):
    with db.connect_admin() as conn:
        hashes = [
            r[0] for r in conn.execute("SELECT password_hash FROM users WHERE password_hash IS NOT NULL").fetchall()
        ]
    assert hashes
    attempts = [
        "SELECT CAST((SELECT string_agg(email || ':' || password_hash, ' ') FROM users) AS int)",
        "UPDATE lead_scores SET score = CAST((SELECT string_agg(u::text, ' ') FROM users u) AS int)",
        'UPDATE lead_scores SET score = (SELECT u."password_hash" FROM users u LIMIT 1)::int',
    ]
    for sql in attempts:
        with pytest.raises(ProposalError) as info:
            confirmations().propose(None, "t", "s", sql)
        assert not any(h in str(info.value) for h in hashes)


def test_a_bad_value_is_refused_at_the_preview_not_at_the_click(db, confirmations):
    ids = new_leads(db, n=1)
    with pytest.raises(ProposalError, match=r"could not be previewed.*smallint"):
        confirmations().propose(None, "t", "s", f"UPDATE lead_scores SET score = 'high' WHERE id = {ids[0]}")


def test_data_that_drifts_between_preview_and_click_rolls_back_and_says_so(db, confirmations):
    ids = new_leads(db)
    c = confirmations()
    sql = f"UPDATE lead_scores SET status = 'contacted', status_changed_at = now() WHERE id IN ({ids_sql(ids)}) AND status = 'new'"
    proposal = c.propose(None, "Mark 3", "three", sql)
    assert proposal.dry_run_rows == 3
    with db.connect_admin() as conn:  # somebody else contacts one of them meanwhile
        conn.execute("UPDATE lead_scores SET status = 'contacted' WHERE id = %s", (ids[0],))
    try:
        before = fingerprint(db)
        outcome = c.confirm(proposal.id, proposal.sql)
        assert outcome.status == "failed" and outcome.rows_affected == 0
        assert "nothing was written: would now change 2 rows, not 3" in outcome.error
        assert outcome.report().startswith(f"CONFIRM_ACTION: {proposal.id} failed: nothing was written")
        assert fingerprint(db) == before
        assert audit(db, proposal.id) == [(3, 2, 0, org_role_names(ORG)[1], outcome.error)]
        with pytest.raises(ConfirmationError, match="already"):
            c.confirm(proposal.id, proposal.sql)
    finally:
        with db.connect_admin() as conn:
            conn.execute(f"UPDATE lead_scores SET status = 'new' WHERE id IN ({ids_sql(ids)})")


def test_several_statements_run_in_one_transaction_each_counted(db, confirmations):
    ids = new_leads(db)
    c = confirmations()
    sql = (
        f"UPDATE lead_scores SET status = 'contacted' WHERE id IN ({ids_sql(ids)}) AND status = 'new';"
        f"INSERT INTO outreach_events (lead_id, channel, outcome, note) SELECT id, 'email', 'sent', 'multi' "
        f"FROM lead_scores WHERE id IN ({ids_sql(ids)})"
    )
    proposal = c.propose(None, "Mark and log", "both", sql)
    assert [p["rows"] for p in proposal.preview] == [3, 3] and proposal.dry_run_rows == 6
    assert proposal.sql.count(";\n") == 1 and proposal.sql.endswith(";")
    try:
        outcome = c.confirm(proposal.id, proposal.sql)
        assert outcome.status == "confirmed" and outcome.rows_affected == 6
        with db.connect_admin() as conn:
            assert conn.execute("SELECT count(*) FROM outreach_events WHERE note = 'multi'").fetchone()[0] == 3
    finally:
        with db.connect_admin() as conn:
            conn.execute("DELETE FROM outreach_events WHERE note = 'multi'")
            conn.execute(f"UPDATE lead_scores SET status = 'new' WHERE id IN ({ids_sql(ids)})")


def test_a_later_statement_that_depends_on_an_earlier_ones_change_writes_nothing(db, confirmations):
    ids = new_leads(db)
    c = confirmations()
    sql = (
        f"UPDATE lead_scores SET status = 'contacted' WHERE id IN ({ids_sql(ids)});"
        "INSERT INTO outreach_events (lead_id, channel, outcome, note) SELECT id, 'email', 'sent', 'dep' "
        f"FROM lead_scores WHERE id IN ({ids_sql(ids)}) AND status = 'new'"
    )
    proposal = c.propose(None, "t", "s", sql)
    before = fingerprint(db)
    outcome = c.confirm(proposal.id, proposal.sql)
    assert outcome.status == "failed" and "statement 2 would now change 0 rows, not 3" in outcome.error
    assert fingerprint(db) == before, "the first statement was rolled back too"


def test_without_a_writer_url_a_superuser_database_url_is_never_used_to_write(db, confirmations):
    """The README's production example: DATABASE_URL (here a superuser) and no writer URL."""
    prod = Database(admin_url=db.admin_url, settings=Settings(database_url=db.admin_url, org=ORG))
    try:
        PWNED.unlink(missing_ok=True)
        c = confirmations(database=prod)
        with pytest.raises(ProposalError):
            c.propose(None, "t", "s", f"COPY (SELECT 1) TO PROGRAM 'touch {PWNED}'")
        ids = new_leads(db, n=1)
        proposal = c.propose(None, "t", "s", f"UPDATE lead_scores SET status = 'contacted' WHERE id = {ids[0]}")
        assert proposal.dry_run_rows == 1 and "NEXUS_WRITER_DATABASE_URL" in proposal.dry_run_error
        before = fingerprint(db)
        with pytest.raises(ConfirmationError, match="Confirmed writes are not configured"):
            c.confirm(proposal.id, proposal.sql)
        assert fingerprint(db) == before and not PWNED.exists()
    finally:
        prod.close()


def test_the_writer_and_reader_refuse_a_privileged_or_mis_scoped_role(db):
    from nexusleads_lab.db import Engine, QueryError

    cases = [
        (Engine(db.engine.agent_url, db.admin_url), "writer", "superuser"),  # a superuser as the writer
        (Engine(db.engine_for(ORG).agent_url, db.engine.writer_url, scope=ORG), "writer", "bound to all organizations"),
        (Engine(db.engine.agent_url, None, scope=ORG), "reader", "bound to all organizations"),
        (Engine(db.engine_for("pico-labs").agent_url, None, scope=ORG), "reader", "bound to organization pico-labs"),
    ]
    ids = new_leads(db, n=1)
    before = fingerprint(db)
    for engine, kind, why in cases:
        with pytest.raises(QueryError, match=why):
            if kind == "writer":
                engine.write([f"UPDATE lead_scores SET status = 'contacted' WHERE id = {ids[0]}"], [1])
            else:
                engine.read("SELECT 1")
        engine.close()
    assert fingerprint(db) == before


def test_a_refused_proposal_goes_back_to_the_model_which_corrects_it(db, scripted_assistant):
    ids = new_leads(db, n=2)
    bad = {
        "type": "confirm",
        "id": "a",
        "title": "Mark 2",
        "summary": "s",
        "sql": f"WITH x AS (SELECT 1) UPDATE lead_scores SET status = 'contacted' WHERE id IN ({ids_sql(ids)})",
    }
    good = {**bad, "sql": f"UPDATE lead_scores SET status = 'contacted' WHERE id IN ({ids_sql(ids)})"}
    assistant = scripted_assistant([text(json.dumps(bad)), text(json.dumps(good))], org=ORG)
    result = assistant.ask("mark these two as contacted")
    told = assistant.server.requests[-1]["messages"][-1]["content"]
    assert told.startswith("CONFIRM_REFUSED:") and "WITH" in told
    assert result.proposal is not None and result.proposal.dry_run_rows == 2 and "WITH" not in result.proposal.sql


def test_a_model_that_keeps_proposing_refused_sql_ends_in_a_message_not_a_card(scripted_assistant):
    refused = {"type": "confirm", "id": "a", "title": "t", "summary": "s", "sql": "DO $$ BEGIN NULL; END $$"}
    result = scripted_assistant([text(json.dumps(refused))] * 2, org=ORG).ask("do something")
    assert result.ok and result.proposal is None
    assert result.response.type == "message" and "refused and nothing ran" in result.response.text


def test_a_misspelt_write_keyword_is_refused_with_the_nearest_command_and_nothing_runs(db, confirmations):
    before = fingerprint(db)
    with pytest.raises(ProposalError, match=r"starts with 'updte', which is not an SQL command: did you mean UPDATE\?"):
        confirmations().propose(None, "t", "s", "updte lead_scores set score = 1 where id = 1")
    assert fingerprint(db) == before


def test_the_confirmation_window_is_read_from_the_environment_when_confirmations_are_made(monkeypatch):
    from datetime import timedelta

    monkeypatch.setenv("NEXUS_CONFIRM_TTL_MINUTES", "2")  # after import: read when made, not when imported
    assert Confirmations(None, lambda: None).ttl == timedelta(minutes=2)
    monkeypatch.delenv("NEXUS_CONFIRM_TTL_MINUTES")
    assert Confirmations(None, lambda: None).ttl == timedelta(minutes=15)
    monkeypatch.setenv("NEXUS_CONFIRM_TTL_MINUTES", "soon")
    with pytest.raises(ValueError, match="NEXUS_CONFIRM_TTL_MINUTES must be a whole number, got 'soon'"):
        Confirmations(None, lambda: None)
