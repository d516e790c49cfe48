"""The response models: what the agent writes (``Response``) and what renderers get (``ResolvedResponse``).

``Response = Message | Dashboard | Confirm``, discriminated on ``type``. This keeps the
original contract of the web app (chat-architecture.md, "Response Types") and adds a
``line`` section (trend chart) and *source references*: instead of copying numbers out of a
query result, a section (or a widget item) may name a result id (``"source": "r1"``) and its
columns; :mod:`.resolve` takes the data from the pandas DataFrame the agent fetched.

``ResolvedResponse = Message | ResolvedDashboard | ResolvedConfirm``: every section carries concrete
data (``items`` / ``points`` / ``rows``), is JSON-safe via ``model_dump(mode="json")``, and
keeps provenance: ``source`` (the result id) and ``sql`` (``df.attrs["sql"]``). Renderers
never touch DataFrames or the database.
"""

from __future__ import annotations

import decimal
import math
from typing import Annotated, Any, Literal

import numpy as np
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
)

from .colors import NAMED_COLORS

# A pill's colour: a named colour a renderer supports, or a hex colour.
_COLOR_PATTERN = r"^(?:" + "|".join(NAMED_COLORS) + r"|#[0-9a-f]{3}|#[0-9a-f]{6})$"


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
    """ "12" -> 12, "1,234.5" -> 1234.5, Decimal -> float; huge ints become floats."""
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
        return round(v)
    return v


LooseStr = Annotated[str, BeforeValidator(_loose_str)]
Number = Annotated[int | FiniteFloat, BeforeValidator(_lenient_number)]
Count = Annotated[int, BeforeValidator(_lenient_int)]
Scalar = int | FiniteFloat | str


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
    Annotated[WidgetItem, Tag("value")] | Annotated[WidgetFromSource, Tag("source")],
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
    y: LooseStr | list[LooseStr]
    series: LooseStr | None = Field(default=None, description="optional column naming the series (long format)")
    limit: int | None = None


class TableSection(_Model):
    """Table with literal rows (objects keyed by column, or lists aligned with columns)."""

    type: Literal["table"] = "table"
    title: LooseStr | None = None
    columns: list[LooseStr]
    rows: list[dict[str, Any] | list[Any]]


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
    Annotated[WidgetsSection, Tag("widgets")]
    | Annotated[BarsSection, Tag("bars")]
    | Annotated[BarsFromSource, Tag("bars_source")]
    | Annotated[LineSection, Tag("line")]
    | Annotated[LineFromSource, Tag("line_source")]
    | Annotated[TableSection, Tag("table")]
    | Annotated[TableFromSource, Tag("table_source")]
    | Annotated[PillsSection, Tag("pills")]
    | Annotated[PillsFromSource, Tag("pills_source")],
    Discriminator(
        _section_tag,
        custom_error_type="section_type",
        custom_error_message="unknown section type",
    ),
]

# A section as validated, whichever its form.
_SectionModel = (
    WidgetsSection
    | BarsSection
    | BarsFromSource
    | LineSection
    | LineFromSource
    | TableSection
    | TableFromSource
    | PillsSection
    | PillsFromSource
)

_SECTION_MODELS: dict[tuple[str, bool], type[_SectionModel]] = {
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


Response = Annotated[Message | Dashboard | Confirm, Field(discriminator="type")]
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
    ResolvedWidgets | ResolvedBars | ResolvedLine | ResolvedTable | ResolvedPills,
    Field(discriminator="type"),
]


class ResolvedDashboard(_Model):
    type: Literal["dashboard"] = "dashboard"
    title: str
    sections: list[ResolvedSection]


class ResolvedConfirm(Confirm):
    """A proposed write as the person sees it: the product's id, the canonical SQL that will run,
    its read-only preview and the rows it would change (``Proposal.resolved``), never the model's
    own claims about them."""

    expires_at: str | None = None
    dry_run_rows: int | None = None
    dry_run_error: str | None = None
    preview: list[dict[str, Any]] = Field(default_factory=list)
    stale: str | None = None


ResolvedResponse = Annotated[Message | ResolvedDashboard | ResolvedConfirm, Field(discriminator="type")]
RESOLVED_ADAPTER: TypeAdapter = TypeAdapter(ResolvedResponse)
ParsedResponse = Message | ResolvedDashboard | Confirm  # a confirm before the product previewed it


def response_json(response: Message | ResolvedDashboard | ResolvedConfirm, *, as_stored: bool = False) -> dict:
    """A response as the wire, the store and the JavaScript carry it. ``as_stored``: one validated
    from a stored dict, given back with exactly the keys it was stored with."""
    return response.model_dump(mode="json", exclude_unset=as_stored)
