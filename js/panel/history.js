import { h, icon, iconButton } from "./dom.js";
import { plural, relativeTime, shortTitle } from "./format.js";

// The conversations list: open, rename in place, delete after asking.

export function renderHistory(panel, force) {
  const convs = panel.model.get("conversations") || [];
  const current = panel.model.get("conversation_id");
  const sig = JSON.stringify([convs, current]);
  if (!force && sig === panel.historySig) return;
  panel.historySig = sig;
  const rows = convs.map((c) => historyRow(panel, c, c.id === current));
  panel.history.replaceChildren(
    h("div", { class: "nx-history-head" },
      h("span", { text: "Conversations" }),
      h("button", { type: "button", class: "nx-chip", onclick: () => { panel.send({ type: "new" }); panel.toggleHistory(false); } }, icon("plus"), "New"),
      iconButton("close", "Close", () => panel.toggleHistory(false))),
    rows.length ? h("ul", { class: "nx-history-list" }, rows) : h("div", { class: "nx-history-empty", text: "No conversations yet." }),
  );
}

export function historyRow(panel, conv, active) {
  const row = h("li", { class: `nx-conv ${active ? "nx-active" : ""}`, dataset: { id: conv.id } });
  const open = h("button", {
    type: "button", class: "nx-conv-open",
    onclick: () => { if (!active) panel.send({ type: "open", id: conv.id }); panel.toggleHistory(false); },
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
      if (save && title && title !== conv.title) panel.send({ type: "rename", id: conv.id, title });
      renderHistory(panel, true);
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
        panel.send({ type: "delete", id: conv.id });
        row.replaceChildren(h("span", { class: "nx-conv-gone", text: "Deleting…" }));
      } }),
      h("button", { type: "button", class: "nx-btn", text: "Keep", onclick: () => renderHistory(panel, true) }));
  }, "nx-danger");
  row.append(open, h("div", { class: "nx-conv-actions" }, rename, remove));
  return row;
}
