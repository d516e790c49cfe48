"""One model call: the streamed request, its chunks read into a ``Completion``, and the answer's
text shown as it streams (``agent.text`` edits), all interruptible by the turn's ``cancel``."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from .. import fastjson
from .completion import Completion, StreamReader
from .events import AgentText
from .model_errors import ModelAnswerError, stream_error
from .streaming import StreamingDisplay
from .tools import TOOL_SPECS
from .turn import Turn

if TYPE_CHECKING:
    from .transport import ChatStream

log = logging.getLogger(__name__)


def request_body(model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """What every chat request sends: the messages, our tools, streamed with its usage at the end."""
    return {
        "model": model,
        "messages": messages,
        "tools": TOOL_SPECS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def open_stream(client: Any, model: str, messages: list[dict[str, Any]]) -> ChatStream:
    """Send one chat request through the ``openai`` client's transport (:mod:`.transport`); its
    chunks come back as plain JSON.

    The body is what the SDK's ``openapi_dumps`` writes (compact, UTF-8), through orjson
    (:mod:`..fastjson`: a tenth of the CPU for a turn's long message list). It holds only strings,
    numbers and plain containers, so the one difference that can show is a lone surrogate in a
    message (a client's frame may carry one): escaped as JSON allows, where the SDK's encoder
    failed the request with ``UnicodeEncodeError``."""
    from .transport import send_chat

    return send_chat(client, fastjson.dumpb(request_body(model, messages)))


def complete(turn: Turn, client: Any, messages: list[dict[str, Any]]) -> Completion:
    """Stream one completion (``agent.completion`` reads it) and show its text as it comes.

    The request goes out with the ``openai`` client's configuration, headers, retries and
    exceptions (:mod:`.transport`), its chunks read as plain JSON rather than a typed object each:
    a typed chunk costs ~75 µs of CPU, which at one chunk a token is most of a busy server's turn."""
    turn.check()
    import openai

    stream = open_stream(client, turn.model, messages)
    forget = turn.interruptible(stream.close)
    reader = StreamReader()
    display = StreamingDisplay()
    try:
        for chunk in stream:
            turn.check()
            piece = reader.feed(chunk)
            if piece:
                edit = display.feed(piece)
                if edit is not None:
                    turn.emit(AgentText(turn_id=turn.id, keep=edit.keep, delta=edit.delta, status="streaming"))
    except openai.APIError as exc:
        turn.check()
        if isinstance(exc, openai.APIStatusError) or not isinstance(exc.body, dict):
            raise
        # openai raises on an ``error`` object inside a 200 stream (OpenRouter): the provider's words
        raise ModelAnswerError(stream_error(turn.settings, str(exc.body.get("message") or exc))) from None
    except json.JSONDecodeError as exc:  # a data event that is not JSON (the SSE decoder parses each one)
        turn.check()
        raise ModelAnswerError(stream_error(turn.settings, f"a stream event that is not JSON ({exc})")) from None
    except Exception:
        turn.check()
        raise
    finally:
        forget()
    completion = reader.finish()
    completion.shown = display.text  # what the answer's done agent.text shows, without reading it again
    if completion.quirks:
        log.debug("model stream quirks: %s", "; ".join(completion.quirks))
    return completion
