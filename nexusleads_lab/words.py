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


def fmt_rows(rows: int | None, truncated: bool | None = None) -> str:
    if rows is None:
        return ""
    return plural(rows, "row") + (" (capped)" if truncated else "")


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
        return "Running…"
    return ""
