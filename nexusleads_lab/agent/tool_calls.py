"""One step's tool calls, run in parallel (a step of one call on the turn's own thread): each shown
as ``agent.action`` events (started, then completed or failed) from the turn's own thread, its
result kept (``db.frames``: Arrow, a DataFrame when the notebook asks for one)."""

from __future__ import annotations

import contextvars
import functools
import json
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any

from .. import fastjson
from ..safetext import without_surrogates
from .completion import PreparedCall
from .events import AgentAction
from .tools import ToolOutcome, ToolRunner
from .turn import Turn

if TYPE_CHECKING:
    from .conversations import Thread

#: Seconds between looks at the turn's cancel flag while calls run on the pool.
CHECK_EVERY = 0.1


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
    ``stop_queries`` stops the turn's queries when it is cancelled.

    A step of one call runs it on this thread instead (a hop to the pool and back cost more CPU
    than the rest of the call's own work): a Stop reaches it as it reaches one on the pool, through
    the turn's stoppers (its queries cancelled; a read waiting for a connection stops waiting). Not
    on the main thread, where an interrupt (Ctrl-C) must find the thread waiting, not in a query."""
    started: dict[str, AgentAction] = {}
    finished: queue.SimpleQueue[Future[ToolOutcome]] = queue.SimpleQueue()
    here = len(calls) == 1 and threading.current_thread() is not threading.main_thread()
    outcomes: dict[str, ToolOutcome] = {}
    try:
        for call in calls:
            result_id = None
            if call.name == "psql":
                result_id = f"r{thread.next_result}"
                thread.next_result += 1
            args = _loose_args(call.arguments)
            # The model's arguments may be any JSON: only strings are shown (the tool reports the rest).
            started[call.id] = step = AgentAction(
                turn_id=turn.id,
                action="command" if call.name == "psql" else "tool_call",
                tool=call.name,
                status="started",
                call_id=call.id,
                command=_text_arg(args, "sql") if call.name == "psql" else None,
                path=_text_arg(args, "path") if call.name == "read_file" else None,
            )
            turn.emit(step)
            # the call reads in this turn's cancel scope (contextvars do not cross threads by themselves),
            # and what it sets there stays its own
            context = contextvars.copy_context()
            job = functools.partial(runner.run, call.id, call.name, call.arguments, result_id)
            if here:
                turn.check()  # a Stop given before the call started: it does not start
                outcome = context.run(job)
                turn.check()
                _finished(turn, thread, started, outcomes, outcome)
            else:
                pool.submit(context.run, job).add_done_callback(finished.put)
        for _ in range(len(calls) - len(outcomes)):
            while True:
                try:
                    future = finished.get(timeout=CHECK_EVERY)
                    break
                except queue.Empty:
                    turn.check()
            turn.check()
            _finished(turn, thread, started, outcomes, future.result())
    except BaseException:
        stop_queries()
        raise
    return [outcomes[c.id] for c in calls]


def _finished(
    turn: Turn, thread: Thread, started: dict[str, AgentAction], outcomes: dict[str, ToolOutcome], outcome: ToolOutcome
) -> None:
    """Keep a call's outcome (its result in the thread and the turn) and show its step as ended."""
    outcomes[outcome.call_id] = outcome
    done: dict[str, Any] = {
        "status": "completed" if outcome.ok else "failed",
        "elapsed_ms": round(outcome.elapsed_ms, 2),
        "error": outcome.error,
    }
    if outcome.result is not None:
        assert outcome.result_id is not None  # a psql call, given one above
        done.update(result_id=outcome.result_id, rows=outcome.result.row_count, truncated=outcome.result.truncated)
        thread.frames.keep(outcome.result_id, outcome.result)
        turn.progress.frames.keep(outcome.result_id, outcome.result)
    turn.emit(started[outcome.call_id].model_copy(update=done))


def _loose_args(raw: str) -> dict[str, Any]:
    try:
        value = fastjson.loads(raw or "{}")
        return value if isinstance(value, dict) else {}
    except json.JSONDecodeError:
        return {}


def _text_arg(args: dict[str, Any], name: str) -> str | None:
    value = args.get(name)
    return without_surrogates(value) if isinstance(value, str) else None
