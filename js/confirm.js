// The confirm card (ConfirmCard): the proposed SQL, its dry run, Confirm / Cancel.
// All data goes in through textContent, never innerHTML.

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function plural(n, word) {
  return `${Number(n).toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;
}

function outcomeText(status, rows, message) {
  switch (status) {
    case "running": return "Running…";
    case "confirmed": return `Done: ${plural(rows ?? 0, "row")} changed.`;
    case "cancelled": return "Cancelled: nothing was changed.";
    case "failed": return `The change failed and nothing was written: ${message}`;
    case "error": return message || "This confirmation cannot run.";
    default: return "";
  }
}

export default {
  render({ model, el: host }) {
    const proposal = model.get("proposal") || {};
    const root = el("div", "nxl nxl-answer nxl-confirm nxl-confirm-live");
    const head = el("div", "nxl-confirm-head");
    head.append(el("span", "nxl-badge", "Confirm"), el("span", null, proposal.title || "Proposed change"));
    const summary = el("div", "nxl-confirm-summary", proposal.summary || "");
    const sql = el("pre", "nxl-sql", proposal.sql || "");
    const dry = el("div", "nxl-dry");
    if (proposal.dry_run_error) {
      dry.classList.add("nxl-dry-error");
      dry.textContent = `The dry run failed: ${proposal.dry_run_error}`;
    } else if (proposal.dry_run_rows != null) {
      const n = proposal.dry_run_rows;
      dry.append("Dry run: this would change ", el("strong", null, n.toLocaleString("en-US")), ` row${n === 1 ? "" : "s"}.`);
    } else {
      dry.hidden = true;
    }
    const actions = el("div", "nxl-actions");
    const confirmButton = el("button", "nxl-btn nxl-btn-primary", "Confirm");
    const cancelButton = el("button", "nxl-btn", "Cancel");
    confirmButton.type = cancelButton.type = "button";
    actions.append(confirmButton, cancelButton);
    const outcome = el("div", "nxl-outcome");
    root.append(head, summary, sql, dry, actions, outcome);
    host.append(root);

    let clicked = false; // one click only, even before the kernel answers
    function send(action) {
      if (clicked || model.get("status") !== "pending") return;
      clicked = true;
      confirmButton.disabled = cancelButton.disabled = true;
      outcome.dataset.status = "running";
      outcome.textContent = outcomeText("running");
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
      confirmButton.disabled = !pending || Boolean(proposal.dry_run_error);
      cancelButton.disabled = !pending;
      if (status === "pending") {
        if (!clicked) outcome.textContent = "";
        return;
      }
      outcome.dataset.status = status;
      outcome.textContent = outcomeText(status, model.get("rows_affected"), model.get("message"));
    }
    model.on("change:status", update);
    model.on("change:message", update);
    update();

    return () => {
      model.off("change:status", update);
      model.off("change:message", update);
      confirmButton.removeEventListener("click", onConfirm);
      cancelButton.removeEventListener("click", onCancel);
    };
  },
};
