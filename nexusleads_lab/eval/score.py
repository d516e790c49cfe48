"""Execution accuracy, as BIRD and Spider score it: does a query result of the answer equal the
gold SQL's result?

Rows compare as a multiset (as a sequence only when the gold SQL has a top-level ``ORDER BY``).
The gold columns must appear in the answer's result under any names and in any order, so the
answer may alias, reorder and add columns; each gold column maps to a different answer column.
Cells compare by meaning, not by Python type: ``Decimal``, ``float`` and ``int`` are numbers
(integers exactly, other numbers within ``REL_TOL`` relative), ``None``/``NaN``/``NaT`` are one
null, a date equals that day's midnight, and an aware timestamp is compared in UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from ..words import plural

REL_TOL = 1e-6
ABS_TOL = 1e-12  # float noise around zero (a sum that should be 0 and is 1e-17)
MAX_MAPPINGS = 2_000  # column assignments tried before giving up on a very ambiguous result
_EXACT_INT = 2**53  # beyond this a float holds no exact integer, so integers compare within tolerance too

# Kinds of cell, in the order rows sort.
_NULL, _BOOL, _NUM, _TIME, _SPAN, _TEXT, _LIST, _OTHER = range(8)

Cell = tuple[int, Any]


def gold_is_ordered(sql: str) -> bool:
    """True when the statement's outermost query has ``ORDER BY`` (PostgreSQL's own parser: an
    ``ORDER BY`` inside a subquery, a CTE, a window or an aggregate does not count)."""
    from pglast import ast

    from ..db.sqltree import parse

    stmt = parse(sql, noun="gold SQL", empty="The gold SQL is empty.")[0].stmt
    return isinstance(stmt, ast.SelectStmt) and bool(stmt.sortClause)


# -- cells -------------------------------------------------------------------------------------


def cell(value: Any) -> Cell:
    """A value as (kind, comparable value); numbers keep their exactness (int, Decimal or float)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return (_NULL, None)
    if isinstance(value, (bool, np.bool_)):
        return (_BOOL, bool(value))
    if isinstance(value, (int, np.integer)):
        return (_NUM, int(value))
    if isinstance(value, Decimal):
        if value.is_nan():
            return (_NULL, None)
        if value.is_finite() and value == value.to_integral_value():
            return (_NUM, int(value))
        return (_NUM, value if value.is_finite() else float(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return (_NULL, None)
        if number.is_integer() and abs(number) < _EXACT_INT:
            return (_NUM, int(number))
        return (_NUM, number)
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return (_NULL, None)
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime(warn=False)
    if isinstance(value, dt.datetime):
        return (_TIME, value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo is not None else value)
    if isinstance(value, dt.date):
        return (_TIME, dt.datetime.combine(value, dt.time()))
    if isinstance(value, (dt.timedelta, np.timedelta64)):
        span = pd.Timedelta(value)
        return (_NULL, None) if pd.isna(span) else (_SPAN, span.value)
    if isinstance(value, str):
        return (_TEXT, value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return (_LIST, tuple(cell(v) for v in value))
    if isinstance(value, Mapping):
        return (_OTHER, json.dumps(value, sort_keys=True, default=str, ensure_ascii=False))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return (_OTHER, bytes(value).hex())
    return (_OTHER, str(value))


def same(a: Cell, b: Cell) -> bool:
    """Two cells mean the same value."""
    if a[0] != b[0]:
        return False
    if a[0] == _NUM:
        x, y = a[1], b[1]
        if isinstance(x, int) and isinstance(y, int) and max(abs(x), abs(y)) < _EXACT_INT:
            return x == y  # counts and ids: 1,000,000 is not 1,000,001, whatever the tolerance
        return math.isclose(float(x), float(y), rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if a[0] == _LIST:
        return len(a[1]) == len(b[1]) and all(same(x, y) for x, y in zip(a[1], b[1]))
    return bool(a[1] == b[1])


def _sort_key(c: Cell, coarse: bool) -> tuple:
    """A cell's place in a sort. ``coarse`` rounds fractional numbers to 6 significant digits,
    so two results whose numbers differ by float noise sort their rows alike."""
    kind, value = c
    if kind == _NULL:
        return (kind, 0)
    if kind == _NUM:
        if coarse and not isinstance(value, int):
            return (kind, float(f"{float(value):.6g}"))
        return (kind, value)
    if kind == _LIST:
        return (kind, tuple(_sort_key(v, coarse) for v in value))
    return (kind, value)


def _row_key(row: Sequence[Cell]) -> tuple:
    return (tuple(_sort_key(c, True) for c in row), tuple(_sort_key(c, False) for c in row))


def _same_rows(xs: Sequence[Sequence[Cell]], ys: Sequence[Sequence[Cell]]) -> bool:
    return len(xs) == len(ys) and all(len(x) == len(y) and all(map(same, x, y)) for x, y in zip(xs, ys))


def _columns(frame: pd.DataFrame) -> list[list[Cell]]:
    """The frame's cells column by column, by position (a result may repeat a column name)."""
    return [[cell(v) for v in frame.iloc[:, i].tolist()] for i in range(frame.shape[1])]


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """How one answer result compares with the gold result. ``rank`` orders the failures by how
    close they came (row count wrong < a gold column missing < rows differ < only the order
    differs), so the reason shown is the nearest miss."""

    ok: bool
    reason: str
    rank: int = 0


class Gold:
    """A gold result, prepared once for comparing against every answer result."""

    def __init__(self, frame: pd.DataFrame, *, ordered: bool) -> None:
        self.frame = frame
        self.ordered = ordered
        self.names = [str(c) for c in frame.columns]
        self.columns = _columns(frame)
        self.sorted_columns = [sorted(col, key=lambda c: _sort_key(c, False)) for col in self.columns]
        self.rows = list(zip(*self.columns)) if self.columns else [() for _ in range(len(frame))]
        self.sorted_rows = sorted(self.rows, key=_row_key)

    def compare(self, answer: pd.DataFrame, label: str = "the result") -> Match:
        """Whether ``answer`` holds the gold result (``label`` names it in the reason)."""
        n, want = len(answer), len(self.rows)
        if n != want:
            return Match(False, f"{label} has {_rows(n)}, the gold result {_rows(want)}", 0)
        if answer.shape[1] < len(self.columns):
            return Match(False, f"{label} has {answer.shape[1]} columns, the gold result {len(self.columns)}", 0)
        columns = _columns(answer)
        sorted_columns = [sorted(col, key=lambda c: _sort_key(c, False)) for col in columns]
        # Which answer columns hold each gold column's values (as a multiset): the only candidates.
        candidates = [
            [i for i, col in enumerate(sorted_columns) if all(map(same, gold_col, col))]
            for gold_col in self.sorted_columns
        ]
        missing = [self.names[j] for j, found in enumerate(candidates) if not found]
        if missing:
            named = ", ".join(repr(m) for m in missing[:3]) + (" …" if len(missing) > 3 else "")
            return Match(False, f"no column of {label} holds the values of gold column {named}", 1)
        order = sorted(range(len(candidates)), key=lambda j: len(candidates[j]))
        unordered_fit: dict[int, int] | None = None
        for tried, mapping in enumerate(_assignments(order, candidates)):
            if tried >= MAX_MAPPINGS:
                break
            rows = list(zip(*(columns[mapping[j]] for j in range(len(self.columns))))) or [() for _ in range(n)]
            if self.ordered and _same_rows(self.rows, rows):
                return Match(True, f"{label} matches the gold result{self._renames(answer, mapping)}")
            if _same_rows(self.sorted_rows, sorted(rows, key=_row_key)):
                if not self.ordered:
                    return Match(True, f"{label} matches the gold result{self._renames(answer, mapping)}")
                unordered_fit = unordered_fit or mapping
        if unordered_fit is not None:
            return Match(False, f"{label} has the gold rows in another order (the gold SQL orders them)", 3)
        return Match(False, f"{label} has every gold column's values, but not in the same rows", 2)

    def _renames(self, answer: pd.DataFrame, mapping: dict[int, int]) -> str:
        renamed = [
            f"{self.names[j]} as {answer.columns[i]}"
            for j, i in sorted(mapping.items())
            if str(answer.columns[i]) != self.names[j]
        ]
        return f" ({', '.join(renamed)})" if renamed else ""


def _assignments(order: list[int], candidates: list[list[int]]):
    """Every injective choice of one candidate answer column per gold column."""
    chosen: dict[int, int] = {}
    used: set[int] = set()

    def place(k: int):
        if k == len(order):
            yield dict(chosen)
            return
        j = order[k]
        for i in candidates[j]:
            if i not in used:
                chosen[j] = i
                used.add(i)
                yield from place(k + 1)
                used.discard(i)
                del chosen[j]

    yield from place(0)


def _rows(n: int) -> str:
    return plural(n, "row")


def best_match(gold: Gold, frames: Mapping[str, pd.DataFrame]) -> Match:
    """The first of the turn's results that holds the gold result, or the nearest miss."""
    if not frames:
        return Match(False, "the answer ran no query, so there is no result to compare", -1)
    best: Match | None = None
    for result_id, frame in frames.items():
        match = gold.compare(frame, result_id)
        if match.ok:
            return match
        if best is None or match.rank > best.rank:
            best = match
    assert best is not None
    return best
