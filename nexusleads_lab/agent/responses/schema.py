"""The response format as the agent is told it: a JSON schema derived from the models, and the prompt text."""

from __future__ import annotations

import functools
import json
from typing import Any

from .models import RESPONSE_ADAPTER

# --------------------------------------------------------------------------
# schema and prompt


def _compact_schema(node: Any) -> Any:
    """Shrink a pydantic JSON schema for a prompt without changing what it accepts.

    Drops auto-generated ``title`` keywords (not properties named "title"), ``default: null``
    and ``additionalProperties: true``; folds ``anyOf [X, null]`` into ``type: [X, "null"]``
    and ``anyOf [integer, number]`` into ``number``; marks the ``type`` tag as required.
    """
    if isinstance(node, list):
        return [_compact_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "title" and isinstance(v, str):
            continue
        if k == "default" and v is None:
            continue
        if k == "additionalProperties" and v is True:
            continue
        if k in ("properties", "$defs") and isinstance(v, dict):
            out[k] = {name: _compact_schema(sub) for name, sub in v.items()}
        else:
            out[k] = _compact_schema(v)
    any_of = out.get("anyOf")
    if isinstance(any_of, list) and all(
        isinstance(x, dict) and set(x) == {"type"} and isinstance(x["type"], str) for x in any_of
    ):
        types = [x["type"] for x in any_of]
        if "integer" in types and "number" in types:
            types.remove("integer")
        out.pop("anyOf")
        out["type"] = types[0] if len(types) == 1 else types
    props = out.get("properties")
    if isinstance(props, dict) and isinstance(props.get("type"), dict) and "const" in props["type"]:
        props["type"] = {"const": props["type"]["const"]}
        req = out.get("required", [])
        if "type" not in req:
            out["required"] = ["type", *req]
    return out


def response_json_schema() -> dict:
    """JSON schema of :data:`Response`, derived from the models, without auto titles."""
    return _compact_schema(RESPONSE_ADAPTER.json_schema())


#: The examples shown to the agent (tests check that they validate).
RESPONSE_EXAMPLES: list[dict] = [
    {"type": "message", "text": "There are **3** active projects. The newest is *Acme SDK* (created 2 days ago)."},
    {
        "type": "dashboard",
        "title": "Lead overview",
        "sections": [
            {
                "type": "widgets",
                "items": [
                    {"title": "Leads", "source": "r1", "column": "leads", "subtext": "all projects"},
                    {"title": "Hot leads", "source": "r1", "column": "hot"},
                ],
            },
            {"type": "pills", "label": "By tier", "source": "r2", "label_column": "tier", "count_column": "n"},
            {"type": "bars", "label": "Leads per project", "source": "r3", "x": "project", "y": "leads"},
            {"type": "line", "label": "New leads per week", "source": "r4", "x": "week", "y": ["hot", "warm"]},
            {"type": "table", "title": "Top leads", "source": "r5", "columns": ["login", "score", "tier"], "limit": 10},
        ],
    },
    {
        "type": "confirm",
        "id": "archive-acme",
        "title": "Archive project Acme SDK",
        "summary": "Sets the status of project Acme SDK (id 42) to archived. Its leads are kept.",
        "sql": "UPDATE projects SET status = 'archived' WHERE id = 42",
    },
]


@functools.cache
def response_format_prompt(include_schema: bool = False) -> str:
    """Instructions for the agent's system prompt: the final-answer format, with 3 examples (made
    once: every request of every turn sends it)."""
    ex = [json.dumps(e, ensure_ascii=False) for e in RESPONSE_EXAMPLES]
    text = f"""\
## Final answer format
End every turn with exactly ONE JSON object (no prose around it, no code fence), one of:
- "message": {{"type":"message","text":"<markdown>"}} for explanations, greetings and short answers.
- "dashboard": {{"type":"dashboard","title":"...","sections":[...]}} for stats, breakdowns, comparisons and lists.
  Section types: "widgets" (KPI cards), "bars" (bar chart), "line" (trend over time, x = date or number),
  "table", "pills" (status badges with counts; colors green|red|amber|blue|gray|purple|orange|teal).
  Prefer referencing query results instead of copying numbers: "source": "<result id>" (r1, r2, ... as
  returned by your queries) plus column names ("x"/"y" for bars and line, "label_column"/"count_column"
  for pills, "column" (+ "row", default 0) for a widget item, "columns" and "limit" for tables).
  Literal data is also fine: widgets {{"title","value","subtext"}}, bars {{"name","value"}},
  line points {{"x","y","series"}}, table {{"columns":[...],"rows":[{{col: value}}]}}, pills {{"label","color","count"}}.
- "confirm": {{"type":"confirm","id":"...","title":"...","summary":"...","sql":"..."}} for any
  INSERT/UPDATE/DELETE: propose it, do not run it; it runs only after the person confirms.

Example (message):
{ex[0]}
Example (dashboard from results r1..r5):
{ex[1]}
Example (confirm):
{ex[2]}
"""
    if include_schema:
        text += "\nJSON schema:\n" + json.dumps(response_json_schema(), separators=(",", ":")) + "\n"
    return text
