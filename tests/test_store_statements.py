"""The conversation store's statements run as prepared statements of each connection
(``store._prepared``): the same rows, errors and retries as psycopg's own ``execute``."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from nexusleads_lab.db.store import _STATEMENTS, ConversationStore, NotFound

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
    before = set(_STATEMENTS[conn].values())
    conn.execute("DEALLOCATE ALL")  # as a pooler or a reset would
    assert store.append(cid, "user", {"n": 2}) == 2
    assert set(_STATEMENTS[conn].values()) - before, "prepared again under a new name"
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
    assert len(_STATEMENTS[conn]) == 3
    names = conn.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'nexus_%'").fetchall()
    assert sorted(n for (n,) in names) == sorted(v.decode() for v in _STATEMENTS[conn].values())
