"""Which model service answers: OpenAI or any compatible server, a replay, or a recording.

``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` pick the service (Azure, Ollama, vLLM, LiteLLM all
speak the same API); ``NEXUS_REPLAY=file`` answers from a cassette through a loopback server,
so shared notebooks and tests need no key and no network; ``NEXUS_RECORD=file`` records
every exchange of a live session into such a cassette.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config import ModelEnv

DEFAULT_MODEL = "gpt-4.1-mini"


class ModelConfigError(Exception):
    """No way to reach a model; the message says what to set."""


@dataclass(frozen=True)
class ModelSettings:
    model: str
    api_key: str | None
    base_url: str | None
    replay: str | None
    record: str | None
    timeout_s: float = 120.0
    max_retries: int = 2

    @classmethod
    def from_env(cls, model: str | None = None) -> ModelSettings:
        env = ModelEnv.from_env()
        return cls(
            model=model or env.model or DEFAULT_MODEL,
            api_key=env.api_key,
            base_url=env.base_url,
            replay=env.replay,
            record=env.record,
        )

    @property
    def mode(self) -> str:
        if self.replay:
            return "replay"
        return "live" if (self.api_key or self.base_url) else "unconfigured"

    def describe(self) -> str:
        if self.replay:
            return f"{self.model} replayed from {self.replay}"
        if self.mode == "unconfigured":
            return f"{self.model} (not configured: set OPENAI_API_KEY or NEXUS_REPLAY)"
        where = self.base_url or "api.openai.com"
        rec = f", recording to {self.record}" if self.record else ""
        return f"{self.model} at {where}{rec}"


# Shorter keys are the placeholders local servers document ("ollama", "EMPTY", "x", "lm-studio"):
# masking those would turn every occurrence of the word in an error into stars. Real keys are longer.
SECRET_KEY_CHARS = 16


def mask_api_key(text: str, api_key: str | None) -> str:
    """``text`` with the API key replaced by ``***`` where it stands as a whole token, when the
    key is long enough to be a secret."""
    if not api_key or len(api_key) < SECRET_KEY_CHARS:
        return text
    return re.sub(rf"(?<![\w-]){re.escape(api_key)}(?![\w-])", "***", text)


MISSING_CONFIG = (
    "No model is configured. Set OPENAI_API_KEY (and OPENAI_BASE_URL for Azure, Ollama, vLLM or LiteLLM), "
    "or set NEXUS_REPLAY to a recorded cassette to replay answers without a key."
)


class _Serving(Protocol):
    base_url: str


_replay_servers: dict[str, _Serving] = {}
_replay_lock = threading.Lock()


def _replay_base_url(path: str) -> str:
    """One loopback replay server per cassette per process."""
    from ..replay.server import start_replay_server

    resolved = str(Path(path).expanduser().resolve())
    if not Path(resolved).is_file():
        raise ModelConfigError(f"NEXUS_REPLAY points to {path}, which does not exist.")
    with _replay_lock:
        server = _replay_servers.get(resolved)
        if server is None:
            server = start_replay_server(resolved)
            _replay_servers[resolved] = server
    return server.base_url


_ledgers: dict[tuple[str, str], object] = {}


def proposal_ledger(settings: ModelSettings):
    """Where this session's proposed writes meet their cassette: recorded beside the exchanges
    when recording (NEXUS_RECORD, live), checked against the recording when replaying; else None."""
    from ..replay.proposals import ProposalLedger

    if settings.replay:
        mode, path = "replay", settings.replay
    elif settings.record and settings.mode == "live":
        mode, path = "record", settings.record
    else:
        return None
    key = (mode, str(Path(path).expanduser().resolve()))
    with _replay_lock:
        ledger = _ledgers.get(key)
        if ledger is None:
            ledger = _ledgers[key] = ProposalLedger(key[1], mode)
    return ledger


def make_client(settings: ModelSettings, *, max_connections: int | None = None):
    """The real ``openai`` client, pointed where the settings say; ``max_connections`` bounds its
    connection pool (a server's sessions share one client). Whoever makes it closes it."""
    import httpx2
    import openai

    from .transport import LeanTransport

    def transport() -> LeanTransport:  # httpx's, plus a lean pool for the chat requests (.transport)
        if max_connections is None:
            return LeanTransport()
        limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=min(max_connections, 32))
        return LeanTransport(limits=limits)

    if settings.replay:
        return openai.OpenAI(
            api_key="replay-no-key",
            base_url=_replay_base_url(settings.replay),
            max_retries=0,
            timeout=30.0,
            http_client=openai.DefaultHttpxClient(transport=transport()),
        )
    if settings.mode == "unconfigured":
        raise ModelConfigError(MISSING_CONFIG)
    if settings.record:
        from ..replay.recorder import recording_http_client

        http_client = recording_http_client(settings.record, transport=transport())
    else:
        http_client = openai.DefaultHttpxClient(transport=transport())
    return openai.OpenAI(
        # A local server (Ollama, vLLM) needs no key, but the client insists on one.
        api_key=settings.api_key or "no-key-needed",
        base_url=settings.base_url,
        timeout=settings.timeout_s,
        max_retries=settings.max_retries,
        http_client=http_client,
    )
