// Numbers, counts, times and short texts as the panel shows them.

// ---------------------------------------------------------------------------------------------
// values

export function formatNumber(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString("en-US", { maximumFractionDigits: digits });
}

export function formatCell(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function plural(n, one, many) {
  return `${formatNumber(n)} ${n === 1 ? one : many || one + "s"}`;
}

export function formatMs(ms) {
  if (typeof ms !== "number") return null;
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

export function relativeTime(iso) {
  const then = Date.parse(iso);
  if (!Number.isFinite(then)) return "";
  const s = Math.max(0, (Date.now() - then) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 86400 * 7) return `${Math.floor(s / 86400)} d ago`;
  return new Date(then).toLocaleDateString();
}

export const NAMED_COLORS = new Set(["green", "red", "amber", "blue", "gray", "purple", "orange", "teal"]);
export const HEX_COLOR = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;

// Enough of a title to tell conversations apart in one line: "Weekly review of the Kafka…".
export function shortTitle(title, max = 28) {
  const text = String(title ?? "").trim();
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const space = cut.lastIndexOf(" ");
  return (space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,.;:–—-]+$/, "") + "…";
}

export function firstLine(text) {
  const line = String(text).trim().split("\n")[0];
  return line.length > 90 ? line.slice(0, 89) + "…" : line;
}


// Decimals formatNumber would show for one value (0 for whole numbers).
export function shownDecimals(value) {
  if (typeof value !== "number" || !Number.isFinite(value) || Number.isInteger(value)) return 0;
  const fraction = formatNumber(value).split(".")[1];
  return fraction ? fraction.length : 0;
}

// One column's numbers with the same decimals, so they line up: 12.5, 3, 7.25 -> 12.50, 3.00, 7.25.
export function columnFormatter(values) {
  const digits = Math.max(0, ...values.map(shownDecimals));
  if (!digits) return formatCell;
  return (value) => typeof value === "number" && Number.isFinite(value)
    ? value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : formatCell(value);
}

// Values that read wrong when broken across lines: dates, times, numbers, ids.
export const UNBREAKABLE = /^(?:\d{4}-\d{2}-\d{2}(?:[ T][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?|[-+]?[\d,.]+%?|—)$/;
