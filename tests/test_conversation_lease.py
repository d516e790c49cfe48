"""One turn at a time per stored conversation, whichever assistant asks (two kernels, a kernel and
the CLI, two server replicas): the conversation's lease, and the reload that lets a turn continue
after another assistant's instead of beside it."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
from scripted import TIER_SQL, message

from nexusleads_lab.db.lease import LEASES, Leases
from nexusleads_lab.db.store import ConversationStore
from nexusleads_lab.replay.cassette import last_user_message
from nexusleads_lab.testing.modelserver import ModelServer, Script, text, tool_calls

ORG = "acme-analytics"


def slow_echo(request):
    """An answer naming its question, streamed slowly enough that two turns would overlap."""
    return text(message(f"re: {last_user_message(request)}"), chunk_size=2, delay=0.02)


@pytest.fixture()
def pair(scripted_assistant):
    """Two assistants of one user, each with its own store connection (as two processes have),
    sharing one scripted model."""
    model = ModelServer(Script([slow_echo] * 8))
    user = f"lease-{uuid.uuid4().hex[:8]}"
    return model, [scripted_assistant(model=model, user=user, org=ORG) for _ in range(2)]


def _user_turns(request) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user"]


def test_two_assistants_asking_in_one_conversation_at_once_take_turns_and_each_sees_the_other(pair):
    model, (a, b) = pair
    a.ask("start")
    conversation = a.thread.id
    b.resume(conversation)
    go = threading.Barrier(2)
    results = {}

    def ask(name, assistant):
        go.wait()
        results[name] = assistant.ask(name)

    threads = [threading.Thread(target=ask, args=(n, x)) for n, x in (("from a", a), ("from b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert {n: r.error for n, r in results.items()} == {"from a": None, "from b": None}
    assert {n: r.response.text for n, r in results.items()} == {"from a": "re: from a", "from b": "re: from b"}
    stored = [m["message"]["content"] for m in a.history() if m["role"] == "user"]
    assert stored[0] == "start" and sorted(stored[1:]) == ["from a", "from b"], stored
    first, second = stored[1], stored[2]
    # The later turn's request carried the earlier turn, question and answer: it ran after it, not beside it.
    later = model.requests[-1]["messages"]
    assert _user_turns(model.requests[-1]) == ["start", first, second]
    assert any(m["role"] == "assistant" and f"re: {first}" in (m.get("content") or "") for m in later)
    roles = [m["role"] for m in a.history()]
    assert roles == ["user", "assistant"] * 3, "each turn's messages together, none interleaved"
    assert LEASES.held() == 0


def test_a_turn_after_another_assistants_turn_reloads_the_conversation_and_keeps_its_dataframes(scripted_assistant):
    model = ModelServer(Script([tool_calls([("psql", {"sql": TIER_SQL})]), slow_echo, slow_echo, slow_echo]))
    user = f"lease-{uuid.uuid4().hex[:8]}"
    a, b = (scripted_assistant(model=model, user=user, org=ORG) for _ in range(2))
    a.ask("count the tiers")
    frames = dict(a.frames)
    assert frames, "the psql step left a DataFrame"
    b.resume(a.thread.id)
    b.ask("from the other kernel")
    a.ask("and now?")
    assert _user_turns(model.requests[-1]) == ["count the tiers", "from the other kernel", "and now?"]
    assert list(a.frames) == list(frames) and all(a.frames[k] is frames[k] for k in frames)
    assert [m["content"] for m in a.thread.messages if m["role"] == "user"][-2:] == [
        "from the other kernel",
        "and now?",
    ]


def test_a_turn_waiting_for_a_busy_conversation_stops_when_cancelled_and_writes_nothing(db, scripted_assistant):
    model = ModelServer(Script([slow_echo, slow_echo]))
    user = f"lease-{uuid.uuid4().hex[:8]}"
    a = scripted_assistant(model=model, user=user, org=ORG)
    other = ConversationStore(db.store_url(ORG), ORG, user, guard=True)
    try:
        a.ask("start")
        before = len(a.history())
        assert other.claim(a.thread.id, "a-long-turn-elsewhere", ttl_s=60) is not None
        threading.Timer(0.5, a.cancel).start()
        result = a.ask("this waits")
        assert result.cancelled and result.error and "Stopped" in result.error
        assert len(a.history()) == before, "nothing of the waiting turn was stored"
        assert len(model.requests) == 1, "the model was never asked"
        other.release(a.thread.id, "a-long-turn-elsewhere")
        assert a.ask("after it").response.text == "re: after it"
    finally:
        other.close()


def test_a_lease_left_by_a_process_that_died_on_this_machine_is_taken_over_at_once(pair):
    import socket
    import subprocess
    import sys

    _, (a, _) = pair
    a.ask("start")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{socket.gethostname()}:{int(gone.stdout)}:0123456789ab"  # a kernel killed mid-turn
    other = ConversationStore(a.database.store_url(ORG), ORG, a.user, guard=True)
    asker = threading.Thread()
    try:
        assert other.claim(a.thread.id, dead, ttl_s=3600) is not None
        done = {}
        asker = threading.Thread(target=lambda: done.setdefault("result", a.ask("after the restart")), daemon=True)
        asker.start()
        asker.join(timeout=30)  # an hour-long lease, yet the turn does not wait for it
        assert "result" in done and done["result"].response.text == "re: after the restart"
        assert other.holder(a.thread.id) is None, "taken over, then given back"
    finally:
        if asker.is_alive():
            a.cancel()  # still waiting: stop it so the test ends
            asker.join(timeout=10)
        other.close()


def test_a_turn_gives_its_lease_back_with_its_answer_but_not_a_lease_an_outer_block_holds(db, scripted_assistant):
    model = ModelServer(Script([slow_echo] * 3))
    user = f"lease-{uuid.uuid4().hex[:8]}"
    a = scripted_assistant(model=model, user=user, org=ORG)
    other = ConversationStore(db.store_url(ORG), ORG, user, guard=True)
    try:
        a.ask("start")
        conversation = a.thread.id
        assert other.holder(conversation) is None and LEASES.held() == 0, "given back as the turn ended"
        with a.conversation_turn():  # as a confirmation's click holds it while its report's turn runs
            assert a.ask("inside").response.text == "re: inside"
            assert other.claim(conversation, "elsewhere", ttl_s=60) is None, "the block still holds it"
        assert LEASES.held() == 0
        assert other.claim(conversation, "elsewhere", ttl_s=60) is not None, "given back when the block ended"
        other.release(conversation, "elsewhere")
        assert a.ask("after").response.text == "re: after"
        assert [m["message"]["content"] for m in a.history() if m["role"] == "user"] == ["start", "inside", "after"]
    finally:
        other.close()


def test_a_lease_given_back_with_the_answer_is_not_renewed_nor_reported_lost_but_a_taken_one_is(db, caplog):
    def renewers() -> int:
        return [t.name for t in threading.enumerate()].count("nexus-lease")

    before = renewers()
    leases = Leases(renew=0.005)  # renewing all the time, so any renewal after the answer would be seen
    user = f"lease-{uuid.uuid4().hex[:8]}"
    store = ConversationStore(db.store_url(ORG), ORG, user, guard=True)
    answered, taken = store.create("answered"), store.create("taken")
    try:
        with caplog.at_level(logging.WARNING, logger="nexusleads_lab.db.lease"):
            # as a turn's last write does (Conversations._keep)
            with leases.hold(store, answered, cancelled=lambda: False), leases.giving_back(answered) as holder:
                assert holder
                store.append_all(
                    answered, [("assistant", {"message": {"role": "assistant", "content": "done"}})], release=holder
                )
                time.sleep(0.2)  # many renewal rounds between the write and the block's bookkeeping
            assert store.holder(answered) is None
            assert "was lost" not in caplog.text
            with leases.hold(store, taken, cancelled=lambda: False) as held:  # the control: a lease taken away
                store.release(taken, held.holder)
                deadline = time.monotonic() + 30
                while "was lost" not in caplog.text and time.monotonic() < deadline:
                    time.sleep(0.01)
            assert f"the turn lease of {taken} was lost" in caplog.text
        deadline = time.monotonic() + 30
        while renewers() > before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert renewers() <= before, "the renewing thread ends once nothing is held"
    finally:
        store.close()


def test_a_conversation_started_for_its_first_turn_is_leased_by_its_insert_and_the_turn_claims_nothing(db):
    from nexusleads_lab.agent.conversations import Conversations

    user = f"lease-{uuid.uuid4().hex[:8]}"
    store = ConversationStore(db.store_url(ORG), ORG, user, guard=True)
    other = ConversationStore(db.store_url(ORG), ORG, user, guard=True)
    sent: list[str] = []
    query = store.query
    store.query = lambda sql, *a, **kw: sent.append(sql.split()[0]) or query(sql, *a, **kw)  # type: ignore[method-assign]
    try:
        conversations = Conversations(lambda: store, lambda: 100_000)
        conversation = conversations.start("first question", "model", lease=True).id
        assert other.claim(conversation, "elsewhere", ttl_s=60) is None, "leased as it was made"
        with conversations.lease(lambda: False):
            conversations.record_question("first question")
            conversations.record_answer("an answer", {})
        assert sent == ["INSERT", "WITH", "WITH"], "no claim, no separate give-back"
        assert other.holder(conversation) is None and LEASES.held() == 0
        assert [m.role for m in store.messages(conversation)] == ["user", "assistant"]
    finally:
        store.close()
        other.close()


def test_a_lease_taken_with_a_conversation_whose_turn_never_came_is_taken_over_at_once_in_its_process(db):
    from nexusleads_lab.agent.conversations import Conversations

    user = f"lease-{uuid.uuid4().hex[:8]}"
    store = ConversationStore(db.store_url(ORG), ORG, user, guard=True)
    try:
        started = Conversations(lambda: store, lambda: 100_000)
        conversation = started.start("a socket that closed", "model", lease=True).id
        later = Conversations(lambda: store, lambda: 100_000)
        later.resume(conversation)
        t0 = time.monotonic()
        with later.lease(lambda: False):
            later.record_question("from another connection")
            later.record_answer("answered", {})
        assert time.monotonic() - t0 < LEASES.ttl / 2, "did not wait for the lease to run out"
        assert store.holder(conversation) is None
        with started.lease(lambda: False):  # the first turn, late: its lease was taken, so it claims again
            started.record_question("late")
            started.record_answer("late answer", {})
        assert store.holder(conversation) is None and LEASES.held() == 0
    finally:
        store.close()


def test_what_another_reader_sees_while_a_turn_waits_for_the_model(db, scripted_assistant):
    """Each write lands as it completes: while the model works, another process reading the
    conversation (a view reconnecting, another replica) sees the question, then every finished
    step, and the lease held; the answer gives the lease back in its own write."""
    watch: dict = {"seen": []}  # the other reader's store and the conversation, once there is one

    def after_looking(step):
        def respond(request):
            other, conversation = watch["store"], watch["id"]
            watch["seen"].append(([m.role for m in other.messages(conversation)], other.holder(conversation)))
            return step

        return respond

    steps = [after_looking(tool_calls([("psql", {"sql": TIER_SQL})])), after_looking(text(message("done")))]
    assistant = scripted_assistant(steps, org=ORG)
    watch["id"] = assistant.start_conversation("watched", lease=True).id  # as a server's first question
    watch["store"] = other = ConversationStore(db.store_url(ORG), ORG, assistant.user, guard=True)
    try:
        assert assistant.ask("how many leads per tier?").error is None
        (before_call, held_1), (before_answer, held_2) = watch["seen"]
        assert before_call == ["user"], "the question is stored before the model is asked"
        assert before_answer == ["user", "assistant", "tool"], "the step is stored before the model answers"
        assert held_1 and held_1 == held_2, "the turn's lease is held throughout"
        assert [m.role for m in other.messages(watch["id"])] == ["user", "assistant", "tool", "assistant"]
        assert other.holder(watch["id"]) is None, "given back with the answer"
    finally:
        other.close()
