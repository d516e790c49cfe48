"""A bounded pool of keep-alive HTTP/1.1 connections to one origin, on the stdlib's ``http.client``:
what the model transport (:mod:`.transport`) sends its chat requests over.

It keeps the rules of httpcore's pool (what the ``openai`` client's httpx uses): at most
``max_connections`` open at once, a request waiting up to its pool timeout for one; at most
``max_keepalive`` idle ones, the last used taken first; an idle one dropped once it has been idle
longer than ``keepalive_expiry`` or once the server has closed it (its socket readable); a
connection given back only when its response was read to the end. Two more: a request whose
reused connection turns out closed by the server before any answer (a race with the server's
idle timeout) is sent once more on a new connection, and ``close()`` closes every socket, those in
use too: a read blocked on one ends at once, as it does when a response is aborted from another
thread (``Exchange.abort``).

Errors are the stdlib's: ``TimeoutError`` (connect, read, or :class:`PoolTimeout`), ``OSError``
and ``http.client.HTTPException`` (refused, reset, cut off, TLS, a malformed head),
``RuntimeError`` once closed.

What is ``http.client``'s and what is done here: a connection is an ``HTTPConnection`` (connect,
TLS, close), a response an ``HTTPResponse`` whose body ``http.client`` reads (chunked,
``Content-Length`` or to the close, with its framing rules). A request's head is written here,
checked and encoded once per client (:func:`request_head`) where ``putheader`` checks every field
of every request; an answer's head is read by :class:`Response`, where ``http.client`` hands the
header lines to the ``email`` package (~50-90 µs of CPU an answer).
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from typing import NamedTuple

_READ_SIZE = 64 * 1024
CLOSED_MESSAGE = "Cannot send a request, as the client has been closed."  # httpx's words


_MAX_LINE = 65536  # http.client's bounds on a head: a line's length and the count of its fields
_MAX_FIELDS = 100
# A header field as h11 (httpx's parser) reads one: a token, a colon, a value of anything but NUL
# and the line-breaking blanks (h11 lets the other control characters through, as servers send
# them); and an obsolete folded line that continues the field before it.
_FIELD = re.compile(rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+):[ \t]*([^\x00\n\r\x0b\x0c]*)\r?\n")
_FOLD = re.compile(rb"[ \t]+([^\x00\n\r\x0b\x0c]*)\r?\n")
_BLANKS = b" \t"
# What a request may say (h11's and http.client's checks): a method and field names are tokens, a
# target has no blank or control character, a value no CR, LF or NUL.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(r"[\x21-\x7e]+")
_CONTENT = re.compile(rb"[^\x00\r\n]*")
_HEAD_END = (b"\r\n", b"\n")


class PoolTimeout(TimeoutError):
    """No connection came free within the pool timeout."""


class Timeouts(NamedTuple):
    connect: float | None
    read: float | None
    pool: float | None


class Origin(NamedTuple):
    scheme: str  # "http" or "https"
    host: str
    port: int


class ConnectionPool:
    """Connections to ``origin``; ``request`` sends one and answers with its :class:`Exchange`."""

    def __init__(
        self,
        origin: Origin,
        *,
        ssl_context: ssl.SSLContext,
        max_connections: int | None,
        max_keepalive: int | None,
        keepalive_expiry: float | None,
    ) -> None:
        self.origin = origin
        self._ssl_context = ssl_context
        self._max = max_connections
        self._max_keepalive = max_keepalive if max_keepalive is not None else float("inf")
        self._expiry = keepalive_expiry
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # a connection came free, or the pool closed
        self._in_use = 0  # connections handed out: each counts against max_connections until given back
        self._waiting = 0
        self._idle: list[tuple[http.client.HTTPConnection, float]] = []  # (connection, idle since)
        self._busy: dict[http.client.HTTPConnection, Exchange | None] = {}
        self._closed = False

    def request(self, head: bytes, body: bytes, timeouts: Timeouts) -> Exchange:
        """Send ``head`` (a request's head, from :func:`request_head`, ended by its blank line)
        and ``body``; the exchange once the status line and headers of the answer have come."""
        reuse = True
        while True:
            conn, reused = self._acquire(timeouts, reuse)
            try:
                response = _exchange(conn, head, body)
            except ConnectionError:  # reset, broken pipe, or closed before any answer
                self._give_back(conn, None, keep=False)
                if reused:  # the server closed it while we were sending: once more, on a new one
                    reuse = False
                    continue
                raise
            except BaseException:
                self._give_back(conn, None, keep=False)
                raise
            exchange = Exchange(self, conn, response)
            with self._lock:
                closed = self._closed
                if not closed:
                    self._busy[conn] = exchange
            if closed:  # close() came while this request was under way
                exchange.release()
                raise RuntimeError(CLOSED_MESSAGE)
            return exchange

    def close(self) -> None:
        """Close every connection; requests and reads under way end with an error."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy.items())
            self._freed.notify_all()
        for conn, _ in idle:
            conn.close()
        for conn, exchange in busy:
            if exchange is not None:
                exchange.abort()
            else:
                _shutdown(conn.sock)  # a request being sent: its thread closes it

    # -- connections ------------------------------------------------------------------------------

    def _acquire(self, timeouts: Timeouts, reuse: bool) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            self._take_slot(timeouts.pool)
        try:
            while reuse:
                with self._lock:
                    if self._closed:
                        raise RuntimeError(CLOSED_MESSAGE)
                    if not self._idle:
                        break
                    conn, since = self._idle.pop()
                    self._busy[conn] = None
                expired = self._expiry is not None and time.monotonic() - since > self._expiry
                if expired or conn.sock is None or _readable(conn.sock):
                    self._forget(conn)
                    continue
                conn.sock.settimeout(timeouts.read)
                return conn, True
            conn = self._new_connection(timeouts.connect)
            with self._lock:
                if self._closed:
                    raise RuntimeError(CLOSED_MESSAGE)
                self._busy[conn] = None
            try:
                conn.connect()
                with self._lock:
                    if self._closed:
                        raise RuntimeError(CLOSED_MESSAGE)
            except BaseException:
                self._forget(conn)
                raise
            assert conn.sock is not None
            conn.sock.settimeout(timeouts.read)
            return conn, False
        except BaseException:
            with self._lock:
                self._free_slot()
            raise

    def _take_slot(self, timeout: float | None) -> None:
        """Count one more connection in use, once there is room (called holding the lock)."""
        if self._closed:
            raise RuntimeError(CLOSED_MESSAGE)
        limit = self._max
        if limit is not None and self._in_use >= limit:
            deadline = None if timeout is None else time.monotonic() + timeout
            self._waiting += 1
            try:
                while self._in_use >= limit:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise PoolTimeout("no connection came free within the pool timeout")
                    self._freed.wait(remaining)
                    if self._closed:
                        raise RuntimeError(CLOSED_MESSAGE)
            finally:
                self._waiting -= 1
        self._in_use += 1

    def _free_slot(self) -> None:
        """One connection fewer in use (called holding the lock)."""
        self._in_use -= 1
        if self._waiting:
            self._freed.notify()

    def _new_connection(self, timeout: float | None) -> http.client.HTTPConnection:
        host, port = self.origin.host, self.origin.port
        if self.origin.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl_context)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _forget(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._busy.pop(conn, None)
        conn.close()

    def _give_back(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse | None, *, keep: bool
    ) -> None:
        with self._lock:
            keep = keep and conn.sock is not None and not self._closed and len(self._idle) < self._max_keepalive
            if keep:
                self._idle.append((conn, time.monotonic()))
            self._busy.pop(conn, None)
            self._free_slot()
        if not keep:
            conn.close()
            if response is not None:
                response.close()  # its socket file: the socket is closed once both are


class Exchange:
    """One request's response on its connection. Its reader calls ``start``, ``read1`` until it
    gives ``b""``, then ``release`` (the connection goes back to the pool when the response was
    read to its end, else it is closed); ``abort`` (from any thread) ends it early."""

    __slots__ = ("_aborted", "_conn", "_lock", "_pool", "_reading", "_released", "_response", "_sock")

    def __init__(self, pool: ConnectionPool, conn: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._pool = pool
        self._conn = conn
        self._sock = conn.sock  # kept: http.client forgets it when the server says Connection: close
        self._response = response
        self._lock = threading.Lock()
        self._reading = False
        self._released = False
        self._aborted = False

    @property
    def status(self) -> int:
        return self._response.status

    def header(self, name: str) -> str | None:
        return self._response.msg.get(name)

    def header_items(self) -> list[tuple[bytes, bytes]]:
        """Every field as its bytes (httpx's headers take only ASCII text: a byte beyond it is
        obs-text, which a field may carry)."""
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self._response.msg.items()]

    def start(self) -> None:
        with self._lock:
            if self._aborted or self._released:
                raise ConnectionAbortedError("the response was closed")
            self._reading = True

    def read1(self) -> bytes:
        """What has come of the body (decoded from chunks), ``b""`` at its end."""
        if self._aborted:
            raise ConnectionAbortedError("the response was closed")
        part = self._response.read1(_READ_SIZE)
        if not part and self._aborted:
            raise ConnectionAbortedError("the response was closed")
        return part

    def release(self) -> None:
        """The reader is done: the connection goes back when the body was read to its end."""
        with self._lock:
            if self._released:
                return
            self._released = True
            self._reading = False
            keep = not self._aborted and self._response.isclosed() and not self._response.will_close
        self._pool._give_back(self._conn, self._response, keep=keep)

    def abort(self) -> None:
        """Stop the exchange, from any thread: a read under way ends at once (its thread then
        releases the connection); with no reader, it is closed now."""
        with self._lock:
            if self._released:
                return
            self._aborted = True
            reading = self._reading
            if reading:
                _shutdown(self._sock)
        if not reading:
            self.release()


def request_head(method: str, target: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """The request line and header lines of a request (each line ended by CRLF; the blank line
    that ends a head is for the caller to add, after any lines that vary from one request to the
    next). Checked as ``http.client`` checks them (``ValueError``), once rather than per request:
    its ``putheader`` matches every field of every request against the grammar, ~25 µs for the
    SDK's seventeen."""
    if not _TOKEN.fullmatch(method) or not _TARGET.fullmatch(target):
        raise ValueError(f"cannot send a request to {method} {target!r}")
    lines = [f"{method} {target} HTTP/1.1\r\n".encode("ascii")]
    for name, value in headers:
        content = value.encode("latin-1")
        if not _TOKEN.fullmatch(name) or not _CONTENT.fullmatch(content):
            raise ValueError(f"invalid header {name!r}: {value!r}")
        lines.append(b"%s: %s\r\n" % (name.encode("ascii"), content))
    return b"".join(lines)


def _exchange(conn: http.client.HTTPConnection, head: bytes, body: bytes) -> Response:
    """Send one request on an open connection and read the head of its answer. The connection
    object is the socket's keeper only (``connect``, TLS, ``close``): the request and its answer
    go straight to the socket, so ``http.client``'s per-request state is not kept."""
    sock = conn.sock
    assert sock is not None  # _acquire hands out connected ones
    sock.sendall(head + body)  # one write: no Nagle wait between the head and the body
    response = Response(sock, method="POST")
    try:
        response.begin()
    except BaseException:
        response.close()  # its socket file: the socket is closed once both are
        raise
    return response


class Response(http.client.HTTPResponse):
    """``http.client``'s response with its head read here: the status line by ``http.client``
    (its errors: ``RemoteDisconnected`` when the server closed the connection before answering,
    ``BadStatusLine``, ``LineTooLong``), the header fields by one regular expression a line instead
    of the ``email`` parser. The body's framing is decided as ``HTTPResponse.begin`` decides it.

    What the fields may be is what httpx's parser (h11) takes: a line that is not ``name: value``
    (no colon, a blank before it or inside the name, a NUL in the value) is an ``HTTPException``
    (the ``email`` parser ended the headers there and left the rest to be read as the body); a
    folded line is joined to its field with a space (h11's reading; the ``email`` package kept the
    line break); a value loses the blanks at both of its ends. Informational answers (1xx) before
    the answer are skipped, as httpcore skips them (``http.client`` skipped only ``100
    Continue``); ``101 Switching Protocols``, never asked for, is an error, as it is in h11, and so
    is a head cut off by the end of the connection. The bounds are ``http.client``'s: 65,536
    bytes a line, 100 fields."""

    def begin(self) -> None:
        if self.headers is not None:
            return  # already begun
        while True:
            version, status, reason = self._read_status()
            fields = _read_fields(self.fp)
            if status == 101:  # never asked for (h11 refuses it too)
                raise http.client.HTTPException("the server switched protocols")
            if not 100 <= status < 200:
                break
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        message = http.client.HTTPMessage()
        for name, value in fields:
            message[name] = value  # appended: a repeated field keeps each of its values
        self.headers = self.msg = message

        # From here on as HTTPResponse.begin: chunked, else Content-Length, else to the close.
        encoding = message.get("transfer-encoding")
        self.chunked = bool(encoding) and encoding.lower() == "chunked"
        if self.chunked:
            self.chunk_left = None
        self.will_close = self._check_close()
        self.length = None
        length = message.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if status in (204, 304) or 100 <= status < 200 or self._method == "HEAD":
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True


def _read_fields(fp) -> list[tuple[str, str]]:
    """The header fields up to the blank line that ends them, as (name, value) in order."""
    fields: list[tuple[str, str]] = []
    raw = b""  # the last field's value as written, for a folded line to continue
    while True:
        line = fp.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        if line in _HEAD_END:
            return fields
        if not line:
            raise http.client.IncompleteRead(line, None)  # the connection closed inside the head
        field = _FIELD.fullmatch(line)
        if field is not None:
            if len(fields) == _MAX_FIELDS:
                raise http.client.HTTPException(f"got more than {_MAX_FIELDS} headers")
            raw = field[2]
            fields.append((field[1].decode("ascii"), raw.strip(_BLANKS).decode("latin-1")))
            continue
        folded = _FOLD.fullmatch(line)
        if folded is None or not fields:
            raise http.client.HTTPException(f"malformed header line: {line[:80]!r}")
        raw = raw + b" " + folded[1]
        fields[-1] = (fields[-1][0], raw.strip(_BLANKS).decode("latin-1"))


def _readable(sock: socket.socket) -> bool:
    """An idle connection's socket is readable only when the server has closed it (or sent what
    it should not have): either way it cannot carry the next request. (``poll``, as httpcore asks:
    ``select`` cannot take a descriptor above 1023, which a busy server has; Windows has no poll.)"""
    if not _HAS_POLL:
        return bool(select.select([sock], [], [], 0)[0])
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


_HAS_POLL = hasattr(select, "poll")


def _shutdown(sock: socket.socket | None) -> None:
    """Wake a thread blocked reading or writing ``sock`` (closing alone does not, on Linux)."""
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: no TLS close_notify
    except OSError:
        pass  # already closed
