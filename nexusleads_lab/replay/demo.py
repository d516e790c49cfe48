"""A replayed turn runs on the data it was recorded on.

A recording holds what its tool calls returned on the demo data as seeded; a notebook's
confirmed write (or anything else) changes that data, and the replay would then no longer match
(the matcher never serves a recorded answer over other data). Before a replayed turn of the
embedded demo database, the demo data is restored if it changed, and the person is told.
"""

from __future__ import annotations

from typing import Any


def replay_questions(assistant: Any) -> list[str] | None:
    """The questions the assistant's replay can answer, or None when it is not replaying."""
    settings = getattr(assistant, "settings", None)
    if settings is None or getattr(settings, "mode", None) != "replay":
        return None
    from .questions import recorded_questions

    return recorded_questions(settings.replay)


def restore_for_replay(assistant: Any) -> str | None:
    """Restore the embedded demo data for a replayed turn if it changed; the sentence to show, or None."""
    if replay_questions(assistant) is None:
        return None
    database = assistant.database
    if getattr(database, "embedded", None) is None:
        return None  # DATABASE_URL: not ours to reset; a replay over other data says so itself
    from ..db.demo.reset import restore_if_changed

    return restore_if_changed(database)
