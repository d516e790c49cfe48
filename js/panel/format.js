// Numbers, counts, times and short texts as the panel shows them.

// ---------------------------------------------------------------------------------------------
// values

// Counts in the panel's own words ("3 steps", "1,204 rows"); every value of an answer comes worded
// from Python instead (see sections.js).
function formatCount(n) {
  return typeof n === "number" && Number.isFinite(n) ? n.toLocaleString("en-US") : String(n);
}

export function plural(n, one, many) {
  return `${formatCount(n)} ${n === 1 ? one : many || one + "s"}`;
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


// Values that read wrong when broken across lines: dates, times, numbers, ids.
export const UNBREAKABLE = /^(?:\d{4}-\d{2}-\d{2}(?:[ T][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?|[-+]?[\d,.]+%?|—)$/;
