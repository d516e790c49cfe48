"""The standalone chat page at ``/``: the chat panel's own front end over a WebSocket, no Jupyter.

``GET /`` is a small HTML shell; everything it loads comes from this server (no CDN):
``static/panel.js`` (the panel's ES modules joined by ``ui/esm.py``, exactly what anywidget
loads), ``static/chat-page.js`` (``js/chat-page.js``: a model-like object over the socket),
``static/theme.css``, ``static/panel.css`` and ``static/answer.css``, and the page's own layout rules.

``/ws/panel`` is the panel's transport: the caller is identified as on ``/ws/codex`` (token in
the ``nexus_session`` cookie, ``Authorization: Bearer`` or ``?token=``; the handshake is
refused with 401 otherwise, before it is accepted), an ``Assistant`` is made for them with the app's factory, and a ``ChatController``
over it holds the state. Server → page: ``{"type": "state", "patch": {...}}`` (the controller's
patches, the first one its whole state) and ``{"type": "msg", "content": {...}}`` (its one-off
messages: toasts). Page → server: the panel's own messages (``ask``, ``stop``, ``confirm`` ...),
handed to ``ChatController.handle`` on a worker thread. Like every route, the socket only
accepts a page of this server's own origin, and without a secret only a loopback ``Host`` (so
neither another site nor a DNS-rebound name can drive the local user's assistant): ``guard``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import WebSocket
from fastapi.responses import HTMLResponse, Response

from ..ui.assets import asset_text
from ..ui.chat import ChatController
from ..ui.esm import bundle
from ..words import UI
from .ws import admit, read_frame

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger(__name__)

TURNS = frozenset({"ask", "confirm"})  # the page's messages that start a turn
MAX_FRAME = 1024 * 1024  # characters of one message from the page
CLOSE_WAIT = 15.0  # seconds a disconnected page's turn gets to end after it is cancelled

# Everything from this origin: a script the page did not ship cannot run, and an image or frame
# that slipped into an answer could not load from anywhere else. Inline style attributes stay
# allowed: the panel sets bar widths and series colours with them (they cannot run code).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>NexusLeads Lab</title>
<link rel="icon" href="favicon.ico" type="image/svg+xml">
<link rel="stylesheet" href="static/theme.css">
<link rel="stylesheet" href="static/panel.css">
<link rel="stylesheet" href="static/answer.css">
<link rel="stylesheet" href="static/page.css">
<script type="module" src="static/chat-page.js"></script>
</head>
<body>
<main id="nexus-chat" class="nx-page" data-socket="ws/panel" data-words="{words}"></main>
<noscript>The NexusLeads chat needs JavaScript.</noscript>
</body>
</html>
"""
# Everything the page says comes from words.py, the notices it shows with no socket open too.
PAGE = _PAGE.replace("{words}", html.escape(json.dumps(UI, ensure_ascii=False), quote=True))

PAGE_CSS = """html, body { height: 100%; margin: 0; }
body { background: #eef0f3; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
.nx-page { box-sizing: border-box; height: 100%; max-width: 980px; margin: 0 auto; padding: 16px; display: flex; }
.nx-page > .nx-host { flex: 1; min-height: 0; display: flex; }
.nx-page .nx-panel { flex: 1; height: 100%; min-height: 0; }
@media (max-width: 640px) { .nx-page { padding: 0; } .nx-page .nx-panel { border-radius: 0; border: 0; } }
"""

_STATIC: dict[str, tuple[str, str]] = {
    # name: (media type, how to get the text)
    "panel.js": ("text/javascript", "bundle:panel/index.js"),
    "chat-page.js": ("text/javascript", "asset:chat-page.js"),
    "theme.css": ("text/css", "asset:theme.css"),
    "panel.css": ("text/css", "asset:panel.css"),
    "answer.css": ("text/css", "asset:answer.css"),
    "page.css": ("text/css", "page"),
}


# The panel's spark on its gradient, for the browser tab (served at the address browsers ask for).
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><defs><linearGradient id="g" x1="0" y1="0" '
    'x2="1" y2="1"><stop offset="0" stop-color="#6366f1"/><stop offset="1" stop-color="#ec4899"/>'
    '</linearGradient></defs><rect width="24" height="24" rx="6" fill="url(#g)"/>'
    '<path d="M12 2l2.4 6.6L21 11l-6.6 2.4L12 20l-2.4-6.6L3 11l6.6-2.4z" fill="#fff" transform="translate(2.4 2.6) '
    'scale(.8)"/></svg>'
)


def _static_text(source: str) -> str:
    kind, _, name = source.partition(":")
    if kind == "bundle":
        return bundle(name)
    if kind == "asset":
        return asset_text(name)
    return PAGE_CSS


def mount_page(app: App) -> None:
    """Serve the chat page at ``/``, its files under ``/static/`` and its socket at ``/ws/panel``."""

    @app.get("/", include_in_schema=False)
    def chat_page() -> HTMLResponse:
        return HTMLResponse(PAGE, headers=HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml", headers=HEADERS)

    for name, (media_type, source) in _STATIC.items():
        text = _static_text(source)  # read (and joined) once, at start: a missing file fails here

        def serve(text: str = text, media_type: str = media_type) -> Response:
            return Response(text, media_type=f"{media_type}; charset=utf-8", headers=HEADERS)

        app.add_api_route(f"/static/{name}", serve, methods=["GET"], include_in_schema=False)

    app.add_socket("/ws/panel", panel_socket)


# -- the socket ---------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


async def panel_socket(websocket: WebSocket) -> None:
    identity = await admit(websocket)  # the Host and Origin rules ran before (guard.Guard)
    if identity is None:
        return
    try:
        await websocket.accept()
        await PanelConnection(websocket).run(identity)
    finally:
        websocket.app.state.nexus.quota.close_socket(identity)


class PanelConnection:
    """One open page: its controller's patches go out in order; its messages come in."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.state = websocket.app.state.nexus
        self.loop = asyncio.get_running_loop()
        self.outbox: asyncio.Queue[str] = asyncio.Queue()

    def push(self, frame: dict[str, Any]) -> None:
        """From any thread (the controller patches from its turn's threads and timers)."""
        # Serialised here, in the caller's order: the patch is a snapshot of that moment.
        text = json.dumps(frame, ensure_ascii=False, default=_json_default)
        try:
            self.loop.call_soon_threadsafe(self.outbox.put_nowait, text)
        except RuntimeError:  # the loop is gone: the server stopped
            pass

    def toast(self, level: str, text: str) -> None:
        self.push({"type": "msg", "content": {"type": "toast", "level": level, "text": text}})

    async def run(self, identity: Any) -> None:
        sender = asyncio.create_task(self._send_loop())
        assistant = controller = None
        quota, holding = self.state.quota, False  # while the page's turn runs it counts in the user's share

        def hold(busy: bool) -> None:  # on the event loop, as every quota change
            nonlocal holding
            if busy and not holding:
                quota.start_turn(identity)
            elif holding and not busy:
                quota.end_turn(identity)
            holding = busy

        try:
            assistant = await asyncio.to_thread(self.state.make_assistant, identity)
            ready = False  # what the controller sets up as it starts is in its whole state, sent first

            def sink(patch: dict[str, Any]) -> None:
                if "busy" in patch:
                    with contextlib.suppress(RuntimeError):  # the loop is gone: the server stopped
                        self.loop.call_soon_threadsafe(hold, bool(patch["busy"]))
                if ready:
                    self.push({"type": "state", "patch": patch})

            controller = await asyncio.to_thread(
                ChatController,
                assistant,
                sink=sink,
                notify=lambda content: self.push({"type": "msg", "content": content}),
                executor=self.state.turns,  # the page's turns share the app's bounded turn threads
            )
            chosen = self.websocket.query_params.get("conversation")
            if chosen:  # the page starts a new conversation unless it names one (or reconnects to it)
                await asyncio.to_thread(controller.handle, {"type": "open", "id": chosen})
            ready = True
            self.push({"type": "state", "patch": dict(controller.state)})
            while True:
                frame = await self.websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    break
                msg = self._message(frame)
                busy = quota.busy(identity) if msg is not None and msg["type"] in TURNS and not holding else None
                if busy:  # refused before the controller sees it: nothing asked, nothing queued
                    self.toast("error", busy)
                elif msg is not None:
                    await asyncio.to_thread(controller.handle, msg)  # an ask returns once its turn started
        except Exception:
            log.exception("chat page socket failed")
        finally:
            await self._close(assistant, controller)
            hold(False)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    def _message(self, frame: Mapping[str, Any]) -> dict[str, Any] | None:
        text = frame.get("text")
        if text is None:
            self.toast("error", "The page sent a binary frame; it speaks JSON text only.")
        elif len(text) > MAX_FRAME:
            self.toast("error", f"That message is too long ({len(text):,} characters; at most {MAX_FRAME:,}).")
        else:
            try:
                msg = read_frame(text)
            except (ValueError, RecursionError):
                msg = None
            if isinstance(msg, dict) and isinstance(msg.get("type"), str):
                return msg
            self.toast("error", "The page sent a message the server does not understand.")
        return None

    async def _close(self, assistant: Any, controller: ChatController | None) -> None:
        if controller is not None:
            controller.close()
            if controller.state.get("busy"):
                assistant.cancel()  # nobody is watching: the turn ends (and is stored as cancelled)
            await asyncio.to_thread(controller.wait, CLOSE_WAIT)
        if assistant is not None:
            await asyncio.to_thread(assistant.close)

    async def _send_loop(self) -> None:
        while True:
            text = await self.outbox.get()
            try:
                await self.websocket.send_text(text)
            except Exception:  # the page went away; the receive side ends the connection
                return
