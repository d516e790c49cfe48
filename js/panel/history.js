import { h, icon, iconButton } from "./dom.js";
import { relativeTime, shortTitle } from "./format.js";

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
      h("span", { text: panel.say("conversations") }),
      h("button", { type: "button", class: "nx-chip", onclick: () => { panel.send({ type: "new" }); panel.toggleHistory(false); } }, icon("plus"), panel.say("new")),
      iconButton("close", panel.say("close"), () => panel.toggleHistory(false))),
    rows.length ? h("ul", { class: "nx-history-list" }, rows) : h("div", { class: "nx-history-empty", text: panel.say("no_conversations") }),
  );
}

export function historyRow(panel, conv, active) {
  const row = h("li", { class: `nx-conv ${active ? "nx-active" : ""}`, dataset: { id: conv.id } });
  const open = h("button", {
    type: "button", class: "nx-conv-open",
    onclick: () => { if (!active) panel.send({ type: "open", id: conv.id }); panel.toggleHistory(false); },
  },
  h("span", { class: "nx-conv-title", text: conv.title, title: conv.title }),
  h("span", { class: "nx-conv-meta", text: [relativeTime(conv.updated_at, panel.model.get("words")), conv.size].filter(Boolean).join(" · ") }));
  const rename = iconButton("edit", panel.say("rename"), () => {
    const input = h("input", { class: "nx-rename", value: conv.title, "aria-label": panel.say("new_title") });
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
  const remove = iconButton("trash", panel.say("delete"), () => {
    row.classList.add("nx-asking");
    row.replaceChildren(
      h("span", { class: "nx-conv-ask", text: panel.say("delete_ask", { title: shortTitle(conv.title) }), title: conv.title }),
      h("button", { type: "button", class: "nx-btn nx-btn-danger", text: panel.say("delete"), onclick: () => {
        panel.send({ type: "delete", id: conv.id });
        row.replaceChildren(h("span", { class: "nx-conv-gone", text: panel.say("deleting") }));
      } }),
      h("button", { type: "button", class: "nx-btn", text: panel.say("keep"), onclick: () => renderHistory(panel, true) }));
  }, "nx-danger");
  row.append(open, h("div", { class: "nx-conv-actions" }, rename, remove));
  return row;
}
