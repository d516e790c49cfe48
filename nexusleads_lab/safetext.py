"""Which characters can hide, reorder or break text on a screen, and how to show them visibly.

One definition for the whole product: control characters (C0, DEL, C1), bidirectional
overrides and isolates, zero-width and line-separator characters, and lone surrogates. A
reader who sees ``WHERE id = 42`` must be looking at ``WHERE id = 42``.
"""

from __future__ import annotations

import re

# C0 (but not the space), DEL, C1; bidi marks, embeddings, overrides and isolates; zero-width
# characters and the BOM; Unicode line/paragraph separators; lone surrogates.
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)

_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def has_unsafe(text: str) -> bool:
    return UNSAFE.search(text) is not None


def escape_char(ch: str) -> str:
    """A visible escape for one unsafe character: ``\\n``, ``\\u202E``, ``\\x1B`` style."""
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}"


def visible(text: str) -> str:
    """The text with every unsafe character replaced by its visible escape."""
    return UNSAFE.sub(lambda m: escape_char(m.group(0)), text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """Lone surrogates (which no encoder or database accepts) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)
