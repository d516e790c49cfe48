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
# What a confirmed write may change. Organizations, users and contributors (GitHub people
# shared by every organization) are not the assistant's to change.
WRITABLE_TABLES = ("projects", "repositories", "repository_contributors", "lead_scores", "outreach_events")

# Group roles hold the privileges; login roles are members and carry one scope each.
READ_GROUP = "nexus_read"  # an organization's readers: bound by the restrictive policies
WRITE_GROUP = "nexus_write"  # an organization's writers: bound likewise
# The same privileges for the all-organizations roles, with no policy (and no per-row cost). A
# scoped role is never a member, so SET ROLE cannot take it there.
READ_ALL_GROUP = "nexus_read_all"
WRITE_ALL_GROUP = "nexus_write_all"
CHAT_GROUP = "nexus_chat"  # the conversation store: the chat, confirmation and audit tables only
AGENT_ROLE = "nexus_agent"  # reads, every organization (the admin scope)
WRITER_ROLE = "nexus_writer"  # confirmed writes, every organization
STORE_ROLE = "nexus_store"  # conversations, confirmations, audit, every organization's ('*') label
ALL_ORGS = "*"  # the scope label of the all-organizations roles

# The product's own objects outside the lead schema (the read path's aggregate guard).
PRODUCT_SCHEMA = "nexus_lab"

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
    Migration(
        3,
        "organization scopes and row-level security",
        """
-- Which organization each product login role may see: the binding a session cannot change
-- from inside its own SQL (it is keyed on session_user, which only a superuser can alter).
CREATE TABLE IF NOT EXISTS nexus_scopes (
    role_name   name PRIMARY KEY,
    org_slug    text,  -- NULL: every organization (the admin scope)
    created_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON nexus_scopes FROM PUBLIC;

CREATE OR REPLACE FUNCTION nexus_scope() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(s.org_slug, '*') FROM public.nexus_scopes s WHERE s.role_name = session_user $$;

CREATE OR REPLACE FUNCTION nexus_scope_org() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT o.id FROM public.nexus_scopes s JOIN public.organizations o ON o.slug = s.org_slug
      WHERE s.role_name = session_user $$;

-- Row-level security on every table holding an organization's data. This permissive policy
-- keeps every other role of a shared database as it was; the product's roles get restrictive
-- policies on top (see role_statements).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['organizations', 'users', 'projects', 'repositories', 'contributors',
                             'repository_contributors', 'lead_scores', 'outreach_events'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS nexus_others ON %I', t);
        EXECUTE format('CREATE POLICY nexus_others ON %I USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;

ALTER TABLE chat_confirmations ADD COLUMN IF NOT EXISTS preview jsonb;
ALTER TABLE chat_confirmations ADD COLUMN IF NOT EXISTS statement_rows bigint[];
ALTER TABLE write_audit ADD COLUMN IF NOT EXISTS previewed_rows bigint;
ALTER TABLE write_audit ADD COLUMN IF NOT EXISTS found_rows bigint;
ALTER TABLE write_audit ADD COLUMN IF NOT EXISTS db_role text;

-- The all-organizations scope was stored as 'default'; it is '*' now (never a valid slug).
UPDATE chat_conversations SET org = '*'
 WHERE org = 'default' AND NOT EXISTS (SELECT 1 FROM organizations WHERE slug = 'default');
UPDATE chat_confirmations SET org = '*'
 WHERE org = 'default' AND NOT EXISTS (SELECT 1 FROM organizations WHERE slug = 'default');
UPDATE write_audit SET org = '*'
 WHERE org = 'default' AND NOT EXISTS (SELECT 1 FROM organizations WHERE slug = 'default');
""",
    ),
    Migration(
        4,
        "row-level security on the conversation store",
        """
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['chat_conversations', 'chat_messages', 'chat_confirmations', 'write_audit'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS nexus_others ON %I', t);
        EXECUTE format('CREATE POLICY nexus_others ON %I USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;
""",
    ),
    Migration(
        5,
        "a lease per conversation: one turn at a time across server processes",
        """
-- Who runs the conversation's turn now, and until when (renewed while it runs; a holder that
-- died lets go when its lease runs out). No connection or lock is held for the turn's length.
ALTER TABLE chat_conversations ADD COLUMN IF NOT EXISTS turn_holder text;
ALTER TABLE chat_conversations ADD COLUMN IF NOT EXISTS turn_until timestamptz;
""",
    ),
    Migration(
        6,
        "a bound on the values aggregates build on the read path",
        f"""
-- The read path puts this guard next to every value-building aggregate (string_agg, array_agg,
-- json(b)_agg, json(b)_object_agg, xmlagg, JSON_ARRAYAGG/OBJECTAGG) of a model's statement: it
-- adds up the bytes going into the value and stops the statement once they pass the bound, so
-- the backend never builds one value up to PostgreSQL's own 1 GB limit (readsql.guard_aggregates).
-- The built-in aggregate keeps doing the work at C speed; the guard's state is one bigint. No SET
-- search_path: it runs with the caller's rights and touches nothing, and a per-call setting would
-- double its cost (about 2 us a row). STRICT: a NULL input adds nothing, as it adds nothing to the value.
CREATE SCHEMA IF NOT EXISTS {PRODUCT_SCHEMA};
CREATE OR REPLACE FUNCTION {PRODUCT_SCHEMA}.value_bound_step(total bigint, bytes bigint, bound bigint, what text)
RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    total := total + bytes;
    IF total > bound THEN
        RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
            -- the alternative is in the message: the driver does not hand a HINT over
            MESSAGE = format('%s would build one value of more than %s MiB, the most one value of a result '
                             'may be (a quarter of NEXUS_RESULT_MAX_BYTES); the statement was stopped there. '
                             'Aggregate fewer rows (a WHERE, a GROUP BY, or a LIMIT in a subquery), or compute '
                             'a summary (count(*), sum(length(...))) instead', what, round(bound / 1048576.0, 1));
    END IF;
    RETURN total;
END $$;
CREATE OR REPLACE AGGREGATE {PRODUCT_SCHEMA}.value_bound(bigint, bigint, text) (
    SFUNC = {PRODUCT_SCHEMA}.value_bound_step, STYPE = bigint, INITCOND = '0',
    -- partial totals add up: a parallel plan stays possible (each worker stops at the bound)
    COMBINEFUNC = pg_catalog.int8pl, PARALLEL = SAFE
);
REVOKE ALL ON FUNCTION {PRODUCT_SCHEMA}.value_bound_step(bigint, bigint, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION {PRODUCT_SCHEMA}.value_bound(bigint, bigint, text) FROM PUBLIC;
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


# -- roles ---------------------------------------------------------------------------------

_ORG = "(SELECT public.nexus_scope_org())"
_ORG_PROJECTS = f"SELECT p.id FROM public.projects p WHERE p.org_id = {_ORG}"
_ORG_USERS = f"SELECT u.id FROM public.users u WHERE u.org_id = {_ORG}"

# For each table: the rows an organization's session may see and write (policies for READ_GROUP
# and WRITE_GROUP; the all-organizations roles are in the *_ALL groups instead).
SCOPE_POLICIES: dict[str, str] = {
    "organizations": f"id = {_ORG}",
    "users": f"org_id = {_ORG}",
    "projects": f"org_id = {_ORG} AND (owner_id IS NULL OR owner_id IN ({_ORG_USERS}))",
    "repositories": f"project_id IN ({_ORG_PROJECTS})",
    "repository_contributors": (
        "repository_id IN (SELECT r.id FROM public.repositories r JOIN public.projects p ON p.id = r.project_id"
        f" WHERE p.org_id = {_ORG})"
    ),
    "lead_scores": f"project_id IN ({_ORG_PROJECTS})",
    "outreach_events": (
        "lead_id IN (SELECT l.id FROM public.lead_scores l JOIN public.projects p ON p.id = l.project_id"
        f" WHERE p.org_id = {_ORG}) AND (created_by IS NULL OR created_by IN ({_ORG_USERS}))"
    ),
    # GitHub people are shared: an organization sees those its projects reach.
    "contributors": (
        "id IN (SELECT l.contributor_id FROM public.lead_scores l JOIN public.projects p ON p.id = l.project_id"
        f" WHERE p.org_id = {_ORG})"
        " OR id IN (SELECT rc.contributor_id FROM public.repository_contributors rc"
        " JOIN public.repositories r ON r.id = rc.repository_id JOIN public.projects p ON p.id = r.project_id"
        f" WHERE p.org_id = {_ORG})"
    ),
}

# The store's rows of a scope: conversations, confirmations and audit rows labelled with it.
_LABEL = "(SELECT public.nexus_scope())"
CHAT_POLICIES: dict[str, str] = {
    "chat_conversations": f"org = {_LABEL}",
    # EXISTS on the message's own conversation is one index lookup; ``conversation_id IN (SELECT
    # ...)`` hashed every conversation of the scope for each write (3.8 ms with 10,000 of them).
    "chat_messages": (
        "EXISTS (SELECT 1 FROM public.chat_conversations c"
        f" WHERE c.id = chat_messages.conversation_id AND c.org = {_LABEL})"
    ),
    "chat_confirmations": f"org = {_LABEL}",
    "write_audit": f"org = {_LABEL}",
}

# Session settings every product login role starts with (settings do not inherit from groups).
_READER_SETTINGS = (
    "default_transaction_read_only = on",
    "statement_timeout = '15s'",
    "idle_in_transaction_session_timeout = '60s'",
    "lock_timeout = '5s'",
    # Agent sessions never publish their query text in pg_stat_activity.
    "track_activities = off",
    # A sort or hash that outgrows memory spills at most this much to disk, then fails clearly.
    "work_mem = '32MB'",
    "temp_file_limit = '512MB'",
)
_WRITER_SETTINGS = ("statement_timeout = '60s'", "idle_in_transaction_session_timeout = '60s'", "lock_timeout = '5s'")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _check_slug(slug: str) -> None:
    if not slug or not all(c.isascii() and (c.isalnum() or c == "-") for c in slug) or slug != slug.lower():
        raise ValueError(f"{slug!r} is not an organization slug (lower-case letters, digits and '-').")


def org_role_names(slug: str) -> tuple[str, str]:
    """One organization's (reader, writer) login roles. Opaque: a role name is visible to anyone
    who can read the catalog (pg_roles, pg_stat_activity), so it names no customer; it is a hash
    of the slug, stable across databases and versions."""
    import hashlib

    _check_slug(slug)
    tag = "o" + hashlib.sha256(f"nexusleads-lab:{slug}".encode()).hexdigest()[:16]
    return f"{AGENT_ROLE}_{tag}", f"{WRITER_ROLE}_{tag}"


def legacy_org_role_names(slug: str) -> tuple[str, str, str]:
    """The (reader, writer, store) names earlier versions gave an organization: the slug itself,
    which every other organization could read in the catalog. Renamed on the next roles run."""
    import hashlib

    _check_slug(slug)
    if len(slug) > 48:
        slug = slug[:39] + "-" + hashlib.sha256(slug.encode()).hexdigest()[:8]
    return f"{AGENT_ROLE}_{slug}", f"{WRITER_ROLE}_{slug}", f"{STORE_ROLE}_{slug}"


def role_names(scope: str | None) -> tuple[str, str]:
    """(reader, writer) login roles for an organization slug, or for every organization (None)."""
    return (AGENT_ROLE, WRITER_ROLE) if scope is None else org_role_names(scope)


def store_role_name(scope: str | None) -> str:
    """The conversation store's login role of a scope."""
    return STORE_ROLE if scope is None else STORE_ROLE + org_role_names(scope)[0][len(AGENT_ROLE) :]


def _create_role(role: str, member_of: str | None = None) -> list[str]:
    login = "NOLOGIN" if member_of is None else "LOGIN"
    attrs = f"{login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    stmts = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_literal(role)}) THEN "
        f"CREATE ROLE {quote_ident(role)} {attrs}; END IF; END $$",
        f"ALTER ROLE {quote_ident(role)} {attrs}",
    ]
    if member_of:
        stmts.append(f"GRANT {member_of} TO {quote_ident(role)}")
    return stmts


def _rename_legacy(slug: str) -> list[str]:
    """Move an organization's roles from their old slug-bearing names to the opaque ones, keeping
    their privileges, settings and SCRAM passwords; the scope binding follows the new name."""
    reader, writer = org_role_names(slug)
    stmts = []
    for old, new in zip(legacy_org_role_names(slug), (reader, writer, store_role_name(slug))):
        stmts.append(
            f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_literal(old)}) AND NOT EXISTS "
            f"(SELECT 1 FROM pg_roles WHERE rolname = {_literal(new)}) THEN ALTER ROLE {quote_ident(old)} RENAME TO "
            f"{quote_ident(new)}; UPDATE public.nexus_scopes SET role_name = {_literal(new)} "
            f"WHERE role_name = {_literal(old)}; END IF; END $$"
        )
    return stmts


def _login_roles(reader: str, writer: str, slug: str | None) -> list[str]:
    store = store_role_name(slug)
    read_group, write_group = (READ_ALL_GROUP, WRITE_ALL_GROUP) if slug is None else (READ_GROUP, WRITE_GROUP)
    stmts = _create_role(reader, read_group) + _create_role(writer, write_group) + _create_role(store, CHAT_GROUP)
    if slug is None:  # earlier versions made these members of the organization groups
        stmts += [f"REVOKE {READ_GROUP} FROM {quote_ident(reader)}", f"REVOKE {WRITE_GROUP} FROM {quote_ident(writer)}"]
    for role in (reader, writer):  # privileges come from the group only (older versions granted directly)
        stmts += [
            f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {quote_ident(role)}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {quote_ident(role)}",
        ]
    stmts += [f"ALTER ROLE {quote_ident(reader)} SET {s}" for s in _READER_SETTINGS]
    stmts += [f"ALTER ROLE {quote_ident(role)} SET {s}" for role in (writer, store) for s in _WRITER_SETTINGS]
    org = "NULL" if slug is None else _literal(slug)
    for role in (reader, writer, store):
        stmts.append(
            f"INSERT INTO public.nexus_scopes (role_name, org_slug) VALUES ({_literal(role)}, {org})"
            " ON CONFLICT (role_name) DO UPDATE SET org_slug = EXCLUDED.org_slug"
        )
    return stmts


def role_statements() -> list[str]:
    """The shared part: group roles, grants, restrictive policies, and the all-organizations
    login roles. Runs after the migrations (it grants on their tables); safe to re-run.

    Needs a superuser (``ALTER ROLE ... SET track_activities`` and creating policies on tables
    another role owns both do). Touches only the product's own roles: every other role of the
    database keeps the privileges it had.
    """
    readable = [t for t in LEAD_TABLES if t != "users"]
    users_cols = ", ".join(USER_COLUMNS_FOR_AGENT)
    groups = (READ_GROUP, WRITE_GROUP, READ_ALL_GROUP, WRITE_ALL_GROUP)
    stmts = [stmt for group in (*groups, CHAT_GROUP) for stmt in _create_role(group)]
    for group in groups:
        stmts += [
            f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {group}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {group}",
            f"GRANT USAGE ON SCHEMA public TO {group}",
            f"GRANT SELECT ON {', '.join(readable)} TO {group}",
            f"GRANT SELECT ({users_cols}) ON users TO {group}",
        ]
    for group in (READ_GROUP, READ_ALL_GROUP):  # the read path's aggregate guard (migration 6)
        stmts += [
            f"GRANT USAGE ON SCHEMA {PRODUCT_SCHEMA} TO {group}",
            f"GRANT EXECUTE ON FUNCTION {PRODUCT_SCHEMA}.value_bound(bigint, bigint, text) TO {group}",
        ]
    for group in (WRITE_GROUP, WRITE_ALL_GROUP):
        stmts.append(f"GRANT INSERT, UPDATE, DELETE ON {', '.join(WRITABLE_TABLES)} TO {group}")
        stmts += [
            f"GRANT USAGE ON SEQUENCE {t}_id_seq TO {group}" for t in WRITABLE_TABLES if t != "repository_contributors"
        ]
    for table, condition in SCOPE_POLICIES.items():
        stmts += [
            f"DROP POLICY IF EXISTS nexus_scope ON {table}",
            f"CREATE POLICY nexus_scope ON {table} AS RESTRICTIVE FOR ALL TO {READ_GROUP}, {WRITE_GROUP}"
            f" USING ({condition}) WITH CHECK ({condition})",
        ]
    # The store: its own tables only, each scope's rows only (the admin scope's label is '*').
    stmts += [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {CHAT_GROUP}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {CHAT_GROUP}",
        f"GRANT USAGE ON SCHEMA public TO {CHAT_GROUP}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON chat_conversations, chat_messages, chat_confirmations TO {CHAT_GROUP}",
        f"GRANT SELECT, INSERT ON write_audit TO {CHAT_GROUP}",
        f"GRANT USAGE ON SEQUENCE chat_messages_id_seq, write_audit_id_seq TO {CHAT_GROUP}",
    ]
    for table, condition in CHAT_POLICIES.items():
        stmts += [
            f"DROP POLICY IF EXISTS nexus_scope ON {table}",
            f"CREATE POLICY nexus_scope ON {table} AS RESTRICTIVE FOR ALL TO {CHAT_GROUP}"
            f" USING ({condition}) WITH CHECK ({condition})",
        ]
    stmts += _login_roles(AGENT_ROLE, WRITER_ROLE, None)
    return stmts


def org_role_statements(slug: str) -> list[str]:
    """One organization's login roles (reader, writer, store) and their scope; re-runnable."""
    reader, writer = org_role_names(slug)
    return _rename_legacy(slug) + _login_roles(reader, writer, slug)


def roles_script(slug: str | None = None, *, dedicated: bool = False) -> str:
    """``nexus-lab db roles [--org SLUG]``: a psql script a DBA runs as a superuser.

    Atomic (one transaction, stops at the first error) and re-runnable. Passwords come from
    psql variables, so none is written into the script: ``psql -v agent_password=... -v
    writer_password=... -v store_password=... -f roles.sql``.
    """
    reader, writer = role_names(slug)
    body = [_precondition(slug)] + (role_statements() if slug is None else org_role_statements(slug))
    if dedicated and slug is None:  # a database nothing else uses: revoke volatile built-ins from PUBLIC too
        body += _EMBEDDED_ONLY + _PUBLIC_CATALOG_REVOKES
    what = (
        "the shared part (groups, grants, policies, all-organizations roles)"
        if slug is None
        else f"organization {slug}"
    )
    lines = [
        f"-- NexusLeads Lab roles: {what}.",
        f"-- Login roles: reader {reader}, writer {writer}, store {store_role_name(slug)}.",
        "-- Run after the schema exists (`nexus-lab db` as the tables' owner migrates it), as a superuser:",
        '--   psql "$SUPERUSER_URL" -v agent_password=... -v writer_password=... -v store_password=... -f roles.sql',
        "\\set ON_ERROR_STOP on",
        "BEGIN;",
        *(stmt + ";" for stmt in body),
        "\\if :{?agent_password}",
        f"ALTER ROLE {quote_ident(reader)} PASSWORD :'agent_password';",
        "\\endif",
        "\\if :{?writer_password}",
        f"ALTER ROLE {quote_ident(writer)} PASSWORD :'writer_password';",
        "\\endif",
        "\\if :{?store_password}",
        f"ALTER ROLE {quote_ident(store_role_name(slug))} PASSWORD :'store_password';",
        "\\endif",
        "COMMIT;",
    ]
    return "\n".join(lines) + "\n"


def _precondition(slug: str | None) -> str:
    """Stop a script run in the wrong order with a message that says which step comes first."""
    first = (
        "RAISE EXCEPTION 'NexusLeads Lab: the schema is missing or older than version "
        f"{CURRENT_VERSION}: run `nexus-lab db` with DATABASE_URL set to the tables'' owner first';"
    )
    checks = [  # two IFs: plpgsql plans the second only when the first let it through
        f"IF to_regclass('public.nexus_schema_migrations') IS NULL THEN {first} END IF;",
        f"IF (SELECT max(version) FROM public.nexus_schema_migrations) < {CURRENT_VERSION} THEN {first} END IF;",
    ]
    if slug is not None:
        checks.append(
            f"IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_literal(READ_GROUP)}) THEN RAISE EXCEPTION "
            "'NexusLeads Lab: the shared roles are missing: run the script of `nexus-lab db roles` first'; END IF;"
        )
    return "DO $$ BEGIN " + " ".join(checks) + " END $$"


def _run(conn: psycopg.Connection, stmts: list[str]) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('nexusleads_lab.roles'))")
        for stmt in stmts:
            conn.execute(stmt.encode())


def ensure_roles(conn: psycopg.Connection) -> None:
    """Create or refresh the shared roles and policies (the embedded database's setup)."""
    _run(conn, role_statements() + _EMBEDDED_ONLY + _PUBLIC_CATALOG_REVOKES)


def ensure_org_roles(conn: psycopg.Connection, slug: str) -> None:
    """Create or refresh one organization's roles (the embedded database, on first use)."""
    _run(conn, org_role_statements(slug))


# Safe in a database the product has to itself (a shared database keeps its defaults, and the
# read path's allow-list is what stops these there): no role but a superuser may execute a
# volatile built-in, except the two the product's own column defaults call.
_KEEP_VOLATILE = ("nextval(regclass)", "gen_random_uuid()")
# Stable, yet they assign a transaction id: a read-only query must not burn them.
_STABLE_WITH_EFFECTS = (
    "txid_current()",
    "txid_current_if_assigned()",
    "pg_current_xact_id()",
    "pg_current_xact_id_if_assigned()",
)
_EMBEDDED_ONLY = [
    "DO $$ DECLARE f regprocedure; BEGIN"
    " FOR f IN SELECT p.oid::regprocedure FROM pg_proc p"
    " WHERE p.provolatile = 'v' AND p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'"
    f" AND p.oid::regprocedure::text NOT IN ({', '.join(_literal(k) for k in _KEEP_VOLATILE)})"
    " AND has_function_privilege('public', p.oid, 'EXECUTE') LOOP"
    " EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f); END LOOP; END $$",
    *(f"REVOKE EXECUTE ON FUNCTION {f} FROM PUBLIC" for f in _STABLE_WITH_EFFECTS),
    # Sampling (ORDER BY random(), setseed for a repeatable sample) stays possible for reads.
    "DO $$ DECLARE f regprocedure; BEGIN"
    " FOR f IN SELECT p.oid::regprocedure FROM pg_proc p"
    " WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname IN ('random', 'setseed') LOOP"
    f" EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO {READ_GROUP}, {READ_ALL_GROUP}', f); END LOOP; END $$",
]

# What PUBLIC may read in any database that a reader of a dedicated one must not: settings kept
# with ALTER DATABASE/ROLE ... SET (a web app's secrets), other sessions and their queries, and
# statistics counting every organization's rows. The read path refuses these by name anyway;
# revoking them also covers a reader reached some other way. Role names stay readable (the
# connect-time check reads pg_roles) and are opaque.
_PUBLIC_CATALOG_REVOKES = [
    "REVOKE SELECT ON pg_catalog.pg_db_role_setting FROM PUBLIC",
    "DO $$ DECLARE v text; BEGIN"
    " FOR v IN SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = 'pg_catalog'::regnamespace"
    " AND c.relkind IN ('v', 'r') AND (c.relname LIKE 'pg\\_stat%' OR c.relname = 'pg_sequences')"
    " AND has_table_privilege('public', c.oid, 'SELECT') LOOP"
    " EXECUTE format('REVOKE SELECT ON %s FROM PUBLIC', v); END LOOP;"
    " FOR v IN SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace"
    " AND p.proname LIKE 'pg\\_stat\\_get\\_%' AND has_function_privilege('public', p.oid, 'EXECUTE') LOOP"
    " EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', v); END LOOP; END $$",
]
