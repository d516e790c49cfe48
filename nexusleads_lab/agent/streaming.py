"""What a person sees while the answer streams in, worked out chunk by chunk.

The answer is prose, or one response JSON (perhaps in a code fence, perhaps after a line of
prose). While it streams, a person sees the prose, a message's decoded text so far, or a
dashboard's or confirm's title so far; never half a code fence or half a JSON key.

:class:`StreamingDisplay` keeps its scan state between chunks, so an answer costs time and
memory linear in its length however finely it is cut, and each :meth:`StreamingDisplay.feed`
returns what changed as an :class:`Edit`. :func:`partial_display_text` is the same for one
whole buffer.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from typing import NamedTuple

log = logging.getLogger(__name__)

__all__ = ["Edit", "StreamingDisplay", "decode_json_string", "partial_display_text"]


# -- JSON strings, decoded as far as they have come ---------------------------------------------

_STR_RUN = re.compile(r'[^"\\]+')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")


def decode_json_string(s: str, j: int) -> tuple[str, int, bool]:
    """Decode a JSON string from s[j] (just after its opening quote), tolerating a cut-off end.

    -> (decoded, index after the closing quote or where decoding stopped, complete). An escape
    cut off at the end is left for later: decoding resumes at it once more text has come.
    """
    n = len(s)
    out: list[str] = []
    while j < n:
        m = _STR_RUN.match(s, j)
        if m:
            out.append(m.group())
            j = m.end()
            continue
        c = s[j]
        if c == '"':
            return "".join(out), j + 1, True
        # backslash
        if j + 1 >= n:
            break
        e = s[j + 1]
        if e != "u":
            out.append(_ESCAPES.get(e, e))
            j += 2
            continue
        hx = s[j + 2 : j + 6]
        if len(hx) < 4:
            break  # \uXX cut off
        if not _HEX4.fullmatch(hx):
            out.append(hx)
            j += 6
            continue
        cp = int(hx, 16)
        if 0xD800 <= cp < 0xDC00:
            nxt = s[j + 6 : j + 12]
            if len(nxt) < 6 and (nxt == "\\u"[: len(nxt)] or nxt.startswith("\\u")):
                break  # the low surrogate may still come
            if nxt.startswith("\\u") and _HEX4.fullmatch(nxt[2:6]) and 0xDC00 <= int(nxt[2:6], 16) < 0xE000:
                lo = int(nxt[2:6], 16)
                out.append(chr(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)))
                j += 12
                continue
        out.append(chr(cp))
        j += 6
    return "".join(out), j, False


# -- an append-only text ------------------------------------------------------------------------

_BLOCK = 256


class _Text:
    """Append-only text in blocks: appending costs the piece, any slice costs its length."""

    __slots__ = ("_blocks", "_recent", "_recent_start", "_starts")

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._starts: list[int] = []
        self._recent = ""  # the last, short block, still growing
        self._recent_start = 0

    def __len__(self) -> int:
        return self._recent_start + len(self._recent)

    def append(self, piece: str) -> None:
        self._recent += piece
        if len(self._recent) >= _BLOCK:
            self._blocks.append(self._recent)
            self._starts.append(self._recent_start)
            self._recent_start += len(self._recent)
            self._recent = ""

    def slice(self, a: int, b: int) -> str:
        if a >= b:
            return ""
        rs = self._recent_start
        if a >= rs:
            return self._recent[a - rs : b - rs]
        i = bisect_right(self._starts, a) - 1
        out = []
        while a < b:
            block, start = (self._blocks[i], self._starts[i]) if i < len(self._blocks) else (self._recent, rs)
            out.append(block[a - start : b - start])
            a = start + len(block)
            i += 1
        return "".join(out)

    def __str__(self) -> str:
        return self.slice(0, len(self))


# -- the top level of a response JSON -----------------------------------------------------------

_KEYS = ("type", "text", "title")  # the only fields the display reads
_LONGEST_KEY = max(map(len, _KEYS))
_MESSAGE_TYPES = ("message", "text", "markdown")
_TITLED_TYPES = ("dashboard", "confirm", "confirmation")
_JSON_BLANK = re.compile(r"[ \t\r\n]*")
_SCALAR_END = re.compile(r"[,}\] \t\r\n]")
_NESTING = re.compile(r'[{\[]+|[}\]]+|"')
_STRING_BODY = re.compile(r'[^"\\]*(?:\\[\s\S][^"\\]*)*')  # a JSON string's characters and whole escapes


def _skip(blank: re.Pattern[str], s: str, i: int) -> int:
    """The index after the run of blanks at s[i] (``blank`` matches the empty string too)."""
    m = blank.match(s, i)
    assert m is not None  # a starred pattern matches everywhere
    return m.end()


class _Value:
    __slots__ = ("done", "text")

    def __init__(self) -> None:
        self.text = _Text()
        self.done = False


class _TopLevel:
    """The top-level string fields of a response JSON as it streams in, from its '{' on.

    Reads the object as ``responses.scan_top_level`` reads a whole one: a later duplicate
    wins, a non-string value removes the key once it is complete, and anything unexpected
    where a key should be ends the object. Only type, text and title are kept.
    """

    def __init__(self) -> None:
        self.values: dict[str, _Value] = {}
        self.kind: str | None = None  # the type, once complete: stripped and lowercased
        self._state = "open"
        self._rest = ""  # an escape cut off at the end of the last chunk
        self._key: list[str] | None = None  # the key being read (None: too long to be kept)
        self._key_len = 0
        self._member: str | None = None  # the kept key whose value is being read
        self._depth = 0  # of a nested value being skipped
        self._in_string = False  # inside a string of a nested value

    def feed(self, chunk: str) -> None:
        s = self._rest + chunk if self._rest else chunk
        self._rest = ""
        i, n = 0, len(s)
        while i < n:
            state = self._state
            if state == "members":
                i = _skip(_JSON_BLANK, s, i)
                if i == n:
                    return
                c = s[i]
                if c == ",":
                    i += 1
                elif c == '"':
                    i += 1
                    self._key, self._key_len, self._state = [], 0, "key"
                else:  # '}' or anything else: the object is over
                    self._state = "over"
            elif state == "string":
                part, i, done = decode_json_string(s, i)
                value = self.values.get(self._member) if self._member else None
                if value is not None and part:
                    value.text.append(part)
                if not done:
                    self._rest = s[i:]
                    return
                if value is not None:
                    value.done = True
                    if self._member == "type":
                        self.kind = str(value.text).strip().lower()
                self._state = "members"
            elif state == "key":
                part, i, done = decode_json_string(s, i)
                if self._key is not None:
                    self._key_len += len(part)
                    self._key = [*self._key, part] if self._key_len <= _LONGEST_KEY else None
                if not done:
                    self._rest = s[i:]
                    return
                key = "".join(self._key) if self._key is not None else None
                self._member = key if key in _KEYS else None
                self._state = "colon"
            elif state == "colon":
                i = _skip(_JSON_BLANK, s, i)
                if i == n:
                    return
                if s[i] != ":":
                    self._state = "over"
                    continue
                i += 1
                self._state = "value"
            elif state == "value":
                i = _skip(_JSON_BLANK, s, i)
                if i == n:
                    return
                c = s[i]
                if c == '"':
                    i += 1
                    if self._member:
                        self.values[self._member] = _Value()
                        if self._member == "type":
                            self.kind = None
                    self._state = "string"
                elif c in "{[":
                    self._depth, self._in_string, self._state = 0, False, "nested"
                else:
                    self._state = "scalar"
            elif state == "scalar":
                m = _SCALAR_END.search(s, i)
                if m is None:
                    return
                i = m.start()
                self._drop_member()
            elif state == "nested":
                if self._in_string:  # passed over, not decoded: only its end matters
                    i = _skip(_STRING_BODY, s, i)
                    if i == n or s[i] != '"':  # not ended yet (perhaps on a cut-off escape, kept)
                        self._rest = s[i:]
                        return
                    self._in_string = False
                    i += 1
                    continue
                m = _NESTING.search(s, i)
                if m is None:
                    return
                token = m.group()
                if token == '"':
                    self._in_string = True
                    i = m.end()
                elif token[0] in "{[":
                    self._depth += len(token)
                    i = m.end()
                elif len(token) < self._depth:
                    self._depth -= len(token)
                    i = m.end()
                else:
                    i = m.start() + self._depth
                    self._drop_member()
            elif state == "open":  # the '{' itself
                i += 1
                self._state = "members"
            else:  # over: nothing after the object changes what is shown
                return

    def _drop_member(self) -> None:
        """A complete non-string value: its key no longer names a string."""
        if self._member:
            self.values.pop(self._member, None)
            if self._member == "type":
                self.kind = None
        self._state = "members"

    def shown(self) -> _Text | None:
        """The message text for a message, the title for a dashboard or confirm (else either)."""
        text, title = self.values.get("text"), self.values.get("title")
        if self.kind in _MESSAGE_TYPES:
            value = text
        elif self.kind in _TITLED_TYPES:
            value = title
        else:
            value = text if text is not None and len(text.text) else title
        return value.text if value is not None and len(value.text) else None


# -- prose, perhaps followed by a response JSON -------------------------------------------------

# Where a response JSON starts inside prose (or after a fence header).
_JSON_START = re.compile(r'(?:```[\w+-]*[ \t]*\n\s*)?\{\s*"(?:type|text|title)"\s*:')
# The end of the prose may be the start of a code fence or of the JSON: held back for now.
_HOLD_BACK = re.compile(r'(?:(?:^|\n)[ \t]*`{1,3}[\w+-]*[ \t]*|(?:^|\s)\{\s*"?[a-z]{0,5}"?\s*:?\s*)$')
_HOLD_REACH = 80  # a held-back marker starts within this many characters of the end
_AFTER_TICKS = re.compile(r"[\w+-]*[ \t]*\n?")
_AFTER_BRACE = re.compile(r'\s*"?[a-z]{0,5}"?\s*:?\s*')
_SPACE = re.compile(r"\s*")
_KEY_PREFIXES = frozenset(k[:i] for k in _KEYS for i in range(len(k) + 1))


class _Prose:
    """Prose: shown as it comes, minus a marker in progress at its end, until a response
    JSON starts; from then on, the JSON's text (or, while it has none, the prose before it)."""

    def __init__(self) -> None:
        self.text = _Text()  # the answer from its first non-blank character
        self.end = 0  # how much of it is shown
        self.json: _TopLevel | None = None
        self._marker = -1  # index of the last '`' or '{'
        self._marker_char = ""
        self._start = 0  # progress through '{' \s* '"' key '"' \s* ':' (0: no '{' yet)
        self._key = ""

    def feed(self, chunk: str) -> None:
        if self.json is not None:
            self.json.feed(chunk)
            return
        base = len(self.text)
        self.text.append(chunk)
        marker = max(chunk.rfind("`"), chunk.rfind("{"))
        if marker >= 0:
            self._marker, self._marker_char = base + marker, chunk[marker]
        if self._json_started(chunk):
            self._start_json()
            return
        self.end = self._held_back()

    def _held_back(self) -> int:
        """How much of the prose to show: all of it, unless its end may be a marker in progress."""
        n = len(self.text)
        if self._marker < n - _HOLD_REACH:
            return n
        # A held-back end always holds the last marker, and only what its pattern allows after it.
        after = _AFTER_BRACE if self._marker_char == "{" else _AFTER_TICKS
        if after.fullmatch(self.text.slice(self._marker + 1, n)) is None:
            return n
        w0 = max(0, n - _HOLD_REACH - 1)  # one character more: what may precede the marker
        h = _HOLD_BACK.search(self.text.slice(w0, n), max(0, n - _HOLD_REACH) - w0)
        if h is None:
            return n
        end = w0 + h.start()  # then rstrip, however far the blank run before it goes
        step = 2 * _HOLD_REACH
        while end > 0:
            start = max(0, end - step)
            kept = self.text.slice(start, end).rstrip()
            if kept:
                return start + len(kept)
            end, step = start, 2 * step
        return 0

    def _json_started(self, s: str) -> bool:
        """Whether the new text completes the first '{' \\s* '"type|text|title"' \\s* ':'."""
        i, n, state = 0, len(s), self._start
        while i < n:
            if state == 0:
                i = s.find("{", i)
                if i < 0:
                    break
                i, state = i + 1, 1
            elif state == 1 or state == 3:
                i = _skip(_SPACE, s, i)
                if i == n:
                    break
                if state == 3:
                    if s[i] == ":":
                        return True
                    state = 0
                elif s[i] == '"':
                    i, state, self._key = i + 1, 2, ""
                else:
                    state = 0
            else:
                c = s[i]
                if c == '"' and self._key in _KEYS:
                    i, state = i + 1, 3
                elif c != '"' and self._key + c in _KEY_PREFIXES:
                    self._key += c
                    i += 1
                else:
                    state = 0
        self._start = state
        return False

    def _start_json(self) -> None:
        s = str(self.text)  # once per answer
        m = _JSON_START.search(s)
        assert m is not None  # _json_started has just seen it complete
        self.end = len(s[: m.start()].rstrip())
        self.json = _TopLevel()
        self.json.feed(s[s.index("{", m.start()) :])

    def shown(self) -> tuple[_Text, int]:
        if self.json is not None:
            value = self.json.shown()
            if value is not None:
                return value, len(value)
        return self.text, self.end


# -- the display --------------------------------------------------------------------------------


class Edit(NamedTuple):
    """What changed on the screen: keep the first ``keep`` characters, then add ``delta``."""

    keep: int
    delta: str


_JSON_FENCES = ("", "json", "jsonc", "json5")


class StreamingDisplay:
    """What to show while the final answer streams in, fed one chunk at a time. Never raises.

    Prose -> the prose; a message JSON -> its decoded text so far; a dashboard or confirm
    JSON -> its title so far (else nothing). Code fences around the JSON are ignored.
    """

    def __init__(self) -> None:
        self._stage = "blank"  # then ticks, fence, fence body while undecided; then json, prose or nothing (or broken)
        self._head = _Text()  # the answer from its first non-blank character, while its kind is undecided
        self._lang = ""
        self._reader: _TopLevel | _Prose | None = None
        self._shown: _Text | None = None  # where the shown text comes from
        self._length = 0

    @property
    def text(self) -> str:
        return self._shown.slice(0, self._length) if self._shown is not None else ""

    def feed(self, chunk: str) -> Edit | None:
        """Take the next piece of the answer; return how the shown text changed (None: it did not)."""
        if not chunk or self._stage == "broken":
            return None
        try:
            self._route(chunk)
            return self._edit()
        except Exception:  # a display bug must not break the turn: keep showing what is shown
            log.warning("the streaming display stopped following the answer", exc_info=True)
            self._stage = "broken"
            return None

    def _route(self, chunk: str) -> None:
        stage = self._stage
        if stage == "blank":
            chunk = chunk.lstrip()
            if not chunk:
                return
            if chunk[0] == "{":
                return self._read(_TopLevel(), chunk, "json")
            if chunk[0] != "`":
                return self._read(_Prose(), chunk, "prose")
            stage = self._stage = "ticks"
        if stage in ("json", "prose"):
            assert self._reader is not None  # set together with the stage, by _read
            return self._reader.feed(chunk)
        if stage == "nothing":
            return
        base = len(self._head)
        self._head.append(chunk)
        if stage == "ticks":
            start = self._head.slice(0, 3)
            if start == "```":
                stage, base = "fence", 3
            elif start.strip("`"):  # not a fence after all
                return self._read(_Prose(), str(self._head), "prose")
            else:
                return  # '`' or '``' so far
        if stage == "fence":
            nl = self._head.slice(base, len(self._head)).find("\n")
            if nl < 0:
                self._stage = "fence"
                return  # the fence header is still streaming
            nl += base
            self._lang = self._head.slice(3, nl).strip().lower()
            if self._lang not in _JSON_FENCES:
                return self._read(_Prose(), str(self._head), "prose")
            stage, base = "fence body", nl + 1
        body = self._head.slice(base, len(self._head)).lstrip()
        self._stage = "fence body"
        if not body:
            return
        if body[0] == "{":
            return self._read(_TopLevel(), body, "json")
        if self._lang:
            self._head, self._stage = _Text(), "nothing"  # a JSON fence around something else
            return
        self._read(_Prose(), str(self._head), "prose")

    def _read(self, reader: _TopLevel | _Prose, text: str, stage: str) -> None:
        self._reader, self._stage, self._head = reader, stage, _Text()
        reader.feed(text)

    def _current(self) -> tuple[_Text | None, int]:
        reader = self._reader
        if self._stage == "json":
            assert isinstance(reader, _TopLevel)  # _read sets the two together
            value = reader.shown()
            return (value, len(value)) if value is not None else (None, 0)
        if self._stage == "prose":
            assert isinstance(reader, _Prose)
            source, length = reader.shown()
            return (source, length) if length else (None, 0)
        return None, 0

    def _edit(self) -> Edit | None:
        source, length = self._current()
        if source is self._shown:
            if length == self._length:
                return None
            assert source is not None  # no source is always shown as length 0
            edit = Edit(self._length, source.slice(self._length, length)) if length > self._length else Edit(length, "")
        else:  # a different text is shown now (rare: prose gave way to the JSON's text, a key was repeated)
            old = self.text
            new = source.slice(0, length) if source is not None else ""
            if new == old:
                self._shown = source  # (same length too)
                return None
            keep = _common_prefix(old, new)
            edit = Edit(keep, new[keep:])
        self._shown, self._length = source, length
        return edit


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    lo, hi = 0, n  # a[:lo] == b[:lo]; the longest common prefix is at most hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def partial_display_text(buffer: str | None) -> str:
    """What to show for the answer streamed so far (see :class:`StreamingDisplay`). Never raises."""
    try:
        display = StreamingDisplay()
        display.feed(buffer if isinstance(buffer, str) else "" if buffer is None else str(buffer))
        return display.text
    except Exception:
        return ""
