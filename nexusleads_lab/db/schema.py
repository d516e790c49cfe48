"""Versioned, idempotent migrations for the PLG lead schema, and the least-privilege roles.

Every migration is plain SQL that may be re-run (``IF NOT EXISTS``), is applied once per
database (recorded in ``nexus_schema_migrations``), and runs in its own transaction, so an
empty production database and the embedded one end up with the same schema.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

LEAD_TABLES = (
    "organizations",
    "users",
    "projects",
    "repositories",
    "contributors",
    "repository_contributors",
    "lead_scores",
    "outreach_events",
)
CHAT_TABLES = ("chat_conversations", "chat_messages", "chat_confirmations", "write_audit")

AGENT_ROLE = "nexus_agent"
WRITER_ROLE = "nexus_writer"

# Columns of `users` the agent may read: everything but the password hash.
USER_COLUMNS_FOR_AGENT = ("id", "org_id", "email", "full_name", "role", "created_at", "last_login_at")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "lead schema",
        """
CREATE TABLE IF NOT EXISTS organizations (
    id          bigserial PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    name        text NOT NULL,
    plan        text NOT NULL DEFAULT 'team' CHECK (plan IN ('free', 'team', 'enterprise')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
    id             bigserial PRIMARY KEY,
    org_id         bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email          text NOT NULL UNIQUE,
    full_name      text NOT NULL,
    role           text NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member', 'viewer')),
    password_hash  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);
CREATE INDEX IF NOT EXISTS users_org_idx ON users (org_id);

CREATE TABLE IF NOT EXISTS projects (
    id           bigserial PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text,
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'archived')),
    owner_id     bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE IF NOT EXISTS repositories (
    id               bigserial PRIMARY KEY,
    project_id       bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    full_name        text NOT NULL CHECK (full_name ~ '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$'),
    description      text,
    language         text,
    stars            integer NOT NULL DEFAULT 0 CHECK (stars >= 0),
    forks            integer NOT NULL DEFAULT 0 CHECK (forks >= 0),
    open_issues      integer NOT NULL DEFAULT 0 CHECK (open_issues >= 0),
    topics           text[] NOT NULL DEFAULT '{}',
    last_pushed_at   timestamptz,
    tracking_status  text NOT NULL DEFAULT 'tracking'
                     CHECK (tracking_status IN ('tracking', 'paused', 'stale', 'archived')),
    added_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, full_name)
);
CREATE INDEX IF NOT EXISTS repositories_language_idx ON repositories (language);
CREATE INDEX IF NOT EXISTS repositories_stars_idx ON repositories (stars DESC);

CREATE TABLE IF NOT EXISTS contributors (
    id             bigserial PRIMARY KEY,
    github_login   text NOT NULL UNIQUE CHECK (length(github_login) BETWEEN 1 AND 64),
    name           text,
    email          text,
    company        text,
    location       text,
    bio            text,
    followers      integer NOT NULL DEFAULT 0 CHECK (followers >= 0),
    public_repos   integer NOT NULL DEFAULT 0 CHECK (public_repos >= 0),
    hireable       boolean,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS contributors_company_idx ON contributors (company);

CREATE TABLE IF NOT EXISTS repository_contributors (
    repository_id          bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    contributor_id         bigint NOT NULL REFERENCES contributors(id) ON DELETE CASCADE,
    commits                integer NOT NULL DEFAULT 0 CHECK (commits >= 0),
    merged_prs             integer NOT NULL DEFAULT 0 CHECK (merged_prs >= 0),
    first_contribution_at  timestamptz,
    last_contribution_at   timestamptz,
    PRIMARY KEY (repository_id, contributor_id),
    CHECK (first_contribution_at IS NULL OR last_contribution_at IS NULL
           OR first_contribution_at <= last_contribution_at)
);
CREATE INDEX IF NOT EXISTS repository_contributors_contributor_idx ON repository_contributors (contributor_id);

CREATE TABLE IF NOT EXISTS lead_scores (
    id                 bigserial PRIMARY KEY,
    project_id         bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    contributor_id     bigint NOT NULL REFERENCES contributors(id) ON DELETE CASCADE,
    score              smallint NOT NULL CHECK (score BETWEEN 0 AND 100),
    tier               text NOT NULL CHECK (tier IN ('hot', 'warm', 'cold')),
    status             text NOT NULL DEFAULT 'new'
                       CHECK (status IN ('new', 'contacted', 'qualified', 'disqualified', 'converted')),
    signals            jsonb NOT NULL DEFAULT '{}',
    scored_at          timestamptz NOT NULL DEFAULT now(),
    status_changed_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, contributor_id)
);
CREATE INDEX IF NOT EXISTS lead_scores_project_tier_status_idx ON lead_scores (project_id, tier, status);
CREATE INDEX IF NOT EXISTS lead_scores_project_score_idx ON lead_scores (project_id, score DESC);
CREATE INDEX IF NOT EXISTS lead_scores_contributor_idx ON lead_scores (contributor_id);
CREATE INDEX IF NOT EXISTS lead_scores_status_changed_idx ON lead_scores (status_changed_at);

CREATE TABLE IF NOT EXISTS outreach_events (
    id           bigserial PRIMARY KEY,
    lead_id      bigint NOT NULL REFERENCES lead_scores(id) ON DELETE CASCADE,
    channel      text NOT NULL CHECK (channel IN ('email', 'linkedin', 'twitter', 'github', 'call')),
    outcome      text NOT NULL CHECK (outcome IN ('sent', 'opened', 'replied', 'bounced', 'meeting', 'no_response')),
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    created_by   bigint REFERENCES users(id) ON DELETE SET NULL,
    note         text
);
CREATE INDEX IF NOT EXISTS outreach_events_lead_idx ON outreach_events (lead_id, occurred_at);
""",
    ),
    Migration(
        2,
        "chat tables and write audit",
        """
CREATE TABLE IF NOT EXISTS chat_conversations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org         text NOT NULL,
    user_name   text NOT NULL,
    title       text NOT NULL DEFAULT 'New conversation',
    model       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS chat_conversations_owner_idx ON chat_conversations (org, user_name, updated_at DESC);

CREATE TABLE IF NOT EXISTS chat_messages (
    id               bigserial PRIMARY KEY,
    conversation_id  uuid NOT NULL REFERENCES chat_conversations(id) ON DELETE CASCADE,
    seq              integer NOT NULL,
    role             text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool', 'event')),
    content          jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, seq)
);

CREATE TABLE IF NOT EXISTS chat_confirmations (
    id               text PRIMARY KEY,
    conversation_id  uuid REFERENCES chat_conversations(id) ON DELETE CASCADE,
    org              text NOT NULL,
    user_name        text NOT NULL,
    title            text NOT NULL DEFAULT '',
    sql              text NOT NULL,
    sql_sha256       text NOT NULL,
    dry_run_rows     bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    resolved_at      timestamptz,
    outcome          text CHECK (outcome IN ('confirmed', 'cancelled', 'failed', 'expired'))
);

CREATE TABLE IF NOT EXISTS write_audit (
    id               bigserial PRIMARY KEY,
    org              text NOT NULL,
    user_name        text NOT NULL,
    confirmation_id  text,
    sql              text NOT NULL,
    sql_sha256       text NOT NULL,
    rows_affected    bigint,
    error            text,
    executed_at      timestamptz NOT NULL DEFAULT now()
);
""",
    ),
)

CURRENT_VERSION = MIGRATIONS[-1].version


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied now."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS nexus_schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied: list[int] = []
    for migration in MIGRATIONS:
        with conn.transaction():
            # Serialise concurrent first starts (a kernel and a CLI at once).
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('nexusleads_lab.migrate'))")
            done = conn.execute(
                "SELECT 1 FROM nexus_schema_migrations WHERE version = %s", (migration.version,)
            ).fetchone()
            if done:
                continue
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO nexus_schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied.append(migration.version)
    return applied


def schema_version(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT to_regclass('nexus_schema_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    version = conn.execute("SELECT coalesce(max(version), 0) FROM nexus_schema_migrations").fetchone()
    return int(version[0]) if version else 0


def role_statements(agent_password: str | None = None, writer_password: str | None = None) -> list[str]:
    """The statements that create the agent's read-only role and the confirmed-write role.

    Run by the embedded database's setup, and printed by ``nexus-lab db roles`` for a
    production database administrator. Each is safe to re-run.
    """

    def create(role: str, password: str | None) -> str:
        pw = f" PASSWORD '{password}'" if password else ""
        return (
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS{pw}; "
            f"END IF; END $$"
        )

    readable = [t for t in LEAD_TABLES if t != "users"]
    stmts = [
        create(AGENT_ROLE, agent_password),
        f"ALTER ROLE {AGENT_ROLE} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {AGENT_ROLE}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {AGENT_ROLE}",
        f"GRANT USAGE ON SCHEMA public TO {AGENT_ROLE}",
        f"GRANT SELECT ON {', '.join(readable)} TO {AGENT_ROLE}",
        f"GRANT SELECT ({', '.join(USER_COLUMNS_FOR_AGENT)}) ON users TO {AGENT_ROLE}",
        # Defence in depth: even a connection that forgets its options starts read-only and bounded.
        f"ALTER ROLE {AGENT_ROLE} SET default_transaction_read_only = on",
        f"ALTER ROLE {AGENT_ROLE} SET statement_timeout = '15s'",
        f"ALTER ROLE {AGENT_ROLE} SET idle_in_transaction_session_timeout = '60s'",
        f"ALTER ROLE {AGENT_ROLE} SET lock_timeout = '5s'",
        # Agent sessions never publish their query text in pg_stat_activity, so one user's
        # questions are invisible to another user's agent (they share the role).
        f"ALTER ROLE {AGENT_ROLE} SET track_activities = off",
        # A role may signal backends of its own role; agent sessions belong to many users.
        "REVOKE EXECUTE ON FUNCTION pg_terminate_backend(integer, bigint) FROM PUBLIC",
        "REVOKE EXECUTE ON FUNCTION pg_cancel_backend(integer) FROM PUBLIC",
        create(WRITER_ROLE, writer_password),
        f"ALTER ROLE {WRITER_ROLE} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
        f"GRANT USAGE ON SCHEMA public TO {WRITER_ROLE}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(readable)} TO {WRITER_ROLE}",
        f"GRANT SELECT ({', '.join(USER_COLUMNS_FOR_AGENT)}) ON users TO {WRITER_ROLE}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {WRITER_ROLE}",
        f"ALTER ROLE {WRITER_ROLE} SET statement_timeout = '60s'",
    ]
    return stmts


def ensure_roles(conn: psycopg.Connection) -> None:
    """Create or refresh the least-privilege roles (needs a role that may create roles)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('nexusleads_lab.roles'))")
        for stmt in role_statements():
            conn.execute(stmt.encode())
