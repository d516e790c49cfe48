import { h } from "./dom.js";
import { formatNumber, plural } from "./format.js";

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

export function previewLine(resp) {
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

export function previewBlock(resp) {
  const statements = resp.preview || [];
  const blocks = statements.map((s, i) => statementPreview(s, statements.length > 1 ? i + 1 : null)).filter(Boolean);
  return blocks.length ? h("div", { class: "nx-preview" }, blocks) : null;
}
