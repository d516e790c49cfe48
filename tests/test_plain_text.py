"""One plain-text renderer: the terminal and a notebook's ``text/plain`` read the same answer the same way.

A real query result with an exact numeric, an interval, a NULL and rows cut by the row cap goes
through ``nexus-lab sql`` (a subprocess) and ``%nexus sql``'s display (an IPython shell), then as a
dashboard table through ``nexus-lab ask``'s renderer and the cell's outputs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from IPython.utils.capture import capture_output

from nexusleads_lab.agent.responses import resolve_response
from nexusleads_lab.ui import text
from nexusleads_lab.ui.render import display_query_result, render_response

ORG = "pico-labs"
SQL = (
    "SELECT g AS n, 12345678901234567890.12::numeric + g AS exact, 12.50::numeric AS scaled, "
    "interval '3 days 4 hours' * g AS gap, CASE WHEN g = 2 THEN NULL ELSE 'lead ' || g END AS note "
    "FROM generate_series(1, 5) g ORDER BY g"
)
TIME = re.compile(r" · [\d.]+ m?s")


@pytest.fixture(scope="module")
def result(db):
    got = db.engine_for(ORG).read(SQL, row_cap=3)
    assert got.truncated_by == "rows" and got.row_count == 3, "the row cap cut the result"
    return got


def test_a_result_reads_the_same_in_the_terminal_and_in_a_notebook(db, result, tmp_path, ipython_shell):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    env.update(NEXUS_HOME=str(db.embedded.pgdata.parent), NEXUS_USER="text-user", NEXUS_ORG=ORG)
    proc = subprocess.run(
        [sys.executable, "-m", "nexusleads_lab.cli", "sql", "--row-cap", "3", SQL],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    terminal = proc.stdout.rstrip("\n").split("\n")

    with capture_output() as shown:
        display_query_result(result, "r1")
    notebook = shown.outputs[0].data["text/plain"].split("\n")

    rows = [
        ["1", "12345678901234567891.12", "12.50", "3 days 04:00:00", "lead 1"],
        ["2", "12345678901234567892.12", "12.50", "6 days 08:00:00", "NULL"],
        ["3", "12345678901234567893.12", "12.50", "9 days 12:00:00", "lead 3"],
    ]
    for lines in (terminal, notebook):
        assert lines[0].split() == ["n", "exact", "scaled", "gap", "note"]
        assert [re.split(r"\s{2,}", line.strip()) for line in lines[1:4]] == rows
    assert terminal[:4] == notebook[:4], "the same table, character for character"
    cut = "Stopped at the row cap of 3; aggregate or filter for exact answers."
    assert TIME.sub("", terminal[4]) == f"(3 rows (capped) · organization {ORG}: {cut})", "the terminal names its scope"
    assert TIME.sub("", notebook[4]) == f"(3 rows (capped): {cut})"


def test_a_dashboard_answer_reads_the_same_in_the_terminal_and_in_a_notebook(result):
    response = {
        "type": "dashboard",
        "title": "Capped leads",
        "sections": [
            {"type": "widgets", "items": [{"title": "Last n", "source": "r1", "column": "n", "row": 2}]},
            {"type": "table", "title": "The rows", "source": "r1"},
            {"type": "bars", "label": "By n", "source": "r1", "x": "note", "y": "n"},
        ],
    }
    resolved, notes = resolve_response(response, {"r1": result.df})
    assert not [n for n in notes if "r1" not in n], notes
    terminal = text.response_text(resolved)  # what `nexus-lab ask` prints

    parts = render_response(resolved, interactive=False)
    for part in parts:
        if part.later is not None:  # a chart fills its place after the rest is shown
            part.data = part.later()
    notebook = "\n".join(p.text for p in parts if p.text)

    assert terminal == notebook
    assert "6 days 08:00:00" in terminal and "NULL" in terminal and "[Last n: 3]" in terminal
    assert "(3 rows, showing" not in terminal, "the table shows every row it holds"
