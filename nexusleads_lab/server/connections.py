"""Client connections: headers on time, and never more of them than the process can hold.

uvicorn times out an idle keep-alive connection but not a request whose headers never finish:
a client that trickles a header byte every few seconds holds a file descriptor forever, and
enough of them make ``accept`` fail for everyone. It also has no per-address bound, and its
``limit_concurrency`` answers 503 only after reading a request. So the server runs uvicorn with
this subclass of its own h11 protocol (``uvicorn.Config(http=...)``), which

- closes a connection whose request headers are not complete ``NEXUS_HEADER_TIMEOUT_S`` (5 s)
  after it opened or after its previous response (a WebSocket handshake is such a request);
- refuses a connection, with a ``503`` and at once, beyond ``NEXUS_MAX_CONNECTIONS`` in total
  (default: half the process's open-files limit, the other half left to the database pools, the
  model client and files) or ``NEXUS_MAX_CONNECTIONS_PER_ADDRESS`` (64) from one address (behind
  a reverse proxy every client has the proxy's address: raise it there).

A connection is counted from accept until its transport closes, WebSockets included.
"""

from __future__ import annotations

import asyncio
import resource
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.http11 import Request

from ..config import ServeLimits

# The ASGI extension under which an accepted socket's scope carries ``WebSocketProtocol.write_texts``.
WRITE_TEXTS = "nexusleads.websocket.write_texts"

REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"retry-after: 5\r\ncontent-length: 58\r\n\r\nToo many connections to this server right now; try again.\n"
)


def open_files_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


@dataclass
class ConnectionBudget:
    total: int
    per_address: int
    header_timeout_s: float
    open: dict[Any, str] = field(default_factory=dict)  # transport -> client address
    by_address: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_limits(cls, limits: ServeLimits) -> ConnectionBudget:
        total = limits.connections or max(16, open_files_limit() // 2)
        return cls(total=total, per_address=limits.connections_per_address, header_timeout_s=limits.header_timeout_s)

    def describe(self) -> str:
        nofile = open_files_limit()
        return (
            f"open-files limit {nofile}: at most {self.total} client connections "
            f"({self.per_address} per address, headers within {self.header_timeout_s:g} s), "
            f"leaving {max(0, nofile - self.total)} for the database pools, the model client and files "
            "(NEXUS_MAX_CONNECTIONS, NEXUS_MAX_CONNECTIONS_PER_ADDRESS, ulimit -n)"
        )

    def admit(self, transport: Any, address: str) -> bool:
        self._forget_closed()
        if len(self.open) >= self.total or self.by_address[address] >= self.per_address:
            return False
        self.open[transport] = address
        self.by_address[address] += 1
        return True

    def release(self, transport: Any) -> None:
        address = self.open.pop(transport, None)
        if address is not None:
            self.by_address[address] -= 1
            if self.by_address[address] <= 0:
                del self.by_address[address]

    def _forget_closed(self) -> None:
        # An upgraded connection's h11 protocol is gone; its transport says when it closed.
        for transport in [t for t in self.open if t.is_closing()]:
            self.release(transport)


_default: list[ConnectionBudget] = []


def default_budget() -> ConnectionBudget:
    """This process's budget, from the environment (each ``--workers`` process has its own)."""
    if not _default:
        _default.append(ConnectionBudget.from_limits(ServeLimits.from_env()))
    return _default[0]


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection budget and a header timeout (``default_budget``
    here; ``guarded_protocol`` makes one with another budget)."""

    budget: ConnectionBudget | None = None
    _header_timer: asyncio.TimerHandle | None = None

    @property
    def _budget(self) -> ConnectionBudget:
        return self.budget or default_budget()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else "?"
        if not self._budget.admit(transport, address):
            self.logger.warning("refused a connection from %s: too many connections", address)
            transport.write(REFUSED)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._budget.release(self.transport)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are complete (or it upgraded)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # between requests uvicorn's keep-alive timeout applies

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self._budget.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.logger.info("closed a connection whose request headers did not arrive in time")
            self.transport.close()


def guarded_protocol(budget: ConnectionBudget) -> type[asyncio.Protocol]:
    """The protocol with its own ``budget`` (one server among several in a process: tests)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"budget": budget})


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, for which a refused handshake (an HTTP status sent with the
    denial-response extension) is a finished one: uvicorn would log each as an error; and which
    offers the app ``write_texts`` (the scope's ``WRITE_TEXTS`` extension): a batch of text
    frames written at once. ASGI's ``send`` is a coroutine per frame, through Starlette's and
    uvicorn's state checks, a write system call each; the socket's frames come from the turn
    threads in batches, each batch a wake-up of the loop that can write it then and there."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # a scope was made; its app runs from the loop's next pass
            self.scope["extensions"][WRITE_TEXTS] = {"write": self.write_texts}

    def write_texts(self, texts: Sequence[bytes]) -> bool:
        """Text frames (their UTF-8 payloads) sent in order, in one write, as ``send`` sends
        ``websocket.send`` messages. False, and nothing sent, when ``send`` would wait or refuse
        (the transport's buffer above its high-water mark, the socket not accepted or closing):
        the caller then sends through ``send``. ``ClientDisconnected`` when the client is gone."""
        if self.disconnected:
            raise ClientDisconnected()
        if not self.writable.is_set() or not self.handshake_complete or self.close_sent:
            return False
        if self.initial_response is not None:
            return False
        try:
            for text in texts:
                self.conn.send_text(text)
        except InvalidState:
            raise ClientDisconnected() from None
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True
