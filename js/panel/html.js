// Two things arrive rendered by the kernel: an answer's Markdown (markdown-it with the cells'
// sanitising rules, ui/html.py: raw HTML is text, images are links) and a write's preview
// (ui/html.py preview_html, the cell card's table, every value escaped there). Inserting them
// is the panel's only use of parsed HTML, so each is checked again here against what its
// renderer emits: only those tags and attributes get through, links only to http(s) and mailto,
// and everything else becomes its text. A <template> parses without loading or running anything.

const TAGS = new Set([
  "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code",
  "em", "strong", "s", "del", "a", "br", "hr", "table", "thead", "tbody", "tr", "th", "td",
]);
const ATTRIBUTES = {
  a: { href: (v) => /^(https?:|mailto:)/i.test(v), title: () => true, class: (v) => v === "nxl-md-image" },
  ol: { start: (v) => /^\d{1,9}$/.test(v) },
  th: { style: (v) => /^text-align:(left|right|center)$/.test(v) },
  td: { style: (v) => /^text-align:(left|right|center)$/.test(v) },
  code: { class: (v) => /^language-[\w+-]{1,40}$/.test(v) },
};

// What preview_html emits: these tags, its own classes, and a statement's or row's action.
const PREVIEW_TAGS = new Set(["div", "table", "thead", "tbody", "tr", "th", "td", "span", "strong"]);
const PREVIEW_CLASSES = new Set([
  "nxl-dry", "nxl-preview", "nxl-pv-stmt", "nxl-pv-head", "nxl-pv-wrap", "nxl-pv-table", "nxl-pv-key",
  "nxl-pv-value", "nxl-pv-changed", "nxl-pv-before", "nxl-pv-arrow", "nxl-pv-after", "nxl-pv-same",
  "nxl-pv-null", "nxl-pv-short", "nxl-pv-more",
]);
const previewClass = (v) => v.split(" ").every((name) => PREVIEW_CLASSES.has(name));
const previewAction = (v) => ["update", "insert", "delete"].includes(v);
const PREVIEW_ATTRIBUTES = Object.fromEntries(
  [...PREVIEW_TAGS].map((tag) => [tag, { class: previewClass, ...(tag === "div" || tag === "tr" ? { "data-action": previewAction } : {}) }]),
);

// The allowed nodes of ``html`` (rendered Markdown) as a fragment, dressed in the panel's own classes.
export function safeHtml(html) {
  const template = document.createElement("template");
  template.innerHTML = String(html ?? "");
  clean(template.content, TAGS, ATTRIBUTES);
  dress(template.content);
  return document.importNode(template.content, true);
}

// A write's preview (preview_html) as a fragment, as the cell card shows it: its nxl- classes are
// styled by answer.css, which the panel loads too; wrap it in an element of class "nxl".
export function safePreviewHtml(html) {
  const template = document.createElement("template");
  template.innerHTML = String(html ?? "");
  clean(template.content, PREVIEW_TAGS, PREVIEW_ATTRIBUTES);
  return document.importNode(template.content, true);
}

function clean(parent, tags, attributes) {
  for (const node of [...parent.childNodes]) {
    if (node.nodeType === Node.TEXT_NODE) continue;
    if (node.nodeType !== Node.ELEMENT_NODE) {
      node.remove(); // comments, processing instructions
      continue;
    }
    const tag = node.localName;
    if (!tags.has(tag) || node.namespaceURI !== "http://www.w3.org/1999/xhtml") {
      node.replaceWith(document.createTextNode(node.textContent || ""));
      continue;
    }
    const allowed = attributes[tag] || {};
    for (const { name, value } of [...node.attributes]) {
      const ok = allowed[name];
      if (!ok || !ok(value)) node.removeAttribute(name);
    }
    clean(node, tags, attributes);
  }
}

// markdown-it's plain tags, shown the way the panel showed its answers: headings two levels
// down, code blocks and tables in the panel's boxes, links opening a new tab.
function dress(root) {
  for (const heading of [...root.querySelectorAll("h1, h2, h3, h4, h5, h6")]) {
    const level = Math.min(6, Number(heading.localName[1]) + 2);
    const node = document.createElement(`h${level}`);
    node.className = "nx-h";
    node.append(...heading.childNodes);
    heading.replaceWith(node);
  }
  for (const pre of root.querySelectorAll("pre")) pre.classList.add("nx-code");
  for (const table of [...root.querySelectorAll("table")]) {
    table.classList.add("nx-table");
    const wrap = document.createElement("div");
    wrap.className = "nx-table-wrap";
    table.replaceWith(wrap);
    wrap.append(table);
  }
  for (const a of root.querySelectorAll("a")) {
    if (a.classList.contains("nxl-md-image")) {
      a.className = "nx-md-image";
      a.setAttribute("rel", "noopener noreferrer nofollow");
    } else {
      a.setAttribute("rel", "noopener noreferrer");
    }
    if (a.hasAttribute("href")) a.setAttribute("target", "_blank");
  }
}
