"""The agent's final answer: response models, lenient parsing, resolution, streaming display.

The agent ends every turn with one JSON object, the *response*, which the UI
renders as generative UI. This module is the contract between the agent's
prompt, the parser and the renderers.

Input forms (what the agent writes)
-----------------------------------
``Response = Message | Dashboard | Confirm``, discriminated on ``type``. This
keeps the original contract of the web app (chat-architecture.md, "Response
Types") and adds:

* a ``line`` section (trend chart);
* *source references*: instead of copying numbers out of a query result, a
  section (or a widget item) may name a result id (``"source": "r1"``) and
  its columns; the data is taken from the pandas DataFrame the agent fetched.

Resolved forms (what renderers get)
-----------------------------------
``ResolvedResponse = Message | ResolvedDashboard | Confirm``. Every section
carries concrete data (``items`` / ``points`` / ``rows``), is JSON-safe via
``model_dump(mode="json")``, and keeps provenance: ``source`` (the result id)
and ``sql`` (``df.attrs["sql"]``). Renderers never touch DataFrames or the
database.

Lenient parsing
---------------
:func:`parse_response` never raises. It finds the JSON in whatever the model
wrote (code fences, prose around it, trailing commas), keeps what is valid,
drops what is not and says so in ``Parsed.notes`` (short, human-readable).
Plain prose is a normal answer: it becomes a :class:`Message` without notes.

Streaming
---------
What a person sees while the answer streams in is worked out chunk by chunk in
:mod:`.streaming` (:func:`partial_display_text` is re-exported here).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

import numpy as np
import pandas as pd
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    FiniteFloat,
    JsonValue,
    Tag,
    TypeAdapter,
    ValidationError,
)

from .streaming import decode_json_string, partial_display_text

__all__ = [
    # input models
    "Message",
    "Dashboard",
    "Confirm",
    "Response",
    "Section",
    "WidgetsSection",
    "WidgetItem",
    "WidgetFromSource",
    "BarsSection",
    "BarsFromSource",
    "BarItem",
    "LineSection",
    "LineFromSource",
    "LinePoint",
    "TableSection",
    "TableFromSource",
    "PillsSection",
    "PillsFromSource",
    "PillItem",
    # resolved models
    "ResolvedResponse",
    "ResolvedDashboard",
    "ResolvedSection",
    "ResolvedWidgets",
    "ResolvedWidgetItem",
    "ResolvedBars",
    "ResolvedLine",
    "ResolvedTable",
    "ResolvedPills",
    "ResolvedPillItem",
    # adapters and constants
    "RESPONSE_ADAPTER",
    "RESOLVED_ADAPTER",
    "RESPONSE_EXAMPLES",
    "NAMED_COLORS",
    "KNOWN_VALUE_COLORS",
    "PALETTE",
    # functions
    "Parsed",
    "parse_response",
    "resolve_response",
    "response_json_schema",
    "response_format_prompt",
    "partial_display_text",
    "format_value",
]

# --------------------------------------------------------------------------
# limits and constants

TABLE_LIMIT_DEFAULT, TABLE_LIMIT_MAX = 50, 500
BARS_LIMIT_DEFAULT, BARS_LIMIT_MAX = 20, 100
PILLS_LIMIT_DEFAULT, PILLS_LIMIT_MAX = 20, 100
LINE_LIMIT_DEFAULT, LINE_LIMIT_MAX = 1000, 5000
MAX_STRING = 500  # longer strings are cut and end with "…"
MAX_NOTES = 40
NULL_LABEL = "(null)"
EMPTY_VALUE = "—"

#: Canonical named colors a renderer must support (synonyms are mapped onto these).
NAMED_COLORS = ("green", "red", "amber", "blue", "gray", "purple", "orange", "teal")
_COLOR_SYNONYMS = {"yellow": "amber", "grey": "gray"}
_HEX_COLOR = re.compile(r"^#(?:[0-9a-f]{3}|[0-9a-f]{6})$")
_COLOR_PATTERN = r"^(?:green|red|amber|blue|gray|purple|orange|teal|#[0-9a-f]{3}|#[0-9a-f]{6})$"

#: Colors for well-known values of the PLG schema (lead tiers, lead statuses, project statuses).
KNOWN_VALUE_COLORS: dict[str, str] = {
    "hot": "red",
    "warm": "amber",
    "cold": "blue",
    "new": "gray",
    "contacted": "blue",
    "qualified": "purple",
    "disqualified": "red",
    "converted": "green",
    "active": "green",
    "paused": "amber",
    "archived": "gray",
}
#: Colors handed out, in order, to values that are not well known.
PALETTE = ("blue", "green", "amber", "purple", "teal", "orange", "red", "gray")


# --------------------------------------------------------------------------
# lenient scalar coercions (used inside the models)


def _loose_str(v: Any) -> Any:
    """Numbers are fine where a display string is expected (e.g. a year as a bar name)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, decimal.Decimal)):
        return str(v)
    return v


def _parse_number_text(s: str) -> int | float:
    t = s.strip().replace(",", "").replace("_", "").replace(" ", "")
    t = t.lstrip("$€£")
    if t.endswith("%"):
        t = t[:-1]
    try:
        return int(t)
    except ValueError:
        return float(t)  # raises ValueError -> pydantic error


def _lenient_number(v: Any) -> Any:
    """"12" -> 12, "1,234.5" -> 1234.5, Decimal -> float; huge ints become floats."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, str):
        try:
            v = _parse_number_text(v)
        except ValueError:
            return v  # let pydantic report it
    if isinstance(v, decimal.Decimal):
        v = float(v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, int) and abs(v) > 2**53:
        v = float(v)  # OverflowError for absurd ints -> reported as invalid
    return v


def _lenient_int(v: Any) -> Any:
    v = _lenient_number(v)
    if isinstance(v, float) and math.isfinite(v):
        return int(round(v))
    return v


LooseStr = Annotated[str, BeforeValidator(_loose_str)]
Number = Annotated[Union[int, FiniteFloat], BeforeValidator(_lenient_number)]
Count = Annotated[int, BeforeValidator(_lenient_int)]
Scalar = Union[int, FiniteFloat, str]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --------------------------------------------------------------------------
# input models: what the agent writes


class Message(_Model):
    """Plain answer, rendered as markdown."""

    type: Literal["message"] = "message"
    text: LooseStr = Field(description="markdown")


class WidgetItem(_Model):
    """A KPI card with a literal value."""

    title: LooseStr
    value: Scalar
    subtext: LooseStr | None = None


class WidgetFromSource(_Model):
    """A KPI card whose value is one cell of a query result."""

    title: LooseStr
    source: LooseStr = Field(description="result id, e.g. r1")
    column: LooseStr
    row: int = 0
    subtext: LooseStr | None = None


def _widget_item_tag(v: Any) -> str:
    """Source form when the item names a source and a column; otherwise a literal value."""
    if isinstance(v, dict):
        src, col = v.get("source"), v.get("column")
    else:
        src, col = getattr(v, "source", None), getattr(v, "column", None)
    return "source" if src not in (None, "") and col is not None else "value"


WidgetEntry = Annotated[
    Union[Annotated[WidgetItem, Tag("value")], Annotated[WidgetFromSource, Tag("source")]],
    Discriminator(_widget_item_tag),
]


class WidgetsSection(_Model):
    """KPI cards."""

    type: Literal["widgets"] = "widgets"
    items: list[WidgetEntry]


class BarItem(_Model):
    name: LooseStr
    value: Number


class BarsSection(_Model):
    """Horizontal bar chart with literal items."""

    type: Literal["bars"] = "bars"
    label: LooseStr
    items: list[BarItem]


class BarsFromSource(_Model):
    """Bar chart from a result: one bar per row (x = name column, y = value column)."""

    type: Literal["bars"] = "bars"
    label: LooseStr | None = None
    source: LooseStr
    x: LooseStr
    y: LooseStr
    limit: int | None = Field(default=None, description="default 20, max 100")


class LinePoint(_Model):
    x: Scalar
    y: Number
    series: LooseStr | None = None


class LineSection(_Model):
    """Line chart with literal points (several series via point.series)."""

    type: Literal["line"] = "line"
    label: LooseStr
    points: list[LinePoint]


class LineFromSource(_Model):
    """Line chart from a result: x column, one or more y columns (one series each)."""

    type: Literal["line"] = "line"
    label: LooseStr | None = None
    source: LooseStr
    x: LooseStr
    y: Union[LooseStr, list[LooseStr]]
    series: LooseStr | None = Field(default=None, description="optional column naming the series (long format)")
    limit: int | None = None


class TableSection(_Model):
    """Table with literal rows (objects keyed by column, or lists aligned with columns)."""

    type: Literal["table"] = "table"
    title: LooseStr | None = None
    columns: list[LooseStr]
    rows: list[Union[dict[str, Any], list[Any]]]


class TableFromSource(_Model):
    """Table from a result."""

    type: Literal["table"] = "table"
    title: LooseStr | None = None
    source: LooseStr
    columns: list[LooseStr] | None = Field(default=None, description="subset and order; default all")
    limit: int | None = Field(default=None, description="default 50, max 500")


class PillItem(_Model):
    label: LooseStr
    color: LooseStr | None = Field(default=None, description="green|red|amber|blue|gray|purple|orange|teal|#hex")
    count: Count


class PillsSection(_Model):
    """Colored status badges with counts."""

    type: Literal["pills"] = "pills"
    label: LooseStr | None = None
    items: list[PillItem]


class PillsFromSource(_Model):
    """Status badges from a result: one pill per row."""

    type: Literal["pills"] = "pills"
    label: LooseStr | None = None
    source: LooseStr
    label_column: LooseStr = Field(validation_alias=AliasChoices("label_column", "x"))
    count_column: LooseStr = Field(validation_alias=AliasChoices("count_column", "y"))
    limit: int | None = None


_SECTION_TYPES = ("widgets", "bars", "line", "table", "pills")


_INLINE_KEYS = {"bars": "items", "line": "points", "table": "rows", "pills": "items"}


def _uses_source(t: str, v: Any) -> bool:
    """Source form when a source is named and no literal data is given (literal data wins)."""
    get = v.get if isinstance(v, dict) else (lambda k, d=None: getattr(v, k, d))
    return get("source") not in (None, "") and get(_INLINE_KEYS.get(t, ""), None) is None


def _section_tag(v: Any) -> str | None:
    t = v.get("type") if isinstance(v, dict) else getattr(v, "type", None)
    if t == "widgets":
        return "widgets"
    if t in _SECTION_TYPES:
        return f"{t}_source" if _uses_source(t, v) else t
    return None


Section = Annotated[
    Union[
        Annotated[WidgetsSection, Tag("widgets")],
        Annotated[BarsSection, Tag("bars")],
        Annotated[BarsFromSource, Tag("bars_source")],
        Annotated[LineSection, Tag("line")],
        Annotated[LineFromSource, Tag("line_source")],
        Annotated[TableSection, Tag("table")],
        Annotated[TableFromSource, Tag("table_source")],
        Annotated[PillsSection, Tag("pills")],
        Annotated[PillsFromSource, Tag("pills_source")],
    ],
    Discriminator(
        _section_tag,
        custom_error_type="section_type",
        custom_error_message="unknown section type",
    ),
]

_SECTION_MODELS: dict[tuple[str, bool], type[_Model]] = {
    ("widgets", False): WidgetsSection,
    ("widgets", True): WidgetsSection,
    ("bars", False): BarsSection,
    ("bars", True): BarsFromSource,
    ("line", False): LineSection,
    ("line", True): LineFromSource,
    ("table", False): TableSection,
    ("table", True): TableFromSource,
    ("pills", False): PillsSection,
    ("pills", True): PillsFromSource,
}


class Dashboard(_Model):
    """Generative UI: a title and sections."""

    type: Literal["dashboard"] = "dashboard"
    title: LooseStr
    sections: list[Section]


class Confirm(_Model):
    """A proposed write; executed only after the person confirms."""

    type: Literal["confirm"] = "confirm"
    id: LooseStr
    title: LooseStr
    summary: LooseStr
    sql: LooseStr


Response = Annotated[Union[Message, Dashboard, Confirm], Field(discriminator="type")]
RESPONSE_ADAPTER: TypeAdapter = TypeAdapter(Response)


# --------------------------------------------------------------------------
# resolved models: what renderers get


def _source_field() -> Any:
    return Field(default=None, description="result id the data came from (e.g. r2)")


def _sql_field() -> Any:
    return Field(default=None, description="SQL of that result (df.attrs['sql'])")


class ResolvedWidgetItem(_Model):
    title: str
    value: Scalar
    subtext: str | None = None
    source: str | None = _source_field()
    sql: str | None = _sql_field()


class ResolvedWidgets(_Model):
    type: Literal["widgets"] = "widgets"
    items: list[ResolvedWidgetItem]
    source: str | None = Field(default=None, description="set when every item comes from this one result")
    sql: str | None = _sql_field()


class ResolvedBars(_Model):
    type: Literal["bars"] = "bars"
    label: str
    items: list[BarItem]
    total_rows: int | None = None
    source: str | None = _source_field()
    sql: str | None = _sql_field()


class ResolvedLine(_Model):
    type: Literal["line"] = "line"
    label: str
    points: list[LinePoint]
    series: list[str] = Field(default_factory=list, description="series names in order; [] for one unnamed series")
    x_type: Literal["time", "number", "category"] = "category"
    x_label: str | None = None
    y_label: str | None = None
    total_rows: int | None = None
    source: str | None = _source_field()
    sql: str | None = _sql_field()


class ResolvedTable(_Model):
    type: Literal["table"] = "table"
    title: str | None = None
    columns: list[str]
    rows: list[dict[str, JsonValue]]
    total_rows: int
    source: str | None = _source_field()
    sql: str | None = _sql_field()


class ResolvedPillItem(_Model):
    label: str
    color: Annotated[str, Field(pattern=_COLOR_PATTERN)]
    count: int


class ResolvedPills(_Model):
    type: Literal["pills"] = "pills"
    label: str | None = None
    items: list[ResolvedPillItem]
    total_rows: int | None = None
    source: str | None = _source_field()
    sql: str | None = _sql_field()


ResolvedSection = Annotated[
    Union[ResolvedWidgets, ResolvedBars, ResolvedLine, ResolvedTable, ResolvedPills],
    Field(discriminator="type"),
]


class ResolvedDashboard(_Model):
    type: Literal["dashboard"] = "dashboard"
    title: str
    sections: list[ResolvedSection]


ResolvedResponse = Annotated[Union[Message, ResolvedDashboard, Confirm], Field(discriminator="type")]
RESOLVED_ADAPTER: TypeAdapter = TypeAdapter(ResolvedResponse)


# --------------------------------------------------------------------------
# schema and prompt


def _compact_schema(node: Any) -> Any:
    """Shrink a pydantic JSON schema for a prompt without changing what it accepts.

    Drops auto-generated ``title`` keywords (not properties named "title"), ``default: null``
    and ``additionalProperties: true``; folds ``anyOf [X, null]`` into ``type: [X, "null"]``
    and ``anyOf [integer, number]`` into ``number``; marks the ``type`` tag as required.
    """
    if isinstance(node, list):
        return [_compact_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "title" and isinstance(v, str):
            continue
        if k == "default" and v is None:
            continue
        if k == "additionalProperties" and v is True:
            continue
        if k in ("properties", "$defs") and isinstance(v, dict):
            out[k] = {name: _compact_schema(sub) for name, sub in v.items()}
        else:
            out[k] = _compact_schema(v)
    any_of = out.get("anyOf")
    if isinstance(any_of, list) and all(isinstance(x, dict) and set(x) == {"type"} and isinstance(x["type"], str) for x in any_of):
        types = [x["type"] for x in any_of]
        if "integer" in types and "number" in types:
            types.remove("integer")
        out.pop("anyOf")
        out["type"] = types[0] if len(types) == 1 else types
    props = out.get("properties")
    if isinstance(props, dict) and isinstance(props.get("type"), dict) and "const" in props["type"]:
        props["type"] = {"const": props["type"]["const"]}
        req = out.get("required", [])
        if "type" not in req:
            out["required"] = ["type", *req]
    return out


def response_json_schema() -> dict:
    """JSON schema of :data:`Response`, derived from the models, without auto titles."""
    return _compact_schema(RESPONSE_ADAPTER.json_schema())


#: The examples shown to the agent (tests check that they validate).
RESPONSE_EXAMPLES: list[dict] = [
    {"type": "message", "text": "There are **3** active projects. The newest is *Acme SDK* (created 2 days ago)."},
    {
        "type": "dashboard",
        "title": "Lead overview",
        "sections": [
            {
                "type": "widgets",
                "items": [
                    {"title": "Leads", "source": "r1", "column": "leads", "subtext": "all projects"},
                    {"title": "Hot leads", "source": "r1", "column": "hot"},
                ],
            },
            {"type": "pills", "label": "By tier", "source": "r2", "label_column": "tier", "count_column": "n"},
            {"type": "bars", "label": "Leads per project", "source": "r3", "x": "project", "y": "leads"},
            {"type": "line", "label": "New leads per week", "source": "r4", "x": "week", "y": ["hot", "warm"]},
            {"type": "table", "title": "Top leads", "source": "r5", "columns": ["login", "score", "tier"], "limit": 10},
        ],
    },
    {
        "type": "confirm",
        "id": "archive-acme",
        "title": "Archive project Acme SDK",
        "summary": "Sets the status of project Acme SDK (id 42) to archived. Its leads are kept.",
        "sql": "UPDATE projects SET status = 'archived' WHERE id = 42",
    },
]


def response_format_prompt(include_schema: bool = False) -> str:
    """Instructions for the agent's system prompt: the final-answer format, with 3 examples."""
    ex = [json.dumps(e, ensure_ascii=False) for e in RESPONSE_EXAMPLES]
    text = f"""\
## Final answer format
End every turn with exactly ONE JSON object (no prose around it, no code fence), one of:
- "message": {{"type":"message","text":"<markdown>"}} for explanations, greetings and short answers.
- "dashboard": {{"type":"dashboard","title":"...","sections":[...]}} for stats, breakdowns, comparisons and lists.
  Section types: "widgets" (KPI cards), "bars" (bar chart), "line" (trend over time, x = date or number),
  "table", "pills" (status badges with counts; colors green|red|amber|blue|gray|purple|orange|teal).
  Prefer referencing query results instead of copying numbers: "source": "<result id>" (r1, r2, ... as
  returned by your queries) plus column names ("x"/"y" for bars and line, "label_column"/"count_column"
  for pills, "column" (+ "row", default 0) for a widget item, "columns" and "limit" for tables).
  Literal data is also fine: widgets {{"title","value","subtext"}}, bars {{"name","value"}},
  line points {{"x","y","series"}}, table {{"columns":[...],"rows":[{{col: value}}]}}, pills {{"label","color","count"}}.
- "confirm": {{"type":"confirm","id":"...","title":"...","summary":"...","sql":"..."}} for any
  INSERT/UPDATE/DELETE: propose it, do not run it; it runs only after the person confirms.

Example (message):
{ex[0]}
Example (dashboard from results r1..r5):
{ex[1]}
Example (confirm):
{ex[2]}
"""
    if include_schema:
        text += "\nJSON schema:\n" + json.dumps(response_json_schema(), separators=(",", ":")) + "\n"
    return text


# --------------------------------------------------------------------------
# JSON-safe values and formatting


def _cut(s: str) -> str:
    return s if len(s) <= MAX_STRING else s[:MAX_STRING] + "…"


def _clean_str(s: str) -> str:
    """Replace lone surrogates (from "\\ud800" escapes) so the text can be encoded as UTF-8."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, (float, np.floating)):
        return not math.isfinite(float(v))
    if isinstance(v, decimal.Decimal):
        return not v.is_finite()
    if isinstance(v, np.datetime64) or isinstance(v, np.timedelta64):
        return bool(np.isnat(v))
    return False


def _json_safe(v: Any, depth: int = 0) -> JsonValue:
    """Any cell value -> JSON-safe Python (None, bool, int, float, str, list, dict)."""
    if _is_missing(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, decimal.Decimal):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, str):
        return _cut(_clean_str(v))
    if isinstance(v, (bytes, bytearray, memoryview)):
        return _cut(repr(bytes(v)))
    if isinstance(v, np.datetime64):
        v = pd.Timestamp(v)
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, (pd.Timedelta, _dt.timedelta, np.timedelta64)):
        return str(pd.Timedelta(v))
    if depth >= 20:
        return EMPTY_VALUE
    if isinstance(v, Mapping):
        return {_cut(_clean_str(str(k))): _json_safe(x, depth + 1) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return _json_safe(v.tolist(), depth + 1)  # 0-d arrays become scalars
    if isinstance(v, (list, tuple, set, frozenset, pd.Series)):
        return [_json_safe(x, depth + 1) for x in list(v)]
    try:
        return _cut(_clean_str(str(v)))
    except Exception:  # noqa: BLE001 - a broken __str__ must not break rendering
        return _cut(repr(type(v)))


def _clean_tree(v: Any, depth: int = 0) -> Any:
    """Clean strings in parsed JSON (lone surrogates); cut absurd nesting."""
    if isinstance(v, str):
        return _clean_str(v)
    if depth > 40:
        return None
    if isinstance(v, dict):
        return {_clean_str(str(k)): _clean_tree(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean_tree(x, depth + 1) for x in v]
    return v


def _strip_zeros(s: str) -> str:
    return s.rstrip("0").rstrip(".") if "." in s else s


def format_value(v: Any) -> str:
    """A cell as a KPI value: ints with thousands separators, floats to 2 decimals
    (2 significant digits below 1), dates as ISO, missing as "—"."""
    if _is_missing(v):
        return EMPTY_VALUE
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, decimal.Decimal):
        v = float(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        if abs(v) >= 1:
            return _strip_zeros(f"{v:,.2f}")
        return _strip_zeros(f"{v:.2g}") if "e" not in f"{v:.2g}" else f"{v:.2g}"
    if isinstance(v, pd.Timestamp) or isinstance(v, _dt.datetime):
        return _label(v)
    out = _json_safe(v)
    if isinstance(out, (dict, list)):
        return _cut(json.dumps(out, ensure_ascii=False))
    return EMPTY_VALUE if out is None else str(out)


def _label(v: Any) -> str:
    """A cell as a category label (bar name, pill label, line x category)."""
    if _is_missing(v):
        return NULL_LABEL
    if isinstance(v, (_dt.datetime, pd.Timestamp)):
        ts = pd.Timestamp(v)
        if ts == ts.normalize():
            return ts.date().isoformat()
        return ts.isoformat()
    out = _json_safe(v)
    if isinstance(out, (dict, list)):
        return _cut(json.dumps(out, ensure_ascii=False))
    if isinstance(out, float) and out.is_integer():
        return str(int(out))
    return str(out)


# --------------------------------------------------------------------------
# notes


class _Notes(list):
    def add(self, msg: str) -> None:
        if len(self) < MAX_NOTES:
            self.append(_cut(msg))
        elif len(self) == MAX_NOTES:
            self.append("(further notes omitted)")


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
# frames and columns


def _natural_key(s: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))


class _Frames:
    def __init__(self, frames: Mapping[str, Any] | None):
        self.frames: dict[str, Any] = {}
        if frames:
            try:
                for k, v in frames.items():
                    self.frames[str(k)] = v
            except Exception:  # noqa: BLE001
                pass

    def get(self, source: str, notes: _Notes, where: str) -> tuple[pd.DataFrame | None, str | None, str | None]:
        """-> (df, canonical id, sql) or (None, None, None) with a note."""
        key = source if source in self.frames else None
        if key is None:
            s = str(source).strip().lstrip("$")
            cands = [s, s.lower(), f"r{s}" if s.isdigit() else s]
            for c in cands:
                if c in self.frames:
                    key = c
                    break
            if key is None:
                low = {k.lower(): k for k in self.frames}
                key = low.get(s.lower())
        if key is None:
            known = ", ".join(sorted(self.frames, key=_natural_key)) or "none"
            notes.add(f"{where}: {source} is not a result of this conversation (known: {known})")
            return None, None, None
        df = self.frames[key]
        if not isinstance(df, pd.DataFrame):
            try:
                df = pd.DataFrame(df)
            except Exception:  # noqa: BLE001
                notes.add(f"{where}: {key} is not a table")
                return None, None, None
        sql = None
        try:
            raw_sql = df.attrs.get("sql")
            if raw_sql is not None:
                sql = _clean_str(str(raw_sql))
        except Exception:  # noqa: BLE001
            sql = None
        return df, key, sql


def _column_names(df: pd.DataFrame) -> list[str]:
    return [_clean_str(str(c)) for c in df.columns]


def _find_column(df: pd.DataFrame, name: str) -> int | None:
    """Position of column ``name`` (exact, then case-insensitive unique match)."""
    names = _column_names(df)
    if name in names:
        return names.index(name)
    low = [n.lower() for n in names]
    target = str(name).strip().lower()
    if low.count(target) == 1:
        return low.index(target)
    return None


def _missing_col_note(notes: _Notes, where: str, col: str, key: str, df: pd.DataFrame) -> None:
    cols = ", ".join(_column_names(df)[:20]) or "none"
    notes.add(f"{where}: column {col!r} is not in {key} (columns: {cols})")


def _clamp_limit(limit: int | None, default: int, maximum: int, notes: _Notes, where: str) -> int:
    if limit is None:
        return default
    if limit > maximum:
        notes.add(f"{where}: limit {limit} capped at {maximum}")
        return maximum
    if limit < 1:
        notes.add(f"{where}: limit {limit} ignored, using {default}")
        return default
    return limit


def _numeric(series: pd.Series) -> pd.Series:
    """A column as numbers (NaN where not numeric)."""
    try:
        if pd.api.types.is_bool_dtype(series.dtype):
            return series.astype("float64")
        if pd.api.types.is_numeric_dtype(series.dtype):
            return pd.to_numeric(series, errors="coerce")
        return pd.to_numeric(series.map(lambda v: _lenient_number(v) if isinstance(v, str) else v), errors="coerce")
    except Exception:  # noqa: BLE001
        out = []
        for v in series.tolist():
            try:
                x = _lenient_number(v)
                out.append(float(x) if isinstance(x, (int, float)) else math.nan)
            except Exception:  # noqa: BLE001
                out.append(math.nan)
        return pd.Series(out, index=series.index, dtype="float64")


def _is_integer_series(series: pd.Series) -> bool:
    try:
        return pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    except Exception:  # noqa: BLE001
        return False


def _num_out(v: Any, as_int: bool) -> int | float | None:
    if _is_missing(v):
        return None
    try:
        f = float(v)
    except Exception:  # noqa: BLE001
        return None
    if not math.isfinite(f):
        return None
    if as_int or (f.is_integer() and abs(f) < 2**53 and isinstance(v, (int, np.integer))):
        try:
            return int(v)
        except Exception:  # noqa: BLE001
            return f
    return f


# --------------------------------------------------------------------------
# section resolution (validated input model -> resolved model)


def _resolve_widgets(sec: WidgetsSection, frames: _Frames, notes: _Notes, where: str) -> ResolvedWidgets:
    items: list[ResolvedWidgetItem] = []
    sources: set[tuple[str, str | None]] = set()
    for j, item in enumerate(sec.items, 1):
        if isinstance(item, WidgetItem):
            items.append(ResolvedWidgetItem(title=item.title, value=item.value, subtext=item.subtext))
            continue
        w = f"{where} item {j}"
        df, key, sql = frames.get(item.source, notes, w)
        if df is None:
            continue
        pos = _find_column(df, item.column)
        if pos is None:
            _missing_col_note(notes, w, item.column, key, df)
            continue
        sources.add((key, sql))
        if len(df) == 0:
            notes.add(f"{w}: {key} has no rows")
            value: Any = EMPTY_VALUE
        elif not -len(df) <= item.row < len(df):
            notes.add(f"{w}: {key} has no row {item.row} ({len(df)} rows)")
            value = EMPTY_VALUE
        else:
            value = format_value(df.iloc[item.row, pos])
        items.append(ResolvedWidgetItem(title=item.title, value=value, subtext=item.subtext, source=key, sql=sql))
    src, sql = (next(iter(sources)) if len(sources) == 1 and all(i.source for i in items) else (None, None))
    return ResolvedWidgets(items=items, source=src, sql=sql)


def _resolve_bars(sec: BarsSection | BarsFromSource, frames: _Frames, notes: _Notes, where: str) -> ResolvedBars | None:
    if isinstance(sec, BarsSection):
        return ResolvedBars(label=sec.label, items=sec.items, total_rows=len(sec.items))
    df, key, sql = frames.get(sec.source, notes, where)
    if df is None:
        return None
    xi, yi = _find_column(df, sec.x), _find_column(df, sec.y)
    for col, pos in ((sec.x, xi), (sec.y, yi)):
        if pos is None:
            _missing_col_note(notes, where, col, key, df)
    if xi is None or yi is None:
        return None
    label = sec.label if sec.label is not None else f"{sec.y} by {sec.x}"
    limit = _clamp_limit(sec.limit, BARS_LIMIT_DEFAULT, BARS_LIMIT_MAX, notes, where)
    if len(df) == 0:
        notes.add(f"{where}: {key} has no rows")
        return ResolvedBars(label=label, items=[], source=key, sql=sql, total_rows=0)
    part = df.iloc[:limit]
    ycol = part.iloc[:, yi]
    as_int = _is_integer_series(ycol)
    ys = _numeric(ycol)
    items, dropped = [], 0
    for name, yv in zip(part.iloc[:, xi].tolist(), ys.tolist()):
        val = _num_out(yv, as_int)
        if val is None:
            dropped += 1
            continue
        items.append(BarItem(name=_label(name), value=val))
    if dropped:
        notes.add(f"{where}: dropped {dropped} row(s) where {sec.y!r} is not a number")
    if len(df) > limit:
        notes.add(f"{where}: showing the first {limit} of {len(df):,} rows of {key}")
    return ResolvedBars(label=label, items=items, source=key, sql=sql, total_rows=len(df))


def _classify_x(values: list[Any]) -> tuple[str, list[Any]]:
    """Classify x values -> (kind, sort keys): 'time' (epoch ns), 'number' (floats) or
    'category' (all None: keep the given order). Missing x -> key None."""
    present = [v for v in values if not _is_missing(v)]
    none = [None] * len(values)
    if not present:
        return "category", none
    if all(
        isinstance(v, (int, float, np.integer, np.floating, decimal.Decimal)) and not isinstance(v, (bool, np.bool_))
        for v in present
    ):
        return "number", [None if _is_missing(v) else float(v) for v in values]
    is_dates = all(isinstance(v, (_dt.date, np.datetime64)) for v in present)
    is_iso = all(isinstance(v, str) and _ISO_DATE.match(v) for v in present)
    if not (is_dates or is_iso):
        return "category", none
    try:
        stamps = [None if _is_missing(v) else pd.Timestamp(v) for v in values]
    except Exception:  # noqa: BLE001
        return "category", none
    if any(t is pd.NaT for t in stamps) or len({t.tzinfo is None for t in stamps if t is not None}) > 1:
        return "category", none
    return "time", stamps


_ISO_DATE = re.compile(r"^\d{4}-\d{2}(?:-\d{2})?(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")


def _time_labels(stamps: list[Any]) -> list[str | None]:
    present = [t for t in stamps if t is not None]
    date_only = bool(present) and all(t == t.normalize() for t in present)
    return [None if t is None else (t.date().isoformat() if date_only else t.isoformat()) for t in stamps]


def _stamp_key(t: Any) -> int | None:
    return None if t is None else int(t.value)  # epoch ns (UTC for tz-aware)


def _finish_line(rows: list[tuple[Any, Any, Any, str | None]], kind: str) -> tuple[list[LinePoint], int]:
    """rows: (x, sort key, y, series). Drop missing x/y; stable-sort by key unless categorical."""
    pts: list[tuple[Any, int, LinePoint]] = []
    dropped = 0
    for idx, (x, key, y, series) in enumerate(rows):
        if y is None or x is None or (kind != "category" and key is None):
            dropped += 1
            continue
        pts.append((key, idx, LinePoint(x=x, y=y, series=series)))
    if kind != "category":
        pts.sort(key=lambda t: (t[0], t[1]))
    return [p for _, _, p in pts], dropped


def _resolve_line(sec: LineSection | LineFromSource, frames: _Frames, notes: _Notes, where: str) -> ResolvedLine | None:
    if isinstance(sec, LineSection):
        kind, keys = _classify_x([p.x for p in sec.points])
        if kind == "time":
            keys = [_stamp_key(k) for k in keys]
        rows = [(p.x, k, p.y, p.series) for k, p in zip(keys, sec.points)]
        points, _ = _finish_line(rows, kind)
        series = list(dict.fromkeys(p.series for p in points if p.series is not None))
        return ResolvedLine(label=sec.label, points=points, series=series, x_type=kind, total_rows=len(sec.points))

    df, key, sql = frames.get(sec.source, notes, where)
    if df is None:
        return None
    ycols = [sec.y] if isinstance(sec.y, str) else list(dict.fromkeys(sec.y))
    xi = _find_column(df, sec.x)
    if xi is None:
        _missing_col_note(notes, where, sec.x, key, df)
        return None
    ypos: list[tuple[str, int]] = []
    for yc in ycols:
        pos = _find_column(df, yc)
        if pos is None:
            _missing_col_note(notes, where, yc, key, df)
        else:
            ypos.append((yc, pos))
    if not ypos:
        if not ycols:
            notes.add(f"{where}: no y column given")
        return None
    spos = None
    if sec.series is not None:
        spos = _find_column(df, sec.series)
        if spos is None:
            _missing_col_note(notes, where, sec.series, key, df)
    label = sec.label if sec.label is not None else f"{', '.join(c for c, _ in ypos)} by {sec.x}"
    limit = _clamp_limit(sec.limit, LINE_LIMIT_DEFAULT, LINE_LIMIT_MAX, notes, where)
    base = dict(
        label=label, source=key, sql=sql, total_rows=len(df), x_label=sec.x,
        y_label=ypos[0][0] if len(ypos) == 1 else None,
    )
    if len(df) == 0:
        notes.add(f"{where}: {key} has no rows")
        return ResolvedLine(points=[], **base)
    part = df.iloc[:limit]
    xcol = part.iloc[:, xi]
    xvals = xcol.tolist()
    if pd.api.types.is_datetime64_any_dtype(xcol.dtype):
        kind, keys = "time", [None if _is_missing(v) else pd.Timestamp(v) for v in xvals]
    elif pd.api.types.is_numeric_dtype(xcol.dtype) and not pd.api.types.is_bool_dtype(xcol.dtype):
        kind, keys = "number", [None if _is_missing(v) else float(v) for v in _numeric(xcol).tolist()]
    else:
        kind, keys = _classify_x(xvals)
    if kind == "time":
        xs_out: list[Any] = _time_labels(keys)
        sort_keys = [_stamp_key(k) for k in keys]
    elif kind == "number":
        xs_out = [None if k is None else (int(k) if k.is_integer() and abs(k) < 2**53 else k) for k in keys]
        sort_keys = keys
    else:
        xs_out = [_label(v) for v in xvals]
        sort_keys = keys
    multi = len(ypos) > 1
    series_vals = [_label(v) for v in part.iloc[:, spos].tolist()] if (spos is not None and not multi) else None
    rows: list[tuple[Any, Any, Any, str | None]] = []
    for yc, pos in ypos:
        ycol = part.iloc[:, pos]
        as_int = _is_integer_series(ycol)
        yv = [_num_out(v, as_int) for v in _numeric(ycol).tolist()]
        for i in range(len(part)):
            series = yc if multi else (series_vals[i] if series_vals is not None else None)
            rows.append((xs_out[i], sort_keys[i], yv[i], series))
    points, dropped = _finish_line(rows, kind)
    if dropped:
        notes.add(f"{where}: dropped {dropped} point(s) with a missing x or y")
    if len(df) > limit:
        notes.add(f"{where}: using the first {limit} of {len(df):,} rows of {key}")
    series = list(dict.fromkeys(p.series for p in points if p.series is not None))
    if multi:
        series = [c for c, _ in ypos]
    return ResolvedLine(points=points, series=series, x_type=kind, **base)


def _dedupe(names: list[str], notes: _Notes, where: str) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    renamed = []
    for n in names:
        if n in seen:
            k = seen[n] + 1
            while f"{n}_{k}" in seen:
                k += 1
            seen[n] = k
            new = f"{n}_{k}"
            seen[new] = 1
            renamed.append(new)
            out.append(new)
        else:
            seen[n] = 1
            out.append(n)
    if renamed:
        notes.add(f"{where}: duplicate column names renamed ({', '.join(renamed[:5])})")
    return out


def _resolve_table(sec: TableSection | TableFromSource, frames: _Frames, notes: _Notes, where: str) -> ResolvedTable | None:
    if isinstance(sec, TableSection):
        columns = _dedupe([_clean_str(c) for c in sec.columns], notes, where)
        rows: list[dict[str, Any]] = []
        mismatched = 0
        for r in sec.rows:
            if isinstance(r, dict):
                rows.append({_clean_str(str(k)): _json_safe(v) for k, v in r.items()})
            else:
                if len(r) != len(columns):
                    mismatched += 1
                vals = list(r[: len(columns)]) + [None] * (len(columns) - len(r))
                rows.append({c: _json_safe(v) for c, v in zip(columns, vals)})
        if mismatched:
            notes.add(f"{where}: {mismatched} row(s) had a different number of values than columns")
        return ResolvedTable(title=sec.title, columns=columns, rows=rows, total_rows=len(rows))

    df, key, sql = frames.get(sec.source, notes, where)
    if df is None:
        return None
    names = _column_names(df)
    if sec.columns:
        positions = []
        for c in sec.columns:
            pos = _find_column(df, c)
            if pos is None:
                _missing_col_note(notes, where, c, key, df)
            elif pos not in positions:
                positions.append(pos)
        if not positions:
            notes.add(f"{where}: none of the requested columns exist; showing all columns")
            positions = list(range(len(names)))
    else:
        positions = list(range(len(names)))
    columns = _dedupe([names[p] for p in positions], notes, where)
    limit = _clamp_limit(sec.limit, TABLE_LIMIT_DEFAULT, TABLE_LIMIT_MAX, notes, where)
    if len(df) == 0:
        notes.add(f"{where}: {key} has no rows")
    part = df.iloc[:limit, positions] if positions else df.iloc[:limit, :0]
    rows = []
    for tup in part.itertuples(index=False, name=None):
        rows.append({c: _json_safe(v) for c, v in zip(columns, tup)})
    return ResolvedTable(title=sec.title, columns=columns, rows=rows, total_rows=len(df), source=key, sql=sql)


def _normalise_color(color: str | None, label: str, notes: _Notes, where: str, auto: "_AutoColor") -> str:
    if color is None or str(color).strip() == "":
        return auto(label)
    c = str(color).strip().lower()
    c = _COLOR_SYNONYMS.get(c, c)
    if c in NAMED_COLORS or _HEX_COLOR.match(c):
        return c
    notes.add(f"{where}: pill {label!r}: unknown color {color!r}, using gray")
    return "gray"


class _AutoColor:
    """Well-known value colors first, then the palette in order."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, label: str) -> str:
        known = KNOWN_VALUE_COLORS.get(str(label).strip().lower())
        if known:
            return known
        c = PALETTE[self.n % len(PALETTE)]
        self.n += 1
        return c


def _resolve_pills(sec: PillsSection | PillsFromSource, frames: _Frames, notes: _Notes, where: str) -> ResolvedPills | None:
    auto = _AutoColor()
    if isinstance(sec, PillsSection):
        items = [
            ResolvedPillItem(label=p.label, color=_normalise_color(p.color, p.label, notes, where, auto), count=p.count)
            for p in sec.items
        ]
        return ResolvedPills(label=sec.label, items=items, total_rows=len(sec.items))
    df, key, sql = frames.get(sec.source, notes, where)
    if df is None:
        return None
    li, ci = _find_column(df, sec.label_column), _find_column(df, sec.count_column)
    for col, pos in ((sec.label_column, li), (sec.count_column, ci)):
        if pos is None:
            _missing_col_note(notes, where, col, key, df)
    if li is None or ci is None:
        return None
    limit = _clamp_limit(sec.limit, PILLS_LIMIT_DEFAULT, PILLS_LIMIT_MAX, notes, where)
    if len(df) == 0:
        notes.add(f"{where}: {key} has no rows")
    part = df.iloc[:limit]
    items, dropped = [], 0
    for lab, cnt in zip(part.iloc[:, li].tolist(), _numeric(part.iloc[:, ci]).tolist()):
        n = _num_out(cnt, False)
        if n is None:
            dropped += 1
            continue
        label = _label(lab)
        items.append(ResolvedPillItem(label=label, color=auto(label), count=int(round(n))))
    if dropped:
        notes.add(f"{where}: dropped {dropped} row(s) where {sec.count_column!r} is not a number")
    if len(df) > limit:
        notes.add(f"{where}: showing the first {limit} of {len(df):,} rows of {key}")
    return ResolvedPills(label=sec.label, items=items, source=key, sql=sql, total_rows=len(df))


_RESOLVERS = {
    WidgetsSection: _resolve_widgets,
    BarsSection: _resolve_bars,
    BarsFromSource: _resolve_bars,
    LineSection: _resolve_line,
    LineFromSource: _resolve_line,
    TableSection: _resolve_table,
    TableFromSource: _resolve_table,
    PillsSection: _resolve_pills,
    PillsFromSource: _resolve_pills,
}


def _resolve_section(sec: BaseModel, frames: _Frames, notes: _Notes, where: str) -> Any:
    try:
        return _RESOLVERS[type(sec)](sec, frames, notes, where)
    except Exception as e:  # noqa: BLE001 - one broken section must not break the answer
        notes.add(f"skipped {where}: internal error while resolving ({type(e).__name__}: {e})")
        return None


def resolve_response(response: Any, frames: Mapping[str, pd.DataFrame] | None = None) -> tuple[Any, list[str]]:
    """Resolve a validated :data:`Response` (model instance or dict) against result frames.

    Returns ``(resolved, notes)``. Sections that cannot be resolved are skipped with a note.
    Raises ``ValidationError`` only if ``response`` itself does not validate (use
    :func:`parse_response` for untrusted text).
    """
    if not isinstance(response, (Message, Dashboard, Confirm)):
        response = RESPONSE_ADAPTER.validate_python(response)
    notes = _Notes()
    fr = _Frames(frames)
    if not isinstance(response, Dashboard):
        return response, list(notes)
    sections = []
    for i, sec in enumerate(response.sections, 1):
        r = _resolve_section(sec, fr, notes, f"section {i} ({sec.type})")
        if r is not None:
            sections.append(r)
    return ResolvedDashboard(title=response.title, sections=sections), list(notes)


# --------------------------------------------------------------------------
# lenient validation of the parsed JSON

_SECTION_ALIASES = {
    "widget": "widgets", "kpi": "widgets", "kpis": "widgets", "metrics": "widgets", "cards": "widgets",
    "bar": "bars", "bar_chart": "bars", "barchart": "bars",
    "lines": "line", "line_chart": "line", "linechart": "line", "timeseries": "line",
    "tables": "table",
    "pill": "pills", "badges": "pills",
}
_RESPONSE_ALIASES = {"text": "message", "markdown": "message", "confirmation": "confirm"}
_ITEM_MODELS = {"bars": ("items", BarItem), "line": ("points", LinePoint), "pills": ("items", PillItem)}


def _coerce_limit(raw: dict, notes: _Notes, where: str) -> None:
    if "limit" not in raw or raw["limit"] is None:
        return
    v = raw["limit"]
    try:
        n = _lenient_number(v)
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n):
            raise ValueError
        raw["limit"] = int(n)
    except Exception:  # noqa: BLE001
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
        if isinstance(it, dict) and default_source not in (None, "") and it.get("source") in (None, "") and "column" in it:
            it = dict(it, source=default_source)
        try:
            if _widget_item_tag(it) == "source":
                it = dict(it)
                if "row" in it:
                    try:
                        it["row"] = int(_lenient_number(it["row"]))
                    except Exception:  # noqa: BLE001
                        it.pop("row")
                good.append(WidgetFromSource.model_validate(it))
            else:
                good.append(WidgetItem.model_validate(it))
        except ValidationError as e:
            notes.add(f"{where}: dropped item {j}: {_fmt_errors(e, 1)}")
    return WidgetsSection(items=good)


def _lenient_section(raw: Any, i: int, notes: _Notes) -> BaseModel | None:
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
        key, model = _ITEM_MODELS.get(tn, (None, None))
        if key is not None:
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


def _lenient_dashboard(obj: dict, frames: _Frames, notes: _Notes) -> ResolvedDashboard:
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
        except Exception as e:  # noqa: BLE001
            notes.add(f"skipped section {i}: internal error ({type(e).__name__}: {e})")
            continue
        if sec is None:
            continue
        r = _resolve_section(sec, frames, notes, f"section {i} ({sec.type})")
        if r is not None:
            resolved.append(r)
    return ResolvedDashboard(title=_cut(title), sections=resolved)


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
    """Index after the brace closing the object at s[i] ('{'), string-aware; None if unbalanced."""
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
        obj, end, repaired = None, None, False
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

    response: ResolvedResponse  # Message | ResolvedDashboard | Confirm
    notes: list[str] = field(default_factory=list)
    raw: str = ""


def _raw_message(raw: str) -> Message:
    return Message(text=_clean_str(raw.strip()))


def parse_response(text: str | None, frames: Mapping[str, pd.DataFrame] | None = None) -> Parsed:
    """Parse the agent's final text into a resolved response. Never raises."""
    if text is None:
        raw = ""
    elif isinstance(text, str):
        raw = text
    else:
        try:
            raw = text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else str(text)
        except Exception:  # noqa: BLE001
            raw = ""
    notes = _Notes()
    try:
        resp = _parse(raw, frames, notes)
    except Exception as e:  # noqa: BLE001 - last line of defence; tests assert this never happens
        notes.add(f"internal error while parsing the response ({type(e).__name__}: {e})")
        try:
            resp = _raw_message(raw)
        except Exception:  # noqa: BLE001
            resp = Message(text="")
    return Parsed(response=resp, notes=list(notes), raw=raw)


def _parse(raw: str, frames: Mapping[str, pd.DataFrame] | None, notes: _Notes) -> Any:
    stripped = raw.strip()
    if not stripped:
        notes.add("empty response")
        return Message(text="")
    obj, repaired, start, end = _find_objects(raw)
    body = _strip_fence(stripped).strip()
    whole = obj is not None and _strip_fence(stripped).strip() == raw[start:end].strip()
    if obj is None:
        if re.match(r'\{\s*(?:"|\}|$)', body):
            # meant to be JSON, but it does not parse (truncated or broken)
            fields = _scan_top_level(body, 0)
            t = fields.get("type", ("", False))[0]
            if t == "message" and "text" in fields:
                notes.add("the response JSON is incomplete or invalid; showing its text")
                return Message(text=_clean_str(fields["text"][0]))
            notes.add("the response looks like JSON but does not parse" + _json_error(body))
            return _raw_message(raw)
        return Message(text=_clean_str(stripped))  # plain prose: a normal answer
    obj = _clean_tree(obj)
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
        depth, j, n = 0, i, len(s)
        while j < n:
            ch = s[j]
            if ch == '"':
                _, j, done = _decode_string(s, j)
                if not done:
                    return None
                continue
            if ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        return None
    n, j = len(s), i
    while j < n and s[j] not in ",}] \t\r\n":
        j += 1
    return j if j < n else None


def _scan_top_level(s: str, i: int) -> dict[str, tuple[str, bool]]:
    """Top-level string fields of the (possibly cut-off) object at s[i] == '{'.

    -> {key: (value so far, complete)}; later duplicates win, like json.loads.
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
