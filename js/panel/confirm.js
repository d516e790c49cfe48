import { h, icon } from "./dom.js";
import { plural } from "./format.js";
import { safePreviewHtml } from "./html.js";

// A proposed write's card: the canonical SQL, the kernel's preview, Confirm / Cancel, the outcome.

export function renderConfirm(panel, resp, outcome, item = {}) {
  const expired = !outcome && resp.expires_at && Date.parse(resp.expires_at) < Date.now();
  const state = outcome ? outcome.status : expired ? "expired" : "pending";
  const card = h("div", { class: `nx-confirm nx-${state}`, dataset: { id: resp.id } });
  card.append(h("div", { class: "nx-confirm-head" }, icon("warn"), h("span", { class: "nx-confirm-title", text: resp.title || "Confirm this change", title: resp.title || null })));
  if (resp.summary) card.append(h("div", { class: "nx-confirm-summary", text: resp.summary }));
  card.append(h("pre", { class: "nx-sql nx-confirm-sql", text: resp.sql || "" }));
  // The preview comes rendered by the kernel (ui.html.preview_html, the cell card's table), styled by answer.css.
  if (item.preview_html) card.append(h("div", { class: "nxl nx-confirm-preview" }, safePreviewHtml(item.preview_html)));
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
    panel.send({ type: "confirm", id: resp.id, sql: resp.sql });
  });
  cancel.addEventListener("click", () => {
    settle("Cancelling…", "nx-running");
    panel.send({ type: "cancel_confirm", id: resp.id });
  });
  card.append(h("div", { class: "nx-confirm-actions" }, confirm, cancel, status));
  if (state === "running") settle("Running the change…", "nx-running");
  // An outcome's words come from the kernel (ui.html.outcome_text, the cell card's words).
  else if (state === "confirmed") settle(outcome.text || `Done: ${plural(outcome.rows_affected ?? 0, "row")} changed.`, "nx-done");
  else if (state === "failed") settle(outcome.text || `Nothing was changed: ${outcome.error || "the change failed"}`, "nx-failed");
  else if (state === "cancelled") settle(outcome.text || "Cancelled: nothing was changed.", "nx-cancel");
  else if (state === "expired") settle("This proposal has expired; ask again for a fresh one.", "nx-cancel");
  return card;
}
