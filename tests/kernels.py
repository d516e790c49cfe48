"""A real IPython kernel for tests (jupyter_client): what crashes natively shows as a dead process.

vl-convert panics on some inputs and takes the whole Python process with it (SIGABRT), which
no ``try`` can catch; inside pytest's own process such a test would end the run instead of
failing. ``Kernel.run`` executes code in a separate kernel, as JupyterLab would, and returns
its outputs, or raises ``KernelDied`` with the exit status.
"""

from __future__ import annotations

import base64
import os
import queue
import time
from dataclasses import dataclass, field
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
VEGA_MIME = "application/vnd.vega.v5+json"


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _untruncated(spec: Any) -> Any:
    """The spec with Vega's label truncation off, for vl-convert only: Vega cuts a long label by
    UTF-16 code units, which can split an emoji into a lone surrogate; a browser draws that as
    U+FFFD, but vl-convert's text measurer (serde_json) refuses it and the drawing fails."""
    if isinstance(spec, dict):
        return {k: (0 if k == "labelLimit" else _untruncated(v)) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_untruncated(v) for v in spec]
    return spec


class KernelDied(AssertionError):
    pass


@dataclass
class Outputs:
    """One execution's results: the final bundle of every output (display updates applied)."""

    bundles: list[dict[str, Any]] = field(default_factory=list)
    streams: str = ""
    errors: list[str] = field(default_factory=list)
    comms: list[dict[str, Any]] = field(default_factory=list)  # widget states opened

    @property
    def vegas(self) -> list[dict[str, Any]]:
        """The Vega specs of the charts, as JupyterLab's renderer receives them."""
        return [b[VEGA_MIME] for b in self.bundles if VEGA_MIME in b]

    @property
    def pngs(self) -> list[bytes]:
        return [base64.b64decode(b["image/png"]) for b in self.bundles if "image/png" in b]

    @property
    def svgs(self) -> list[str]:
        """Each chart drawn from exactly the Vega spec the browser gets (by vl-convert, here:
        the spec is checked for characters that would abort it first)."""
        import vl_convert as vlc

        from nexusleads_lab.safetext import has_unsafe

        drawn = []
        for spec in self.vegas:
            bad = [s for s in _strings(spec) if has_unsafe(s)]
            assert not bad, f"the chart's Vega spec holds unsafe text: {bad[:3]!r}"
            drawn.append(vlc.vega_to_svg(_untruncated(spec)))
        return drawn

    @property
    def widgets(self) -> list[dict[str, Any]]:
        return [b for b in self.bundles if WIDGET_VIEW in b]

    def texts(self) -> list[str]:
        return [v for b in self.bundles for k, v in b.items() if isinstance(v, str) and k != WIDGET_VIEW]


class Kernel:
    """A python3 kernel with exactly ``env`` as its environment (default: this process's)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.km = self.kc = None
        self.start()

    def start(self) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=self.env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def alive(self) -> bool:
        return self.km.is_alive()

    def exit_status(self) -> Any:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        return process.poll() if process is not None else "unknown"

    def ensure_alive(self) -> None:
        if not self.alive():
            self.stop()
            self.start()

    def run(self, code: str, timeout: float = 180) -> Outputs:
        msg_id = self.kc.execute(code)
        out = Outputs()
        slots: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise KernelDied(f"the kernel died while running the code (exit status {self.exit_status()})")
            try:
                msg = self.kc.get_iopub_msg(timeout=0.25)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no result within {timeout:.0f} s") from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind in ("display_data", "execute_result"):
                display_id = (content.get("transient") or {}).get("display_id")
                if display_id:
                    slots[display_id] = len(out.bundles)
                out.bundles.append(content["data"])
            elif kind == "update_display_data":
                out.bundles[slots[content["transient"]["display_id"]]] = content["data"]
            elif kind == "stream":
                out.streams += content["text"]
            elif kind == "error":
                out.errors.append("\n".join(content.get("traceback") or [content.get("evalue", "")]))
            elif kind == "comm_open":
                out.comms.append((content.get("data") or {}).get("state") or {})
            elif kind == "status" and content["execution_state"] == "idle":
                return out

    def stop(self) -> None:
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        except Exception:
            pass
