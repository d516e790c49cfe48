"""The agent's final answer: the contract between the agent's prompt, the parser and the renderers.

The agent ends every turn with one JSON object, the *response*, which the views render as
generative UI. One job per module:

* :mod:`.models`: the pydantic models, what the agent writes (``Response = Message | Dashboard
  | Confirm``) and what renderers get (``ResolvedResponse``);
* :mod:`.schema`: the JSON schema and the prompt text, derived from the models;
* :mod:`.resolve`: ``source`` result ids resolved against the turn's DataFrames;
* :mod:`.parse`: lenient parsing of whatever text the model wrote (never raises);
* :mod:`.formatting`: cell values as JSON-safe values, KPI values and labels;
* :mod:`.colors`: the named colours a pill may carry, well-known values' colours, the palette
  (how a view draws each name is the view's: ``ui/palette.py``).

What a person sees while the answer streams in is worked out chunk by chunk in :mod:`..streaming`
(:func:`partial_display_text` is re-exported here).
"""

from __future__ import annotations

from ..streaming import partial_display_text
from .colors import KNOWN_VALUE_COLORS, NAMED_COLORS, PALETTE
from .formatting import format_value
from .models import (
    RESOLVED_ADAPTER,
    RESPONSE_ADAPTER,
    BarItem,
    BarsFromSource,
    BarsSection,
    Confirm,
    Dashboard,
    LineFromSource,
    LinePoint,
    LineSection,
    Message,
    ParsedResponse,
    PillItem,
    PillsFromSource,
    PillsSection,
    ResolvedBars,
    ResolvedConfirm,
    ResolvedDashboard,
    ResolvedLine,
    ResolvedPillItem,
    ResolvedPills,
    ResolvedResponse,
    ResolvedSection,
    ResolvedTable,
    ResolvedWidgetItem,
    ResolvedWidgets,
    Response,
    Section,
    TableFromSource,
    TableSection,
    WidgetFromSource,
    WidgetItem,
    WidgetsSection,
    response_json,
)
from .parse import Parsed, parse_response, scan_top_level
from .resolve import resolve_response
from .schema import RESPONSE_EXAMPLES, response_format_prompt, response_json_schema

__all__ = [
    "KNOWN_VALUE_COLORS",
    "NAMED_COLORS",
    "PALETTE",
    "RESOLVED_ADAPTER",
    "RESPONSE_ADAPTER",
    "RESPONSE_EXAMPLES",
    "BarItem",
    "BarsFromSource",
    "BarsSection",
    "Confirm",
    "Dashboard",
    "LineFromSource",
    "LinePoint",
    "LineSection",
    "Message",
    "Parsed",
    "ParsedResponse",
    "PillItem",
    "PillsFromSource",
    "PillsSection",
    "ResolvedBars",
    "ResolvedConfirm",
    "ResolvedDashboard",
    "ResolvedLine",
    "ResolvedPillItem",
    "ResolvedPills",
    "ResolvedResponse",
    "ResolvedSection",
    "ResolvedTable",
    "ResolvedWidgetItem",
    "ResolvedWidgets",
    "Response",
    "Section",
    "TableFromSource",
    "TableSection",
    "WidgetFromSource",
    "WidgetItem",
    "WidgetsSection",
    "format_value",
    "parse_response",
    "partial_display_text",
    "resolve_response",
    "response_format_prompt",
    "response_json",
    "response_json_schema",
    "scan_top_level",
]
