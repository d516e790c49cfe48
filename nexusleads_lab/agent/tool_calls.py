"""One step's tool calls, run in parallel: each shown as ``agent.action`` events (started, then
completed or failed) from the turn's own thread, its result kept (``db.frames``: Arrow, a
DataFrame when the notebook asks for one)."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, wait
from typing import TYPE_CHECKING, Any

from ..safetext import without_surrogates
from .completion import PreparedCall
from .events import AgentAction
from .tools import ToolOutcome, ToolRunner
from .turn import Turn

if TYPE_CHECKING:
    from .conversations import Thread


def run_calls(
    turn: Turn,
    calls: list[PreparedCall],
    *,
    thread: Thread,
    runner: ToolRunner,
    pool: Executor,
    stop_queries: Callable[[], None],
) -> list[ToolOutcome]:
    """Run the calls concurrently on ``pool``; events are emitted from this (the turn's) thread. A psql
    call's result id is taken from ``thread``, and its DataFrame kept there and in the turn's result;
    ``stop_queries`` stops the turn's queries when it is cancelled."""
    futures = {}
    started: dict[str, AgentAction] = {}
    for call in calls:
        result_id = None
        if call.name == "psql":
            result_id = f"r{thread.next_result}"
            thread.next_result += 1
        args = _loose_args(call.arguments)
        # The model's arguments may be any JSON: only strings are shown (the tool reports the rest).
        started[call.id] = step = AgentAction(
            action="command" if call.name == "psql" else "tool_call",
            tool=call.name,
            status="started",
            call_id=call.id,
            command=_text_arg(args, "sql") if call.name == "psql" else None,
            path=_text_arg(args, "path") if call.name == "read_file" else None,
        )
        turn.emit(step)
        # the tool thread reads in this turn's cancel scope (contextvars do not cross threads by themselves)
        context = contextvars.copy_context()
        futures[pool.submit(context.run, runner.run, call.id, call.name, call.arguments, result_id)] = call
    outcomes: dict[str, ToolOutcome] = {}
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            turn.check()
            for fut in finished:
                outcome = fut.result()
                outcomes[outcome.call_id] = outcome
                done: dict[str, Any] = {
                    "status": "completed" if outcome.ok else "failed",
                    "elapsed_ms": round(outcome.elapsed_ms, 2),
                    "error": outcome.error,
                }
                if outcome.result is not None:
                    assert outcome.result_id is not None  # a psql call, given one above
                    done.update(
                        result_id=outcome.result_id,
                        rows=outcome.result.row_count,
                        truncated=outcome.result.truncated,
                    )
                    thread.frames.keep(outcome.result_id, outcome.result)
                    turn.progress.frames.keep(outcome.result_id, outcome.result)
                turn.emit(started[outcome.call_id].model_copy(update=done))
    except BaseException:
        stop_queries()
        raise
    return [outcomes[c.id] for c in calls]


def _loose_args(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
        return value if isinstance(value, dict) else {}
    except json.JSONDecodeError:
        return {}


def _text_arg(args: dict[str, Any], name: str) -> str | None:
    value = args.get(name)
    return without_surrogates(value) if isinstance(value, str) else None
