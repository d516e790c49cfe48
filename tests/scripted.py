"""What tests script a model with: its final answers as the JSON text a model writes, and the queries
the tests share (so one question is one SQL text, with one ``ORDER BY``, everywhere)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TIER_SQL = "SELECT tier, count(*) AS n FROM lead_scores GROUP BY tier ORDER BY tier"
STATUS_SQL = "SELECT status, count(*) AS n FROM lead_scores GROUP BY status ORDER BY n DESC, status"
# The pipeline's numbers in one row: what the browser tests' dashboards show as KPI cards.
KPI_SQL = (
    "SELECT count(*) AS leads, count(*) FILTER (WHERE tier = 'hot') AS hot, "
    "count(*) FILTER (WHERE status = 'new') AS not_contacted, round(avg(score), 1) AS avg_score FROM lead_scores"
)

# Statements a read must refuse (writes, DDL, role and setting escapes, files, programs, stacked
# statements); PWNED is the file COPY ... TO PROGRAM would create if one ran.
PWNED = Path("/tmp/nexus-pwned")
ADVERSARIAL = [
    "INSERT INTO organizations (slug, name) VALUES ('evil', 'Evil')",
    "UPDATE lead_scores SET status = 'converted'",
    "DELETE FROM lead_scores",
    "TRUNCATE lead_scores CASCADE",
    "DROP TABLE lead_scores",
    "ALTER TABLE lead_scores ADD COLUMN evil int",
    "CREATE TABLE evil (id int)",
    "CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'DELETE FROM lead_scores RETURNING 1'",
    "GRANT ALL ON lead_scores TO PUBLIC",
    "ALTER ROLE nexus_agent SUPERUSER",
    f"COPY (SELECT 1) TO PROGRAM 'touch {PWNED}'",
    "COPY lead_scores FROM '/etc/passwd'",
    "COPY lead_scores TO '/tmp/nexus-leads.csv'",
    "SELECT 1; DELETE FROM lead_scores",
    "SeLeCt 1;DeLeTe FrOm lead_scores",
    "SELECT 1; SELECT 2",
    "VALUES (1); DELETE FROM lead_scores",
    "TABLE lead_scores; DELETE FROM lead_scores",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
    "RESET ROLE; DELETE FROM lead_scores",
    "SELECT set_config('role', 'postgres', false)",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SET default_transaction_read_only = off",
    "COMMIT; DELETE FROM lead_scores",
    "WITH d AS (DELETE FROM lead_scores RETURNING *) SELECT count(*) FROM d",
    "WITH u AS (UPDATE lead_scores SET score = 0 RETURNING 1) SELECT * FROM u",
    "WITH x AS (SELECT 1) DELETE FROM lead_scores",
    "WITH x AS (SELECT 1) INSERT INTO organizations (slug, name) VALUES ('evil', 'Evil') RETURNING *",
    "SELECT * INTO evil_copy FROM lead_scores",
    "EXPLAIN ANALYZE DELETE FROM lead_scores",
    "SELECT nextval('lead_scores_id_seq')",
    "SELECT setval('lead_scores_id_seq', 1)",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
    "SELECT pg_cancel_backend(pg_backend_pid())",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('postgresql.conf')",
    "SELECT pg_ls_dir('.')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_create(0)",
    "DO $$ BEGIN DELETE FROM lead_scores; END $$",
    "CALL evil_procedure()",
    "LOCK TABLE lead_scores IN ACCESS EXCLUSIVE MODE",
    "SELECT * FROM lead_scores FOR UPDATE",
    "LISTEN evil",
    "NOTIFY evil, 'payload'",
    "SELECT pg_notify('evil', 'payload')",
    "VACUUM lead_scores",
    "PREPARE p AS DELETE FROM lead_scores",
    "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
    "MERGE INTO lead_scores t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE",
    "/* harmless */ DELETE FROM lead_scores",
    "-- just a comment\nDELETE FROM lead_scores",
    "SELECT 1 /* ; */ ; DELETE FROM lead_scores",
    "SELECT 1) AS x; DELETE FROM lead_scores; SELECT (1",
    "SELECT 1 --\n) q; DELETE FROM lead_scores; --",
    "(DELETE FROM lead_scores)",
    "SELECT password_hash FROM users",
    "SELECT * FROM users",
    "SELECT * FROM chat_messages",
    "SELECT * FROM chat_conversations",
    "SELECT * FROM write_audit",
    "SELECT rolpassword FROM pg_authid",
    "SELECT passwd FROM pg_shadow",
    "SELECT pg_reload_conf()",
    "SELECT pg_advisory_lock(42)",
    "SELECT dblink_exec('dbname=postgres', 'DELETE FROM lead_scores')",
    "",
    "   ;  ",
]


def message(text: str) -> str:
    """A plain answer."""
    return json.dumps({"type": "message", "text": text})


def dashboard(*sections: dict[str, Any], title: str = "Leads") -> str:
    """A dashboard of these sections."""
    return json.dumps({"type": "dashboard", "title": title, "sections": list(sections)})


def kpi_widgets(source: str = "r1", *, hot: str = "Hot", average: bool = False) -> dict[str, Any]:
    """A widgets section of ``KPI_SQL``'s row (result ``source``): leads, hot, not contacted and,
    with ``average``, the average score."""
    items: list[dict[str, Any]] = [
        {"title": "Leads", "source": source, "column": "leads", "subtext": "all projects"},
        {"title": hot, "source": source, "column": "hot", "subtext": "score ≥ 70"},
        {"title": "Not contacted", "source": source, "column": "not_contacted", "subtext": "status new"},
    ]
    if average:
        items.append({"title": "Average score", "source": source, "column": "avg_score"})
    return {"type": "widgets", "items": items}


def confirm(sql: str, title: str = "Change") -> str:
    """A proposed write; the id is the model's own, which the product replaces with an unguessable one."""
    return json.dumps({"type": "confirm", "id": "model-chosen", "title": title, "summary": "s", "sql": sql})
