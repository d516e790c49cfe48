"""The colours of answers: named pill colours, the colours of well-known values, and their hex.

The views own these. The response contract names the colours a pill may carry
(:data:`NAMED_COLORS`), and resolution gives a pill without a colour the colour of its
well-known value (hot is red) or the next of :data:`PALETTE`, so the agent imports this
module; it imports nothing.
"""

from __future__ import annotations

#: Canonical named colors a renderer must support (synonyms are mapped onto these).
NAMED_COLORS = ("green", "red", "amber", "blue", "gray", "purple", "orange", "teal")

#: Colors for well-known values of the PLG schema (lead tiers, lead statuses, project statuses).
KNOWN_VALUE_COLORS: dict[str, str] = {
    "hot": "red",
    "warm": "amber",
    "cold": "blue",
    "new": "gray",
    "contacted": "blue",
    "qualified": "purple",
    "disqualified": "red",
    "converted": "green",
    "active": "green",
    "paused": "amber",
    "archived": "gray",
}

#: Colors handed out, in order, to values that are not well known.
PALETTE = ("blue", "green", "amber", "purple", "teal", "orange", "red", "gray")

#: Named pill colours as hex, readable on light and dark themes.
PILL_HEX = {
    "green": "#16a34a",
    "red": "#dc2626",
    "amber": "#d97706",
    "blue": "#2563eb",
    "gray": "#6b7280",
    "purple": "#7c3aed",
    "orange": "#ea580c",
    "teal": "#0d9488",
}

__all__ = ["KNOWN_VALUE_COLORS", "NAMED_COLORS", "PALETTE", "PILL_HEX"]
