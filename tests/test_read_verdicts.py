"""The read path's verdicts for SQL text seen before (db/verdicts.py): what is accepted is judged
once per engine, what is refused is refused every time with the same paragraph."""

from __future__ import annotations

import pytest

from nexusleads_lab.db.errors import QueryError
from nexusleads_lab.db.readsql import check_read, rewrite
from nexusleads_lab.db.verdicts import Verdicts


class Counting:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, sql: str) -> str:
        self.calls.append(sql)
        return check_read(sql)


def test_accepted_text_is_judged_once_and_sent_as_rewritten():
    check = Counting()
    verdicts = Verdicts(check)
    sql = "SELECT name, setting FROM pg_settings WHERE name = 'work_mem';"
    first = verdicts.checked(sql, 1000)
    again = verdicts.checked(sql, 1000)
    assert check.calls == [sql]
    assert again == first
    text, sent = first
    assert text == check_read(sql)
    assert sent == rewrite(text, value_bound=1000)
    assert sent.text != text  # pg_settings is sent as the product's filtered view


def test_another_value_bound_is_another_verdict():
    check = Counting()
    verdicts = Verdicts(check)
    sql = "SELECT string_agg(tier, ',') FROM lead_scores"
    small, large = verdicts.checked(sql, 100)[1], verdicts.checked(sql, 10_000)[1]
    assert len(check.calls) == 2
    assert "10000" in large.text and "10000" not in small.text and "100" in small.text


def test_refused_text_is_refused_every_time_with_the_same_words():
    check = Counting()
    verdicts = Verdicts(check)
    sql = "SELECT pg_sleep(10)"
    messages = []
    for _ in range(3):
        with pytest.raises(QueryError) as refused:
            verdicts.checked(sql, None)
        messages.append(refused.value.message)
    assert len(check.calls) == 3
    assert len(set(messages)) == 1 and "pg_sleep" in messages[0]


def test_the_memo_is_bounded_and_forgets_the_least_recently_used():
    check = Counting()
    verdicts = Verdicts(check, max_entries=3)
    for n in range(4):
        verdicts.checked(f"SELECT {n}", None)
    verdicts.checked("SELECT 3", None)  # still kept
    verdicts.checked("SELECT 0", None)  # the oldest, let go: judged again
    assert check.calls == ["SELECT 0", "SELECT 1", "SELECT 2", "SELECT 3", "SELECT 0"]


def test_text_that_is_not_a_string_is_judged_each_time():
    check = Counting()
    verdicts = Verdicts(check)
    for _ in range(2):
        with pytest.raises(QueryError):
            verdicts.checked(None, None)  # type: ignore[arg-type]
    assert len(check.calls) == 2
