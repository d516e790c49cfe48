"""The read path's verdict for SQL text it has seen before: checked and rewritten once per process.

``check_read`` and ``rewrite`` are pure functions of the text (the allow-lists are the code's
own), and parsing with pglast and walking the tree is most of the CPU a read costs in the server;
a model asks the same questions again and again (every session of a dashboard, every retry). Only
accepted text is kept: a refusal is worked out again, so its paragraph is always fresh. The text
sent still goes through the role, the read-only transaction and the wrapper every time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from .readsql import Rewritten, rewrite

MAX_ENTRIES = 512
MAX_TEXT = 16 * 1024  # longer text is rare and checked each time (the cache stays small)


class Verdicts:
    """A bounded, thread-safe memo of ``check`` then ``rewrite`` for one check function."""

    def __init__(self, check: Callable[[str], str], max_entries: int = MAX_ENTRIES) -> None:
        self._check = check
        self._max = max_entries
        self._seen: OrderedDict[tuple[str, int | None], tuple[str, Rewritten]] = OrderedDict()
        self._lock = threading.Lock()

    def checked(self, sql: str, value_bound: int | None) -> tuple[str, Rewritten]:
        """The text as checked (QueryError if refused) and the statement to send."""
        key = (sql, value_bound)
        cacheable = isinstance(sql, str) and len(sql) <= MAX_TEXT
        if cacheable:
            with self._lock:
                hit = self._seen.get(key)
                if hit is not None:
                    self._seen.move_to_end(key)
                    return hit
        text = self._check(sql)
        verdict = (text, rewrite(text, value_bound=value_bound))
        if cacheable:
            with self._lock:
                self._seen[key] = verdict
                while len(self._seen) > self._max:
                    self._seen.popitem(last=False)
        return verdict
