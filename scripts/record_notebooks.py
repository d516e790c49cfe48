"""Re-record the shared notebooks' cassettes and saved outputs (for maintainers).

    .venv/bin/python scripts/record_notebooks.py                 # all notebooks
    .venv/bin/python scripts/record_notebooks.py quickstart      # one

Each notebook runs top to bottom against a fresh embedded database with the default demo
data, its model turns answered by the scripted "author" below through the real ``openai``
client, with ``NEXUS_RECORD`` capturing every exchange into ``.cassettes/<name>.cassette.jsonl``. The
executed notebook (outputs included, so GitHub and nbviewer show the answers) is written
back with its first cell unchanged, so a reader replays the cassette with no key.

With a live model instead: set OPENAI_API_KEY and REPLAY = None in a notebook's first cell,
and NEXUS_RECORD=<name>.cassette.jsonl to capture a new cassette.

The author's answers are what a good model answers to these questions; the SQL in them runs
for real when recording and again on every replay.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "notebooks"
CASSETTES = HERE / ".cassettes"  # hidden from JupyterLab's file browser: the folder shows notebooks
ORDER = ("lead-review", "quickstart", "repo-coverage")  # the order pytest runs them in


def _dash(title: str, *sections) -> str:
    return json.dumps({"type": "dashboard", "title": title, "sections": list(sections)})


def _msg(text: str) -> str:
    return json.dumps({"type": "message", "text": text})


# -- the author's answers, by question -------------------------------------------------------

KPI_SQL = """SELECT count(*) AS leads,
       count(*) FILTER (WHERE ls.tier = 'hot') AS hot_leads,
       count(*) FILTER (WHERE ls.status = 'new') AS not_contacted,
       count(*) FILTER (WHERE ls.status = 'converted') AS converted,
       round(avg(ls.score), 1) AS avg_score
FROM lead_scores ls
JOIN projects p ON p.id = ls.project_id
JOIN organizations o ON o.id = p.org_id
WHERE o.slug = 'acme-analytics'"""

PER_PROJECT_SQL = """SELECT p.name AS project, count(*) AS leads,
       count(*) FILTER (WHERE ls.tier = 'hot') AS hot_leads
FROM lead_scores ls
JOIN projects p ON p.id = ls.project_id
JOIN organizations o ON o.id = p.org_id
WHERE o.slug = 'acme-analytics'
GROUP BY p.name
ORDER BY leads DESC"""

HOT_KAFKA_SQL = """SELECT ls.id AS lead_id, c.github_login, c.name, c.company, c.followers, ls.score
FROM lead_scores ls
JOIN projects p ON p.id = ls.project_id
JOIN organizations o ON o.id = p.org_id
JOIN contributors c ON c.id = ls.contributor_id
WHERE o.slug = 'acme-analytics' AND p.name = 'Kafka Ecosystem'
  AND ls.tier = 'hot' AND ls.status = 'new'
  AND NOT EXISTS (SELECT 1 FROM outreach_events oe WHERE oe.lead_id = ls.id)
ORDER BY ls.score DESC, c.followers DESC, ls.id
LIMIT 25"""

STATUS_SQL = """SELECT ls.status, count(*) AS leads
FROM lead_scores ls
JOIN projects p ON p.id = ls.project_id
JOIN organizations o ON o.id = p.org_id
WHERE o.slug = 'acme-analytics'
GROUP BY ls.status
ORDER BY array_position(ARRAY['new', 'contacted', 'qualified', 'disqualified', 'converted'], ls.status)"""


def _mark_contacted(request):
    """Propose the write for the top three leads the previous answer listed (ids from the result)."""
    from nexusleads_lab.testing.modelserver import text

    ids = _top_lead_ids(request, 3)
    where = f"id IN ({', '.join(map(str, ids))})"
    sql = (
        f"UPDATE lead_scores SET status = 'contacted', status_changed_at = now() WHERE {where} AND status = 'new';\n"
        "INSERT INTO outreach_events (lead_id, channel, outcome, note) "
        f"SELECT id, 'email', 'sent', 'Intro email about our Kafka connector' FROM lead_scores WHERE {where}"
    )
    return text(
        json.dumps(
            {
                "type": "confirm",
                "id": "mark-top-3",
                "title": "Mark 3 hot Kafka leads as contacted",
                "summary": f"Sets leads {', '.join(map(str, ids))} to contacted and logs the intro email for each.",
                "sql": sql,
            }
        )
    )


def _top_lead_ids(request, n: int) -> list[int]:
    for message in request.get("messages", []):
        if message.get("role") == "tool" and '"lead_id"' in (message.get("content") or ""):
            data = json.loads(message["content"])
            names = [c["name"] for c in data["columns"]]
            return [row[names.index("lead_id")] for row in data["rows"][:n]]
    raise RuntimeError("no lead ids in the conversation")


FUNNEL_SQL = """SELECT ls.status, count(*) AS leads,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
FROM lead_scores ls
JOIN projects p ON p.id = ls.project_id
JOIN organizations o ON o.id = p.org_id
WHERE o.slug = 'acme-analytics' AND p.name = 'Kafka Ecosystem'
GROUP BY ls.status
ORDER BY array_position(ARRAY['new', 'contacted', 'qualified', 'disqualified', 'converted'], ls.status)"""

WEEKLY_SQL = """SELECT date_trunc('week', ls.scored_at)::date AS week, count(*) AS new_leads,
       count(*) FILTER (WHERE ls.tier = 'hot') AS hot_leads
FROM lead_scores ls
JOIN projects p ON p.id = ls.project_id
JOIN organizations o ON o.id = p.org_id
WHERE o.slug = 'acme-analytics' AND p.name = 'Kafka Ecosystem'
  AND ls.scored_at >= (SELECT max(scored_at) FROM lead_scores) - interval '26 weeks'
GROUP BY 1 ORDER BY 1"""

HOT_UNCONTACTED_SQL = HOT_KAFKA_SQL.replace("LIMIT 25", "LIMIT 50")

COMPANIES_SQL = """SELECT lower(btrim(c.company, ' @')) AS company,
       count(DISTINCT c.id) AS strong_contributors,
       max(ls.score) AS best_score,
       round(avg(ls.score), 1) AS avg_score
FROM lead_scores ls
JOIN projects p ON p.id = ls.project_id
JOIN organizations o ON o.id = p.org_id
JOIN contributors c ON c.id = ls.contributor_id
WHERE o.slug = 'acme-analytics' AND p.name = 'Kafka Ecosystem'
  AND ls.score >= 60 AND coalesce(btrim(c.company, ' @'), '') <> ''
GROUP BY 1
HAVING count(DISTINCT c.id) >= 2
ORDER BY strong_contributors DESC, best_score DESC, company
LIMIT 20"""

FOLLOWUP_SQL = """SELECT c.github_login, c.name, lower(btrim(c.company, ' @')) AS company, ls.score, ls.status
FROM lead_scores ls
JOIN projects p ON p.id = ls.project_id
JOIN organizations o ON o.id = p.org_id
JOIN contributors c ON c.id = ls.contributor_id
WHERE o.slug = 'acme-analytics' AND p.name = 'Kafka Ecosystem' AND ls.score >= 60
  AND lower(btrim(c.company, ' @')) = (
      SELECT lower(btrim(c2.company, ' @')) FROM lead_scores l2
      JOIN contributors c2 ON c2.id = l2.contributor_id
      WHERE l2.project_id = p.id AND l2.score >= 60 AND coalesce(btrim(c2.company, ' @'), '') <> ''
      GROUP BY 1 ORDER BY count(DISTINCT c2.id) DESC, max(l2.score) DESC, 1 LIMIT 1)
ORDER BY ls.score DESC, c.github_login"""

REPOS_SQL = """SELECT r.full_name, r.language, r.stars,
       count(*) AS leads,
       count(*) FILTER (WHERE ls.tier = 'hot') AS hot_leads,
       round(avg(ls.score), 1) AS avg_score
FROM repositories r
JOIN projects p ON p.id = r.project_id
JOIN organizations o ON o.id = p.org_id
JOIN repository_contributors rc ON rc.repository_id = r.id
JOIN lead_scores ls ON ls.contributor_id = rc.contributor_id AND ls.project_id = r.project_id
WHERE o.slug = 'acme-analytics'
GROUP BY r.id, r.full_name, r.language, r.stars
HAVING count(*) >= 5
ORDER BY hot_leads DESC, avg_score DESC, r.full_name
LIMIT 20"""

LANG_SQL = """WITH lead_language AS (
    SELECT DISTINCT coalesce(r.language, 'unknown') AS language, r.stars, ls.id AS lead_id, ls.score, ls.tier
    FROM repositories r
    JOIN projects p ON p.id = r.project_id
    JOIN organizations o ON o.id = p.org_id
    JOIN repository_contributors rc ON rc.repository_id = r.id
    JOIN lead_scores ls ON ls.contributor_id = rc.contributor_id AND ls.project_id = r.project_id
    WHERE o.slug = 'acme-analytics'
)
SELECT language, count(DISTINCT lead_id) AS leads, round(avg(score), 1) AS avg_score,
       round(100.0 * count(*) FILTER (WHERE tier = 'hot') / count(*), 1) AS hot_pct,
       round(avg(stars)) AS avg_repo_stars
FROM lead_language
GROUP BY language
ORDER BY avg_score DESC, language"""

STALE_SQL = """SELECT r.full_name, p.name AS project, r.language, r.stars, r.tracking_status,
       r.last_pushed_at::date AS last_push,
       (SELECT count(*) FROM lead_scores ls JOIN repository_contributors rc ON rc.contributor_id = ls.contributor_id
        WHERE rc.repository_id = r.id AND ls.project_id = r.project_id AND ls.tier = 'hot') AS hot_leads
FROM repositories r
JOIN projects p ON p.id = r.project_id
JOIN organizations o ON o.id = p.org_id
WHERE o.slug = 'acme-analytics' AND r.tracking_status <> 'archived'
  AND r.last_pushed_at < (SELECT max(last_pushed_at) FROM repositories) - interval '6 months'
ORDER BY hot_leads, r.last_pushed_at
LIMIT 30"""


def _psql(*sqls: str):
    from nexusleads_lab.testing.modelserver import tool_calls

    return tool_calls([("psql", {"sql": s}) for s in sqls])


def answers() -> dict[str, list]:
    from nexusleads_lab.testing.modelserver import text, tool_calls

    return {
        "Give me a KPI overview of our lead pipeline": [
            tool_calls([("read_file", {"path": "plg-database/SKILL.md"})]),
            _psql(KPI_SQL, PER_PROJECT_SQL),
            text(
                _dash(
                    "Acme Analytics lead pipeline",
                    {
                        "type": "widgets",
                        "items": [
                            {"title": "Leads", "source": "r1", "column": "leads", "subtext": "all projects"},
                            {"title": "Hot leads", "source": "r1", "column": "hot_leads", "subtext": "score ≥ 75"},
                            {
                                "title": "Not contacted",
                                "source": "r1",
                                "column": "not_contacted",
                                "subtext": "status new",
                            },
                            {"title": "Converted", "source": "r1", "column": "converted"},
                        ],
                    },
                    {"type": "bars", "label": "Leads per project", "source": "r2", "x": "project", "y": "leads"},
                    {"type": "table", "title": "By project", "source": "r2"},
                )
            ),
        ],
        "Top hot leads for the Kafka Ecosystem project that we have not contacted yet": [
            _psql(HOT_KAFKA_SQL),
            text(
                _dash(
                    "Hot Kafka leads, not contacted yet",
                    {
                        "type": "widgets",
                        "items": [
                            {
                                "title": "Best score, untouched",
                                "source": "r3",
                                "column": "score",
                                "subtext": "tier hot, status new, no outreach",
                            }
                        ],
                    },
                    {
                        "type": "table",
                        "source": "r3",
                        "columns": ["github_login", "name", "company", "followers", "score"],
                        "limit": 25,
                    },
                )
            ),
        ],
        "Lead status breakdown": [
            _psql(STATUS_SQL),
            text(
                _dash(
                    "Lead status breakdown",
                    {"type": "pills", "source": "r4", "label_column": "status", "count_column": "leads"},
                    {"type": "bars", "label": "Leads by status", "source": "r4", "x": "status", "y": "leads"},
                )
            ),
        ],
        "Mark the top three of those hot Kafka leads as contacted and log the intro email": [
            _mark_contacted,
        ],
        "Weekly review of the Kafka Ecosystem project: funnel by status and new leads per week": [
            _psql(FUNNEL_SQL, WEEKLY_SQL),
            text(
                _dash(
                    "Kafka Ecosystem: weekly review",
                    {
                        "type": "pills",
                        "label": "Funnel",
                        "source": "r1",
                        "label_column": "status",
                        "count_column": "leads",
                    },
                    {
                        "type": "line",
                        "label": "New leads per week",
                        "source": "r2",
                        "x": "week",
                        "y": ["new_leads", "hot_leads"],
                    },
                )
            ),
        ],
        "Which hot leads have we not contacted yet?": [
            _psql(HOT_UNCONTACTED_SQL),
            text(
                _dash(
                    "Hot Kafka leads waiting for a first touch",
                    {
                        "type": "table",
                        "source": "r3",
                        "columns": ["github_login", "name", "company", "score"],
                        "limit": 15,
                    },
                )
            ),
        ],
        "Which companies have several strong contributors?": [
            _psql(COMPANIES_SQL),
            text(
                _dash(
                    "Companies with several strong Kafka contributors",
                    {
                        "type": "bars",
                        "label": "Contributors scoring 60+",
                        "source": "r4",
                        "x": "company",
                        "y": "strong_contributors",
                    },
                    {"type": "table", "source": "r4"},
                )
            ),
        ],
        "Who are they at the top company?": [
            _psql(FOLLOWUP_SQL),
            text(
                _dash(
                    "Strong contributors at the top company",
                    {"type": "table", "source": "r5"},
                )
            ),
        ],
        "Which tracked repositories bring the best leads?": [
            tool_calls([("read_file", {"path": "plg-database/SKILL.md"})]),
            _psql(REPOS_SQL),
            text(
                _dash(
                    "Repositories that bring the best leads",
                    {
                        "type": "bars",
                        "label": "Hot leads per repository",
                        "source": "r1",
                        "x": "full_name",
                        "y": "hot_leads",
                    },
                    {"type": "table", "source": "r1"},
                )
            ),
        ],
        "How do languages and stars relate to lead quality?": [
            _psql(LANG_SQL),
            text(
                _dash(
                    "Languages vs. lead quality",
                    {
                        "type": "bars",
                        "label": "Average lead score by language",
                        "source": "r2",
                        "x": "language",
                        "y": "avg_score",
                    },
                    {"type": "table", "source": "r2"},
                )
            ),
        ],
        "Which stale repositories should we stop tracking?": [
            _psql(STALE_SQL),
            text(
                _dash(
                    "Stale repositories (no push for 6 months)",
                    {"type": "table", "source": "r3"},
                    {
                        "type": "widgets",
                        "items": [
                            {
                                "title": "Oldest push, no hot lead",
                                "source": "r3",
                                "column": "last_push",
                                "subtext": "first candidate to pause",
                            }
                        ],
                    },
                )
            ),
        ],
    }


class Author:
    """Answers each request by its question: step k of the question's script for the k-th request."""

    def __init__(self, scripts: dict[str, list]) -> None:
        self.scripts = scripts

    def step_for(self, request, number):
        from nexusleads_lab.replay import last_user_message
        from nexusleads_lab.testing.modelserver import _resolve, http_error

        messages = request.get("messages", [])
        last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
        question = re.sub(r"\s+", " ", last_user_message(request) or "").strip()
        if question.startswith("CONFIRM_ACTION:"):
            from nexusleads_lab.testing.modelserver import text

            return _resolve(
                text(
                    _msg(
                        "Done — the three leads are now *contacted* and their intro emails are logged. "
                        "They will show up in next week's follow-up list if they do not reply."
                    )
                ),
                request,
            )
        script = self.scripts.get(question)
        if script is None:
            return http_error(500, f"author has no answer for {question!r}", should_retry=False)
        index = sum(1 for m in messages[last_user:] if m.get("role") == "assistant")
        return _resolve(script[min(index, len(script) - 1)], request)


def record(names: list[str]) -> None:
    import nbformat

    from nexusleads_lab.testing.modelserver import ModelServer

    home = Path(tempfile.mkdtemp(prefix="nexus-record-"))
    env_before = dict(os.environ)
    try:
        with ModelServer(Author(answers())) as server:
            os.environ.update(
                NEXUS_HOME=str(home),
                OPENAI_BASE_URL=server.base_url,
                OPENAI_API_KEY="author-no-key",
                NEXUS_USER="analyst",
                NEXUS_ORG="acme-analytics",
            )
            os.environ.pop("NEXUS_REPLAY", None)
            for name in names:
                path = HERE / f"{name}.ipynb"
                cassette = CASSETTES / f"{name}.cassette.jsonl"
                cassette.unlink(missing_ok=True)
                os.environ["NEXUS_RECORD"] = str(cassette)
                nb = nbformat.read(path, as_version=4)
                first = nb.cells[1].source
                nb.cells[1].source = re.sub(r"^REPLAY = .*$", "REPLAY = None", first, count=1, flags=re.M)
                _execute(nb)
                lines = [json.loads(line) for line in cassette.open()]
                previews = sum(1 for line in lines if "proposal" in line and "response" not in line)
                print(f"recorded {name}: {len(lines) - previews} exchanges, {previews} proposal previews")
    finally:
        os.environ.clear()
        os.environ.update(env_before)
        _stop(home)
    for name in names:
        _run_as_a_newcomer(HERE / f"{name}.ipynb")
        print(f"replayed {name} as a newcomer: outputs written")


def _execute(nb) -> None:
    """Run a notebook in place, from this folder, without widget state (every output reads without one)."""
    from nbclient import NotebookClient

    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        store_widget_state=False,
        resources={"metadata": {"path": str(HERE)}},
    ).execute()


def _run_as_a_newcomer(path: Path) -> None:
    """Run the notebook as shipped on a brand-new home with no model configured, and keep its outputs."""
    import nbformat

    home = Path(tempfile.mkdtemp(prefix="nexus-newcomer-"))
    env_before = dict(os.environ)
    try:
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NEXUS_RECORD", "NEXUS_REPLAY", "NEXUS_ORG", "DATABASE_URL"):
            os.environ.pop(name, None)
        os.environ.update(NEXUS_HOME=str(home), NEXUS_USER="analyst")
        nb = nbformat.read(path, as_version=4)
        # No widget state: every output reads without one (a chart is Vega + PNG, a resolved
        # card is its static HTML), and state would only carry each answer a second time.
        _execute(nb)
        nb.metadata.pop("widgets", None)
        for cell in nb.cells:  # a live widget (the chat panel) keeps its line of text: it needs a kernel
            for output in cell.get("outputs", []):
                output.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
        nbformat.write(nb, path)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
        _stop(home)


def _stop(home: Path) -> None:
    from nexusleads_lab.db.embedded import stop_embedded

    stop_embedded(home / "pgdata")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    record(sys.argv[1:] or list(ORDER))
