"""PostgreSQL parse trees (pglast): parsing text from the model, every node of a statement, and
the names it calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .errors import QueryError


def parse(sql: Any, *, noun: str, empty: str, error: type[QueryError] = QueryError) -> list:
    """The raw statements of ``sql``, or ``error`` with one sentence: nothing there (``empty``),
    a NUL byte or lone surrogate PostgreSQL would refuse, or text that does not parse."""
    import pglast

    if not isinstance(sql, str) or not sql.strip():
        raise error(empty)
    if "\x00" in sql:
        raise error(f"The {noun} contains a NUL byte, which PostgreSQL does not accept.")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in sql):
        raise error(f"The {noun} contains a lone surrogate character; send valid Unicode text.")
    try:
        raw = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        raise error(f"The {noun} does not parse: {exc}. Fix the SQL and try again.") from None
    if not raw:
        raise error(empty)
    return list(raw)


def walk(node) -> Iterator[Any]:
    """Every pglast node under ``node`` (itself included), depth first."""
    from pglast import ast

    if isinstance(node, (list, tuple)):
        for item in node:
            yield from walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for attr in node:  # a Node iterates over its attribute names
            value = getattr(node, attr, None)
            if isinstance(value, (ast.Node, list, tuple)):
                yield from walk(value)


def function_name(call) -> tuple[str, ...]:
    """A FuncCall's name as the parser resolved its spelling: quoting and case are gone."""
    return tuple(s.sval for s in call.funcname)
