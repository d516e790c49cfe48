"""Text made safe to show: which characters can hide, reorder or break text on a screen (or
crash a native renderer), and how to show them visibly.

One definition for the whole product: control characters (C0, DEL, C1), bidirectional
overrides and isolates, zero-width and line-separator characters, lone surrogates, and the two
characters XML forbids (U+FFFE, U+FFFF). A
reader who sees ``WHERE id = 42`` must be looking at ``WHERE id = 42``. ``safe_response`` is
where a response's every text is made safe before any view (the cell, the chat panel, the
CLI) or a native library (vl-convert aborts the process on a C0 character) sees it.
"""

from __future__ import annotations

import re
from typing import Any

# C0 (but not the space), DEL, C1; bidi marks, embeddings, overrides and isolates; zero-width
# characters and the BOM; Unicode line/paragraph separators; lone surrogates; U+FFFE and U+FFFF,
# which XML forbids (vl-convert's SVG text parser aborts the process on them).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff\ufffe\uffff]")

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


def _keep_layout(match: re.Match) -> str:
    ch = match.group(0)
    return ch if ch in "\n\t" else escape_char(ch)


def visible_lines(text: str) -> str:
    """Prose (Markdown, SQL) with every unsafe character escaped but its line breaks and tabs
    kept; a carriage return (alone or before a line feed) becomes a line feed, so a terminal
    cannot be made to write over a line."""
    return UNSAFE.sub(_keep_layout, text.replace("\r\n", "\n").replace("\r", "\n"))


_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """Lone surrogates (which no encoder or database accepts) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


# -- a response, as every view receives it ---------------------------------------------------

#: Fields that are prose (a message's Markdown, a summary, SQL): their lines and tabs stay.
PROSE_FIELDS = ("text", "summary", "sql", "dry_run_error")


def safe_value(value: Any) -> Any:
    """A JSON value with every string in it (keys too) shown visibly; other values as they are."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {visible(str(k)): safe_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe_value(v) for v in value]
    return value


def _prose(raw: Any, safe: dict[str, Any]) -> None:
    for name in PROSE_FIELDS:
        if isinstance(raw.get(name), str):
            safe[name] = visible_lines(raw[name])


def safe_response(response: Any) -> dict[str, Any] | None:
    """A response (a resolved model, a proposal, or their JSON) as every renderer takes it.

    Every text is shown visibly: titles, labels, names, KPI values and subtexts, column names,
    table cells, pill labels, the preview's sample values (each exactly, a line break as
    ``\\n``); the prose fields of the response and of each section (``PROSE_FIELDS``) keep
    their line breaks. Idempotent, so a stored answer shown again comes out the same.
    """
    if response is None:
        return None
    if hasattr(response, "model_dump"):
        response = response.model_dump(mode="json")
    elif hasattr(response, "as_dict"):
        response = response.as_dict()
    raw = dict(response)
    safe = safe_value(raw)
    _prose(raw, safe)
    for raw_section, section in _pairs(raw.get("sections"), safe.get("sections")):
        _prose(raw_section, section)
        for raw_item, item in _pairs(raw_section.get("items"), section.get("items")):
            _prose(raw_item, item)  # a KPI card keeps the SQL of its own result
    return safe


def _pairs(raw: Any, safe: Any):
    if isinstance(raw, list) and isinstance(safe, list):
        yield from ((r, s) for r, s in zip(raw, safe) if isinstance(r, dict) and isinstance(s, dict))
