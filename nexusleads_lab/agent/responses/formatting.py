"""Cell values as renderers get them: JSON-safe values, KPI values and category labels."""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pydantic import JsonValue

MAX_STRING = 500  # longer strings are cut and end with "…"
NULL_LABEL = "(null)"
EMPTY_VALUE = "—"


def _cut(s: str) -> str:
    return s if len(s) <= MAX_STRING else s[:MAX_STRING] + "…"


def _clean_str(s: str) -> str:
    """Replace lone surrogates (from "\\ud800" escapes) so the text can be encoded as UTF-8."""
    if s.isascii():  # a flag of the string: no encoding needed to know
        return s
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
    if isinstance(v, (np.datetime64, np.timedelta64)):
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
    except Exception:
        return _cut(repr(type(v)))


MAX_DEPTH = 40  # parsed JSON nested deeper than this is cut (None)


def _clean_tree(v: Any, depth: int = 0) -> Any:
    """Clean strings in parsed JSON (lone surrogates); cut absurd nesting."""
    if isinstance(v, str):
        return _clean_str(v)
    if depth > MAX_DEPTH:
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
    if isinstance(v, (pd.Timestamp, _dt.datetime)):
        return _label(v)
    out = _json_safe(v)
    if isinstance(out, (dict, list)):
        return _cut(json.dumps(out, ensure_ascii=False))
    return EMPTY_VALUE if out is None else str(out)


def _label(v: Any) -> str:
    """A cell as a category label (bar name, pill label, line x category)."""
    kind = type(v)
    if kind is str:  # most labels: what _json_safe makes of a string, without its other questions
        return _cut(_clean_str(v))
    if kind is int:
        return str(v)
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
