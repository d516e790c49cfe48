import { h, icon } from "./dom.js";
import { firstLine } from "./format.js";

// The steps of an answer (live or finished): the collapsed steps line, each step's head and,
// opened, its SQL, facts and actions. Every word on them comes from the kernel: the line is
// words.steps_label, a step's tool and facts words.step_words (``said``, beside the step).

export function renderSteps(panel, steps, live, key, label, words = []) {
  const box = h("div", { class: `nx-steps ${live ? "nx-steps-live" : ""}` });
  const open = live || false;
  const listNode = h("ol", { class: "nx-step-list", hidden: !open });
  const toggle = h("button", {
    type: "button", class: "nx-steps-toggle", "aria-expanded": String(open),
    onclick: () => {
      listNode.hidden = !listNode.hidden;
      toggle.setAttribute("aria-expanded", String(!listNode.hidden));
      box.classList.toggle("nx-open", !listNode.hidden);
    },
  }, live ? h("span", { class: "nx-spinner" }) : icon("check", "nx-ok"), h("span", { text: label }), icon("chevron", "nx-caret"));
  box.classList.toggle("nx-open", open);
  steps.forEach((step, i) => listNode.append(renderStep(panel, step, live, words[i] || {})));
  box.append(toggle, listNode);
  return box;
}

export function renderStep(panel, step, live, said = {}) {
  const isQuery = step.tool === "psql";
  const what = isQuery && step.command ? firstLine(step.command) : [said.tool_label, step.path].filter(Boolean).join(" ");
  const meta = said.meta || "";
  // A step still "started" in a finished answer was cut short by Stop.
  const status = !live && (step.status || "started") === "started" ? "stopped" : step.status || "started";
  const body = h("div", { class: "nx-step-body", hidden: true });
  const li = h("li", { class: `nx-step nx-${status}` });
  const head = h("button", {
    type: "button", class: "nx-step-head", "aria-expanded": "false",
    onclick: () => {
      if (!body.childNodes.length) fillStepBody(panel, body, step, said);
      body.hidden = !body.hidden;
      head.setAttribute("aria-expanded", String(!body.hidden));
      li.classList.toggle("nx-open", !body.hidden);
      if (live) body.hidden ? panel.liveOpen.delete(step.call_id) : panel.liveOpen.add(step.call_id);
    },
  },
  status === "started" ? h("span", { class: "nx-spinner nx-small" })
    : icon({ failed: "cross", stopped: "stop" }[status] || (isQuery ? "db" : "file"), "nx-step-icon"),
  h("span", { class: "nx-step-what", text: what, title: isQuery ? step.command || null : what }),
  meta ? h("span", { class: "nx-step-meta", text: meta }) : null);
  li.append(head, body);
  if (live && panel.liveOpen.has(step.call_id)) {
    fillStepBody(panel, body, step, said);
    body.hidden = false;
    li.classList.add("nx-open");
    head.setAttribute("aria-expanded", "true");
  }
  return li;
}

export function fillStepBody(panel, body, step, said = {}) {
  if (step.command) body.append(h("pre", { class: "nx-sql", text: step.command }));
  else if (step.path) body.append(h("pre", { class: "nx-sql", text: step.path }));
  const facts = [step.tool, said.meta].filter(Boolean);
  body.append(h("div", { class: "nx-step-facts", text: facts.join(" · ") }));
  if (step.error) body.append(h("div", { class: "nx-step-error", text: step.error }));
  if (step.command) body.append(sqlActions(panel, step.command));
}

export function sqlActions(panel, sql) {
  return h("div", { class: "nx-actions" },
    h("button", { type: "button", class: "nx-chip", onclick: () => panel.copySql(sql) }, icon("copy"), panel.say("copy_sql")),
    h("button", { type: "button", class: "nx-chip", onclick: () => panel.insertCell(sql) }, icon("cell"), panel.say("insert_cell")));
}
