"""Plain text for every view that prints: the terminal (``nexus-lab ask``, ``sql``, ``conversations
--show``, ``eval``'s report), a notebook's ``text/plain`` and ``show_dashboard``'s text.

One value formatting, as psql prints a value: a numeric exactly as PostgreSQL wrote it (from
``QueryResult.exact_values``), an interval as ``3 days 04:00:00``, a NULL as ``NULL``, a cut value
ending in "…", and one sentence when rows are left out (``words.fmt_rows`` and ``words.CAPPED``, the truncation
marker every view uses). Every text from the model or the data is made visible first
(``safetext``), so a terminal shows an escape sequence instead of obeying it. The MCP ``psql``
tool's text is its structured result as JSON, as MCP asks of a tool with structured content
(``mcp/results.py``), with the same exact numerics (``QueryResult.to_json``).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..safetext import safe_response, visible
from ..words import STEP_TOOLS, fmt_ms, noun, outcome_text, plural, step_meta
from ..words import fmt_rows as rows_text

if TYPE_CHECKING:
    from ..agent.events import Event
    from ..agent.responses import ResolvedResponse
    from ..agent.transcript import Item as TranscriptItem
    from ..db.engine import QueryResult
    from ..eval.report import Item, Report

NULL = "NULL"
CELL_CHARS = 60  # a table cell, at most: the rest is "…"
TABLE_ROWS = 20  # rows of an answer's table in plain text


def shorten(text: str, limit: int = 120) -> str:
    """``db.errors.shorten``, imported when used: loading the extension imports no database layer."""
    from ..db.errors import shorten as cut

    return cut(text, limit)


def value_text(value: Any) -> str:
    """One value as plain text (see the module's docstring)."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return NULL
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return NULL  # pandas' missing float; a numeric NaN comes as the text "NaN" (exact_values)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, decimal.Decimal)):
        return str(value) if not isinstance(value, float) else repr(value)
    if isinstance(value, (pd.Timedelta, _dt.timedelta)):
        return interval_text(pd.Timedelta(value))
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return visible(json.dumps(value, ensure_ascii=False, default=str))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    return visible(str(value))


def interval_text(delta) -> str:
    """An interval as PostgreSQL prints one: ``3 days 04:00:00``, ``-1 days +02:30:00``, ``00:00:01.5``."""
    total_us = int(delta / _dt.timedelta(microseconds=1))
    days, rest_us = divmod(abs(total_us), 86_400_000_000)
    sign = "-" if total_us < 0 else ""
    seconds, micros = divmod(rest_us, 1_000_000)
    clock = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if micros:
        clock += f".{micros:06d}".rstrip("0")
    if not days:
        return sign + clock
    day_part = f"{sign}{days} {noun(days, 'day')}"
    return day_part if not rest_us else f"{day_part} {sign}{clock}"


def cell_text(value: Any, limit: int = CELL_CHARS) -> str:
    """A value in a table's cell: on one line, at most ``limit`` characters."""
    text = value_text(value).replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table_text(columns: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """Aligned columns, numbers to the right, as psql lays out a result."""
    head = [visible(str(c)) for c in columns]
    cells = [[cell_text(v) for v in row] for row in rows]
    numeric = [bool(cells) and all(_numberlike(r[j]) for r in cells) for j in range(len(head))]
    widths = [max([len(h), *(len(r[j]) for r in cells)]) for j, h in enumerate(head)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(head), *(line(r) for r in cells)])


def _numberlike(text: str) -> bool:
    if text == NULL:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- a query result ------------------------------------------------------------------------------


def result_rows(result: QueryResult, limit: int | None = None) -> list[list[Any]]:
    """The first ``limit`` rows of a result, numerics exact (``QueryResult.exact_values``)."""
    head = result.df if limit is None else result.df.head(limit)
    rows = [list(r) for r in head.itertuples(index=False, name=None)]
    for position in result.numeric_text:
        for row, value in zip(rows, result.exact_values(position, len(rows))):
            row[position] = value
    return rows


def result_text(result: QueryResult, *, max_rows: int = 50, scope: str | None = None) -> str:
    """A read's result as ``nexus-lab sql`` prints it and ``%nexus sql`` keeps as its text."""
    rows = result_rows(result, max_rows)
    return f"{table_text(list(result.df.columns), rows)}\n({result_caption(result, shown=len(rows), scope=scope)})"


def result_caption(result: QueryResult, *, shown: int | None = None, scope: str | None = None) -> str:
    """``12 rows (capped), showing 10 · 4.2 ms · Pico Labs``, and why it stops where it does."""
    count = rows_text(result.row_count, result.truncated)
    if shown is not None and shown < result.row_count:
        count += f", showing {shown:,}"
    bits = [count, fmt_ms(result.elapsed_ms), scope or ""]
    caption = " · ".join(b for b in bits if b)
    note = result.truncation_note if result.truncated else None
    return f"{caption}: {note}" if note else caption


# -- an answer -------------------------------------------------------------------------------------


def response_text(response: ResolvedResponse | Mapping[str, Any] | None) -> str:
    """An answer as plain text: the terminal's ``nexus-lab ask`` and a notebook's ``text/plain``
    (whose outputs, joined by lines, read exactly this)."""
    data = safe_response(response)
    if not data:
        return ""
    kind = data.get("type")
    if kind == "message":
        return str(data.get("text") or "")
    if kind == "confirm":
        return confirm_text(data)
    if kind == "dashboard":
        texts = [title_text(data), *(section_text(s) for s in data.get("sections") or [])]
        return "\n".join(t for t in texts if t)
    return str(data)


def title_text(dashboard: Mapping[str, Any]) -> str:
    return f"== {dashboard.get('title') or 'Dashboard'} =="


def section_text(section: Mapping[str, Any]) -> str:
    """One dashboard section (its texts already made safe by ``safe_response``)."""
    kind = section.get("type")
    items = section.get("items") or []
    label = section.get("label") or section.get("title") or ""
    if kind == "widgets":
        return "  ".join(f"[{i.get('title')}: {value_text(i.get('value'))}]" for i in items)
    if kind in ("bars", "pills"):
        return "\n".join([label, *_bar_lines(items)] if label else _bar_lines(items))
    if kind == "line":
        return f"{label or 'Trend'}: line chart, {plural(len(section.get('points') or []), 'point')}"
    if kind == "table":
        columns = section.get("columns") or []
        rows = section.get("rows") or []
        lines = [label] if label else []
        lines.append(table_text(columns, ([r.get(c) for c in columns] for r in rows[:TABLE_ROWS])))
        total = section.get("total_rows")
        total = len(rows) if total is None else total
        if total > min(len(rows), TABLE_ROWS):
            lines.append(f"({rows_text(total)}, showing {min(len(rows), TABLE_ROWS):,})")
        return "\n".join(lines)
    return ""


def _bar_lines(items: Sequence[Mapping[str, Any]]) -> list[str]:
    def amount(item: Mapping[str, Any]) -> Any:
        return item.get("value", item.get("count"))

    numbers = [float(v) for v in map(amount, items) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    top = max(numbers, default=0)
    lines = []
    for item in items:
        value = amount(item)
        size = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
        width = round(30 * size / top) if top > 0 and size > 0 else 0  # no bar for zero or less
        name = str(item.get("name", item.get("label", "")))
        lines.append(f"  {name[:24]:<24} {'#' * width:<30} {value_text(value)}")
    return lines


def confirm_text(response: Mapping[str, Any]) -> str:
    """A proposed write: its SQL, the rows it would change, how to confirm (texts already safe)."""
    lines = [f"CONFIRM: {response.get('title', '')}", str(response.get("summary", "")), ""]
    lines.append(str(response.get("sql", "")))
    preview = response.get("preview") or []
    for i, step in enumerate(preview):
        head = f"statement {i + 1}: " if len(preview) > 1 else ""
        would = plural(step.get("rows") or 0, "row")
        lines.append(f"({head}{step.get('action')} {step.get('table')}: would change {would})")
        for row in step.get("sample") or []:
            key = ", ".join(f"{k}={value_text(v)}" for k, v in (row.get("key") or {}).items())
            before, after = row.get("before"), row.get("after")
            if before is not None and after is not None:
                change = "; ".join(f"{c}: {value_text(before.get(c))} -> {value_text(after.get(c))}" for c in after)
            elif after is not None:
                change = "new: " + ", ".join(f"{c}={value_text(v)}" for c, v in after.items())
            else:
                change = "deleted"
            lines.append("  " + shorten(f"{key + ': ' if key else ''}{change}", 200))
    if response.get("stale") or response.get("dry_run_error"):
        lines.append(f"(confirm is unavailable: {response.get('stale') or response.get('dry_run_error')})")
    elif response.get("id"):
        lines.append(f"confirm with: nexus-lab confirm {response.get('id')}")
    return "\n".join(lines)


def summary_text(response: ResolvedResponse | Mapping[str, Any] | None) -> str:
    """An answer in a line or a few: a message's text, a dashboard's parts, a proposal's SQL."""
    data = safe_response(response) or {}
    kind = data.get("type")
    if kind == "message":
        return str(data.get("text", ""))
    if kind == "confirm":
        rows = data.get("dry_run_rows")
        counted = f" (would change {plural(rows, 'row')})" if rows is not None else ""
        return f"proposed “{data.get('title', '')}”{counted}: {' '.join(str(data.get('sql', '')).split())}"
    parts = []
    for section in data.get("sections", []):
        kind = section.get("type")
        if kind == "widgets":
            parts.append("; ".join(f"{i.get('title')}: {value_text(i.get('value'))}" for i in section.get("items", [])))
        elif kind in ("bars", "pills", "line"):
            n = len(section.get("items") or section.get("points") or [])
            parts.append(
                f"{section.get('label') or kind} ({plural(n, {'bars': 'bar', 'pills': 'pill'}.get(kind, 'point'))})"
            )
        elif kind == "table":
            n = section.get("total_rows", len(section.get("rows") or []))
            parts.append(f"{section.get('label') or 'table'} ({rows_text(n)})")
    return f"dashboard “{data.get('title', 'Dashboard')}”: " + " · ".join(p for p in parts if p)


# -- steps, events, conversations -----------------------------------------------------------------


def steps_text(steps: Sequence[Mapping[str, Any]], cost: str) -> str:
    """A finished turn's steps line and each step (a cell's ``text/plain`` under its answer)."""
    lines = [f"{cost}:" if steps else cost]
    for s in steps:
        target = shorten(visible(str(s.get("command") or s.get("path") or "")), 100)
        tool = s.get("tool")
        lines.append(f"  {STEP_TOOLS.get(tool, tool) if isinstance(tool, str) else tool}: {target}  ({step_meta(s)})")
    return "\n".join(lines)


def event_text(event: Event) -> str | None:
    """A turn's progress as the terminal shows it on stderr; None for what it does not show."""
    from ..agent.events import AgentAction, ErrorEvent

    match event:
        case AgentAction():
            what = visible(" ".join(str(event.command or event.path or event.tool).split()))
            if event.status == "started":
                return f"  > {event.tool}: {shorten(what, 160)}"
            if event.status == "completed":
                fields = ("rows", "truncated", "elapsed_ms", "result_id")
                meta = step_meta({name: getattr(event, name, None) for name in fields})
                return f"    done: {meta}"
            return f"    failed: {visible(str(event.error))}"
        case ErrorEvent():
            return f"nexus-lab: {visible(str(event.message))}"
    return None


def transcript_text(items: Sequence[TranscriptItem], user: str) -> str:
    """A stored conversation (``Assistant.transcript``): who said what, each tool step with its
    SQL and rows, each answer summarised."""
    from ..agent.transcript import AnswerItem, OutcomeItem, QuestionItem

    lines: list[str] = []
    for item in items:
        when = str(item.at or "")[:16].replace("T", " ")
        if isinstance(item, QuestionItem):
            lines.append(f"[{when}] {visible(user)}: {visible(item.text)}")
        elif isinstance(item, OutcomeItem):
            lines.append(f"[{when}] ({_outcome(item.proposal_id, item.status, item.rows_affected, item.error)})")
        elif isinstance(item, AnswerItem):
            for step in item.steps:
                what = step.command or step.path or ""
                lines.append(f"    step {step.tool}: {visible(' '.join(str(what).split()))}")
                if step.status == "failed":
                    lines.append(f"      failed: {shorten(visible(str(step.error or '')), 200)}")
                elif step.rows is not None:
                    rid = f" as {step.result_id}" if step.result_id else ""
                    lines.append(f"      {rows_text(step.rows, step.truncated)}{rid}")
            if item.error:
                lines.append(
                    f"[{when}] assistant: ({'stopped' if item.cancelled else 'failed'}: {visible(item.error)})"
                )
            else:
                response = item.response_dict()
                said = summary_text(response) if response else visible(item.text)
                lines.append(f"[{when}] assistant: {said}")
            if item.outcome:
                o = item.outcome
                lines.append(f"    ({_outcome(o.get('id'), o.get('status'), o.get('rows_affected'), o.get('error'))})")
    return "\n".join(lines)


def _outcome(proposal_id, status, rows, error) -> str:
    said = outcome_text({"status": status, "rows_affected": rows, "error": error})
    return f"{visible(str(proposal_id or 'the proposal'))}: {visible(said)}"


def listing_text(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A listing (conversations, skills) under its title."""
    return f"{title}\n{table_text(columns, rows)}"


# -- an evaluation run ------------------------------------------------------------------------------

_EVAL_MARK = {"passed": "passed", "failed": "FAILED", "error": "ERROR"}
_EVAL_SQL_CHARS = 240


def _eval_item(item: Item, width: int) -> list[str]:
    lines = [f"{_EVAL_MARK[item.status]:<6}  {visible(item.name):<{width}}  {item.tokens:>8,}  {item.seconds:>7.2f}"]
    pad = " " * 8
    lines.append(f"{pad}{shorten(visible(item.question), _EVAL_SQL_CHARS)}")
    for sql in item.sql or ["(no query ran)"]:
        lines.append(f"{pad}sql: {shorten(visible(' '.join(sql.split())), _EVAL_SQL_CHARS)}")
    if item.status != "passed":
        lines.append(f"{pad}why: {shorten(visible(' '.join(item.reason.split())), 400)}")
    return lines


def eval_report_text(report: Report) -> str:
    """An evaluation run (``nexus-lab eval``): one block per question (status, tokens, seconds, the SQL
    that ran, why it did not pass), the totals, and what changed since a saved run."""
    width = max([len(visible(i.name)) for i in report.items] + [8])
    head = f"{'status':<6}  {'name':<{width}}  {'tokens':>8}  {'seconds':>7}"
    lines = [f"suite {visible(report.suite)} · model {visible(report.model)}", "", head]
    for item in report.items:
        lines.extend(_eval_item(item, width))
    lines.append("")
    lines.append(_eval_totals(report))
    if report.changes is not None:
        lines.append(_eval_changes(report))
    return "\n".join(lines)


def _eval_totals(report: Report) -> str:
    tokens = sum(i.tokens for i in report.items)
    seconds = sum(i.seconds for i in report.items)
    done = len(report.items)
    line = (
        f"passed {report.count('passed')} of {report.total} ({report.score:.0%}), failed {report.count('failed')}, "
        f"errors {report.count('error')} · {plural(tokens, 'token')} · {seconds:.1f} s"
    )
    if report.interrupted or done < report.total:
        line += f"\ninterrupted after {plural(done, 'question')} of {report.total}: the rest were not asked"
    return line


def _eval_changes(report: Report) -> str:
    changes = report.changes or []
    where = visible(report.baseline or "the baseline")
    if not changes:
        return f"no question changed status since {where}"
    lines = [f"changed since {where}:"]
    width = max(len(visible(c.name)) for c in changes)
    for c in changes:
        before = c.before or "(new)"
        after = c.after or "(not in this suite)"
        lines.append(f"  {visible(c.name):<{width}}  {before} -> {after}")
    return "\n".join(lines)
