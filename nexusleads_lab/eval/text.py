"""An evaluation run for the terminal: one block per question (status, tokens, seconds, the SQL
that ran, why it did not pass), the totals, and what changed since a saved run. Every text from
the model or the data is shown with its control characters escaped."""

from __future__ import annotations

from ..db.errors import shorten
from ..safetext import visible
from ..words import plural
from .report import Item, Report

_MARK = {"passed": "passed", "failed": "FAILED", "error": "ERROR"}
SQL_CHARS = 240


def format_item(item: Item, width: int) -> list[str]:
    lines = [f"{_MARK[item.status]:<6}  {visible(item.name):<{width}}  {item.tokens:>8,}  {item.seconds:>7.2f}"]
    pad = " " * 8
    lines.append(f"{pad}{shorten(visible(item.question), SQL_CHARS)}")
    for sql in item.sql or ["(no query ran)"]:
        lines.append(f"{pad}sql: {shorten(visible(' '.join(sql.split())), SQL_CHARS)}")
    if item.status != "passed":
        lines.append(f"{pad}why: {shorten(visible(' '.join(item.reason.split())), 400)}")
    return lines


def format_report(report: Report) -> str:
    width = max([len(visible(i.name)) for i in report.items] + [8])
    head = f"{'status':<6}  {'name':<{width}}  {'tokens':>8}  {'seconds':>7}"
    lines = [f"suite {visible(report.suite)} · model {visible(report.model)}", "", head]
    for item in report.items:
        lines.extend(format_item(item, width))
    lines.append("")
    lines.append(totals(report))
    if report.changes is not None:
        lines.append(format_changes(report))
    return "\n".join(lines)


def totals(report: Report) -> str:
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


def format_changes(report: Report) -> str:
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
