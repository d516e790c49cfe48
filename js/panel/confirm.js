import { h, icon } from "./dom.js";
import { safePreviewHtml } from "./html.js";

// A proposed write's card: the canonical SQL, the kernel's preview, Confirm / Cancel, the outcome.

export function renderConfirm(panel, resp, outcome, item = {}) {
  const expired = !outcome && resp.expires_at && Date.parse(resp.expires_at) < Date.now();
  const state = outcome ? outcome.status : expired ? "expired" : "pending";
  const card = h("div", { class: `nx-confirm nx-${state}`, dataset: { id: resp.id } });
  card.append(h("div", { class: "nx-confirm-head" }, icon("warn"), h("span", { class: "nx-confirm-title", text: resp.title || panel.say("confirm_title"), title: resp.title || null })));
  if (resp.summary) card.append(h("div", { class: "nx-confirm-summary", text: resp.summary }));
  card.append(h("pre", { class: "nx-sql nx-confirm-sql", text: resp.sql || "" }));
  // The preview comes rendered by the kernel (ui.html.preview_html, the cell card's table), styled by answer.css.
  if (item.preview_html) card.append(h("div", { class: "nxl nx-confirm-preview" }, safePreviewHtml(item.preview_html)));
  // Confirm stays disabled when it cannot work, is stale or would change nothing: the kernel says why
  // (ui.html.confirm_blocked, the cell card's words).
  const blocked = item.blocked || "";
  if (blocked) card.append(h("div", { class: "nx-dry nx-dry-error", text: blocked }));
  const confirm = h("button", {
    type: "button", class: "nx-btn nx-btn-primary nx-confirm-yes", text: panel.say("confirm"), disabled: Boolean(blocked),
    title: blocked || null,
  });
  const cancel = h("button", { type: "button", class: "nx-btn nx-confirm-no", text: panel.say("cancel") });
  const status = h("div", { class: "nx-outcome" });
  const settle = (text, cls) => {
    confirm.disabled = true;
    cancel.disabled = true;
    status.className = `nx-outcome ${cls || ""}`;
    status.replaceChildren(text);
  };
  confirm.addEventListener("click", () => {
    settle(panel.say("running_change"), "nx-running");
    panel.send({ type: "confirm", id: resp.id, sql: resp.sql });
  });
  cancel.addEventListener("click", () => {
    settle(panel.say("cancelling"), "nx-running");
    panel.send({ type: "cancel_confirm", id: resp.id });
  });
  card.append(h("div", { class: "nx-confirm-actions" }, confirm, cancel, status));
  if (state === "running") settle(panel.say("running_change"), "nx-running");
  // An outcome's words come from the kernel (words.outcome_text, the cell card's words).
  else if (state === "confirmed") settle(outcome.text, "nx-done");
  else if (state === "failed") settle(outcome.text, "nx-failed");
  else if (state === "cancelled") settle(outcome.text, "nx-cancel");
  else if (state === "expired") settle(panel.say("expired"), "nx-cancel");
  return card;
}
