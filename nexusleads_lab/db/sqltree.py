"""Walking PostgreSQL parse trees (pglast): every node of a statement, and the names it calls."""

from __future__ import annotations

from typing import Any, Iterator


def walk(node) -> Iterator[Any]:
    """Every pglast node under ``node`` (itself included), depth first."""
    from pglast import ast

    if isinstance(node, (list, tuple)):
        for item in node:
            yield from walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for attr in node.__slots__:
            value = getattr(node, attr, None)
            if isinstance(value, (ast.Node, list, tuple)):
                yield from walk(value)


def function_name(call) -> tuple[str, ...]:
    """A FuncCall's name as the parser resolved its spelling: quoting and case are gone."""
    return tuple(s.sval for s in call.funcname)
