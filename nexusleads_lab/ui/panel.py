"""The chat panel: the original ChatSidecar as an anywidget beside the notebooks.

A thin adapter: ``ChatController`` (``ui/chat.py``) holds the state and the actions and follows
the assistant's event stream; this widget mirrors its state in synced traits (see there for
what each holds) and hands the browser's ``model.send`` messages to it. The front end is the
ES modules in ``js/panel/``, joined into one module for anywidget (``ui/esm.py``). The
conversation lives in the kernel-side controller, so a page reload shows it again. Each notebook
has its own panel over its own kernel's conversation (a new notebook: a new conversation), in a
side tab named after the notebook; after a kernel restart the notebook's remembered conversation
comes back (``session.py``).
"""

from __future__ import annotations

import logging
import weakref
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from ..config import notebook_path
from .assets import asset_text
from .chat import ChatController, PanelSession, items_from_transcript, model_label
from .esm import bundle

if TYPE_CHECKING:
    from .chat import PanelAssistant

log = logging.getLogger(__name__)


class ChatPanel(anywidget.AnyWidget):
    """The conversation beside the notebooks: ask, watch the steps, get dashboards, confirm writes."""

    _esm = bundle("panel/index.js")
    # theme.css: the tokens; answer.css: the confirm card's preview, as in cells
    _css = asset_text("theme.css") + asset_text("panel.css") + asset_text("answer.css")

    messages = t.List(t.Dict()).tag(sync=True)
    conversations = t.List(t.Dict()).tag(sync=True)
    conversation_id = t.Unicode(None, allow_none=True).tag(sync=True)
    busy = t.Bool(False).tag(sync=True)
    turn = t.Dict().tag(sync=True)
    streaming = t.Unicode("").tag(sync=True)
    notice = t.Unicode("").tag(sync=True)
    model_name = t.Unicode("").tag(sync=True)
    model_mode = t.Unicode("").tag(sync=True)
    scope = t.Unicode("").tag(sync=True)
    sql_cell = t.Unicode("%%nexus sql\n{sql}").tag(sync=True)
    suggestions = t.List(t.Unicode()).tag(sync=True)
    label = t.Unicode("").tag(sync=True)
    words = t.Dict().tag(sync=True)  # words.UI: every label and sentence the front end shows

    def __init__(
        self,
        assistant: PanelAssistant | None = None,
        *,
        session: PanelSession | None = None,
        restore: bool = True,
        **kwargs: Any,
    ) -> None:
        """Over ``assistant``; or over ``session``'s (``nexus``, the kernel's ``NexusSession``), whose
        notebook then gets the DataFrames of the panel's turns too. The caller hands the session
        in: a view never reaches up for the kernel's."""
        if assistant is None:
            if session is None:
                raise TypeError("ChatPanel needs an assistant or a session: ChatPanel(session=nexus), or %nexus panel.")
            assistant = session.assistant
        super().__init__(**kwargs)
        self.assistant = assistant
        self.session = session
        self.controller = ChatController(
            assistant,
            sink=self._patch,
            notify=lambda msg: self.send(msg),
            session=session,
            restore=restore,
            label=notebook_name(session),
        )
        self._patch(dict(self.controller.state))
        self.on_msg(lambda _widget, content, _buffers: self.controller.handle(content))

    def __repr__(self) -> str:
        # What a saved notebook shows where the widget cannot run (GitHub, nbviewer, nbconvert).
        whose = f"{self.label}'s conversation" if self.label else "this kernel's conversation"
        return f"NexusLeads chat panel: {whose}, in JupyterLab's right side area (run %nexus panel to open it)"

    def _patch(self, patch: dict[str, Any]) -> None:
        with self.hold_sync():  # one update for the browser, whatever it holds
            for name, value in patch.items():
                setattr(self, name, value)

    def handle(self, msg: dict[str, Any]) -> None:
        """Act on one message from the browser (tests call this exactly as the front end does)."""
        self.controller.handle(msg)

    def ask(self, text: str) -> None:
        """Ask as if typed into the panel (returns at once; the turn runs on a worker thread)."""
        self.handle({"type": "ask", "text": text})

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the panel's own turn is over; True when idle."""
        return self.controller.wait(timeout)

    def close(self) -> None:
        controller = getattr(self, "controller", None)
        if controller is not None:
            controller.close()  # no longer follows the assistant
        super().close()


# -- opening it -----------------------------------------------------------------------------------

_panels: weakref.WeakKeyDictionary[Any, ChatPanel] = weakref.WeakKeyDictionary()


def existing_panel(assistant: PanelAssistant) -> ChatPanel | None:
    """The assistant's panel, if one was opened (none is made)."""
    return _panels.get(assistant)


def panel_for(session: PanelSession) -> ChatPanel:
    """The one panel of a session's assistant (so ``%nexus panel`` twice shows the same conversation)."""
    assistant = session.assistant
    panel = _panels.get(assistant)
    if panel is None or panel.comm is None:
        if panel is not None:
            panel.controller.close()  # its front end is gone: stop following the assistant
        panel = _panels[assistant] = ChatPanel(assistant, session=session)
    return panel


def notebook_name(session: PanelSession | None) -> str:
    """The file name of the notebook this kernel runs for ("" outside JupyterLab)."""
    memory = getattr(session, "memory", None)
    path = getattr(memory, "notebook", None) or notebook_path()
    return PurePath(path).name if path else ""


def open_panel(session: PanelSession, *, where: str = "side", title: str | None = None) -> ChatPanel:
    """Show ``session``'s chat panel in JupyterLab's right side area (``where="side"``) or in the
    cell; its side tab is named after the notebook ("Nexus · quickstart.ipynb") unless ``title`` is
    given. ``%nexus panel`` opens the kernel's."""
    from IPython.display import display

    if where not in ("side", "inline"):
        raise ValueError(f"where must be 'side' or 'inline', not {where!r}.")
    panel = panel_for(session)
    if where == "inline":
        display(panel)
        return panel
    try:
        from sidecar import Sidecar
    except ImportError:  # pragma: no cover - sidecar is a dependency; stay usable without it
        log.warning("sidecar is not installed; showing the chat panel in the cell instead")
        display(panel)
        return panel
    previous = getattr(panel, "_sidecar", None)
    if previous is not None:
        previous.close()  # one side tab per panel, not one per `%nexus panel`
    name = panel.label
    panel._sidecar = Sidecar(title=title or (f"Nexus · {name}" if name else "Nexus"), anchor="right")
    with panel._sidecar:
        display(panel)
    session.remember(panel_open=True)
    return panel


__all__ = ["ChatPanel", "items_from_transcript", "model_label", "open_panel", "panel_for"]
