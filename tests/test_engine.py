"""The SQL engine against a real PostgreSQL: what gets through, what does not, what survives."""

from __future__ import annotations

import math
import resource
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import psycopg
import pytest
from scripted import ADVERSARIAL, PWNED

from nexusleads_lab.config import EngineLimits
from nexusleads_lab.db import Engine, QueryError
from nexusleads_lab.db.embedded import restart_embedded

from checks import SLOW_SQL, fingerprint


def test_adversarial_corpus_changes_nothing_and_each_gets_a_clear_error(db):
    assert len(ADVERSARIAL) >= 40
    PWNED.unlink(missing_ok=True)
    before = fingerprint(db)
    assert int(before["lead_scores"].split(":")[0]) > 0, "the corpus must run against real data"
    for sql in ADVERSARIAL:
        with pytest.raises(QueryError) as info:
            db.engine.read(sql)
        message = str(info.value)
        assert len(message) > 20 and "\n" not in message.strip(), (sql, message)
        assert "Traceback" not in message
    assert fingerprint(db) == before
    assert not PWNED.exists(), "COPY TO PROGRAM ran a shell command"
    # and the engine still answers normally afterwards
    assert db.engine.read("SELECT count(*) AS n FROM lead_scores").df["n"][0] > 0


def test_without_the_precheck_the_role_and_read_only_mode_still_hold(db):
    """The pre-check only words refusals; the database itself stops every write."""
    engine = Engine(db.agent_url, db.writer_url, check=lambda sql: sql.strip().rstrip(";"))
    PWNED.unlink(missing_ok=True)
    before = fingerprint(db)
    for sql in ADVERSARIAL:
        try:
            engine.read(sql)
        except QueryError:
            pass
    # Raw connection as the agent role, simple protocol, several statements at once.
    with psycopg.connect(db.agent_url, autocommit=True) as raw:
        for sql in ADVERSARIAL:
            if not sql.strip(" ;"):
                continue
            try:
                raw.execute(sql.encode())
            except psycopg.Error:
                pass
    assert fingerprint(db) == before
    assert not PWNED.exists()
    engine.close()


def test_agent_reads_refuse_a_superuser_connection(db):
    engine = Engine(db.admin_url, db.writer_url)
    with pytest.raises(QueryError, match=r"Refusing agent reads as role postgres.*nexus-lab db roles"):
        engine.read("SELECT 1")
    engine.close()


def test_agent_role_cannot_see_other_sessions_query_text(db):
    """Another session of the same role runs a query with a secret in its text; the reader cannot see it."""
    import threading
    import time

    marker = "other-user-secret-question"
    secret = f"SELECT '{marker}' AS q, ({SLOW_SQL}) AS busy"
    other = Engine(db.agent_url, db.writer_url, EngineLimits(statement_timeout_ms=6000))
    outcome: dict[str, BaseException] = {}

    def ask_secret() -> None:
        try:
            other.read(secret)
        except BaseException as exc:  # asserted in the main thread, where a failure fails the test
            outcome["error"] = exc

    t = threading.Thread(target=ask_secret)
    t.start()
    try:
        time.sleep(0.5)  # the other query is running (checked below: it ran into its timeout after our reads)
        sql = "SELECT coalesce(string_agg(query, ' '), '') AS q FROM pg_stat_activity"
        with pytest.raises(QueryError, match="pg_stat_activity shows other sessions"):
            db.engine.read(sql)  # the gate refuses it by name
        bare = Engine(db.agent_url, None, check=lambda s: s)
        try:  # and without the gate, the embedded database revoked it from PUBLIC
            for attempt in (sql, "SELECT pg_stat_get_backend_activity(s) AS q FROM pg_stat_get_backend_idset() s"):
                try:
                    seen = bare.read(attempt).df.to_string()
                except QueryError as exc:
                    seen = str(exc)
                assert marker not in seen, f"the reader saw another session's query text through {attempt!r}"
                assert "permission denied" in seen
        finally:
            bare.close()
        # Positive control: the secret query was still running while the reads above looked for it.
        assert t.is_alive(), "the other session's query had ended, so the reads above proved nothing"
    finally:
        t.join()
        other.close()
    assert isinstance(outcome.get("error"), QueryError) and "6000 ms" in str(outcome["error"])


def test_a_reads_own_timeout_is_gone_before_the_next_read_on_its_connection(db):
    engine = Engine(db.agent_url, None, EngineLimits(pool_size=1), check=lambda s: s.strip())
    probe = "SELECT current_setting('statement_timeout') AS timeout, pg_backend_pid() AS pid"
    try:
        first = engine.read(probe, timeout_ms=1234).df.iloc[0]
        second = engine.read(probe).df.iloc[0]
    finally:
        engine.close()
    assert first["timeout"] == "1234ms" and second["timeout"] == "15s", "the reset undid the read's SET"
    assert second["pid"] == first["pid"], "on the same pooled connection, kept after its reset"


def test_pooled_connections_carry_no_state_between_queries(db):
    engine = Engine(db.agent_url, db.writer_url, EngineLimits(pool_size=1), check=lambda s: s.strip().rstrip(";"))
    # Without the pre-check, the embedded database's revocations refuse the functions that leave state ...
    with pytest.raises(QueryError, match="permission denied for function"):
        engine.read(
            "SELECT set_config('statement_timeout', '1', false), set_config('search_path', 'pg_catalog', false),"
            " set_config('default_transaction_read_only', 'off', false), pg_advisory_lock(4242)"
        )
    try:
        engine.read("DECLARE leak CURSOR WITH HOLD FOR SELECT 1")
    except QueryError:
        pass
    # ... and whatever a query did, the next one on the same connection starts clean.
    state = engine.read(
        "SELECT current_setting('statement_timeout') AS timeout, current_setting('search_path') AS path,"
        " current_setting('default_transaction_read_only') AS ro, current_user::text AS who,"
        " (SELECT count(*) FROM pg_prepared_statements) AS prepared,"
        " (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors"
    ).df.iloc[0]
    assert state["timeout"] == "15s"
    assert "public" in state["path"]
    assert state["ro"] == "on"
    assert state["who"] == "nexus_agent"
    assert (state["prepared"], state["cursors"]) == (0, 0)
    with db.connect_admin() as admin:
        locks = admin.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND a.usename LIKE 'nexus%'"
        ).fetchone()[0]
    assert locks == 0
    engine.close()


def test_statement_timeout_cancels_and_the_next_query_works(db):
    engine = Engine(db.agent_url, db.writer_url, EngineLimits(statement_timeout_ms=300))
    with pytest.raises(QueryError) as info:
        engine.read(SLOW_SQL)
    assert info.value.sqlstate == "57014"
    assert "300 ms" in str(info.value)
    assert engine.read("SELECT 41 + 1 AS answer").df["answer"][0] == 42
    engine.close()


def test_huge_cross_join_stays_within_the_row_cap_and_bounded_memory(db):
    engine = Engine(db.agent_url, db.writer_url, EngineLimits(row_cap=50_000))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = engine.read(
        "SELECT a.g AS a, b.g AS b, repeat('x', 20) AS pad FROM generate_series(1, 20000) a(g)"
        " CROSS JOIN generate_series(1, 20000) b(g)"
    )  # 400 million rows
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert result.row_count == 50_000 and result.truncated
    assert len(result.df) == 50_000
    assert grown_mb < 300, f"kernel memory grew by {grown_mb:.0f} MB for a capped result"
    engine.close()


def test_a_result_exactly_at_the_cap_is_not_marked_truncated(db):
    result = db.engine.read("SELECT g FROM generate_series(1, 10) g", row_cap=10)
    assert (result.row_count, result.truncated) == (10, False)
    result = db.engine.read("SELECT g FROM generate_series(1, 11) g ORDER BY g", row_cap=10)
    assert (result.row_count, result.truncated) == (10, True)
    assert list(result.df["g"]) == list(range(1, 11))


def test_server_restart_between_two_queries_the_second_works(db):
    assert db.engine.read("SELECT 1 AS one").df["one"][0] == 1
    restart_embedded(db.embedded.pgdata)
    assert db.engine.read("SELECT 2 AS two").df["two"][0] == 2
    # the write connection recovers too
    assert db.engine.write(["UPDATE projects SET updated_at = updated_at WHERE false"], [0]).committed


def test_values_survive_the_round_trip_into_the_dataframe(db):
    long_text = "ünïcødé ☃ 李伟 " * 5000
    df = db.engine.read(
        "SELECT 1::int AS small, NULL::int AS none_int, 9007199254740993::bigint AS big,"
        " 'Zoë Łukasz 李伟 🚀'::text AS name, NULL::text AS none_text, %s::text AS long_text,"
        ' \'{"tags": ["a", "b"], "n": 1.5, "nested": {"ok": true}}\'::jsonb AS doc,'
        " ARRAY['rust', 'kafka', NULL]::text[] AS topics, ARRAY[1, 2, 3]::int[] AS nums,"
        " '2026-01-02 03:04:05.123456+00'::timestamptz AS at, 12.50::numeric(6,2) AS price,"
        " true AS yes, NULL::boolean AS maybe".replace("%s", "'" + long_text + "'")
    ).df
    row = df.iloc[0]
    assert row["small"] == 1 and str(df["small"].dtype) == "Int32"
    assert pd.isna(row["none_int"]) and str(df["none_int"].dtype) == "Int32"
    assert row["big"] == 9007199254740993 and str(df["big"].dtype) == "Int64"
    assert row["name"] == "Zoë Łukasz 李伟 🚀"
    assert pd.isna(row["none_text"])
    assert row["long_text"] == long_text
    assert row["doc"] == {"tags": ["a", "b"], "n": 1.5, "nested": {"ok": True}}
    assert row["topics"] == ["rust", "kafka", None]
    assert row["nums"] == [1, 2, 3]
    assert row["at"] == pd.Timestamp("2026-01-02 03:04:05.123456", tz="UTC")
    assert str(df["at"].dtype).endswith("UTC]")
    assert math.isclose(row["price"], 12.5)
    assert row["yes"] is True or row["yes"] == True  # noqa: E712 (pandas BooleanDtype scalar)
    assert pd.isna(row["maybe"])


def test_integers_with_nulls_stay_integers_in_real_data(db):
    sql = (
        "SELECT followers, CASE WHEN followers > 10 THEN followers END AS maybe FROM contributors ORDER BY id LIMIT 200"
    )
    df = db.engine.read(sql).df
    assert str(df["maybe"].dtype) == "Int32"
    few = (df["followers"].isna() | (df["followers"] <= 10)).astype(bool)
    assert few.any() and not few.all(), "the sample holds both cases"
    assert df["maybe"].isna().tolist() == few.tolist(), "NULL exactly where the CASE gives none"
    kept = ~few
    assert df["maybe"][kept].astype("int64").tolist() == df["followers"][kept].astype("int64").tolist()


def test_result_carries_sql_count_and_timing(db):
    result = db.engine.read("SELECT tier, count(*) AS n FROM lead_scores GROUP BY 1 ORDER BY 1;")
    assert result.df.attrs["sql"] == "SELECT tier, count(*) AS n FROM lead_scores GROUP BY 1 ORDER BY 1"
    assert set(result.df["tier"]) == {"cold", "hot", "warm"}
    assert result.row_count == 3 and not result.truncated and result.elapsed_ms > 0
    assert result.column_types == {"tier": "text", "n": "int8"}


def test_duplicate_column_names_are_kept(db):
    df = db.engine.read("SELECT p.id, r.id FROM projects p JOIN repositories r ON r.project_id = p.id LIMIT 3").df
    assert list(df.columns) == ["id", "id"]


def test_errors_are_one_paragraph_with_state_message_and_position(db):
    with pytest.raises(QueryError) as info:
        db.engine.read("SELECT github_login,\n       nonexistent_col FROM contributors")
    err = info.value
    assert err.sqlstate == "42703"
    assert "column" in err.message and "does not exist" in err.message
    assert "At line 2, column 8" in str(err), "the position is in the SQL as written, not as wrapped"
    assert "nexus_result" not in str(err)
    with pytest.raises(QueryError) as info:
        db.engine.read("SELEC tier FROM lead_scores")
    assert "SELEC" in str(info.value)


def test_errors_never_show_a_password(db):
    engine = Engine("postgresql://nexus_agent:hunter2-secret@127.0.0.1:1/nowhere", db.writer_url)
    with pytest.raises(QueryError) as info:
        engine.read("SELECT 1")
    assert "hunter2-secret" not in str(info.value)
    assert "Cannot connect" in str(info.value)


def test_write_runs_exactly_once_in_one_transaction_and_reports_rows(db):
    target = db.engine.read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 3").df["id"].tolist()
    ids = ", ".join(str(i) for i in target)
    sql = f"UPDATE lead_scores SET status = 'contacted', status_changed_at = now() WHERE id IN ({ids})"
    try:
        done = db.engine.write([sql], [3])
        assert done.rows_affected == 3 and done.committed and done.role == "nexus_writer"
        assert set(db.engine.read(f"SELECT status FROM lead_scores WHERE id IN ({ids})").df["status"]) == {"contacted"}
    finally:
        db.engine.write([f"UPDATE lead_scores SET status = 'new' WHERE id IN ({ids})"], [3])


def test_a_write_that_changes_other_than_the_expected_rows_rolls_back(db):
    target = db.engine.read("SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT 3").df["id"].tolist()
    ids = ", ".join(str(i) for i in target)
    before = fingerprint(db)
    first = f"UPDATE lead_scores SET status = 'contacted' WHERE id = {target[0]}"
    second = f"UPDATE lead_scores SET status = 'qualified' WHERE id IN ({ids})"
    result = db.engine.write([first, second], [1, 2])  # the second touches 3, not the 2 "shown"
    assert not result.committed and result.mismatch == (1, 2, 3) and result.rows_affected == 0
    assert fingerprint(db) == before, "the first statement was rolled back with the second"


def test_a_failing_write_rolls_everything_back(db):
    before = fingerprint(db)
    with pytest.raises(QueryError) as info:
        # Low scores pass the check, high ones fail it part-way through: nothing may stick.
        db.engine.write(["UPDATE lead_scores SET score = score + 60, status = 'contacted'"], [0])
    assert info.value.sqlstate == "23514"  # check constraint: score between 0 and 100
    assert fingerprint(db) == before


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE lead_scores SET status = 'new' WHERE false; COMMIT; DELETE FROM outreach_events",
        "SELECT 1; DELETE FROM outreach_events",
    ],
)
def test_a_write_statement_is_exactly_one_statement(db, sql):
    before = fingerprint(db)
    with pytest.raises(QueryError, match="multiple commands"):
        db.engine.write([sql], [0])
    assert fingerprint(db) == before


def test_the_write_role_cannot_escape_to_the_server(db):
    PWNED.unlink(missing_ok=True)
    for sql in (
        f"COPY (SELECT 1) TO PROGRAM 'touch {PWNED}'",
        "SELECT password_hash FROM users",
        "DROP TABLE lead_scores",
    ):
        with pytest.raises(QueryError):
            db.engine.write([sql], [0])
    assert not PWNED.exists()


def test_cancel_from_another_thread_stops_a_running_read(db):
    import threading
    import time

    engine = Engine(db.agent_url, db.writer_url)
    errors = []

    def run():
        try:
            engine.read(SLOW_SQL)
        except QueryError as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    assert engine.cancel() == 1
    t.join(timeout=5)
    assert not t.is_alive()
    assert errors and errors[0].sqlstate == "57014"
    assert engine.read("SELECT 1 AS ok").df["ok"][0] == 1
    engine.close()


@pytest.mark.parametrize("bad_cap", [0, -5])
def test_row_cap_must_be_positive(db, bad_cap):
    with pytest.raises(QueryError, match="row cap"):
        db.engine.read("SELECT 1", row_cap=bad_cap)


def test_a_nul_byte_is_refused_clearly(db):
    with pytest.raises(QueryError, match="NUL"):
        db.engine.read("SELECT 'a\x00b'")


def test_infinite_bc_and_far_future_dates_come_back_readable_never_as_a_wrong_year(db):
    df = db.engine.read(
        "SELECT 'infinity'::date AS d_inf, '-infinity'::date AS d_minf, '0044-03-15 BC'::date AS d_bc,"
        " '10000-01-01'::date AS d_far, 'infinity'::timestamptz AS t_inf, '-infinity'::timestamptz AS t_minf,"
        " '0044-03-15 12:30:00+00 BC'::timestamptz AS t_bc, '10000-01-01 01:02:03'::timestamp AS t_far,"
        " '2024-05-01'::date AS d_ok, '1500-01-01'::timestamp AS t_old"
    ).df.iloc[0]
    assert (df["d_inf"], df["d_minf"], df["d_bc"], df["d_far"]) == (
        "infinity",
        "-infinity",
        "0044-03-15 BC",
        "10000-01-01",
    )
    assert (df["t_inf"], df["t_minf"], df["t_far"]) == ("infinity", "-infinity", "10000-01-01T01:02:03")
    assert df["t_bc"] == "0044-03-15T12:30:00+00:00 BC"
    assert str(df["d_ok"]) == "2024-05-01" and str(df["t_old"]) == "1500-01-01 00:00:00"
    # a column mixing both keeps its real dates as dates
    mixed = (
        db.engine.read("SELECT d::date AS d FROM (VALUES ('infinity'), ('2024-05-01'), (NULL)) v(d)").df["d"].tolist()
    )
    assert mixed[0] == "infinity" and str(mixed[1]) == "2024-05-01" and mixed[2] is None


def test_reads_beyond_the_pool_wait_for_a_connection_and_never_open_more(db):
    import threading

    engine = Engine(db.agent_url, None, EngineLimits(pool_size=2))
    role = psycopg.conninfo.conninfo_to_dict(db.agent_url).get("user") or "nexus_agent"
    results, peak, done = [], [0], threading.Event()

    with db.connect_admin(autocommit=True) as admin:
        started = admin.execute("SELECT now()").fetchone()[0]

    def sample() -> None:  # the reader connections opened since the test began: this engine's
        with db.connect_admin(autocommit=True) as admin:
            while not done.is_set():
                n = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND backend_start >= %s", (role, started)
                ).fetchone()[0]
                peak[0] = max(peak[0], n)

    def read(n: int) -> None:
        try:
            results.append(engine.read(f"SELECT {n} AS n, count(*) AS c FROM generate_series(1, 2000000)").df["n"][0])
        except QueryError as exc:
            results.append(exc)

    sampler = threading.Thread(target=sample)
    sampler.start()
    readers = [threading.Thread(target=read, args=(n,)) for n in range(8)]
    for t in readers:
        t.start()
    for t in readers:
        t.join(timeout=120)
    done.set()
    sampler.join()
    engine.close()
    assert sorted(r for r in results if not isinstance(r, QueryError)) == list(range(8)), results
    assert 1 <= peak[0] <= 2, f"{peak[0]} reader connections open at once for a pool of 2"


def test_a_database_with_no_connection_left_for_the_role_says_so(db):
    from nexusleads_lab.db.store import ConversationStore

    role = "nexus_limit_probe"
    with db.connect_admin(autocommit=True) as admin:
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    try:
        url = db.embedded.url_for(role)
        with pytest.raises(QueryError) as read:
            Engine(url, None).read("SELECT 1")
        with pytest.raises(QueryError) as store:
            ConversationStore(url, "*", "someone").list()
        for failure in (read.value, store.value):
            assert "too many connections" in failure.message
            assert "CONNECTION LIMIT" in failure.hint and "nexus-lab db roles" not in failure.hint
    finally:
        with db.connect_admin(autocommit=True) as admin:
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_a_closed_engine_leaves_no_read_connection_open_on_the_server(db):
    """A read runs on its connection's ADBC statements directly (and ADBC refuses to close a
    connection with a statement open): closing the engine still closes every connection."""
    app = "nexus-close-" + uuid.uuid4().hex[:8]
    engine = Engine(db.agent_url, None, EngineLimits(pool_size=2))
    engine._reads._url = engine._reads._url.replace("application_name=nexusleads-lab", f"application_name={app}")

    def open_here() -> int:
        with db.connect_admin(autocommit=True) as admin:
            query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            return admin.execute(query, (app,)).fetchone()[0]

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda n: engine.read(f"SELECT {n} AS n").df["n"][0], range(6))) == list(range(6))
    assert 1 <= open_here() <= 2
    with pytest.raises(QueryError):  # an error on the connection: it stays pooled and reads again
        engine.read("SELECT 1/0 AS boom")
    assert engine.read("SELECT 2 AS n").df["n"][0] == 2
    engine.close()
    assert open_here() == 0, "a closed engine left its read connections open"


def test_an_engine_never_closed_lets_the_process_exit_quietly(db):
    """Idle pooled connections hold no open statement: one collected at exit (its finalizers in
    any order) closes without an "Exception ignored" traceback on stderr."""
    script = (
        "import gc, sys\n"
        "from nexusleads_lab.db import Engine\n"
        "engine = Engine(sys.argv[1], None)\n"
        "assert engine.read('SELECT 1 AS n').df['n'][0] == 1\n"
        "cycle = [engine]\n"
        "cycle.append(cycle)\n"  # collected by the cycle collector, not by reference counts
        "del engine, cycle\n"
        "gc.collect()\n"
        "again = Engine(sys.argv[1], None)\n"
        "assert again.read('SELECT 2 AS n').df['n'][0] == 2\n"
    )
    done = subprocess.run([sys.executable, "-c", script, db.agent_url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Exception ignored" not in done.stderr and "RuntimeError" not in done.stderr, done.stderr
