"""How the views draw the named colours of an answer: each as a hex readable on light and dark themes.

The names themselves (which a pill may carry, the colours of well-known values) are the response
contract's: :mod:`nexusleads_lab.agent.responses.colors`.
"""

from __future__ import annotations

#: Named pill colours as hex, readable on light and dark themes (one for every ``NAMED_COLORS`` name).
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

__all__ = ["PILL_HEX"]
