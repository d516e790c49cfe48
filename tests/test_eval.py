"""`nexus-lab eval` and `nexus.eval()`: a suite's questions asked through the real assistant (the scripted
model over the loopback server, the real embedded database) and scored by execution accuracy."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nexusleads_lab.eval.score import Gold, cell, gold_is_ordered, same
from nexusleads_lab.eval.suite import load_suite
from nexusleads_lab.replay.cassette import last_user_message
from nexusleads_lab.testing.modelserver import ModelServer, http_error, text, tool_calls

ORG = "acme-analytics"
USAGE = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
DONE = json.dumps({"type": "message", "text": "Here is the result."})

FUNNEL = "ARRAY['new', 'contacted', 'qualified', 'disqualified', 'converted']"
TOP5 = "SELECT id AS lead_id, score FROM lead_scores ORDER BY score DESC, id LIMIT 5"

# name -> (question, gold SQL); the model's answers per test are below.
SUITE = {
    "tiers": ("How many leads per tier?", "SELECT tier, count(*) AS leads FROM lead_scores GROUP BY tier"),
    "hot": ("How many hot leads?", "SELECT count(*) AS hot_leads FROM lead_scores WHERE tier = 'hot'"),
    "funnel": (
        "Lead funnel in pipeline order?",
        f"SELECT status, count(*) AS leads FROM lead_scores GROUP BY status ORDER BY array_position({FUNNEL}, status)",
    ),
    "warm": ("How many warm leads?", "SELECT count(*) AS warm FROM lead_scores WHERE tier = 'warm'"),
    "top5": ("The five best leads, best first?", TOP5),
    "broken": ("How many projects?", "SELECT count(*) AS projects FROM projects"),
}

# Right: the gold result under other names, in another column order, with extra columns or another type.
RIGHT = {
    "tiers": "SELECT count(*) AS n, upper(tier) AS shout, tier AS t FROM lead_scores GROUP BY tier ORDER BY n",
    "hot": "SELECT 'hot' AS tier, count(*)::numeric AS how_many FROM lead_scores WHERE tier = 'hot'",
    "funnel": (
        "SELECT count(*) AS leads, status FROM lead_scores GROUP BY status ORDER BY CASE status WHEN 'new' THEN 1 "
        "WHEN 'contacted' THEN 2 WHEN 'qualified' THEN 3 WHEN 'disqualified' THEN 4 ELSE 5 END"
    ),
    "warm": "SELECT count(*) FILTER (WHERE tier = 'warm') AS warm_leads FROM lead_scores",
    "top5": TOP5,
}
# Wrong: a wrong filter, and the right rows in the wrong order.
WRONG = {
    "warm": "SELECT count(*) AS warm FROM lead_scores WHERE tier = 'cold'",
    "top5": f"SELECT * FROM ({TOP5}) AS best ORDER BY score, lead_id DESC",
}


def write_suite(path: Path, names=tuple(SUITE)) -> Path:
    import yaml

    path.write_text(
        yaml.safe_dump({"questions": [{"name": n, "question": SUITE[n][0], "sql": SUITE[n][1]} for n in names]})
    )
    return path


class Analyst:
    """A scripted model that answers each question by its text: a ``psql`` call with the SQL the test
    gives for it, then, after the tool result, a short answer. A question mapped to a step gets that
    step instead (a model error, a hang)."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers

    def step_for(self, request, number):
        question = last_user_message(request)
        answer = self.answers[question]
        if request["messages"][-1]["role"] == "tool":
            return text(DONE, usage=USAGE)
        if isinstance(answer, str):
            return tool_calls([("psql", {"sql": answer})], usage=USAGE)
        return answer(request) if callable(answer) else answer


def by_question(answers: dict[str, object]) -> dict[str, object]:
    return {SUITE[name][0]: answer for name, answer in answers.items()}


def environment(db, server: ModelServer | None, org: str | None = ORG) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
    env.update(NEXUS_HOME=str(db.embedded.pgdata.parent), NEXUS_USER="eval-user", NEXUS_ORG=org or "")
    if server is not None:
        env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-eval-SECRET-1234567890")
    return env


@pytest.fixture()
def nexus_lab(db, tmp_path):
    def _run(*args: str, server: ModelServer | None = None, org: str | None = ORG) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "nexusleads_lab.cli", *args],
            capture_output=True,
            text=True,
            env=environment(db, server, org),
            timeout=300,
            cwd=tmp_path,
        )

    return _run


def items_by_name(out: dict) -> dict[str, dict]:
    return {item["name"]: item for item in out["items"]}


# -- a run, end to end ---------------------------------------------------------------------


def test_eval_scores_each_answer_by_its_result_and_counts_a_model_error_as_an_error(nexus_lab, tmp_path):
    suite = write_suite(tmp_path / "suite.yaml")
    answers = {**RIGHT, **WRONG, "broken": http_error(400, "This model does not support tools.")}
    out = tmp_path / "run.json"
    with ModelServer(Analyst(by_question(answers))) as server:
        proc = nexus_lab("eval", str(suite), "--json", "--out", str(out), "--min-score", "0.5", server=server)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {k: result[k] for k in ("suite", "total", "passed", "failed", "errors")} == {
        "suite": str(suite),
        "total": 6,
        "passed": 3,
        "failed": 2,
        "errors": 1,
    }
    assert result["model"] == "gpt-4.1-mini" and result["complete"] is True
    items = items_by_name(result)
    assert list(items) == list(SUITE), "one item per question, in the suite's order"
    assert {n: i["status"] for n, i in items.items()} == {
        "tiers": "passed",
        "hot": "passed",
        "funnel": "passed",
        "warm": "failed",
        "top5": "failed",
        "broken": "error",
    }
    assert all(i["passed"] == (i["status"] == "passed") for i in items.values())
    assert set(items["tiers"]) == {"name", "question", "status", "passed", "reason", "sql", "tokens", "seconds"}
    assert items["tiers"]["sql"] == [RIGHT["tiers"]] and items["warm"]["sql"] == [WRONG["warm"]]
    assert items["tiers"]["question"] == SUITE["tiers"][0]
    assert items["tiers"]["tokens"] == 2 * USAGE["total_tokens"], "both requests of the turn"
    assert items["broken"]["sql"] == [] and items["broken"]["tokens"] == 0
    assert "does not support tools" in items["broken"]["reason"]
    assert "another order" in items["top5"]["reason"]
    assert "tier as t" in items["tiers"]["reason"] and "leads as n" in items["tiers"]["reason"]
    assert all(isinstance(i["seconds"], float) and i["seconds"] >= 0 for i in items.values())
    assert json.loads(out.read_text()) == result, "--out saves what --json prints"
    assert "sk-eval-SECRET" not in proc.stdout + proc.stderr
    # 5 questions with a tool call and an answer, one refused at once: nothing confirmed, nothing more
    assert len(server.requests) == 5 * 2 + 1


def test_min_score_gates_the_exit_code_and_baseline_shows_what_changed(nexus_lab, tmp_path):
    names = ("tiers", "warm", "top5", "broken")
    suite = write_suite(tmp_path / "suite.yaml", names)
    before = tmp_path / "before.json"
    first = {**RIGHT, **WRONG, "broken": RIGHT["hot"].replace("hot", "x")}  # broken: a wrong answer, not an error
    with ModelServer(Analyst(by_question(first))) as server:
        proc = nexus_lab("eval", str(suite), "--json", "--out", str(before), "--min-score", "0.26", server=server)
    assert proc.returncode == 1, "1 of 4 passed: below 0.26"
    assert "below --min-score 0.26" in proc.stderr
    assert {i["name"]: i["status"] for i in json.loads(before.read_text())["items"]} == {
        "tiers": "passed",
        "warm": "failed",
        "top5": "failed",
        "broken": "failed",
    }

    # The skill changed: warm is answered right now, tiers breaks, the model fails on broken.
    second = {
        **RIGHT,
        "tiers": WRONG["warm"],
        "top5": WRONG["top5"],
        "broken": http_error(500, "overloaded", should_retry=False),
    }
    with ModelServer(Analyst(by_question(second))) as server:
        proc = nexus_lab("eval", str(suite), "--baseline", str(before), "--min-score", "0.25", server=server)
    assert proc.returncode == 0, proc.stderr  # 1 of 4 = 0.25, not below
    lines = proc.stdout.splitlines()
    changed = lines[lines.index(f"changed since {before}:") + 1 :]
    assert [line.split() for line in changed] == [
        ["tiers", "passed", "->", "failed"],
        ["warm", "failed", "->", "passed"],
        ["broken", "failed", "->", "error"],
    ]
    # the table: each question's status, tokens and seconds, the SQL that ran, why it did not pass; totals
    row = next(line for line in lines if line.split()[:2] == ["FAILED", "tiers"])
    assert row.split()[2] == "240" and float(row.split()[3]) >= 0
    assert f"sql: {WRONG['warm']}" in proc.stdout
    assert "why: the result has" not in proc.stdout and "why: r1 has 1 row, the gold result 3 rows" in proc.stdout
    assert next(line for line in lines if line.startswith("passed 1 of 4 (25%), failed 2, errors 1"))


def test_the_bundled_suite_runs_without_a_suite_argument(nexus_lab, db):
    suite = load_suite()
    gold = {q.question: q.sql for q in suite.questions}
    with ModelServer(Analyst(gold)) as server:
        proc = nexus_lab("eval", "--json", "--model", "local-model", server=server, org=None)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["suite"] == "demo (bundled)" and out["model"] == "local-model"
    assert out["total"] == len(suite.questions) >= 30
    assert (out["passed"], out["failed"], out["errors"]) == (len(suite.questions), 0, 0), [
        (i["name"], i["reason"]) for i in out["items"] if not i["passed"]
    ]
    assert {r["model"] for r in server.requests} == {"local-model"}


# -- bad input: exit 2, and no model request -------------------------------------------------


@pytest.mark.parametrize(
    ("content", "suffix", "said"),
    [
        ("questions: [{question: 'a', sql: 'SELECT 1'\n", ".yaml", "is not valid YAML"),
        ("- question: How many leads?\n  name: no-sql\n", ".yaml", "Question 1 ('no-sql') of"),
        ("", ".yaml", "is empty"),
        ("questions: []\n", ".yaml", "has no questions"),
        ("title: leads\n", ".yaml", "without `questions:`"),
        ('[{"question": "a", "sql": "SELECT 1"},]', ".json", "is not valid JSON"),
        (
            "- {name: a, question: x, sql: SELECT 1}\n- {name: a, question: y, sql: SELECT 2}\n",
            ".yaml",
            "both named 'a'",
        ),
        (
            "- {name: fine, question: x, sql: SELECT 1}\n- {name: typo, question: y, sql: SELEC 2}\n",
            ".yaml",
            "'typo': The query starts with 'SELEC'",
        ),
        ("- {name: sneaky, question: x, sql: DELETE FROM lead_scores}\n", ".yaml", "'sneaky': Only read queries"),
        ("- {name: nope, question: x, sql: SELECT nope FROM lead_scores}\n", ".yaml", "'nope': "),
    ],
)
def test_a_malformed_suite_exits_2_naming_the_problem_before_any_model_request(
    nexus_lab, tmp_path, content, suffix, said
):
    suite = tmp_path / f"suite{suffix}"
    suite.write_text(content)
    with ModelServer(Analyst({})) as server:
        proc = nexus_lab("eval", str(suite), server=server)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert said in proc.stderr and str(suite) in proc.stderr and "Traceback" not in proc.stderr
    assert server.requests == []


def test_a_missing_suite_or_bad_baseline_exits_2_and_json_says_why(nexus_lab, tmp_path):
    suite = write_suite(tmp_path / "suite.yaml", ("hot",))
    not_a_run = tmp_path / "notes.json"
    not_a_run.write_text('{"items": [{"name": "hot"}]}')
    with ModelServer(Analyst({})) as server:
        missing = nexus_lab("eval", str(tmp_path / "nope.yaml"), server=server)
        baseline = nexus_lab("eval", str(suite), "--json", "--baseline", str(not_a_run), server=server)
        score = nexus_lab("eval", str(suite), "--min-score", "80", server=server)
        nowhere = nexus_lab("eval", str(suite), "--out", str(tmp_path / "no" / "run.json"), server=server)
    assert missing.returncode == 2 and "nope.yaml does not exist" in missing.stderr
    assert baseline.returncode == 2 and "is not a saved eval run" in json.loads(baseline.stdout)["error"]
    assert score.returncode == 2 and "expected a number from 0 to 1" in score.stderr
    assert nowhere.returncode == 2 and "its folder does not exist" in nowhere.stderr
    assert server.requests == []


def test_without_a_model_eval_says_what_to_set_after_checking_the_suite(nexus_lab, tmp_path):
    suite = write_suite(tmp_path / "suite.yaml", ("hot",))
    proc = nexus_lab("eval", str(suite))
    assert proc.returncode == 1 and "OPENAI_API_KEY" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


# -- faults during a run -----------------------------------------------------------------------


def test_the_model_server_dying_mid_run_makes_the_rest_errors_and_the_run_goes_on(db, tmp_path):
    names = ("tiers", "hot", "warm", "top5")
    suite = write_suite(tmp_path / "suite.yaml", names)
    dying, dead = threading.Event(), threading.Event()

    def die(request):
        dying.set()  # the server goes down while this request waits for its answer
        dead.wait(60)
        return text(DONE)

    answers = {"tiers": RIGHT["tiers"], "hot": die, "warm": RIGHT["warm"], "top5": RIGHT["top5"]}
    server = ModelServer(Analyst(by_question(answers)))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nexusleads_lab.cli", "eval", str(suite), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=environment(db, server),
        )
        assert dying.wait(120), "the second question never reached the model"
        server.close()
        dead.set()
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        dead.set()
        server.close()
    assert proc.returncode == 0, stderr
    out = json.loads(stdout)
    assert {i["name"]: i["status"] for i in out["items"]} == {
        "tiers": "passed",
        "hot": "error",
        "warm": "error",
        "top5": "error",
    }
    assert (out["passed"], out["failed"], out["errors"], out["complete"]) == (1, 0, 3, True)
    assert all("model service" in i["reason"] for i in out["items"][1:])


def test_ctrl_c_writes_the_partial_result_and_exits_130(db, tmp_path):
    names = ("tiers", "hot", "warm")
    suite = write_suite(tmp_path / "suite.yaml", names)
    out = tmp_path / "partial.json"
    waiting, release = threading.Event(), threading.Event()

    def hang(request):
        waiting.set()
        release.wait(60)
        return tool_calls([("psql", {"sql": RIGHT["hot"]})])

    with ModelServer(Analyst(by_question({"tiers": RIGHT["tiers"], "hot": hang, "warm": RIGHT["warm"]}))) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nexusleads_lab.cli", "eval", str(suite), "--json", "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=environment(db, server),
        )
        try:
            assert waiting.wait(120), "the second question never reached the model"
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
        asked = [last_user_message(r) for r in server.requests]
    assert proc.returncode == 130, stderr
    partial = json.loads(stdout)
    assert json.loads(out.read_text()) == partial
    assert [(i["name"], i["status"]) for i in partial["items"]] == [("tiers", "passed")]
    assert (partial["total"], partial["passed"], partial["complete"]) == (3, 1, False)
    assert SUITE["warm"][0] not in asked, "nothing is asked after Ctrl-C"


# -- in a notebook ---------------------------------------------------------------------------


def test_nexus_eval_returns_a_dataframe_and_leaves_the_session_alone(tmp_path, scripted_assistant):
    from nexusleads_lab.session import NexusError, NexusSession

    suite = write_suite(tmp_path / "suite.yaml", ("tiers", "warm", "broken"))
    answers = {"tiers": RIGHT["tiers"], "warm": WRONG["warm"], "broken": http_error(400, "no tools here")}
    assistant = scripted_assistant(Analyst(by_question(answers)), org=ORG, user="eval-notebook", persist=False)
    session = NexusSession(assistant=assistant)
    frame = session.eval(str(suite), show=False)
    with pytest.raises(NexusError, match="has no `question`"):
        session.eval(str(write_bad(tmp_path)), show=False)
    requests = len(assistant.server.requests)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["name", "question", "status", "passed", "reason", "sql", "tokens", "seconds"]
    assert list(frame["status"]) == ["passed", "failed", "error"]
    assert list(frame["passed"]) == [True, False, False]
    assert frame.loc[0, "sql"] == [RIGHT["tiers"]]
    assert (frame.attrs["total"], frame.attrs["passed"], frame.attrs["failed"], frame.attrs["errors"]) == (3, 1, 1, 1)
    assert requests == 2 + 2 + 1, "the bad suite asked nothing"
    assert session.frames == {} and assistant.thread.id is None and assistant.thread.messages == []


def write_bad(tmp_path: Path) -> Path:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {name: q, sql: SELECT 1}\n")
    return bad


# -- the bundled suite ------------------------------------------------------------------------


def test_every_gold_query_of_the_bundled_suite_returns_rows_and_the_same_rows_again(db):
    from pglast import ast

    from nexusleads_lab.db.sqltree import function_name, parse, walk

    suite = load_suite()
    assert len(suite.questions) >= 30
    engine = db.engine_for(None)
    for q in suite.questions:
        stmt = parse(q.sql, noun="gold SQL", empty="empty")[0].stmt
        calls = {function_name(n)[-1] for n in walk(stmt) if isinstance(n, ast.FuncCall)}
        clock = [n for n in walk(stmt) if isinstance(n, ast.SQLValueFunction)]  # current_date, localtimestamp ...
        assert not calls & {"now", "random", "clock_timestamp", "statement_timestamp"} and not clock, q.name
        first = engine.read(q.sql)
        assert first.row_count > 0 and not first.truncated, q.name
        gold = Gold(first.df, ordered=gold_is_ordered(q.sql))
        assert gold.compare(engine.read(q.sql).df).ok, f"{q.name} is not deterministic"
    sql = " ".join(q.sql.lower() for q in suite.questions)
    for shape in (
        "group by",
        "order by",
        "limit",
        "ilike",
        "any (topics)",
        "repository_contributors",
        "outreach_events",
        "o.slug =",
        "date_trunc",
        "filter (where",
    ):
        assert shape in sql, f"no question of the bundled suite uses {shape}"


# -- scoring: what a naive comparison gets wrong ------------------------------------------------


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_gold_columns_are_found_under_any_name_in_any_order_with_extra_columns():
    gold = Gold(frame(tier=["hot", "warm"], leads=[3, 5]), ordered=False)
    assert gold.compare(frame(n=[5, 3], extra=["x", "y"], label=["warm", "hot"])).ok
    assert not gold.compare(frame(label=["warm", "hot"])).ok, "a gold column is missing"


def test_each_gold_column_needs_its_own_answer_column():
    gold = Gold(frame(a=[1, 2], b=[1, 2]), ordered=False)
    assert not gold.compare(frame(x=[1, 2], y=["p", "q"])).ok
    assert gold.compare(frame(x=[1, 2], y=[1, 2])).ok


def test_columns_must_hold_the_gold_values_together_in_rows_and_the_first_fit_is_not_enough():
    gold = Gold(frame(n=[1, 2], label=["a", "b"]), ordered=False)
    swapped = gold.compare(frame(n=[1, 2], label=["b", "a"]))
    assert not swapped.ok and "not in the same rows" in swapped.reason
    gold = Gold(frame(a=[1, 2, 3], b=[10, 20, 30]), ordered=False)
    # x holds a's values too but misaligned; only y fits with b
    assert gold.compare(frame(x=[3, 2, 1], y=[1, 2, 3], z=[10, 20, 30])).ok


def test_rows_compare_as_a_multiset():
    gold = Gold(frame(n=[1, 1, 2]), ordered=False)
    assert gold.compare(frame(m=[2, 1, 1])).ok
    assert not gold.compare(frame(m=[1, 2, 2])).ok, "the same set, other counts"
    assert not gold.compare(frame(m=[1, 2])).ok


def test_order_counts_only_when_the_gold_sql_has_a_top_level_order_by():
    assert gold_is_ordered("SELECT tier FROM lead_scores ORDER BY 1")
    assert gold_is_ordered("SELECT 1 AS n UNION SELECT 2 ORDER BY n DESC;")
    assert gold_is_ordered("WITH t AS (SELECT 1 AS n) SELECT n FROM t ORDER BY n")
    for unordered in (
        "SELECT * FROM (SELECT id FROM lead_scores ORDER BY id LIMIT 5) AS t",
        "WITH t AS (SELECT id FROM lead_scores ORDER BY id) SELECT * FROM t",
        "SELECT string_agg(tier, ',' ORDER BY tier) FROM lead_scores",
        "SELECT id, row_number() OVER (ORDER BY score) FROM lead_scores",
        "SELECT 'ORDER BY' AS words -- ORDER BY id",
    ):
        assert not gold_is_ordered(unordered), unordered
    ordered = Gold(frame(n=[3, 2, 1]), ordered=True)
    assert ordered.compare(frame(m=[3, 2, 1])).ok
    backwards = ordered.compare(frame(m=[1, 2, 3]))
    assert not backwards.ok and "another order" in backwards.reason
    assert Gold(frame(n=[3, 2, 1]), ordered=False).compare(frame(m=[1, 2, 3])).ok


def test_numbers_equal_within_a_millionth_integers_exactly_whatever_their_type():
    third = Gold(frame(x=[1 / 3, 12.5, 3.0]), ordered=False)
    assert third.compare(frame(y=[Decimal("0.3333333333"), Decimal("12.50"), 3])).ok
    assert third.compare(frame(y=pd.Series([np.float32(1 / 3), np.int64(3), 12.5], dtype=object))).ok
    assert not third.compare(frame(y=[0.3334, 12.5, 3])).ok
    assert same(cell(0.1 + 0.2), cell(Decimal("0.3")))
    assert not same(cell(100.0), cell(100.001)), "1e-5 apart"
    assert not same(cell(1_000_000), cell(1_000_001)), "within 1e-6 relative, but counts are exact"
    assert same(cell(Decimal("1000000")), cell(1_000_000.0)) and same(cell(np.int32(7)), cell(Decimal(7)))
    assert not same(cell(True), cell(1)) and not same(cell("1"), cell(1))


def test_float_noise_does_not_pair_rows_wrongly():
    noisy = 0.1 + 0.2  # 0.30000000000000004
    gold = Gold(frame(pct=[noisy, 0.3], label=["x", "y"]), ordered=False)
    assert gold.compare(frame(pct=[0.3, noisy], label=["x", "y"])).ok
    assert gold.compare(pd.DataFrame({"pct": [0.3, noisy], "label": ["y", "x"]})).ok


def test_nulls_times_and_text_compare_by_meaning():
    assert same(cell(None), cell(float("nan"))) and same(cell(pd.NA), cell(Decimal("NaN")))
    assert same(cell(pd.NaT), cell(None)) and same(cell(np.datetime64("NaT")), cell(None))
    assert not same(cell(None), cell(0)) and not same(cell(None), cell(""))
    utc = dt.datetime(2026, 10, 5, 8, 0, tzinfo=dt.UTC)
    assert same(cell(utc), cell(utc.astimezone(dt.timezone(dt.timedelta(hours=2)))))
    assert same(cell(pd.Timestamp("2026-10-05 08:00", tz="UTC")), cell(np.datetime64("2026-10-05T08:00")))
    assert same(cell(dt.date(2026, 10, 5)), cell(pd.Timestamp("2026-10-05")))
    assert not same(cell(dt.date(2026, 10, 5)), cell(dt.date(2026, 10, 6)))
    assert not same(cell("hot"), cell("Hot")) and not same(cell("2026-10-05"), cell(dt.date(2026, 10, 5)))
    assert same(cell(["a", 1]), cell(("a", Decimal(1)))) and same(cell({"b": 1, "a": 2}), cell({"a": 2, "b": 1}))
    gold = Gold(frame(day=[dt.date(2026, 10, 5), None], n=[1, 2]), ordered=False)
    assert gold.compare(frame(n=[2, 1], day=[float("nan"), pd.Timestamp("2026-10-05", tz="UTC")])).ok
