"""Bar and line charts with Altair, rendered offline, each with a static SVG twin.

In JupyterLab a chart is an ``alt.JupyterChart`` running on vl-convert's JavaScript bundle
(JupyterLab 4 does not render Altair 6's ``vegalite.v6`` mimetype, and the default renderer
loads Vega from a CDN). The bundle takes seconds to build, so it is cached on disk per
Altair and vl-convert version, and ``prewarm()`` builds it while the model is still thinking.

Sections arrive with their text already made safe (``render.render_response``): vl-convert
aborts the whole process on a C0 control character in a label. ``chart_svg`` refuses a spec
that still holds one rather than hand it over.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Mapping

from ..safetext import has_unsafe, visible
from .html import esc, style
from .parts import Part, widget_bundle

log = logging.getLogger(__name__)

ACCENT = "#6366f1"
ACCENT_2 = "#a855f7"
MUTED = "#64748b"  # readable on light and dark themes alike
WIDTH = 560
SERIES_COLORS = ["#6366f1", "#ec4899", "#14b8a6", "#f59e0b", "#8b5cf6", "#0ea5e9", "#ef4444", "#22c55e"]

_offline_lock = threading.Lock()
_prewarm_started = False


def _cache_file(altair_version: str, vlc_version: str) -> Path:
    import platformdirs

    folder = Path(platformdirs.user_cache_dir("nexusleads-lab"))
    return folder / f"jupyterchart-offline-{altair_version}-{vlc_version}.js"


def ensure_offline() -> None:
    """Make ``JupyterChart`` load Vega from vl-convert's bundle (built once, then read from disk)."""
    import altair as alt

    with _offline_lock:
        if alt.JupyterChart._is_offline:
            return
        import vl_convert as vlc

        cache = _cache_file(alt.__version__, vlc.__version__)
        try:
            alt.JupyterChart._esm = cache.read_text(encoding="utf-8")
            alt.JupyterChart._is_offline = True
            return
        except OSError:
            pass
        alt.JupyterChart.enable_offline()
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(alt.JupyterChart._esm, encoding="utf-8")
            tmp.replace(cache)
        except OSError:  # a read-only home only costs the rebuild next time
            log.debug("could not cache the offline chart bundle", exc_info=True)


def prewarm() -> None:
    """Import Altair and vl-convert and build the offline bundle in the background, once."""
    global _prewarm_started
    with _offline_lock:
        if _prewarm_started:
            return
        _prewarm_started = True

    def work() -> None:
        try:
            ensure_offline()
            # First use of each costs seconds: Altair's schema validation, vl-convert's engine.
            chart_svg(bars_chart({"type": "bars", "label": "", "items": [{"name": "a", "value": 1}]}))
        except Exception:  # only a head start; the real render reports problems
            log.debug("chart prewarm failed", exc_info=True)

    threading.Thread(target=work, name="nexus-chart-prewarm", daemon=True).start()


# -- specs ----------------------------------------------------------------------------------


def _configure(chart):
    return (
        chart.configure(background="transparent", font="system-ui, -apple-system, Segoe UI, Roboto, sans-serif")
        .configure_view(stroke=None)
        .configure_axis(
            labelColor=MUTED,
            titleColor=MUTED,
            gridColor="#94a3b8",
            gridOpacity=0.25,
            domain=False,
            ticks=False,
            labelFontSize=11,
            titleFontSize=11,
            titleFontWeight=500,
        )
        .configure_title(anchor="start", color=MUTED, fontSize=13, fontWeight=600, offset=10)
        .configure_legend(labelColor=MUTED, titleColor=MUTED, orient="bottom")
    )


def bars_chart(section: Mapping[str, Any]):
    import altair as alt
    import pandas as pd

    items = section.get("items") or []
    df = pd.DataFrame({"name": [str(i.get("name")) for i in items], "value": [i.get("value") for i in items]})
    fill = alt.Gradient(
        gradient="linear",
        stops=[alt.GradientStop(color=ACCENT, offset=0), alt.GradientStop(color=ACCENT_2, offset=1)],
        x1=0, x2=1, y1=0, y2=0,
    )  # fmt: skip
    base = alt.Chart(df).encode(
        y=alt.Y("name:N", sort=None, title=None, axis=alt.Axis(labelLimit=200, labelPadding=6)),
        x=alt.X("value:Q", title=None, axis=alt.Axis(tickCount=5, format=_axis_format(df["value"]))),
        tooltip=[alt.Tooltip("name:N", title="name"), alt.Tooltip("value:Q", title="value", format=",")],
    )
    bars = base.mark_bar(color=fill, cornerRadiusEnd=4, height={"band": 0.72})
    labels = base.mark_text(align="left", dx=5, fontSize=11, color=MUTED).encode(text=alt.Text("value:Q", format=","))
    chart = (bars + labels).properties(title=section.get("label") or "", width=WIDTH, height=alt.Step(24))
    return _configure(chart)


def line_chart(section: Mapping[str, Any]):
    import altair as alt
    import pandas as pd

    points = section.get("points") or []
    df = pd.DataFrame(
        {
            "x": [p.get("x") for p in points],
            "y": [p.get("y") for p in points],
            "series": [p.get("series") or "" for p in points],
        }
    )
    x_type = {"time": "T", "number": "Q"}.get(section.get("x_type") or "category", "O")
    if x_type == "T":
        df["x"] = pd.to_datetime(df["x"], errors="coerce", utc=True)
    x_label, y_label = section.get("x_label") or None, section.get("y_label") or None
    x = alt.X(f"x:{x_type}", title=_in_expression(x_label), axis=alt.Axis(title=x_label), sort=None if x_type == "O" else "ascending")
    y = alt.Y("y:Q", title=_in_expression(y_label), axis=alt.Axis(title=y_label, format=_axis_format(df["y"]), tickCount=5))
    tooltip = [alt.Tooltip(f"x:{x_type}", title=_in_expression(x_label or "x")), alt.Tooltip("y:Q", title=_in_expression(y_label or "y"), format=",")]
    encoding = {"x": x, "y": y, "tooltip": tooltip}
    series = section.get("series") or []
    point = {"size": 36, "filled": True}
    if series:
        palette = series_colors(series) if len(series) <= len(SERIES_COLORS) else alt.Undefined
        encoding["color"] = alt.Color("series:N", title=None, scale=alt.Scale(domain=series, range=palette))
        tooltip.insert(0, alt.Tooltip("series:N", title="series"))
        mark = alt.Chart(df).mark_line(point=alt.OverlayMarkDef(**point), strokeWidth=2.2, interpolate="monotone")
    else:
        mark = alt.Chart(df).mark_line(
            color=ACCENT, point=alt.OverlayMarkDef(color=ACCENT, **point), strokeWidth=2.2, interpolate="monotone"
        )
    chart = mark.encode(**encoding).properties(title=section.get("label") or "", width=WIDTH, height=240)
    return _configure(chart)


CHARTS = {"bars": bars_chart, "line": line_chart}


def _in_expression(title: str | None) -> str | None:
    """A field title as vega-lite needs it where it writes the title into a Vega expression (the
    tooltip, the marks' aria description): it escapes quotes there but not backslashes, so a
    title's ``\\x0B`` would turn back into the control character it shows, and ``\\"`` would end
    the string. Axis titles are plain text and take the title as it is."""
    return title.replace("\\", "\\\\") if title else title


def series_colors(series: list[str]) -> list[str]:
    """Well-known values keep their colours (hot is red, as on the pills); others take the palette."""
    from ..agent.responses import KNOWN_VALUE_COLORS
    from .html import PILL_HEX

    spare = iter(c for c in SERIES_COLORS)
    return [PILL_HEX.get(KNOWN_VALUE_COLORS.get(str(name).lower(), ""), None) or next(spare) for name in series]


def _axis_format(values) -> str:
    """Thousands separators for everyday numbers; SI prefixes (12k, 3.4M) only for big ones."""
    import pandas as pd

    peak = pd.to_numeric(values, errors="coerce").abs().max()
    return "~s" if pd.notna(peak) and peak >= 100_000 else ",~r"


# -- outputs --------------------------------------------------------------------------------


class UnsafeChartText(ValueError):
    """A chart spec still holds a character that would abort vl-convert (and the kernel with it)."""


def _check_text(value: Any) -> None:
    if isinstance(value, str):
        if has_unsafe(value):
            raise UnsafeChartText(f"the chart holds an unsafe character ({visible(value)[:80]!r}); it was not drawn")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k)
            _check_text(v)
    elif isinstance(value, list):
        for v in value:
            _check_text(v)


def chart_svg(chart) -> str:
    import vl_convert as vlc

    spec = chart.to_dict()
    _check_text(spec)  # a native panic cannot be caught: an exception can
    try:
        from altair.utils._importers import vl_version_for_vl_convert

        return vlc.vegalite_to_svg(spec, vl_version=vl_version_for_vl_convert())
    except ImportError:  # pragma: no cover - private helper moved
        return vlc.vegalite_to_svg(spec)


def describe(section: Mapping[str, Any]) -> str:
    kind = section.get("type")
    label = section.get("label") or ("Trend" if kind == "line" else "Chart")
    if kind == "bars":
        items = section.get("items") or []
        lines = [f"{label}"] + [f"  {str(i.get('name'))[:28]:<28} {i.get('value')}" for i in items]
        return "\n".join(lines)
    return f"{label}: line chart, {len(section.get('points') or [])} points"


def chart_parts(section: Mapping[str, Any], *, interactive: bool = True) -> list[Part]:
    """The chart as a live widget (when ``interactive``) followed by its static SVG twin.

    Both are built after the rest of the answer is on screen: the cards and tables around a
    chart should not wait for Altair. A chart that cannot be drawn says so in its place."""
    text = describe(section)
    built: list = []
    failed: list = []  # the live chart already said it could not be drawn

    def chart():
        if not built:
            built.append(CHARTS[section["type"]](section))
        return built[0]

    def twin(report: bool) -> dict[str, Any]:
        try:
            svg = chart_svg(chart())
        except Exception as exc:
            log.exception("static chart failed")
            return unavailable(section, exc) if report else {"text/plain": ""}
        return {
            "text/html": f'{style("answer.css")}<div class="nxl nxl-answer nxl-chart-static">{svg}</div>',
            "image/svg+xml": svg,
            "text/plain": text,
        }

    if not interactive:
        return [Part({}, later=lambda: twin(report=True))]

    def live() -> dict[str, Any]:
        try:
            import altair as alt

            ensure_offline()
            widget = alt.JupyterChart(chart(), embed_options={"renderer": "svg", "actions": False})
            return widget_bundle(widget, text)
        except Exception as exc:
            log.exception("chart failed")
            failed.append(exc)
            return unavailable(section, exc)

    # Both hold their place while the cards and tables around them are shown, then fill in:
    # first the live chart, then its static twin (hidden while the widget lives).
    return [Part({}, static=False, later=live), Part({}, later=lambda: twin(report=not failed))]


def unavailable(section: Mapping[str, Any], exc: Exception) -> dict[str, Any]:
    why = visible(f"{type(exc).__name__}: {exc}")
    label = section.get("label") or "Chart"
    return {
        "text/html": f'{style("answer.css")}<div class="nxl nxl-answer"><div class="nxl-caption">'
        f"{esc(label)}: could not draw this chart ({esc(why)}).</div></div>",
        "text/plain": f"{label}: could not draw this chart ({why}).",
    }
