"""Drift and reset: has anything changed the demo data since it was seeded, and putting it back."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ...words import noun, plural
from ..schema import LEAD_TABLES
from .generate import DEFAULT_CONTRIBUTORS, DEFAULT_SEED
from .load import _SEED_TABLE, DemoSummary, load_demo_data

# How a changed row of each table is counted in a sentence.
_NOUNS = {
    "organizations": ("organization", "organizations"),
    "users": ("user", "users"),
    "projects": ("project", "projects"),
    "repositories": ("repository", "repositories"),
    "contributors": ("contributor", "contributors"),
    "repository_contributors": ("repository contributor", "repository contributors"),
    "lead_scores": ("lead", "leads"),
    "outreach_events": ("outreach event", "outreach events"),
}


def count_of(n: int, table: str) -> str:
    """'3 leads', '1 outreach event': a count of a lead table's rows in words."""
    one, many = _NOUNS.get(table, (table, table))
    return plural(n, one, many)


@dataclass(frozen=True)
class DemoDrift:
    """The lead tables compared with the demo data as seeded: rows changed, added or removed per table."""

    seeded: bool  # a record of the seeding exists (databases seeded before it was kept have none)
    seed: int | None
    contributors: int | None
    changed: dict[str, int]  # table -> rows written or deleted since the seeding, only tables with any
    counts: dict[str, int]  # table -> rows now

    @property
    def drifted(self) -> bool:
        return not self.seeded or bool(self.changed)

    def changes(self) -> str:
        """'3 leads and 3 outreach events' (or why no comparison is possible)."""
        if not self.seeded:
            return "no record of how the demo data was seeded was found"
        parts = [count_of(n, t) for t, n in self.changed.items()]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def describe(self, *, embedded: bool = True) -> str:
        how = "reset with `nexus-lab db reset`" if embedded else "reseed with `nexus-lab seed --reset`"
        if not self.seeded:
            return f"unknown: {self.changes()} ({how})"
        if not self.changed:
            return f"unchanged since seeded ({self._what()})"
        return f"changed since seeded: {self.changes()} ({how})"

    def _what(self) -> str:
        leads = self.counts.get("lead_scores", 0)
        return f"seed {self.seed}, {self.contributors:,} contributors, {count_of(leads, 'lead_scores')}"

    def as_dict(self) -> dict:
        return {
            "seeded": self.seeded,
            "drifted": self.drifted,
            "seed": self.seed,
            "contributors": self.contributors,
            "changed": dict(self.changed),
        }


def demo_drift(conn: psycopg.Connection) -> DemoDrift:
    """Compare the lead tables with the record kept when the demo data was seeded (one scan of each)."""
    record = None
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (_SEED_TABLE,)).fetchone()
    assert exists is not None  # a SELECT without FROM returns one row
    if exists[0]:
        record = conn.execute(f"SELECT seed, contributors, xid, counts FROM {_SEED_TABLE}").fetchone()
    xid = record[2] if record else "0"
    query = " UNION ALL ".join(
        f"SELECT '{t}', count(*), count(*) FILTER (WHERE xmin::text <> %(xid)s) FROM {t}" for t in LEAD_TABLES
    )
    found = {t: (int(n), int(new)) for t, n, new in conn.execute(query, {"xid": xid}).fetchall()}
    now = {t: found[t] for t in LEAD_TABLES}
    counts = {t: n for t, (n, _) in now.items()}
    if record is None:
        return DemoDrift(False, None, None, {}, counts)
    seed, contributors, _, seeded_counts = record
    changed = {}
    for table, (n, written) in now.items():
        gone = int(seeded_counts.get(table, 0)) - (n - written)  # seeded rows updated or deleted
        # An updated row is both gone (as seeded) and written: count it once.
        if max(gone, written):
            changed[table] = max(gone, written)
    return DemoDrift(True, int(seed), int(contributors), changed, counts)


def _reload(conn: psycopg.Connection, drift: DemoDrift) -> DemoSummary:
    # Without a record, the size it was seeded with is the number of contributors it holds.
    contributors = drift.contributors or drift.counts.get("contributors") or DEFAULT_CONTRIBUTORS
    return load_demo_data(conn, contributors=contributors, seed=drift.seed or DEFAULT_SEED, reset=True)


def reset_demo(database=None, *, only_if_changed: bool = False) -> str:
    """Restore the embedded database's deterministic demo data; return one line saying what was done.

    ``only_if_changed`` leaves data that matches the seeding alone (a cheap check, one scan per
    table), so a notebook's first cell can call it on every Run All. Against DATABASE_URL it
    refuses (QueryError): that database is not the product's to empty.
    """
    from ..database import get_database
    from ..errors import QueryError

    db = database or get_database()
    if db.embedded is None:
        raise QueryError(
            "The demo reset only empties the embedded database, not one at DATABASE_URL; to reseed a "
            "database you own, run `nexus-lab seed --reset` with DATABASE_URL set (it replaces all its lead data)."
        )
    with db.connect_admin(autocommit=True) as conn:
        conn.execute("SET lock_timeout = '15s'")  # a session holding a lead table: say so, do not hang
        drift = demo_drift(conn)
        if only_if_changed and not drift.drifted:
            return f"Demo data {_as_seeded(conn)} ({_orgs(conn)}; {drift._what()})."
        try:
            summary = _reload(conn, drift)
        except psycopg.errors.LockNotAvailable:
            raise QueryError(
                "The demo data could not be reset: another session is holding a lead table (an open "
                "transaction in a notebook or psql). Finish it and run `nexus-lab db reset` again."
            ) from None
    if not drift.seeded:
        why = drift.changes()
    else:
        why = f"{drift.changes()} had changed" if drift.changed else "nothing had changed"
    return (
        f"Demo data restored: {why}; reloaded seed {summary.seed} with {summary.contributors:,} contributors "
        f"and {count_of(summary.lead_scores, 'lead_scores')} in {summary.seconds:.1f}s."
    )


def restore_if_changed(database) -> str | None:
    """Restore the embedded demo data only if it changed: the sentence saying so, or None."""
    with database.connect_admin(autocommit=True) as conn:
        if not demo_drift(conn).drifted:
            return None
    return reset_demo(database, only_if_changed=True)


def _as_seeded(conn: psycopg.Connection) -> str:
    """'seeded just now' on a database created a moment ago (a first start), else 'unchanged'."""
    fresh = conn.execute(f"SELECT now() - seeded_at < interval '2 minutes' FROM {_SEED_TABLE}").fetchone()
    return "seeded just now" if fresh and fresh[0] else "unchanged since seeded"


def _orgs(conn: psycopg.Connection) -> str:
    slugs = [r[0] for r in conn.execute("SELECT slug FROM organizations ORDER BY id").fetchall()]
    if len(slugs) <= 1:
        return slugs[0] if slugs else "no organizations"
    return f"{slugs[0]} and {len(slugs) - 1} other {noun(len(slugs) - 1, 'organization')}"
