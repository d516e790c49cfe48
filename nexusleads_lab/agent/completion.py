"""Reading one streamed Chat Completion into text, tool calls, usage and the quirks it showed.

Every OpenAI-compatible server streams tool calls a little differently (the conformance table
in ``tests/fixtures/provider_streams`` holds one recording per provider and quirk). The rules
below assemble all of them with one reader; each rule names the servers that need it.

Tool-call fragments (``delta.tool_calls[*]``):

1. A fragment belongs to the call last seen at its ``index``. Without an ``index`` (Mistral,
   Ollama up to 0.4.6) it belongs to the call with its ``id`` if one has it, else to the call
   last touched.
2. It starts a new call instead when there is no such call, or when it carries a non-empty
   ``id`` different from that call's id AND either a name or that call's arguments already
   parse as complete JSON (Ollama 0.20 gives every parallel call ``index: 0``, each with its
   own id and name). A different id with no name on an unfinished call is the same call
   (LiteLLM's proxy sends a new id on every fragment).
3. Without an id of its own, a fragment with a name and arguments starts a new call when the
   call it would join is already complete JSON (a second whole call at the same index), unless
   those arguments are that call's own again (see 4).
4. Joining a call: an id fills an empty one and never replaces it (DashScope sends ``id: ""``
   on later fragments); a name equal to the call's is not appended (vLLM's GLM parsers restate
   id, type and name in the last chunk); an empty name is ignored (LM Studio sends ``""``);
   arguments are appended, except the call's complete arguments sent again once it is complete
   (LiteLLM's proxy appends such a summary chunk, its arguments JSON-encoded twice). Arguments
   sent as a JSON object rather than a string are encoded.
5. A fragment carrying nothing (no id, no name, no arguments) is skipped.

The rest of a chunk: ``choices: []`` chunks (Azure's content filter results, usage chunks) are
read for their usage only; ``reasoning_content`` / ``reasoning`` (DeepSeek, llama.cpp, xAI,
vLLM) is counted as thinking and never becomes the answer; usage is the provider's own figure,
the last value reported (vLLM's continuous usage stats and Groq's ``x_groq`` repeat a
cumulative count, so summing over chunks would count a turn many times over), and
``total_tokens`` is taken as reported even when it is not prompt + completion (xAI adds
reasoning tokens); an ``error`` object in an HTTP 200 stream or ``finish_reason: "error"``
(OpenRouter) makes the completion failed with the provider's message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..safetext import without_surrogates

USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
# The fields a chunk of the OpenAI API has; anything else is a provider's extra, named in quirks.
_KNOWN_CHUNK_FIELDS = frozenset(
    {"id", "object", "created", "model", "system_fingerprint", "choices", "usage", "service_tier", "obfuscation"}
)
_READ_FIELDS = _KNOWN_CHUNK_FIELDS | {"error"}  # not extras either


@dataclass
class ToolCall:
    """One call as the model made it, assembled from its fragments."""

    id: str
    name: str
    arguments: str
    index: int | None = None
    fragments: int = 1

    def parsed(self) -> Any:
        """The arguments as JSON, or ``ValueError`` when they are not (cut off, never closed)."""
        try:
            return json.loads(self.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"{exc.msg} at character {exc.pos}") from None

    @property
    def complete(self) -> bool:
        if self.arguments.rstrip()[-1:] != "}":  # no JSON object: said without parsing (asked every fragment)
            return False
        try:
            return isinstance(self.parsed(), dict) and bool(self.arguments.strip())
        except ValueError:
            return False


@dataclass
class Completion:
    """What one streamed request produced."""

    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str | None = None
    reasoning_chars: int = 0
    error: str | None = None  # the provider's own message, from an error inside a 200 stream
    chunks: int = 0
    quirks: list[str] = field(default_factory=list)
    shown: str = ""  # the answer as the streaming display showed it at the end (the done agent.text)

    @property
    def empty(self) -> bool:
        """Nothing the product can use: no text and no call."""
        return not self.text.strip() and not self.calls


def _mapping(value: Any) -> dict[str, Any]:
    """A chunk's object as a dict (a model may send anything: what is not an object is empty)."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _index(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class StreamReader:
    """Feed it the chunks of one stream (plain JSON values) in order; ``finish()`` gives the completion."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: list[ToolCall] = []
        self._at_index: dict[int, ToolCall] = {}
        self._last: ToolCall | None = None
        self._usage: dict[str, int] | None = None
        self._usage_chunks = 0
        self._groq_usage: dict[str, int] | None = None
        self._quirks: dict[str, None] = {}  # ordered set
        self._done = Completion()

    def quirk(self, text: str) -> None:
        self._quirks.setdefault(text)

    def feed(self, raw: Any) -> str:
        """Read one chunk; returns the answer text it added (for streaming display)."""
        # Called for every chunk (a token each, from a real model): the checks are the rules'
        # own, written with local lookups and no helper calls on the common path.
        done = self._done
        done.chunks += 1
        chunk = raw if isinstance(raw, dict) else {}
        if not chunk.keys() <= _READ_FIELDS:
            extras = sorted(k for k in chunk if k not in _READ_FIELDS)
            self.quirk(f"extra fields ({', '.join(extras[:4])})")
        get = chunk.get
        error = get("error")
        if error:
            done.error = _error_message(error)
        usage = get("usage")
        if usage or "x_groq" in chunk:
            self._read_usage(chunk)
        choices = get("choices")
        if not isinstance(choices, list):
            choices = []
        if not choices:
            if "choices" in chunk and not usage:
                self.quirk("chunks with no choices (choices: [])")
            return ""
        added = ""
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            reason = choice.get("finish_reason")
            if reason and isinstance(reason, str):
                done.finish_reason = reason
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            if "reasoning_content" in delta or "reasoning" in delta:
                for key in ("reasoning_content", "reasoning"):
                    thinking = delta.get(key)
                    if isinstance(thinking, str) and thinking:
                        done.reasoning_chars += len(thinking)
                        self.quirk(f"{key} (the model's thinking, not shown as the answer)")
            content = delta.get("content")
            if content and isinstance(content, str):
                piece = content if content.isascii() else without_surrogates(content)  # surrogates are not ASCII
                self._text.append(piece)
                added += piece
            fragments = delta.get("tool_calls")
            if fragments and isinstance(fragments, list):
                for fragment in fragments:
                    self._fragment(fragment if isinstance(fragment, dict) else {})
        return added

    # -- tool calls --------------------------------------------------------------------------

    def _fragment(self, fragment: dict[str, Any]) -> None:
        function = _mapping(fragment.get("function"))
        call_id = _text(fragment.get("id"))
        name = _text(function.get("name"))
        arguments = function.get("arguments")
        if isinstance(arguments, (dict, list)):
            self.quirk("arguments sent as a JSON object, not a string")
            arguments = json.dumps(arguments, ensure_ascii=False)
        arguments = _text(arguments)
        if not (call_id or name or arguments):
            return
        index = _index(fragment.get("index"))
        if index is None:
            self.quirk("tool-call fragments without index")
            target = next((c for c in self._calls if call_id and c.id == call_id), self._last)
        else:
            target = self._at_index.get(index)
        if fragment.get("id") == "" and target is not None:
            self.quirk("empty id on later fragments")
        if function.get("name") == "" and target is not None:
            self.quirk("empty name on later fragments")
        if "type" not in fragment and (call_id or name):
            self.quirk("tool-call header without type")
        if target is None or self._starts_new(target, call_id, name, arguments):
            if target is not None and index is not None and index == target.index:
                self.quirk("parallel calls sharing one index")
            target = ToolCall(id=call_id, name=name, arguments=arguments, index=index)
            self._calls.append(target)
            if arguments and name and not target.complete:
                self.quirk("arguments begin in the first (header) fragment")
        else:
            self._join(target, call_id, name, arguments)
            target.fragments += 1
        if index is not None:
            self._at_index[index] = target
        self._last = target

    def _starts_new(self, target: ToolCall, call_id: str, name: str, arguments: str) -> bool:
        if call_id and target.id and call_id != target.id:
            if name or target.complete:
                return True
            self.quirk("a new id on every fragment of one call")
            return False
        if not call_id and name and arguments and target.complete:
            return not _restates(target, arguments)
        return False

    def _join(self, target: ToolCall, call_id: str, name: str, arguments: str) -> None:
        if call_id and not target.id:
            target.id = call_id
        if name:
            if not target.name:
                target.name = name
            elif name == target.name:
                self.quirk("name repeated on later fragments")
            else:
                target.name += name  # a name streamed in pieces
        if arguments and target.complete and _restates(target, arguments):
            self.quirk("the whole call sent again after it was complete")
            return
        if call_id and call_id == target.id and name and arguments:
            self.quirk("the last fragment restates id and name")
        target.arguments += arguments

    # -- usage ---------------------------------------------------------------------------------

    def _read_usage(self, chunk: dict[str, Any]) -> None:
        usage = _usage_of(chunk.get("usage"))
        if usage is not None:
            self._usage_chunks += 1
            self._usage = usage
        groq = _usage_of(_mapping(chunk.get("x_groq")).get("usage"))
        if groq is not None:
            self._groq_usage = groq

    def finish(self) -> Completion:
        """The completion as read so far (call once the stream has ended)."""
        done = self._done
        done.text = "".join(self._text)
        done.calls = list(self._calls)
        for n, call in enumerate(done.calls):
            if not call.id:
                call.id = f"call_{n}"
                self.quirk("tool calls without an id")
            if call.fragments == 1 and call.name:
                self.quirk("a whole call in one fragment")
        usage = self._usage if self._usage is not None else self._groq_usage
        if self._usage is not None and self._groq_usage is not None:
            self.quirk("usage reported twice (usage and x_groq.usage)")
        if self._usage_chunks > 1:
            self.quirk(f"usage on {self._usage_chunks} chunks (cumulative: the last one counts)")
        if usage:
            if "total_tokens" not in usage:
                usage["total_tokens"] = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
            elif usage["total_tokens"] != usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0):
                self.quirk("total_tokens is not prompt + completion")
            done.usage = usage
        if done.calls and done.finish_reason not in ("tool_calls", "function_call"):
            self.quirk(f"finish_reason {done.finish_reason or 'missing'} after tool calls")
        if done.finish_reason == "error" and done.error is None:
            done.error = "the stream ended with finish_reason 'error'"
        done.quirks = list(self._quirks)
        return done


def read_all(chunks: Iterable[Any]) -> Completion:
    """A whole stream at once (tests, the doctor)."""
    reader = StreamReader()
    for chunk in chunks:
        reader.feed(chunk)
    return reader.finish()


def _restates(call: ToolCall, arguments: str) -> bool:
    """Whether ``arguments`` are the call's complete arguments again (a summary chunk at the end,
    sometimes JSON-encoded twice), rather than more of them."""
    try:
        value = json.loads(arguments)
        if isinstance(value, str):
            value = json.loads(value)
        return bool(value == call.parsed())
    except (ValueError, TypeError):
        return False


def _usage_of(value: Any) -> dict[str, int] | None:
    usage = _mapping(value)
    found = {key: _count(usage.get(key)) for key in USAGE_KEYS if key in usage}
    return found or None


def _error_message(error: Any) -> str:
    if isinstance(error, dict):
        message = error.get("message") or error.get("error") or json.dumps(error, default=str)
        return str(message)
    return str(error)


@dataclass
class PreparedCall:
    """A call ready to run and to be stored: its tool name matched against the tool list, and the
    arguments the follow-up request may carry (always a JSON object: a strict server rejects the
    history otherwise, so arguments that are not one are kept as ``{}`` there, with the reason
    going back to the model in the tool result)."""

    id: str
    name: str
    arguments: str  # as the model sent them, for the tool runner to judge
    known: bool
    sent_arguments: str


def prepare_calls(completion: Completion, tool_names: Iterable[str]) -> list[PreparedCall]:
    """The completion's calls with names normalised (case and whitespace, when that matches one
    tool only), ids made unique, and arguments safe to send back; quirks found are noted."""
    names = list(tool_names)
    prepared: list[PreparedCall] = []
    seen_ids: set[str] = set()
    for n, call in enumerate(completion.calls):
        name = call.name
        if name not in names:
            matches = [t for t in names if t.casefold() == name.strip().casefold()]
            if len(matches) == 1:
                name = matches[0]
                _note(completion, "tool name in another case or with spaces")
        call_id = call.id
        if call_id in seen_ids:
            call_id = f"{call_id}_{n}"
            _note(completion, "one id for several calls")
        seen_ids.add(call_id)
        try:
            valid = isinstance(call.parsed(), dict)
        except ValueError:
            valid = False
        if not valid:
            _note(completion, "tool arguments that are not a JSON object")
        sent = (call.arguments or "{}") if valid else "{}"
        prepared.append(PreparedCall(call_id, name, call.arguments, name in names, sent))
    return prepared


def _note(completion: Completion, quirk: str) -> None:
    if quirk not in completion.quirks:
        completion.quirks.append(quirk)
