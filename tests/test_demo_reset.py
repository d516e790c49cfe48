"""A demo that repeats: drift since the seeding is detected, and a reset restores the same rows and ids."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nexusleads_lab.config import Settings
from nexusleads_lab.db import Database, QueryError, open_database
from nexusleads_lab.db.demo import demo_drift, reset_demo
from nexusleads_lab.db.embedded import stop_embedded

from checks import fingerprint, sequences

REPO = Path(__file__).resolve().parent.parent
CONTRIBUTORS = 400


@pytest.fixture(scope="module")
def home(pg_root) -> Path:
    """A user's embedded database of its own (NEXUS_HOME), so resetting it disturbs no other test."""
    folder = pg_root / "demo-home"
    database = open_database(Settings(), pgdata=folder / "pgdata", contributors=CONTRIBUTORS)
    database.close()
    yield folder
    stop_embedded(folder / "pgdata")


@pytest.fixture()
def demo(home) -> Database:
    database = open_database(Settings(), pgdata=home / "pgdata")
    reset_demo(database, only_if_changed=True)
    yield database
    database.close()


def _play_the_quickstart(db: Database) -> None:
    """What Run All does to the demo data: three leads contacted, their outreach logged."""
    with db.connect_admin(autocommit=True) as conn:
        conn.execute("UPDATE lead_scores SET status = 'contacted' WHERE id IN (1, 2, 3)")
        conn.execute(
            "INSERT INTO outreach_events (lead_id, channel, outcome) SELECT id, 'email', 'sent' FROM lead_scores WHERE id IN (1, 2, 3)"
        )


def _cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    env.update(NEXUS_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "nexusleads_lab.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )


def test_a_reset_after_a_run_restores_the_same_rows_and_the_same_next_ids(demo):
    seeded, seeded_sequences = fingerprint(demo), sequences(demo)
    _play_the_quickstart(demo)
    assert fingerprint(demo) != seeded
    with demo.connect_admin(autocommit=True) as conn:
        drift = demo_drift(conn)
    assert drift.drifted and drift.changed == {"lead_scores": 3, "outreach_events": 3}

    message = reset_demo(demo, only_if_changed=True)

    assert message.startswith("Demo data restored: 3 leads and 3 outreach events had changed;"), message
    assert fingerprint(demo) == seeded
    assert sequences(demo) == seeded_sequences, "ids given out after the reset repeat the seeded run's"


def test_unchanged_demo_data_is_left_alone_and_says_so(demo):
    with demo.connect_admin(autocommit=True) as conn:
        versions = conn.execute("SELECT array_agg(xmin::text ORDER BY id) FROM organizations").fetchone()[0]
        conn.execute("UPDATE nexus_demo_seed SET seeded_at = now() - interval '1 hour'")
    message = reset_demo(demo, only_if_changed=True)
    assert message.startswith("Demo data unchanged since seeded (acme-analytics"), message
    with demo.connect_admin(autocommit=True) as conn:
        assert conn.execute("SELECT array_agg(xmin::text ORDER BY id) FROM organizations").fetchone()[0] == versions
        conn.execute("UPDATE nexus_demo_seed SET seeded_at = now()")
    # A database seeded a moment ago (the first `make demo`) says so, not "unchanged".
    assert reset_demo(demo, only_if_changed=True).startswith("Demo data seeded just now (acme-analytics")


def test_deleted_rows_count_as_drift(demo):
    with demo.connect_admin(autocommit=True) as conn:
        conn.execute("DELETE FROM outreach_events WHERE id <= 2")
        assert demo_drift(conn).changed == {"outreach_events": 2}
    assert "2 outreach events had changed" in reset_demo(demo)


def test_a_reset_refuses_a_database_at_database_url_and_says_how_to_reseed(fresh_database_url):
    with pytest.raises(QueryError, match=r"nexus-lab seed --reset") as refused:
        reset_demo(Database(admin_url=fresh_database_url))
    assert "embedded" in str(refused.value)


def test_db_status_shows_drift_and_db_reset_restores_it(demo, home):
    _play_the_quickstart(demo)
    status = _cli(home, "db", "status")
    assert status.returncode == 0, status.stderr
    assert (
        "demo data  changed since seeded: 3 leads and 3 outreach events (reset with `nexus-lab db reset`)"
        in status.stdout
    )
    assert json.loads(_cli(home, "db", "--json").stdout)["demo"]["changed"] == {"lead_scores": 3, "outreach_events": 3}

    reset = _cli(home, "db", "reset", "--json")

    assert reset.returncode == 0, reset.stderr
    assert json.loads(reset.stdout)["message"].startswith("Demo data restored: 3 leads and 3 outreach events")
    assert "demo data  unchanged since seeded (seed 7, 400 contributors" in _cli(home, "db").stdout


def test_demo_starts_from_the_seeded_data_and_says_how_to_stop_the_server(demo, home):
    seeded = fingerprint(demo)
    _play_the_quickstart(demo)
    proc = _cli(home, "demo", "--no-lab")
    assert proc.returncode == 0, proc.stderr
    assert "Demo data restored: 3 leads and 3 outreach events had changed" in proc.stdout
    assert "nexus-lab db stop" in proc.stdout
    assert fingerprint(demo) == seeded
    assert "Demo data seeded just now" in _cli(home, "demo", "--no-lab").stdout  # the restore a moment ago


def test_demo_without_a_browser_prints_the_quickstarts_url(demo, home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    env.update(NEXUS_HOME=str(home), JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"))
    lab = subprocess.Popen(
        [sys.executable, "-m", "nexusleads_lab.cli", "demo", "--no-browser", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        seen = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = lab.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "?token=" in line:
                break
        url = next((line.split()[-1] for line in seen if "?token=" in line), None)
        assert url is not None, "".join(seen)
        assert f":{port}/lab/tree/quickstart.ipynb?token=" in url
    finally:
        lab.terminate()
        lab.wait(timeout=30)
