"""What the database holds, for tests that must prove a statement changed nothing (or exactly something)."""

from __future__ import annotations

from nexusleads_lab.db.schema import LEAD_TABLES

# A read that runs until a timeout or a cancel stops it: pure CPU, no temp files, no locks
# (pg_sleep is not on the read path's allow-list: it is volatile).
SLOW_SQL = "SELECT count(*) AS n FROM (SELECT generate_series(1, 1000000000000)) AS g"


def fingerprint(db) -> dict[str, str]:
    """Row count and checksum of every lead table, plus the catalog objects a write could add."""
    out = {}
    with db.connect_admin(autocommit=True) as conn:
        for table in LEAD_TABLES:
            count, digest = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
            ).fetchone()
            out[table] = f"{count}:{digest}"
        out["tables"] = str(
            conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchone()[0]
        )
        out["agent"] = str(conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'nexus_agent'").fetchone())
        out["grants"] = str(
            conn.execute(
                "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee IN ('PUBLIC', 'nexus_agent')"
            ).fetchone()[0]
        )
    return out


def sequences(db) -> dict[str, tuple[int, bool]]:
    """Every sequence's position: a preview must not consume a single value."""
    with db.connect_admin(autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace"
            ).fetchall()
        ]
        return {n: conn.execute(f"SELECT last_value, is_called FROM {n}").fetchone() for n in names}


def lead_sequences(db) -> dict[str, tuple[int, bool]]:
    """The lead tables' sequences only: a turn's own messages move the conversation store's."""
    return {name: at for name, at in sequences(db).items() if not name.startswith("chat_")}


def product_locks(db) -> list[tuple]:
    """Locks held by any of the product's own sessions (other than their idle virtual xids)."""
    with db.connect_admin(autocommit=True) as conn:
        return conn.execute(
            "SELECT a.usename, l.locktype, l.mode, l.relation::regclass::text FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE a.usename LIKE 'nexus%' AND l.locktype NOT IN ('virtualxid')"
        ).fetchall()
