// The confirm card (ConfirmCard): the proposed SQL, its preview (per statement, the rows it
// changes, before -> after), Confirm / Cancel. All data goes in through textContent, never innerHTML.

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function box(tag, className, ...children) {
  const node = el(tag, className);
  node.append(...children);
  return node;
}

function plural(n, word) {
  return `${Number(n).toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;
}

// -- the preview: the same wording and table as the static twin (nexusleads_lab/ui/html.py) ----

const SHORT_VALUE = 16; // values up to this long never wrap (ids, enums such as no_response); longer ones wrap anywhere
const VERBS = { update: ["changes", "in"], insert: ["adds", "to"], delete: ["deletes", "from"] };

function rowsWord(n) {
  return n === 1 ? "row" : "rows";
}

function previewValue(value) {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "boolean") return value ? "true" : "false";
  return String(value);
}

function valueSpan(value, className) {
  const text = previewValue(value);
  const span = el("span", className, text);
  if (value === null || value === undefined) span.classList.add("nxl-pv-null");
  if (text.length <= SHORT_VALUE) span.classList.add("nxl-pv-short");
  return span;
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

function previewLine(proposal) {
  const n = proposal.dry_run_rows;
  const statements = proposal.preview || [];
  const line = el("div", "nxl-dry");
  let verb = "changes";
  let where = "";
  if (statements.length === 1) {
    const [v, prep] = VERBS[statements[0].action] || VERBS.update;
    verb = v;
    where = ` ${prep} ${statements[0].table}`;
  } else if (statements.length > 1) {
    where = ` in ${statements.length} statements`;
  }
  line.append(`Preview: this ${verb} `, el("strong", null, n.toLocaleString("en-US")), ` ${rowsWord(n)}${where}.`);
  return line;
}

function statementPreview(stmt, number) {
  const action = stmt.action || "";
  const rows = stmt.rows || 0;
  const sample = stmt.sample || [];
  const keys = stmt.keys || [];
  const columns = previewColumns(stmt);
  if (!sample.length && number == null) return null;
  const block = el("div", "nxl-pv-stmt");
  block.dataset.action = action;
  if (number != null) block.append(el("div", "nxl-pv-head", `${number}. ${action} ${stmt.table}: ${plural(rows, "row")}`));
  if (!sample.length) return block;
  const body = el("tbody");
  for (const row of sample) {
    const key = row.key || {};
    const before = row.before || {};
    const after = row.after || {};
    const tr = el("tr");
    tr.dataset.action = action;
    for (const k of keys) tr.append(box("td", "nxl-pv-key", valueSpan(key[k], "nxl-pv-value")));
    for (const c of columns) {
      if (action === "update" && before[c] !== after[c]) {
        tr.append(box("td", "nxl-pv-changed",
          valueSpan(before[c], "nxl-pv-before"), el("span", "nxl-pv-arrow", " → "), valueSpan(after[c], "nxl-pv-after")));
      } else {
        tr.append(box("td", action === "update" ? "nxl-pv-same" : null,
          valueSpan(action === "delete" ? before[c] : after[c], "nxl-pv-value")));
      }
    }
    body.append(tr);
  }
  const head = box("tr", null, ...keys.map((k) => el("th", "nxl-pv-key", k)), ...columns.map((c) => el("th", null, c)));
  block.append(box("div", "nxl-pv-wrap", box("table", "nxl-pv-table", box("thead", null, head), body)));
  const more = rows - sample.length;
  if (more > 0) block.append(el("div", "nxl-pv-more", `and ${more.toLocaleString("en-US")} more ${rowsWord(more)}`));
  return block;
}

function previewBlock(proposal) {
  const statements = proposal.preview || [];
  const blocks = statements.map((s, i) => statementPreview(s, statements.length > 1 ? i + 1 : null)).filter(Boolean);
  if (!blocks.length) return null;
  return box("div", "nxl-preview", ...blocks);
}

export default {
  render({ model, el: host }) {
    const proposal = model.get("proposal") || {};
    const root = el("div", "nxl nxl-answer nxl-confirm nxl-confirm-live");
    const head = el("div", "nxl-confirm-head");
    head.append(el("span", "nxl-badge", "Confirm"), el("span", null, proposal.title || "Proposed change"));
    const summary = el("div", "nxl-confirm-summary", proposal.summary || "");
    const sql = el("pre", "nxl-sql", proposal.sql || "");
    const preview = [];
    if (proposal.dry_run_rows != null) preview.push(previewLine(proposal), previewBlock(proposal));
    // Confirm stays disabled (see update) when it cannot work or would do nothing: a failed dry
    // run (e.g. no writer role), a stale replayed proposal, a change of no rows. The kernel
    // says why (ConfirmCard.blocked) and refuses such a click itself as well.
    const blocked = model.get("blocked");
    if (blocked) preview.push(el("div", "nxl-dry nxl-dry-error", blocked));
    const actions = el("div", "nxl-actions");
    const confirmButton = el("button", "nxl-btn nxl-btn-primary", "Confirm");
    const cancelButton = el("button", "nxl-btn", "Cancel");
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
      outcome.textContent = "Running…";
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
