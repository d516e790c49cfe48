"""uvicorn's server, woken when it should stop rather than ten times a second.

uvicorn's main loop sleeps 0.1 s at a time to see whether it should stop (refreshing the ``Date``
header every tenth time): ten wake-ups a second, ~1.6 ms of CPU a second at rest, so ~5 ms of a
turn that waits three seconds for its model. This ``Server`` ticks once a second (the ``Date``
header's resolution, and the rest of ``on_tick``'s work) and is woken at once when ``should_exit``
is set: by uvicorn's signal handler, by the lifespan failing, or by a test from another thread.
``run_workers`` runs ``--workers N`` on it too: uvicorn's supervisor makes each worker's server
itself, as a ``uvicorn.Server``, so N workers at rest woke 10 N times a second.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.supervisors import multiprocess

TICK_S = 1.0


class Server(uvicorn.Server):
    _should_exit = False
    _waiter: asyncio.Future[None] | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        loop, waiter = self._loop, self._waiter
        if value and loop is not None and waiter is not None and not loop.is_closed():
            loop.call_soon_threadsafe(_wake, waiter)

    async def main_loop(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        counter = 0  # uvicorn's on_tick does its once-a-second work when counter % 10 == 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000
            self._waiter = waiter = loop.create_future()
            if self._should_exit:  # set between on_tick and the new waiter
                break
            timer = loop.call_later(TICK_S, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            should_exit = await self.on_tick(counter)


def _wake(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Worker(multiprocess.Process):
    """A supervised worker process serving on ``Server`` (pickled to the child by reference: the
    child imports this module and runs this class's ``target``)."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = Server(config=self.config)
        return self._server


def run_workers(config: uvicorn.Config) -> None:
    """``config.workers`` processes on one socket, supervised as ``uvicorn.run`` does (restarts,
    health checks, signals), each serving on ``Server``. The supervisor makes its workers by the
    module's ``Process`` name, so that name is this module's ``_Worker`` while it runs (this
    process is only the supervisor); a uvicorn whose workers are made otherwise runs as it is."""
    sock = config.bind_socket()
    original = multiprocess.Process
    if isinstance(getattr(original, "server", None), property):
        multiprocess.Process = _Worker  # type: ignore[misc]
    try:
        multiprocess.Multiprocess(config, sockets=[sock]).run()
    finally:
        multiprocess.Process = original  # type: ignore[misc]
