"""Connect-time checks: a product role is least privilege and bound to the expected scope.

The reader and the writer are refused, with how to fix it, when the role could do more than
its job (superuser, create roles or databases, bypass row security, own the lead tables, run
server programs or touch server files) or when the organization its login is bound to is not
the one this session asked for. The checks read the catalogs, never trust the SQL.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import QueryError
from .schema import (
    ALL_ORGS,
    CHAT_GROUP,
    CHAT_TABLES,
    LEAD_TABLES,
    READ_ALL_GROUP,
    READ_GROUP,
    WRITE_ALL_GROUP,
    WRITE_GROUP,
)

_TABLES = "SELECT c.oid, c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(string_to_array('{names}', ','))"
_PRIVILEGES_SQL = """
SELECT current_user::text, session_user::text,
       r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
       pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER')
         OR pg_has_role(current_user, 'pg_read_server_files', 'MEMBER')
         OR pg_has_role(current_user, 'pg_write_server_files', 'MEMBER'),
       EXISTS (SELECT 1 FROM pg_class c WHERE c.oid IN (SELECT oid FROM ({everything}) t)
                 AND pg_has_role(current_user, c.relowner, 'MEMBER')),
       coalesce((SELECT bool_or(has_table_privilege(t.oid, 'SELECT, INSERT, UPDATE, DELETE')) FROM ({chat}) t), false),
       coalesce((SELECT bool_or(has_table_privilege(t.oid, 'SELECT')) FROM ({lead}) t), false),
       coalesce((SELECT bool_or(has_table_privilege(t.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')) FROM ({lead}) t), false),
       coalesce(has_column_privilege(to_regclass('public.users'), 'password_hash', 'SELECT'), false),
       coalesce(has_table_privilege(to_regclass('public.nexus_scopes'), 'SELECT, INSERT, UPDATE, DELETE'), false),
       to_regprocedure('public.nexus_scope()') IS NOT NULL,
       coalesce((SELECT bool_or(pg_has_role(current_user, g.oid, 'MEMBER')) FROM pg_roles g
                 WHERE g.rolname IN ('{read}', '{write}')), false) AS any_bound_group,
       coalesce((SELECT bool_or(pg_has_role(current_user, g.oid, 'MEMBER')) FROM pg_roles g
                 WHERE g.rolname IN ('{read_all}', '{write_all}')), false) AS unbound_group,
       coalesce((SELECT pg_has_role(current_user, g.oid, 'MEMBER') FROM pg_roles g WHERE g.rolname = '{chat_group}'), false)
FROM pg_roles r WHERE r.rolname = current_user
""".format(
    everything=_TABLES.format(names=",".join(LEAD_TABLES + CHAT_TABLES)),
    chat=_TABLES.format(names=",".join(CHAT_TABLES)),
    lead=_TABLES.format(names=",".join(LEAD_TABLES)),
    read=READ_GROUP,
    write=WRITE_GROUP,
    read_all=READ_ALL_GROUP,
    write_all=WRITE_ALL_GROUP,
    chat_group=CHAT_GROUP,
)

_FIX_READER = (
    "Agent reads need a login role that can only SELECT the lead tables, bound to one scope. "
    "Run `nexus-lab db roles` (and `nexus-lab db roles --org SLUG` for an organization) as a superuser, "
    "then point NEXUS_AGENT_DATABASE_URL at that role, or unset it to use the role named after the scope."
)
_FIX_STORE = (
    "The conversation store needs the store role of this scope (the chat, confirmation and audit tables only). "
    "Run `nexus-lab db roles` (and `--org SLUG`) as a superuser, then set NEXUS_STORE_DATABASE_URL to that role."
)
_FIX_WRITER = (
    "Confirmed writes need the least-privilege writer role of this scope. Run `nexus-lab db roles` "
    "(and `--org SLUG`) as a superuser, then set NEXUS_WRITER_DATABASE_URL to connect as that role."
)


def describe_scope(scope: str | None) -> str:
    return "all organizations (admin scope)" if scope in (None, ALL_ORGS) else f"organization {scope}"


def check_role(fetch: Callable[[str], tuple | None], *, kind: str, scope: str | None) -> str:
    """Verify the connected role for ``kind`` ("reader" or "writer") and ``scope`` (a slug, or
    None for every organization); return the role name or raise QueryError saying what to fix.

    ``fetch`` runs one query on the new connection and returns its first row.
    """
    fix, job = {
        "reader": (_FIX_READER, "agent reads"),
        "writer": (_FIX_WRITER, "confirmed writes"),
        "store": (_FIX_STORE, "the conversation store"),
    }[kind]
    row = fetch(_PRIVILEGES_SQL)
    if row is None:
        raise QueryError(f"Refusing {job}: the connected role is not in pg_roles.", hint=fix)
    (
        role,
        session,
        superuser,
        createrole,
        createdb,
        bypassrls,
        server_files,
        owns,
        chat,
        reads,
        writes,
        secret,
        scopes,
        scoped,
        any_bound,
        unbound,
        in_chat_group,
    ) = row
    problems = [
        text
        for flag, text in (
            (superuser, "is a superuser"),
            (createrole, "can create roles"),
            (createdb, "can create databases"),
            (bypassrls, "bypasses row-level security"),
            (server_files, "may run server programs or read/write server files"),
            (owns, "owns the product's tables (an owner is not bound by row-level security)"),
            (chat and kind != "store", "can read or change the conversation, confirmation or audit tables"),
            (reads and kind == "store", "can read the lead tables"),
            (writes and kind == "reader", "can change the lead tables"),
            (secret, "can read users.password_hash"),
            (scopes, "can read or change the organization scopes"),
        )
        if flag
    ]
    if problems:
        raise QueryError(
            f"Refusing {job} as role {role}: it {', '.join(problems)}, so a statement from the model "
            "could reach beyond what it is allowed to see or change.",
            hint=fix,
        )
    if role != session:
        raise QueryError(f"Refusing {job}: the connection switched roles ({session} -> {role}).", hint=fix)
    if not scoped:
        raise QueryError(
            f"Refusing {job} as role {role}: this database has no organization scopes yet (schema too old).",
            hint="Run `nexus-lab db` once as the tables' owner to migrate it, then `nexus-lab db roles`.",
        )
    bound = (fetch("SELECT public.nexus_scope()") or (None,))[0]
    wanted = ALL_ORGS if scope is None else scope
    # The policies bind the members of these groups: a role outside them would see everything.
    if kind == "store" and not in_chat_group:
        raise QueryError(f"Refusing {job} as role {role}: it is not a member of {CHAT_GROUP}.", hint=fix)
    if kind != "store" and bound not in (None, ALL_ORGS) and (not any_bound or unbound):
        raise QueryError(
            f"Refusing {job} as role {role}: it is bound to {describe_scope(bound)}, but its group roles "
            f"would not enforce that (it must be in {READ_GROUP} or {WRITE_GROUP}, whose row-level security "
            f"policies bind it, and in neither {READ_ALL_GROUP} nor {WRITE_ALL_GROUP}).",
            hint=fix,
        )
    if bound != wanted:
        have = "no scope" if bound is None else describe_scope(bound)
        raise QueryError(
            f"Refusing {job} as role {role}: it is bound to {have}, but this session is scoped to "
            f"{describe_scope(scope)} (NEXUS_ORG).",
            hint=fix,
        )
    return role
