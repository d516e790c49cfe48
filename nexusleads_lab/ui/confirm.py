"""The confirm card: the proposed write, its dry run, and Confirm / Cancel.

The browser sends back the SQL it showed; the assistant runs it only if it is exactly the
proposed statement, once. The card then shows the outcome and its buttons stay disabled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import anywidget
import traitlets as t

from ..words import UI
from .assets import asset_text
from .esm import bundle

if TYPE_CHECKING:
    from ..agent.confirm import Outcome
    from ..agent.events import Event

log = logging.getLogger(__name__)


class ConfirmAssistant(Protocol):
    """What a confirm card needs of an ``Assistant``: confirm, decline, and its events."""

    def confirm(self, proposal_id: str, sql: str | None = None) -> Outcome: ...
    def decline(self, proposal_id: str) -> Outcome: ...
    def subscribe(self, callback: Callable[[Event], None], *, weak: bool = False) -> Callable[[], None]: ...


class ConfirmCard(anywidget.AnyWidget):
    _esm = bundle("confirm.js")
    _css = asset_text("theme.css") + asset_text("answer.css")

    proposal = t.Dict().tag(sync=True)  # id, title, summary, sql, dry_run_rows, dry_run_error, expires_at
    status = t.Unicode("pending").tag(sync=True)  # pending | running | confirmed | cancelled | failed | error
    rows_affected = t.Int(None, allow_none=True).tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    said = t.Unicode("").tag(sync=True)  # the outcome in words (words.outcome_text): the JS shows it as is
    blocked = t.Unicode("").tag(sync=True)  # why Confirm is off (html.confirm_blocked), "" when it is on
    preview_html = t.Unicode("").tag(sync=True)  # the write preview as html.preview_html renders it (escaped there)
    words = t.Dict({k: UI[k] for k in ("confirm", "cancel", "confirm_title", "running_change")}).tag(sync=True)

    def __init__(
        self,
        proposal: dict[str, Any],
        assistant: ConfirmAssistant,
        *,
        on_resolved: Callable[[ConfirmCard], None] | None = None,
    ):
        from .html import confirm_blocked, preview_html

        super().__init__(
            proposal=dict(proposal), blocked=confirm_blocked(proposal), preview_html=preview_html(proposal)
        )
        self._assistant = assistant
        self._on_resolved = on_resolved
        self._lock = threading.Lock()
        self.on_msg(lambda _widget, content, _buffers: self.handle(content))
        if hasattr(assistant, "subscribe"):
            self._unsubscribe = assistant.subscribe(self._on_event, weak=True)

    def _on_event(self, event: Event) -> None:
        """A ``confirm.resolved`` from another view (the panel, ``nexus.confirm()``, a poll that
        saw the CLI): show it here."""
        from ..agent.events import ConfirmResolved

        if not isinstance(event, ConfirmResolved):
            return
        with self._lock:
            if event.proposal_id != self.proposal.get("id") or self.status != "pending":
                return  # not ours, or this card is resolving it itself
            self.status = "running"
        self._finish(event.status, rows=event.rows_affected, message=event.error or "")
        if self._on_resolved is not None:
            try:
                self._on_resolved(self)
            except Exception:
                log.exception("confirm card callback failed")

    @property
    def outcome(self) -> dict[str, Any]:
        return {"status": self.status, "rows_affected": self.rows_affected, "message": self.message}

    def handle(self, content: dict) -> None:
        """Act on one message from the browser (tests call this exactly as the front end does)."""
        action = content.get("action") if isinstance(content, dict) else None
        if action == "confirm":
            if self.blocked:  # the button was disabled: a click that arrives anyway changes nothing
                return
            self.confirm(content.get("sql"))
        elif action == "cancel":
            self.cancel()

    def confirm(self, sql: str | None = None) -> None:
        """Run the write shown on the card (``sql`` is what the browser displayed)."""
        self._resolve(lambda pid: self._assistant.confirm(pid, sql if sql is not None else self.proposal.get("sql")))

    def cancel(self) -> None:
        self._resolve(self._assistant.decline)

    def _resolve(self, action: Callable[[str], Outcome]) -> None:
        from ..agent.confirm import ConfirmationError

        with self._lock:
            if self.status != "pending":
                return  # a second click, or a click after the outcome: nothing runs twice
            self.status = "running"
        try:
            outcome = action(self.proposal["id"])
        except ConfirmationError as exc:
            self._finish("error", message=str(exc))
        except Exception as exc:  # the card must end in a final state whatever happens
            log.exception("confirmation failed")
            self._finish("error", message=f"The change could not run: {exc}")
        else:
            self._finish(outcome.status, rows=outcome.rows_affected, message=outcome.error or "")
        if self._on_resolved is not None:
            try:
                self._on_resolved(self)
            except Exception:
                log.exception("confirm card callback failed")

    def _finish(self, status: str, *, rows: int | None = None, message: str = "") -> None:
        from ..words import outcome_text

        with self.hold_sync():
            self.rows_affected = rows
            self.message = message
            self.said = outcome_text({"status": status, "rows_affected": rows, "message": message, "error": message})
            self.status = status
