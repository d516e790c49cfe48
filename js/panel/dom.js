// Building DOM nodes: createElement and textContent only, never a string parsed as HTML
// (the one exception, the kernel's rendered Markdown, goes through html.js).

// ---------------------------------------------------------------------------------------------
// tiny DOM helpers

export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "style") {
        for (const [k, v] of Object.entries(value)) {
          if (k.startsWith("--")) node.style.setProperty(k, v);
          else node.style[k] = v;
        }
      }
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

// Icons: fixed path data only (no untrusted input reaches these).
export const ICONS = {
  send: "M3.4 20.4 21 12 3.4 3.6l.02 6.53L15 12 3.42 13.87z",
  stop: "M7 7h10v10H7z",
  plus: "M11 5h2v6h6v2h-6v6h-2v-6H5v-2h6z",
  history: "M13 3a9 9 0 0 0-9 9H1l3.9 3.9L9 12H6a7 7 0 1 1 2.05 4.95l-1.42 1.42A9 9 0 1 0 13 3zm-1 5v5l4.25 2.52.77-1.28-3.52-2.09V8z",
  close: "M18.3 5.71 12 12.01l-6.3-6.3-1.41 1.41 6.3 6.3-6.3 6.29 1.41 1.42 6.3-6.3 6.29 6.3 1.42-1.42-6.3-6.29 6.3-6.3z",
  edit: "M3 17.25V21h3.75L17.81 9.94l-3.75-3.75zm17.71-10.21a1 1 0 0 0 0-1.41l-2.34-2.34a1 1 0 0 0-1.41 0l-1.83 1.83 3.75 3.75z",
  trash: "M6 19a2 2 0 0 0 2 2h8a2 2 0 0 0 2-2V7H6zM19 4h-3.5l-1-1h-5l-1 1H5v2h14z",
  copy: "M16 1H4a2 2 0 0 0-2 2v14h2V3h12zm3 4H8a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h11a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2zm0 16H8V7h11z",
  cell: "M19 3H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2V5a2 2 0 0 0-2-2zm-8 14H7v-2h4zm6-4H7v-2h10zm0-4H7V7h10z",
  check: "M9 16.17 4.83 12l-1.42 1.41L9 19 21 7l-1.41-1.41z",
  cross: "M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z",
  chevron: "M8.59 16.59 13.17 12 8.59 7.41 10 6l6 6-6 6z",
  down: "M7.41 8.59 12 13.17l4.59-4.58L18 10l-6 6-6-6z",
  warn: "M1 21h22L12 2zm12-3h-2v-2h2zm0-4h-2v-4h2z",
  db: "M12 3C7.58 3 4 4.34 4 6v12c0 1.66 3.58 3 8 3s8-1.34 8-3V6c0-1.66-3.58-3-8-3zm0 2c3.87 0 6 1.14 6 1s-2.13 1-6 1-6-1.14-6-1 2.13-1 6-1zm6 13c0 .5-2.13 1-6 1s-6-.5-6-1v-2.23c1.61.78 3.72 1.23 6 1.23s4.39-.45 6-1.23zm0-5c0 .5-2.13 1-6 1s-6-.5-6-1v-2.23c1.61.78 3.72 1.23 6 1.23s4.39-.45 6-1.23z",
  file: "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zm4 18H6V4h7v5h5z",
  spark: "M12 2l2.4 6.6L21 11l-6.6 2.4L12 20l-2.4-6.6L3 11l6.6-2.4z",
};
export function icon(name, cls) {
  return svg("svg", { viewBox: "0 0 24 24", class: `nx-icon ${cls || ""}`, "aria-hidden": "true" },
    svg("path", { d: ICONS[name] }));
}

export function iconButton(name, label, onclick, cls) {
  return h("button", { type: "button", class: `nx-iconbtn ${cls || ""}`, title: label, "aria-label": label, onclick },
    icon(name));
}
