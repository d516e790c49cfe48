"""What a person sees of charts when several answers and notebooks share a page, and of a
shipped notebook opened without running it.

Charts are drawn by JupyterLab's own Vega renderer (one runtime for the page, on canvas), so
"painted" is checked where it happens: the pixels of each chart's canvas, and the same area of
a screenshot of the page. Ids and paint references (``url(#...)``) anywhere in the outputs must
be unique on the page and resolve inside their own output.
"""

from __future__ import annotations

import io
import json
import shutil
import uuid
from pathlib import Path

import nbformat
import pytest
from PIL import Image
from playwright.sync_api import expect
from scripted import STATUS_SQL, dashboard

from nexusleads_lab.testing.modelserver import text, tool_calls
from nexusleads_lab.ui.charts import ACCENT, ACCENT_2

from lab_harness import cell, open_notebook, run_all_cells, screenshot, wait_for_idle, write_notebook

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

REPOS_SQL = (
    "SELECT r.full_name, count(*) AS contributors FROM repository_contributors rc "
    "JOIN repositories r ON r.id = rc.repository_id GROUP BY r.full_name ORDER BY contributors DESC, r.full_name LIMIT 20"
)
MONTHLY_SQL = "SELECT to_char(date_trunc('month', scored_at), 'YYYY-MM') AS month, count(*) AS n FROM lead_scores GROUP BY 1 ORDER BY 1"

# What each chart's canvas holds, by colour class: the product's bar gradient runs from ACCENT
# (left end of a bar) to ACCENT_2 (right end); Vega's "purples" scheme is a person's own chart.
_CLASSIFY = """(node) => {
  const canvas = node.querySelector('canvas');
  if (!canvas || !canvas.width || !canvas.height) return null;
  const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
  const near = (p, c, d) => Math.abs(p[0] - c[0]) + Math.abs(p[1] - c[1]) + Math.abs(p[2] - c[2]) <= d;
  const accent = hex(ARGS.accent), accent2 = hex(ARGS.accent2);
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const counts = { painted: 0, accent: 0, accent2: 0, purples: 0 };
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] < 200) continue;
    const p = [data[i], data[i + 1], data[i + 2]];
    const grey = Math.max(...p) - Math.min(...p) < 24;
    if (!grey) counts.painted++;
    if (near(p, accent, 40)) counts.accent++;
    if (near(p, accent2, 40)) counts.accent2++;
    // the purples scheme: blue a little above red, green well below both
    if (!grey && p[2] > p[1] + 25 && p[0] > p[1] && Math.abs(p[0] - p[2]) < 90 && !near(p, accent, 60) && !near(p, accent2, 60)) counts.purples++;
  }
  return { width: canvas.width, height: canvas.height, ...counts };
}"""


def classify(locator) -> dict | None:
    script = _CLASSIFY.replace("ARGS.accent2", json.dumps(ACCENT_2)).replace("ARGS.accent", json.dumps(ACCENT))
    return locator.evaluate(script)


def colored_pixels(png: bytes) -> int:
    """Pixels of a screenshot that are neither white-ish nor grey: painted marks."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colors = image.getcolors(maxcolors=image.width * image.height) or []
    return sum(n for n, (r, g, b) in colors if max(r, g, b) - min(r, g, b) >= 40)


_REFERENCES = """() => {
  const outputs = [...document.querySelectorAll('.jp-OutputArea-output')];
  const ids = new Map();
  const broken = [];
  for (const out of outputs) {
    for (const el of out.querySelectorAll('[id]')) ids.set(el.id, (ids.get(el.id) || 0) + 1);
  }
  for (const out of outputs) {
    for (const el of out.querySelectorAll('*')) {
      for (const attr of ['fill', 'stroke', 'clip-path', 'mask', 'filter', 'href', 'xlink:href', 'style']) {
        const value = el.getAttribute(attr) || '';
        for (const m of value.matchAll(/url\\(["']?#([^)"']+)["']?\\)|^#(.+)$/g)) {
          const id = m[1] || m[2];
          if (!out.querySelector('#' + CSS.escape(id))) broken.push(id);
        }
      }
    }
  }
  return { duplicates: [...ids].filter(([, n]) => n > 1).map(([id]) => id), broken };
}"""


def answer(title: str, *sections: dict) -> str:
    return dashboard(*sections, title=title)


def test_every_chart_paints_with_several_answers_and_two_notebooks_on_one_page(lab, page):
    user = f"paint-{uuid.uuid4().hex[:8]}"
    bars = {
        "type": "bars",
        "label": "Top 20 repositories by contributors",
        "source": "r1",
        "x": "full_name",
        "y": "contributors",
    }
    lab.model.set_script(
        [
            tool_calls([("psql", {"sql": REPOS_SQL}), ("psql", {"sql": MONTHLY_SQL})]),
            text(
                answer(
                    "Repositories",
                    bars,
                    {"type": "line", "label": "Leads scored per month", "source": "r2", "x": "month", "y": "n"},
                )
            ),
            tool_calls([("psql", {"sql": STATUS_SQL})]),
            text(
                answer("Status", {"type": "bars", "label": "Leads by status", "source": "r3", "x": "status", "y": "n"})
            ),
            tool_calls([("psql", {"sql": REPOS_SQL})]),
            text(answer("Second notebook", {**bars, "label": "Repositories (second notebook)"})),
        ]
    )
    own_chart = (
        "import altair as alt, pandas as pd\n"
        "df = pd.DataFrame({'who': list('abcdefgh'), 'score': [5, 9, 3, 7, 8, 2, 6, 4]})\n"
        "alt.Chart(df).mark_bar().encode(x='score:Q', y='who:N', color=alt.Color('score:Q', scale=alt.Scale(scheme='purples')))"
    )
    setup = f"%env NEXUS_USER={user}\n%load_ext nexusleads_lab"
    write_notebook(
        lab,
        "paint-a.ipynb",
        [setup, "%%nexus --new\nRepositories and monthly leads", "%%nexus\nLeads by status", own_chart],
    )
    write_notebook(lab, "paint-b.ipynb", [setup, "%%nexus --new\nRepositories again"])
    open_notebook(page, lab, "paint-a.ipynb")
    run_all_cells(page)
    # the second notebook beside the first, both visible
    page.evaluate(
        "() => { window.jupyterapp.commands.execute('docmanager:open', {path: 'paint-b.ipynb', options: {mode: 'split-right'}}); }"
    )
    page.wait_for_function("() => document.querySelectorAll('.jp-NotebookPanel').length === 2")
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget; const k = w.sessionContext.session && w.sessionContext.session.kernel;"
        " return w.context.path === 'paint-b.ipynb' && k && k.status === 'idle'; }",
        timeout=60_000,
    )
    run_all_cells(page)
    wait_for_idle(page)

    charts = page.locator(".jp-NotebookPanel:visible .jp-RenderedVega5")
    expect(charts).to_have_count(5, timeout=60_000)  # 2 + 1 answers and one own chart in A, one answer in B
    for i in range(5):
        expect(charts.nth(i).locator("canvas")).to_be_attached(timeout=30_000)
    page.wait_for_timeout(500)
    seen = [classify(charts.nth(i)) for i in range(5)]
    assert all(s is not None for s in seen), seen
    panels = [charts.nth(i).evaluate("n => n.closest('.jp-NotebookPanel').id") for i in range(5)]
    assert len(set(panels)) == 2 and panels.count(panels[-1]) == 1, "four charts in one notebook, one in the other"
    repo_bars, line, status_bars, own, second = seen
    for name, counts in (("repositories", repo_bars), ("status", status_bars), ("second notebook", second)):
        # the gradient painted: both of its ends are on the canvas, and plenty of coloured area
        assert counts["accent"] > 200 and counts["accent2"] > 200, (name, counts)
    assert line["painted"] > 200 and line["accent"] > 50, ("the line and its points", line)
    # a person's own chart keeps its own scheme and does not pick up the product's gradient
    assert own["purples"] > 500 and own["accent2"] < own["purples"] / 10, own

    refs = page.evaluate(_REFERENCES)
    assert refs == {"duplicates": [], "broken": []}, refs

    # the screen shows what the canvases hold: the bar area of each chart has coloured pixels
    for i in range(5):
        charts.nth(i).scroll_into_view_if_needed()
        shot = charts.nth(i).screenshot(animations="disabled")
        assert colored_pixels(shot) > 500, f"chart {i} is blank on screen"
    screenshot(page, "two-notebooks.png")

    # saved from JupyterLab, each chart is still one output (JupyterLab adds its own PNG only to a
    # Vega output that has none), and nbconvert shows each once
    page.evaluate("() => { window.jupyterapp.commands.execute('docmanager:save'); }")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=15_000)
    saved = nbformat.read(lab.root / "paint-b.ipynb", as_version=4)
    charts_saved = [
        o for c in saved.cells for o in c.get("outputs", []) if "application/vnd.vega.v5+json" in o.get("data", {})
    ]
    assert len(charts_saved) == 1 and set(charts_saved[0]["data"]) == {
        "application/vnd.vega.v5+json",
        "image/png",
        "text/plain",
    }
    assert len(json.dumps(charts_saved[0]["data"])) < 25_000


def _copy_shipped(lab, name: str) -> None:
    shutil.copy(NOTEBOOKS / name, lab.root / name)
    (lab.root / ".cassettes").mkdir(exist_ok=True)
    for cassette in (NOTEBOOKS / ".cassettes").glob(f"{Path(name).stem}.cassette.jsonl"):
        shutil.copy(cassette, lab.root / ".cassettes" / cassette.name)


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_a_shipped_notebook_opened_without_running_reads_right(lab, page, name):
    _copy_shipped(lab, name)
    saved = nbformat.read(NOTEBOOKS / name, as_version=4)
    answers = [c for c in saved.cells if c.cell_type == "code" and c.source.lstrip().startswith("%%nexus")]
    expected_charts = sum(
        1 for c in saved.cells for o in c.get("outputs", []) if "application/vnd.vega.v5+json" in o.get("data", {})
    )
    expected_cards = sum(
        o.get("data", {}).get("text/html", "").count('class="nxl-confirm ') for c in answers for o in c.outputs
    )
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=60_000)
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel.locator(".jp-RenderedVega5 canvas")).to_have_count(expected_charts, timeout=60_000)
    outputs = panel.locator(".jp-OutputArea-output")
    texts = outputs.all_inner_texts()
    body = "\n".join(texts)
    assert " object at 0x" not in body, "no Python repr in a saved output"
    for private in ("/tmp/", "/home/", "/root/", "/work/", "API key", "127.0.0.1"):
        assert private not in body, f"the saved outputs show {private!r}"
    assert "Loading widget" not in body and "Error displaying widget" not in body
    expect(panel.locator(".nxl-confirm")).to_have_count(expected_cards)
    for c in answers:  # each answer once: one steps line per question cell that ran steps
        index = saved.cells.index(c)
        expect(cell(page, index).locator(".nxl-steps")).to_have_count(
            1 if any("nxl-steps" in o.get("data", {}).get("text/html", "") for o in c.outputs) else 0
        )
    assert len(texts) >= len(answers)
    first_chart = next(
        saved.cells.index(c)
        for c in answers
        if any("application/vnd.vega.v5+json" in o.get("data", {}) for o in c.outputs)
    )
    screenshot(page, f"unrun-{Path(name).stem}.png", cell(page, first_chart))
    cards = [
        saved.cells.index(c)
        for c in answers
        if any('class="nxl-confirm ' in o.get("data", {}).get("text/html", "") for o in c.outputs)
    ]
    if cards:
        screenshot(page, f"unrun-{Path(name).stem}-card.png", cell(page, cards[0]))
