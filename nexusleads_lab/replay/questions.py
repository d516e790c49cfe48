"""What a replayed demo can answer: the questions its cassette recorded, and the one friendly
paragraph for a question it did not record (there is no model behind a replay to ask)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ..db.errors import shorten
from .cassette import CassetteMatcher, load_cassette

#: Where the README explains connecting a model of one's own; another section than this one's.
CONNECT_A_MODEL = (
    "To ask anything else, connect a model: export OPENAI_API_KEY, or run a local OpenAI-compatible server "
    "(Ollama, vLLM, llama.cpp) and export OPENAI_BASE_URL (README › Use a local model); then set REPLAY = None "
    "in the notebook's first cell and restart the kernel."
)


def recorded_questions(path: str | os.PathLike[str]) -> list[str]:
    """The cassette's questions, once each, in the order first asked ([] when it cannot be read)."""
    source = Path(path).expanduser().resolve()
    try:
        stamp = source.stat()
    except OSError:
        return []
    return list(_questions(str(source), stamp.st_mtime_ns, stamp.st_size))


@lru_cache(maxsize=8)
def _questions(path: str, _mtime: int, _size: int) -> tuple[str, ...]:
    try:
        return tuple(CassetteMatcher(load_cassette(path)).questions())
    except (OSError, ValueError):
        return ()


def unrecorded_text(question: str | None, questions: list[str], *, offered: bool = False) -> str:
    """One paragraph: this demo answers its recorded questions (named, unless the view ``offered``
    them already, as the panel's chips), and how to ask others."""
    asked = f"“{shorten(question, 120)}” is not" if question else "That is not"
    if offered:
        return (
            f"{asked} one of the questions this demo has recorded answers for. With no model connected it "
            f"answers only those, offered below the conversation. {CONNECT_A_MODEL}"
        )
    listed = "; ".join(f"“{q}”" for q in questions[:8]) or "none"
    return (
        f"{asked} one of the questions this demo has recorded answers for, and with no model connected it can "
        f"answer only those: {listed}. {CONNECT_A_MODEL}"
    )
