"""Real JupyterLab in real Chromium, for tests and benchmarks (fixtures in ``conftest.py``).

Everything here is plain functions and classes so ``benchmarks/bench_browser.py`` drives the
same harness as the tests. Nothing of the developer's machine leaks in: Jupyter's config,
data, settings and workspace folders are temporary, news and update checks are off, and the
kernel reaches only the loopback model server and the test database.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from nexusleads_lab.testing.modelserver import ModelServer, Script, StepLike

CHROMIUM = Path(os.environ.get("NEXUS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


# -- the model ------------------------------------------------------------------------------------


class _Timed:
    """A step that notes when its answer was completely sent (for latency measurements)."""

    def __init__(self, step, served: list[float]) -> None:
        self._step = step
        self._served = served

    def serve(self, wire) -> None:
        try:
            self._step.serve(wire)
        finally:
            self._served.append(time.time())


class ScriptedModel:
    """The lab's model service: one loopback OpenAI-compatible server whose script tests swap.

    ``set_script([...])`` replaces the answers (steps from ``nexusleads_lab.testing.modelserver``:
    ``text``, ``tool_calls``, ``http_error`` ...), one per request, in order; ``requests`` are
    the request bodies received since the last ``set_script``; ``served`` the epoch times at
    which each answer finished streaming.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script = Script([])
        self.served: list[float] = []
        self.server = ModelServer(self)
        self._offset = 0

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def set_script(self, steps: Sequence[StepLike]) -> None:
        with self._lock:
            self._script = Script(list(steps))
            self._offset = len(self.server.requests)
            self.served = []

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.server.requests[self._offset :]

    @property
    def remaining(self) -> int:
        return self._script.remaining

    def step_for(self, request, number):
        with self._lock:
            script, served = self._script, self.served
        return _Timed(script.step_for(request, number), served)

    def close(self) -> None:
        self.server.close()


# -- the lab --------------------------------------------------------------------------------------


@dataclass
class Lab:
    """A running ``jupyter lab``: ``url`` (no trailing slash), ``token``, ``root`` (its notebook
    folder), ``model`` (a ``ScriptedModel``), ``env`` (what the kernel sees)."""

    url: str
    token: str
    root: Path
    model: ScriptedModel
    env: dict[str, str]
    process: subprocess.Popen
    log: Path
    home: Path
    _temp: Path = field(repr=False, default=None)

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def start_lab(
    nexus_home: Path,
    *,
    model: ScriptedModel | None = None,
    user: str = "lab-analyst",
    org: str = "acme-analytics",
    keyless: bool = False,
    timeout: float = 90.0,
) -> Lab:
    """Start ``jupyter lab`` on a free loopback port; its kernels open the database in ``nexus_home``.
    ``keyless``: as a newcomer's machine, with no model service configured (no ``OPENAI_*``) and no
    ``NEXUS_ORG`` (the shipped notebooks set theirs)."""
    model = model or ScriptedModel()
    temp = Path(tempfile.mkdtemp(prefix="nexus-lab-"))
    root = temp / "notebooks"
    root.mkdir()
    config, data, settings, workspaces, runtime = (
        temp / n for n in ("config", "data", "settings", "workspaces", "runtime")
    )
    _write_json(
        config / "jupyter_server_config.json",
        {
            "LabApp": {
                "news_url": None,
                "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
                "expose_app_in_browser": True,
            },
            "ServerApp": {"open_browser": False},
        },
    )
    _write_json(
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    _write_json(
        settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings", {"windowingMode": "none"}
    )
    token = uuid.uuid4().hex
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "OPENAI_", "NEXUS_", "DATABASE_URL"))},
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(data),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(workspaces),
        "JUPYTER_PLATFORM_DIRS": "1",
        "NEXUS_HOME": str(nexus_home),
        "NEXUS_USER": user,
        "NEXUS_ORG": org,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": model.base_url,
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    if keyless:
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NEXUS_ORG"):
            env.pop(name)
    log = temp / "lab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=None",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI often run as root
        cmd.append("--allow-root")
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, model, env, process, log, nexus_home, temp)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            tail = lab.log_tail()
            stop_lab(lab)
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    return lab
        except OSError:
            pass
        if time.monotonic() > deadline:
            tail = lab.log_tail()
            stop_lab(lab)
            raise RuntimeError(f"jupyter lab did not start within {timeout:.0f} s:\n{tail}")
        time.sleep(0.2)


def stop_lab(lab: Lab) -> None:
    """Shut the server down (it stops its kernels), then make sure the process group is gone."""
    try:
        request = urllib.request.Request(f"{lab.url}/api/shutdown?token={lab.token}", method="POST")
        urllib.request.urlopen(request, timeout=5).close()
        lab.process.wait(timeout=15)
    except Exception:
        pass
    if lab.process.poll() is None:
        try:
            os.killpg(lab.process.pid, signal.SIGTERM)
            lab.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(lab.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    lab.model.close()
    if lab._temp:
        shutil.rmtree(lab._temp, ignore_errors=True)


# -- the browser ----------------------------------------------------------------------------------


def browser_unavailable() -> str | None:
    """Why real-browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    return None


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


# -- notebooks ------------------------------------------------------------------------------------


def _end_sessions(lab: Lab, name: str) -> None:
    """Shut down a kernel still running for ``name`` (from an earlier test), so it starts fresh."""
    base = f"{lab.url}/api/sessions"
    with urllib.request.urlopen(f"{base}?token={lab.token}", timeout=10) as r:
        sessions = json.load(r)
    for session in sessions:
        if session.get("path") == name:
            request = urllib.request.Request(f"{base}/{session['id']}?token={lab.token}", method="DELETE")
            urllib.request.urlopen(request, timeout=30).close()


def write_notebook(lab: Lab, name: str, cells: Sequence[str | tuple[str, str]]) -> Path:
    """Write ``name`` into the lab's folder. A cell is code (a string) or ``("markdown", text)``.
    The notebook always names its kernel, or JupyterLab would block on a kernel dialog. A kernel
    left running for the same name by an earlier test is shut down: the notebook opens fresh."""
    _end_sessions(lab, name)
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python", "version": ".".join(map(str, sys.version_info[:3]))},
        }
    )
    for cell in cells:
        if isinstance(cell, tuple):
            kind, source = cell
            nb.cells.append(
                nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
            )
        else:
            nb.cells.append(nbformat.v4.new_code_cell(cell))
    path = lab.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


_KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return Boolean(w && w.content && w.content.widgets && w.content.widgets.length && kernel
    && kernel.status === 'idle' && w.sessionContext.isReady);
}"""


def open_notebook(page, lab: Lab, name: str, *, timeout: float = 60.0) -> None:
    """Open a notebook in a clean workspace and wait until its kernel is idle."""
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout * 1000)
    page.wait_for_function(_KERNEL_IDLE, timeout=timeout * 1000)


def wait_for_idle(page, *, timeout: float = 120.0) -> None:
    """Wait until no cell is queued or running and the kernel is idle."""
    page.wait_for_function(
        """() => {
          const w = window.jupyterapp.shell.currentWidget;
          const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
          const busy = [...w.content.node.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));
          return kernel && kernel.status === 'idle' && !busy;
        }""",
        timeout=timeout * 1000,
        polling=100,
    )


def run_all_cells(page, *, wait: bool = True, timeout: float = 180.0) -> None:
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    if wait:
        page.wait_for_timeout(200)
        wait_for_idle(page, timeout=timeout)


def run_cell(page, index: int, *, wait: bool = True, timeout: float = 120.0) -> float:
    """Run cell ``index``; returns the page's clock (ms since the epoch) when it was started."""
    started = page.evaluate(
        """(index) => {
          const app = window.jupyterapp;
          const notebook = app.shell.currentWidget.content;
          notebook.deselectAll();
          notebook.activeCellIndex = index;
          const t = Date.now();
          app.commands.execute('notebook:run-cell');
          return t;
        }""",
        index,
    )
    if wait:
        page.wait_for_function(
            "(index) => { const c = window.jupyterapp.shell.currentWidget.content.widgets[index];"
            " return c.model.executionCount !== null && !c.node.querySelector('.jp-InputPrompt').textContent.includes('*'); }",
            arg=index,
            timeout=timeout * 1000,
            polling=100,
        )
        wait_for_idle(page, timeout=timeout)
    return started


def cell(page, index: int):
    """A locator for cell ``index`` of the open notebook."""
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(index)


def screenshot(page, name: str, target=None) -> Path:
    """Save a PNG of the page (or of a locator) as ``tests/artifacts/<name>``.

    JupyterLab scrolls inside its notebook panel, so a cell taller than the window would be
    cut off: the window grows to fit it for the shot, then shrinks back."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    if target is None:
        page.screenshot(path=str(path))
        return path
    viewport = page.viewport_size
    box = target.bounding_box()
    needed = int(box["height"]) + 260 if box else 0
    if viewport and needed > viewport["height"]:
        page.set_viewport_size({"width": viewport["width"], "height": min(needed, 6000)})
        page.wait_for_timeout(300)
    try:
        target.scroll_into_view_if_needed()
        target.screenshot(path=str(path), animations="disabled")
    finally:
        if viewport and needed > viewport["height"]:
            page.set_viewport_size(viewport)
    return path


# -- kernels with their own environment --------------------------------------------------------


def add_kernelspec(lab: Lab, name: str, env: dict[str, str]) -> None:
    """A python kernel ``name`` in the lab's data folder whose environment overrides ``env``
    (e.g. ``{"NEXUS_USER": ""}``: a kernel as a new user's machine starts it, without the lab's
    identity variables). Write it before the page loads, so JupyterLab lists it."""
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({name})",
        "language": "python",
        "env": env,
    }
    _write_json(Path(lab.env["JUPYTER_DATA_DIR"]) / "kernels" / name / "kernel.json", spec)


def use_kernel(path: Path, name: str) -> None:
    """Make the notebook at ``path`` (from ``write_notebook``) ask for kernel ``name``."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": name, "display_name": f"Python ({name})", "language": "python"}
    nbformat.write(nb, path)


def restart_kernel_from_the_menu(page) -> None:
    """Kernel > Restart Kernel…, and accept the dialog, as a person does."""
    page.evaluate("() => { window.jupyterapp.commands.execute('kernelmenu:restart'); }")  # settles with the dialog
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.wait_for_function(_KERNEL_IDLE, timeout=60_000)


def widen_side_area(page, width: int = 500) -> None:
    """Drag the split handle so the side area is ``width`` px wide (JupyterLab opens it narrow)."""
    box = page.locator("#jp-right-stack").bounding_box()
    x, y = box["x"], box["y"] + box["height"] / 2
    page.mouse.move(x - 2, y)
    page.mouse.down()
    page.mouse.move(x - 2 - (width - box["width"]), y, steps=8)
    page.mouse.up()
    page.wait_for_timeout(200)
