"""The shipped notebooks as files: what git holds, what nbconvert (and so nbviewer) shows, and
that running one twice in one database gives the same answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nexusleads_lab.db.embedded import stop_embedded

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SHIPPED = sorted(NOTEBOOKS.glob("*.ipynb"))
VEGA = "application/vnd.vega.v5+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PRIVATE = ("/tmp/", "/home/", "/root/", "/work/", "API key", "127.0.0.1", "localhost:", "postgresql://")

NOTEBOOK_BUDGET = 300_000  # bytes per shipped notebook
CHART_BUDGET = 25_000  # bytes per chart output, its picture included


def outputs(nb):
    return [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.outputs]


def test_the_folder_holds_only_notebooks():
    visible = sorted(p.name for p in NOTEBOOKS.iterdir() if not p.name.startswith("."))
    assert visible == [p.name for p in SHIPPED], "support files live elsewhere (or in hidden folders)"
    for nb_path in SHIPPED:
        first = nbformat.read(nb_path, as_version=4).cells[1].source
        cassette = re.search(r'^REPLAY = "([^"]+)"', first, re.M).group(1)
        assert (NOTEBOOKS / cassette).is_file(), f"{nb_path.name} replays {cassette}, which is missing"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_shipped_notebook_weighs_kilobytes_and_needs_no_widget_state(path):
    size = path.stat().st_size
    assert size <= NOTEBOOK_BUDGET, f"{path.name} is {size:,} bytes"
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata, "no widget state: every output reads without it"
    charts = [o for _, o in outputs(nb) if VEGA in o.get("data", {})]
    assert charts, "the notebook shows charts"
    for chart in charts:
        weight = len(json.dumps(chart["data"]))
        assert weight <= CHART_BUDGET, f"a chart weighs {weight:,} bytes"
        assert chart["data"]["image/png"], "with its picture for viewers without Vega"
        assert "text/html" not in chart["data"], "HTML would win over Vega in JupyterLab"
    assert not any(WIDGET_VIEW in o.get("data", {}) for _, o in outputs(nb)), "no output needs a live widget"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_nbconvert_shows_each_answer_once_with_its_charts_and_nothing_private(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    n_charts = sum(1 for _, o in outputs(nb) if VEGA in o.get("data", {}))
    n_cards = sum(o.get("data", {}).get("text/html", "").count('class="nxl-confirm ') for _, o in outputs(nb))
    n_steps = sum(1 for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%nexus"))
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--output-dir", str(tmp_path), str(path)],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"},
    )
    html = (tmp_path / f"{path.stem}.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == n_charts, "each chart once, as its picture"
    assert html.count('class="nxl-confirm ') == n_cards, "each card once"
    assert html.count('class="nxl-steps') >= n_steps, "every question shows its steps line"
    assert "Not confirmed" not in html, "every card is saved resolved, not waiting for a kernel"
    assert " object at 0x" not in html, "no Python repr"
    saved = json.dumps(
        [
            {k: v for k, v in o.get("data", {}).items() if k != "image/png"} | {"text": o.get("text", "")}
            for _, o in outputs(nb)
        ]
    )
    for private in PRIVATE:
        assert private not in saved, f"{path.name}'s saved outputs show {private!r}"


# -- running twice ------------------------------------------------------------------------------

_VOLATILE = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\bc_[A-Za-z0-9_-]{20,}"), "<confirmation>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s)\b"), "<time>"),
    # now() in a write preview: a timestamp with fractions of a second
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}\.\d+(\+00:00)?"), "<now>"),
    (re.compile(r"conversation\s+[0-9a-f]{8}"), "conversation <id>"),
    (re.compile(r"^[0-9a-f]{32}$"), "<widget model>"),  # the chat panel's widget, made anew each run
]


def _normal(value):
    if isinstance(value, str):
        for pattern, replacement in _VOLATILE:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if k != "execution_count"}
    return value


def _run(path: Path, home: Path) -> list:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    # the first cell's output says whether the demo data was restored: that is the point, not an answer
    return [_normal([dict(o) for o in c.outputs]) for c in nb.cells[2:] if c.cell_type == "code"]


@pytest.mark.slow
def test_running_the_quickstart_twice_in_one_database_gives_identical_outputs(tmp_path, monkeypatch):
    """The quickstart confirms a write; its first cell restores the demo data, so Run All again
    shows the same numbers, and the replayed proposal is not stale the second time."""
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NEXUS_REPLAY", "NEXUS_RECORD", "DATABASE_URL", "NEXUS_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NEXUS_HOME", str(tmp_path))
    monkeypatch.setenv("NEXUS_USER", "analyst")
    monkeypatch.setenv("NEXUS_ORG", "acme-analytics")
    try:
        first = _run(NOTEBOOKS / "quickstart.ipynb", tmp_path)
        second = _run(NOTEBOOKS / "quickstart.ipynb", tmp_path)
    finally:
        stop_embedded(tmp_path / "pgdata")
    confirmed = [
        o for cell in second for o in cell if o.get("output_type") == "stream" and "confirmed 6" in o.get("text", "")
    ]
    assert confirmed, "the second run's replayed proposal is confirmed (not stale)"
    for i, (a, b) in enumerate(zip(first, second)):
        assert a == b, f"code cell {i + 2} differs between the two runs"
    assert len(first) == len(second)
