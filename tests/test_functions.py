"""The read path can call nothing that acts outside its own read-only query, proved from the
catalog: every volatile function the agent's role could execute is refused before the query is
sent, however it is spelled, and (in the embedded database) the role cannot execute it anyway."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from nexusleads_lab.db import Engine, QueryError
from nexusleads_lab.db.functions import ALLOWED_FUNCTIONS, ATTRIBUTE_NOTATION_DENIED, READ_ONLY_VOLATILE
from nexusleads_lab.db.readsql import check_read

# Every volatile function of the server, whoever may execute it: on a shared production database
# PUBLIC keeps its grants, so the allow-list must refuse each of them by itself.
STOCK_VOLATILE = (
    "SELECT p.proname, p.pronargs FROM pg_proc p WHERE p.provolatile = 'v' AND p.prokind IN ('f', 'a', 'w')"
)


@pytest.fixture(scope="module")
def volatile(db) -> list[tuple[str, int]]:
    with db.connect_admin(autocommit=True) as conn:
        return sorted(set(conn.execute(STOCK_VOLATILE).fetchall()))


def test_every_allowed_function_is_immutable_or_stable_in_every_overload(db):
    with db.connect_admin(autocommit=True) as conn:
        rows = conn.execute(
            "SELECT proname, string_agg(DISTINCT provolatile::text, '') FROM pg_proc WHERE proname = ANY(%s) GROUP BY 1",
            (sorted(ALLOWED_FUNCTIONS),),
        ).fetchall()
    kinds = dict(rows)
    assert set(kinds) == ALLOWED_FUNCTIONS, f"not functions in this PostgreSQL: {ALLOWED_FUNCTIONS - set(kinds)}"
    assert {name for name, k in kinds.items() if "v" in k} == set()


def test_the_allow_list_is_built_ins_only_and_refuses_what_reads_outside_the_query(db):
    """Derived from the catalog: every allowed name (and the sampling pair) is a built-in of
    pg_catalog owned by the bootstrap superuser; every name of the deny-list is a real function
    (or family) that the allow-list refuses."""
    from nexusleads_lab.db.functions import DENIED, is_allowed

    with db.connect_admin(autocommit=True) as conn:
        rows = conn.execute(
            "SELECT proname, bool_and(pronamespace = 'pg_catalog'::regnamespace AND proowner = 10)"
            " FROM pg_proc WHERE proname = ANY(%s) GROUP BY 1",
            (sorted(ALLOWED_FUNCTIONS | READ_ONLY_VOLATILE),),
        ).fetchall()
        names = {r[0] for r in conn.execute("SELECT DISTINCT proname FROM pg_proc").fetchall()}
    assert all(builtin for _, builtin in rows) and len(rows) == len(ALLOWED_FUNCTIONS | READ_ONLY_VOLATILE)
    for pattern in DENIED:
        head, star, tail = pattern.partition("*")
        matching = {n for n in names if n.startswith(head) and n.endswith(tail)} if star else {pattern} & names
        assert matching, f"{pattern} matches no function of this PostgreSQL"
        for name in matching:
            assert not is_allowed((name,), read=True), name
            with pytest.raises(QueryError, match="not allowed on the read path"):
                check_read(f"SELECT {name}()")
    assert is_allowed(("random",), read=True) and not is_allowed(("random",)), "sampling on reads only"


def test_every_volatile_function_is_refused_however_it_is_spelled(volatile):
    assert len(volatile) > 100, "the catalog lists the volatile built-ins"
    names = {name for name, _ in volatile}
    assert {
        "pg_notify",
        "pg_logical_emit_message",
        "pg_advisory_xact_lock",
        "set_config",
        "lo_create",
        "pg_sleep",
        "nextval",
        "pg_cancel_backend",
    } <= names
    # stable, but they assign a transaction id
    volatile = [*volatile, ("txid_current", 0), ("pg_current_xact_id", 0), ("txid_current_if_assigned", 0)]
    for name, nargs in volatile:
        if name in READ_ONLY_VOLATILE:  # sampling: allowed on reads, granted to the readers
            continue
        args = ", ".join(["NULL"] * nargs)
        for spelled in (name, f'"{name}"', f"pg_catalog.{name}", f'"pg_catalog"."{name}"', name.upper()):
            sql = f"SELECT {spelled}({args})" if spelled != name.upper() or name.isidentifier() else None
            if sql is None:
                continue
            with pytest.raises(QueryError, match="not allowed on the read path"):
                check_read(sql)
        with pytest.raises(QueryError, match="not allowed on the read path"):
            check_read(
                f"WITH x AS (SELECT {name}({args}) AS v) SELECT * FROM (SELECT 1) s, LATERAL (SELECT v FROM x) y"
            )


def test_attribute_notation_cannot_reach_a_volatile_function(db):
    with db.connect_admin(autocommit=True) as conn:
        derived = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT p.proname FROM pg_proc p WHERE p.provolatile = 'v' AND p.pronargs >= 1"
                " AND p.proargtypes[0] IN ('record'::regtype, 'anyelement'::regtype, 'anyarray'::regtype,"
                " 'anycompatible'::regtype, 'anycompatiblearray'::regtype, '\"any\"'::regtype)"
                " AND (p.pronargs = 1 OR p.provariadic <> 0)"
            ).fetchall()
        }
    assert derived <= ATTRIBUTE_NOTATION_DENIED, f"list these in functions.py: {derived - ATTRIBUTE_NOTATION_DENIED}"
    for name in ATTRIBUTE_NOTATION_DENIED:
        with pytest.raises(QueryError, match="side effects"):
            check_read(f"SELECT (ARRAY[1, 2]).{name}")
        with pytest.raises(QueryError, match="side effects"):
            check_read(f"SELECT t.{name} FROM lead_scores t")


def test_the_analyses_the_skill_teaches_still_pass():
    for sql in (
        "SELECT date_trunc('week', scored_at) AS week, count(*) FROM lead_scores GROUP BY 1",
        "SELECT key, count(*) FROM lead_scores, jsonb_object_keys(signals) AS key GROUP BY key",
        "SELECT lower(btrim(company, ' @')) AS c, percentile_cont(0.5) WITHIN GROUP (ORDER BY followers) FROM contributors GROUP BY 1",
        "SELECT trim(both ' ' from name), extract(year from created_at), substring(bio from 1 for 10), now() - interval '7 days' FROM contributors",
        "SELECT array_position(ARRAY['new', 'contacted'], status), coalesce(NULL, 1), greatest(1, 2), nullif(1, 1), current_date FROM lead_scores",
        "SELECT row_number() OVER (ORDER BY score DESC), lag(score) OVER (ORDER BY id) FROM lead_scores",
        "TABLE organizations",
        "VALUES (1), (2)",
        "(SELECT 1) UNION ALL (SELECT 2)",
    ):
        assert check_read(sql)


EFFECTS = [
    ("pg_notify", "SELECT \"pg_notify\"('nexus_test_channel', 'leak')"),
    ("wal", "SELECT pg_logical_emit_message(false, 'nexus', repeat('x', 1000000))"),
    ("advisory", "SELECT \"pg_advisory_xact_lock\"(hashtext('nexusleads_lab.migrate'))"),
    ("advisory", "SELECT pg_catalog.pg_advisory_lock(4242)"),
    ("xid", "SELECT txid_current()"),
    ("xid", "SELECT pg_current_xact_id()"),
    ("settings", "SELECT set_config('statement_timeout', '0', false)"),
    ("lo", "SELECT lo_create(0)"),
]


@pytest.mark.parametrize("precheck", [True, False], ids=["precheck", "no-precheck"])
def test_no_function_acts_outside_the_query_with_the_precheck_on_or_off(db, precheck):
    kw = {} if precheck else {"check": lambda s: s.strip().rstrip(";")}
    engine = Engine(db.agent_url, None, **kw)
    with psycopg.connect(db.admin_url, autocommit=True) as listener:
        listener.execute("LISTEN nexus_test_channel")
        wal, xid, locks_before = listener.execute(
            "SELECT pg_current_wal_insert_lsn(), pg_snapshot_xmax(pg_current_snapshot()),"
            " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory')"
        ).fetchone()
        for _, sql in EFFECTS:
            with pytest.raises(QueryError, match="not allowed on the read path" if precheck else "permission denied"):
                engine.read(sql)
        time.sleep(0.2)
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == [], "a notification was delivered"
        wal_bytes, xid_after, locks = listener.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s), pg_snapshot_xmax(pg_current_snapshot()),"
            " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory')",
            (wal,),
        ).fetchone()
    assert wal_bytes < 100_000, "no WAL message was written"
    assert int(str(xid_after)) - int(str(xid)) < 5, "no transaction ids were burned"
    assert locks == locks_before == 0
    # and the migration lock is free: another process's `nexus-lab db` is not stalled
    done = threading.Event()

    def migrate_lock():
        with psycopg.connect(db.admin_url, autocommit=True) as c:
            c.execute("SET lock_timeout = '2s'")
            with c.transaction():
                c.execute("SELECT pg_advisory_xact_lock(hashtext('nexusleads_lab.migrate'))")
            done.set()

    t = threading.Thread(target=migrate_lock)
    t.start()
    t.join(10)
    assert done.is_set()
    engine.close()
