// NexusLeads Lab chat panel: the ChatSidecar of the original web app, as an anywidget.
//
// Everything the person sees is built with createElement/textContent: model output and
// database values are never parsed as HTML, so an <img onerror> in a bio stays text.
// State comes from the kernel-side model (messages, conversations, busy, turn, streaming);
// requests go back with model.send. No dependencies, no network.

const SUGGESTIONS = [
  "Top hot leads not contacted yet",
  "Lead funnel by status",
  "How are leads spread over tiers?",
];
const NEAR_BOTTOM_PX = 96;

// ---------------------------------------------------------------------------------------------
// tiny DOM helpers

function h(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "style") {
        for (const [k, v] of Object.entries(value)) {
          if (k.startsWith("--")) node.style.setProperty(k, v);
          else node.style[k] = v;
        }
      }
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

// Icons: fixed path data only (no untrusted input reaches these).
const ICONS = {
  send: "M3.4 20.4 21 12 3.4 3.6l.02 6.53L15 12 3.42 13.87z",
  stop: "M7 7h10v10H7z",
  plus: "M11 5h2v6h6v2h-6v6h-2v-6H5v-2h6z",
  history: "M13 3a9 9 0 0 0-9 9H1l3.9 3.9L9 12H6a7 7 0 1 1 2.05 4.95l-1.42 1.42A9 9 0 1 0 13 3zm-1 5v5l4.25 2.52.77-1.28-3.52-2.09V8z",
  close: "M18.3 5.71 12 12.01l-6.3-6.3-1.41 1.41 6.3 6.3-6.3 6.29 1.41 1.42 6.3-6.3 6.29 6.3 1.42-1.42-6.3-6.29 6.3-6.3z",
  edit: "M3 17.25V21h3.75L17.81 9.94l-3.75-3.75zm17.71-10.21a1 1 0 0 0 0-1.41l-2.34-2.34a1 1 0 0 0-1.41 0l-1.83 1.83 3.75 3.75z",
  trash: "M6 19a2 2 0 0 0 2 2h8a2 2 0 0 0 2-2V7H6zM19 4h-3.5l-1-1h-5l-1 1H5v2h14z",
  copy: "M16 1H4a2 2 0 0 0-2 2v14h2V3h12zm3 4H8a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h11a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2zm0 16H8V7h11z",
  cell: "M19 3H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2V5a2 2 0 0 0-2-2zm-8 14H7v-2h4zm6-4H7v-2h10zm0-4H7V7h10z",
  check: "M9 16.17 4.83 12l-1.42 1.41L9 19 21 7l-1.41-1.41z",
  cross: "M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z",
  chevron: "M8.59 16.59 13.17 12 8.59 7.41 10 6l6 6-6 6z",
  down: "M7.41 8.59 12 13.17l4.59-4.58L18 10l-6 6-6-6z",
  warn: "M1 21h22L12 2zm12-3h-2v-2h2zm0-4h-2v-4h2z",
  db: "M12 3C7.58 3 4 4.34 4 6v12c0 1.66 3.58 3 8 3s8-1.34 8-3V6c0-1.66-3.58-3-8-3zm0 2c3.87 0 6 1.14 6 1s-2.13 1-6 1-6-1.14-6-1 2.13-1 6-1zm6 13c0 .5-2.13 1-6 1s-6-.5-6-1v-2.23c1.61.78 3.72 1.23 6 1.23s4.39-.45 6-1.23zm0-5c0 .5-2.13 1-6 1s-6-.5-6-1v-2.23c1.61.78 3.72 1.23 6 1.23s4.39-.45 6-1.23z",
  file: "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zm4 18H6V4h7v5h5z",
  spark: "M12 2l2.4 6.6L21 11l-6.6 2.4L12 20l-2.4-6.6L3 11l6.6-2.4z",
};
function icon(name, cls) {
  return svg("svg", { viewBox: "0 0 24 24", class: `nx-icon ${cls || ""}`, "aria-hidden": "true" },
    svg("path", { d: ICONS[name] }));
}

function iconButton(name, label, onclick, cls) {
  return h("button", { type: "button", class: `nx-iconbtn ${cls || ""}`, title: label, "aria-label": label, onclick },
    icon(name));
}

// ---------------------------------------------------------------------------------------------
// values

function formatNumber(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString("en-US", { maximumFractionDigits: digits });
}

function formatCell(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function plural(n, one, many) {
  return `${formatNumber(n)} ${n === 1 ? one : many || one + "s"}`;
}

function formatMs(ms) {
  if (typeof ms !== "number") return null;
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

function relativeTime(iso) {
  const then = Date.parse(iso);
  if (!Number.isFinite(then)) return "";
  const s = Math.max(0, (Date.now() - then) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 86400 * 7) return `${Math.floor(s / 86400)} d ago`;
  return new Date(then).toLocaleDateString();
}

const NAMED_COLORS = new Set(["green", "red", "amber", "blue", "gray", "purple", "orange", "teal"]);
const HEX_COLOR = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;

// ---------------------------------------------------------------------------------------------
// Markdown: a small, safe subset (paragraphs, headings, lists, quotes, code, tables, links);
// images are shown as links, so nothing loads from the network without a click

function safeHref(url) {
  return /^(https?:|mailto:)/i.test(url) ? url : null;
}

const INLINE = new RegExp(
  [
    /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/.source, // 1,2 code
    /\*\*(?=\S)([\s\S]*?\S)\*\*/.source, // 3 strong
    /__(?=\S)([\s\S]*?\S)__/.source, // 4 strong
    /~~(?=\S)([\s\S]*?\S)~~/.source, // 5 strike
    /\*(?=[^\s*])([^*]*?[^\s*])\*/.source, // 6 em
    /(?<![\w])_(?=[^\s_])([^_]*?[^\s_])_(?![\w])/.source, // 7 em
    /\[([^\]\n]+)\]\(([^)\s]+)(?:\s+"[^"]*")?\)/.source, // 8,9 link
    /(https?:\/\/[^\s<>()]*[^\s<>().,;:!?'"\]])/.source, // 10 autolink
    /!\[([^\]\n]*)\]\(([^)\s]+)(?:\s+"[^"]*")?\)/.source, // 11,12 image: a link, never loaded
  ].join("|"),
  "g",
);

function inline(text, out) {
  const re = new RegExp(INLINE); // its own lastIndex: inline() recurses into bold, links ...
  let last = 0;
  for (let m; (m = re.exec(text)); ) {
    if (m.index > last) out.append(document.createTextNode(text.slice(last, m.index)));
    last = re.lastIndex;
    if (m[2] !== undefined) out.append(h("code", { text: m[2] }));
    else if (m[3] !== undefined || m[4] !== undefined) inline(m[3] ?? m[4], out.appendChild(h("strong")));
    else if (m[5] !== undefined) inline(m[5], out.appendChild(h("del")));
    else if (m[6] !== undefined || m[7] !== undefined) inline(m[6] ?? m[7], out.appendChild(h("em")));
    else if (m[8] !== undefined) {
      const href = safeHref(m[9]);
      if (href) inline(m[8], out.appendChild(h("a", { href, target: "_blank", rel: "noopener noreferrer" })));
      else inline(m[8], out);
    } else if (m[10] !== undefined) {
      out.append(h("a", { href: m[10], target: "_blank", rel: "noopener noreferrer", text: m[10] }));
    } else if (m[12] !== undefined) {
      // An <img> would fetch the URL (and any data the model put in it) as soon as it is shown.
      const href = safeHref(m[12]);
      const label = m[11] || m[12];
      if (href) out.append(h("a", { href, class: "nx-md-image", title: `Image: ${href}`, target: "_blank", rel: "noopener noreferrer nofollow", text: label }));
      else out.append(document.createTextNode(label));
    }
  }
  if (last < text.length) out.append(document.createTextNode(text.slice(last)));
  return out;
}

function inlineWithBreaks(lines, out) {
  lines.forEach((line, i) => {
    if (i) out.append(h("br"));
    inline(line, out);
  });
  return out;
}

const RE_FENCE = /^\s{0,3}(```|~~~)\s*([\w+-]*)\s*$/;
const RE_HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RE_HR = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const RE_QUOTE = /^\s{0,3}>\s?(.*)$/;
const RE_LIST = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const RE_TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith("|")) s = s.slice(1);
  if (s.endsWith("|") && !s.endsWith("\\|")) s = s.slice(0, -1);
  return s.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
}

function isBlockStart(line, next) {
  return RE_FENCE.test(line) || RE_HEADING.test(line) || RE_HR.test(line) || RE_QUOTE.test(line) ||
    RE_LIST.test(line) || (line.includes("|") && next !== undefined && RE_TABLE_SEP.test(next));
}

function renderMarkdown(text) {
  const out = document.createDocumentFragment();
  const lines = String(text ?? "").replace(/\r\n?/g, "\n").split("\n");
  blocks(lines, out);
  return out;
}

function blocks(lines, out) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i++; continue; }
    let m;
    if ((m = RE_FENCE.exec(line))) {
      const body = [];
      i++;
      while (i < lines.length && !new RegExp(`^\\s{0,3}${m[1]}\\s*$`).test(lines[i])) body.push(lines[i++]);
      i++;
      out.append(h("pre", { class: "nx-code" }, h("code", { text: body.join("\n") })));
    } else if ((m = RE_HEADING.exec(line))) {
      const level = Math.min(6, m[1].length + 2);
      out.append(inline(m[2], h(`h${level}`, { class: "nx-h" })));
      i++;
    } else if (RE_HR.test(line)) {
      out.append(h("hr"));
      i++;
    } else if (RE_QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && (m = RE_QUOTE.exec(lines[i]))) { body.push(m[1]); i++; }
      const quote = h("blockquote");
      blocks(body, quote);
      out.append(quote);
    } else if (line.includes("|") && i + 1 < lines.length && RE_TABLE_SEP.test(lines[i + 1])) {
      const header = splitRow(line);
      const aligns = splitRow(lines[i + 1]).map((c) => (c.endsWith(":") ? (c.startsWith(":") ? "center" : "right") : "left"));
      i += 2;
      const rows = [];
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) rows.push(splitRow(lines[i++]));
      out.append(h("div", { class: "nx-table-wrap" }, h("table", { class: "nx-table" },
        h("thead", null, h("tr", null, header.map((c, j) => inline(c, h("th", { style: { textAlign: aligns[j] || "left" } }))))),
        h("tbody", null, rows.map((r) => h("tr", null, header.map((_, j) => inline(r[j] ?? "", h("td", { style: { textAlign: aligns[j] || "left" } })))))),
      )));
    } else if ((m = RE_LIST.exec(line))) {
      i = list(lines, i, out);
    } else {
      const para = [];
      while (i < lines.length && lines[i].trim() && !(para.length && isBlockStart(lines[i], lines[i + 1]))) {
        para.push(lines[i].trim());
        i++;
      }
      out.append(inlineWithBreaks(para, h("p")));
    }
  }
}

function list(lines, i, out) {
  const first = RE_LIST.exec(lines[i]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const node = h(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) node.setAttribute("start", String(parseInt(first[2], 10)));
  let item = null;
  while (i < lines.length) {
    const line = lines[i];
    const m = RE_LIST.exec(line);
    if (m && m[1].length === indent && /\d/.test(m[2]) === ordered) {
      item = inline(m[3], h("li"));
      node.append(item);
      i++;
    } else if (m && m[1].length > indent && item) {
      i = list(lines, i, item);
    } else if (line.trim() && item && /^\s+/.test(line) && !m) {
      item.append(h("br"));
      inline(line.trim(), item);
      i++;
    } else break;
  }
  out.append(node);
  return i;
}

// ---------------------------------------------------------------------------------------------
// a write's preview: per statement, the sampled rows, key then before → after (the same
// wording and table as the cell's confirm card, js/confirm.js)

const PREVIEW_SHORT = 16; // values up to this long never wrap (ids, enums such as no_response); longer ones wrap anywhere
const PREVIEW_VERBS = { update: ["changes", "in"], insert: ["adds", "to"], delete: ["deletes", "from"] };

function previewValue(value, cls) {
  const missing = value === null || value === undefined;
  const text = missing ? "NULL" : typeof value === "boolean" ? (value ? "true" : "false") : String(value);
  return h("span", { class: `${cls}${missing ? " nx-pv-null" : ""}${text.length <= PREVIEW_SHORT ? " nx-pv-short" : ""}`, text });
}

function previewColumns(stmt) {
  const keys = stmt.keys || [];
  const side = stmt.action === "delete" ? "before" : "after";
  const columns = stmt.action === "delete" ? [] : [...(stmt.columns || [])];
  for (const row of stmt.sample || []) {
    for (const c of Object.keys(row[side] || {})) if (!columns.includes(c) && !keys.includes(c)) columns.push(c);
  }
  return columns;
}

function previewLine(resp) {
  const n = resp.dry_run_rows;
  const statements = resp.preview || [];
  let verb = "changes";
  let where = "";
  if (statements.length === 1) {
    const [v, prep] = PREVIEW_VERBS[statements[0].action] || PREVIEW_VERBS.update;
    verb = v;
    where = ` ${prep} ${statements[0].table}`;
  } else if (statements.length > 1) {
    where = ` in ${statements.length} statements`;
  }
  return h("div", { class: "nx-dry" }, `Preview: this ${verb} `, h("strong", { text: formatNumber(n) }),
    ` ${n === 1 ? "row" : "rows"}${where}.`);
}

function previewCell(action, before, after) {
  if (action === "update" && before !== after) {
    return h("td", { class: "nx-pv-changed" }, previewValue(before, "nx-pv-before"),
      h("span", { class: "nx-pv-arrow", text: " → " }), previewValue(after, "nx-pv-after"));
  }
  const value = action === "delete" ? before : after;
  return h("td", { class: action === "update" ? "nx-pv-same" : null }, previewValue(value, "nx-pv-value"));
}

function statementPreview(stmt, number) {
  const action = stmt.action || "";
  const rows = stmt.rows || 0;
  const sample = stmt.sample || [];
  const keys = stmt.keys || [];
  const columns = previewColumns(stmt);
  if (!sample.length && number == null) return null;
  const head = number == null ? null : h("div", { class: "nx-pv-head", text: `${number}. ${action} ${stmt.table}: ${plural(rows, "row")}` });
  if (!sample.length) return h("div", { class: "nx-pv-stmt", dataset: { action } }, head);
  const body = sample.map((row) => {
    const key = row.key || {};
    const before = row.before || {};
    const after = row.after || {};
    return h("tr", { dataset: { action } },
      keys.map((k) => h("td", { class: "nx-pv-key" }, previewValue(key[k], "nx-pv-value"))),
      columns.map((c) => previewCell(action, before[c], after[c])));
  });
  const more = rows - sample.length;
  return h("div", { class: "nx-pv-stmt", dataset: { action } }, head,
    h("div", { class: "nx-pv-wrap" }, h("table", { class: "nx-pv-table" },
      h("thead", null, h("tr", null, keys.map((k) => h("th", { class: "nx-pv-key", text: k })), columns.map((c) => h("th", { text: c })))),
      h("tbody", null, body))),
    more > 0 ? h("div", { class: "nx-pv-more", text: `and ${formatNumber(more)} more ${more === 1 ? "row" : "rows"}` }) : null);
}

function previewBlock(resp) {
  const statements = resp.preview || [];
  const blocks = statements.map((s, i) => statementPreview(s, statements.length > 1 ? i + 1 : null)).filter(Boolean);
  return blocks.length ? h("div", { class: "nx-preview" }, blocks) : null;
}

// ---------------------------------------------------------------------------------------------
// clipboard and cells

async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (_) { /* fall back below */ }
  const area = h("textarea", { style: { position: "fixed", top: "-1000px", opacity: "0" }, readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
  area.remove();
  return ok;
}

// The notebook whose kernel runs this panel is the widget manager's document context; its
// shared model takes a new cell directly (JupyterLab 4, no extension or network needed).
function notebookOf(model) {
  const context = model.widget_manager && model.widget_manager.context;
  const shared = context && context.model && context.model.sharedModel;
  if (!shared || typeof shared.insertCell !== "function") return null;
  return { context, shared };
}

// Below the active cell when that notebook is the visible one, else at the end.
function insertionIndex(notebook) {
  const count = notebook.shared.cells.length;
  const name = String(notebook.context.path || "").split("/").pop();
  const tab = document.querySelector("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current");
  const label = tab && tab.querySelector(".lm-TabBar-tabLabel");
  if (!tab || !label || label.textContent.trim() !== name) return count;
  const panel = tab.dataset.id && document.getElementById(tab.dataset.id);
  const cells = panel ? [...panel.querySelectorAll(".jp-Notebook .jp-Cell")] : [];
  const active = cells.find((c) => c.classList.contains("jp-mod-active"));
  if (!active) return count;
  let index = parseInt(active.dataset.windowedListIndex ?? "", 10);
  if (!Number.isFinite(index) && cells.length === count) index = cells.indexOf(active);
  return Number.isFinite(index) && index >= 0 && index < count ? index + 1 : count;
}

// A side tab names its widget in data-id (else: the side bar lists its tabs in the order of the
// widgets in its stack). Its close icon is the public way to close it: the sidecar disposes the
// widget on that request.
function closeSideTab(stack, widgetNode) {
  const tabs = [...document.querySelectorAll(".jp-SideBar.jp-mod-right .lm-TabBar-content > .lm-TabBar-tab")];
  const tab = tabs.find((t) => t.dataset.id === widgetNode.id) || tabs[[...stack.children].indexOf(widgetNode)];
  const icon = tab ? tab.querySelector(".lm-TabBar-tabCloseIcon") : null;
  if (!icon) return false;
  const box = icon.getBoundingClientRect();
  const at = { bubbles: true, cancelable: true, button: 0, pointerId: 1, isPrimary: true,
    clientX: box.left + box.width / 2, clientY: box.top + box.height / 2 };
  icon.dispatchEvent(new PointerEvent("pointerdown", at));
  icon.dispatchEvent(new PointerEvent("pointerup", at));
  return true;
}

// ---------------------------------------------------------------------------------------------
// the panel

class Panel {
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
      iconButton("history", "Conversations", () => this.toggleHistory(), "nx-history-btn"),
      iconButton("plus", "New conversation", () => this.send({ type: "new" }), "nx-new-btn"),
    );
    this.notice = h("div", { class: "nx-notice", hidden: true });
    this.list = h("div", { class: "nx-messages", role: "log", "aria-live": "polite" });
    this.live = h("div", { class: "nx-live" });
    this.empty = this.buildEmpty();
    this.scroller = h("div", { class: "nx-scroll" }, this.empty, this.list, this.live);
    this.scroller.addEventListener("scroll", () => {
      if (!this.scroller.clientHeight) return; // detached or hidden tab: keep following
      this.stickToBottom = this.nearBottom();
      if (this.stickToBottom) this.jump.hidden = true;
    }, { passive: true });
    this.jump = h("button", { type: "button", class: "nx-jump", hidden: true, onclick: () => this.scrollToBottom(true) },
      icon("down"), "Latest");
    this.history = h("div", { class: "nx-history", hidden: true });
    this.toasts = h("div", { class: "nx-toasts", "aria-live": "assertive" });
    this.input = h("textarea", {
      class: "nx-input", rows: 1, placeholder: "Ask about your leads…", title: "Enter to send · Shift+Enter for a new line",
      "aria-label": "Message",
    });
    this.input.addEventListener("keydown", (e) => this.onKey(e));
    this.input.addEventListener("input", () => this.autosize());
    this.sendBtn = h("button", { type: "button", class: "nx-send", onclick: () => this.onSendClick() });
    this.compose = h("footer", { class: "nx-compose" }, h("div", { class: "nx-compose-box" }, this.input, this.sendBtn));
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

  buildEmpty() {
    return h("div", { class: "nx-empty" },
      h("div", { class: "nx-empty-logo" }, icon("spark")),
      h("div", { class: "nx-empty-title", text: "Ask about your leads" }),
      h("div", { class: "nx-empty-text", text: "Plain questions become SQL, dashboards and DataFrames in your notebook. Writes always ask first." }),
      h("div", { class: "nx-suggestions" },
        SUGGESTIONS.map((s) => h("button", { type: "button", class: "nx-suggestion", text: s, onclick: () => this.ask(s) }))),
    );
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
    if (!this.history.hidden && !this.history.querySelector(".nx-rename, .nx-conv-ask")) this.renderHistory();
    const messages = this.model.get("messages") || [];
    this.empty.hidden = messages.length > 0 || this.model.get("busy");
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
    this.title.textContent = current ? current.title : id ? "Conversation" : "New conversation";
    this.title.title = this.title.textContent; // the header cuts a long title; hovering shows it whole
    const model = this.model.get("model_name");
    const scope = this.model.get("scope");
    // The scope before the model: when the side area is narrow, what the panel can touch stays in view.
    const line = ["PLG leads", scope, model].filter(Boolean).join(" · ");
    this.subtitle.textContent = this.model.get("busy") ? "working…" : line;
    this.subtitle.title = scope ? `${line}\nReads and writes are limited to ${scope}.` : line;
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
        text: "The kernel restarted or stopped, so this panel is disconnected. Run this line in the notebook to bring it back with the same conversation:",
      }), h("code", { class: "nx-notice-code", text: "%load_ext nexusleads_lab" }));
      return;
    }
    const text = this.model.get("notice");
    this.notice.hidden = !text;
    this.notice.replaceChildren();
    if (text) {
      this.notice.append(icon("warn"), h("span", { text }),
        iconButton("close", "Dismiss", () => this.send({ type: "dismiss" })));
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
    if (item.steps && item.steps.length) node.append(this.renderSteps(item.steps, false, item.key, item.cost));
    else if (item.cost) node.append(h("div", { class: "nx-steps nx-cost", text: item.cost }));
    const response = item.response;
    if (item.error) {
      node.append(h("div", { class: `nx-error ${item.cancelled ? "nx-cancelled" : ""}` },
        icon(item.cancelled ? "stop" : "warn"), h("span", { text: item.error })));
    } else if (response && response.type === "dashboard") {
      node.append(this.renderDashboard(response, fresh));
    } else if (response && response.type === "confirm") {
      node.append(this.renderConfirm(response, item.outcome, item));
    } else if (response) {
      const body = h("div", { class: "nx-bubble nx-md" });
      node.append(body);
      if (fresh) this.typewrite(body, String(response.text ?? ""));
      else body.append(renderMarkdown(response.text));
    }
    if (item.notes && item.notes.length) {
      node.append(h("details", { class: "nx-notes" },
        h("summary", { text: plural(item.notes.length, "note") + " on this answer" }),
        h("ul", null, item.notes.map((n) => h("li", { text: n })))));
    }
    return node;
  }

  // -- steps ------------------------------------------------------------------------------------

  renderSteps(steps, live, key, cost) {
    const box = h("div", { class: `nx-steps ${live ? "nx-steps-live" : ""}` });
    const open = live || false;
    const failed = steps.filter((s) => s.status === "failed").length;
    const stopped = live ? 0 : steps.filter((s) => !s.status || s.status === "started").length;
    // A finished answer's line is its cost, worded in Python (ui.html.cost_text) so cell and panel agree.
    const ran = cost || `Ran ${plural(steps.length, "step")}`;
    const label = live
      ? `Working… ${plural(steps.length, "step")}`
      : `${ran}${failed ? ` · ${failed} failed` : ""}${stopped ? ` · ${stopped} stopped` : ""}`;
    const listNode = h("ol", { class: "nx-step-list", hidden: !open });
    const toggle = h("button", {
      type: "button", class: "nx-steps-toggle", "aria-expanded": String(open),
      onclick: () => {
        listNode.hidden = !listNode.hidden;
        toggle.setAttribute("aria-expanded", String(!listNode.hidden));
        box.classList.toggle("nx-open", !listNode.hidden);
      },
    }, live ? h("span", { class: "nx-spinner" }) : icon("check", "nx-ok"), h("span", { text: label }), icon("chevron", "nx-caret"));
    box.classList.toggle("nx-open", open);
    for (const step of steps) listNode.append(this.renderStep(step, live, key));
    box.append(toggle, listNode);
    return box;
  }

  renderStep(step, live) {
    const isQuery = step.tool === "psql";
    const what = isQuery ? firstLine(step.sql || "query") : step.tool === "read_file" ? `Read ${step.path || "file"}` : step.tool;
    const meta = [
      typeof step.rows === "number" ? plural(step.rows, "row") + (step.truncated ? "+" : "") : null,
      formatMs(step.ms),
    ].filter(Boolean).join(" · ");
    // A step still "started" in a finished answer was cut short by Stop.
    const status = !live && (step.status || "started") === "started" ? "stopped" : step.status || "started";
    const body = h("div", { class: "nx-step-body", hidden: true });
    const li = h("li", { class: `nx-step nx-${status}` });
    const head = h("button", {
      type: "button", class: "nx-step-head", "aria-expanded": "false",
      onclick: () => {
        if (!body.childNodes.length) this.fillStepBody(body, step);
        body.hidden = !body.hidden;
        head.setAttribute("aria-expanded", String(!body.hidden));
        li.classList.toggle("nx-open", !body.hidden);
        if (live) body.hidden ? this.liveOpen.delete(step.id) : this.liveOpen.add(step.id);
      },
    },
    status === "started" ? h("span", { class: "nx-spinner nx-small" })
      : icon({ failed: "cross", stopped: "stop" }[status] || (isQuery ? "db" : "file"), "nx-step-icon"),
    h("span", { class: "nx-step-what", text: what, title: isQuery ? step.sql || null : what }),
    meta ? h("span", { class: "nx-step-meta", text: meta }) : null);
    li.append(head, body);
    if (live && this.liveOpen.has(step.id)) {
      this.fillStepBody(body, step);
      body.hidden = false;
      li.classList.add("nx-open");
      head.setAttribute("aria-expanded", "true");
    }
    return li;
  }

  fillStepBody(body, step) {
    if (step.sql) body.append(h("pre", { class: "nx-sql", text: step.sql }));
    else if (step.path) body.append(h("pre", { class: "nx-sql", text: step.path }));
    const facts = [
      step.tool,
      typeof step.rows === "number" ? plural(step.rows, "row") + (step.truncated ? " (truncated)" : "") : null,
      formatMs(step.ms),
      step.result_id ? `DataFrame ${step.result_id}` : null,
    ].filter(Boolean);
    body.append(h("div", { class: "nx-step-facts", text: facts.join(" · ") }));
    if (step.error) body.append(h("div", { class: "nx-step-error", text: step.error }));
    if (step.sql) body.append(this.sqlActions(step.sql));
  }

  sqlActions(sql) {
    return h("div", { class: "nx-actions" },
      h("button", { type: "button", class: "nx-chip", onclick: () => this.copySql(sql) }, icon("copy"), "Copy SQL"),
      h("button", { type: "button", class: "nx-chip", onclick: () => this.insertCell(sql) }, icon("cell"), "Insert as cell"));
  }

  async copySql(sql) {
    const ok = await copyText(sql);
    this.toast(ok ? "ok" : "error", ok ? "SQL copied to the clipboard." : "The browser refused the clipboard; select the SQL and copy it by hand.");
  }

  insertCell(sql) {
    const source = String(this.model.get("sql_cell") || "{sql}").replace("{sql}", () => sql);
    const notebook = notebookOf(this.model);
    if (notebook) {
      try {
        const index = insertionIndex(notebook);
        notebook.shared.insertCell(index, { cell_type: "code", source, metadata: {} });
        const name = String(notebook.context.path || "the notebook").split("/").pop();
        this.toast("ok", `Inserted as cell ${index + 1} of ${name}.`);
        return;
      } catch (err) {
        console.warn("nexus panel: inserting a cell failed", err);
      }
    }
    copyText(source).then((ok) => this.toast(ok ? "info" : "error", ok
      ? "No notebook to insert into here: the cell text is on the clipboard, paste it into a cell."
      : "No notebook to insert into here, and the clipboard is blocked; copy the SQL from the step."));
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
    if (steps.length) parts.push(this.renderSteps(steps, true, "live"));
    const streamed = this.model.get("streaming") || "";
    if (!steps.length && !streamed) {
      parts.push(h("div", { class: "nx-dots", "aria-label": "Waiting for the answer" }, h("span"), h("span"), h("span")));
    }
    if (!this.typer.node) this.typer.node = h("div", { class: "nx-bubble nx-md nx-streaming" });
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
    typer.node.replaceChildren(renderMarkdown(typer.target.slice(0, typer.shown)), h("span", { class: "nx-caret-blink" }));
    if (near) this.scrollToBottom(false);
    typer.raf = requestAnimationFrame(() => this.typeFrame());
  }

  // The answer that just arrived types out, continuing from what the stream already showed.
  typewrite(node, text) {
    const streamed = this.lastTyped || this.typer.target.slice(0, this.typer.shown);
    let shown = streamed && text.startsWith(streamed) ? streamed.length : 0;
    this.lastTyped = "";
    const step = Math.max(2, Math.ceil((text.length - shown) / 45));
    const frame = () => {
      shown = Math.min(text.length, shown + step);
      const near = this.nearBottom();
      node.replaceChildren(renderMarkdown(text.slice(0, shown)));
      if (shown < text.length) {
        node.append(h("span", { class: "nx-caret-blink" }));
        requestAnimationFrame(frame);
      }
      if (near) this.scrollToBottom(false);
    };
    frame();
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
          h("pre", { class: "nx-sql", text: section.sql }), this.sqlActions(section.sql));
        head.append(h("button", {
          type: "button", class: "nx-source", title: "Show the SQL behind this",
          onclick: () => { sqlBox.hidden = !sqlBox.hidden; },
        }, icon("db"), section.source ? section.source : "SQL"));
        frame.append(head, sqlBox);
      } else frame.append(head);
    }
    frame.append(...content.filter(Boolean));
    return frame;
  }

  // -- confirmations ----------------------------------------------------------------------------

  renderConfirm(resp, outcome, item = {}) {
    const expired = !outcome && resp.expires_at && Date.parse(resp.expires_at) < Date.now();
    const state = outcome ? outcome.status : expired ? "expired" : "pending";
    const card = h("div", { class: `nx-confirm nx-${state}`, dataset: { id: resp.id } });
    card.append(h("div", { class: "nx-confirm-head" }, icon("warn"), h("span", { class: "nx-confirm-title", text: resp.title || "Confirm this change", title: resp.title || null })));
    if (resp.summary) card.append(h("div", { class: "nx-confirm-summary", text: resp.summary }));
    card.append(h("pre", { class: "nx-sql nx-confirm-sql", text: resp.sql || "" }));
    if (typeof resp.dry_run_rows === "number") card.append(...[previewLine(resp), previewBlock(resp)].filter(Boolean));
    // Confirm stays disabled when it cannot work, is stale or would change nothing: the kernel says why
    // (ui.html.confirm_blocked, the cell card's words).
    const blocked = item.blocked || (resp.dry_run_error ? `Confirm cannot run: ${resp.dry_run_error}` : "");
    if (blocked) card.append(h("div", { class: "nx-dry nx-dry-error", text: blocked }));
    const confirm = h("button", {
      type: "button", class: "nx-btn nx-btn-primary nx-confirm-yes", text: "Confirm", disabled: Boolean(blocked),
      title: blocked || null,
    });
    const cancel = h("button", { type: "button", class: "nx-btn nx-confirm-no", text: "Cancel" });
    const status = h("div", { class: "nx-outcome" });
    const settle = (text, cls) => {
      confirm.disabled = true;
      cancel.disabled = true;
      status.className = `nx-outcome ${cls || ""}`;
      status.replaceChildren(text);
    };
    confirm.addEventListener("click", () => {
      settle("Running the change…", "nx-running");
      this.send({ type: "confirm", id: resp.id, sql: resp.sql });
    });
    cancel.addEventListener("click", () => {
      settle("Cancelling…", "nx-running");
      this.send({ type: "cancel_confirm", id: resp.id });
    });
    card.append(h("div", { class: "nx-confirm-actions" }, confirm, cancel), status);
    if (state === "running") settle("Running the change…", "nx-running");
    else if (state === "confirmed") settle(`Done: ${plural(outcome.rows_affected ?? 0, "row")} changed.`, "nx-done");
    else if (state === "failed") settle(`Nothing was changed: ${outcome.error || "the change failed"}`, "nx-failed");
    else if (state === "cancelled") settle("Cancelled: nothing was changed.", "nx-cancel");
    else if (state === "expired") settle("This proposal has expired; ask again for a fresh one.", "nx-cancel");
    return card;
  }

  // -- compose ----------------------------------------------------------------------------------

  renderCompose() {
    const busy = !!this.model.get("busy");
    this.sendBtn.replaceChildren(icon(busy ? "stop" : "send"));
    this.sendBtn.classList.toggle("nx-stop", busy);
    this.sendBtn.title = busy ? "Stop" : "Send (Enter)";
    this.sendBtn.setAttribute("aria-label", busy ? "Stop" : "Send");
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
      this.renderHistory(true);
    }
  }

  renderHistory(force) {
    const convs = this.model.get("conversations") || [];
    const current = this.model.get("conversation_id");
    const sig = JSON.stringify([convs, current]);
    if (!force && sig === this.historySig) return;
    this.historySig = sig;
    const rows = convs.map((c) => this.historyRow(c, c.id === current));
    this.history.replaceChildren(
      h("div", { class: "nx-history-head" },
        h("span", { text: "Conversations" }),
        h("button", { type: "button", class: "nx-chip", onclick: () => { this.send({ type: "new" }); this.toggleHistory(false); } }, icon("plus"), "New"),
        iconButton("close", "Close", () => this.toggleHistory(false))),
      rows.length ? h("ul", { class: "nx-history-list" }, rows) : h("div", { class: "nx-history-empty", text: "No conversations yet." }),
    );
  }

  historyRow(conv, active) {
    const row = h("li", { class: `nx-conv ${active ? "nx-active" : ""}`, dataset: { id: conv.id } });
    const open = h("button", {
      type: "button", class: "nx-conv-open",
      onclick: () => { if (!active) this.send({ type: "open", id: conv.id }); this.toggleHistory(false); },
    },
    h("span", { class: "nx-conv-title", text: conv.title, title: conv.title }),
    h("span", { class: "nx-conv-meta", text: `${relativeTime(conv.updated_at)} · ${plural(conv.messages || 0, "message")}` }));
    const rename = iconButton("edit", "Rename", () => {
      const input = h("input", { class: "nx-rename", value: conv.title, "aria-label": "New title" });
      let finished = false;
      const done = (save) => {
        if (finished) return;
        finished = true;
        const title = input.value.trim();
        if (save && title && title !== conv.title) this.send({ type: "rename", id: conv.id, title });
        this.renderHistory(true);
      };
      input.addEventListener("keydown", (e) => {
        e.stopPropagation();
        if (e.key === "Enter") done(true);
        else if (e.key === "Escape") done(false);
      });
      input.addEventListener("blur", () => done(true));
      row.replaceChildren(input);
      input.focus();
      input.select();
    });
    const remove = iconButton("trash", "Delete", () => {
      row.classList.add("nx-asking");
      row.replaceChildren(
        h("span", { class: "nx-conv-ask", text: `Delete “${shortTitle(conv.title)}”?`, title: conv.title }),
        h("button", { type: "button", class: "nx-btn nx-btn-danger", text: "Delete", onclick: () => {
          this.send({ type: "delete", id: conv.id });
          row.replaceChildren(h("span", { class: "nx-conv-gone", text: "Deleting…" }));
        } }),
        h("button", { type: "button", class: "nx-btn", text: "Keep", onclick: () => this.renderHistory(true) }));
    }, "nx-danger");
    row.append(open, h("div", { class: "nx-conv-actions" }, rename, remove));
    return row;
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

// Enough of a title to tell conversations apart in one line: "Weekly review of the Kafka…".
function shortTitle(title, max = 28) {
  const text = String(title ?? "").trim();
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const space = cut.lastIndexOf(" ");
  return (space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,.;:–—-]+$/, "") + "…";
}

function firstLine(text) {
  const line = String(text).trim().split("\n")[0];
  return line.length > 90 ? line.slice(0, 89) + "…" : line;
}

// ---------------------------------------------------------------------------------------------
// dashboard sections

function renderWidgets(section, panel) {
  const grid = h("div", { class: "nx-kpis" }, (section.items || []).map((item) =>
    h("div", { class: "nx-kpi" },
      h("div", { class: "nx-kpi-title", text: item.title, title: item.title }),
      h("div", { class: "nx-kpi-value", text: formatCell(item.value) }),
      item.subtext ? h("div", { class: "nx-kpi-sub", text: item.subtext }) : null)));
  return panel.sectionFrame("nx-widgets", section.label, section, grid);
}

function renderBars(section, panel) {
  const items = section.items || [];
  const max = Math.max(0, ...items.map((i) => (typeof i.value === "number" ? i.value : 0)));
  const rows = items.map((item) => {
    const value = typeof item.value === "number" ? item.value : 0;
    const width = max > 0 ? Math.max(0.5, (Math.max(0, value) / max) * 100) : 0;
    return h("div", { class: "nx-bar-row", title: `${item.name}: ${formatCell(item.value)}` },
      h("div", { class: "nx-bar-name", text: item.name, title: item.name }),
      h("div", { class: "nx-bar-track" }, h("div", { class: "nx-bar-fill", style: { width: `${width}%` } })),
      h("div", { class: "nx-bar-value", text: formatCell(item.value) }));
  });
  return panel.sectionFrame("nx-bars", section.label, section, h("div", { class: "nx-bar-list" }, rows), more(section, items.length));
}

function more(section, shown) {
  const total = section.total_rows;
  return typeof total === "number" && total > shown
    ? h("div", { class: "nx-more", text: `Showing ${formatNumber(shown)} of ${plural(total, "row")}; the full result is a DataFrame in the notebook.` })
    : null;
}

const SERIES_COLORS = ["var(--nx-c1)", "var(--nx-c2)", "var(--nx-c3)", "var(--nx-c4)", "var(--nx-c5)", "var(--nx-c6)"];

function renderLine(section, panel) {
  const points = (section.points || []).filter((p) => typeof p.y === "number");
  if (!points.length) return panel.sectionFrame("nx-line", section.label, section, h("div", { class: "nx-more", text: "No points to draw." }));
  const names = section.series && section.series.length ? section.series : [null];
  const numericX = section.x_type === "number" && points.every((p) => typeof p.x === "number");
  const xs = [];
  const xIndex = new Map();
  for (const p of points) if (!xIndex.has(p.x)) { xIndex.set(p.x, xs.length); xs.push(p.x); }
  const W = 360, H = 150, L = 34, R = 8, T = 8, B = 22;
  const ys = points.map((p) => p.y);
  const yTicks = niceTicks(Math.min(0, ...ys), Math.max(...ys));
  const lo = yTicks[0], hi = yTicks[yTicks.length - 1];
  const xMin = numericX ? Math.min(...xs) : 0, xMax = numericX ? Math.max(...xs) : Math.max(1, xs.length - 1);
  const px = (x) => L + ((numericX ? x : xIndex.get(x)) - xMin) / ((xMax - xMin) || 1) * (W - L - R);
  const py = (y) => T + (1 - (y - lo) / ((hi - lo) || 1)) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "nx-line-chart", role: "img" });
  chart.append(svg("title", {}, document.createTextNode(section.label || "Line chart")));
  for (const v of yTicks) {
    const y = py(v);
    chart.append(svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "nx-grid" }));
    const label = svg("text", { x: L - 5, y: y + 3, class: "nx-axis", "text-anchor": "end" });
    label.textContent = compact(v);
    chart.append(label);
  }
  const ticks = xs.length <= 6 ? xs.map((_, i) => i) : [0, Math.floor((xs.length - 1) / 2), xs.length - 1];
  for (const i of ticks) {
    const t = svg("text", { x: px(xs[i]), y: H - 6, class: "nx-axis", "text-anchor": i === 0 ? "start" : i === xs.length - 1 ? "end" : "middle" });
    t.textContent = shortLabel(xs[i]);
    chart.append(t);
  }
  names.forEach((name, si) => {
    const pts = points.filter((p) => (name === null ? true : p.series === name));
    const color = SERIES_COLORS[si % SERIES_COLORS.length];
    chart.append(svg("polyline", { points: pts.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" "), class: "nx-line-path", style: `stroke:${color}` }));
    if (pts.length <= 60) {
      for (const p of pts) {
        const dot = svg("circle", { cx: px(p.x).toFixed(1), cy: py(p.y).toFixed(1), r: 2.6, class: "nx-line-dot", style: `fill:${color}` });
        dot.append(svg("title", {}, document.createTextNode(`${name ? name + " · " : ""}${p.x}: ${formatCell(p.y)}`)));
        chart.append(dot);
      }
    }
  });
  const legend = names[0] === null ? null : h("div", { class: "nx-legend" }, names.map((n, i) =>
    h("span", { class: "nx-legend-item" }, h("i", { style: { background: SERIES_COLORS[i % SERIES_COLORS.length] } }), n)));
  return panel.sectionFrame("nx-line", section.label, section, chart, legend);
}

// Round axis steps (1, 2, 5 x 10^n) from lo to hi, about ``count`` of them.
function niceTicks(lo, hi, count = 4) {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  const ticks = [];
  for (let v = Math.floor(lo / step) * step; v < hi + step * 0.999 && ticks.length < 12; v += step) ticks.push(Math.round(v / step) * step);
  return ticks;
}

function compact(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
  return String(Number(v.toPrecision(3)));
}

function shortLabel(x) {
  const s = String(x);
  return s.length > 12 ? s.slice(0, 11) + "…" : s;
}

// Decimals formatNumber would show for one value (0 for whole numbers).
function shownDecimals(value) {
  if (typeof value !== "number" || !Number.isFinite(value) || Number.isInteger(value)) return 0;
  const fraction = formatNumber(value).split(".")[1];
  return fraction ? fraction.length : 0;
}

// One column's numbers with the same decimals, so they line up: 12.5, 3, 7.25 -> 12.50, 3.00, 7.25.
function columnFormatter(values) {
  const digits = Math.max(0, ...values.map(shownDecimals));
  if (!digits) return formatCell;
  return (value) => typeof value === "number" && Number.isFinite(value)
    ? value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : formatCell(value);
}

// Values that read wrong when broken across lines: dates, times, numbers, ids.
const UNBREAKABLE = /^(?:\d{4}-\d{2}-\d{2}(?:[ T][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?|[-+]?[\d,.]+%?|—)$/;

function renderTable(section, panel) {
  const columns = section.columns || [];
  const rows = section.rows || [];
  const numeric = columns.map((c) => rows.length > 0 && rows.every((r) => r[c] === null || r[c] === undefined || typeof r[c] === "number"));
  const formats = columns.map((c, j) => (numeric[j] ? columnFormatter(rows.map((r) => r[c])) : formatCell));
  const table = h("table", { class: "nx-table" },
    h("thead", null, h("tr", null, columns.map((c, j) => h("th", { class: numeric[j] ? "nx-num" : null, text: c, title: c })))),
    h("tbody", null, rows.map((r) => h("tr", null, columns.map((c, j) => {
      const text = formats[j](r[c]);
      const cls = numeric[j] ? "nx-num" : UNBREAKABLE.test(text) ? "nx-nowrap" : null;
      return h("td", { class: cls, text });
    })))));
  return panel.sectionFrame("nx-table-section", section.title || section.label, section,
    h("div", { class: "nx-table-wrap" }, table), more(section, rows.length));
}

function renderPills(section, panel) {
  const pills = (section.items || []).map((item) => {
    const color = String(item.color || "gray");
    const named = NAMED_COLORS.has(color);
    const style = !named && HEX_COLOR.test(color) ? { "--nx-pill": color } : null;
    return h("span", { class: `nx-pill ${named ? `nx-pill-${color}` : "nx-pill-custom"}`, style },
      h("i", { class: "nx-pill-dot" }), h("span", { class: "nx-pill-label", text: item.label, title: item.label }),
      h("span", { class: "nx-pill-count", text: formatNumber(item.count) }));
  });
  return panel.sectionFrame("nx-pills", section.label, section, h("div", { class: "nx-pill-list" }, pills), more(section, pills.length));
}

const SECTION_RENDERERS = { widgets: renderWidgets, bars: renderBars, line: renderLine, table: renderTable, pills: renderPills };

export default {
  render({ model, el }) {
    const panel = new Panel(model, el);
    return () => panel.dispose();
  },
};

export { renderMarkdown };
