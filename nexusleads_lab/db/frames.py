"""A conversation's results by result id: DataFrames to the notebook, Arrow to the server.

A ``psql`` call's result is kept as its ``QueryResult`` (Arrow) and becomes a pandas DataFrame
the first time someone looks it up here (``QueryResult.df``, built once). The server previews
and draws a result (``sources``) without ever building one: that conversion was a millisecond of
CPU per read, more than the rest of the read's Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import TypeAlias

import pandas as pd

from .engine import QueryResult

Source: TypeAlias = QueryResult | pd.DataFrame


class Frames(MutableMapping[str, pd.DataFrame]):
    """Result id -> DataFrame (built on first look); ``keep`` adds a read's result as it is."""

    def __init__(self, frames: Mapping[str, pd.DataFrame] | Iterable[tuple[str, pd.DataFrame]] = ()) -> None:
        self._kept: dict[str, Source] = {}
        self.update(frames)

    def keep(self, key: str, result: QueryResult) -> None:
        """Keep a read's result under ``key``; its DataFrame is made when it is first looked up."""
        self._kept[key] = result

    def sources(self) -> dict[str, Source]:
        """What is kept, without building a DataFrame: a ``QueryResult`` or a DataFrame per id."""
        return dict(self._kept)

    def __getitem__(self, key: str) -> pd.DataFrame:
        value = self._kept[key]
        return value.df if isinstance(value, QueryResult) else value

    def __setitem__(self, key: str, frame: pd.DataFrame) -> None:
        self._kept[key] = frame

    def __delitem__(self, key: str) -> None:
        del self._kept[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kept)

    def __reversed__(self) -> Iterator[str]:
        return reversed(self._kept)

    def __len__(self) -> int:
        return len(self._kept)

    def __repr__(self) -> str:
        return f"Frames({', '.join(self._kept) or 'empty'})"
