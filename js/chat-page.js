// The standalone chat page (nexus-lab serve, GET /): the chat panel over a WebSocket.
//
// The panel's render({ model, el }) only needs a model-like object: get(name), on/off
// ("change:<name>", "msg:custom"), send(msg). SocketModel is that object over /ws/panel: the
// server's frames are state patches ({type: "state", patch}) applied to a local dict, each
// changed name firing its change event, and one-off messages ({type: "msg", content}: toasts);
// send(msg) is one JSON frame. Served by the server beside the joined panel module
// (static/panel.js, built by nexusleads_lab/ui/esm.py), so nothing loads from anywhere else.
//
// Identity: the nexus_session cookie goes with the socket by itself; a ?token= in the page's
// address is kept for this tab (sessionStorage), taken out of the address bar, and put on the
// socket's URL.
//
// The page starts a new conversation, unless one is chosen: `/?conversation=<id>`, or the one this
// tab had open (kept for the tab, like the token), so a reload or a dropped connection comes back
// to the same conversation and a new tab starts a new one.

import panel from "./panel.js";

const TOKEN_KEY = "nexus-token";
const CONVERSATION_KEY = "nexus-conversation";

function tabConversation(id) {
  try {
    if (id === undefined) return sessionStorage.getItem(CONVERSATION_KEY);
    if (id) sessionStorage.setItem(CONVERSATION_KEY, id); else sessionStorage.removeItem(CONVERSATION_KEY);
  } catch (_) { /* storage off: this load only */ }
  return null;
}
const RETRY_MS = [500, 1000, 2000, 4000, 8000];
const UNAUTHORIZED = 401;
const FORBIDDEN = 403;

function takeToken() {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  if (given) {
    try { sessionStorage.setItem(TOKEN_KEY, given); } catch (_) { /* storage off: this load only */ }
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    return given;
  }
  try { return sessionStorage.getItem(TOKEN_KEY); } catch (_) { return null; }
}

function socketUrl(path, token) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  return url.href;
}

export class SocketModel {
  // ``words``: the kernel's words (words.UI), from the page itself, so that what the page says while
  // no socket is open is worded by the server too.
  constructor(url, words = {}) {
    this.url = url;
    this.state = { words };
    this.listeners = new Map(); // event name -> Set of callbacks
    this.connection = ""; // what the page says while the socket is not open (shown as the notice)
    this.retries = 0;
    this.closed = false;
    this.socket = null;
    this.connect();
  }

  // -- what the panel calls -----------------------------------------------------------------------

  get(name) {
    if (name === "notice" && this.connection) return this.connection;
    return this.state[name];
  }

  set(name, value) { // local only, as an unsaved anywidget change
    this.state[name] = value;
    this.emit(`change:${name}`);
  }

  save_changes() {}

  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
  }

  off(name, fn) {
    const set = this.listeners.get(name);
    if (!set) return;
    if (fn) set.delete(fn); else set.clear();
  }

  send(msg) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(msg));
      return;
    }
    if (msg && msg.type === "dismiss") return;
    this.emit("msg:custom", { type: "toast", level: "error", text: this.say("not_connected") });
  }

  say(key) {
    return panel.say(this.state.words, key);
  }

  // -- the socket -----------------------------------------------------------------------------------

  emit(name, ...args) {
    for (const fn of [...(this.listeners.get(name) || [])]) {
      try { fn(...args); } catch (err) { console.error("nexus page: a listener failed", err); }
    }
  }

  setConnection(text) {
    if (text === this.connection) return;
    this.connection = text;
    this.emit("change:notice");
  }

  connect() {
    const url = new URL(this.url);
    const open = this.state.conversation_id || new URL(window.location.href).searchParams.get("conversation")
      || tabConversation();
    if (open) url.searchParams.set("conversation", open);
    const socket = new WebSocket(url.href);
    this.socket = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      this.retries = 0;
      this.setConnection("");
    });
    socket.addEventListener("message", (event) => this.onFrame(event.data));
    socket.addEventListener("close", async (event) => {
      if (this.socket !== socket || this.closed) return;
      this.socket = null;
      // The server refuses a handshake with an HTTP status the browser does not show the page:
      // ask the same question over HTTP to say why.
      const code = opened ? event.code : await this.refusal();
      if (code === UNAUTHORIZED) {
        this.setConnection(this.say("not_signed_in"));
        return;
      }
      if (code === FORBIDDEN) {
        this.setConnection(this.say("refused"));
        return;
      }
      const wait = RETRY_MS[Math.min(this.retries, RETRY_MS.length - 1)];
      this.retries += 1;
      this.setConnection(this.say("reconnecting"));
      this.timer = setTimeout(() => this.connect(), wait);
    });
  }

  async refusal() {
    const token = new URL(this.url).searchParams.get("token");
    try {
      const probe = await fetch(new URL("api/chat/conversations?limit=1", window.location.href), {
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      });
      if (probe.status === 401) return UNAUTHORIZED;
      if (probe.status === 403) return FORBIDDEN;
    } catch (_) { /* the server is down: reconnect */ }
    return 0;
  }

  onFrame(data) {
    let frame;
    try { frame = JSON.parse(data); } catch (_) { return; }
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "state" && frame.patch && typeof frame.patch === "object") {
      const names = Object.keys(frame.patch);
      Object.assign(this.state, frame.patch);
      if ("conversation_id" in frame.patch) tabConversation(frame.patch.conversation_id || "");
      for (const name of names) this.emit(`change:${name}`);
    } else if (frame.type === "msg") {
      this.emit("msg:custom", frame.content);
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
  }
}

function start() {
  const el = document.getElementById("nexus-chat");
  if (!el) return;
  let words = {};
  try { words = JSON.parse(el.dataset.words || "{}"); } catch (_) { /* the keys show instead */ }
  const model = new SocketModel(socketUrl(el.dataset.socket || "ws/panel", takeToken()), words);
  const cleanup = panel.render({ model, el });
  window.addEventListener("pagehide", (event) => {
    if (event.persisted) return; // kept for the back button: stays as it is
    if (typeof cleanup === "function") cleanup();
    model.close();
  });
  window.nexusChat = { model }; // for tests and the curious: the state the page shows
}

start();
