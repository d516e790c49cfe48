"""The in-kernel agent: one ``Assistant``, one event stream, many views.

A turn streams a Chat Completion with the tools, runs the tool calls it asks for (in
parallel when it asks for several), feeds the bounded results back, and repeats until the
model answers; the answer is parsed into a response, and every message is stored as it
completes. Views subscribe to the events; nothing here renders.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..config import current_org, current_user
from ..db.errors import QueryError, mask_secrets
from ..db.schema import ALL_ORGS
from ..safetext import without_surrogates
from .completion import Completion, PreparedCall, StreamReader, prepare_calls
from .confirm import Confirmations, Outcome, Proposal, ProposalError
from .events import (
    AgentAction,
    AgentText,
    ConfirmResolved,
    ErrorEvent,
    SessionId,
    ShownText,
    TurnCompleted,
    TurnStarted,
)
from .model_errors import ModelAnswerError, describe_model_error, empty_answer, stream_error, unknown_tools_note
from .prompt import system_prompt
from .provider import ModelConfigError, ModelSettings, make_client, mask_api_key, proposal_ledger
from .responses import Confirm, parse_response
from .streaming import StreamingDisplay, partial_display_text
from .tools import TOOL_NAMES, TOOL_SPECS, ToolOutcome, ToolRunner

if TYPE_CHECKING:  # pragma: no cover
    from ..db.engine import QueryResult
    from ..db.store import ConversationInfo

log = logging.getLogger(__name__)

MAX_STEPS = 12
MAX_REFUSALS = 1  # refused proposals sent back to the model per turn before the person sees one
TOKEN_BUDGET = 48_000  # rough tokens of history sent per request (chars / 4)


class Cancelled(Exception):
    """The person stopped the turn."""


@dataclass
class Step:
    """One tool call as the person sees it in the steps list."""

    call_id: str
    tool: str
    status: str
    command: str | None = None
    path: str | None = None
    result_id: str | None = None
    rows: int | None = None
    truncated: bool | None = None
    elapsed_ms: float | None = None
    error: str | None = None


@dataclass
class TurnResult:
    """What one question produced: the response, the DataFrames, the steps and the events."""

    question: str
    thread_id: str | None = None
    text: str = ""
    response: Any = None  # a resolved response model (message, dashboard, confirm)
    notes: list[str] = field(default_factory=list)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    elapsed_ms: float | None = None  # from turn.started to the answer (or the failure)
    error: str | None = None
    cancelled: bool = False
    proposal: Proposal | None = None
    _text_run: _TextRun | None = field(default=None, init=False, repr=False, compare=False)
    _started: float = field(default_factory=time.perf_counter, init=False, repr=False, compare=False)

    def stop_clock(self) -> float:
        """Milliseconds since the question was asked, kept in ``elapsed_ms``."""
        self.elapsed_ms = round((time.perf_counter() - self._started) * 1000, 1)
        return self.elapsed_ms

    def record(self, event: Any) -> None:
        """Keep an event in ``events``. A stretch of streaming text is kept as one edit (its
        edits merged), so a long answer costs its length here, not its number of chunks."""
        if isinstance(event, AgentText) and event.status == "streaming":
            if self._text_run is None:
                self._text_run = _TextRun(event, len(self.events))
                self.events.append(event)  # stands in for the merged edit until the stretch ends
            else:
                self._text_run.add(event)
            return
        if self._text_run is not None:
            self.events[self._text_run.index] = self._text_run.merged()
            self._text_run = None
        self.events.append(event)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def df(self) -> pd.DataFrame | None:
        """The last DataFrame this turn produced."""
        return next(reversed(self.frames.values())) if self.frames else None

    def response_dict(self) -> dict[str, Any] | None:
        if self.proposal is not None:
            return self.proposal.as_dict()
        return self.response.model_dump(mode="json") if self.response is not None else None


def _edit_of(event: AgentText) -> tuple[int, str]:
    """A streaming ``agent.text``'s edit (its validator makes sure it has both)."""
    assert event.keep is not None and event.delta is not None
    return event.keep, event.delta


class _TextRun:
    """Consecutive streaming edits as one: keep ``keep`` characters, then add what ``added`` holds."""

    def __init__(self, first: AgentText, index: int) -> None:
        keep, delta = _edit_of(first)
        self.first, self.index, self.keep = first, index, keep
        self.added = ShownText()
        self.added.edit(0, delta)

    def add(self, event: AgentText) -> None:
        keep, delta = _edit_of(event)
        if keep >= self.keep:
            self.added.edit(keep - self.keep, delta)
        else:  # it cuts into what was shown before the stretch
            self.keep = keep
            self.added.replace(delta)

    def merged(self) -> AgentText:
        return AgentText(ts=self.first.ts, keep=self.keep, delta=self.added.text, status="streaming")


@dataclass
class Thread:
    id: str | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    next_result: int = 1


class Assistant:
    """Ask questions about the lead database; get responses, DataFrames and events."""

    def __init__(
        self,
        *,
        model: str | None = None,
        database=None,
        client=None,
        org: str | None = None,
        user: str | None = None,
        skills=None,
        persist: bool = True,
        max_steps: int = MAX_STEPS,
        token_budget: int = TOKEN_BUDGET,
        tool_pool: Executor | None = None,
        pooled_store: bool = False,
    ) -> None:
        """``tool_pool`` (a server's, shared by its sessions; default: four threads of this
        assistant's own) runs the tool calls; ``pooled_store`` borrows the conversation store's
        connections from the database's bounded per-process pool instead of holding one."""
        self.settings = ModelSettings.from_env(model)
        org = org or current_org()
        self.org: str | None = None if org in (None, ALL_ORGS) else org  # None: every organization
        self.user = user or current_user()
        self.max_steps = max_steps
        self.token_budget = token_budget
        self._database = database
        self._client = client
        self._owns_client = False  # made here (not given): close() closes it
        self._skills = skills
        self._persist = persist
        self._store = None
        self._confirmations: Confirmations | None = None
        self.thread = Thread(id=None)
        self.last_proposal: Proposal | None = None
        self._subscribers: list[Callable[[], Callable[[Any], None] | None]] = []
        self._subscribers_lock = threading.Lock()
        self._pending: set[str] = set()  # proposals shown and not resolved as far as this process knows
        self._poller: threading.Thread | None = None
        self.poll_interval = 2.0  # seconds between looks for outcomes made by other processes
        self._closed = False
        self._turn_lock = threading.Lock()
        self._cancel = threading.Event()
        self._active_stream = None
        self._owns_pool = tool_pool is None
        self._pool: Executor = tool_pool or ThreadPoolExecutor(max_workers=4, thread_name_prefix="nexus-tool")
        self._pooled_store = pooled_store
        self._tools = ToolRunner(lambda: self.engine, self._skills_provider)

    # -- lazily built parts (so `Assistant()` itself is instant and never fails) ----------

    @property
    def model(self) -> str:
        return self.settings.model

    @model.setter
    def model(self, value: str) -> None:
        self.settings = ModelSettings(**{**self.settings.__dict__, "model": value})

    @property
    def database(self):
        if self._database is None:
            from ..db.database import get_database

            self._database = get_database()
        return self._database

    @property
    def engine(self):
        """The engine of this assistant's scope: its SQL reads and writes as that scope's roles."""
        return self.database.engine_for(self.org)

    @property
    def scope_label(self) -> str:
        from ..db.guard import describe_scope

        return describe_scope(self.org)

    @property
    def skills(self):
        if self._skills is None:
            from .skills import discover_skills

            self._skills = discover_skills()
        return self._skills

    def _skills_provider(self):
        return self.skills

    @property
    def store(self):
        if self._store is None and self._persist:
            self._store = self._new_store()
        return self._store

    def _new_store(self):
        from ..db.store import ConversationStore

        pool = self.database.store_pool(self.org) if self._pooled_store else None
        return ConversationStore(
            self.database.store_url(self.org), self.org or ALL_ORGS, self.user, guard=True, pool=pool
        )

    @property
    def confirmations(self) -> Confirmations:
        if self._confirmations is None:
            store = self.store or self._new_store()
            self._confirmations = Confirmations(
                store, lambda: self.engine, ledger=lambda: proposal_ledger(self.settings)
            )
        return self._confirmations

    def client(self):
        if self._client is None:
            self._client = make_client(self.settings)
            self._owns_client = True
        return self._client

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """Every DataFrame of this conversation, by result id."""
        return self.thread.frames

    # -- conversations ------------------------------------------------------------------

    def new_thread(self) -> None:
        self.thread = Thread(id=None)

    def conversations(self):
        return self.store.list() if self.store else []

    def resume(self, conversation_id: str) -> None:
        """Continue a stored conversation (after a kernel restart too)."""
        self.thread = self._load(conversation_id)

    def _load(self, conversation_id: str, keep: Thread | None = None) -> Thread:
        """A stored conversation as a thread; ``keep``: the thread it refreshes (its DataFrames stay)."""
        store = self.store
        info = store.get(conversation_id)  # read first: a later write shows as a later updated_at
        messages = _model_tail(store, info.id, self.token_budget)
        store.seen[info.id] = info.updated_at
        thread = Thread(id=info.id, messages=messages, next_result=store.highest_result(info.id) + 1)
        if keep is not None and keep.id == info.id:
            thread.frames, thread.next_result = keep.frames, max(thread.next_result, keep.next_result)
        return thread

    @contextlib.contextmanager
    def conversation_turn(self) -> Iterator[None]:
        """Hold the current conversation's turn lease for the block (``db.lease``): one turn at a
        time per stored conversation, whichever assistant or process asks. If somebody else added
        to the conversation since this assistant last saw it, the thread is reloaded first (its
        DataFrames kept), so this turn continues after theirs. Waiting stops at ``cancel``."""
        store, conversation_id = self.store, self.thread.id
        if store is None or conversation_id is None:
            yield
            return
        from ..db.lease import LEASES, Abandoned

        with contextlib.ExitStack() as stack:
            try:
                held = stack.enter_context(LEASES.hold(store, conversation_id, cancelled=self._cancel.is_set))
            except Abandoned:
                raise Cancelled() from None
            except QueryError:
                raise
            except Exception as exc:
                raise QueryError(f"The conversation store cannot be reached: {exc}") from None
            if held.claimed is not None and held.claimed != store.seen.get(conversation_id):
                self.thread = self._load(conversation_id, keep=self.thread)
            yield

    def history(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Stored messages of a conversation (default: the current one), oldest first."""
        cid = conversation_id or self.thread.id
        if not cid or not self.store:
            return []
        return [_history_row(m) for m in self.store.messages(cid)]

    def transcript(self, conversation_id: str | None = None) -> list:
        """A stored conversation (default: the current one) as typed items: questions, answers
        with their steps and resolved responses, outcomes (``agent.transcript``). Every view
        that shows a stored conversation renders from this."""
        from .transcript import build

        return build(self.history(conversation_id))

    def transcript_page(self, conversation_id: str, *, limit: int, before: int | None = None) -> TranscriptPage:
        """The latest whole turns of a stored conversation before message position ``before``
        (default: its end) as transcript items, at most ``limit`` of them (or the one turn
        there, if it alone has more). Read backwards in keyset pages: the cost follows the page,
        not the conversation. A confirmation card here carries its outcome even when the
        outcome came later; an outcome whose card is on an earlier page is left to that page."""
        from .transcript import OutcomeItem, build

        store = self.store
        total = store.last_seq(conversation_id)
        end = total + 1 if before is None else min(before, total) + 1  # positions: messages 1..before
        chunk = max(limit, 100)
        stored: list = []
        counts: dict[int, int] = {}  # items of the turn starting at a seq
        while True:
            got = store.page(conversation_id, before=stored[0].seq if stored else end, limit=chunk)
            stored = got + stored
            at_start = len(got) < chunk
            starts = [i for i, m in enumerate(stored) if _starts_turn(m)]
            if at_start and stored and (not starts or starts[0] != 0):
                starts.insert(0, 0)  # whatever came before the first question is a turn too
            bounds, start, n, full = [*starts, len(stored)], len(stored), 0, False
            for k in range(len(starts) - 1, -1, -1):
                seq = stored[bounds[k]].seq
                if seq not in counts:
                    counts[seq] = len(build(_history_row(m) for m in stored[bounds[k] : bounds[k + 1]]))
                if n + counts[seq] > limit and start < len(stored):
                    full = True
                    break
                n, start = n + counts[seq], bounds[k]
            if full or at_start:
                break
        window = stored[start:]
        first = window[0].seq if window else end
        cards = [m.content["meta"]["response"]["id"] for m in window if _card_id(m)]
        later = store.find(conversation_id, "outcome", cards, after=end - 1) if cards else []
        shown = {o["id"] for m in window if isinstance(o := (m.content.get("meta") or {}).get("outcome"), dict)}
        earlier = store.find(conversation_id, "card", sorted(shown), before=first) if shown else []
        elsewhere = {m.content["meta"]["response"]["id"] for m in earlier}
        items = [
            item
            for item in build(_history_row(m) for m in [*window, *later])
            if not (isinstance(item, OutcomeItem) and item.proposal_id in elsewhere)
        ]
        return TranscriptPage(items, total, first - 1)

    def rename(self, conversation_id: str, title: str) -> None:
        self.store.rename(conversation_id, title)

    def delete(self, conversation_id: str) -> None:
        self.store.delete(conversation_id)
        if self.thread.id == conversation_id:
            self.new_thread()

    # -- asking ---------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the running turn (safe from any thread): the model stream and any query."""
        self._cancel.set()
        stream = self._active_stream
        if stream is not None:
            try:
                stream.close()
            except Exception:
                pass
        if self._database is not None:
            self.engine.cancel(scope=self)  # this assistant's queries only: the engine may be shared

    def stream(self, question: str) -> Iterator[Any]:
        """Events of one turn as an iterator (the turn runs on a worker thread)."""
        events: queue.Queue = queue.Queue()
        done = object()

        def work():
            try:
                self.ask(question, on_event=events.put)
            finally:
                events.put(done)

        worker = threading.Thread(target=work, name="nexus-turn", daemon=True)
        worker.start()
        try:
            while (item := events.get()) is not done:
                yield item
        finally:
            if worker.is_alive():
                self.cancel()
                worker.join(timeout=5)

    # -- the event stream -------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Any], None], *, weak: bool = False) -> Callable[[], None]:
        """Be given every event of every turn of this assistant, whoever asked (a cell, the panel,
        the CLI, code), in order, on the thread running the turn, and a ``confirm.resolved`` for
        every confirmation outcome. Returns the call that unsubscribes. ``weak``: a bound
        method is held weakly, so a view that goes away (a card, a panel) is not kept alive.
        A subscriber that raises is logged and skipped; the turn and the others go on."""
        import weakref

        if weak and hasattr(callback, "__self__"):
            ref: Callable[[], Callable[[Any], None] | None] = weakref.WeakMethod(callback)
        else:
            ref = lambda: callback  # noqa: E731 - a strong reference with the weak one's shape
        with self._subscribers_lock:
            self._subscribers.append(ref)

        def unsubscribe() -> None:
            with self._subscribers_lock:
                if ref in self._subscribers:
                    self._subscribers.remove(ref)

        return unsubscribe

    def _publish(self, event: Any) -> None:
        with self._subscribers_lock:
            refs = list(self._subscribers)
        for ref in refs:
            callback = ref()
            if callback is None:  # a weakly held view is gone
                with self._subscribers_lock:
                    if ref in self._subscribers:
                        self._subscribers.remove(ref)
                continue
            try:
                callback(event)
            except Exception:  # a broken view must not break the turn or the other views
                log.exception("event subscriber failed")

    def ask(self, question: str, *, on_event: Callable[[Any], None] | None = None, origin: str = "code",
            _meta: dict[str, Any] | None = None) -> TurnResult:  # fmt: skip
        """Answer one question in the current thread. Its events go to every subscriber
        (``subscribe``) and, as sugar, to ``on_event``; ``origin`` says who asked."""
        import uuid

        result = TurnResult(question=question)
        turn_id = uuid.uuid4().hex[:12]

        def emit(event) -> None:
            event = event.model_copy(update={"turn_id": turn_id})
            result.record(event)
            if on_event is not None:
                try:
                    on_event(event)
                except Exception:  # a broken view must not break the turn
                    log.exception("event callback failed")
            self._publish(event)

        reports = ((_meta or {}).get("outcome") or {}).get("id")
        emit(TurnStarted(question=question, origin=origin, reports=reports))
        from ..db.engine import CANCEL_SCOPE

        scope = CANCEL_SCOPE.set(self)  # this turn's reads are this assistant's (see cancel)
        # The lease (if the conversation is stored) spans the turn and its failure note alike.
        with self._turn_lock, contextlib.ExitStack() as leased:
            self._cancel.clear()
            try:
                if not isinstance(question, str) or not question.strip():
                    raise ValueError("Ask a question: the message is empty.")
                client = self.client()
                leased.enter_context(self.conversation_turn())
                self._run_turn(client, question, result, emit, _meta)
            except (Cancelled, KeyboardInterrupt):
                self.cancel()
                result.cancelled = True
                self._fail(result, emit, "Stopped: the turn was cancelled before it finished.")
            except ModelConfigError as exc:
                self._fail(result, emit, str(exc))
            except (QueryError, ValueError) as exc:
                self._fail(result, emit, str(exc))
            except Exception as exc:  # model service errors and anything unexpected
                log.debug("turn failed", exc_info=True)
                self._fail(result, emit, describe_model_error(exc))
            finally:
                self._active_stream = None
                self._cancel.clear()
                CANCEL_SCOPE.reset(scope)
        return result

    def _fail(self, result: TurnResult, emit, message: str) -> None:
        message = mask_secrets(message)
        # the key the client holds too (a client given to the assistant may carry one the settings lack)
        for key in {self.settings.api_key, getattr(self._client, "api_key", None)}:
            message = mask_api_key(message, key if isinstance(key, str) else None)
        result.error = message
        result.stop_clock()
        emit(ErrorEvent(message=message, cancelled=result.cancelled or None))
        # Keep the thread well-formed for the next question; the transcript reads the meta.
        if self.thread.messages and self.thread.messages[-1].get("role") != "assistant":
            self._append(
                {"role": "assistant", "content": f"(The previous turn ended early: {message})"},
                meta={"error": message, "cancelled": result.cancelled, "elapsed_ms": result.elapsed_ms},
                kind="note",
            )

    def _run_turn(self, client, question: str, result: TurnResult, emit, meta: dict[str, Any] | None = None) -> None:
        if self.thread.id is None and self.store is not None:
            self.thread.id = self.store.create(title=question, model=self.model)
        result.thread_id = self.thread.id
        if self.thread.id:
            emit(SessionId(session_id=self.thread.id))
        for skill in self.skills.mentions(question):
            self._append({"role": "system", "content": f"Skill `{skill.name}` ({skill.path}):\n\n{skill.body()}"})
        self._append({"role": "user", "content": question}, meta=meta, kind="confirm_action" if meta else None)

        refusals = 0
        for _ in range(self.max_steps):
            completion = self._complete(client, emit)
            for k, v in completion.usage.items():
                result.usage[k] = result.usage.get(k, 0) + v
            if completion.error is not None:
                raise ModelAnswerError(stream_error(self.settings, completion.error))
            if completion.empty:
                raise ModelAnswerError(empty_answer(self.settings, completion))
            if not completion.calls:
                if self._finish(completion.text, result, emit, retry=refusals < MAX_REFUSALS):
                    return
                refusals += 1
                continue
            calls = prepare_calls(completion, TOOL_NAMES)
            outcomes = self._run_tools(
                [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls], result, emit
            )
            known = [(c, o) for c, o in zip(calls, outcomes) if c.known]
            if known:
                self._append(
                    {"role": "assistant", "content": completion.text or None,
                     "tool_calls": [_call_message(c) for c, _ in known]}
                )  # fmt: skip
            for _, outcome in known:
                meta = {"result_id": outcome.result_id, "ok": outcome.ok, "elapsed_ms": round(outcome.elapsed_ms, 1)}
                if outcome.result is not None:
                    meta.update(
                        sql=outcome.result.sql, rows=outcome.result.row_count, truncated=outcome.result.truncated
                    )
                self._append({"role": "tool", "tool_call_id": outcome.call_id, "content": outcome.content}, meta=meta)
            unknown = [o for c, o in zip(calls, outcomes) if not c.known]
            if unknown:
                # A call to a tool that does not exist cannot be stored as a call (a strict server
                # refuses a history naming tools it was not given): the model hears it as a note.
                self._append({"role": "system", "content": unknown_tools_note(unknown)})
        raise ValueError(f"The agent stopped after {self.max_steps} steps without an answer; ask a narrower question.")

    def _finish(self, text: str, result: TurnResult, emit, *, retry: bool) -> bool:
        """Resolve and store the answer; False when a refused proposal goes back to the model."""
        parsed = parse_response(text, self.thread.frames)
        result.text = text
        result.response = parsed.response
        result.notes = list(parsed.notes)
        if isinstance(parsed.response, Confirm):
            try:
                result.proposal = self.confirmations.propose(
                    self.thread.id, parsed.response.title, parsed.response.summary, parsed.response.sql
                )
            except ProposalError as exc:
                # Nothing ran. The model hears why and may correct itself; after that the person does.
                if retry:
                    self._append({"role": "assistant", "content": text}, meta={"refused": exc.paragraph()})
                    self._append(
                        {"role": "user", "content": f"CONFIRM_REFUSED: {exc.paragraph()}"}, kind="confirm_refused"
                    )
                    return False
                from .responses import Message

                result.response = Message(
                    type="message", text=f"The proposed change was refused and nothing ran: {exc.paragraph()}"
                )
            else:
                self.last_proposal = result.proposal
                if not result.proposal.stale:
                    self._watch(result.proposal.id)
        response = result.response_dict()
        elapsed_ms = result.stop_clock()
        self._append(
            {"role": "assistant", "content": text},
            meta={"response": response, "notes": result.notes, "elapsed_ms": elapsed_ms, "usage": dict(result.usage)},
        )
        # What was shown as it streamed, worked out again: cheaper than holding it through the store.
        emit(AgentText(text=partial_display_text(text), status="done"))
        emit(TurnCompleted(text=text, usage=result.usage, elapsed_ms=elapsed_ms, response=response, notes=result.notes))
        return True

    # -- one model call ---------------------------------------------------------------------

    def _complete(self, client, emit) -> Completion:
        """Stream one completion (``agent.completion`` reads it) and show its text as it comes.

        The request goes through the ``openai`` client's own transport (auth, retries, SSE, error
        events, ``close``), its chunks read as plain JSON rather than a typed object each: a typed
        chunk costs ~75 µs of CPU, which at one chunk a token is most of a busy server's turn."""
        if self._cancel.is_set():
            raise Cancelled()
        import openai

        body = {"model": self.model, "messages": self._request_messages(), "tools": TOOL_SPECS,
                "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
        stream = client.post(
            "/chat/completions", cast_to=object, body=body, stream=True, stream_cls=openai.Stream[object]
        )
        self._active_stream = stream
        reader = StreamReader()
        display = StreamingDisplay()
        try:
            for chunk in stream:
                if self._cancel.is_set():
                    raise Cancelled()
                piece = reader.feed(chunk)
                if piece:
                    edit = display.feed(piece)
                    if edit is not None:
                        emit(AgentText(keep=edit.keep, delta=edit.delta, status="streaming"))
        except openai.APIError as exc:
            if self._cancel.is_set():
                raise Cancelled() from None
            if isinstance(exc, openai.APIStatusError) or not isinstance(exc.body, dict):
                raise
            # openai raises on an ``error`` object inside a 200 stream (OpenRouter): the provider's words
            raise ModelAnswerError(stream_error(self.settings, str(exc.body.get("message") or exc))) from None
        except json.JSONDecodeError as exc:  # a data event that is not JSON (the SSE decoder parses each one)
            if self._cancel.is_set():
                raise Cancelled() from None
            raise ModelAnswerError(stream_error(self.settings, f"a stream event that is not JSON ({exc})")) from None
        except Exception:
            if self._cancel.is_set():
                raise Cancelled() from None
            raise
        finally:
            self._active_stream = None
        completion = reader.finish()
        if completion.quirks:
            log.debug("model stream quirks: %s", "; ".join(completion.quirks))
        return completion

    def _run_tools(self, calls: list[dict[str, str]], result: TurnResult, emit) -> list[ToolOutcome]:
        """Run the calls concurrently; events are emitted from this (the caller's) thread."""
        futures = {}
        steps = {}
        for call in calls:
            result_id = None
            if call["name"] == "psql":
                result_id = f"r{self.thread.next_result}"
                self.thread.next_result += 1
            step = Step(call_id=call["id"], tool=call["name"], status="started", result_id=result_id)
            args = _loose_args(call["arguments"])
            # The model's arguments may be any JSON: only strings are shown (the tool reports the rest).
            step.command = _text_arg(args, "sql") if call["name"] == "psql" else None
            step.path = _text_arg(args, "path") if call["name"] == "read_file" else None
            steps[call["id"]] = step
            result.steps.append(step)
            emit(_action_event(step))
            # the tool thread reads in this turn's cancel scope (contextvars do not cross threads by themselves)
            context = contextvars.copy_context()
            futures[
                self._pool.submit(context.run, self._tools.run, call["id"], call["name"], call["arguments"], result_id)
            ] = call
        outcomes: dict[str, ToolOutcome] = {}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                if self._cancel.is_set():
                    raise Cancelled()
                for fut in finished:
                    outcome = fut.result()
                    outcomes[outcome.call_id] = outcome
                    step = steps[outcome.call_id]
                    step.status = "completed" if outcome.ok else "failed"
                    step.elapsed_ms = round(outcome.elapsed_ms, 2)
                    step.error = outcome.error
                    if outcome.result is not None:
                        assert outcome.result_id is not None  # a psql call, given one above
                        step.rows = outcome.result.row_count
                        step.truncated = outcome.result.truncated
                        self.thread.frames[outcome.result_id] = outcome.result.df
                        result.frames[outcome.result_id] = outcome.result.df
                    else:
                        step.result_id = None
                    emit(_action_event(step))
        except BaseException:
            if self._database is not None:
                self.engine.cancel(scope=self)
            raise
        return [outcomes[c["id"]] for c in calls]

    # -- history ----------------------------------------------------------------------------

    def _append(self, message: dict[str, Any], *, meta: dict | None = None, kind: str | None = None) -> None:
        clean = {k: v for k, v in message.items() if v is not None or k == "content"}
        self.thread.messages.append(clean)
        if self.store is not None and self.thread.id:
            content: dict[str, Any] = {"message": clean}
            if meta:
                content["meta"] = meta
            if kind:
                content["kind"] = kind
            self.store.append(self.thread.id, clean["role"], content)

    def _request_messages(self) -> list[dict[str, Any]]:
        system = {
            "role": "system",
            "content": system_prompt(user=self.user, org=self.org, skills_listing=self.skills.prompt_listing()),
        }
        return [system, *fit_budget(self.thread.messages, self.token_budget)]

    def close(self) -> None:
        self._closed = True
        if self._owns_pool:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._store is not None:
            self._store.close()
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            client.close()  # its sockets now, not when the garbage collector finds it

    # -- confirmations ----------------------------------------------------------------------

    def confirm(self, proposal_id: str, sql: str | None = None, *, follow_up: bool = False,
                on_event: Callable[[Any], None] | None = None) -> Outcome:  # fmt: skip
        """Run a proposed write once, exactly as shown, and report it into the thread."""
        outcome = self.confirmations.confirm(proposal_id, sql)
        self._report(outcome, follow_up, on_event)
        return outcome

    def decline(self, proposal_id: str, *, follow_up: bool = False,
                on_event: Callable[[Any], None] | None = None) -> Outcome:  # fmt: skip
        outcome = self.confirmations.cancel(proposal_id)
        self._report(outcome, follow_up, on_event)
        return outcome

    # -- outcomes made elsewhere ---------------------------------------------------------------

    def _watch(self, proposal_id: str) -> None:
        with self._subscribers_lock:
            self._pending.add(proposal_id)
            if self._poller is not None and self._poller.is_alive():
                return
            self._poller = threading.Thread(target=self._poll_loop, name="nexus-outcomes", daemon=True)
            self._poller.start()

    def _poll_loop(self) -> None:
        import time

        while True:
            time.sleep(self.poll_interval)
            with self._subscribers_lock:
                if not self._pending or self._closed:
                    self._poller = None
                    return
            try:
                self.poll_confirmations()
            except Exception:  # the database is away for a moment: try again next time
                log.debug("polling confirmations failed", exc_info=True)

    def poll_confirmations(self) -> list[ConfirmResolved]:
        """Publish ``confirm.resolved`` for proposals shown here and resolved by another process
        (the CLI, the server, another kernel) since; also runs by itself every ``poll_interval``
        seconds while such proposals are pending. Returns what it published."""
        with self._subscribers_lock:
            pending = sorted(self._pending)
        published = []
        for outcome in self.confirmations.resolved(pending):
            with self._subscribers_lock:
                if outcome.id not in self._pending:
                    continue  # resolved here meanwhile, and published then
                self._pending.discard(outcome.id)
            event = self._resolved_event(outcome)
            self._publish(event)
            published.append(event)
        return published

    def _resolved_event(self, outcome: Outcome) -> ConfirmResolved:
        return ConfirmResolved(
            proposal_id=outcome.id, status=outcome.status, rows_affected=outcome.rows_affected,
            error=outcome.error, conversation_id=self.thread.id,
        )  # fmt: skip

    def _report(self, outcome: Outcome, follow_up: bool, on_event) -> TurnResult | None:
        """Tell every view (``confirm.resolved``), then the thread: the outcome line the agent
        reads, kept with the outcome itself so no view ever parses it back out of prose."""
        with self._subscribers_lock:
            self._pending.discard(outcome.id)
        resolved = self._resolved_event(outcome)
        if on_event is not None:
            try:
                on_event(resolved)
            except Exception:
                log.exception("event callback failed")
        self._publish(resolved)
        meta = {"outcome": outcome.as_dict()}
        if follow_up:
            return self.ask(outcome.report(), on_event=on_event, _meta=meta)
        self._append({"role": "user", "content": outcome.report()}, meta=meta, kind="confirm_action")
        self._append({"role": "assistant", "content": _acknowledge(outcome)}, kind="confirm_action")
        return None

    # -- for the views: the database and the store through the assistant ---------------------

    def read(self, sql: str) -> QueryResult:
        """Run one read statement in this assistant's scope, exactly as the model's queries run (its
        SELECT-only role, row-level security, timeout, row and byte caps): ``%nexus sql``, ``nexus.sql``."""
        return self.engine.read(sql)

    def start_conversation(self, title: str) -> ConversationInfo:
        """Store a new, empty conversation named ``title`` and continue in it: the next turn is its
        first (a server names the conversation before the turn so the turn runs under its lock)."""
        info = self.store.start(title=title, model=self.model)
        self.thread.id = info.id
        return info


def _acknowledge(outcome: Outcome) -> str:
    from ..words import outcome_text
    from .responses import Message

    return Message(type="message", text=outcome_text(outcome.as_dict())).model_dump_json()


def _call_message(call: PreparedCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.sent_arguments}}


def _loose_args(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
        return value if isinstance(value, dict) else {}
    except json.JSONDecodeError:
        return {}


def _text_arg(args: dict[str, Any], name: str) -> str | None:
    value = args.get(name)
    return without_surrogates(value) if isinstance(value, str) else None


def _action_event(step: Step) -> AgentAction:
    return AgentAction(
        action="command" if step.tool == "psql" else "tool_call",
        tool=step.tool,
        status=step.status,
        call_id=step.call_id,
        command=step.command,
        path=step.path,
        result_id=step.result_id if step.status != "started" else None,
        rows=step.rows,
        truncated=step.truncated,
        elapsed_ms=step.elapsed_ms,
        error=step.error,
    )


@dataclass(frozen=True)
class TranscriptPage:
    items: list  # ``transcript.Item``s, oldest first
    total: int  # messages stored in the whole conversation (the last position)
    start: int  # messages stored before this page's first (0: nothing earlier)


def _history_row(m) -> dict[str, Any]:
    return {"seq": m.seq, "role": m.role, "created_at": m.created_at.isoformat(), **m.content}


def _starts_turn(m) -> bool:
    return m.role == "user" and (m.content.get("kind") if isinstance(m.content, dict) else None) != "confirm_refused"


def _card_id(m) -> bool:
    meta = m.content.get("meta") if isinstance(m.content, dict) else None
    response = meta.get("response") if isinstance(meta, dict) else None
    return isinstance(response, dict) and response.get("type") == "confirm" and isinstance(response.get("id"), str)


MODEL_ROLES = ("user", "assistant", "tool", "system")
TAIL_PAGE = 200  # stored messages read per round trip when resuming


def _model_tail(store, conversation_id: str, budget: int) -> list[dict[str, Any]]:
    """The end of a stored conversation the model can still see: pages read backwards until
    ``fit_budget`` would drop everything before them, so resuming a long conversation reads a
    bounded number of messages and sends the model exactly what the whole thread would have."""
    messages: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        page = store.page(conversation_id, before=before, limit=TAIL_PAGE, roles=MODEL_ROLES)
        messages = [m for m in (_model_message(s) for s in page) if m] + messages
        if len(page) < TAIL_PAGE:
            return messages  # the conversation's start
        before = page[0].seq
        start = _beyond_budget(messages, budget)
        if start is not None:
            return messages[start:]


def _model_message(stored) -> dict[str, Any] | None:
    msg = stored.content.get("message") if isinstance(stored.content, dict) else None
    return msg if msg and stored.role in MODEL_ROLES else None


def _beyond_budget(messages: list[dict[str, Any]], budget: int) -> int | None:
    """The latest turn start from which the messages, each old tool result shrunk as
    ``fit_budget`` would, exceed ``budget``: ``fit_budget`` drops everything before it, always."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    total = 0
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        if i < last_user and msg.get("role") == "tool" and len(msg.get("content") or "") > 200:
            msg = {**msg, "content": _shrink_tool_content(msg.get("content") or "")}
        total += _size(msg)
        if total > budget and msg.get("role") == "user" and i <= last_user:
            return i
    return None


def _size(message: dict[str, Any]) -> int:
    return len(json.dumps(message, ensure_ascii=False, default=str)) // 4 + 4


def fit_budget(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """Keep a long thread inside ``budget`` tokens: shrink old tool results first, then drop
    the oldest whole turns; the latest turn is always kept intact. One pass: a resumed thread
    may hold thousands of messages."""
    sizes = [_size(m) for m in messages]
    total = sum(sizes)
    if total <= budget:
        return messages
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    out = list(messages)
    for i, msg in enumerate(out[:last_user]):
        if total <= budget:
            break
        if msg.get("role") == "tool" and len(msg.get("content") or "") > 200:
            shrunk = {**msg, "content": _shrink_tool_content(msg.get("content") or "")}
            size = _size(shrunk)
            total += size - sizes[i]
            out[i], sizes[i] = shrunk, size
    starts = [i for i, m in enumerate(out) if m.get("role") == "user"]
    cut, k = 0, 1
    while total > budget and k < len(starts):  # drop everything before the next turn's start
        total -= sum(sizes[cut : starts[k]])
        cut, k = starts[k], k + 1
    return out[cut:]


def _shrink_tool_content(content: str) -> str:
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        return content[:160] + "… (older tool output shortened)"
    if isinstance(data, dict) and "result_id" in data:
        keep = {k: data[k] for k in ("result_id", "row_count", "truncated") if k in data}
        keep["columns"] = [c.get("name") for c in data.get("columns", []) if isinstance(c, dict)][:30]
        keep["note"] = "older preview removed to save context; the full result is still in the notebook"
        return json.dumps(keep, ensure_ascii=False)
    return json.dumps({"note": "older tool output removed to save context"})
