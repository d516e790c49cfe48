import { h, icon, iconButton } from "./dom.js";
import { say } from "./format.js";
import { safeHtml } from "./html.js";
import { closeSideTab, copyText, insertionIndex, notebookOf } from "./lab.js";
import { renderConfirm } from "./confirm.js";
import { renderHistory } from "./history.js";
import { SECTION_RENDERERS } from "./sections.js";
import { renderSteps, sqlActions } from "./steps.js";

const NEAR_BOTTOM_PX = 96;

// ---------------------------------------------------------------------------------------------
// the panel

export class Panel {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.nodes = new Map(); // message key -> { node, sig }
    this.liveOpen = new Set(); // expanded live step ids
    this.typer = { target: "", shown: 0, raf: 0, node: null };
    this.lastTyped = ""; // streamed text shown when the answer arrived
    this.rendered = false;
    this.pendingRender = 0;
    this.timers = new Set();
    this.stickToBottom = true;
    this.lastRenderMs = null;
    this.build();
    this.listen();
    this.render();
    this.claimTab(25);
  }

  // A label or sentence in the kernel's words (words.UI), its {names} filled from ``values``.
  say(key, values) {
    return say(this.model.get("words"), key, values);
  }

  // -- the side-area tab ------------------------------------------------------------------------

  // After a kernel restart the side area still holds the dead panel of the same notebook: close
  // its tab, so the live panel (in the tab the sidecar just added, which is the current one)
  // is the one "Nexus" tab. The sidecar places this view a moment after it renders, so look
  // again for a few seconds.
  claimTab(tries) {
    const host = this.el.closest(".jupyterlab-sidecar");
    if (!host) {
      if (tries > 0) this.later(() => this.claimTab(tries - 1), 200);
      return;
    }
    const notebook = notebookOf(this.model);
    this.host = host.id;
    this.send({ type: "placed", host: host.id });
    host.classList.add("nx-sidecar");
    host.dataset.nexusNotebook = notebook ? String(notebook.context.path || "") : "";
    const stack = host.parentElement;
    for (const other of [...document.querySelectorAll("#jp-right-stack .jupyterlab-sidecar.nx-sidecar")]) {
      if (other === host || other.dataset.nexusNotebook !== host.dataset.nexusNotebook) continue;
      if (!other.querySelector(".nx-panel.nx-offline")) continue;
      closeSideTab(stack, other);
    }
  }

  // -- structure --------------------------------------------------------------------------------

  build() {
    this.title = h("div", { class: "nx-title-text" });
    this.subtitle = h("div", { class: "nx-subtitle" });
    this.header = h("header", { class: "nx-head" },
      h("div", { class: "nx-logo", "aria-hidden": "true" }, icon("spark")),
      h("div", { class: "nx-title" }, this.title, this.subtitle),
      iconButton("history", this.say("conversations"), () => this.toggleHistory(), "nx-history-btn"),
      iconButton("plus", this.say("new_conversation"), () => this.send({ type: "new" }), "nx-new-btn"),
    );
    this.notice = h("div", { class: "nx-notice", hidden: true });
    this.list = h("div", { class: "nx-messages", role: "log", "aria-live": "polite" });
    this.live = h("div", { class: "nx-live" });
    this.empty = h("div", { class: "nx-empty" });
    this.scroller = h("div", { class: "nx-scroll" }, this.empty, this.list, this.live);
    this.scroller.addEventListener("scroll", () => {
      if (!this.scroller.clientHeight) return; // detached or hidden tab: keep following
      this.stickToBottom = this.nearBottom();
      if (this.stickToBottom) this.jump.hidden = true;
    }, { passive: true });
    this.jump = h("button", { type: "button", class: "nx-jump", hidden: true, onclick: () => this.scrollToBottom(true) },
      icon("down"), this.say("latest"));
    this.history = h("div", { class: "nx-history", hidden: true });
    this.toasts = h("div", { class: "nx-toasts", "aria-live": "assertive" });
    this.input = h("textarea", {
      class: "nx-input", rows: 1, placeholder: this.say("placeholder"), title: this.say("input_hint"),
      "aria-label": this.say("input_label"),
    });
    this.input.addEventListener("keydown", (e) => this.onKey(e));
    this.input.addEventListener("input", () => this.autosize());
    this.sendBtn = h("button", { type: "button", class: "nx-send", onclick: () => this.onSendClick() });
    // A replay answers only its recorded questions: they stay offered above the input.
    this.recorded = h("div", { class: "nx-recorded", hidden: true, role: "group", "aria-label": this.say("recorded_label") });
    this.compose = h("footer", { class: "nx-compose" }, this.recorded,
      h("div", { class: "nx-compose-box" }, this.input, this.sendBtn));
    this.root = h("div", { class: "nx-panel" },
      this.header, this.notice, this.scroller, this.jump, this.history, this.toasts, this.compose);
    this.el.classList.add("nx-host");
    this.el.append(this.root);
    // Keep the latest message in view while it is followed: when the panel is first attached
    // (anywidget renders before the sidecar places it), resized, or its content grows.
    this.resizeObserver = new ResizeObserver(() => {
      if (this.stickToBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
    });
    this.resizeObserver.observe(this.scroller);
    this.resizeObserver.observe(this.list);
    this.resizeObserver.observe(this.live);
  }

  // What the empty panel says is true where it runs: DataFrames land only in a notebook, and a
  // replay answers only the questions it recorded (offered as chips; other views offer examples).
  renderEmpty() {
    const recorded = this.model.get("suggestions") || [];
    const unconfigured = this.model.get("model_mode") === "unconfigured";
    const inNotebook = Boolean(notebookOf(this.model));
    const label = this.model.get("label") || "";
    const where = inNotebook ? "notebook" : "page";
    const text = this.say(recorded.length ? "empty_replay" : unconfigured ? `unconfigured_${where}` : `empty_${where}`);
    const examples = this.say("examples").split("\n").filter(Boolean);
    const chips = recorded.length ? recorded : unconfigured ? [] : examples;
    const sig = JSON.stringify([text, chips, label]);
    if (this.emptySig !== sig) {
      this.emptySig = sig;
      this.empty.replaceChildren(
        h("div", { class: "nx-empty-logo" }, icon("spark")),
        h("div", { class: "nx-empty-title", text: label ? this.say("empty_title_from", { label }) : this.say("empty_title") }),
        h("div", { class: "nx-empty-text", text }),
        h("div", { class: "nx-suggestions" },
          chips.map((s) => h("button", { type: "button", class: "nx-suggestion", text: s, onclick: () => this.ask(s) }))),
      );
      this.recorded.replaceChildren(...recorded.map((s) => h("button", {
        type: "button", class: "nx-chip nx-recorded-chip", text: s, title: s, onclick: () => this.ask(s),
      })));
    }
    const messages = this.model.get("messages") || [];
    this.empty.hidden = messages.length > 0 || this.model.get("busy");
    this.recorded.hidden = !recorded.length || !this.empty.hidden;
  }

  listen() {
    const panel = this;
    this.handlers = {
      "change:messages": () => this.schedule(),
      "change:conversations": () => this.schedule(),
      "change:conversation_id": () => this.schedule(),
      "change:busy": () => this.schedule(),
      "change:turn": () => this.schedule(),
      "change:notice": () => this.schedule(),
      "change:model_name": () => this.schedule(),
      "change:scope": () => this.schedule(),
      "change:suggestions": () => this.schedule(),
      "change:label": () => this.schedule(),
      "change:model_mode": () => this.schedule(),
      "change:streaming": () => this.onStreaming(),
      "msg:custom": (msg) => this.onCustom(msg),
      // The kernel went away (restart, shutdown): ipywidgets sets the model's comm_live to false.
      // Backbone calls this with the view as `this`; without it, the event alone means offline.
      comm_live_update: function () {
        const live = this && this.model && typeof this.model.comm_live === "boolean" ? this.model.comm_live : false;
        panel.renderOffline(!live);
      },
    };
    for (const [name, fn] of Object.entries(this.handlers)) this.model.on(name, fn);
    this.onDocKey = (e) => { if (e.key === "Escape" && !this.history.hidden) this.toggleHistory(false); };
    this.root.addEventListener("keydown", this.onDocKey);
  }

  dispose() {
    // Its side tab was closed: the notebook no longer reopens the panel after a restart.
    if (this.host && this.model.comm_live !== false && !this.offline) {
      try { this.send({ type: "closed", host: this.host }); } catch (_) { /* the kernel is gone */ }
    }
    for (const [name, fn] of Object.entries(this.handlers)) this.model.off(name, fn);
    cancelAnimationFrame(this.pendingRender);
    cancelAnimationFrame(this.typer.raf);
    for (const t of this.timers) clearTimeout(t);
    this.resizeObserver.disconnect();
    this.root.remove();
  }

  send(msg) {
    this.model.send(msg);
  }

  later(fn, ms) {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
  }

  schedule() {
    if (this.pendingRender) return;
    this.pendingRender = requestAnimationFrame(() => {
      this.pendingRender = 0;
      this.render();
    });
  }

  // -- rendering --------------------------------------------------------------------------------

  render() {
    const wasNear = this.stickToBottom || this.nearBottom();
    const started = performance.now();
    this.renderHeader();
    this.renderNotice();
    const grew = this.renderMessages();
    this.renderLive();
    this.renderCompose();
    if (!this.history.hidden && !this.history.querySelector(".nx-rename, .nx-conv-ask")) renderHistory(this, );
    this.renderEmpty();
    const messages = this.model.get("messages") || [];
    this.lastRenderMs = performance.now() - started;
    this.root.dataset.renderMs = this.lastRenderMs.toFixed(1);
    if (!this.rendered) this.root.dataset.firstRenderMs = this.lastRenderMs.toFixed(1);
    this.root.dataset.count = String(messages.length);
    if (!this.rendered) {
      this.rendered = true;
      this.scrollToBottom(false);
    } else if (wasNear) {
      this.scrollToBottom(false);
    } else if (grew) {
      this.jump.hidden = false;
    }
  }

  renderHeader() {
    const id = this.model.get("conversation_id");
    const current = (this.model.get("conversations") || []).find((c) => c.id === id);
    this.title.textContent = current ? current.title : this.say(id ? "conversation" : "new_conversation");
    this.title.title = this.title.textContent; // the header cuts a long title; hovering shows it whole
    const model = this.model.get("model_name");
    const scope = this.model.get("scope");
    // The scope before the model: when the side area is narrow, what the panel can touch stays in view.
    // A notebook's panel names its notebook: each notebook has its own conversation.
    const line = [this.model.get("label") || this.say("default_label"), scope, model].filter(Boolean).join(" · ");
    this.subtitle.textContent = this.model.get("busy") ? this.say("working") : line;
    this.subtitle.title = scope ? this.say("scope_limit", { line, scope }) : line;
    this.root.classList.toggle("nx-busy", !!this.model.get("busy"));
  }

  renderOffline(offline) {
    this.offline = offline;
    this.root.classList.toggle("nx-offline", this.offline);
    this.input.disabled = this.offline;
    this.sendBtn.disabled = this.offline;
    this.renderNotice();
  }

  renderNotice() {
    if (this.offline) {
      this.notice.hidden = false;
      this.notice.replaceChildren(icon("warn"), h("span", {
        text: this.say("offline"),
      }), h("code", { class: "nx-notice-code", text: "%load_ext nexusleads_lab" }));
      return;
    }
    const text = this.model.get("notice");
    this.notice.hidden = !text;
    this.notice.replaceChildren();
    if (text) {
      this.notice.append(icon("warn"), h("span", { text }),
        iconButton("close", this.say("dismiss"), () => this.send({ type: "dismiss" })));
    }
  }

  renderMessages() {
    const items = this.model.get("messages") || [];
    const seen = new Set();
    let prev = null;
    let grew = false;
    const lastKey = items.length ? items[items.length - 1].key : null;
    for (const item of items) {
      const sig = JSON.stringify(item);
      let entry = this.nodes.get(item.key);
      if (!entry || entry.sig !== sig) {
        const fresh = !entry && this.rendered;
        const node = this.renderItem(item, fresh && item.key === lastKey);
        if (entry) entry.node.replaceWith(node);
        else grew = true;
        entry = { node, sig };
        this.nodes.set(item.key, entry);
      }
      seen.add(item.key);
      const want = prev ? prev.nextSibling : this.list.firstChild;
      if (want !== entry.node) this.list.insertBefore(entry.node, want);
      prev = entry.node;
    }
    for (const [key, entry] of this.nodes) {
      if (!seen.has(key)) {
        entry.node.remove();
        this.nodes.delete(key);
      }
    }
    return grew;
  }

  renderItem(item, fresh) {
    if (item.role === "user") {
      return h("div", { class: "nx-msg nx-user", dataset: { key: item.key } }, h("div", { class: "nx-bubble", text: item.text }));
    }
    const node = h("div", { class: "nx-msg nx-bot", dataset: { key: item.key } });
    if (item.steps && item.steps.length) node.append(renderSteps(this, item.steps, false, item.key, item.steps_label, item.step_words));
    else if (item.cost) node.append(h("div", { class: "nx-steps nx-cost", text: item.cost }));
    const response = item.response;
    if (item.error) {
      node.append(h("div", { class: `nx-error ${item.cancelled ? "nx-cancelled" : ""}` },
        icon(item.cancelled ? "stop" : "warn"), h("span", { text: item.error })));
    } else if (response && response.type === "dashboard") {
      node.append(this.renderDashboard(response, fresh));
    } else if (response && response.type === "confirm") {
      node.append(renderConfirm(this, response, item.outcome, item));
    } else if (response) {
      const body = h("div", { class: "nx-bubble nx-md" });
      node.append(body);
      if (fresh) this.typewrite(body, String(response.text ?? ""), item.html);
      else this.showAnswer(body, response.text, item.html);
    }
    if (item.notes && item.notes.length) {
      node.append(h("details", { class: "nx-notes" },
        h("summary", { text: item.notes_label }),
        h("ul", null, item.notes.map((n) => h("li", { text: n })))));
    }
    return node;
  }

  // -- steps ------------------------------------------------------------------------------------

  async copySql(sql) {
    const ok = await copyText(sql);
    this.toast(ok ? "ok" : "error", this.say(ok ? "copied" : "copy_refused"));
  }

  insertCell(sql) {
    const source = String(this.model.get("sql_cell") || "{sql}").replace("{sql}", () => sql);
    const notebook = notebookOf(this.model);
    if (notebook) {
      try {
        const index = insertionIndex(notebook);
        notebook.shared.insertCell(index, { cell_type: "code", source, metadata: {} });
        const name = String(notebook.context.path || this.say("the_notebook")).split("/").pop();
        this.toast("ok", this.say("inserted", { index: index + 1, name }));
        return;
      } catch (err) {
        console.warn("nexus panel: inserting a cell failed", err);
      }
    }
    copyText(source).then((ok) => this.toast(ok ? "info" : "error", this.say(ok ? "no_notebook_copied" : "no_notebook_blocked")));
  }

  // -- live turn --------------------------------------------------------------------------------

  renderLive() {
    const busy = this.model.get("busy");
    const turn = this.model.get("turn") || {};
    const steps = turn.steps || [];
    const showing = busy && turn.phase !== "done";
    this.live.hidden = !showing;
    if (!showing) {
      this.live.replaceChildren();
      this.typer.node = null;
      this.liveOpen.clear();
      return;
    }
    const parts = [];
    if (steps.length) parts.push(renderSteps(this, steps, true, "live", turn.label, turn.step_words));
    const streamed = this.model.get("streaming") || "";
    if (!steps.length && !streamed) {
      parts.push(h("div", { class: "nx-dots", "aria-label": this.say("waiting") }, h("span"), h("span"), h("span")));
    }
    if (!this.typer.node) this.typer.node = h("div", { class: "nx-bubble nx-md nx-plain nx-streaming" });
    this.typer.node.hidden = !streamed;
    parts.push(this.typer.node);
    this.live.replaceChildren(h("div", { class: "nx-msg nx-bot" }, parts));
    this.onStreaming();
  }

  onStreaming() {
    const text = this.model.get("streaming") || "";
    const typer = this.typer;
    if (!text) {
      if (typer.target) this.lastTyped = typer.target.slice(0, typer.shown);
      typer.target = "";
      typer.shown = 0;
      return;
    }
    if (!text.startsWith(typer.target.slice(0, typer.shown))) typer.shown = 0;
    typer.target = text;
    if (typer.node && typer.node.hidden) {
      typer.node.hidden = false;
      this.live.querySelector(".nx-dots")?.remove();
    }
    if (!typer.raf) typer.raf = requestAnimationFrame(() => this.typeFrame());
  }

  typeFrame() {
    const typer = this.typer;
    typer.raf = 0;
    if (!typer.node || typer.shown >= typer.target.length) return;
    const behind = typer.target.length - typer.shown;
    typer.shown = Math.min(typer.target.length, typer.shown + Math.max(2, Math.ceil(behind / 8)));
    const near = this.nearBottom();
    typer.node.replaceChildren(typer.target.slice(0, typer.shown), h("span", { class: "nx-caret-blink" }));
    if (near) this.scrollToBottom(false);
    typer.raf = requestAnimationFrame(() => this.typeFrame());
  }

  // The answer that just arrived types out as plain text, continuing from what the stream
  // already showed, then stands as the kernel rendered it.
  typewrite(node, text, html) {
    const streamed = this.lastTyped || this.typer.target.slice(0, this.typer.shown);
    let shown = streamed && text.startsWith(streamed) ? streamed.length : 0;
    this.lastTyped = "";
    const step = Math.max(2, Math.ceil((text.length - shown) / 45));
    node.classList.add("nx-plain");
    const frame = () => {
      if (!node.isConnected && shown > 0) shown = text.length; // replaced meanwhile: just finish
      shown = Math.min(text.length, shown + step);
      const near = this.nearBottom();
      if (shown < text.length) {
        node.replaceChildren(text.slice(0, shown), h("span", { class: "nx-caret-blink" }));
        requestAnimationFrame(frame);
      } else {
        this.showAnswer(node, text, html);
      }
      if (near) this.scrollToBottom(false);
    };
    frame();
  }

  // Markdown the kernel rendered (safeHtml checks it again); without it, the plain text.
  showAnswer(node, text, html) {
    node.classList.toggle("nx-plain", typeof html !== "string");
    node.replaceChildren(typeof html === "string" ? safeHtml(html) : String(text ?? ""));
  }

  // -- dashboards -------------------------------------------------------------------------------

  renderDashboard(resp, fresh) {
    const box = h("div", { class: `nx-dash ${fresh ? "nx-fade" : ""}` });
    if (resp.title) box.append(h("div", { class: "nx-dash-title", text: resp.title, title: resp.title }));
    for (const section of resp.sections || []) {
      const render = SECTION_RENDERERS[section.type];
      if (!render) continue;
      const node = render(section, this);
      if (node) box.append(node);
    }
    return box;
  }

  sectionFrame(cls, label, section, ...content) {
    const frame = h("section", { class: `nx-section ${cls}` });
    // KPI cards without a label keep their provenance in the steps, not in an empty header row.
    if (label || (section.sql && section.type !== "widgets")) {
      const head = h("div", { class: "nx-section-head" }, h("span", { class: "nx-section-label", text: label || "", title: label || null }));
      if (section.sql) {
        const sqlBox = h("div", { class: "nx-section-sql", hidden: true },
          h("pre", { class: "nx-sql", text: section.sql }), sqlActions(this, section.sql));
        head.append(h("button", {
          type: "button", class: "nx-source", title: this.say("show_sql"),
          onclick: () => { sqlBox.hidden = !sqlBox.hidden; },
        }, icon("db"), section.source ? section.source : this.say("sql")));
        frame.append(head, sqlBox);
      } else frame.append(head);
    }
    frame.append(...content.filter(Boolean));
    return frame;
  }

  // -- confirmations ----------------------------------------------------------------------------

  // -- compose ----------------------------------------------------------------------------------

  renderCompose() {
    const busy = !!this.model.get("busy");
    this.sendBtn.replaceChildren(icon(busy ? "stop" : "send"));
    this.sendBtn.classList.toggle("nx-stop", busy);
    this.sendBtn.title = this.say(busy ? "stop" : "send_hint");
    this.sendBtn.setAttribute("aria-label", this.say(busy ? "stop" : "send"));
  }

  onKey(e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      e.stopPropagation();
      if (!this.model.get("busy")) this.submit();
    }
  }

  onSendClick() {
    if (this.model.get("busy")) this.send({ type: "stop" });
    else this.submit();
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    this.ask(text);
    this.input.value = "";
    this.autosize();
  }

  ask(text) {
    this.stickToBottom = true;
    this.send({ type: "ask", text });
    this.input.focus();
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(160, this.input.scrollHeight)}px`;
  }

  // -- history ----------------------------------------------------------------------------------

  toggleHistory(force) {
    const show = force ?? this.history.hidden;
    this.history.hidden = !show;
    this.root.classList.toggle("nx-history-open", show);
    if (show) {
      this.send({ type: "refresh" });
      renderHistory(this, true);
    }
  }

  // -- toasts and scrolling ---------------------------------------------------------------------

  onCustom(msg) {
    if (msg && msg.type === "toast") this.toast(msg.level, msg.text);
  }

  toast(level, text) {
    const node = h("div", { class: `nx-toast nx-toast-${level || "info"}`, role: "status" }, h("span", { text }));
    this.toasts.append(node);
    this.later(() => node.classList.add("nx-leaving"), 3800);
    this.later(() => node.remove(), 4200);
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom(smooth) {
    this.scroller.scrollTo({ top: this.scroller.scrollHeight, behavior: smooth ? "smooth" : "auto" });
    this.stickToBottom = true;
    this.jump.hidden = true;
  }
}
