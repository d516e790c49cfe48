"""What an MCP client gets back from a read: ``nexus-lab sql --json``'s shape, bounded.

Codex shows its model a tool's ``structuredContent`` (not the text), so the structured result is
bounded as tightly as the text preview: whole rows while they fit in ``MAX_RESULT_BYTES``, long
cells shortened, and, when rows are left out, ``truncated`` set and a sentence on how to narrow.
"""

from __future__ import annotations

import json
from typing import Any

from ..db.engine import QueryResult
from ..safetext import visible

MAX_RESULT_BYTES = 16 * 1024  # the text preview's bound, and the structured content's
CELL_CHARS = 500


def read_result(result: QueryResult, max_bytes: int = MAX_RESULT_BYTES) -> dict[str, Any]:
    """The result as ``nexus-lab sql --json`` prints it, cut to at most ``max_bytes`` of JSON."""
    full = result.to_json()
    rows: list[dict[str, Any]] = full.pop("rows")
    shortened = False
    payload: dict[str, Any] = {**full, "rows": []}
    budget = max_bytes - _size(payload) - 400  # room for the narrowing note and rows_shown
    for row in rows:
        cells = {}
        for name, value in row.items():
            cell, cut = _cell(value)
            cells[visible(str(name))] = cell
            shortened |= cut
        size = _size(cells) + 1
        if size > budget:
            break
        payload["rows"].append(cells)
        budget -= size
    shown = len(payload["rows"])
    if shown < len(rows) or shortened:
        payload["truncated"] = True
        payload["truncated_by"] = payload["truncated_by"] or "preview"
        payload["rows_shown"] = shown
        left = f"{shown:,} of {result.row_count:,} rows are shown" if shown < len(rows) else "every row is shown"
        cells_cut = f" and cells longer than {CELL_CHARS} characters are cut" if shortened else ""
        payload["note"] = (
            f"{left}{cells_cut} (the result is bounded to {max_bytes // 1024} KiB); aggregate, filter, add a LIMIT "
            "or select fewer columns for exact answers."
        )
    elif result.truncated:
        payload["note"] = result.truncation_note
    return payload


def preview_text(payload: dict[str, Any], max_bytes: int = MAX_RESULT_BYTES) -> str:
    """The text block beside the structured content (clients without structured results read it)."""
    text = json.dumps(payload, ensure_ascii=False, default=str, separators=(",", ":"))
    if len(text.encode()) <= max_bytes:
        return text
    return text.encode()[: max_bytes - 3].decode("utf-8", "ignore") + "…"


def _cell(value: Any) -> tuple[Any, bool]:
    """A cell as JSON, terminal and bidi controls shown visibly, at most ``CELL_CHARS`` long."""
    if value is None or isinstance(value, (bool, int, float)):
        return value, False
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    shown = visible(text)
    if len(shown) > CELL_CHARS:
        return shown[: CELL_CHARS - 1] + "…", True
    return (value if shown == text and not isinstance(value, str) else shown), False


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":")).encode())
