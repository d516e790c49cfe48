"""Bar and line charts with Altair, shown by JupyterLab's own Vega renderer, each with a PNG twin.

A chart's output is one bundle: the compiled Vega spec (``application/vnd.vega.v5+json``,
compiled by vl-convert, so JupyterLab 4's built-in renderer draws it with the one Vega runtime
the page already has, offline, a few KB per chart), a PNG of the same chart for viewers that
cannot run Vega (nbconvert, nbviewer, GitHub), and a one-line text. Nothing inside the output
carries an id, so any number of charts and notebooks share a page. The PNG also stops
JupyterLab from adding its own (it snapshots a Vega output that has none, which would land in
the saved notebook); it is drawn with flat colours and a 64-colour palette to stay small.

``altair_bundle`` does the same for a person's own Altair charts once the extension is loaded
(``install_altair_formatter``), unless they chose an Altair renderer themselves.

Sections arrive with their text already made safe (``render.render_response``): vl-convert
aborts the whole process on a C0 control character in a label. ``compile_spec`` refuses a spec
that still holds one rather than hand it over; a person's own chart has its text made visible.
"""

from __future__ import annotations

import base64
import copy
import io
import logging
import threading
from collections.abc import Mapping
from typing import Any

from ..safetext import has_unsafe, visible
from .html import esc, style
from .parts import Part
from .text import section_text

log = logging.getLogger(__name__)

VEGA_MIME = "application/vnd.vega.v5+json"
# JupyterLab 4 draws that mimetype with Vega 5: a spec that says v6 (vl-convert's) makes it warn.
VEGA_SCHEMA = "https://vega.github.io/schema/vega/v5.json"
ACCENT = "#6366f1"
ACCENT_2 = "#a855f7"
MUTED = "#64748b"  # readable on light and dark themes alike
WIDTH = 480  # the picture's plot area (labels add up to 200 px); live charts take their output's width
FALLBACK_WIDTH = 560  # a live chart's whole width where its output has none to measure (a hidden tab)
LABEL_ROOM = 52  # pixels after the longest bar for its value label (less in a very narrow chart)
NAME_LIMIT = "isFinite(containerSize()[0]) && containerSize()[0] > 0 ? clamp(containerSize()[0] * 0.4, 60, 200) : 200"
MAX_WIDTH = 820  # wider than this, a full-width notebook would stretch a few bars across the screen
SERIES_COLORS = ["#6366f1", "#ec4899", "#14b8a6", "#f59e0b", "#8b5cf6", "#0ea5e9", "#ef4444", "#22c55e"]
PNG_COLORS = 64  # palette size of the static twin: 8 KB for a 20-bar chart, no visible banding on flat fills
# defaultStyle off: vega-embed's stylesheet makes the chart's element an inline-block, which has no
# width of its own to measure, so a chart as wide as its output ("container") would be 0 px wide.
EMBED_OPTIONS = {"actions": False, "defaultStyle": False}

_prewarm_lock = threading.Lock()
_prewarm_started = False
# One vl-convert call at a time in this process. Its engine takes its own lock without giving up
# the GIL, and a call can run Python while it holds that lock (a garbage collection's callbacks):
# two threads converting at once (the prewarm thread and a cell's first chart) then wait for each
# other for ever. Waiting here gives up the GIL, so the call in progress can finish.
_vl_convert = threading.Lock()


def prewarm() -> None:
    """Import Altair and start vl-convert's engine in the background, once (each costs seconds)."""
    global _prewarm_started
    with _prewarm_lock:
        if _prewarm_started:
            return
        _prewarm_started = True

    def work() -> None:
        try:
            chart_bundle(bars_chart({"type": "bars", "label": "", "items": [{"name": "a", "value": 1}]}))
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
        x1=0,
        x2=1,
        y1=0,
        y2=0,
    )
    x_scale: Any = alt.Undefined
    peak = pd.to_numeric(df["value"], errors="coerce")
    if len(peak) and peak.notna().any() and peak.min() >= 0 and peak.max() > 0:
        # The value labels after the longest bar need room at every width: the axis ends where the
        # longest bar leaves LABEL_ROOM pixels, so a narrow chart shows its key numbers whole.
        room = f"min({LABEL_ROOM}, width * 0.3)"
        x_scale = alt.Scale(domainMax=alt.ExprRef(f"{float(peak.max())} * width / max(width - {room}, 1)"), nice=False)
    base = alt.Chart(df).encode(
        # Names take at most 40% of a narrow output (cut ones show whole in the tooltip), 200 px at most.
        y=alt.Y("name:N", sort=None, title=None, axis=alt.Axis(labelLimit=alt.ExprRef(NAME_LIMIT), labelPadding=6)),
        x=alt.X("value:Q", title=None, scale=x_scale, axis=alt.Axis(tickCount=5, format=_axis_format(df["value"]))),
        tooltip=[alt.Tooltip("name:N", title="name"), alt.Tooltip("value:Q", title="value", format=",")],
    )
    bars = base.mark_bar(color=fill, cornerRadiusEnd=4, height={"band": 0.72})
    labels = base.mark_text(align="left", dx=5, fontSize=11, color=MUTED).encode(text=alt.Text("value:Q", format=","))
    chart = (bars + labels).properties(title=section.get("label") or "", width="container", height=alt.Step(24))
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
    x = alt.X(
        f"x:{x_type}",
        title=_in_expression(x_label),
        axis=alt.Axis(title=x_label),
        sort=None if x_type == "O" else "ascending",
    )
    y = alt.Y(
        "y:Q", title=_in_expression(y_label), axis=alt.Axis(title=y_label, format=_axis_format(df["y"]), tickCount=5)
    )
    tooltip = [
        alt.Tooltip(f"x:{x_type}", title=_in_expression(x_label or "x")),
        alt.Tooltip("y:Q", title=_in_expression(y_label or "y"), format=","),
    ]
    encoding = {"x": x, "y": y, "tooltip": tooltip}
    series = section.get("series") or []
    point: dict[str, Any] = {"size": 36, "filled": True}
    if series:
        palette = series_colors(series) if len(series) <= len(SERIES_COLORS) else alt.Undefined
        encoding["color"] = alt.Color("series:N", title=None, scale=alt.Scale(domain=series, range=palette))
        tooltip.insert(0, alt.Tooltip("series:N", title="series"))
        mark = alt.Chart(df).mark_line(point=alt.OverlayMarkDef(**point), strokeWidth=2.2, interpolate="monotone")
    else:
        mark = alt.Chart(df).mark_line(
            color=ACCENT, point=alt.OverlayMarkDef(color=ACCENT, **point), strokeWidth=2.2, interpolate="monotone"
        )
    chart = mark.encode(**encoding).properties(title=section.get("label") or "", width="container", height=240)
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
    from ..agent.responses.colors import KNOWN_VALUE_COLORS
    from .palette import PILL_HEX

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


def _made_visible(value: Any) -> Any:
    """A person's own spec with every unsafe character shown as an escape instead."""
    if isinstance(value, str):
        return visible(value) if has_unsafe(value) else value
    if isinstance(value, dict):
        return {_made_visible(k): _made_visible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_made_visible(v) for v in value]
    return value


def _vl_version() -> str | None:
    """The Vega-Lite version Altair writes for (None: vl-convert's own default)."""
    try:
        from altair.utils._importers import vl_version_for_vl_convert

        return vl_version_for_vl_convert()
    except ImportError:  # pragma: no cover - private helper moved
        return None


def compile_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A Vega-Lite spec compiled to Vega, which JupyterLab's renderer draws as it is."""
    import vl_convert as vlc

    _check_text(spec)  # a native panic cannot be caught: an exception can
    version = _vl_version()
    with _vl_convert:
        vega = vlc.vegalite_to_vega(dict(spec), vl_version=version)
    vega["$schema"] = VEGA_SCHEMA
    _measure_or_fall_back(vega)
    return vega


def _measure_or_fall_back(vega: dict[str, Any]) -> None:
    """A chart as wide as its output ("container") measures the element it is drawn in; where that
    has no width (a tab not shown yet, or vega-embed's inline-block style from another output on
    the page), it takes ``FALLBACK_WIDTH`` instead of drawing nothing."""
    for signal in vega.get("signals") or []:
        if signal.get("name") not in ("width", "height") or "containerSize()" not in str(signal.get("init")):
            continue
        axis = 0 if signal["name"] == "width" else 1
        fallback = FALLBACK_WIDTH if axis == 0 else 300
        measured = f"containerSize()[{axis}]"
        expression = f"isFinite({measured}) && {measured} > 0 ? min({measured}, {MAX_WIDTH}) : {fallback}"
        signal["init"] = expression
        for handler in signal.get("on") or []:
            handler["update"] = expression


#: Longest text the picture shows, in code points: vl-convert must not truncate text itself (its
#: cut can split a character outside the BMP, and its text measuring then fails), so the picture
#: draws labels whole, and only a longer one is shortened here, kept distinct from its neighbours.
PNG_LABEL_CHARS = 60


def _shortened(values: list[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for value in values:
        if isinstance(value, str) and len(value) > PNG_LABEL_CHARS:
            short, n = value[: PNG_LABEL_CHARS - 1] + "…", 1
            while short in seen:  # two long names with one beginning stay two bars
                n += 1
                short = f"{value[: PNG_LABEL_CHARS - 4]}… {n}"
            value = short
        if isinstance(value, str):
            seen.add(value)
        out.append(value)
    return out


def flat_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec for the static twin: gradients become their first colour (a palette PNG of a
    gradient bands and weighs three times more), no per-mark aria descriptions, and labels drawn
    whole (see ``PNG_LABEL_CHARS``)."""
    flat = copy.deepcopy(dict(spec))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in list(node.items()):
                if isinstance(value, dict) and value.get("gradient") and value.get("stops"):
                    node[key] = value["stops"][0].get("color", ACCENT)
                elif key in ("labelLimit", "limit"):
                    node[key] = 0  # 0: no truncation by the renderer
                elif key == "values" and isinstance(value, list) and value and isinstance(value[0], dict):
                    columns = {k for row in value if isinstance(row, dict) for k in row}
                    for column in columns:
                        kept = _shortened([row.get(column) for row in value])
                        for row, short in zip(value, kept):
                            if column in row:
                                row[column] = short
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(flat)
    for datasets in (flat.get("datasets") or {}).values():
        walk({"values": datasets})
    if flat.get("width") == "container":  # a picture has no container: the plot area a notebook fits
        flat["width"] = WIDTH
    if flat.get("height") == "container":
        flat["height"] = 240
    config = flat.setdefault("config", {})
    config["aria"] = False
    for part, key in (("axis", "labelLimit"), ("legend", "labelLimit"), ("title", "limit")):
        config.setdefault(part, {})[key] = 0
    return flat


def chart_png(spec: Mapping[str, Any]) -> bytes:
    """The static twin: drawn by vl-convert at scale 1, then stored with a small palette."""
    import vl_convert as vlc

    flat = flat_spec(spec)
    _check_text(flat)
    version = _vl_version()
    with _vl_convert:
        png = vlc.vegalite_to_png(flat, scale=1, vl_version=version)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency; the raw PNG is only bigger
        return png
    image = Image.open(io.BytesIO(png))
    small = image.quantize(colors=PNG_COLORS, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue() if out.tell() < len(png) else png


def spec_bundle(spec: Mapping[str, Any], text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """One output for a chart: Vega for JupyterLab, a PNG for everything else, and a line of text.
    The product's charts are as wide as their output (``width="container"``, as a person's own
    Altair chart may be too); the picture has the fixed width a notebook fits."""
    data = {VEGA_MIME: compile_spec(spec), "text/plain": text}
    try:
        data["image/png"] = base64.b64encode(chart_png(spec)).decode("ascii")
    except UnsafeChartText:
        raise
    except Exception:  # the picture is for viewers without Vega: the live chart still stands
        log.warning("the chart's picture could not be drawn; it is shown live only", exc_info=True)
    return data, {VEGA_MIME: {"embed_options": dict(EMBED_OPTIONS)}}


def chart_bundle(chart, text: str = "chart") -> tuple[dict[str, Any], dict[str, Any]]:
    return spec_bundle(chart.to_dict(), text)


def chart_parts(section: Mapping[str, Any], *, interactive: bool = True) -> list[Part]:
    """The chart as one output, built after the rest of the answer is on screen: the cards and
    tables around a chart should not wait for Altair. A chart that cannot be drawn says so in
    its place. Not ``interactive``: the picture alone (no Vega, no tooltips)."""
    part = Part({})

    def build() -> dict[str, Any]:
        try:
            data, metadata = chart_bundle(CHARTS[section["type"]](section), section_text(section))
        except Exception as exc:
            log.exception("chart failed")
            return unavailable(section, exc)
        if not interactive:
            del data[VEGA_MIME]
            return data
        part.metadata = metadata
        return data

    part.later = build
    return [part]


def unavailable(section: Mapping[str, Any], exc: Exception) -> dict[str, Any]:
    why = visible(f"{type(exc).__name__}: {exc}")
    label = section.get("label") or "Chart"
    return {
        "text/html": f'{style("answer.css")}<div class="nxl nxl-answer"><div class="nxl-caption">'
        f"{esc(label)}: could not draw this chart ({esc(why)}).</div></div>",
        "text/plain": f"{label}: could not draw this chart ({why}).",
    }


# -- a person's own Altair charts ------------------------------------------------------------


def altair_bundle(chart) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """An Altair chart as the product shows its own, while Altair's renderer is its default
    (which in JupyterLab 4 draws nothing offline). ``None`` hands the chart back to Altair."""
    import altair as alt

    if alt.renderers.active != "default":
        return None  # the person chose a renderer: theirs wins
    try:
        spec = _made_visible(chart.to_dict())
        title = spec.get("title")
        title = title.get("text") if isinstance(title, dict) else title
        return spec_bundle(spec, f"{visible(str(title)) if title else 'Altair chart'}: chart")
    except Exception:
        log.debug("own chart fell back to Altair's renderer", exc_info=True)
        return None


ALTAIR_API_MODULES = ("altair.vegalite.v6.api", "altair.vegalite.v5.api")


def install_altair_formatter(ip) -> None:
    """Show Altair charts through ``altair_bundle``, registered by name: Altair is not imported."""
    formatter = ip.display_formatter.mimebundle_formatter
    for module in ALTAIR_API_MODULES:
        formatter.for_type_by_name(module, "TopLevelMixin", _format_altair)


def uninstall_altair_formatter(ip) -> None:
    formatter = ip.display_formatter.mimebundle_formatter
    try:
        for module in ALTAIR_API_MODULES:
            formatter.pop(f"{module}.TopLevelMixin", None)
    except Exception:  # pragma: no cover - the registry changed shape
        log.debug("could not remove the Altair formatter", exc_info=True)


def _format_altair(chart, include=None, exclude=None):
    bundle = altair_bundle(chart)
    if bundle is None:
        return chart._repr_mimebundle_(include=include, exclude=exclude)
    return bundle
