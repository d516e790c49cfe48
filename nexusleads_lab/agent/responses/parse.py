"""Lenient parsing: the model's final text, whatever it wrote, becomes a resolved response.

:func:`parse_response` never raises. It finds the JSON in whatever the model wrote (code
fences, prose around it, trailing commas), keeps what is valid, drops what is not and says so
in ``Parsed.notes`` (short, human-readable). Plain prose is a normal answer: it becomes a
:class:`~.models.Message` without notes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pydantic import ValidationError

from ...db.engine import QueryResult
from ..streaming import decode_json_string
from .formatting import MAX_DEPTH, _clean_str, _clean_tree, _cut
from .models import (
    _SECTION_MODELS,
    _SECTION_TYPES,
    BarItem,
    Confirm,
    LinePoint,
    Message,
    ParsedResponse,
    PillItem,
    ResolvedDashboard,
    WidgetFromSource,
    WidgetItem,
    WidgetsSection,
    _lenient_number,
    _Model,
    _SectionModel,
    _uses_source,
    _widget_item_tag,
)
from .resolve import _Frames, _Notes, _resolve_section, finish_dashboard

# --------------------------------------------------------------------------
# pydantic errors, short

_UNION_MEMBER = re.compile(
    r"^(?:int|float|str|bool|none|list\[.*\]|dict\[.*\]|function-.*|tagged-union\[.*\]|union\[.*\]"
    r"|json-or-python\[.*\]|lax-or-strict\[.*\]|constrained-.*|[A-Z]\w*)$"
)


def _fmt_errors(e: ValidationError, limit: int = 3) -> str:
    """Concise pydantic errors: "items.2.value: Input should be a finite number; ..." (one per location)."""
    seen: dict[str, str] = {}
    for err in e.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if not (isinstance(x, str) and _UNION_MEMBER.match(x)))
        seen.setdefault(loc, err.get("msg", "invalid"))
    parts = [f"{loc}: {msg}" if loc else msg for loc, msg in list(seen.items())[:limit]]
    if len(seen) > limit:
        parts.append(f"and {len(seen) - limit} more")
    return "; ".join(parts)


# --------------------------------------------------------------------------
# lenient validation of the parsed JSON

_SECTION_ALIASES = {
    "widget": "widgets",
    "kpi": "widgets",
    "kpis": "widgets",
    "metrics": "widgets",
    "cards": "widgets",
    "bar": "bars",
    "bar_chart": "bars",
    "barchart": "bars",
    "lines": "line",
    "line_chart": "line",
    "linechart": "line",
    "timeseries": "line",
    "tables": "table",
    "pill": "pills",
    "badges": "pills",
}
_RESPONSE_ALIASES = {"text": "message", "markdown": "message", "confirmation": "confirm"}
_ITEM_MODELS: dict[str, tuple[str, type[_Model]]] = {
    "bars": ("items", BarItem),
    "line": ("points", LinePoint),
    "pills": ("items", PillItem),
}


def _coerce_limit(raw: dict, notes: _Notes, where: str) -> None:
    if "limit" not in raw or raw["limit"] is None:
        return
    v = raw["limit"]
    try:
        n = _lenient_number(v)
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n):
            raise ValueError
        raw["limit"] = int(n)
    except Exception:
        notes.add(f"{where}: limit {v!r} ignored")
        raw.pop("limit")


def _salvage_items(raw: dict, key: str, model: type[_Model], notes: _Notes, where: str, noun: str) -> None:
    items = raw.get(key)
    if items is None:
        return
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return  # reported by the section validation
    good = []
    for j, it in enumerate(items, 1):
        try:
            model.model_validate(it)
            good.append(it)
        except ValidationError as e:
            notes.add(f"{where}: dropped {noun} {j}: {_fmt_errors(e, 1)}")
    raw[key] = good


def _lenient_widgets(raw: dict, notes: _Notes, where: str) -> WidgetsSection | None:
    items = raw.get("items")
    default_source = raw.get("source")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        notes.add(f"skipped {where}: 'items' must be a list")
        return None
    good: list[Any] = []
    for j, it in enumerate(items, 1):
        if (
            isinstance(it, dict)
            and default_source not in (None, "")
            and it.get("source") in (None, "")
            and "column" in it
        ):
            it = dict(it, source=default_source)
        try:
            if _widget_item_tag(it) == "source":
                it = dict(it)
                if "row" in it:
                    try:
                        it["row"] = int(_lenient_number(it["row"]))
                    except Exception:
                        it.pop("row")
                good.append(WidgetFromSource.model_validate(it))
            else:
                good.append(WidgetItem.model_validate(it))
        except ValidationError as e:
            notes.add(f"{where}: dropped item {j}: {_fmt_errors(e, 1)}")
    return WidgetsSection(items=good)


def _lenient_section(raw: Any, i: int, notes: _Notes) -> _SectionModel | None:
    if not isinstance(raw, dict):
        notes.add(f"skipped section {i}: not an object")
        return None
    t = raw.get("type")
    if not isinstance(t, str) or not t.strip():
        notes.add(f"skipped section {i}: missing type")
        return None
    tn = t.strip().lower()
    tn = _SECTION_ALIASES.get(tn, tn)
    if tn not in _SECTION_TYPES:
        notes.add(f"skipped section {i}: unknown type {t!r}")
        return None
    where = f"section {i} ({tn})"
    if tn != t:
        notes.add(f"{where}: type {t!r} read as {tn!r}")
    raw = dict(raw, type=tn)
    if tn == "widgets":
        return _lenient_widgets(raw, notes, where)
    has_source = _uses_source(tn, raw)
    _coerce_limit(raw, notes, where)
    if not has_source:
        item_model = _ITEM_MODELS.get(tn)
        if item_model is not None:
            key, model = item_model
            _salvage_items(raw, key, model, notes, where, "point" if key == "points" else "item")
        if tn == "table":
            rows = raw.get("rows")
            if isinstance(rows, list):
                kept = [r for r in rows if isinstance(r, (dict, list))]
                if len(kept) != len(rows):
                    notes.add(f"{where}: dropped {len(rows) - len(kept)} row(s) that are neither objects nor lists")
                raw["rows"] = kept
                if "columns" not in raw or raw["columns"] is None:
                    cols = list(dict.fromkeys(str(k) for r in kept if isinstance(r, dict) for k in r))
                    raw["columns"] = cols
                    notes.add(f"{where}: no columns given; using the row keys")
        if tn == "bars" and "label" not in raw:
            raw["label"] = ""
        if tn == "line" and "label" not in raw:
            raw["label"] = ""
    try:
        return _SECTION_MODELS[(tn, has_source)].model_validate(raw)
    except ValidationError as e:
        notes.add(f"skipped {where}: {_fmt_errors(e)}")
        return None


def _lenient_dashboard(obj: dict, frames: _Frames, notes: _Notes) -> ResolvedDashboard | Message:
    title = obj.get("title")
    if isinstance(title, (int, float)) and not isinstance(title, bool):
        title = str(title)
    if not isinstance(title, str) or not title.strip():
        notes.add("dashboard has no title; using 'Dashboard'")
        title = "Dashboard"
    sections = obj.get("sections")
    if sections is None:
        notes.add("dashboard has no sections")
        sections = []
    elif isinstance(sections, dict):
        sections = [sections]
    elif not isinstance(sections, list):
        notes.add("dashboard 'sections' is not a list; ignored")
        sections = []
    resolved = []
    for i, raw in enumerate(sections, 1):
        try:
            sec = _lenient_section(raw, i, notes)
        except Exception as e:
            notes.add(f"skipped section {i}: internal error ({type(e).__name__}: {e})")
            continue
        if sec is None:
            continue
        r = _resolve_section(sec, frames, notes, f"section {i} ({sec.type})")
        if r is not None:
            resolved.append(r)
    return finish_dashboard(_cut(title), resolved, frames, notes)


def _lenient_confirm(obj: dict, notes: _Notes) -> Confirm:
    obj = dict(obj, type="confirm")
    sql = obj.get("sql")
    if isinstance(sql, str) and sql.strip():
        if obj.get("id") in (None, ""):
            obj["id"] = "confirm-" + hashlib.sha1(sql.encode("utf-8", "replace")).hexdigest()[:8]
            notes.add(f"confirm has no id; using {obj['id']!r}")
        if obj.get("title") in (None, ""):
            obj["title"] = "Confirm change"
            notes.add("confirm has no title")
        if obj.get("summary") is None:
            obj["summary"] = ""
            notes.add("confirm has no summary")
    return Confirm.model_validate(obj)  # may raise ValidationError -> message with raw text


# --------------------------------------------------------------------------
# finding the JSON in the text

_DECODER = json.JSONDecoder(strict=False)
_MAX_STARTS = 2000
_MAX_REPAIRS = 3  # string-aware brace matching is Python-speed: only for the first few candidates
_WRAPPER_KEYS = ("response", "output", "result", "answer", "final")


def _balanced_end(s: str, i: int) -> int | None:
    """Index after the bracket closing the object or array at s[i] ('{' or '['), string-aware;
    None if it is unbalanced or cut off."""
    depth, n, j = 0, len(s), i
    in_str = False
    while j < n:
        c = s[j]
        if in_str:
            if c == "\\":
                j += 2
                continue
            if c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return j + 1
            if depth < 0:
                return None
        j += 1
    return None


_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*")|,(\s*[}\]])', re.S)


def _strip_trailing_commas(s: str) -> str:
    return _TRAILING_COMMA.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), s)


def _find_objects(text: str) -> tuple[dict | None, bool, int, int]:
    """First top-level JSON object that parses, preferring one with a "type" key.

    -> (obj, repaired, start, end); obj None if none found.
    """
    first: tuple[dict, bool, int, int] | None = None
    pos = starts = repairs = 0
    while starts < _MAX_STARTS:
        i = text.find("{", pos)
        if i < 0:
            break
        starts += 1
        obj, end, repaired = None, -1, False  # end is set whenever obj is
        try:
            val, end = _DECODER.raw_decode(text, i)
            if isinstance(val, dict):
                obj = val
        except (ValueError, RecursionError):
            if repairs < _MAX_REPAIRS and re.match(r'\{\s*"', text[i : i + 64]):
                repairs += 1
                e = _balanced_end(text, i)
                if e is not None:
                    sub = text[i:e]
                    fixed = _strip_trailing_commas(sub)
                    if fixed != sub:
                        try:
                            val = _DECODER.decode(fixed)
                            if isinstance(val, dict):
                                obj, end, repaired = val, e, True
                        except (ValueError, RecursionError):
                            pass
        if obj is None:
            pos = i + 1
            continue
        if "type" in obj:
            return obj, repaired, i, end
        if first is None:
            first = (obj, repaired, i, end)
        pos = end
    if first is not None:
        return first
    return None, False, -1, -1


_FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n?(.*?)\n?[ \t]*```\s*$", re.S)


def _strip_fence(text: str) -> str:
    m = _FENCE.match(text)
    return m.group(1) if m else text


def _infer_type(obj: dict) -> str | None:
    if "sections" in obj:
        return "dashboard"
    if "sql" in obj and ("summary" in obj or "title" in obj or "id" in obj):
        return "confirm"
    if isinstance(obj.get("text"), str):
        return "message"
    return None


# --------------------------------------------------------------------------
# parse_response


@dataclass
class Parsed:
    """Result of :func:`parse_response`: a resolved response, notes about what was fixed or dropped, and the raw text."""

    response: ParsedResponse  # Message | ResolvedDashboard | Confirm
    notes: list[str] = field(default_factory=list)
    raw: str = ""


def _raw_message(raw: str) -> Message:
    return Message(text=_clean_str(raw.strip()))


def parse_response(
    text: str | None, frames: Mapping[str, pd.DataFrame] | Mapping[str, QueryResult] | None = None
) -> Parsed:
    """Parse the agent's final text into a resolved response (its dashboard's results: DataFrames,
    ``QueryResult``s or a ``Frames``). Never raises."""
    if text is None:
        raw = ""
    elif isinstance(text, str):
        raw = text
    else:
        try:
            raw = text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else str(text)
        except Exception:
            raw = ""
    notes = _Notes()
    try:
        resp = _parse(raw, frames, notes)
    except Exception as e:
        notes.add(f"internal error while parsing the response ({type(e).__name__}: {e})")
        try:
            resp = _raw_message(raw)
        except Exception:
            resp = Message(text="")
    return Parsed(response=resp, notes=list(notes), raw=raw)


def _parse(raw: str, frames: Mapping[str, pd.DataFrame] | Mapping[str, QueryResult] | None, notes: _Notes) -> Any:
    stripped = raw.strip()
    if not stripped:
        notes.add("empty response")
        return Message(text="")
    obj, repaired, start, end = _find_objects(raw)
    body = _strip_fence(stripped).strip()
    whole = obj is not None and body == raw[start:end].strip()
    if obj is None:
        if re.match(r'\{\s*(?:"|\}|$)', body):
            # meant to be JSON, but it does not parse (truncated or broken)
            fields = scan_top_level(body, 0)
            cut_type = fields.get("type", ("", False))[0]
            if cut_type == "message" and "text" in fields:
                notes.add("the response JSON is incomplete or invalid; showing its text")
                return Message(text=_clean_str(fields["text"][0]))
            notes.add("the response looks like JSON but does not parse" + _json_error(body))
            return _raw_message(raw)
        return Message(text=_clean_str(stripped))  # plain prose: a normal answer
    obj = _cleaned(obj, raw)
    if repaired:
        notes.add("repaired trailing commas in the JSON")
    if "type" not in obj:
        for k in _WRAPPER_KEYS:
            if isinstance(obj.get(k), dict) and "type" in obj[k]:
                obj = obj[k]
                notes.add(f"used the response nested under {k!r}")
                break
    t = obj.get("type")
    if t is None:
        t = _infer_type(obj)
        if t is not None and not whole and t != "dashboard":
            t = None  # e.g. {"text": ...} quoted inside prose is not the answer
        if t is None:
            if whole:
                notes.add("the JSON has no 'type'; showing it as text")
                return _raw_message(raw)
            return Message(text=_clean_str(stripped))  # prose that happens to contain JSON
        notes.add(f"the JSON has no 'type'; read as {t!r}")
    if not isinstance(t, str):
        notes.add(f"invalid response type {t!r}; showing the raw text")
        return _raw_message(raw)
    tn = t.strip().lower()
    tn = _RESPONSE_ALIASES.get(tn, tn)
    fr = _Frames(frames)
    if tn == "message":
        try:
            return Message.model_validate(dict(obj, type="message"))
        except ValidationError as e:
            notes.add(f"invalid message: {_fmt_errors(e)}")
            return _raw_message(raw)
    if tn == "dashboard":
        return _lenient_dashboard(obj, fr, notes)
    if tn == "confirm":
        try:
            return _lenient_confirm(obj, notes)
        except ValidationError as e:
            notes.add(f"invalid confirm: {_fmt_errors(e)}")
            return _raw_message(raw)
    notes.add(f"unknown response type {t!r}; showing the raw text")
    return _raw_message(raw)


# A lone surrogate in parsed JSON comes from the text itself or from an escape of one (\\ud800).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _cleaned(obj: dict, raw: str) -> dict:
    """``obj`` (parsed from ``raw``) with its strings made encodable and absurd nesting cut
    (``_clean_tree``). When the text can hold neither (no surrogate in it, none escaped, too few
    brackets to nest past ``MAX_DEPTH``), as most answers, the fresh tree is already that: not
    walked and copied again."""
    if (
        _clean_str(raw) is raw  # the same string back: nothing in it to replace
        and raw.count("{") + raw.count("[") <= MAX_DEPTH
        and _SURROGATE_ESCAPE.search(raw) is None
    ):
        return obj
    return _clean_tree(obj)


def _json_error(s: str) -> str:
    try:
        _DECODER.decode(s)
    except ValueError as e:
        return f" ({e})"
    except RecursionError:
        return " (nested too deeply)"
    return ""


# --------------------------------------------------------------------------
# the top-level fields of a cut-off response JSON (for a truncated message)


def _decode_string(s: str, i: int) -> tuple[str, int, bool]:
    """Decode the JSON string starting at s[i] == '"', tolerating a cut-off end."""
    return decode_json_string(s, i + 1)


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in " \t\r\n":
        i += 1
    return i


def _skip_value(s: str, i: int) -> int | None:
    """Index after the JSON value at s[i]; None if it is cut off."""
    c = s[i]
    if c == '"':
        _, j, done = _decode_string(s, i)
        return j if done else None
    if c in "{[":
        return _balanced_end(s, i)
    n, j = len(s), i
    while j < n and s[j] not in ",}] \t\r\n":
        j += 1
    return j if j < n else None


def scan_top_level(s: str, i: int) -> dict[str, tuple[str, bool]]:
    """Top-level string fields of the (possibly cut-off) object at s[i] == '{'.

    -> {key: (value so far, complete)}; later duplicates win, like json.loads. Public: it is the
    reference for what a cut-off answer says so far, which the streaming display works out chunk by
    chunk (tests compare the two).
    """
    out: dict[str, tuple[str, bool]] = {}
    n = len(s)
    i += 1
    while True:
        i = _skip_ws(s, i)
        if i >= n or s[i] == "}":
            return out
        if s[i] == ",":
            i += 1
            continue
        if s[i] != '"':
            return out
        key, i, done = _decode_string(s, i)
        if not done:
            return out
        i = _skip_ws(s, i)
        if i >= n or s[i] != ":":
            return out
        i = _skip_ws(s, i + 1)
        if i >= n:
            return out
        if s[i] == '"':
            val, i, done = _decode_string(s, i)
            out[key] = (val, done)
            if not done:
                return out
        else:
            j = _skip_value(s, i)
            if j is None:
                return out
            out.pop(key, None)
            i = j
