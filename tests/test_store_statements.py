"""The conversation store's statements run as prepared statements of each connection
(``store._prepared``): the same rows, errors and retries as psycopg's own ``execute``."""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg
import pytest

from nexusleads_lab import fastjson
from nexusleads_lab.db.store import ConversationStore, NotFound, statements_of

ORG = "acme-analytics"


@pytest.fixture()
def store(db):
    s = ConversationStore(db.store_url(ORG), ORG, f"stmt-{uuid.uuid4().hex[:8]}", guard=True)
    try:
        yield s
    finally:
        s.close()


def test_appends_number_in_order_and_read_back_as_written(store):
    cid = store.create("statements")
    assert store.append_all(cid, [("user", {"message": {"role": "user", "content": "a\x00b"}})]) == [1]
    assert store.append_all(cid, [("assistant", {"n": 1}), ("tool", {"n": 2})]) == [2, 3]
    got = store.messages(cid)
    assert [(m.seq, m.role) for m in got] == [(1, "user"), (2, "assistant"), (3, "tool")]
    assert got[0].content["message"]["content"] == "a\ufffdb"
    assert store.get(cid).updated_at == store.seen[cid]


def test_a_statement_the_server_forgot_is_prepared_again(store):
    cid = store.create("forgotten")
    store.append(cid, "user", {"n": 1})
    conn = store._connection()
    before = set(statements_of(conn).names.values())
    conn.execute("DEALLOCATE ALL")  # as a pooler or a reset would
    assert store.append(cid, "user", {"n": 2}) == 2
    assert set(statements_of(conn).names.values()) - before, "prepared again under a new name"
    assert store.holder(cid) is None


def test_errors_are_psycopgs_own(store):
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        store.query("SELECT %s::int", ("not a number",), fetch="one", durable=False)
    assert store.query("SELECT %s::int + 1", (41,), fetch="one", durable=False) == (42,)
    with pytest.raises(NotFound):
        store.append(str(uuid.uuid4()), "user", {"n": 1})


def test_a_connection_keeps_a_bounded_number_of_statements_prepared(store, monkeypatch):
    from nexusleads_lab.db import store as module

    monkeypatch.setattr(module, "_MAX_PREPARED", 3)
    for n in range(6):
        assert store.query(f"SELECT %s::int + {n}", (1,), fetch="one", durable=False) == (1 + n,)
    conn = store._connection()
    assert len(statements_of(conn).names) == 3
    names = conn.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'nexus_%'").fetchall()
    assert sorted(n for (n,) in names) == sorted(v.decode() for v in statements_of(conn).names.values())


def _json_dumps_as_before(content):
    """The stored text as ``store._dumps`` wrote it before fastjson: json's, cleaned after."""
    import json
    import re

    from nexusleads_lab.safetext import without_surrogates

    text = without_surrogates(json.dumps(content, default=str, ensure_ascii=False))
    return re.sub(r"(?<!\\)((?:\\\\)*)\\u0000", lambda m: m.group(1) + "\\ufffd", text)


class _Row(tuple):  # a named-tuple-like subclass: json wrote it as a list
    pass


class _Score(float):  # numpy's float64 is a float subclass: json wrote it as a number
    pass


# What a message's content may hold, adversarially: what json and orjson write differently as
# text (spacing, float and integer forms, escapes) must be the same jsonb.
_CONTENTS = [
    {"message": {"role": "user", "content": "plain"}},
    {"message": {"role": "tool", "content": '{"result_id": "r1", "rows": [[1, "a"]]}'}, "meta": {"ok": True}},
    {"s": "NUL \x00 mid, escaped \\u0000 text, \\\\\x00, control \x01\x1f\x7f, line\u2028sep, tab\t"},
    {"s": "lone \ud800 and \udfff surrogates, a pair \U0001f600, BOM \ufeff, \uffff"},
    {"f": [0.1, 1e16, 1e-7, -0.0, 1.7976931348623157e308, 5e-324, 12.345, 2.5, 3.0]},
    {"i": [0, -1, 2**53 + 1, 2**63 - 1, -(2**63), 2**64, 10**30, -(10**40)], "b": [True, False, None]},
    {3: "int key", 2.5: "float key", True: "bool key", None: "none key", "k": "str"},
    {"when": datetime(2026, 12, 7, 23, 0, 1, 123456), "id": uuid.UUID(int=7), "set": {3}, "bytes": b"x"},
    {"sub": [_Row((1, "a")), _Score(0.25)], "tuple": (1, (2, 3)), "empty": [{}, [], ""]},
    {"deep": [[[[[[[[[[{"x": "y" * 3000}]]]]]]]]]]},
]


@pytest.mark.parametrize("content", _CONTENTS, ids=range(len(_CONTENTS)))
def test_message_content_is_stored_as_the_json_module_stored_it(store, content):
    from nexusleads_lab.db.store import _dumps

    ours, before = _dumps(content), _json_dumps_as_before(content)
    assert isinstance(ours, bytes)
    same = store.query(
        "SELECT %s::jsonb = %s::jsonb, %s::jsonb::text, %s::jsonb::text",
        (ours.decode(), before, ours.decode(), before),
        fetch="one",
        durable=False,
    )
    assert same[0] and same[1] == same[2]
    cid = store.create("side by side")  # and through the store: read back as json would read it
    store.append(cid, "user", content)
    assert store.messages(cid)[0].content == store.query("SELECT %s::jsonb", (before,), fetch="one", durable=False)[0]


def test_a_nan_is_stored_as_null_where_json_wrote_what_jsonb_refuses(store):
    cid = store.create("nan")
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):  # the write failed before
        store.query("SELECT %s::jsonb", (_json_dumps_as_before({"y": float("nan")}),), fetch="one", durable=False)
    store.append(cid, "tool", {"y": [float("nan"), float("inf"), -float("inf"), 1.5]})
    assert store.messages(cid)[0].content == {"y": [None, None, None, 1.5]}
    long = "x" * (fastjson.LONG_TEXT + 1)  # a long message is written by json: NaN is null there too
    store.append(cid, "tool", {"text": long, "y": float("nan")})
    assert store.messages(cid)[1].content == {"text": long, "y": None}


def test_statements_of_one_connection_share_its_adapters_and_keep_no_result(store):
    cid = store.create("shapes")
    store.append(cid, "user", {"n": 1})
    for _ in range(2):  # each statement's rows loaded by its own columns' types, whatever ran before
        assert store.query("SELECT %s::int, %s::text", (7, "x"), fetch="one", durable=False) == (7, "x")
        assert isinstance(store.get(cid).updated_at, datetime)
        assert store.messages(cid)[0].content == {"n": 1}
        assert store.query("SELECT %s::bigint[]", ([1, 2**40],), fetch="one", durable=False) == ([1, 2**40],)
    assert statements_of(store._connection()).tx.pgresult is None, "an idle connection holds no result"


def test_a_connection_let_go_is_freed_with_its_statements(db):
    """A store connection's prepared statements and its Transformer live as long as the connection
    object, no longer: a server's pool replaces connections (idle, aged, broken) for as long as it
    runs, and each one kept would be memory (and a socket, if never closed) held for good."""
    import gc
    import weakref

    held = []
    for _ in range(3):
        s = ConversationStore(db.store_url(ORG), ORG, f"free-{uuid.uuid4().hex[:8]}", guard=True)
        s.query("SELECT %s::int", (1,), fetch="one", durable=False)
        held.append(weakref.ref(s._connection()))
        s.close()
        del s
    gc.collect()
    assert [ref() for ref in held] == [None, None, None], "a closed store's connection was kept alive"
