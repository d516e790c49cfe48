"""COPY loading: the generated payloads streamed into the lead tables in one transaction, and
the record of that seeding (which :mod:`.reset` compares the data with)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from ..schema import LEAD_TABLES
from .generate import DEFAULT_CONTRIBUTORS, DEFAULT_SEED, _Generator

# Foreign keys on these tables are dropped during the load and re-added (validated in one pass)
# after it, inside the same transaction: much faster than a trigger check per copied row.
_BULK_TABLES = ("repository_contributors", "lead_scores", "outreach_events")


# ----------------------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSummary:
    """What one load wrote: rows per table, the seed, and how long it took."""

    organizations: int
    users: int
    projects: int
    repositories: int
    contributors: int
    repository_contributors: int
    lead_scores: int
    outreach_events: int
    seed: int
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        data = asdict(self)
        return {table: data[table] for table in LEAD_TABLES}

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        parts = ", ".join(f"{n:,} {table.replace('_', ' ')}" for table, n in self.counts.items())
        return f"demo data (seed {self.seed}): {parts} — {self.total_rows:,} rows in {self.seconds:.1f}s"


def _copy(cur: psycopg.Cursor, table: str, columns: tuple[str, ...], blocks: list[str]) -> None:
    if not blocks:
        return
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for block in blocks:
            copy.write(block)


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------


def _existing_rows(conn: psycopg.Connection) -> dict[str, bool]:
    query = "SELECT " + ", ".join(f"EXISTS (SELECT 1 FROM {t})" for t in LEAD_TABLES)
    row = conn.execute(query).fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    return dict(zip(LEAD_TABLES, row))


def _drop_foreign_keys(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """Drop the FKs of the bulk tables (when we own them); return what re-creates them."""
    row = conn.execute(
        "SELECT bool_and(pg_has_role(current_user, relowner, 'USAGE')) FROM pg_class WHERE oid = ANY(%s::regclass[])",
        (list(_BULK_TABLES),),
    ).fetchone()
    assert row is not None  # an aggregate returns one row
    owned = row[0]
    if not owned:
        return []
    fks = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY conrelid::regclass::text, conname",
        (list(_BULK_TABLES),),
    ).fetchall()
    for table, name, _ in fks:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name)))
    return fks


def _restore_foreign_keys(conn: psycopg.Connection, fks: list[tuple[str, str, str]]) -> None:
    for table, name, definition in fks:  # ADD CONSTRAINT validates every loaded row
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(table), sql.Identifier(name))
            + sql.SQL(definition)
        )


def load_demo_data(
    conn: psycopg.Connection,
    contributors: int = DEFAULT_CONTRIBUTORS,
    seed: int = DEFAULT_SEED,
    reset: bool = False,
) -> DemoSummary:
    """Fill the lead tables with deterministic demo data; return what was written.

    The same ``seed`` and ``contributors`` always give identical rows. With ``reset=True``
    the lead tables are emptied first (TRUNCATE ... RESTART IDENTITY); chat tables and the
    write audit are never touched. Without it, a database that already holds lead data is
    refused with a ValueError. The load is one transaction: it lands whole or not at all.
    Works on autocommit connections (the function opens its own transaction).
    """
    contributors = int(contributors)
    seed = int(seed)
    if contributors < 1:
        raise ValueError(f"contributors must be at least 1, got {contributors}")
    started = time.perf_counter()
    counts = dict.fromkeys(LEAD_TABLES, 0)
    # Generation runs one chunk ahead in a worker thread while the server ingests the previous
    # chunk (COPY waits release the GIL), so at most two chunks are in memory at once.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexus-demo") as worker:
        gen_future = worker.submit(_Generator, contributors, seed)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('nexusleads_lab.demo'))")
            if reset:
                conn.execute(f"TRUNCATE {', '.join(LEAD_TABLES)} RESTART IDENTITY CASCADE")
            else:
                present = [t for t, has in _existing_rows(conn).items() if has]
                if present:
                    gen_future.cancel()
                    raise ValueError(
                        f"The database already holds lead data (in {', '.join(present)}); "
                        "pass reset=True to replace it with demo data."
                    )
            conn.execute("SET LOCAL synchronous_commit = off")
            fks = _drop_foreign_keys(conn)
            generator = gen_future.result()
            pending = worker.submit(generator.head)
            with conn.cursor() as cur:
                for index in range(len(generator.starts) + 1):
                    payload = pending.result()
                    if index < len(generator.starts):
                        pending = worker.submit(generator.chunk, index)
                    for table, columns, rows, blocks in payload:
                        _copy(cur, table, columns, blocks)
                        counts[table] += rows
                    del payload
            _restore_foreign_keys(conn, fks)
            for table in LEAD_TABLES:
                if table != "repository_contributors":
                    conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                    )
            _record_seed(conn, seed, contributors, counts)
    with conn.transaction():  # fresh statistics for the planner (committed in either connection mode)
        conn.execute(f"ANALYZE {', '.join(LEAD_TABLES)}")
    elapsed = time.perf_counter() - started
    return DemoSummary(**counts, seed=seed, seconds=round(elapsed, 3))


# ----------------------------------------------------------------------------------------
# Drift: has anything changed the demo data since it was seeded?
# ----------------------------------------------------------------------------------------

# One row: how the demo data was seeded and the id of the transaction that wrote every row. A row
# written later (an UPDATE makes a new row version, an INSERT a new row) carries another
# transaction id in its xmin, and a deleted row lowers the count, so one scan per table tells
# exactly which rows changed, without hashing their text.
_SEED_TABLE = "nexus_demo_seed"


def _record_seed(conn: psycopg.Connection, seed: int, contributors: int, counts: dict[str, int]) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_SEED_TABLE} (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),"
        " seed integer NOT NULL, contributors integer NOT NULL, xid text NOT NULL, counts jsonb NOT NULL,"
        " seeded_at timestamptz NOT NULL DEFAULT now())"
    )
    conn.execute(f"REVOKE ALL ON {_SEED_TABLE} FROM PUBLIC")
    conn.execute(f"DELETE FROM {_SEED_TABLE}")
    conn.execute(
        f"INSERT INTO {_SEED_TABLE} (seed, contributors, xid, counts)"
        " SELECT %s, %s, xmin::text, %s FROM organizations LIMIT 1",
        (seed, contributors, Jsonb(counts)),
    )
