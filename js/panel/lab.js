import { h } from "./dom.js";

// ---------------------------------------------------------------------------------------------
// clipboard and cells

export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (_) { /* fall back below */ }
  const area = h("textarea", { style: { position: "fixed", top: "-1000px", opacity: "0" }, readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
  area.remove();
  return ok;
}

// The notebook whose kernel runs this panel is the widget manager's document context; its
// shared model takes a new cell directly (JupyterLab 4, no extension or network needed).
export function notebookOf(model) {
  const context = model.widget_manager && model.widget_manager.context;
  const shared = context && context.model && context.model.sharedModel;
  if (!shared || typeof shared.insertCell !== "function") return null;
  return { context, shared };
}

// Below the active cell when that notebook is the visible one, else at the end.
export function insertionIndex(notebook) {
  const count = notebook.shared.cells.length;
  const name = String(notebook.context.path || "").split("/").pop();
  const tab = document.querySelector("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current");
  const label = tab && tab.querySelector(".lm-TabBar-tabLabel");
  if (!tab || !label || label.textContent.trim() !== name) return count;
  const panel = tab.dataset.id && document.getElementById(tab.dataset.id);
  const cells = panel ? [...panel.querySelectorAll(".jp-Notebook .jp-Cell")] : [];
  const active = cells.find((c) => c.classList.contains("jp-mod-active"));
  if (!active) return count;
  let index = parseInt(active.dataset.windowedListIndex ?? "", 10);
  if (!Number.isFinite(index) && cells.length === count) index = cells.indexOf(active);
  return Number.isFinite(index) && index >= 0 && index < count ? index + 1 : count;
}

// A side tab names its widget in data-id (else: the side bar lists its tabs in the order of the
// widgets in its stack). Its close icon is the public way to close it: the sidecar disposes the
// widget on that request.
export function closeSideTab(stack, widgetNode) {
  const tabs = [...document.querySelectorAll(".jp-SideBar.jp-mod-right .lm-TabBar-content > .lm-TabBar-tab")];
  const tab = tabs.find((t) => t.dataset.id === widgetNode.id) || tabs[[...stack.children].indexOf(widgetNode)];
  const icon = tab ? tab.querySelector(".lm-TabBar-tabCloseIcon") : null;
  if (!icon) return false;
  const box = icon.getBoundingClientRect();
  const at = { bubbles: true, cancelable: true, button: 0, pointerId: 1, isPrimary: true,
    clientX: box.left + box.width / 2, clientY: box.top + box.height / 2 };
  icon.dispatchEvent(new PointerEvent("pointerdown", at));
  icon.dispatchEvent(new PointerEvent("pointerup", at));
  return true;
}
