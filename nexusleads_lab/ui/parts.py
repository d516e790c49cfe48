"""One cell output as data: a mimebundle, and whether it is static (HTML that any viewer shows).

Interactive pieces (a chart, the confirm card) are two outputs: the widget, then its static
twin, which JupyterLab hides while the widget is alive (see ``js/answer.css``). A single
bundle holding both would not do: ``nbconvert`` (and so nbviewer) picks the widget view over
``text/html`` and shows nothing without the live kernel.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

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

    pending = []
    for part in parts:
        if part.later is not None:
            part.display_id = part.display_id or new_display_id()
            part.data = {"text/plain": ""}
            pending.append(part)
        part.show()
    for part in pending:
        part.data = part.later()
        part.later = None
        update_display(part.data, raw=True, display_id=part.display_id)


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
