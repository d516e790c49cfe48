"""Running a suite: every gold SQL first (a broken suite stops before any model request), then
each question through the assistant, in a fresh conversation, scored by execution accuracy.

The questions go through ``Assistant.ask`` as ``nexus-lab ask`` sends them, so the prompt, the
skills, the tools and the read path are the ones a person gets. Nothing is confirmed: a proposed
write just stays pending. The conversations are not stored (an eval is not the person's history).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..db.errors import QueryError
from ..db.schema import ALL_ORGS
from ..words import noun, plural
from .report import Item, Report, Status
from .score import Gold, best_match, gold_is_ordered
from .suite import Question, Suite, SuiteError


@dataclass(frozen=True)
class Prepared:
    question: Question
    gold: Gold


def prepare(suite: Suite, engine) -> list[Prepared]:
    """Run every gold SQL through ``engine``'s read path; SuiteError naming each question whose
    gold SQL fails or is cut by the row cap (a gold result must be whole to compare against)."""
    prepared, problems = [], []
    for q in suite.questions:
        try:
            result = engine.read(q.sql)
            ordered = gold_is_ordered(q.sql)
        except QueryError as exc:
            if _unavailable(exc):
                raise  # the database, not the suite: no question is to blame
            problems.append(f"{q.name!r}: {exc.paragraph()}")
            continue
        if result.truncated:
            problems.append(f"{q.name!r}: its result is cut ({result.truncation_note}); aggregate or add a LIMIT")
            continue
        prepared.append(Prepared(q, Gold(result.df, ordered=ordered)))
    if problems:
        verb = noun(len(problems), "does", "do")
        raise SuiteError(
            f"The gold SQL of {plural(len(problems), 'question')} in {suite.source} {verb} not run as it should, so "
            "nothing was asked; fix it (`nexus-lab sql` runs a query through the same read path):\n  "
            + "\n  ".join(problems)
        )
    return prepared


def _unavailable(exc: QueryError) -> bool:
    """The database could not be reached or ran out of connections (SQLSTATE classes 08, 53, 57P)."""
    state = exc.sqlstate or ""
    return state.startswith(("08", "53", "57P")) or exc.message.startswith("Cannot connect")


def eval_assistant(base=None, *, model: str | None = None):
    """The assistant questions are asked with: ``base``'s model, client, database, scope, user and
    skills (a session's own assistant keeps its conversation), or the environment's, as
    ``nexus-lab ask`` builds it; conversations are not stored."""
    from ..agent.assistant import Assistant

    if base is None:
        return Assistant(model=model, persist=False)
    return Assistant(
        model=model or base.model,
        database=base.database,
        client=base.client(),
        org=base.org or ALL_ORGS,
        user=base.user,
        skills=base.skills,
        persist=False,
    )


def score(prepared: Prepared, result, seconds: float) -> Item:
    """One question's item from its turn."""
    q = prepared.question
    sql = [s.command for s in result.steps if s.tool == "psql" and s.command]
    usage = result.usage or {}
    tokens = int(usage.get("total_tokens") or usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0))
    status: Status
    if result.error is not None:
        status, reason = "error", result.error
    else:
        match = best_match(prepared.gold, result.frames)
        status, reason = ("passed" if match.ok else "failed"), match.reason
        if not match.ok and result.proposal is not None:
            reason += " (the answer proposed a change, which was not confirmed)"
    return Item(q.name, q.question, status, reason, sql, tokens, round(seconds, 2))


def run(
    suite: Suite,
    prepared: list[Prepared],
    assistant,
    *,
    on_item: Callable[[Item], None] | None = None,
    on_start: Callable[[Question], None] | None = None,
    origin: str = "code",
) -> Report:
    """Ask every question; Ctrl-C (KeyboardInterrupt) ends the run early with what is done
    (``Report.interrupted``), so a partial result is never lost."""
    report = Report(model=assistant.model, suite=suite.source, total=len(suite.questions))
    try:
        for p in prepared:
            if on_start is not None:
                on_start(p.question)
            assistant.new_thread()
            started = time.perf_counter()
            result = assistant.ask(p.question.question, origin=origin)
            if result.cancelled:  # ask turns Ctrl-C into a cancelled turn
                report.interrupted = True
                break
            item = score(p, result, time.perf_counter() - started)
            report.items.append(item)
            if on_item is not None:
                on_item(item)
    except KeyboardInterrupt:
        report.interrupted = True
    return report


def evaluate(suite: Suite, assistant, *, on_item: Callable[[Item], None] | None = None, origin: str = "code") -> Report:
    """Check the suite's gold SQL, then run it (SuiteError before any question is asked)."""
    if not suite.questions:
        raise SuiteError(f"The suite {suite.source} has no questions.")
    prepared = prepare(suite, assistant.engine)
    assistant.client()  # no model configured: say so once, before the first question
    return run(suite, prepared, assistant, on_item=on_item, origin=origin)
