"""The colour contract of an answer: the named colours a pill may carry, the colours of well-known
values, and the order spare colours are handed out in.

Part of the response contract: the models accept only these names (or a hex colour), and
resolution gives a pill without a colour the colour of its well-known value (hot is red) or the
next of :data:`PALETTE`. How a view draws each name is the view's business (``ui/palette.py``).
This module imports nothing.
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

__all__ = ["KNOWN_VALUE_COLORS", "NAMED_COLORS", "PALETTE"]
