// NexusLeads Lab chat panel: the ChatSidecar of the original web app, as an anywidget.
//
// Everything the person sees is built with createElement/textContent: model output and
// database values are never parsed as HTML, so an <img onerror> in a bio stays text; an
// answer's Markdown comes rendered by the kernel and is checked again (html.js). State comes
// from a model-like object (get, on/off, send: an anywidget model, or anything that speaks the
// same five calls, such as a WebSocket adapter); requests go back with model.send. No
// dependencies, no network.
//
// These files are ES modules; the kernel joins them into the one module anywidget loads
// (nexusleads_lab/ui/esm.py), so a page can also import them as they are.

import { refitChartsOnResize } from "./refit.js";
import { Panel } from "./panel.js";
import { say } from "./format.js";

export default {
  render({ model, el }) {
    refitChartsOnResize();
    const panel = new Panel(model, el);
    return () => panel.dispose();
  },
  say, // for the standalone page (chat-page.js), which words its connection notices the same way
};
