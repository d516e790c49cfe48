"""A newcomer's first hour, in real JupyterLab and Chromium: a brand-new ``NEXUS_HOME`` (the demo
database created and seeded on first use), no API key, the shipped notebooks and cassettes.

Run All in the quickstart, its panel answers every chip and meets an unrecorded question with one
friendly message, a second notebook has its own panel and conversation, the confirm card fits a
280 px side area, charts of two notebooks side by side stay inside their outputs, a kernel
restart then ``%load_ext`` answers again, and the console stays free of warnings and errors.
The tests run in order on one lab (a newcomer's session); screenshots land in tests/artifacts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from lab_harness import (
    open_notebook,
    restart_kernel_from_the_menu,
    run_all_cells,
    run_cell,
    screenshot,
    start_lab,
    stop_lab,
    wait_for_idle,
    widen_side_area,
)

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SIDE = "#jp-right-stack"
ANSWERS = ".nx-messages > .nx-bot"


def panel_of(page, notebook: str):
    """The chat panel a notebook opened (each notebook has its own side tab)."""
    return page.locator(f'{SIDE} .jupyterlab-sidecar[data-nexus-notebook="{notebook}"] .nx-panel')


def show_side_tab(page, notebook: str) -> None:
    """Show a notebook's panel in the side area (a click on the tab already shown would close it)."""
    if not panel_of(page, notebook).last.is_visible():
        page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab", has_text=f"Nexus · {notebook}").click()


def idle(page, panel) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function("(p) => !p.classList.contains('nx-busy')", arg=panel.element_handle(), timeout=180_000)


def answer_by(page, panel, click) -> None:
    """Do ``click`` (a chip, Enter), then wait for one more answer and an idle panel."""
    before = panel.locator(ANSWERS).count()
    click()
    expect(panel.locator(ANSWERS)).to_have_count(before + 1, timeout=180_000)
    idle(page, panel)


def open_in_lab(page, path: str, mode: str | None = None) -> None:
    """Open a notebook as a person does (its tab, its kernel), and wait until that kernel is idle."""
    options = {"mode": mode} if mode else {}
    page.evaluate(
        "([path, options]) => { window.jupyterapp.commands.execute('docmanager:open', {path, options}); }",
        [path, options],
    )
    page.wait_for_function(
        """(path) => { const w = window.jupyterapp.shell.currentWidget;
             return Boolean(w && w.context && w.context.path === path && w.sessionContext.isReady
                            && w.sessionContext.session && w.sessionContext.session.kernel
                            && w.sessionContext.session.kernel.status === 'idle'); }""",
        arg=path,
        timeout=180_000,
    )


def add_cell_and_run(page, source: str) -> None:
    index = page.evaluate(
        """(source) => { const nb = window.jupyterapp.shell.currentWidget.content.model.sharedModel;
             nb.insertCell(nb.cells.length, {cell_type: 'code', source}); return nb.cells.length - 1; }""",
        source,
    )
    run_cell(page, index, timeout=180)


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory, browser):
    """A keyless lab on a brand-new home holding the shipped notebooks, and one page on it whose
    console and page errors are collected for the whole session."""
    home = tmp_path_factory.mktemp("newcomer-home")
    lab = start_lab(home, keyless=True, user=f"newcomer-{uuid.uuid4().hex[:6]}")
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(notebook, lab.root / notebook.name)
    shutil.copytree(NOTEBOOKS / ".cassettes", lab.root / ".cassettes")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("warning", "error") else None)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        yield lab, page, console
    finally:
        context.close()
        stop_lab(lab)
        subprocess.run(
            [sys.executable, "-m", "nexusleads_lab.cli", "db", "stop"],
            env={**os.environ, "NEXUS_HOME": str(home)},
            capture_output=True,
            timeout=60,
        )


def test_run_all_then_every_chip_of_the_panel_answers_and_an_unrecorded_question_is_told_what_to_do(newcomer):
    lab, page, console = newcomer
    open_notebook(page, lab, "quickstart.ipynb", timeout=180)
    run_all_cells(page, timeout=600)  # the last cell opens the panel
    panel = panel_of(page, "quickstart.ipynb")
    panel.wait_for(state="attached", timeout=60_000)
    widen_side_area(page, 420)
    expect(page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab", has_text="Nexus · quickstart.ipynb")).to_have_count(
        1
    )
    expect(panel.locator(".nx-subtitle")).to_contain_text("quickstart.ipynb")
    expect(panel.locator(".nx-subtitle")).to_contain_text("replay quickstart.cassette.jsonl")
    # The panel shows this notebook's conversation: the questions its cells asked.
    expect(panel.locator(".nx-user").first).to_have_text("Give me a KPI overview of our lead pipeline")
    assert (
        page.locator(".jp-Notebook .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    )

    chips = panel.locator(".nx-recorded-chip")
    questions = chips.all_text_contents()
    assert questions == [
        "Give me a KPI overview of our lead pipeline",
        "Top hot leads for the Kafka Ecosystem project that we have not contacted yet",
        "Lead status breakdown",
        "Mark the top three of those hot Kafka leads as contacted and log the intro email",
    ]
    for number, question in enumerate(questions):
        answer_by(page, panel, lambda q=question: panel.locator(".nx-recorded-chip", has_text=q).click())
        last = panel.locator(ANSWERS).last
        expect(last.locator(".nx-error")).to_have_count(0)
        if number == 0:  # after Run All's confirmed write, the recording's numbers: the demo data came back
            expect(last).to_contain_text("4,162")  # leads not contacted, as recorded (the write made it 4,159)
            expect(panel.locator(".nx-toast")).to_have_count(0, timeout=20_000)  # "Demo data restored: ..."
            panel.locator(".nx-scroll").evaluate(
                "(s) => { const q = [...s.querySelectorAll('.nx-user')].pop();"
                " s.scrollTop += q.getBoundingClientRect().top - s.getBoundingClientRect().top - 8; }"
            )
            screenshot(page, "newcomer-panel-answer.png")  # the README's first screenshot (docs/panel.png)
    expect(panel.locator(ANSWERS).last.locator(".nx-confirm .nx-confirm-yes")).to_be_enabled()

    answer_by(
        page,
        panel,
        lambda: (
            panel.locator(".nx-input").fill("What is the weather like in Lisbon?"),
            panel.locator(".nx-input").press("Enter"),
        ),
    )
    reply = panel.locator(ANSWERS).last
    expect(reply.locator(".nx-error")).to_have_count(0)
    expect(reply).to_contain_text("“What is the weather like in Lisbon?” is not one of the questions this demo")
    expect(reply).to_contain_text("OPENAI_API_KEY")
    expect(reply).to_contain_text("OPENAI_BASE_URL (README › Use a local model)")
    assert "re-record" not in reply.inner_text().lower()
    assert panel.locator(".nx-error").count() == 0
    screenshot(page, "newcomer-unrecorded.png")
    assert console == [], console


def test_the_confirm_card_fits_a_280_px_side_area_with_whole_words_and_its_buttons_in_view(newcomer):
    _, page, console = newcomer
    panel = panel_of(page, "quickstart.ipynb")
    widen_side_area(page, 280)
    assert abs(page.locator(SIDE).bounding_box()["width"] - 280) <= 6
    card = panel.locator(".nx-confirm").last
    card.scroll_into_view_if_needed()
    page.wait_for_timeout(400)
    measured = card.evaluate(
        """(card) => {
          const panel = card.closest('.nx-panel'), scroller = card.closest('.nx-scroll');
          const box = (n) => n.getBoundingClientRect();
          // A word is broken when its letters land on two lines (a hyphen or a slash may end a line).
          const broken = [];
          const walker = document.createTreeWalker(card, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            if (node.parentElement.closest('pre')) continue;  // SQL wraps between tokens, tested elsewhere
            for (const m of node.data.matchAll(/[^\\s\\-\\u2013\\u2014\\/]+/g)) {
              const range = document.createRange();
              range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
              const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
              if (tops.size > 1) broken.push(m[0]);
            }
          }
          const cells = [...card.querySelectorAll('.nxl-pv-table td, .nxl-pv-table th')].map((c) => box(c).width);
          const wraps = [...card.querySelectorAll('.nxl-pv-wrap')].map((w) => ({
            scrolls: w.scrollWidth > w.clientWidth, inside: box(w).right <= box(card).right + 0.5 }));
          return {
            panelOverflow: panel.scrollWidth - panel.clientWidth, scrollerOverflow: scroller.scrollWidth - scroller.clientWidth,
            card: box(card).toJSON(), panelBox: box(panel).toJSON(), scrollerBox: box(scroller).toJSON(),
            buttons: [...card.querySelectorAll('.nx-confirm-yes, .nx-confirm-no')].map((b) => box(b).toJSON()),
            broken, narrowest: Math.min(...cells), wraps,
          };
        }"""
    )
    assert measured["panelOverflow"] <= 0 and measured["scrollerOverflow"] <= 0, measured
    assert measured["card"]["right"] <= measured["panelBox"]["right"] + 0.5, measured
    assert measured["broken"] == [], f"words broken across lines: {measured['broken']}"
    assert measured["narrowest"] >= 40, f"a preview column is {measured['narrowest']:.0f} px wide"
    assert measured["wraps"] and all(w["inside"] for w in measured["wraps"]), measured["wraps"]
    assert any(w["scrolls"] for w in measured["wraps"]), "the wide preview scrolls inside its own frame"
    scroller = measured["scrollerBox"]
    for button in measured["buttons"]:  # Confirm and Cancel: whole, inside the panel and in view
        assert button["left"] >= measured["panelBox"]["left"] and button["right"] <= measured["panelBox"]["right"]
        assert scroller["top"] <= button["top"] and button["bottom"] <= scroller["bottom"], (button, scroller)
    # Scrolled so that the card's top is in view and its end is not: the buttons stay in view.
    card.evaluate(
        "(c) => { const s = c.closest('.nx-scroll'); s.scrollTop += c.getBoundingClientRect().top - s.getBoundingClientRect().top - 4; }"
    )
    page.wait_for_timeout(300)
    yes = card.locator(".nx-confirm-yes").bounding_box()
    view = panel.locator(".nx-scroll").bounding_box()
    assert view["y"] <= yes["y"] and yes["y"] + yes["height"] <= view["y"] + view["height"] + 0.5
    screenshot(page, "newcomer-confirm-280.png", panel)
    widen_side_area(page, 420)
    assert console == [], console


def test_a_second_notebook_has_its_own_panel_and_conversation_and_the_first_keeps_its_own(newcomer):
    _, page, console = newcomer
    first = panel_of(page, "quickstart.ipynb")
    first_questions = first.locator(".nx-user").all_text_contents()
    open_in_lab(page, "lead-review.ipynb")
    run_all_cells(page, timeout=600)
    add_cell_and_run(page, "%nexus panel")
    second = panel_of(page, "lead-review.ipynb")
    second.wait_for(state="attached", timeout=60_000)
    expect(page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab", has_text="Nexus · lead-review.ipynb")).to_have_count(
        1
    )
    expect(second.locator(".nx-subtitle")).to_contain_text("lead-review.ipynb")
    # Its own conversation: the questions its cells asked, none of the quickstart's.
    asked = second.locator(".nx-user").all_text_contents()
    assert asked[0] == "Weekly review of the Kafka Ecosystem project: funnel by status and new leads per week"
    assert not set(asked) & set(first_questions)
    question = "Which companies have several strong contributors?"
    answer_by(page, second, lambda: second.locator(".nx-recorded-chip", has_text=question).click())
    expect(second.locator(ANSWERS).last.locator(".nx-error")).to_have_count(0)
    expect(second.locator(ANSWERS).last.locator(".nx-dash")).to_have_count(1)
    assert second.locator(".nx-user").all_text_contents() == [*asked, question]
    screenshot(page, "newcomer-second-notebook.png")

    # Back to the first notebook and its tab: its own conversation, as it was.
    page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="quickstart.ipynb").click()
    show_side_tab(page, "quickstart.ipynb")
    expect(first).to_be_visible()
    assert first.locator(".nx-user").all_text_contents() == first_questions
    assert console == [], console


def test_a_new_notebook_starts_a_new_conversation_and_says_no_model_is_connected(newcomer):
    lab, page, console = newcomer
    (lab.root / "scratch.ipynb").write_text((lab.root / "quickstart.ipynb").read_text())  # its kernelspec
    import nbformat

    nb = nbformat.read(lab.root / "scratch.ipynb", as_version=4)
    nb.cells = [nbformat.v4.new_code_cell("%load_ext nexusleads_lab\n%nexus panel")]
    nbformat.write(nb, lab.root / "scratch.ipynb")
    open_in_lab(page, "scratch.ipynb")
    run_cell(page, 0, timeout=180)
    panel = panel_of(page, "scratch.ipynb")
    panel.wait_for(state="attached", timeout=60_000)
    expect(panel.locator(".nx-empty")).to_be_visible()
    expect(panel.locator(".nx-empty-title")).to_have_text("Ask about your leads from scratch.ipynb")
    expect(panel.locator(".nx-empty-text")).to_contain_text("No model is connected")
    expect(panel.locator(".nx-empty-text")).to_contain_text("OPENAI_API_KEY")
    assert panel.locator(".nx-user").count() == 0 and panel.locator(".nx-suggestion").count() == 0
    screenshot(page, "newcomer-new-notebook.png", panel)
    assert console == [], console


def test_charts_of_two_notebooks_side_by_side_stay_inside_their_outputs(newcomer):
    _, page, console = newcomer
    open_in_lab(page, "repo-coverage.ipynb", mode="split-right")
    run_all_cells(page, timeout=600)
    page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="quickstart.ipynb").click()
    run_all_cells(page, timeout=600)
    page.wait_for_timeout(1500)  # the side area stays open: each notebook has about a quarter of the window
    charts = page.evaluate(
        """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedVegaCommon5')].map((v) => {
             const out = v.closest('.jp-OutputArea-output').getBoundingClientRect();
             const notebook = v.closest('.jp-NotebookPanel').getBoundingClientRect();
             const painted = v.querySelector('canvas, svg');
             const p = painted ? painted.getBoundingClientRect() : null;
             return { notebook: v.closest('.jp-NotebookPanel').querySelector('.jp-Notebook') && v.closest('.jp-NotebookPanel').id,
                      out: out.toJSON(), painted: p && p.toJSON(), panelRight: notebook.right };
           })"""
    )
    assert len({c["notebook"] for c in charts}) == 2, "both notebooks show charts"
    assert len(charts) >= 6
    for chart in charts:
        painted, out = chart["painted"], chart["out"]
        assert painted and painted["width"] > 150, chart
        assert out["left"] - 0.5 <= painted["left"] and painted["right"] <= out["right"] + 0.5, chart
        assert painted["right"] <= chart["panelRight"], chart
    page.evaluate(
        "() => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden)').forEach((p) => {"
        " const v = p.querySelector('.jp-RenderedVegaCommon5'); if (v) v.scrollIntoView({block: 'start'}); })"
    )
    page.wait_for_timeout(500)
    screenshot(page, "newcomer-side-by-side.png")  # the README's docs/side-by-side.png
    assert console == [], console


def test_after_a_kernel_restart_load_ext_alone_lets_the_panel_answer(newcomer):
    _, page, console = newcomer
    page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="quickstart.ipynb").click()
    wait_for_idle(page)
    restart_kernel_from_the_menu(page)
    add_cell_and_run(page, "%load_ext nexusleads_lab")
    panel = page.locator(
        f'{SIDE} .jupyterlab-sidecar[data-nexus-notebook="quickstart.ipynb"] .nx-panel:not(.nx-offline)'
    )
    panel.wait_for(state="attached", timeout=60_000)
    page.wait_for_timeout(1000)  # the dead panel's tab closes
    show_side_tab(page, "quickstart.ipynb")
    expect(panel).to_be_visible()
    expect(panel.locator(".nx-subtitle")).to_contain_text("replay quickstart.cassette.jsonl")
    answer_by(page, panel, lambda: panel.locator(".nx-recorded-chip", has_text="Lead status breakdown").click())
    expect(panel.locator(ANSWERS).last.locator(".nx-error")).to_have_count(0)
    expect(panel.locator(ANSWERS).last.locator(".nx-dash")).to_have_count(1)
    screenshot(page, "newcomer-after-restart.png")
    # JupyterLab's own words while its kernel restarts; nothing else.
    assert [m for m in console if "Connection lost, reconnecting" not in m] == [], console
