import { h, svg } from "./dom.js";
import { HEX_COLOR, NAMED_COLORS, UNBREAKABLE } from "./format.js";

// ---------------------------------------------------------------------------------------------
// dashboard sections
//
// Every value's text comes worded from Python (``ui.html.with_shown_text``, the cell's own rules):
// ``shown`` on items and points, ``shown_rows`` and ``numeric`` on a table, ``more`` on a section
// cut short. Nothing here formats a number, so the panel and the cell never disagree.

const text = (item) => (item && item.shown != null ? String(item.shown) : "");

function renderWidgets(section, panel) {
  const grid = h("div", { class: "nx-kpis" }, (section.items || []).map((item) =>
    h("div", { class: "nx-kpi" },
      h("div", { class: "nx-kpi-title", text: item.title, title: item.title }),
      h("div", { class: "nx-kpi-value", text: text(item) }),
      item.subtext ? h("div", { class: "nx-kpi-sub", text: item.subtext }) : null)));
  return panel.sectionFrame("nx-widgets", section.label, section, grid);
}

function renderBars(section, panel) {
  const items = section.items || [];
  const max = Math.max(0, ...items.map((i) => (typeof i.value === "number" ? i.value : 0)));
  const rows = items.map((item) => {
    const value = typeof item.value === "number" ? item.value : 0;
    const width = max > 0 ? Math.max(0.5, (Math.max(0, value) / max) * 100) : 0;
    return h("div", { class: "nx-bar-row", title: `${item.name}: ${text(item)}` },
      h("div", { class: "nx-bar-name", text: item.name, title: item.name }),
      h("div", { class: "nx-bar-track" }, h("div", { class: "nx-bar-fill", style: { width: `${width}%` } })),
      h("div", { class: "nx-bar-value", text: text(item) }));
  });
  return panel.sectionFrame("nx-bars", section.label, section, h("div", { class: "nx-bar-list" }, rows), more(section));
}

function more(section) {
  return section.more ? h("div", { class: "nx-more", text: String(section.more) }) : null;
}

const SERIES_COLORS = ["var(--nx-c1)", "var(--nx-c2)", "var(--nx-c3)", "var(--nx-c4)", "var(--nx-c5)", "var(--nx-c6)"];

function renderLine(section, panel) {
  const points = (section.points || []).filter((p) => typeof p.y === "number");
  if (!points.length) return panel.sectionFrame("nx-line", section.label, section, h("div", { class: "nx-more", text: panel.say("no_points") }));
  const names = section.series && section.series.length ? section.series : [null];
  const numericX = section.x_type === "number" && points.every((p) => typeof p.x === "number");
  const xs = [];
  const xIndex = new Map();
  for (const p of points) if (!xIndex.has(p.x)) { xIndex.set(p.x, xs.length); xs.push(p.x); }
  const W = 360, H = 150, L = 34, R = 8, T = 8, B = 22;
  const ys = points.map((p) => p.y);
  const yTicks = niceTicks(Math.min(0, ...ys), Math.max(...ys));
  const lo = yTicks[0], hi = yTicks[yTicks.length - 1];
  const xMin = numericX ? Math.min(...xs) : 0, xMax = numericX ? Math.max(...xs) : Math.max(1, xs.length - 1);
  const px = (x) => L + ((numericX ? x : xIndex.get(x)) - xMin) / ((xMax - xMin) || 1) * (W - L - R);
  const py = (y) => T + (1 - (y - lo) / ((hi - lo) || 1)) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "nx-line-chart", role: "img" });
  chart.append(svg("title", {}, document.createTextNode(section.label || panel.say("line_chart"))));
  for (const v of yTicks) {
    const y = py(v);
    chart.append(svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "nx-grid" }));
    const label = svg("text", { x: L - 5, y: y + 3, class: "nx-axis", "text-anchor": "end" });
    label.textContent = compact(v);
    chart.append(label);
  }
  const ticks = xs.length <= 6 ? xs.map((_, i) => i) : [0, Math.floor((xs.length - 1) / 2), xs.length - 1];
  for (const i of ticks) {
    const t = svg("text", { x: px(xs[i]), y: H - 6, class: "nx-axis", "text-anchor": i === 0 ? "start" : i === xs.length - 1 ? "end" : "middle" });
    t.textContent = shortLabel(xs[i]);
    chart.append(t);
  }
  names.forEach((name, si) => {
    const pts = points.filter((p) => (name === null ? true : p.series === name));
    const color = SERIES_COLORS[si % SERIES_COLORS.length];
    chart.append(svg("polyline", { points: pts.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" "), class: "nx-line-path", style: `stroke:${color}` }));
    if (pts.length <= 60) {
      for (const p of pts) {
        const dot = svg("circle", { cx: px(p.x).toFixed(1), cy: py(p.y).toFixed(1), r: 2.6, class: "nx-line-dot", style: `fill:${color}` });
        dot.append(svg("title", {}, document.createTextNode(`${name ? name + " · " : ""}${p.x}: ${text(p)}`)));
        chart.append(dot);
      }
    }
  });
  const legend = names[0] === null ? null : h("div", { class: "nx-legend" }, names.map((n, i) =>
    h("span", { class: "nx-legend-item" }, h("i", { style: { background: SERIES_COLORS[i % SERIES_COLORS.length] } }), n)));
  return panel.sectionFrame("nx-line", section.label, section, chart, legend);
}

// Round axis steps (1, 2, 5 x 10^n) from lo to hi, about ``count`` of them.
function niceTicks(lo, hi, count = 4) {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  const ticks = [];
  for (let v = Math.floor(lo / step) * step; v < hi + step * 0.999 && ticks.length < 12; v += step) ticks.push(Math.round(v / step) * step);
  return ticks;
}

function compact(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
  return String(Number(v.toPrecision(3)));
}

function shortLabel(x) {
  const s = String(x);
  return s.length > 12 ? s.slice(0, 11) + "…" : s;
}


function renderTable(section, panel) {
  const columns = section.columns || [];
  const rows = section.shown_rows || [];
  const numeric = section.numeric || [];
  const table = h("table", { class: "nx-table" },
    h("thead", null, h("tr", null, columns.map((c, j) => h("th", { class: numeric[j] ? "nx-num" : null, text: c, title: c })))),
    h("tbody", null, rows.map((r) => h("tr", null, columns.map((c, j) => {
      const cell = String(r[j] ?? "");
      const cls = numeric[j] ? "nx-num" : UNBREAKABLE.test(cell) ? "nx-nowrap" : null;
      return h("td", { class: cls, text: cell });
    })))));
  return panel.sectionFrame("nx-table-section", section.title || section.label, section,
    h("div", { class: "nx-table-wrap" }, table), more(section));
}

function renderPills(section, panel) {
  const pills = (section.items || []).map((item) => {
    const color = String(item.color || "gray");
    const named = NAMED_COLORS.has(color);
    const style = !named && HEX_COLOR.test(color) ? { "--nx-pill": color } : null;
    return h("span", { class: `nx-pill ${named ? `nx-pill-${color}` : "nx-pill-custom"}`, style },
      h("i", { class: "nx-pill-dot" }), h("span", { class: "nx-pill-label", text: item.label, title: item.label }),
      h("span", { class: "nx-pill-count", text: text(item) }));
  });
  return panel.sectionFrame("nx-pills", section.label, section, h("div", { class: "nx-pill-list" }, pills), more(section));
}

export const SECTION_RENDERERS = { widgets: renderWidgets, bars: renderBars, line: renderLine, table: renderTable, pills: renderPills };
