// The confirm card (ConfirmCard): the proposed SQL, its preview (per statement, the rows it
// changes, before -> after), Confirm / Cancel, in the kernel's words (words.UI, outcome_text).
// Data goes in through textContent; the one exception is the preview, which the kernel renders
// and escapes (see previewFragment).

import { h } from "./panel/dom.js";
import { say } from "./panel/format.js";
import { refitChartsOnResize } from "./panel/refit.js";

const el = (tag, className, text) => h(tag, { class: className, text });

// The preview arrives rendered: the kernel renders it once, for this card, the panel's and the
// saved notebook's (ui/html.py preview_html, every value escaped there), so it goes in as is.
// A <template> parses without loading or running anything.
function previewFragment(html) {
  const template = document.createElement("template");
  template.innerHTML = String(html || "");
  return template.content;
}

export default {
  render({ model, el: host }) {
    refitChartsOnResize();
    const proposal = model.get("proposal") || {};
    const words = model.get("words"); // words.UI's few the card shows
    const root = el("div", "nxl nxl-answer nxl-confirm nxl-confirm-live");
    const head = el("div", "nxl-confirm-head");
    head.append(el("span", "nxl-badge", say(words, "confirm")), el("span", null, proposal.title || say(words, "confirm_title")));
    const summary = el("div", "nxl-confirm-summary", proposal.summary || "");
    const sql = el("pre", "nxl-sql", proposal.sql || "");
    const preview = [previewFragment(model.get("preview_html"))];
    // Confirm stays disabled (see update) when it cannot work or would do nothing: a failed dry
    // run (e.g. no writer role), a stale replayed proposal, a change of no rows. The kernel
    // says why (ConfirmCard.blocked) and refuses such a click itself as well.
    const blocked = model.get("blocked");
    if (blocked) preview.push(el("div", "nxl-dry nxl-dry-error", blocked));
    const actions = el("div", "nxl-actions");
    const confirmButton = el("button", "nxl-btn nxl-btn-primary", say(words, "confirm"));
    const cancelButton = el("button", "nxl-btn", say(words, "cancel"));
    confirmButton.type = cancelButton.type = "button";
    actions.append(confirmButton, cancelButton);
    const outcome = el("div", "nxl-outcome");
    root.append(head, summary, sql, ...preview.filter(Boolean), actions, outcome);
    host.append(root);

    let clicked = false; // one click only, even before the kernel answers
    function send(action) {
      if (clicked || model.get("status") !== "pending") return;
      clicked = true;
      confirmButton.disabled = cancelButton.disabled = true;
      outcome.dataset.status = "running";
      outcome.textContent = say(words, "running_change");
      // The exact SQL on screen goes back: the kernel runs it only if it is what was proposed.
      model.send({ action, sql: proposal.sql });
    }
    const onConfirm = () => send("confirm");
    const onCancel = () => send("cancel");
    confirmButton.addEventListener("click", onConfirm);
    cancelButton.addEventListener("click", onCancel);

    function update() {
      const status = model.get("status");
      const pending = status === "pending" && !clicked;
      confirmButton.disabled = !pending || Boolean(blocked);
      cancelButton.disabled = !pending;
      if (status === "pending") {
        if (!clicked) outcome.textContent = "";
        return;
      }
      outcome.dataset.status = status;
      outcome.textContent = model.get("said"); // worded in Python (words.outcome_text), as everywhere
    }
    model.on("change:status", update);
    model.on("change:message", update);
    model.on("change:said", update);
    update();

    return () => {
      model.off("change:status", update);
      model.off("change:message", update);
      model.off("change:said", update);
      confirmButton.removeEventListener("click", onConfirm);
      cancelButton.removeEventListener("click", onCancel);
    };
  },
};
