"""What the product says about numbers, times and outcomes, in one place for every view.

The cell's HTML, the chat panel (which receives these strings ready-made), the CLI and the
thread the model reads all word a count, a duration, an answer's cost and a confirmation's
outcome the same way, because they all call these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def noun(n: int, word: str, many: str | None = None) -> str:
    """The word for ``n`` of them: ``row`` or ``rows``."""
    return word if n == 1 else (many or word + "s")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``3 rows``, ``1 row``, ``1,204 steps``."""
    return f"{n:,} {noun(n, word, many)}"


def fmt_ms(ms: float | None) -> str:
    """``4.2 ms``, ``87 ms``, ``1.3 s``; "" when unknown."""
    if ms is None:
        return ""
    if ms >= 1000:
        return f"{ms / 1000:.1f} s"
    return f"{ms:.1f} ms" if ms < 10 else f"{round(ms)} ms"


#: What every view puts after a row count the row or size cap cut short.
CAPPED = "(capped)"

#: A tool as a step's head names it.
STEP_TOOLS = {"psql": "Query", "read_file": "Read"}


def fmt_rows(rows: int | None, truncated: bool | None = None) -> str:
    """``12 rows``, ``1,000 rows (capped)``; "" when unknown."""
    if rows is None:
        return ""
    return plural(rows, "row") + (f" {CAPPED}" if truncated else "")


def step_meta(step: Mapping[str, Any]) -> str:
    """A step's facts on its line: ``12 rows (capped) · 4.2 ms · → r1``, and ``failed``."""
    bits = [fmt_rows(step.get("rows"), step.get("truncated")), fmt_ms(step.get("elapsed_ms"))]
    if step.get("result_id"):
        bits.append(f"→ {step['result_id']}")
    if step.get("status") == "failed":
        bits.append("failed")
    return " · ".join(b for b in bits if b)


def steps_label(count: int, *, live: bool, cost: str | None = None, failed: int = 0, stopped: int = 0) -> str:
    """A turn's steps line: ``Working… 2 steps`` while it runs, then its cost (``cost_text``) or
    ``Ran 3 steps``, with the steps that failed or were stopped."""
    if live:
        return f"Working… {plural(count, 'step')}" if count else "Working…"
    bits = [cost or f"Ran {plural(count, 'step')}"]
    if failed:
        bits.append(f"{failed:,} failed")
    if stopped:
        bits.append(f"{stopped:,} stopped")
    return " · ".join(bits)


def cost_text(steps: int, elapsed_ms: float | None = None, usage: Mapping[str, int] | None = None) -> str:
    """What an answer cost, for its collapsed steps line: "Ran 3 steps · 4.2 s · 2,140 tokens"."""
    bits = [f"Ran {plural(steps, 'step')}" if steps else "No steps"]
    if elapsed_ms is not None:
        bits.append(fmt_ms(elapsed_ms))
    tokens = (usage or {}).get("total_tokens")
    if tokens:
        bits.append(plural(tokens, "token"))
    return " · ".join(bits)


def outcome_text(outcome: Mapping[str, Any]) -> str:
    """A confirmation's outcome as a person reads it ({status, rows_affected, error|message})."""
    status = outcome.get("status")
    if status == "confirmed":
        return f"Done: {plural(outcome.get('rows_affected') or 0, 'row')} changed."
    if status == "cancelled":
        return "Cancelled: nothing was changed."
    if status == "failed":
        return (
            f"The change failed and nothing was written: {outcome.get('error') or outcome.get('message') or ''}".strip()
        )
    if status == "error":
        return str(outcome.get("message") or outcome.get("error") or "This confirmation cannot run.")
    if status == "running":
        return UI["running_change"]
    return ""


#: Every label and sentence the browser shows (the chat panel, the standalone page, the cell's
#: live turn and confirm card). The JavaScript lays these out and fills ``{name}`` from its data;
#: it has no English of its own (tests/test_wording.py holds it to that).
UI: dict[str, str] = {
    # the panel's header, compose box and empty state
    "default_label": "PLG leads",
    "conversation": "Conversation",
    "new_conversation": "New conversation",
    "conversations": "Conversations",
    "working": "working…",
    "scope_limit": "{line}\nReads and writes are limited to {scope}.",
    "latest": "Latest",
    "placeholder": "Ask about your leads…",
    "input_hint": "Enter to send · Shift+Enter for a new line",
    "input_label": "Message",
    "recorded_label": "Recorded questions",
    "send": "Send",
    "send_hint": "Send (Enter)",
    "stop": "Stop",
    "dismiss": "Dismiss",
    "close": "Close",
    "empty_title": "Ask about your leads",
    "empty_title_from": "Ask about your leads from {label}",
    "empty_notebook": "Plain questions become SQL, dashboards and DataFrames in this notebook. Writes always ask first.",
    "empty_page": "Plain questions become SQL and dashboards. Writes always ask first.",
    "empty_replay": (
        "No model is connected: this demo replays the answers recorded for the questions below. "
        "Writes always ask first."
    ),
    "unconfigured_notebook": (
        "No model is connected, so nothing can answer here yet. Export OPENAI_API_KEY, or run a local "
        "OpenAI-compatible server and export OPENAI_BASE_URL (README › Use a local model), then restart the "
        "kernel. The shipped notebooks replay recorded answers with no model."
    ),
    "unconfigured_page": (
        "No model is connected, so nothing can answer here yet. Export OPENAI_API_KEY, or run a local "
        "OpenAI-compatible server and export OPENAI_BASE_URL (README › Use a local model), then restart "
        "nexus-lab serve."
    ),
    "examples": "Top hot leads not contacted yet\nLead funnel by status\nHow are leads spread over tiers?",
    "offline": (
        "The kernel restarted or stopped, so this panel is disconnected. Run this line in the notebook to "
        "bring it back with the same conversation:"
    ),
    # an answer
    "waiting": "Waiting for the answer",
    "notes": "{notes} on this answer",
    "show_sql": "Show the SQL behind this",
    "sql": "SQL",
    "copy_sql": "Copy SQL",
    "insert_cell": "Insert as cell",
    "copied": "SQL copied to the clipboard.",
    "copy_refused": "The browser refused the clipboard; select the SQL and copy it by hand.",
    "inserted": "Inserted as cell {index} of {name}.",
    "the_notebook": "the notebook",
    "no_notebook_copied": "No notebook to insert into here: the cell text is on the clipboard, paste it into a cell.",
    "no_notebook_blocked": "No notebook to insert into here, and the clipboard is blocked; copy the SQL from the step.",
    "no_points": "No points to draw.",
    "line_chart": "Line chart",
    # a proposed write
    "confirm": "Confirm",
    "cancel": "Cancel",
    "confirm_title": "Proposed change",
    "running_change": "Running the change…",
    "cancelling": "Cancelling…",
    "expired": "This proposal has expired; ask again for a fresh one.",
    # the conversations list
    "new": "New",
    "no_conversations": "No conversations yet.",
    "rename": "Rename",
    "new_title": "New title",
    "delete": "Delete",
    "delete_ask": "Delete “{title}”?",
    "deleting": "Deleting…",
    "keep": "Keep",
    "just_now": "just now",
    "minutes_ago": "{n} min ago",
    "hours_ago": "{n} h ago",
    "days_ago": "{n} d ago",
    # the standalone page's connection
    "not_connected": "Not connected to the server; try again in a moment.",
    "not_signed_in": (
        "Not signed in: open this page with a valid ?token= (or sign in, so the nexus_session cookie is set), "
        "then reload."
    ),
    "refused": "The server refused this page's connection: open the chat from the server's own address.",
    "reconnecting": "The connection to the server was lost; reconnecting…",
}


def step_words(step: Mapping[str, Any]) -> dict[str, str]:
    """What a view writes on a step's line beside its SQL or path: the tool's ``tool_label``
    (``Query``, ``Read``) and the step's ``meta`` (``step_meta``)."""
    tool = step.get("tool")
    return {"tool_label": STEP_TOOLS.get(tool, tool) if isinstance(tool, str) else "tool", "meta": step_meta(step)}
