// The kernel's words filled in, relative times, and short texts cut to fit.

// ---------------------------------------------------------------------------------------------
// words

// Every label and sentence comes from the kernel (nexusleads_lab/words.py, UI): the front end
// only fills its {names} from the data it lays out. A missing key shows as itself, not as nothing.
export function say(words, key, values) {
  const text = words && typeof words[key] === "string" ? words[key] : key;
  return values ? text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole)) : text;
}

export function relativeTime(iso, words) {
  const then = Date.parse(iso);
  if (!Number.isFinite(then)) return "";
  const s = Math.max(0, (Date.now() - then) / 1000);
  if (s < 60) return say(words, "just_now");
  if (s < 3600) return say(words, "minutes_ago", { n: Math.floor(s / 60) });
  if (s < 86400) return say(words, "hours_ago", { n: Math.floor(s / 3600) });
  if (s < 86400 * 7) return say(words, "days_ago", { n: Math.floor(s / 86400) });
  return new Date(then).toLocaleDateString();
}

export const NAMED_COLORS = new Set(["green", "red", "amber", "blue", "gray", "purple", "orange", "teal"]);
export const HEX_COLOR = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;

// Enough of a title to tell conversations apart in one line (a long one ends in an ellipsis).
export function shortTitle(title, max = 28) {
  const text = String(title ?? "").trim();
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const space = cut.lastIndexOf(" ");
  return (space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,.;:–—-]+$/, "") + "…";
}

// A step's SQL on one line, as the cell's static summary shows it (ui/html.py one_line).
export function oneLine(text, limit = 140) {
  const flat = String(text || "").split(/\s+/).filter(Boolean).join(" ");
  return flat.length <= limit ? flat : `${flat.slice(0, limit - 1)}…`;
}

export function firstLine(text) {
  const line = String(text).trim().split("\n")[0];
  return line.length > 90 ? line.slice(0, 89) + "…" : line;
}


// Values that read wrong when broken across lines: dates, times, numbers, ids.
export const UNBREAKABLE = /^(?:\d{4}-\d{2}-\d{2}(?:[ T][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?|[-+]?[\d,.]+%?|—)$/;
