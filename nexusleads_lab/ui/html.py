"""Static HTML for answers: what a cell shows, and what a saved notebook keeps.

Everything interpolated here is escaped: model text, database values, column names, SQL.
Markdown goes through markdown-it with raw HTML disabled, so a bio such as
``<img src=x onerror=alert(1)>`` stays visible text, and an image becomes a link: nothing
in an answer loads from the network until the person clicks. Styles come from ``js/*.css`` and are
inlined, themed with JupyterLab's CSS variables (with fallbacks for static viewers).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache, lru_cache
from typing import Any

from ..words import (  # noqa: F401 - re-exported for the views
    STEP_TOOLS,
    cost_text,
    fmt_ms,
    fmt_rows,
    noun,
    outcome_text,
    plural,
    step_meta,
    steps_label,
)
from .assets import asset_text
from .inline import with_inline_layout
from .palette import PILL_HEX

_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


@cache
def style(*names: str) -> str:
    """A ``<style>`` block with the theme's tokens (``js/theme.css``) and the named CSS files from ``js/``."""
    return "<style>" + "\n".join(asset_text(n) for n in ("theme.css", *names)) + "</style>"


def answer_block(body: str, *, extra_class: str = "") -> str:
    """An answer as saved: its stylesheet, and its layout inlined for viewers that drop it (``inline``)."""
    cls = f"nxl nxl-answer {extra_class}".strip()
    return style("answer.css") + with_inline_layout(f'<div class="{cls}">{body}</div>', "answer.css")


# -- markdown -------------------------------------------------------------------------------


def _image_as_link(renderer, tokens, idx, options, env) -> str:
    """``![alt](url)`` as a link to the image: an ``<img>`` would fetch the URL (and whatever
    data the model put in it) the moment the answer is shown."""
    token = tokens[idx]
    src = token.attrGet("src") or ""
    label = renderer.renderInlineAsText(token.children or [], options, env) or src
    return (
        f'<a class="nxl-md-image" href="{esc(src)}" title="Image: {esc(src)}" target="_blank"'
        f' rel="noopener noreferrer nofollow">{esc(label)}</a>'
    )


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    # "html": False turns raw HTML in the text into escaped text (no <iframe>, srcset or
    # style="url(...)"); links keep markdown-it's own URL validation (no javascript: links).
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("image", _image_as_link)
    return md


def markdown_html(text: str) -> str:
    return _markdown().render(text or "")


# -- formatting -----------------------------------------------------------------------------


def one_line(text: str | None, limit: int = 140) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def cell_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def pill_color(color: str | None) -> str:
    color = (color or "gray").strip().lower()
    if color in PILL_HEX:
        return PILL_HEX[color]
    if _HEX.match(color):
        return color if len(color) == 7 else "#" + "".join(c * 2 for c in color[1:])
    return PILL_HEX["gray"]


# -- the steps summary ----------------------------------------------------------------------


def steps_html(steps: Iterable[Mapping[str, Any]], *, open_: bool = False, cost: str | None = None) -> str:
    """'Ran N steps' (or ``cost``, e.g. "Ran 3 steps · 4.2 s · 2,140 tokens"), expandable to each
    step's SQL (or file), row count and time. No steps: the cost line alone, if given."""
    steps = list(steps)
    if not steps:
        if not cost:
            return ""
        return style("turn.css") + with_inline_layout(
            f'<div class="nxl nxl-turn" data-state="done">'
            f'<div class="nxl-steps nxl-cost"><span class="nxl-steps-label">{esc(cost)}</span></div></div>',
            "turn.css",
        )
    items = []
    for step in steps:
        tool = step.get("tool") or "tool"
        target = step.get("command") or step.get("path") or ""
        body = f'<pre class="nxl-sql">{esc(target)}</pre>' if target else ""
        if step.get("error"):
            body += f'<div class="nxl-step-error">{esc(step["error"])}</div>'
        items.append(
            f'<li class="nxl-step" data-status="{esc(step.get("status") or "completed")}">'
            f'<details{" open" if open_ else ""}><summary><span class="nxl-step-icon"></span>'
            f'<span class="nxl-step-tool">{esc(STEP_TOOLS.get(tool, tool))}</span>'
            f'<span class="nxl-step-cmd">{esc(one_line(target))}</span>'
            f'<span class="nxl-step-meta">{esc(step_meta(step))}</span></summary>{body}</details></li>'
        )
    n = len(steps)
    return style("turn.css") + with_inline_layout(
        f'<div class="nxl nxl-turn" data-state="done">'
        f'<details class="nxl-steps"{" open" if open_ else ""}><summary>'
        f'<span class="nxl-steps-label">{esc(steps_label(n, live=False, cost=cost))}</span></summary>'
        f'<ol class="nxl-steps-list">{"".join(items)}</ol></details></div>',
        "turn.css",
    )


# -- answer pieces --------------------------------------------------------------------------


def message_html(text: str) -> str:
    return f'<div class="nxl-md">{markdown_html(text)}</div>'


def title_html(title: str | None) -> str:
    return f'<div class="nxl-title">{esc(title)}</div>' if title else ""


def widgets_html(section: Mapping[str, Any]) -> str:
    cards = []
    for item in section.get("items", []):
        shown = _value_text(item.get("value"))
        sub = f'<div class="nxl-kpi-sub">{esc(item["subtext"])}</div>' if item.get("subtext") else ""
        cards.append(
            f'<div class="nxl-kpi"><div class="nxl-kpi-title">{esc(item.get("title"))}</div>'
            f'<div class="nxl-kpi-value">{esc(shown)}</div>{sub}</div>'
        )
    return f'<div class="nxl-kpis">{"".join(cards)}</div>'


def _caption(section: Mapping[str, Any], shown: int | None = None, *, open_sql: bool = False) -> str:
    bits = []
    total = section.get("total_rows")
    if shown is not None and total is not None and total > shown:
        bits.append(f"showing {shown:,} of {total:,} rows")
    elif total is not None:
        bits.append(fmt_rows(total))
    source = section.get("source")
    if source:
        bits.append(f"<code>nexus.frames[{esc(repr(source))}]</code>")
    caption = " · ".join(b if b.startswith("<code>") else esc(b) for b in bits)
    if section.get("sql"):
        sql = f'<details{" open" if open_sql else ""}><summary>SQL</summary><pre class="nxl-sql">{esc(section["sql"])}</pre></details>'
        caption = f"{caption} · {sql}" if caption else sql
    return f'<div class="nxl-caption">{caption}</div>' if caption else ""


#: Values that read wrong when broken across lines: dates, times, numbers (as the panel's UNBREAKABLE).
UNBREAKABLE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}(?:[ T][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?|[-+]?[\d,.]+%?|—)$")


def column_formatter(values: Iterable[Any]) -> Callable[[Any], str]:
    """One column's numbers with the same decimals, so they line up: 12.5, 3, 7.25 -> 12.50, 3.00, 7.25."""

    def decimals(value: Any) -> int:
        if not isinstance(value, float) or not math.isfinite(value) or value.is_integer():
            return 0
        shown = cell_text(value)
        return len(shown.split(".")[1]) if "." in shown and "e" not in shown else 0

    digits = max((decimals(v) for v in values), default=0)
    if not digits:
        return cell_text

    def fmt(value: Any) -> str:
        if is_number(value) and not isinstance(value, bool) and math.isfinite(value):
            return f"{value:,.{digits}f}"
        return cell_text(value)

    return fmt


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else cell_text(value)


def table_texts(section: Mapping[str, Any]) -> tuple[list[str], list[bool], list[list[str]]]:
    """A table's columns, which of them are numeric (right-aligned, one column's decimals alike)
    and every cell's text: the one rule the cell's table and the panel's both draw from."""
    columns = list(section.get("columns") or [])
    rows = section.get("rows") or []
    numeric = [bool(rows) and all(is_number(r.get(c)) or r.get(c) is None for r in rows) for c in columns]
    formats = [column_formatter(r.get(c) for r in rows) if n else cell_text for c, n in zip(columns, numeric)]
    return columns, numeric, [[f(r.get(c)) for c, f in zip(columns, formats)] for r in rows]


def _more_text(section: Mapping[str, Any], shown: int) -> str | None:
    total = section.get("total_rows")
    if isinstance(total, int) and not isinstance(total, bool) and total > shown:
        return f"Showing {shown:,} of {plural(total, 'row')}; the full result is a DataFrame in the notebook."
    return None


def with_shown_text(response: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A dashboard with every value's text beside it, worded as the cell words it (``cell_text``,
    ``column_formatter``), so the chat panel and the page draw the same numbers as the cell and
    never format one themselves: items get ``shown``, a table ``shown_rows`` and ``numeric``, a
    section cut short ``more``."""
    if not response or not isinstance(response.get("sections"), list):
        return response
    sections = []
    for section in response["sections"]:
        if not isinstance(section, Mapping):
            sections.append(section)
            continue
        section = dict(section)
        kind = section.get("type")
        if kind in ("widgets", "bars"):
            section["items"] = [{**i, "shown": _value_text(i.get("value"))} for i in section.get("items") or []]
        elif kind == "pills":
            section["items"] = [{**i, "shown": cell_text(i.get("count"))} for i in section.get("items") or []]
        elif kind == "line":
            section["points"] = [{**p, "shown": cell_text(p.get("y"))} for p in section.get("points") or []]
        elif kind == "table":
            _, section["numeric"], section["shown_rows"] = table_texts(section)
        count = len(section.get("rows") or section.get("items") or [])
        if kind in ("bars", "table", "pills") and (more := _more_text(section, count)):
            section["more"] = more
        sections.append(section)
    return {**response, "sections": sections}


def table_html(section: Mapping[str, Any], *, show_sql: bool = False) -> str:
    columns, numeric, texts = table_texts(section)
    rows = section.get("rows") or []
    head = "".join(
        f'<th class="nxl-num">{esc(c)}</th>' if n else f"<th>{esc(c)}</th>" for c, n in zip(columns, numeric)
    )
    body = []
    for row, shown in zip(rows, texts):
        cells = []
        for c, n, text in zip(columns, numeric, shown):
            value = row.get(c)
            cls = "nxl-num" if n else "nxl-nowrap" if UNBREAKABLE.match(text) else ""
            if value is None:
                cls = f"{cls} nxl-null".strip()
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{esc(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    label = f'<div class="nxl-label">{esc(section["title"])}</div>' if section.get("title") else ""
    return (
        f'{label}<div class="nxl-table-wrap"><table class="nxl-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{_caption(section, len(rows), open_sql=show_sql)}"
    )


def pills_html(section: Mapping[str, Any]) -> str:
    pills = []
    for item in section.get("items", []):
        color = pill_color(item.get("color"))
        pills.append(
            f'<span class="nxl-pill" style="color:{color};border-color:{color}55;background:{color}14">'
            f'<span class="nxl-pill-dot"></span><span>{esc(item.get("label"))}</span>'
            f'<span class="nxl-pill-count">{esc(cell_text(item.get("count")))}</span></span>'
        )
    label = f'<div class="nxl-label">{esc(section["label"])}</div>' if section.get("label") else ""
    return f'{label}<div class="nxl-pills">{"".join(pills)}</div>'


def notes_html(notes: Iterable[str]) -> str:
    notes = [n for n in notes if n]
    if not notes:
        return ""
    return '<ul class="nxl-notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"


def error_html(message: str) -> str:
    return f'<div class="nxl-error"><strong>The assistant could not answer.</strong> {esc(message)}</div>'


def stopped_html(message: str) -> str:
    return f'<div class="nxl-stopped">{esc(message)}</div>'


def question_html(text: str) -> str:
    """A stored question, as a resumed conversation shows it."""
    return f'<div class="nxl-question"><span class="nxl-question-mark">You asked</span> {esc(text)}</div>'


def confirm_blocked(proposal: Mapping[str, Any]) -> str:
    """Why Confirm cannot be clicked, or "" when it can: a failed dry run, a stale replayed
    proposal (its preview no longer matches the recording), or a change of no rows."""
    if proposal.get("dry_run_error"):
        return f"Confirm cannot run: {one_line(str(proposal['dry_run_error']), 600)}"
    if proposal.get("stale"):
        return f"Confirm is off: {one_line(str(proposal['stale']), 600)}"
    if proposal.get("dry_run_rows") == 0:
        return "Confirm is off: the preview changes no rows, so there is nothing to confirm."
    return ""


def confirm_html(proposal: Mapping[str, Any], outcome: Mapping[str, Any] | None = None) -> str:
    """The confirm card without buttons: what a saved notebook shows (and the outcome, once known)."""
    why = confirm_blocked(proposal)
    blocked = f'<div class="nxl-dry nxl-dry-error">{esc(why)}</div>' if why else ""
    if outcome and outcome.get("status") and outcome["status"] != "pending":
        tail = f'<div class="nxl-outcome" data-status="{esc(outcome["status"])}">{esc(outcome_text(outcome))}</div>'
    elif why:
        tail = ""
    else:
        tail = '<div class="nxl-offline-note">Not confirmed: run the cell again in a live kernel to confirm or cancel.</div>'
    return (
        f'<div class="nxl-confirm nxl-confirm-static"><div class="nxl-confirm-head"><span class="nxl-badge">Confirm</span>'
        f"<span>{esc(proposal.get('title'))}</span></div>"
        f'<div class="nxl-confirm-summary">{esc(proposal.get("summary"))}</div>'
        f'<pre class="nxl-sql">{esc(proposal.get("sql"))}</pre>{preview_html(proposal)}{blocked}{tail}</div>'
    )


# -- the write preview: what a confirm card shows will change ---------------------------------

#: Values up to this many characters never wrap (ids, enums such as no_response); longer ones wrap anywhere.
PREVIEW_SHORT = 16

#: The single-statement count line, by action: (verb, preposition).
PREVIEW_VERBS = {"update": ("changes", "in"), "insert": ("adds", "to"), "delete": ("deletes", "from")}


def preview_value(value: Any) -> str:
    """A sample value as the preview shows it: exactly, with SQL's NULL for a missing one."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def preview_columns(stmt: Mapping[str, Any]) -> list[str]:
    """The value columns of a statement's table: the set columns, or a deleted row's columns."""
    keys = list(stmt.get("keys") or [])
    side = "before" if stmt.get("action") == "delete" else "after"
    columns = [] if stmt.get("action") == "delete" else list(stmt.get("columns") or [])
    for row in stmt.get("sample") or []:
        columns += [c for c in (row.get(side) or {}) if c not in columns and c not in keys]
    return columns


def preview_changed(before: Any, after: Any) -> bool:
    return before != after or isinstance(before, bool) != isinstance(after, bool)


def preview_line(proposal: Mapping[str, Any]) -> str:
    """The count the click is held to: 'Preview: this changes N rows in T.' (or 'in K statements')."""
    n = proposal.get("dry_run_rows")
    if n is None:
        return ""
    statements = proposal.get("preview") or []
    verb, where = "changes", ""
    if len(statements) == 1:
        verb, prep = PREVIEW_VERBS.get(statements[0].get("action"), ("changes", "in"))
        where = f" {prep} {esc(statements[0].get('table'))}"
    elif statements:
        where = f" in {len(statements)} statements"
    return f'<div class="nxl-dry">Preview: this {verb} <strong>{n:,}</strong> {noun(n, "row")}{where}.</div>'


def _preview_cell(value: Any, cls: str) -> str:
    text = preview_value(value)
    cls += " nxl-pv-null" if value is None else ""
    cls += " nxl-pv-short" if len(text) <= PREVIEW_SHORT else ""
    return f'<span class="{cls}">{esc(text)}</span>'


def statement_preview_html(stmt: Mapping[str, Any], number: int | None = None) -> str:
    """One statement's sample as a table: key columns, then before → after, new or deleted values."""
    action = str(stmt.get("action") or "")
    rows = int(stmt.get("rows") or 0)
    sample = list(stmt.get("sample") or [])
    keys = list(stmt.get("keys") or [])
    columns = preview_columns(stmt)
    head = ""
    if number is not None:
        head = f'<div class="nxl-pv-head">{number}. {esc(action)} {esc(stmt.get("table"))}: {fmt_rows(rows)}</div>'
    body = []
    for row in sample:
        key, before, after = row.get("key") or {}, row.get("before") or {}, row.get("after") or {}
        cells = [f'<td class="nxl-pv-key">{_preview_cell(key.get(k), "nxl-pv-value")}</td>' for k in keys]
        for c in columns:
            if action == "update" and preview_changed(before.get(c), after.get(c)):
                cells.append(
                    f'<td class="nxl-pv-changed">{_preview_cell(before.get(c), "nxl-pv-before")}'
                    f'<span class="nxl-pv-arrow"> &rarr; </span>{_preview_cell(after.get(c), "nxl-pv-after")}</td>'
                )
            else:
                value = before.get(c) if action == "delete" else after.get(c)
                same = ' class="nxl-pv-same"' if action == "update" else ""
                cells.append(f"<td{same}>{_preview_cell(value, 'nxl-pv-value')}</td>")
        body.append(f'<tr data-action="{esc(action)}">{"".join(cells)}</tr>')
    table = ""
    if body:
        names = [f'<th class="nxl-pv-key">{esc(k)}</th>' for k in keys] + [f"<th>{esc(c)}</th>" for c in columns]
        table = (
            f'<div class="nxl-pv-wrap"><table class="nxl-pv-table"><thead><tr>{"".join(names)}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )
    more = rows - len(sample)
    tail = f'<div class="nxl-pv-more">and {more:,} more {noun(more, "row")}</div>' if more > 0 and body else ""
    if not head and not table:
        return ""
    return f'<div class="nxl-pv-stmt" data-action="{esc(action)}">{head}{table}{tail}</div>'


def preview_html(proposal: Mapping[str, Any]) -> str:
    """The count line and, per statement, a before → after sample of the rows it changes."""
    statements = proposal.get("preview") or []
    numbered = len(statements) > 1
    blocks = "".join(statement_preview_html(s, i + 1 if numbered else None) for i, s in enumerate(statements))
    return preview_line(proposal) + (f'<div class="nxl-preview">{blocks}</div>' if blocks else "")


def rows_table_html(columns: list[str], rows: list[list[Any]]) -> str:
    """A plain listing (conversations, skills) in the answer table style."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(cell_text(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f'<div class="nxl-table-wrap"><table class="nxl-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
