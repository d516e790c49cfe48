"""Record and replay of model exchanges: ``NEXUS_RECORD`` and ``NEXUS_REPLAY``.

A notebook that talks to a real model is neither reproducible nor runnable offline. We record
what the model said once, into a *cassette*, then replay it through a loopback server, so the
agent still goes through the real ``openai`` client, HTTP and SSE on replay. One job per module:

* :mod:`.cassette`: the cassette format, request normalisation and the matching rule;
* :mod:`.recorder`: the httpx transport that records a live session (``NEXUS_RECORD``);
* :mod:`.server`: the loopback OpenAI-compatible server and its :class:`~.server.Replay`
  responder (``NEXUS_REPLAY``);
* :mod:`.proposals`: proposed writes checked against the previews the recording showed.

The scripted server tests use is test support, in :mod:`nexusleads_lab.testing.modelserver`.
"""

from __future__ import annotations

from .cassette import (
    REPLAY_MISS,
    VOLATILE_MASKS,
    CassetteMatcher,
    Exchange,
    assemble_completion,
    last_user_message,
    load_cassette,
    mask_volatile,
    normalise_request,
)
from .proposals import ProposalLedger, preview_fingerprint, stale_sentence
from .recorder import (
    AsyncRecordingTransport,
    Recorder,
    RecordingTransport,
    parse_sse,
    recording_async_http_client,
    recording_http_client,
)
from .server import LoopbackServer, Replay, start_replay_server

__all__ = [
    "REPLAY_MISS",
    "VOLATILE_MASKS",
    "AsyncRecordingTransport",
    "CassetteMatcher",
    "Exchange",
    "LoopbackServer",
    "ProposalLedger",
    "Recorder",
    "RecordingTransport",
    "Replay",
    "assemble_completion",
    "last_user_message",
    "load_cassette",
    "mask_volatile",
    "normalise_request",
    "parse_sse",
    "preview_fingerprint",
    "recording_async_http_client",
    "recording_http_client",
    "stale_sentence",
    "start_replay_server",
]
