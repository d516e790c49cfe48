// Charts as wide as their output (Vega-Lite's width "container") are measured again only when
// the window resizes; JupyterLab's panels change width without one (a notebook split beside
// another, the side area opening or dragged). Once per page, a change in the width of a notebook
// or of the main area sends the window a resize, so every chart on the page fits again.

const SCAN_MS = 2000;
const SETTLE_MS = 150;

export function refitChartsOnResize() {
  if (window.__nexusRefit || typeof ResizeObserver !== "function") return;
  window.__nexusRefit = true;
  const widths = new WeakMap();
  let timer = 0;
  const observer = new ResizeObserver((entries) => {
    let changed = false;
    for (const entry of entries) {
      const width = Math.round(entry.contentRect.width);
      if (widths.has(entry.target) && widths.get(entry.target) !== width) changed = true;
      widths.set(entry.target, width);
    }
    if (!changed) return;
    clearTimeout(timer);
    timer = setTimeout(() => window.dispatchEvent(new Event("resize")), SETTLE_MS);
  });
  const watched = new WeakSet();
  const scan = () => {
    for (const node of document.querySelectorAll("#jp-main-dock-panel, .jp-NotebookPanel")) {
      if (watched.has(node)) continue;
      watched.add(node);
      observer.observe(node);
    }
  };
  scan();
  setInterval(scan, SCAN_MS); // notebooks opened later join; a few selectors every two seconds
}
