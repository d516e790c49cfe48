"""Resolution: a validated response whose sections name result ids (``"source": "r1"``) becomes a
resolved one, with the data taken from the results the agent fetched. Sections that cannot be
resolved are skipped with a note; nothing here raises on bad data.

A result kept as Arrow (a ``QueryResult``, as a turn keeps them in ``db.frames.Frames``) is read
straight from Arrow, only the rows a section shows, with the values its DataFrame would give; a
DataFrame is read as it is. Both draw the same sections (tests compare them)."""

from __future__ import annotations

import datetime as _dt
import decimal
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from ...db import temporal
from ...db.engine import QueryResult
from ...db.frames import Frames
from .colors import KNOWN_VALUE_COLORS, NAMED_COLORS, PALETTE
from .formatting import EMPTY_VALUE, _clean_str, _cut, _is_missing, _json_safe, _label, format_value
from .models import (
    RESPONSE_ADAPTER,
    BarItem,
    BarsFromSource,
    BarsSection,
    Confirm,
    Dashboard,
    LineFromSource,
    LinePoint,
    LineSection,
    Message,
    PillsFromSource,
    PillsSection,
    ResolvedBars,
    ResolvedDashboard,
    ResolvedLine,
    ResolvedPillItem,
    ResolvedPills,
    ResolvedTable,
    ResolvedWidgetItem,
    ResolvedWidgets,
    TableFromSource,
    TableSection,
    WidgetItem,
    WidgetsSection,
    _lenient_number,
)

TABLE_LIMIT_DEFAULT, TABLE_LIMIT_MAX = 50, 500
BARS_LIMIT_DEFAULT, BARS_LIMIT_MAX = 20, 100
PILLS_LIMIT_DEFAULT, PILLS_LIMIT_MAX = 20, 100
LINE_LIMIT_DEFAULT, LINE_LIMIT_MAX = 1000, 5000
MAX_NOTES = 40
_COLOR_SYNONYMS = {"yellow": "amber", "grey": "gray"}
_HEX_COLOR = re.compile(r"^#(?:[0-9a-f]{3}|[0-9a-f]{6})$")


# --------------------------------------------------------------------------
# notes


class _Notes(list):
    def add(self, msg: str) -> None:
        if len(self) < MAX_NOTES:
            self.append(_cut(msg))
        elif len(self) == MAX_NOTES:
            self.append("(further notes omitted)")


# --------------------------------------------------------------------------
# frames and columns


def _natural_key(s: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))


class _Column:
    """The first rows of one column as a section reads them: the values and what kind they are."""

    def __init__(
        self,
        values: list,
        *,
        integer: bool,
        boolean: bool,
        numeric: bool,
        datetime: bool,
        series: Callable[[], pd.Series] | None,
    ) -> None:
        self.values = values
        self.integer = integer  # an integer dtype (not bool): values print as ints
        self.boolean = boolean
        self.numeric = numeric  # a numeric dtype, bool included (as pandas counts them)
        self.datetime = datetime  # a datetime64 column (dates Python cannot hold are text: not one)
        self._series = series  # the same rows as a pandas Series; None: the values are numbers already

    def numbers(self) -> list:
        """The values as numbers (NaN, NA or None where not numeric)."""
        return self.values if self._series is None else _numeric(self._series()).tolist()


class _Table:
    """A result as the sections read it: a DataFrame, or a ``QueryResult`` read straight from Arrow."""

    def __init__(self, source: pd.DataFrame | QueryResult) -> None:
        self._df = source if isinstance(source, pd.DataFrame) else None
        self._result = source if isinstance(source, QueryResult) else None
        if self._df is not None:
            self.names = [_clean_str(str(c)) for c in self._df.columns]
            self.rows = len(self._df)
            raw_sql = self._df.attrs.get("sql")
        else:
            assert self._result is not None
            self.names = [_clean_str(str(c)) for c in self._result.table.column_names]
            self.rows = self._result.row_count
            raw_sql = self._result.sql
        self.sql = None if raw_sql is None else _clean_str(str(raw_sql))

    def column(self, pos: int, limit: int) -> _Column:
        """The first ``limit`` rows of column ``pos``."""
        if self._df is not None:
            series = self._df.iloc[:limit, pos]
            dtype, types = series.dtype, pd.api.types
            return _Column(
                series.tolist(),
                integer=_dtype_is(types.is_integer_dtype, dtype) and not _dtype_is(types.is_bool_dtype, dtype),
                boolean=_dtype_is(types.is_bool_dtype, dtype),
                numeric=_dtype_is(types.is_numeric_dtype, dtype),
                datetime=_dtype_is(types.is_datetime64_any_dtype, dtype),
                series=lambda: series,
            )
        result = self._result
        assert result is not None
        typ = result.table.schema.field(pos).type
        # A numeric is float64 in the DataFrame; integers are nullable integers there.
        number = pos in result.numeric_text or pa.types.is_integer(typ) or pa.types.is_floating(typ)
        return _Column(
            result.column_values(pos, limit),
            integer=pa.types.is_integer(typ),
            boolean=pa.types.is_boolean(typ),
            numeric=number or pa.types.is_boolean(typ),
            datetime=pa.types.is_timestamp(typ) and not temporal.needs_care(result.table.column(pos)),
            # the rare rest (text, booleans as numbers) as the DataFrame reads it, to read the same
            series=None if number else (lambda: result.df.iloc[:limit, pos]),
        )

    def cell(self, row: int, pos: int) -> Any:
        """The value at ``row`` (negative counts from the end) of column ``pos``."""
        if self._df is not None:
            return self._df.iloc[row, pos]
        assert self._result is not None
        row = row % self.rows
        return self._result.column_values(pos, row + 1)[row]


def _dtype_is(test: Callable[[Any], bool], dtype: Any) -> bool:
    """``pandas.api.types``' ``test`` of a column's dtype, False for a dtype it cannot judge."""
    try:
        return bool(test(dtype))
    except Exception:
        return False


class _Frames:
    def __init__(self, frames: Mapping[str, Any] | None):
        self.unknown: list[str] = []  # ids named that this conversation has no result for
        self.frames: dict[str, Any] = {}
        if frames:
            try:
                items = frames.sources() if isinstance(frames, Frames) else frames
                for k, v in items.items():
                    self.frames[str(k)] = v
            except Exception:
                pass

    def get(self, source: str, notes: _Notes, where: str) -> tuple[_Table, str, str | None] | None:
        """-> (table, canonical id, sql), or None with a note."""
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
        if key is None:  # one sentence for all of them, at the end (unknown_sentence)
            if str(source) not in self.unknown:
                self.unknown.append(str(source))
            return None
        value = self.frames[key]
        try:
            table = _Table(value if isinstance(value, (pd.DataFrame, QueryResult)) else pd.DataFrame(value))
        except Exception:
            notes.add(f"{where}: {key} is not a table")
            return None
        return table, key, table.sql


def _find_column(table: _Table, name: str) -> int | None:
    """Position of column ``name`` (exact, then case-insensitive unique match)."""
    names = table.names
    if name in names:
        return names.index(name)
    low = [n.lower() for n in names]
    target = str(name).strip().lower()
    if low.count(target) == 1:
        return low.index(target)
    return None


def _missing_col_note(notes: _Notes, where: str, col: str, key: str, table: _Table) -> None:
    cols = ", ".join(table.names[:20]) or "none"
    notes.add(f"{where}: column {col!r} is not in {key} (columns: {cols})")


def _required_columns(table: _Table, key: str, notes: _Notes, where: str, *names: str) -> list[int] | None:
    """The positions of columns a section cannot do without; each one missing gets its note."""
    found = [_find_column(table, name) for name in names]
    for name, pos in zip(names, found):
        if pos is None:
            _missing_col_note(notes, where, name, key, table)
    return None if None in found else [pos for pos in found if pos is not None]


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
    except Exception:
        out = []
        for v in series.tolist():
            try:
                x = _lenient_number(v)
                out.append(float(x) if isinstance(x, (int, float)) else math.nan)
            except Exception:
                out.append(math.nan)
        return pd.Series(out, index=series.index, dtype="float64")


def _num_out(v: Any, as_int: bool) -> int | float | None:
    if type(v) is int and -(2**53) < v < 2**53:  # most values: the int itself, whichever way below
        return v
    if _is_missing(v):
        return None
    try:
        f = float(v)
    except Exception:
        return None
    if not math.isfinite(f):
        return None
    if as_int or (f.is_integer() and abs(f) < 2**53 and isinstance(v, (int, np.integer))):
        try:
            return int(v)
        except Exception:
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
        got = frames.get(item.source, notes, w)
        if got is None:
            continue
        table, key, sql = got
        pos = _find_column(table, item.column)
        if pos is None:
            _missing_col_note(notes, w, item.column, key, table)
            continue
        sources.add((key, sql))
        if table.rows == 0:
            notes.add(f"{w}: {key} has no rows")
            value: Any = EMPTY_VALUE
        elif not -table.rows <= item.row < table.rows:
            notes.add(f"{w}: {key} has no row {item.row} ({table.rows} rows)")
            value = EMPTY_VALUE
        else:
            value = format_value(table.cell(item.row, pos))
        items.append(ResolvedWidgetItem(title=item.title, value=value, subtext=item.subtext, source=key, sql=sql))
    src, sql = next(iter(sources)) if len(sources) == 1 and all(i.source for i in items) else (None, None)
    return ResolvedWidgets(items=items, source=src, sql=sql)


def _resolve_bars(sec: BarsSection | BarsFromSource, frames: _Frames, notes: _Notes, where: str) -> ResolvedBars | None:
    if isinstance(sec, BarsSection):
        return ResolvedBars(label=sec.label, items=sec.items, total_rows=len(sec.items))
    got = frames.get(sec.source, notes, where)
    if got is None:
        return None
    table, key, sql = got
    found = _required_columns(table, key, notes, where, sec.x, sec.y)
    if found is None:
        return None
    xi, yi = found
    label = sec.label if sec.label is not None else f"{sec.y} by {sec.x}"
    limit = _clamp_limit(sec.limit, BARS_LIMIT_DEFAULT, BARS_LIMIT_MAX, notes, where)
    if table.rows == 0:
        notes.add(f"{where}: {key} has no rows")
        return ResolvedBars(label=label, items=[], source=key, sql=sql, total_rows=0)
    ycol = table.column(yi, limit)
    as_int = ycol.integer
    items, dropped = [], 0
    for name, yv in zip(table.column(xi, limit).values, ycol.numbers()):
        val = _num_out(yv, as_int)
        if val is None:
            dropped += 1
            continue
        items.append(BarItem(name=_label(name), value=val))
    if dropped:
        notes.add(f"{where}: dropped {dropped} row(s) where {sec.y!r} is not a number")
    if table.rows > limit:
        notes.add(f"{where}: showing the first {limit} of {table.rows:,} rows of {key}")
    return ResolvedBars(label=label, items=items, source=key, sql=sql, total_rows=table.rows)


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
    except Exception:
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
        rows: list[tuple[Any, Any, Any, str | None]] = [(p.x, k, p.y, p.series) for k, p in zip(keys, sec.points)]
        points, _ = _finish_line(rows, kind)
        series = list(dict.fromkeys(p.series for p in points if p.series is not None))
        return ResolvedLine(label=sec.label, points=points, series=series, x_type=kind, total_rows=len(sec.points))

    got = frames.get(sec.source, notes, where)
    if got is None:
        return None
    table, key, sql = got
    ycols = [sec.y] if isinstance(sec.y, str) else list(dict.fromkeys(sec.y))
    xi = _find_column(table, sec.x)
    if xi is None:
        _missing_col_note(notes, where, sec.x, key, table)
        return None
    ypos: list[tuple[str, int]] = []
    for yc in ycols:
        pos = _find_column(table, yc)
        if pos is None:
            _missing_col_note(notes, where, yc, key, table)
        else:
            ypos.append((yc, pos))
    if not ypos:
        if not ycols:
            notes.add(f"{where}: no y column given")
        return None
    spos = None
    if sec.series is not None:
        spos = _find_column(table, sec.series)
        if spos is None:
            _missing_col_note(notes, where, sec.series, key, table)
    label = sec.label if sec.label is not None else f"{', '.join(c for c, _ in ypos)} by {sec.x}"
    limit = _clamp_limit(sec.limit, LINE_LIMIT_DEFAULT, LINE_LIMIT_MAX, notes, where)
    base = dict(
        label=label,
        source=key,
        sql=sql,
        total_rows=table.rows,
        x_label=sec.x,
        y_label=ypos[0][0] if len(ypos) == 1 else None,
    )
    if table.rows == 0:
        notes.add(f"{where}: {key} has no rows")
        return ResolvedLine(points=[], **base)
    xcol = table.column(xi, limit)
    xvals = xcol.values
    shown = len(xvals)
    if xcol.datetime:
        kind, keys = "time", [None if _is_missing(v) else pd.Timestamp(v) for v in xvals]
    elif xcol.numeric and not xcol.boolean:
        kind, keys = "number", [None if _is_missing(v) else float(v) for v in xcol.numbers()]
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
    series_vals = [_label(v) for v in table.column(spos, limit).values] if (spos is not None and not multi) else None
    rows = []
    for yc, pos in ypos:
        ycol = table.column(pos, limit)
        yv = [_num_out(v, ycol.integer) for v in ycol.numbers()]
        for i in range(shown):
            name = yc if multi else (series_vals[i] if series_vals is not None else None)
            rows.append((xs_out[i], sort_keys[i], yv[i], name))
    points, dropped = _finish_line(rows, kind)
    if dropped:
        notes.add(f"{where}: dropped {dropped} point(s) with a missing x or y")
    if table.rows > limit:
        notes.add(f"{where}: using the first {limit} of {table.rows:,} rows of {key}")
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


def _resolve_table(
    sec: TableSection | TableFromSource, frames: _Frames, notes: _Notes, where: str
) -> ResolvedTable | None:
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

    got = frames.get(sec.source, notes, where)
    if got is None:
        return None
    table, key, sql = got
    names = table.names
    if sec.columns:
        positions = []
        for c in sec.columns:
            pos = _find_column(table, c)
            if pos is None:
                _missing_col_note(notes, where, c, key, table)
            elif pos not in positions:
                positions.append(pos)
        if not positions:
            notes.add(f"{where}: none of the requested columns exist; showing all columns")
            positions = list(range(len(names)))
    else:
        positions = list(range(len(names)))
    columns = _dedupe([names[p] for p in positions], notes, where)
    limit = _clamp_limit(sec.limit, TABLE_LIMIT_DEFAULT, TABLE_LIMIT_MAX, notes, where)
    if table.rows == 0:
        notes.add(f"{where}: {key} has no rows")
    cells = [table.column(pos, limit).values for pos in positions]
    tuples = zip(*cells) if cells else [()] * min(limit, table.rows)  # no columns: empty rows
    rows = [{c: _json_safe(v) for c, v in zip(columns, tup)} for tup in tuples]
    return ResolvedTable(title=sec.title, columns=columns, rows=rows, total_rows=table.rows, source=key, sql=sql)


def _normalise_color(color: str | None, label: str, notes: _Notes, where: str, auto: _AutoColor) -> str:
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


def _resolve_pills(
    sec: PillsSection | PillsFromSource, frames: _Frames, notes: _Notes, where: str
) -> ResolvedPills | None:
    auto = _AutoColor()
    if isinstance(sec, PillsSection):
        items = [
            ResolvedPillItem(label=p.label, color=_normalise_color(p.color, p.label, notes, where, auto), count=p.count)
            for p in sec.items
        ]
        return ResolvedPills(label=sec.label, items=items, total_rows=len(sec.items))
    got = frames.get(sec.source, notes, where)
    if got is None:
        return None
    table, key, sql = got
    found = _required_columns(table, key, notes, where, sec.label_column, sec.count_column)
    if found is None:
        return None
    li, ci = found
    limit = _clamp_limit(sec.limit, PILLS_LIMIT_DEFAULT, PILLS_LIMIT_MAX, notes, where)
    if table.rows == 0:
        notes.add(f"{where}: {key} has no rows")
    items, dropped = [], 0
    for lab, cnt in zip(table.column(li, limit).values, table.column(ci, limit).numbers()):
        n = _num_out(cnt, False)
        if n is None:
            dropped += 1
            continue
        label = _label(lab)
        items.append(ResolvedPillItem(label=label, color=auto(label), count=round(n)))
    if dropped:
        notes.add(f"{where}: dropped {dropped} row(s) where {sec.count_column!r} is not a number")
    if table.rows > limit:
        notes.add(f"{where}: showing the first {limit} of {table.rows:,} rows of {key}")
    return ResolvedPills(label=sec.label, items=items, source=key, sql=sql, total_rows=table.rows)


# Each takes its own section types (Any here) and returns the resolved section, or None.
_RESOLVERS: dict[type[BaseModel], Callable[[Any, _Frames, _Notes, str], BaseModel | None]] = {
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
    except Exception as e:
        notes.add(f"skipped {where}: internal error while resolving ({type(e).__name__}: {e})")
        return None


def resolve_response(
    response: Any, frames: Mapping[str, pd.DataFrame] | Mapping[str, QueryResult] | None = None
) -> tuple[Any, list[str]]:
    """Resolve a validated :data:`Response` (model instance or dict) against results: DataFrames,
    ``QueryResult``s (read from Arrow) or a ``Frames``.

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
    finished = finish_dashboard(response.title, sections, fr, notes)
    return finished, list(notes)


def finish_dashboard(title: Any, sections: list[Any], frames: _Frames, notes: _Notes) -> ResolvedDashboard | Message:
    """The resolved dashboard; named results this conversation lacks are one sentence, and a
    dashboard left with nothing to show is refused in that sentence rather than drawn empty."""
    if frames.unknown:
        sentence = unknown_sentence(frames.unknown, bool(sections))
        if not sections:
            notes.clear()
            return Message(text=sentence)
        notes.insert(0, sentence)
    return ResolvedDashboard(title=title, sections=sections)


def unknown_sentence(ids: list[str], partial: bool) -> str:
    """What a person reads when an answer names results this conversation does not have."""
    named = ", ".join(ids[:6])
    if partial:
        return (
            f"Parts of this answer are left out: they are built on results this conversation does not "
            f"have ({named}). Ask the question again to see them."
        )
    return (
        f"This answer could not be shown: it is built on results this conversation does not have "
        f"({named}). Ask the question again to see it."
    )
