"""The per-kernel session: one ``Assistant`` and every DataFrame it produced, shared by the
``%nexus`` magic and the chat panel.

In a notebook the session is the ``nexus`` variable::

    nexus.ask("lead funnel by status")   # live steps, then the dashboard
    nexus.frames["r1"]                   # every query of the session, by result id
    nexus.df                             # the last one (also ``_nexus_df``)

Result ids (``r1``, ``r2`` ...) are numbered per conversation, as the model sees them. When
the conversation changes (``reset``, ``resume``, ``--new``), the previous conversation's
frames stay available under ``"<conversation>:<id>"`` (e.g. ``"3f2c1a9e:r1"``) so a new
``r1`` never silently replaces an old one. ``%nexus sql`` results are ``sql1``, ``sql2`` ...

Loaded as an extension, the session remembers its identity per notebook (``RememberedIdentity``):
the org, the user, the open conversation and whether the chat panel was open, so a kernel
restart followed by ``%load_ext nexusleads_lab`` comes back where it was.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import Identity, ModelEnv, RememberedIdentity, replay_from, resolve_identity

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .agent.assistant import Assistant, TurnResult

_RESULT_ID = re.compile(r"^r\d+$")
log = logging.getLogger(__name__)


class NexusError(Exception):
    """A problem the person can fix: IPython shows this one paragraph instead of a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31mnexus:\x1b[0m {self}"]


class TurnFailed(NexusError):
    """A shown turn ended in an error: the cell fails, so "Run All" stops at the question that failed."""

    def __init__(self, message: str, result: TurnResult) -> None:
        super().__init__(message)
        self.result = result


class NexusSession:
    """State of one kernel: the assistant, the frames, the display options."""

    def __init__(self, *, assistant: Assistant | None = None, shell=None, options=None) -> None:
        self._assistant = assistant
        self._factory: Callable[[], Assistant] | None = None
        self.shell = shell
        self.options = options  # a magic.Nexus configurable, or None for the defaults
        self.frames: dict[str, pd.DataFrame] = {}
        self.last_df: pd.DataFrame | None = None
        self._frames_thread: str | None = None
        self._sql_count = 0
        self._lock = threading.RLock()
        self.memory: RememberedIdentity | None = None  # set by the extension: identity survives restarts
        self.identity: Identity | None = None  # who the assistant asks as, and where that came from
        self._remembering = False  # only for an assistant this session built from that identity
        self.panel_reopened = False  # the extension reopens a remembered panel once per kernel

    # -- the assistant ----------------------------------------------------------------------

    @property
    def assistant(self) -> Assistant:
        """The session's ``Assistant``, built on first use (model from ``%config Nexus.model``)."""
        with self._lock:
            if self._assistant is None:
                if self._factory is not None:
                    self._assistant = self._factory()
                else:
                    from .agent.assistant import Assistant

                    remembered = self.memory.load() if self.memory else None
                    self.identity = resolve_identity(remembered)
                    self._replay_as_before(remembered)
                    self._assistant = Assistant(
                        model=self._option("model", None) or None, org=self.identity.org, user=self.identity.user
                    )
                    self._come_back()
            return self._assistant

    def _replay_as_before(self, remembered: dict | None) -> None:
        """A notebook that replayed its cassette before a restart replays it again, so a panel the
        extension reopens can answer before the notebook's first cell runs again. Only when the
        kernel names no model of its own (a key, a server or a replay in its environment)."""
        if not remembered or self.memory is None or self.memory.notebook is None:
            return
        if ModelEnv.from_env().names_a_model:
            return
        cassette = remembered.get("replay")
        if isinstance(cassette, str) and os.path.isfile(cassette):
            replay_from(cassette)

    def _come_back(self) -> None:
        """Continue the conversation this notebook had open before the restart, and remember who asks."""
        if self.memory is None:
            return
        self._remembering = True
        remembered = self.memory.load()
        assistant = self._assistant
        assert assistant is not None  # called just after the assistant is made
        same_person = remembered.get("user") == assistant.user and remembered.get("org") == assistant.org
        # Without a notebook path (a console, nbclient) there is no "same place" to come back to: a
        # re-run starts as a fresh kernel did, so its saved outputs do not name another run's conversation.
        conversation = remembered.get("conversation_id") if same_person and self.memory.notebook else None
        if conversation:
            try:
                assistant.resume(conversation)
                self._frames_thread = conversation
            except Exception:  # deleted meanwhile, or the database is away: start fresh, say nothing
                log.info("could not continue conversation %s", conversation, exc_info=True)
                conversation = None
        settings = getattr(assistant, "settings", None)
        replay = os.path.abspath(settings.replay) if settings is not None and settings.mode == "replay" else None
        self.memory.update(user=assistant.user, org=assistant.org, conversation_id=conversation, replay=replay)

    def remember(self, **fields: Any) -> None:
        """Note a change of the conversation or the panel (written only when something changed)."""
        if self._remembering and self.memory is not None:
            self.memory.update(**fields)

    def attach(self, assistant: Assistant | None = None, *, factory: Callable[[], Assistant] | None = None) -> None:
        """Use this assistant (or build one with ``factory`` on first use) from now on.

        The seam for tests and for embedding: e.g. an ``Assistant(database=db, client=...)``
        pointed at a scripted model. The frames collected so far are kept.
        """
        with self._lock:
            self._assistant = assistant
            self._factory = factory
            self._remembering = False
            self.identity = None

    @property
    def df(self) -> pd.DataFrame | None:
        """The last DataFrame of the session (same as ``_nexus_df``)."""
        return self.last_df

    @property
    def thread_id(self) -> str | None:
        return self._assistant.thread.id if self._assistant is not None else None

    # -- asking -----------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        new: bool = False,
        thread: str | None = None,
        out: str | None = None,
        model: str | None = None,
        show: bool = True,
        show_sql: bool | None = None,
    ) -> TurnResult:
        """Ask in the current conversation; with ``show`` the cell shows the turn live, then the answer.

        ``new`` starts a fresh conversation, ``thread`` continues a stored one, ``out`` binds
        the turn's last DataFrame to that name in the notebook, ``model`` overrides the model
        for this turn only.
        """
        assistant = self.assistant
        if new:
            self.reset()
        if thread:
            self.resume(thread)
        if show:
            from .ui.turn import CellTurn

            sql_shown: bool = self._option("show_sql", False) if show_sql is None else show_sql
            live = CellTurn.start(
                question,
                show_sql=sql_shown,
                show_steps=self._option("show_steps", True),
                rate=self._option("updates_per_second", None),
            )
            try:
                result = live.watch(assistant.start(question, origin="cell", model=model))
            except Exception as exc:  # a bug, not a turn error (those come back in the result)
                live.abandon(f"The turn failed unexpectedly: {type(exc).__name__}: {exc}")
                raise
        else:
            result = assistant.ask(question, model=model)
        self.record(result, out=out)
        if show:
            from .ui.render import render_result

            failed = bool(result.error and result.response is None and not result.cancelled)
            parts = (
                []
                if failed
                else render_result(
                    result,
                    assistant=assistant,
                    show_sql=sql_shown,
                    interactive=self._option("interactive_charts", True),
                )
            )
            live.finish(result, parts)
            if failed:
                raise TurnFailed(result.error or "", result)
        return result

    def sql(self, query: str, *, out: str | None = None, show: bool = True) -> pd.DataFrame:
        """Run a read query straight on the database (no model); the DataFrame joins ``frames``."""
        result = self.assistant.read(query)  # in the assistant's scope, as the model's queries
        with self._lock:
            self._sql_count += 1
            key = f"sql{self._sql_count}"
            self.frames[key] = result.df
        self._publish(result.df, out)
        if show:
            from .ui.render import display_query_result

            display_query_result(result, key)
        return result.df

    def eval(self, suite: str | None = None, *, model: str | None = None, show: bool = True) -> pd.DataFrame:
        """How well the model answers on this data: ``nexus-lab eval`` in the notebook. Each question
        of ``suite`` (a YAML or JSON file; default: the bundled demo suite) is asked in a fresh,
        unstored conversation with this session's model, database and scope, and scored against its
        gold SQL. Returns one row per question (name, question, status, passed, reason, sql, tokens,
        seconds), the totals in ``.attrs``; this session's conversation and frames are untouched."""
        from .agent.provider import ModelConfigError
        from .db.errors import QueryError
        from .eval.runner import eval_assistant, evaluate
        from .eval.suite import SuiteError, load_suite

        try:
            loaded = load_suite(suite)
            assistant = eval_assistant(self.assistant, model=model)
        except (SuiteError, ModelConfigError) as exc:
            raise NexusError(str(exc)) from None
        except QueryError as exc:  # the database cannot be reached
            raise NexusError(exc.paragraph()) from None
        from tqdm.auto import tqdm

        bar = tqdm(total=len(loaded.questions), desc="eval", unit="question", disable=not show)
        try:
            report = evaluate(loaded, assistant, on_item=lambda item: bar.update(1), origin="code")
        except (SuiteError, ModelConfigError) as exc:
            raise NexusError(str(exc)) from None
        except QueryError as exc:  # the database, not the suite
            raise NexusError(exc.paragraph()) from None
        finally:
            bar.close()
            assistant.close()
        if report.interrupted:
            print(f"nexus: interrupted after {len(report.items)} of {report.total} questions; the frame holds those.")
        return report.to_frame()

    # -- conversations ----------------------------------------------------------------------

    def confirm(self, proposal_id: str | None = None, *, cancel: bool = False):
        """Confirm (or with ``cancel`` decline) a proposed write, by default the latest one, exactly
        as it was shown: the code path of the card's buttons, for scripts and re-runnable notebooks."""
        assistant = self.assistant
        proposal = None
        if proposal_id is None:
            proposal = assistant.last_proposal
            if proposal is None:
                raise NexusError("There is no proposed change to confirm in this session.")
            proposal_id = proposal.id
        if cancel:
            return assistant.decline(proposal_id)
        return assistant.confirm(proposal_id, proposal.sql if proposal is not None else None)

    def reset(self) -> None:
        """Start a new conversation (the frames so far stay, renamed by their conversation)."""
        assistant = self.assistant
        self._archive_frames()
        assistant.new_thread()
        self.remember(conversation_id=None)

    def resume(self, conversation_id: str) -> str:
        """Continue a stored conversation; a unique prefix of its id is enough. Returns the full id."""
        assistant = self.assistant
        full = self.find_conversation(conversation_id)
        self._archive_frames()
        assistant.resume(full)
        self.remember(conversation_id=full)
        return full

    def find_conversation(self, prefix: str) -> str:
        from .db.store import NotFound

        prefix = prefix.strip()
        if len(prefix) >= 36:
            return prefix
        matches = [c.id for c in self.assistant.conversations() if c.id.startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NotFound(f"No conversation starts with {prefix!r}; `%nexus history` lists yours.")
        raise NotFound(f"{len(matches)} conversations start with {prefix!r}; give more of the id.")

    # -- frames -----------------------------------------------------------------------------

    def record(self, result: TurnResult, *, out: str | None = None) -> None:
        """Add a turn's DataFrames to the session and the notebook (the chat panel calls this too)."""
        with self._lock:
            if result.thread_id and self._frames_thread not in (None, result.thread_id):
                self._archive_frames()
            if result.thread_id:
                self._frames_thread = result.thread_id
                self.remember(conversation_id=result.thread_id)
            ordered = sorted(result.frames.items(), key=lambda kv: _result_number(kv[0]))
            self.frames.update(ordered)
        # The last query is the one asked last (the highest result id), not the one that finished last.
        df = ordered[-1][1] if ordered else None
        if df is not None:
            self._publish(df, out)
        elif out and not result.error:
            print(f"nexus: no query ran in this turn, so {out!r} was not set.")

    def _archive_frames(self) -> None:
        with self._lock:
            tag = (self._frames_thread or "earlier")[:8]
            for key in [k for k in self.frames if _RESULT_ID.match(k)]:
                self.frames[f"{tag}:{key}"] = self.frames.pop(key)
            self._frames_thread = None

    def _publish(self, df: pd.DataFrame, out: str | None) -> None:
        self.last_df = df
        if self.shell is None:
            return
        names = {"_nexus_df": df}
        if out:
            names[out] = df
        self.shell.push(names, interactive=False)
        self.shell.user_ns.setdefault("nexus", self)

    # -- helpers ----------------------------------------------------------------------------

    def _option(self, name: str, default: Any) -> Any:
        return getattr(self.options, name, default) if self.options is not None else default

    def __repr__(self) -> str:
        thread = self.thread_id[:8] if self.thread_id else "new"
        frames = ", ".join(self.frames) or "none"
        return f"<NexusSession conversation={thread} frames: {frames}>"


def _result_number(result_id: str) -> tuple[int, str]:
    digits = result_id[1:] if _RESULT_ID.match(result_id) else ""
    return (int(digits) if digits else 0, result_id)


_session: NexusSession | None = None
_session_lock = threading.Lock()


def get_session() -> NexusSession:
    """The kernel's session (created on first use, bound to the running IPython shell if any)."""
    global _session
    with _session_lock:
        if _session is None:
            shell = None
            try:
                from IPython import get_ipython

                shell = get_ipython()
            except ImportError:  # pragma: no cover - IPython is a dependency
                pass
            _session = NexusSession(shell=shell)
        return _session


def set_session(session: NexusSession | None) -> None:
    """Replace the kernel's session (tests; ``None`` drops it so the next call builds a new one)."""
    global _session
    with _session_lock:
        _session = session
