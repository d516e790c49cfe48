"""A replayed proposal never writes rows the recording did not show: its preview is recorded in the
cassette beside the exchange, and on replay a preview that differs marks it stale and Confirm refuses."""

from __future__ import annotations

import json
import uuid

import pytest

from nexusleads_lab.agent.assistant import Assistant
from nexusleads_lab.agent.confirm import ConfirmationError
from nexusleads_lab.testing.modelserver import ModelServer, Script, text

from checks import fingerprint, sequences

ORG = "acme-analytics"
QUESTION = "Mark the top three hot Kafka leads as contacted"


def _new_leads(db, n: int = 3) -> list[int]:
    return (
        db.engine_for(ORG)
        .read(f"SELECT id FROM lead_scores WHERE status = 'new' ORDER BY id LIMIT {n}")
        .df["id"]
        .tolist()
    )


def _proposal_text(ids: list[int]) -> str:
    sql = f"UPDATE lead_scores SET status = 'contacted' WHERE id IN ({', '.join(map(str, ids))}) AND status = 'new'"
    return json.dumps(
        {"type": "confirm", "id": "x", "title": "Mark 3 leads as contacted", "summary": "three", "sql": sql}
    )


def _statuses(db, ids) -> list[str]:
    with db.connect_admin(autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT status FROM lead_scores WHERE id = ANY(%s) ORDER BY id", (ids,))]


@pytest.fixture()
def model_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NEXUS_REPLAY", "NEXUS_RECORD", "NEXUS_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _ask(db, question: str = QUESTION):
    assistant = Assistant(database=db, org=ORG, user=f"replay-{uuid.uuid4().hex[:6]}")
    try:
        return assistant, assistant.ask(question)
    except BaseException:
        assistant.close()
        raise


@pytest.fixture()
def recorded(db, model_env, tmp_path):
    """A cassette recorded live (through the recording client) proposing to contact three new leads."""
    ids = _new_leads(db)
    cassette = tmp_path / "mark.cassette.jsonl"
    with ModelServer(Script([text(_proposal_text(ids))])) as server:
        model_env.setenv("OPENAI_BASE_URL", server.base_url)
        model_env.setenv("OPENAI_API_KEY", "sk-record-0123456789")
        model_env.setenv("NEXUS_RECORD", str(cassette))
        assistant, result = _ask(db)
        assistant.close()
    assert result.proposal is not None and result.proposal.stale is None, "recording is never stale"
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "NEXUS_RECORD"):
        model_env.delenv(name)
    model_env.setenv("NEXUS_REPLAY", str(cassette))
    yield cassette, ids
    with db.connect_admin(autocommit=True) as conn:
        conn.execute("UPDATE lead_scores SET status = 'new' WHERE id = ANY(%s)", (ids,))


def test_the_cassette_keeps_the_proposals_preview_beside_its_exchange(recorded):
    cassette, ids = recorded
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert "response" in lines[0] and set(lines[1]) == {"proposal"}
    [step] = lines[1]["proposal"]["preview"]
    assert step["rows"] == 3 and step["keys"] == [{"id": i} for i in ids]
    assert step["before"] == [{"status": "new"}] * 3


def test_a_replay_on_the_recorded_data_can_be_confirmed(db, recorded):
    _, ids = recorded
    assistant, result = _ask(db)
    try:
        card = result.response_dict()
        assert card["stale"] is None and card["dry_run_rows"] == 3
        assert {"id", "title", "summary", "sql", "dry_run_rows", "dry_run_error", "preview"} <= set(card)
        outcome = assistant.confirm(result.proposal.id)
    finally:
        assistant.close()
    assert outcome.status == "confirmed" and outcome.rows_affected == 3
    assert _statuses(db, ids) == ["contacted"] * 3


def test_a_replay_on_other_data_is_stale_and_confirm_writes_nothing(db, recorded):
    _, ids = recorded
    with db.connect_admin(autocommit=True) as conn:  # a first Run All already contacted them
        conn.execute("UPDATE lead_scores SET status = 'contacted' WHERE id = ANY(%s)", (ids,))
    assistant, result = _ask(db)
    try:
        card = result.response_dict()
        shown = ", ".join(map(str, ids))
        assert card["stale"] == (
            f"This replayed proposal was recorded against other data: showed leads {shown}; here it would "
            "change 0 rows. Reset the demo data with `nexus-lab db reset` or re-record the cassette."
        )
        assert result.proposal.stale == card["stale"]
        before, seqs = fingerprint(db), sequences(db)
        with pytest.raises(ConfirmationError) as refused:
            assistant.confirm(result.proposal.id)
        assert str(refused.value) == card["stale"]
        assert fingerprint(db) == before and sequences(db) == seqs
    finally:
        assistant.close()


def test_a_stale_proposal_is_refused_from_another_process_too(db, recorded, model_env):
    _, ids = recorded
    with db.connect_admin(autocommit=True) as conn:
        conn.execute("UPDATE lead_scores SET status = 'contacted' WHERE id = %s", (ids[0],))
    assistant, result = _ask(db)
    user = assistant.user
    assistant.close()
    assert f"here it would change leads {ids[1]}, {ids[2]}." in result.proposal.stale
    model_env.delenv("NEXUS_REPLAY")  # a terminal without the cassette: the refusal is in the database
    other = Assistant(database=db, org=ORG, user=user)
    try:
        before = fingerprint(db)
        with pytest.raises(ConfirmationError, match="recorded against other data"):
            other.confirm(result.proposal.id)
        assert fingerprint(db) == before
    finally:
        other.close()


def test_a_cassette_without_recorded_previews_replays_every_proposal_as_stale(db, recorded, model_env, tmp_path):
    cassette, ids = recorded
    old = tmp_path / "old.cassette.jsonl"
    old.write_text("".join(line + "\n" for line in cassette.read_text().splitlines() if '"proposal"' not in line[:14]))
    model_env.setenv("NEXUS_REPLAY", str(old))
    assistant, result = _ask(db)
    try:
        assert result.proposal.stale.startswith("This replayed proposal has no recorded preview in old.cassette.jsonl")
        before = fingerprint(db)
        with pytest.raises(ConfirmationError, match="no recorded preview"):
            assistant.confirm(result.proposal.id)
        assert fingerprint(db) == before and _statuses(db, ids) == ["new"] * 3
    finally:
        assistant.close()


def test_an_insert_stamped_with_now_replays_as_recorded_and_logs_the_same_leads(db, model_env, tmp_path):
    ids = _new_leads(db)
    sql = (
        "INSERT INTO outreach_events (lead_id, channel, outcome, occurred_at) SELECT id, 'email', 'sent', now() "
        f"FROM lead_scores WHERE id IN ({', '.join(map(str, ids))})"
    )
    answer = json.dumps({"type": "confirm", "id": "x", "title": "Log 3 emails", "summary": "three", "sql": sql})
    cassette = tmp_path / "log.cassette.jsonl"
    with ModelServer(Script([text(answer)])) as server:
        model_env.setenv("OPENAI_BASE_URL", server.base_url)
        model_env.setenv("OPENAI_API_KEY", "sk-record-0123456789")
        model_env.setenv("NEXUS_RECORD", str(cassette))
        assistant, _ = _ask(db, "log an email to each")
        assistant.close()
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "NEXUS_RECORD"):
        model_env.delenv(name)
    model_env.setenv("NEXUS_REPLAY", str(cassette))
    assistant, result = _ask(db, "log an email to each")
    try:
        assert result.proposal.stale is None, result.proposal.stale
        outcome = assistant.confirm(result.proposal.id)
        assert outcome.status == "confirmed" and outcome.rows_affected == 3
    finally:
        assistant.close()
        with db.connect_admin(autocommit=True) as conn:
            conn.execute(
                "DELETE FROM outreach_events WHERE lead_id = ANY(%s) AND occurred_at > now() - interval '1 hour'",
                (ids,),
            )
