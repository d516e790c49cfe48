// The live turn in a cell (TurnView): bouncing dots until something happens, then a
// list of steps that collapses to its cost line, and the answer typing in. Every word comes from
// the kernel: the steps line (words.steps_label), each step's tool and facts (words.step_words).
// The kernel batches updates (at most ~30 a second); the typewriter smooths them out here.
// The markup matches the static summary the kernel leaves behind (nexusleads_lab/ui/html.py).

import { h } from "./panel/dom.js";
import { oneLine } from "./panel/format.js";
import { refitChartsOnResize } from "./panel/refit.js";

const el = (tag, className, text) => h(tag, { class: className, text });

// While it types, the answer shows **bold** and `code` already (as DOM nodes, never HTML);
// the kernel replaces it with the fully rendered markdown when the turn ends.
function inline(text) {
  return text.split(/(\*\*[^*\n]+\*\*|`[^`\n]+`)/).filter(Boolean).map((part) => {
    if (part.startsWith("**") && part.endsWith("**") && part.length > 4) return el("strong", null, part.slice(2, -2));
    if (part.startsWith("`") && part.endsWith("`") && part.length > 2) return el("code", null, part.slice(1, -1));
    return document.createTextNode(part);
  });
}

function stepItem() {
  const li = el("li", "nxl-step");
  const details = el("details");
  const summary = el("summary");
  const parts = {
    tool: el("span", "nxl-step-tool"),
    cmd: el("span", "nxl-step-cmd"),
    meta: el("span", "nxl-step-meta"),
    sql: el("pre", "nxl-sql"),
    error: el("div", "nxl-step-error"),
  };
  summary.append(el("span", "nxl-step-icon"), parts.tool, parts.cmd, parts.meta);
  details.append(summary, parts.sql, parts.error);
  li.append(details);
  return { li, details, parts };
}

export default {
  render({ model, el: host }) {
    refitChartsOnResize();
    const root = el("div", "nxl nxl-turn");
    const dots = el("div", "nxl-dots");
    dots.append(el("span"), el("span"), el("span"));
    const steps = el("details", "nxl-steps");
    const summary = el("summary");
    const spinner = el("span", "nxl-spinner");
    const label = el("span", "nxl-steps-label");
    summary.append(spinner, label);
    const list = el("ol", "nxl-steps-list");
    steps.append(summary, list);
    const stream = el("div", "nxl-stream");
    const typed = el("span");
    const caret = el("span", "nxl-caret");
    stream.append(typed, caret);
    const error = el("div", "nxl-turn-error");
    root.append(dots, steps, stream, error);
    host.append(root);

    const items = new Map();
    let lastState = null;
    let shown = "";
    let frame = 0;

    function renderSteps() {
      const words = model.get("step_words") || [];
      (model.get("steps") || []).forEach((step, i) => {
        const said = words[i] || {};
        let item = items.get(step.call_id);
        if (!item) {
          item = stepItem();
          items.set(step.call_id, item);
          list.append(item.li);
          item.details.open = Boolean(model.get("show_sql"));
        }
        const target = step.command || step.path || "";
        item.li.dataset.status = step.status || "started";
        item.parts.tool.textContent = said.tool_label || step.tool;
        item.parts.cmd.textContent = oneLine(target);
        item.parts.meta.textContent = said.meta || "";
        item.parts.sql.textContent = target;
        item.parts.sql.hidden = !target;
        item.parts.error.textContent = step.error || "";
        item.parts.error.hidden = !step.error;
      });
      renderState();
    }

    function renderState() {
      const state = model.get("state");
      const count = (model.get("steps") || []).length;
      const busy = state === "waiting" || state === "running";
      root.dataset.state = state;
      dots.hidden = !(state === "waiting" || (state === "running" && count === 0 && !shown));
      steps.hidden = count === 0;
      spinner.hidden = !busy;
      label.textContent = model.get("label");
      if (state !== lastState) {
        // Open while working, collapse when done (the person can still toggle either way).
        steps.open = busy || Boolean(model.get("show_sql"));
        lastState = state;
      }
      caret.hidden = !busy;
      stream.hidden = !shown;
      error.textContent = model.get("error") || "";
      error.hidden = !model.get("error");
    }

    function tick() {
      frame = 0;
      const target = model.get("text") || "";
      if (!target.startsWith(shown)) {
        let same = 0;
        while (same < shown.length && shown[same] === target[same]) same += 1;
        shown = shown.slice(0, same);
      }
      const backlog = target.length - shown.length;
      if (backlog > 0) {
        const state = model.get("state");
        const step = state === "waiting" || state === "running" ? Math.max(2, Math.ceil(backlog / 6)) : backlog;
        shown = target.slice(0, shown.length + step);
        frame = requestAnimationFrame(tick);
      }
      typed.replaceChildren(...inline(shown));
      renderState();
    }
    const type = () => {
      if (!frame) frame = requestAnimationFrame(tick);
    };

    model.on("change:steps", renderSteps);
    model.on("change:state", renderState);
    model.on("change:error", renderState);
    model.on("change:label", renderState);
    model.on("change:step_words", renderSteps);
    model.on("change:text", type);
    renderSteps();
    type();

    return () => {
      if (frame) cancelAnimationFrame(frame);
      model.off("change:steps", renderSteps);
      model.off("change:state", renderState);
      model.off("change:error", renderState);
      model.off("change:label", renderState);
      model.off("change:step_words", renderSteps);
      model.off("change:text", type);
    };
  },
};
