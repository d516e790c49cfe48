"""What tests script a model with: its final answers as the JSON text a model writes, and the queries
the tests share (so one question is one SQL text, with one ``ORDER BY``, everywhere)."""

from __future__ import annotations

import json
from typing import Any

TIER_SQL = "SELECT tier, count(*) AS n FROM lead_scores GROUP BY tier ORDER BY tier"
STATUS_SQL = "SELECT status, count(*) AS n FROM lead_scores GROUP BY status ORDER BY n DESC, status"


def message(text: str) -> str:
    """A plain answer."""
    return json.dumps({"type": "message", "text": text})


def dashboard(*sections: dict[str, Any], title: str = "Leads") -> str:
    """A dashboard of these sections."""
    return json.dumps({"type": "dashboard", "title": title, "sections": list(sections)})


def confirm(sql: str, title: str = "Change") -> str:
    """A proposed write; the id is the model's own, which the product replaces with an unguessable one."""
    return json.dumps({"type": "confirm", "id": "model-chosen", "title": title, "summary": "s", "sql": sql})
