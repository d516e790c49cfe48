"""How fast the notebook side feels: extension load, and a %%nexus cell in real JupyterLab + Chromium.

    .venv/bin/python benchmarks/bench_browser.py [--runs 5]

Measures (nothing is asserted):
- loading the extension (``%load_ext nexusleads_lab``) in a fresh process;
- in the browser, from pressing Run to the steps list on screen;
- from the scripted model's last chunk to the dashboard fully drawn: 4 KPI cards, a 20-bar
  chart (the live Vega widget) and a 50-row table.
The first question of a kernel pays for imports and connections; it is reported apart.
Uses its own embedded PostgreSQL (demo data) in a temporary folder and the test harness.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))

LOAD_PROBE = """
import time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t = time.perf_counter()
shell.run_line_magic("load_ext", "nexusleads_lab")
print((time.perf_counter() - t) * 1000)
"""

STEPS_VISIBLE = """(index) => {
  const c = window.jupyterapp.shell.currentWidget.content.widgets[index];
  const steps = c.node.querySelector('.jp-OutputArea .nxl-steps');
  return steps && steps.offsetHeight > 0 && !steps.hidden ? Date.now() : false;
}"""

# Polled every animation frame: notes when each piece first appears, returns them all at the end.
DASHBOARD_DRAWN = """(index) => {
  const marks = (window.__nxlMarks = window.__nxlMarks || {})[index] = (window.__nxlMarks[index] || {});
  const out = window.jupyterapp.shell.currentWidget.content.widgets[index].node.querySelector('.jp-OutputArea');
  if (!out) return false;
  const now = Date.now();
  const seen = {
    kpis: out.querySelectorAll('.nxl-kpi').length === 4,
    chart_widget: out.querySelector('.vega-embed') !== null,
    bars: out.querySelectorAll('.vega-embed svg .mark-rect path').length === 20,
    table: out.querySelectorAll('.nxl-table tbody tr').length === 50,
  };
  for (const [k, v] of Object.entries(seen)) if (v && !(k in marks)) marks[k] = now;
  return Object.values(seen).every(Boolean) ? { done: now, ...marks } : false;
}"""


def extension_load_ms(repeats: int = 7, *, bytecode_cache: bool = False) -> list[float]:
    """``bytecode_cache``: allow .pyc files (in a temporary prefix, never in the tree), as a normal
    install has them; otherwise the environment decides (PYTHONDONTWRITEBYTECODE=1 compiles every time)."""
    import os

    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="nexus-pyc-") as cache:
        if bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = cache
            subprocess.run([sys.executable, "-c", LOAD_PROBE], env=env, capture_output=True, check=True)  # fill it
        out = []
        for _ in range(repeats):
            done = subprocess.run([sys.executable, "-c", LOAD_PROBE], env=env, capture_output=True, text=True, check=True)
            out.append(float(done.stdout.strip().splitlines()[-1]))
    return out


def browser_runs(runs: int) -> list[dict]:
    from lab_harness import launch_browser, open_notebook, run_cell, start_lab, stop_lab, write_notebook
    from playwright.sync_api import sync_playwright
    from test_cell import dashboard_script

    from nexusleads_lab.config import Settings
    from nexusleads_lab.db import open_database
    from nexusleads_lab.db.embedded import stop_embedded

    temp = Path(tempfile.mkdtemp(prefix="nexus-bench-"))
    home = temp / "main"
    db = open_database(Settings(), pgdata=home / "pgdata", contributors=3000)
    lab = start_lab(home)
    results = []
    try:
        cells = ["%load_ext nexusleads_lab"] + ["%%nexus\nGive me an overview of the lead pipeline"] * (runs + 1)
        write_notebook(lab, "bench.ipynb", cells)
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            open_notebook(page, lab, "bench.ipynb")
            run_cell(page, 0)
            for index in range(1, runs + 2):
                lab.model.set_script(dashboard_script())
                started = run_cell(page, index, wait=False)
                steps_at = page.wait_for_function(STEPS_VISIBLE, arg=index, polling="raf", timeout=120_000).json_value()
                marks = page.wait_for_function(DASHBOARD_DRAWN, arg=index, polling="raf", timeout=120_000).json_value()
                last_chunk = lab.model.served[-1] * 1000
                results.append(
                    {
                        "run": "first question (cold kernel)" if index == 1 else f"run {index - 1}",
                        "run_to_steps_ms": steps_at - started,
                        "last_chunk_to_dashboard_ms": marks["done"] - last_chunk,
                        "run_to_dashboard_ms": marks["done"] - started,
                        "after_last_chunk_ms": {k: marks[k] - last_chunk for k in ("kpis", "table", "chart_widget", "bars")},
                    }
                )
                page.wait_for_function(
                    "(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.executionCount !== null",
                    arg=index,
                )
            browser.close()
    finally:
        stop_lab(lab)
        db.close()
        stop_embedded(home / "pgdata")
        shutil.rmtree(temp, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm runs after the first question (default 5)")
    args = parser.parse_args()

    load = extension_load_ms()
    cached = extension_load_ms(bytecode_cache=True)
    print(f"extension load (%load_ext, fresh process): median {statistics.median(load):.1f} ms, max {max(load):.1f} ms"
          f" as this environment runs it; with a bytecode cache: median {statistics.median(cached):.1f} ms")  # fmt: skip
    results = browser_runs(args.runs)
    print(f"{'run':<30} {'Run -> steps':>14} {'last chunk -> dashboard':>25} {'Run -> dashboard':>18}")
    for r in results:
        print(f"{r['run']:<30} {r['run_to_steps_ms']:>11.0f} ms {r['last_chunk_to_dashboard_ms']:>22.0f} ms {r['run_to_dashboard_ms']:>15.0f} ms")
        print("    after the last chunk: " + ", ".join(f"{k} {v:.0f} ms" for k, v in r["after_last_chunk_ms"].items()))
    warm = results[1:]
    if warm:
        summary = {k: statistics.median(r[k] for r in warm) for k in ("run_to_steps_ms", "last_chunk_to_dashboard_ms", "run_to_dashboard_ms")}
        print("warm median: " + ", ".join(f"{k} {v:.0f}" for k, v in summary.items()))
    print(json.dumps({"extension_load_ms": load, "extension_load_cached_ms": cached, "browser": results}))


if __name__ == "__main__":
    main()
