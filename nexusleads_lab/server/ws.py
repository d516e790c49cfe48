"""``/ws/codex``: the original bridge's WebSocket protocol over one ``Assistant`` per session.

Browser → server: ``chat {message, sessionId?}``, ``reset {sessionId}``, ``stop {sessionId}``.
Server → browser: ``session.id``, ``turn.started`` (at once on receipt), ``agent.action``,
``agent.text {text, status}``, ``turn.completed {text, usage}``, ``error {message}``, and beside
them ``confirm.resolved``. Turns run on the app's bounded pool of turn threads; their events come
back onto the event loop through one outbox per connection (a batch per wake-up of the loop), so
the loop never waits for the model or the database. A session folds its running turn with
``agent.live.TurnState`` and sends the streaming text through the one ``Throttle``, as every live
view does. A chat message ``CONFIRM_ACTION: <id>`` is the person's click (``CANCEL_ACTION: <id>``
declines).

One turn at a time per conversation, however many connections name it (a reconnect storm),
on any worker or replica: an asyncio lock per conversation id in this process, and the
conversation's turn lease in the store across processes (``db.lease``, taken by the assistant).
A turn that follows another connection's (or another worker's) turn reloads the conversation from
the store first, so it continues after that turn instead of beside it.

``admit`` runs before a socket is accepted (``/ws/panel`` too): the token, the organization and
the user's share of sockets; a refusal is an HTTP status, never an open socket. A chat beyond the
user's share of turns (``quota``) is one ``error``, before any session or conversation is made.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import WebSocket
from fastapi.responses import JSONResponse

from .. import fastjson
from ..agent.assistant import Assistant, Cancelled
from ..agent.events import AgentText, Event, TurnCompleted, TurnStarted
from ..agent.live import Throttle, TurnState
from ..db.errors import QueryError
from ..safetext import without_surrogates
from ..words import outcome_text
from .auth import Identity, Unauthorized
from .connections import WRITE_TEXTS
from .errors import failure_text, incident, query_error_text
from .tenancy import UnknownOrganization

log = logging.getLogger(__name__)

MAX_MESSAGE = 1024 * 1024  # characters of one frame the protocol reads (the transport allows more)
MAX_CONVERSATIONS = 32  # conversations one connection keeps open; the longest idle one is let go
CLICK = re.compile(r"^\s*(CONFIRM|CANCEL)_ACTION:\s*(\S+)\s*$")
T = TypeVar("T")


def _readable(value: Any) -> Any:
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, dict):
        return {without_surrogates(k): _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value


def read_frame(text: str) -> Any:
    """A frame's JSON, each lone surrogate (a ``\\ud800`` escape, which no encoder or database
    takes) as U+FFFD. ``ValueError`` if it is not JSON, ``RecursionError`` if nested too deeply
    (``fastjson.loads``: ``json``'s answers and errors)."""
    return _readable(fastjson.loads(text))


class ConversationLocks:
    """One asyncio lock per conversation id, shared by every connection of the process; a lock
    lives while somebody holds or waits for it. ``adopt`` (from any thread) names a lock already
    held: a new conversation's, taken before the store gave its id."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._guard = threading.Lock()

    def get(self, conversation_id: str) -> asyncio.Lock:
        with self._guard:
            lock = self._locks.get(conversation_id)
            if lock is None:
                lock = self._locks[conversation_id] = asyncio.Lock()
            return lock

    def adopt(self, conversation_id: str, lock: asyncio.Lock) -> None:
        with self._guard:
            self._locks[conversation_id] = lock


def store_failure(exc: Exception) -> str:
    return failure_text("the conversation store failed", exc)


Item = tuple["Session | None", "Event | dict[str, Any]"]


class Outbox:
    """A connection's events and frames on their way to its socket, in order, each batch handed
    to ``deliver`` on the event loop. The turn threads hand theirs over in batches: one wake-up of
    the loop for whatever a thread adds before the loop takes it (a wake-up per event was a GIL
    hand-over and a pass of the loop each, ``benchmarks/bench_ws.py``), and that wake-up delivers
    them itself (a task woken to deliver them was one more pass of the loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[list[Item]], None]) -> None:
        self._loop = loop
        self._deliver = deliver
        self._items: list[Item] = []
        self._lock = threading.Lock()

    def put(self, item: Item) -> None:
        """On the event loop: delivered now, after what the threads added before it."""
        with self._lock:
            self._items.append(item)
        self._drain()

    def put_from_thread(self, item: Item) -> None:
        """On any other thread."""
        with self._lock:
            self._items.append(item)
            if len(self._items) > 1:  # the wake-up of the first is on its way
                return
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is gone: the connection closed with the server
            pass

    def _drain(self) -> None:
        """Everything added so far, oldest first (a wake-up finds nothing when a ``put`` took its items)."""
        with self._lock:
            items, self._items = self._items, []
        if items:
            self._deliver(items)


@dataclass(eq=False)
class Session:
    """One conversation on one connection: its assistant (made by its first message's hop to
    the pool) and what its stream has shown."""

    assistant: Assistant | None = None
    unsubscribe: Callable[[], None] | None = None
    turn: asyncio.Future | None = None
    live: TurnState = field(default_factory=TurnState)  # the running turn, folded on its thread
    throttle: Throttle[TurnState] | None = None  # its streaming text, sent at the one pace
    held_done: AgentText | None = None  # sent with turn.completed's resolved text
    ended: bool = False  # reset or disconnected: queued turns do not start
    used: float = field(default_factory=time.monotonic)  # its last message: the idlest is let go first

    @property
    def busy(self) -> bool:
        return self.turn is not None and not self.turn.done()


class Connection:
    def __init__(self, websocket: WebSocket, identity: Identity) -> None:
        self.websocket = websocket
        self.identity = identity
        self.state = websocket.app.state.nexus
        self.loop = asyncio.get_running_loop()
        self.outbox = Outbox(self.loop, self._deliver)
        # The server's batch writer (connections.WebSocketProtocol); without it frames go through
        # ASGI's send, and while any wait there (a full buffer) every later frame waits behind them.
        self._write_texts = websocket.scope.get("extensions", {}).get(WRITE_TEXTS, {}).get("write")
        self._unsent: collections.deque[bytes] = collections.deque()
        self._has_unsent = asyncio.Event()
        self.sessions: dict[str, Session] = {}
        self.unnamed: list[Session] = []  # sessions whose conversation has no id yet
        self.open = True

    # -- receiving -------------------------------------------------------------------------

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_loop())
        try:
            while True:
                frame = await self.websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    break
                await self._handle(frame)
        finally:
            self.open = False
            await self._close_sessions()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _handle(self, frame: Mapping[str, Any]) -> None:
        text = frame.get("text")
        if text is None:
            return self.error("Binary frames are not part of the protocol: send JSON text frames.")
        if len(text) > MAX_MESSAGE:
            return self.error(f"The message is too long ({len(text):,} characters; at most {MAX_MESSAGE:,}).")
        try:
            data = read_frame(text)
        except ValueError:
            return self.error('The frame is not JSON: send {"type": "chat", "message": "..."}.')
        except RecursionError:
            return self.error('The frame is nested too deeply: send {"type": "chat", "message": "..."}.')
        if not isinstance(data, dict):
            return self.error('The frame is not a JSON object: send {"type": "chat", "message": "..."}.')
        handler = {"chat": self._chat, "stop": self._stop, "reset": self._reset}.get(data.get("type"))  # type: ignore[arg-type]
        if handler is None:
            return self.error(f"Unknown message type {str(data.get('type'))[:40]!r}: use chat, stop or reset.")
        session_id = data.get("sessionId")
        if session_id is not None and not isinstance(session_id, str):
            return self.error("sessionId must be a string.")
        await handler(data, session_id)

    async def _chat(self, data: dict[str, Any], session_id: str | None) -> None:
        message = data.get("message")
        if not isinstance(message, str) or not message.strip():
            return self.error("A chat message needs its text in message.")
        quota = self.state.quota
        busy = quota.busy(self.identity)
        if busy:  # refused before anything is made: no session, no conversation, nothing queued
            return self.error(busy)
        quota.start_turn(self.identity)
        click = CLICK.match(message)
        try:
            self.post({"type": "turn.started"})
            session = await self._session(session_id)
        except BaseException:
            quota.end_turn(self.identity)
            raise
        if session is None:
            quota.end_turn(self.identity)
            return
        session.used = time.monotonic()
        if click:
            work = functools.partial(self._click, session, click.group(2), click.group(1) == "CONFIRM")
        else:
            work = functools.partial(self._ask, session, message)
        # One turn at a time per conversation: a message sent while one runs (or still stores its
        # end after its last event) waits for it, so two turns' events never interleave.
        question = None if click else message
        if session.turn is None and session.assistant is None:  # a new session: its first message
            session.turn = await self._start(session, work, question)
        else:
            session.turn = asyncio.ensure_future(self._after(session, session.turn, work, question))
        session.turn.add_done_callback(lambda _: quota.end_turn(self.identity))
        if len(self.sessions) + len(self.unnamed) > MAX_CONVERSATIONS:
            await self._let_go_of_idle()

    async def _start(self, session: Session, work: Callable[[], None], question: str | None) -> asyncio.Future:
        """A new session's first message, all of it in one hop to the pool (``_first``) under a
        new lock that becomes its conversation's; the hop's future is the session's turn (a task
        waiting for it was a pass of the loop more per step, ``benchmarks/bench_ws.py``)."""
        lock = asyncio.Lock()
        await lock.acquire()  # a new lock: at once
        try:
            turn = self.loop.run_in_executor(
                self.state.turns, functools.partial(self._first, session, work, question, lock)
            )
        except RuntimeError as exc:  # the pool shut down with the server: a turn that failed, as in _after
            turn = self.loop.create_future()
            turn.set_exception(exc)
        turn.add_done_callback(lambda _: lock.release())
        return turn

    async def _in_pool(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.loop.run_in_executor(self.state.turns, functools.partial(fn, *args))

    async def _after(
        self, session: Session, previous: asyncio.Future | None, work: Callable[[], None], question: str | None
    ) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        if session.ended:
            return
        if session.assistant is None:  # a new session's first message: all of it in one hop
            lock = asyncio.Lock()
            await lock.acquire()  # a new lock: at once; it becomes the new conversation's (adopt)
            try:
                await self._in_pool(self._first, session, work, question, lock)
            finally:
                lock.release()
            return
        conversation_id = session.assistant.thread.id
        if conversation_id is None:
            await self._in_pool(self._turn, session, work)
            return
        async with self.state.locks.get(conversation_id):
            if not session.ended:
                await self._in_pool(self._turn, session, work)

    async def _stop(self, data: dict[str, Any], session_id: str | None) -> None:
        for session in self._matching(session_id):
            if session.busy and session.assistant is not None:
                session.assistant.cancel()

    async def _reset(self, data: dict[str, Any], session_id: str | None) -> None:
        for session in self._matching(session_id):
            self._forget(session)
            await self._end(session)

    def _matching(self, session_id: str | None) -> list[Session]:
        if session_id is None:
            return [*self.sessions.values(), *self.unnamed]
        session = self.sessions.get(session_id)
        return [session] if session else []

    # -- sessions ----------------------------------------------------------------------------

    async def _let_go_of_idle(self) -> None:
        """Keep at most ``MAX_CONVERSATIONS`` sessions: the longest idle ones close (a later
        message with their id resumes them from the store)."""
        sessions = self._all()
        idle = sorted((s for s in sessions if not s.busy), key=lambda s: s.used)
        for session in idle[: max(0, len(sessions) - MAX_CONVERSATIONS)]:
            self._forget(session)
            await self._end(session)

    async def _session(self, session_id: str | None) -> Session | None:
        """The session ``session_id`` names, resumed from the store if this connection has not got
        it (None when it could not be, the ``error`` sent); without an id a new session, whose
        assistant its first message's hop to the pool makes (``_first``)."""
        if session_id is None:
            session = Session()
            self.unnamed.append(session)
            return session
        if session_id in self.sessions:
            return self.sessions[session_id]
        session = Session()
        try:
            await self._in_pool(self._resume, session, session_id)
        except Exception as exc:
            self.error(store_failure(exc))
            return None
        self.sessions[session_id] = session
        return session

    def _follow(self, session: Session, assistant: Assistant) -> None:
        """Send the session's events: ``assistant`` is its own from now on."""
        session.throttle = Throttle(self._text_frame)
        session.unsubscribe = assistant.subscribe(lambda event: self._from_turn(session, event))
        session.assistant = assistant

    def _name(self, session: Session, conversation_id: str) -> None:
        if session in self.unnamed:
            self.unnamed.remove(session)
        self.sessions[conversation_id] = session

    def _forget(self, session: Session) -> None:
        if session in self.unnamed:
            self.unnamed.remove(session)
        for key in [k for k, s in self.sessions.items() if s is session]:
            del self.sessions[key]

    async def _end(self, session: Session) -> None:
        session.ended = True
        if session.assistant is not None:
            session.assistant.cancel()
        if session.turn is not None and not session.turn.done():  # a done one needs no timer
            try:
                await asyncio.wait_for(asyncio.shield(session.turn), timeout=15)
            except Exception:
                log.warning("a turn did not finish after its connection closed", exc_info=True)
        elif session.turn is not None and not session.turn.cancelled() and session.turn.exception():
            log.warning("a turn failed", exc_info=session.turn.exception())
        if session.unsubscribe:
            session.unsubscribe()
        if session.assistant is not None:
            self._close_later(session.assistant)

    def _close_later(self, assistant: Assistant) -> None:
        """Close a session's assistant on a pool thread, not waited for: nothing of the
        connection waits for it (its turn is over), and the loop's wake-up for its end was a
        pool round trip per connection (``benchmarks/bench_ws.py``)."""
        try:
            self.state.turns.submit(_close, assistant)
        except RuntimeError:  # the pool shut down with the server
            _close(assistant)

    async def _close_sessions(self) -> None:
        sessions = list({id(s): s for s in [*self.sessions.values(), *self.unnamed]}.values())
        self.sessions, self.unnamed = {}, []
        if len(sessions) == 1:  # the usual connection: no gathering task for one session
            with contextlib.suppress(Exception):
                await self._end(sessions[0])
            return
        await asyncio.gather(*(self._end(s) for s in sessions), return_exceptions=True)

    # -- the worker threads' side --------------------------------------------------------------

    def _resume(self, session: Session, conversation_id: str) -> None:
        """A session's assistant made and its stored conversation resumed, in one hop."""
        assistant = self.state.make_assistant(self.identity)
        try:
            assistant.resume(conversation_id)
        except Exception:
            assistant.close()
            raise
        finally:
            if (store := assistant.store) is not None:
                store.close()  # a pooled store holds nothing between queries
        self._follow(session, assistant)

    def _first(self, session: Session, work: Callable[[], None], question: str | None, lock: asyncio.Lock) -> None:
        """A new session's first message, on a pool thread in one hop (a round trip between the
        loop and a pool thread costs more CPU than making the assistant: ``benchmarks/bench_ws.py``):
        its assistant made; for a question its conversation stored, so the turn runs under that
        conversation's lock from the start (``lock``, held by the loop, named by the id before the
        turn can tell the id to anybody); then the turn."""
        try:
            assistant = self.state.make_assistant(self.identity)
        except Exception as exc:
            self._from_thread(None, {"type": "error", "message": failure_text("a session could not be made", exc)})
            return
        self._follow(session, assistant)
        if question is not None:
            try:
                if (store := assistant.store) is not None:
                    try:
                        self.state.locks.adopt(assistant.start_conversation(question, lease=True).id, lock)
                    finally:
                        store.close()  # a pooled store holds nothing between queries
            except Exception as exc:
                self._from_thread(None, {"type": "error", "message": store_failure(exc)})
                return
        if not session.ended:
            self._turn(session, work)

    @staticmethod
    def _turn(session: Session, work: Callable[[], None]) -> None:
        """Run one turn (under its conversation's lock in this process, when it has one; the turn
        takes its lease across processes itself, ``Assistant.conversation_turn``, reloading the
        conversation first if another connection's or replica's turn added to it)."""
        assert session.assistant is not None
        try:
            work()
        finally:
            if (store := session.assistant.store) is not None:
                store.close()

    def _ask(self, session: Session, message: str) -> None:
        assert session.assistant is not None
        try:
            session.assistant.ask(message, origin="server")
        except Exception:  # ask reports its own failures as events; this is a bug's safety net
            log.exception("a turn failed outside the assistant")
            self._from_thread(None, {"type": "error", "message": "The turn failed unexpectedly; try again."})

    def _click(self, session: Session, proposal_id: str, confirm: bool) -> None:
        assistant = session.assistant
        assert assistant is not None
        try:
            with assistant.conversation_turn():  # its report joins the conversation after any turn running
                outcome = assistant.confirm(proposal_id) if confirm else assistant.decline(proposal_id)
        except Cancelled:
            return  # the session ended while it waited
        except QueryError as exc:
            self._from_thread(None, {"type": "error", "message": query_error_text("a confirmation failed", exc)})
            return
        except Exception:
            log.exception("a confirmation failed unexpectedly")
            self._from_thread(None, {"type": "error", "message": "The confirmation failed unexpectedly; try again."})
            return
        said = json.dumps({"type": "message", "text": outcome_text(outcome.as_dict())})
        self._from_thread(None, {"type": "agent.text", "text": said, "status": "done"})
        self._from_thread(None, {"type": "turn.completed", "text": said, "usage": {}})

    def _from_turn(self, session: Session, event: Event) -> None:
        """Fold one event of the session's assistant (on the turn's thread): streaming text goes
        through the throttle, anything else after the text that waits."""
        assert session.throttle is not None
        match event:
            case TurnStarted():  # sent already, on receipt
                session.live = TurnState.of(event)
                return
            case AgentText(status="streaming"):
                session.live.apply(event)
                session.throttle.push(session.live)
                return
            case AgentText():  # done: the resolved answer replaces what waits
                session.throttle.discard()
            case _:
                session.throttle.flush()
        session.live.apply(event)
        self._from_thread(session, event)

    def _text_frame(self, live: TurnState) -> None:
        self._from_thread(None, {"type": "agent.text", "text": live.text.text, "status": "streaming"})

    def _from_thread(self, session: Session | None, item: Event | dict[str, Any]) -> None:
        self.outbox.put_from_thread((session, item))

    # -- sending -------------------------------------------------------------------------------

    def post(self, wire: dict[str, Any]) -> None:
        self.outbox.put((None, wire))

    def error(self, message: str) -> None:
        self.post({"type": "error", "message": message})

    def _deliver(self, items: list[Item]) -> None:
        """A batch of the outbox as frames, written at once when the socket takes them now."""
        if not self.open:
            return
        frames = [fastjson.dumpb(wire) for session, item in items for wire in self._wire(session, item)]
        if not self._unsent and self._write_texts is not None:
            try:
                if self._write_texts(frames):
                    return
            except Exception:  # the client went away; the receive side ends the connection
                self.open = False
                return
        self._unsent.extend(frames)
        self._has_unsent.set()

    async def _send_loop(self) -> None:
        """The frames ``_deliver`` could not write at once, through ASGI's send (which waits
        for the client to read), in order; a frame stays first in line until it is sent."""
        while True:
            await self._has_unsent.wait()
            self._has_unsent.clear()
            while self._unsent:
                await self._send(self._unsent[0])
                self._unsent.popleft()

    def _all(self) -> list[Session]:
        return list({id(s): s for s in [*self.sessions.values(), *self.unnamed]}.values())

    def _wire(self, session: Session | None, item: Event | dict[str, Any]) -> list[dict[str, Any]]:
        """What the original protocol sends for one event (a done text waits for turn.completed)."""
        if session is None or isinstance(item, dict):  # a frame made here: sent as it is
            return [item if isinstance(item, dict) else item.to_dict()]
        out: list[dict[str, Any]] = []
        if isinstance(item, AgentText):  # done: its text is the resolved answer, known at turn.completed
            session.held_done = item
            return out
        wire = item.to_dict()
        if isinstance(item, TurnCompleted):
            # The resolved answer: a confirm carries the product's id, canonical SQL and counted rows.
            wire["text"] = json.dumps(wire["response"], ensure_ascii=False) if item.response else item.text
            out.append({"type": "agent.text", "text": wire["text"], "status": "done", "turnId": item.turn_id})
        elif session.held_done is not None:
            out.append(session.held_done.to_dict())
        session.held_done = None
        if wire["type"] == "session.id":
            self._name(session, wire["sessionId"])
        out.append(wire)
        return out

    async def _send(self, frame: bytes) -> None:
        if not self.open:
            return
        try:
            await self.websocket.send({"type": "websocket.send", "text": frame.decode()})
        except Exception:  # the client went away; the receive side ends the connection
            self.open = False


def _close(assistant: Assistant) -> None:
    try:
        assistant.close()
    except Exception:
        log.warning("closing a session's assistant failed", exc_info=True)


async def refuse(websocket: WebSocket, status: int, detail: str) -> None:
    """Refuse the handshake with an HTTP status (the socket is never accepted)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse({"detail": detail}, status))
    else:
        await websocket.close()  # before accept: the server answers 403


async def admit(websocket: WebSocket) -> Identity | None:
    """The socket's verified caller, its organization known and its share of sockets taken
    (give it back with ``quota.close_socket``); or the handshake refused with 401, 403, 429 or
    503, and None. Nothing is accepted before this says yes."""
    state = websocket.app.state.nexus
    try:
        identity = state.auth.identify(websocket, query=True)
        if not state.tenants.known(identity):  # a look-up in the database, off the event loop
            await asyncio.to_thread(state.tenants.check, identity)
    except Unauthorized as exc:
        log.info("WebSocket refused: %s", exc)
        await refuse(websocket, 401, "Unauthorized")
        return None
    except UnknownOrganization as exc:
        await refuse(websocket, 403, str(exc))
        return None
    except Exception as exc:
        error_id = incident("checking a WebSocket's organization", exc)
        await refuse(websocket, 503, f"The server cannot check this organization now (error id {error_id}).")
        return None
    if not state.quota.open_socket(identity):
        await refuse(
            websocket,
            429,
            f"Too many open sockets for this user (NEXUS_MAX_SESSIONS_PER_USER={state.quota.max_sockets}); close one.",
        )
        return None
    return identity


async def codex(websocket: WebSocket) -> None:
    identity = await admit(websocket)
    if identity is None:
        return
    try:
        await websocket.accept()
        await Connection(websocket, identity).run()
    finally:
        websocket.app.state.nexus.quota.close_socket(identity)
