"""JSON on the hot paths through orjson, with the standard library's meaning kept.

A turn encodes and decodes JSON a few dozen times (the model request, every streamed chunk, the
stored messages, every frame to a client); with ``json`` that was about a tenth of the server's
CPU per turn, with orjson (Rust, well kept, the fastest CPython JSON library) a fraction of it.
orjson refuses a few things ``json`` accepts; for those, and only then, the standard library
does the work, so a caller sees the same answers and the same errors:

- ``dumpb``/``dumps``: compact output (no spaces), UTF-8 (``json``'s ``ensure_ascii=False``).
  Lone surrogates, integers beyond 64 bits, keys that are not strings and a value holding a
  string longer than ``LONG_TEXT`` (see there: orjson's peak memory) go to ``json``;
  ``default`` is called for what neither encodes natively, and, as with ``json``, for datetimes
  and dataclasses (orjson's own formats for them are switched off); a float or tuple subclass is
  the number or list ``json`` writes, not given to ``default``. Differences that remain: a
  float NaN or infinity is ``null`` (``json`` writes ``NaN``, which is not JSON and which a
  browser's ``JSON.parse`` refuses), and a UUID or an enum is encoded without ``default``.
- ``loads``: text with a run of 19 or more digits (an integer orjson might read as a float) and
  what orjson cannot read (``NaN`` literals, lone surrogate escapes, invalid input) is
  read again by ``json``, which then accepts it or raises its own ``JSONDecodeError``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_COMPACT = (",", ":")
# orjson reads an integer beyond 64 bits as a float; json keeps it exact. Nineteen digits may
# already be beyond: text with such a run goes to json. Digits mapped to "0" and one ``in`` is a
# tenth of a regular expression's cost.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def _as_json(default: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``default`` for orjson: a float or tuple subclass (numpy's float64, a named tuple), which
    json encodes as the number or list it is and orjson leaves to ``default``, as json sees it."""

    def fallback(value: Any) -> Any:
        if isinstance(value, float):
            return float(value)
        if isinstance(value, tuple):
            return list(value)
        return default(value)

    return fallback


# orjson reserves room for a string's worst case as it writes it: ~16 bytes a character (a 1 MiB
# answer briefly took 17 MiB). A value holding a string longer than this is written by json, whose
# peak is about the output's size; looking for one costs a tenth of what orjson saves.
LONG_TEXT = 32 * 1024


def _long_text(obj: Any) -> bool:
    stack = [obj]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            if len(item) > LONG_TEXT:
                return True
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, str):
            if len(item) > LONG_TEXT:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def _finite(value: Any) -> Any:
    """``value`` with each float NaN or infinity in it as None (a copy of its containers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _by_json(obj: Any, default: Callable[[Any], Any] | None, ascii: bool) -> str:
    """``json``'s compact text of ``obj`` (and its errors), a float NaN or infinity written as
    ``null`` as orjson writes it, not as ``json``'s ``NaN``, which is not JSON."""
    try:
        return json.dumps(obj, default=default, ensure_ascii=ascii, separators=_COMPACT, allow_nan=False)
    except ValueError as exc:
        if not str(exc).startswith("Out of range float values"):
            raise  # a circular reference, or ``default``'s own error
    finite_default = default and (lambda value: _finite(default(value)))
    return json.dumps(_finite(obj), default=finite_default, ensure_ascii=ascii, separators=_COMPACT)


def dumpb(obj: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """``obj`` as compact UTF-8 JSON bytes."""
    if not _long_text(obj):
        try:
            return orjson.dumps(obj, default=default and _as_json(default), option=_OPTIONS)
        except orjson.JSONEncodeError:
            # Lone surrogates, big integers, keys orjson will not stringify, nesting beyond 254
            # levels, or ``default`` failing: the standard library decides (and raises its own
            # errors). ASCII, so a lone surrogate is an escape (valid JSON) rather than bytes
            # UTF-8 cannot hold.
            return _by_json(obj, default, ascii=True).encode("ascii")
    try:
        return _by_json(obj, default, ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate: escaped, as above
        return _by_json(obj, default, ascii=True).encode("ascii")


def dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``obj`` as compact JSON text (``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))``)."""
    if not _long_text(obj):
        try:
            return orjson.dumps(obj, default=default and _as_json(default), option=_OPTIONS).decode()
        except orjson.JSONEncodeError:
            pass
    return _by_json(obj, default, ascii=False)


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """``json.loads(data)``, through orjson when orjson can read it."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if _LONG_RUN not in raw.translate(_DIGITS_TO_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data if not isinstance(data, memoryview) else raw)
