"""What a person reads when the model service fails: one paragraph each, naming the model and
what to do. Service failures come from the ``openai`` client (after its own retries); answer
failures from reading the stream (:mod:`.completion`): an error inside an HTTP 200 stream, or a
stream that ended with nothing the product can use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..db.errors import shorten
from ..words import plural

if TYPE_CHECKING:
    from .completion import Completion
    from .provider import ModelSettings
    from .tools import ToolOutcome


class ModelAnswerError(Exception):
    """The model service answered, but not with anything the turn can use; the message says why."""


def _who(settings: ModelSettings) -> str:
    return f"The model {settings.model} at {settings.base_url or 'api.openai.com'}"


def stream_error(settings: ModelSettings, provider_message: str) -> str:
    return (
        f"{_who(settings)} reported an error in the middle of its answer: {shorten(provider_message, 300)}. "
        "Nothing more arrived; ask again, or try another model if it keeps happening."
    )


def empty_answer(settings: ModelSettings, completion: Completion) -> str:
    """A stream with no text and no call: say what did arrive, so the cause can be found."""
    seen = plural(completion.chunks, "chunk")
    reason = f"finish_reason {completion.finish_reason!r}" if completion.finish_reason else "no finish_reason"
    thinking = ", only the model's thinking (reasoning_content)" if completion.reasoning_chars else ""
    hint = {
        "length": " The answer hit the token limit: ask a narrower question or use a model with a larger context.",
        "content_filter": " The provider's content filter stopped the answer.",
    }.get(completion.finish_reason or "", " Ask again; `nexus-lab doctor` checks whether this server can call tools.")
    return f"{_who(settings)} ended its answer with no text and no tool call ({seen}, {reason}{thinking}).{hint}"


def unknown_tools_note(outcomes: Sequence[ToolOutcome]) -> str:
    """What the model hears about calls to tools it does not have (nothing of them ran)."""
    from .tools import TOOL_NAMES

    named = ", ".join(repr(o.tool) if o.tool.strip() else "(no name)" for o in outcomes)
    return (
        f"Your previous reply called {named}, which is not one of your tools, so nothing of it ran. "
        f"The tools are: {', '.join(TOOL_NAMES)}. Call one of them by its exact name, with JSON arguments."
    )


def describe_model_error(exc: Exception) -> str:
    """One paragraph for a model-service failure (after the client's own retries)."""
    if isinstance(exc, ModelAnswerError):
        return str(exc)
    try:
        import openai
    except ImportError:  # pragma: no cover
        return str(exc)
    if isinstance(exc, openai.AuthenticationError):
        return "The model service rejected the API key (401). Check OPENAI_API_KEY."
    if isinstance(exc, openai.RateLimitError):
        wait, tries = _retry_after(exc), 1 + _retries(exc)
        return (
            f"The model service is rate-limiting requests (429: {_api_message(exc, 160)}) and "
            f"{plural(tries, 'try', 'tries')} did not get through; "
            + (
                f"it asks to wait {wait} {'second' if wait == '1' else 'seconds'} before asking again."
                if wait
                else "wait a moment and ask again."
            )
        )
    if isinstance(exc, openai.NotFoundError):
        from ..replay.cassette import REPLAY_MISS

        if getattr(exc, "code", None) == REPLAY_MISS:  # the replay server's paragraph: which cassette, how to re-record
            return _api_message(exc, limit=None)
        return f"The model service does not know this model or path (404): {_api_message(exc)}. Check NEXUS_MODEL and OPENAI_BASE_URL."
    if isinstance(exc, openai.APIStatusError):
        if 400 <= exc.status_code < 500:  # the request itself was refused: asking again sends the same
            return (
                f"The model service refused the request with HTTP {exc.status_code}: {_api_message(exc)}. "
                "Check NEXUS_MODEL and what the service accepts; starting a new conversation (%nexus reset) helps "
                "if the conversation grew too long."
            )
        return f"The model service failed with HTTP {exc.status_code}: {_api_message(exc)}. Ask again in a moment."
    if isinstance(exc, openai.APITimeoutError):
        return "The model service did not answer in time; ask again, or check OPENAI_BASE_URL."
    if isinstance(exc, openai.APIConnectionError):
        return "Cannot reach the model service (connection failed or dropped mid-answer); check OPENAI_BASE_URL and ask again."
    if isinstance(exc, openai.APIError):
        return f"The model service sent a broken answer: {exc}. Ask again."
    import httpx

    if isinstance(exc, (httpx.HTTPError,)):
        return "The connection to the model service dropped mid-answer; ask again."
    return f"The turn failed unexpectedly: {type(exc).__name__}: {exc}"


def _api_message(exc, limit: int | None = 300) -> str:
    body = getattr(exc, "body", None)
    text = str(getattr(exc, "message", exc))
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            text = str(err["message"])
    return shorten(text, limit) if limit else text


def _retry_after(exc: Any) -> str | None:
    """The service's ``Retry-After`` (seconds), as it said it."""
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    return value.strip() if value and value.strip().replace(".", "", 1).isdigit() else None


def _retries(exc: Any) -> int:
    """How many retries the client made for this request (it sends the count in a header)."""
    request = getattr(getattr(exc, "response", None), "request", None)
    try:
        return int(request.headers.get("x-stainless-retry-count", "0")) if request is not None else 0
    except ValueError:
        return 0


STOPPED = "Stopped: the turn was cancelled before it finished."


def turn_failure(exc: BaseException, *, cancelled: bool, secrets: Sequence[object] = ()) -> str:
    """The paragraph a turn that failed with ``exc`` ends with, with the database's and the model
    service's secrets (``secrets``: API keys) masked."""
    from ..db.errors import QueryError, mask_secrets
    from .provider import ModelConfigError, mask_api_key

    if cancelled:
        message = STOPPED
    elif isinstance(exc, ModelConfigError | QueryError | ValueError):
        message = str(exc)
    else:  # model service errors and anything unexpected
        message = describe_model_error(exc)  # type: ignore[arg-type]
    message = mask_secrets(message)
    for key in set(secrets):
        message = mask_api_key(message, key if isinstance(key, str) else None)
    return message
