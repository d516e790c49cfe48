"""One cell output as data: a mimebundle, and whether it is static (HTML that any viewer shows).

Every answer piece is one output that reads right everywhere: a chart is Vega for JupyterLab
plus a PNG for everything else (``charts``); the confirm card is its widget plus the same card
as HTML, which nbconvert and an untrusted JupyterLab show instead of a widget they cannot draw
(and which replaces the widget once the card is resolved, so a saved notebook keeps the outcome).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@dataclass
class Part:
    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    static: bool = True
    display_id: str | None = None
    widget: Any = None  # the widget this output shows, if any (kept alive by the caller)
    later: Callable[[], dict[str, Any]] | None = None  # computes the real bundle after everything is shown

    @property
    def html(self) -> str:
        return self.data.get("text/html", "")

    @property
    def text(self) -> str:
        return self.data.get("text/plain", "")

    def show(self):
        from IPython.display import display

        kwargs = {"display_id": self.display_id} if self.display_id else {}
        return display(self.data, raw=True, metadata=self.metadata or None, **kwargs)


def show_all(parts: Iterable[Part]) -> None:
    """Show the parts in order; a part with ``later`` holds its place empty until the rest is on
    screen, then gets its content (a chart is not worth delaying the table below it for)."""
    from IPython.display import update_display

    pending: list[tuple[Part, Callable[[], dict[str, Any]]]] = []
    for part in parts:
        if part.later is not None:
            part.display_id = part.display_id or new_display_id()
            part.data = {"text/plain": ""}
            pending.append((part, part.later))
        part.show()
    for part, later in pending:
        part.data = later()
        part.later = None
        update_display(part.data, raw=True, metadata=part.metadata or None, display_id=part.display_id)


def html_part(html: str, text: str) -> Part:
    return Part({"text/html": html, "text/plain": text})


def widget_part(widget, text: str) -> Part:
    return Part(widget_bundle(widget, text), static=False, widget=widget)


def widget_bundle(widget, text: str) -> dict[str, Any]:
    bundle = widget._repr_mimebundle_()
    if isinstance(bundle, tuple):  # anywidget returns (data, metadata)
        bundle = bundle[0]
    return {WIDGET_VIEW: bundle[WIDGET_VIEW], "text/plain": text}


def merge(parts: list[Part]) -> Part:
    """Several static parts as one output (HTML side by side, text joined)."""
    parts = [p for p in parts if p is not None]
    return Part(
        {
            "text/html": "".join(p.html for p in parts),
            "text/plain": "\n".join(p.text for p in parts if p.text),
        }
    )


def new_display_id() -> str:
    return uuid.uuid4().hex
