"""Migrations on an empty database: idempotent, versioned, and the roles they grant."""

from __future__ import annotations

import psycopg
import pytest

from nexusleads_lab.db import schema


def test_migrations_build_the_schema_once_and_rerun_as_no_ops(fresh_database_url):
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        assert schema.schema_version(conn) == 0
        assert schema.migrate(conn) == [m.version for m in schema.MIGRATIONS]
        assert schema.migrate(conn) == []
        assert schema.schema_version(conn) == schema.CURRENT_VERSION
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert set(schema.LEAD_TABLES) | set(schema.CHAT_TABLES) <= tables


def test_a_half_applied_schema_is_completed(fresh_database_url):
    """Objects created by hand before (IF NOT EXISTS) do not stop the migration."""
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE organizations (id bigserial PRIMARY KEY, slug text NOT NULL UNIQUE, name text NOT NULL,"
            " plan text NOT NULL DEFAULT 'team', created_at timestamptz NOT NULL DEFAULT now())"
        )
        schema.migrate(conn)
        assert schema.schema_version(conn) == schema.CURRENT_VERSION


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO lead_scores (project_id, contributor_id, score, tier) VALUES (1, 1, 101, 'hot')",
        "INSERT INTO lead_scores (project_id, contributor_id, score, tier) VALUES (1, 1, 50, 'lukewarm')",
        "INSERT INTO projects (org_id, name, status) VALUES (1, 'x', 'deleted')",
        "INSERT INTO repositories (project_id, full_name) VALUES (1, 'not a repo name')",
        "INSERT INTO repositories (project_id, full_name, stars) VALUES (1, 'a/b', -1)",
        "INSERT INTO outreach_events (lead_id, channel, outcome) VALUES (999999, 'email', 'sent')",
    ],
)
def test_constraints_reject_impossible_rows(fresh_database_url, sql):
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        schema.migrate(conn)
        conn.execute("INSERT INTO organizations (slug, name) VALUES ('o', 'O')")
        conn.execute("INSERT INTO projects (org_id, name) VALUES (1, 'p')")
        conn.execute("INSERT INTO contributors (github_login) VALUES ('c')")
        with pytest.raises(psycopg.errors.IntegrityError):
            conn.execute(sql)


def test_role_statements_are_rerunnable_and_grant_only_reads(fresh_database_url):
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        schema.migrate(conn)
        schema.ensure_roles(conn)
        schema.ensure_roles(conn)
        can = dict(
            conn.execute(
                "SELECT t, has_table_privilege('nexus_agent', t, 'SELECT') FROM unnest(%s::text[]) t",
                (list(schema.LEAD_TABLES) + list(schema.CHAT_TABLES),),
            ).fetchall()
        )
        writes = conn.execute(
            "SELECT bool_or(has_table_privilege('nexus_agent', t, 'INSERT,UPDATE,DELETE,TRUNCATE')) FROM unnest(%s::text[]) t",
            (list(schema.LEAD_TABLES),),
        ).fetchone()[0]
        hash_col = conn.execute(
            "SELECT has_column_privilege('nexus_agent', 'users', 'password_hash', 'SELECT')"
        ).fetchone()[0]
    assert all(can[t] for t in schema.LEAD_TABLES if t != "users")
    assert not any(can[t] for t in schema.CHAT_TABLES)
    assert writes is False
    assert hash_col is False
