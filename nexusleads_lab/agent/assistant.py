"""The in-kernel agent's loop: one ``Assistant`` answering questions as ``Turn``s.

A turn streams a Chat Completion with the tools, runs the tool calls it asks for (in parallel
when it asks for several), feeds the bounded results back, and repeats until the model answers;
the answer is parsed into a response, and every message is stored as it completes. Views watch
the turn (``agent.turn``) or subscribe to every event (``agent.bus``); nothing here renders.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ..config import current_org, current_user
from ..db.frames import Frames
from ..db.schema import ALL_ORGS
from .bus import EventBus, EventCallback
from .completion import prepare_calls
from .confirm import Confirmations, Outcome, Proposal, ProposalError
from .conversations import Conversations, Thread
from .events import AgentText, ConfirmResolved, ErrorEvent, SessionId, TurnCompleted
from .history import MessageSizes, fit_budget
from .model_call import complete
from .model_errors import ModelAnswerError, empty_answer, stream_error, turn_failure, unknown_tools_note
from .outcomes import OutcomeWatcher
from .parts import Parts
from .prompt import system_prompt
from .provider import ModelSettings
from .responses import Confirm, Message, ResolvedResponse, parse_response
from .tool_calls import run_calls
from .tools import TOOL_NAMES, ToolRunner
from .transcript import Item, TranscriptPage
from .turn import Cancelled, Turn, TurnResult

if TYPE_CHECKING:  # pragma: no cover
    from openai import OpenAI

    from ..db.database import Database
    from ..db.engine import Engine, QueryResult
    from ..db.store import ConversationInfo, ConversationStore
    from .skills import SkillSet

log = logging.getLogger(__name__)

MAX_STEPS = 12
MAX_REFUSALS = 1  # refused proposals sent back to the model per turn before the person sees one
TOKEN_BUDGET = 48_000  # rough tokens of history sent per request (chars / 4)

__all__ = ["MAX_STEPS", "TOKEN_BUDGET", "Assistant", "Cancelled", "Thread", "Turn", "TurnResult", "fit_budget"]


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
        turn_pool: Executor | None = None,
        pooled_store: bool = False,
    ) -> None:
        """``tool_pool`` (a server's, shared by its sessions; default: four threads of this
        assistant's own) runs the tool calls; ``turn_pool`` runs the turns ``start`` starts
        (default: a thread each); ``pooled_store`` borrows the conversation store's connections
        from the database's bounded per-process pool instead of holding one."""
        self.settings = ModelSettings.from_env(model)
        org = org or current_org()
        self.org: str | None = None if org in (None, ALL_ORGS) else org  # None: every organization
        self.user = user or current_user()
        self.max_steps = max_steps
        self.token_budget = token_budget
        self._parts = Parts(
            org=self.org,
            user=self.user,
            settings=lambda: self.settings,
            database=database,
            client=client,
            skills=skills,
            persist=persist,
            pooled_store=pooled_store,
        )
        self._conversations = Conversations(lambda: self.store, lambda: self.token_budget)
        self.last_proposal: Proposal | None = None
        self._bus = EventBus()
        self._outcomes = OutcomeWatcher(lambda: self.confirmations, self._bus.publish, lambda: self.thread.id)
        self._turn_lock = threading.Lock()  # one turn at a time per assistant
        self._turns: set[Turn] = set()  # started and not over (waiting for the lock too)
        self._turns_lock = threading.Lock()
        self._turn_runner = turn_pool
        self._owns_pool = tool_pool is None
        self._pool: Executor = tool_pool or ThreadPoolExecutor(max_workers=4, thread_name_prefix="nexus-tool")
        self._tools = ToolRunner(lambda: self.engine, lambda: self.skills)
        self._sizes = MessageSizes()  # the thread's message sizes, for fitting every request

    # -- its parts (``agent.parts``) and conversations (``agent.conversations``) -------------

    @property
    def model(self) -> str:
        return self.settings.model

    @model.setter
    def model(self, value: str) -> None:
        self.settings = ModelSettings(**{**self.settings.__dict__, "model": value})

    @property
    def model_mode(self) -> str:
        """ "live", "replay" or "unconfigured": what a view can promise (a client handed in, a server's
        or a test's, answers whatever the environment says)."""
        mode = self.settings.mode
        return "live" if mode == "unconfigured" and self._parts.given_client is not None else mode

    @property
    def database(self) -> Database:
        return self._parts.database

    @property
    def engine(self) -> Engine:
        """The engine of this assistant's scope: its SQL reads and writes as that scope's roles."""
        return self._parts.engine

    @property
    def scope_label(self) -> str:
        from ..db.guard import describe_scope

        return describe_scope(self.org)

    @property
    def skills(self) -> SkillSet:
        return self._parts.skills

    @property
    def store(self) -> ConversationStore | None:
        return self._parts.store

    @property
    def confirmations(self) -> Confirmations:
        return self._parts.confirmations

    def client(self) -> OpenAI:
        return self._parts.client()

    @property
    def thread(self) -> Thread:
        return self._conversations.thread

    @property
    def frames(self) -> Frames:
        """Every DataFrame of this conversation, by result id."""
        return self.thread.frames

    def new_thread(self) -> None:
        self._conversations.new_thread()

    def conversations(self) -> list[ConversationInfo]:
        return self._conversations.listing()

    def resume(self, conversation_id: str) -> None:
        """Continue a stored conversation (after a kernel restart too)."""
        self._conversations.resume(conversation_id)

    def conversation_turn(self, cancelled: Callable[[], bool] | None = None) -> AbstractContextManager[None]:
        """Hold the current conversation's turn lease for the block (``db.lease``): one turn at a
        time per stored conversation, whichever assistant or process asks. If somebody else added
        to the conversation since this assistant last saw it, the thread is reloaded first (its
        DataFrames kept), so this turn continues after theirs. Waiting stops when ``cancelled()``
        says so (default: at the next ``cancel``)."""
        return self._conversations.lease(cancelled)

    def history(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Stored messages of a conversation (default: the current one), oldest first."""
        return self._conversations.history(conversation_id)

    def transcript(self, conversation_id: str | None = None) -> list[Item]:
        """A stored conversation (default: the current one) as typed items: questions, answers
        with their steps and resolved responses, outcomes (``agent.transcript``). Every view
        that shows a stored conversation renders from this."""
        return self._conversations.transcript(conversation_id)

    def transcript_page(self, conversation_id: str, *, limit: int, before: int | None = None) -> TranscriptPage:
        """The latest whole turns of a stored conversation before message position ``before``
        (``agent.transcript.page``: read backwards, the cost follows the page)."""
        return self._conversations.page(conversation_id, limit=limit, before=before)

    def rename(self, conversation_id: str, title: str) -> None:
        self._conversations.rename(conversation_id, title)

    def delete(self, conversation_id: str) -> None:
        self._conversations.delete(conversation_id)

    def start_conversation(self, title: str, *, lease: bool = False) -> ConversationInfo:
        """Store a new, empty conversation named ``title`` and continue in it: the next turn is its
        first (a server names the conversation before the turn so the turn runs under its lock).
        ``lease``: that turn follows at once, so its lease is taken with the conversation."""
        return self._conversations.start(title, self.model, lease=lease)

    # -- the event stream -------------------------------------------------------------------

    def subscribe(self, callback: EventCallback, *, weak: bool = False) -> Callable[[], None]:
        """Be given every event of every turn of this assistant, whoever asked (a cell, the panel,
        the CLI, code), in order, on the thread running the turn, and a ``confirm.resolved`` for
        every confirmation outcome (``agent.bus``). Returns the call that unsubscribes. ``weak``:
        a bound method is held weakly, so a view that goes away is not kept alive."""
        return self._bus.subscribe(callback, weak=weak)

    @property
    def subscribers(self) -> int:
        """How many views follow this assistant."""
        return len(self._bus)

    # -- asking ---------------------------------------------------------------------------

    def start(
        self, question: str, *, origin: str, model: str | None = None, on_event: EventCallback | None = None
    ) -> Turn:
        """Start answering ``question`` in the current thread and return its ``Turn`` at once (its
        ``turn.started`` published). The turn runs on this assistant's turn runner, after any turn
        running; ``model`` answers this turn only; ``origin`` says who asked ("cell", "panel",
        "cli", "server", "code"). Its events go to every subscriber and, as sugar, ``on_event``."""
        return self._launch(self._new_turn(question, origin=origin, model=model, on_event=on_event, watched=True))

    def _launch(self, turn: Turn) -> Turn:
        run = contextvars.copy_context().run  # the caller's context (a cancel scope, a request's ids)
        if self._turn_runner is not None:
            self._turn_runner.submit(run, self._run, turn)
        else:
            threading.Thread(target=run, args=(self._run, turn), name="nexus-turn", daemon=True).start()
        return turn

    def ask(
        self, question: str, *, on_event: EventCallback | None = None, origin: str = "code", model: str | None = None
    ) -> TurnResult:
        """``start(...).result()``, run on the calling thread: one question answered, its result."""
        turn = self._new_turn(question, origin=origin, model=model, on_event=on_event, watched=False)
        self._run(turn)
        return turn.result()

    def cancel(self) -> None:
        """Stop every turn of this assistant, running or waiting to run (safe from any thread)."""
        self._conversations.stop_waiting()
        with self._turns_lock:
            turns = list(self._turns)
        for turn in turns:
            turn.cancel()

    def _new_turn(
        self,
        question: str,
        *,
        origin: str,
        model: str | None,
        on_event: EventCallback | None,
        watched: bool,
        reports: Outcome | None = None,
    ) -> Turn:
        settings = self.settings if not model else ModelSettings(**{**self.settings.__dict__, "model": model})
        turn = Turn(
            question,
            origin=origin,
            settings=settings,
            publish=self._bus.publish,
            on_event=on_event,
            reports=reports,
            watched=watched,
        )
        with self._turns_lock:
            self._turns.add(turn)
        turn.begin()
        return turn

    def _run(self, turn: Turn) -> None:
        """The turn, start to end: every failure becomes its ``error`` event, never an exception."""
        from ..db.engine import CANCEL_SCOPE

        scope = CANCEL_SCOPE.set(turn)  # this turn's reads are this turn's (see Turn.cancel)
        turn.interruptible(lambda: self._stop_queries(turn))
        try:
            # The lease (if the conversation is stored) spans the turn and its failure note alike.
            with self._turn_lock, contextlib.ExitStack() as leased:
                try:
                    turn.check()
                    if not isinstance(turn.question, str) or not turn.question.strip():
                        raise ValueError("Ask a question: the message is empty.")
                    client = self.client()
                    leased.enter_context(self.conversation_turn(lambda: turn.cancelled))
                    self._loop(turn, client)
                except (Cancelled, KeyboardInterrupt) as exc:
                    turn.cancel()
                    self._fail(turn, exc)
                except Exception as exc:
                    log.debug("turn failed", exc_info=True)
                    self._fail(turn, exc)
        finally:
            CANCEL_SCOPE.reset(scope)
            with self._turns_lock:
                self._turns.discard(turn)
            turn.finish()

    def _stop_queries(self, turn: Turn) -> None:
        if self._parts.has_database:  # none made yet: no query can be running
            self.engine.cancel(scope=turn)  # this turn's queries only: the engine may be shared

    def _fail(self, turn: Turn, exc: BaseException) -> None:
        result = turn.progress
        result.cancelled = turn.cancelled
        # the key the client holds too (a client given to the assistant may carry one the settings lack)
        keys = (turn.settings.api_key, getattr(self._parts.given_client, "api_key", None))
        message = result.error = turn_failure(exc, cancelled=result.cancelled, secrets=keys)
        result.stop_clock()
        turn.emit(ErrorEvent(turn_id=turn.id, message=message, cancelled=result.cancelled or None))
        self._conversations.record_failure(message, cancelled=result.cancelled, elapsed_ms=result.elapsed_ms)

    def _loop(self, turn: Turn, client) -> None:
        result = turn.progress
        if self.thread.id is None and self.store is not None:
            self.thread.id = self.store.create(title=turn.question, model=turn.model)
        result.thread_id = self.thread.id
        if self.thread.id:
            turn.emit(SessionId(turn_id=turn.id, session_id=self.thread.id))
        for skill in self.skills.mentions(turn.question):
            self._conversations.append(
                {"role": "system", "content": f"Skill `{skill.name}` ({skill.path}):\n\n{skill.body()}"}
            )
        self._conversations.record_question(turn.question, reports=turn.reports)

        refusals = 0
        prompt = self._system_prompt()  # one per turn: every request of it sends the same
        for _ in range(self.max_steps):
            completion = complete(turn, client, self._request_messages(prompt))
            for k, v in completion.usage.items():
                result.usage[k] = result.usage.get(k, 0) + v
            if completion.error is not None:
                raise ModelAnswerError(stream_error(turn.settings, completion.error))
            if completion.empty:
                raise ModelAnswerError(empty_answer(turn.settings, completion))
            if not completion.calls:
                if self._finish(turn, completion.text, completion.shown, retry=refusals < MAX_REFUSALS):
                    return
                refusals += 1
                continue
            calls = prepare_calls(completion, TOOL_NAMES)
            outcomes = run_calls(
                turn,
                calls,
                thread=self.thread,
                runner=self._tools,
                pool=self._pool,
                stop_queries=lambda: self._stop_queries(turn),
            )
            known = [(c, o) for c, o in zip(calls, outcomes) if c.known]
            if known:
                self._conversations.record_calls(completion.text, known)
            unknown = [o for c, o in zip(calls, outcomes) if not c.known]
            if unknown:
                # A call to a tool that does not exist cannot be stored as a call (a strict server
                # refuses a history naming tools it was not given): the model hears it as a note.
                self._conversations.append({"role": "system", "content": unknown_tools_note(unknown)})
        raise ValueError(f"The agent stopped after {self.max_steps} steps without an answer; ask a narrower question.")

    def _finish(self, turn: Turn, text: str, streamed: str, *, retry: bool) -> bool:
        """Resolve and store the answer (``streamed``: what its streaming display showed); False when
        a refused proposal goes back to the model."""
        result = turn.progress
        parsed = parse_response(text, self.thread.frames)
        result.text = text
        result.notes = list(parsed.notes)
        shown: ResolvedResponse
        if isinstance(parsed.response, Confirm):
            try:
                result.proposal = self.confirmations.propose(
                    self.thread.id, parsed.response.title, parsed.response.summary, parsed.response.sql
                )
            except ProposalError as exc:
                # Nothing ran. The model hears why and may correct itself; after that the person does.
                if retry:
                    self._conversations.record_refusal(text, exc.paragraph())
                    return False
                shown = Message(
                    type="message", text=f"The proposed change was refused and nothing ran: {exc.paragraph()}"
                )
            else:
                shown = result.proposal.resolved()
                self.last_proposal = result.proposal
                if not result.proposal.stale:
                    self._outcomes.watch(result.proposal.id)
        else:
            shown = parsed.response
        result.response = shown
        response = result.response_dict()
        elapsed_ms = result.stop_clock()
        self._conversations.record_answer(
            text, {"response": response, "notes": result.notes, "elapsed_ms": elapsed_ms, "usage": dict(result.usage)}
        )
        turn.emit(AgentText(turn_id=turn.id, text=streamed, status="done"))
        turn.emit(
            TurnCompleted.answered(
                turn_id=turn.id,
                text=text,
                usage=result.usage,
                elapsed_ms=elapsed_ms,
                response=shown,
                notes=result.notes,
                # what was stored is the wire's too, but for a proposal (stored as the product keeps it)
                response_json=response if result.proposal is None else None,
            )
        )
        return True

    # -- history ----------------------------------------------------------------------------

    def _system_prompt(self) -> str:
        return system_prompt(user=self.user, org=self.org, skills_listing=self.skills.prompt_listing())

    def _request_messages(self, prompt: str) -> list[dict[str, Any]]:
        system = {"role": "system", "content": prompt}
        return [system, *fit_budget(self.thread.messages, self.token_budget, self._sizes)]

    def close(self) -> None:
        self._outcomes.closed = True
        if self._owns_pool:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._parts.close()

    # -- confirmations ----------------------------------------------------------------------

    def confirm(
        self,
        proposal_id: str,
        sql: str | None = None,
        *,
        follow_up: bool = False,
        on_event: EventCallback | None = None,
    ) -> Outcome:
        """Run a proposed write once, exactly as shown, and report it into the thread."""
        outcome = self.confirmations.confirm(proposal_id, sql)
        self._report(outcome, follow_up, on_event)
        return outcome

    def confirm_and_start(self, proposal_id: str, sql: str | None = None, *, origin: str) -> tuple[Outcome, Turn]:
        """``confirm(..., follow_up=True)`` for a view: the write runs here, once, exactly as shown;
        the turn that reports it to the model starts as ``start`` starts one and comes back at once."""
        outcome = self.confirmations.confirm(proposal_id, sql)
        self._tell(outcome, None)
        turn = self._new_turn(outcome.report(), origin=origin, model=None, on_event=None, watched=True, reports=outcome)
        return outcome, self._launch(turn)

    def decline(self, proposal_id: str, *, follow_up: bool = False, on_event: EventCallback | None = None) -> Outcome:
        outcome = self.confirmations.cancel(proposal_id)
        self._report(outcome, follow_up, on_event)
        return outcome

    @property
    def poll_interval(self) -> float:
        """Seconds between looks for outcomes made by other processes (``agent.outcomes``)."""
        return self._outcomes.interval

    @poll_interval.setter
    def poll_interval(self, seconds: float) -> None:
        self._outcomes.interval = seconds

    def poll_confirmations(self) -> list[ConfirmResolved]:
        """Publish ``confirm.resolved`` for proposals shown here and resolved by another process
        (the CLI, the server, another kernel) since; also runs by itself every ``poll_interval``
        seconds while such proposals are pending. Returns what it published."""
        return self._outcomes.poll()

    def _report(self, outcome: Outcome, follow_up: bool, on_event: EventCallback | None) -> TurnResult | None:
        """Tell every view (``confirm.resolved``), then the thread: the outcome line the agent
        reads, kept with the outcome itself so no view ever parses it back out of prose."""
        self._tell(outcome, on_event)
        if follow_up:
            turn = self._new_turn(
                outcome.report(), origin="code", model=None, on_event=on_event, watched=False, reports=outcome
            )
            self._run(turn)
            return turn.result()
        self._conversations.record_outcome(outcome, acknowledged=True)
        return None

    def _tell(self, outcome: Outcome, on_event: EventCallback | None) -> None:
        resolved = self._outcomes.resolved(outcome)
        if on_event is not None:
            try:
                on_event(resolved)
            except Exception:
                log.exception("event callback failed")
        self._bus.publish(resolved)

    # -- for the views: the database and the store through the assistant ---------------------

    def read(self, sql: str) -> QueryResult:
        """Run one read statement in this assistant's scope, exactly as the model's queries run (its
        SELECT-only role, row-level security, timeout, row and byte caps): ``%nexus sql``, ``nexus.sql``."""
        return self.engine.read(sql)
