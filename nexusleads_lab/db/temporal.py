"""Dates and timestamps PostgreSQL holds but Python cannot: ``infinity``, BC, years past 9999.

The Arrow driver maps PostgreSQL's infinities to wrapped-around numbers (PostgreSQL stores them
as the integer extremes counted from 2000-01-01; the driver shifts them to 1970 without a
special case). Such a column becomes readable strings where needed (``infinity``,
``-infinity``, ``10000-01-01``, ``0044-03-15 BC``) and stays real dates or timestamps elsewhere:
never a traceback, never a wrong year.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

_EPOCH_DAYS = 10_957  # 1970-01-01 -> 2000-01-01
_EPOCH_US = _EPOCH_DAYS * 86_400_000_000


def _wrap(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


# What the driver delivers for PostgreSQL's +/-infinity, in the column's own unit.
_DATE_INF = {_wrap(2**31 - 1 + _EPOCH_DAYS, 32): "infinity", _wrap(-(2**31) + _EPOCH_DAYS, 32): "-infinity"}
_TS_INF = {_wrap(2**63 - 1 + _EPOCH_US, 64): "infinity", _wrap(-(2**63) + _EPOCH_US, 64): "-infinity"}
_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}

# The range Python's datetime (years 1..9999) holds, in days and microseconds since 1970.
_MIN_DAYS, _MAX_DAYS = -719_162, 2_932_896
_MIN_US, _MAX_US = _MIN_DAYS * 86_400_000_000, (_MAX_DAYS + 1) * 86_400_000_000 - 1


def needs_care(col: pa.ChunkedArray) -> bool:
    """True for a date or timestamp column holding a value Python cannot represent."""
    typ = col.type
    if not (pa.types.is_date32(typ) or pa.types.is_timestamp(typ)) or col.null_count == len(col):
        return False
    low, high = _bounds(col)
    if pa.types.is_date32(typ):
        return low < _MIN_DAYS or high > _MAX_DAYS
    per_us = _UNIT_US[typ.unit]
    return low * per_us < _MIN_US or high * per_us > _MAX_US


def _ints(col: pa.ChunkedArray) -> pa.ChunkedArray:
    storage = pa.int32() if pa.types.is_date32(col.type) else pa.int64()
    return pa.chunked_array([c.view(storage) for c in col.chunks], type=storage)


def _bounds(col: pa.ChunkedArray) -> tuple[int, int]:
    mm = pc.min_max(_ints(col))
    return mm["min"].as_py(), mm["max"].as_py()


def to_objects(col: pa.ChunkedArray) -> list:
    """The column as Python values: dates/datetimes where they fit, readable strings elsewhere."""
    typ = col.type
    out: list = []
    if pa.types.is_date32(typ):
        for days in _ints(col).to_pylist():
            if days is None:
                out.append(None)
            elif days in _DATE_INF:
                out.append(_DATE_INF[days])
            elif _MIN_DAYS <= days <= _MAX_DAYS:
                out.append(dt.date(1970, 1, 1) + dt.timedelta(days=days))
            else:
                out.append(_format_day(days))
        return out
    per_us = _UNIT_US[typ.unit]
    tz = dt.UTC if typ.tz else None
    for raw in _ints(col).to_pylist():
        if raw is None:
            out.append(None)
            continue
        if raw in _TS_INF and typ.unit == "us":
            out.append(_TS_INF[raw])
            continue
        us = int(raw * per_us)
        if _MIN_US <= us <= _MAX_US:
            out.append(dt.datetime(1970, 1, 1, tzinfo=tz) + dt.timedelta(microseconds=us))
        else:
            days, rest = divmod(us, 86_400_000_000)
            clock = (dt.datetime.min + dt.timedelta(microseconds=rest)).time().isoformat()
            bc = " BC" if _civil(days)[0] <= 0 else ""
            out.append(f"{_format_day(days, bc_suffix=False)}T{clock}{'+00:00' if tz else ''}{bc}")
    return out


def _civil(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) for days since 1970-01-01, any year (H. Hinnant)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def _format_day(days: int, *, bc_suffix: bool = True) -> str:
    y, m, d = _civil(days)
    if y <= 0:  # astronomical year 0 is 1 BC, as PostgreSQL writes it
        text = f"{1 - y:04d}-{m:02d}-{d:02d}"
        return text + " BC" if bc_suffix else text
    return f"{y:04d}-{m:02d}-{d:02d}"


def intervals(col: pa.ChunkedArray):
    """PostgreSQL intervals as pandas Timedeltas: a month counts 30 days, as PostgreSQL's own
    ``extract(epoch FROM interval)`` and ``justify_days`` count it."""
    import pandas as pd

    out = []
    for value in col.to_pylist():
        if value is None:
            out.append(pd.NaT)
        else:
            months, days, nanos = value.months, value.days, value.nanoseconds
            out.append(pd.Timedelta(days=months * 30 + days) + pd.Timedelta(nanoseconds=nanos))
    return pd.Series(out, dtype="timedelta64[ns]")
