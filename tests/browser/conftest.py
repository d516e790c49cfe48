"""Real-browser tests: JupyterLab + Chromium (Playwright) against a scripted model and the real database.

Fixtures (stable; other browser tests rely on them)
---------------------------------------------------
``lab`` (session)
    A running ``jupyter lab`` (``lab_harness.Lab``) on a free loopback port with a token and a
    temporary notebook folder (``lab.root``). Its kernels see ``NEXUS_HOME`` = the ``db``
    fixture's folder (``pg_root / "main"``, so they open the same embedded PostgreSQL),
    ``NEXUS_USER=lab-analyst``, ``NEXUS_ORG=acme-analytics``, ``OPENAI_API_KEY=test-key`` and
    ``OPENAI_BASE_URL`` = ``lab.model.base_url``. ``lab.model`` is a ``ScriptedModel``:
    ``lab.model.set_script([text(...), tool_calls([...])])`` sets the answers for the next
    requests; ``lab.model.requests`` are the bodies received since. Jupyter config, data,
    settings and workspaces are temporary; news and update checks are off; notebook
    windowing is off (every cell is in the DOM); ``window.jupyterapp`` is exposed.
``browser`` (session)
    Chromium (``/usr/bin/chromium``) via Playwright's sync API. Without Chromium or
    Playwright the tests skip with the reason; with ``NEXUS_REQUIRE_BROWSER=1`` they fail.
``page`` (function)
    A fresh page (1400x1000) in its own context; closed after the test.

Helpers (import them from ``lab_harness``)
-------------------------------------------
``write_notebook(lab, name, cells)``   cells: code strings or ``("markdown", text)``; always
                                       with a kernelspec and language_info; a kernel still
                                       running for ``name`` is shut down (fresh kernel)
``open_notebook(page, lab, name)``     opens it and waits for an idle kernel
``run_all_cells(page)``, ``run_cell(page, i)``, ``wait_for_idle(page)``, ``cell(page, i)``
``screenshot(page, name, target=None)`` saves ``tests/artifacts/<name>``

Every test here is marked ``browser``. Widgets can be zero-height while they load: wait for
them with ``state="attached"``. All tests share one lab (and one database), so a test whose
result depends on stored conversations runs its notebook as its own user: a first cell
``%env NEXUS_USER=<unique>`` before anything creates the assistant.
"""

from __future__ import annotations

import os

import pytest

from lab_harness import (  # noqa: F401 - re-exported for discoverability
    Lab,
    ScriptedModel,
    browser_unavailable,
    cell,
    launch_browser,
    open_notebook,
    run_all_cells,
    run_cell,
    screenshot,
    start_lab,
    stop_lab,
    wait_for_idle,
    write_notebook,
)


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    why = browser_unavailable()
    required = os.environ.get("NEXUS_REQUIRE_BROWSER") == "1"
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.browser)
            if why and not required:  # skip before starting JupyterLab for nothing
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session")
def lab(db, pg_root) -> Lab:
    running = start_lab(pg_root / "main")
    yield running
    stop_lab(running)


@pytest.fixture(scope="session")
def browser():
    why = browser_unavailable()
    if why:
        if os.environ.get("NEXUS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"NEXUS_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_browser(playwright)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()
