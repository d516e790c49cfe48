"""Hostile text in an answer (from the model or the database) crashes nothing and hides nothing.

Every text is made safe once, by ``safetext.safe_response``, before the cell, the chat panel,
the CLI or a native library (vl-convert aborts the process on a C0 character) sees it. The
renderings that reach vl-convert run in a real IPython kernel (``kernels.Kernel``), so an abort
shows as a dead kernel and a failed test, not as the end of the test run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from html import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexusleads_lab.safetext import PROSE_FIELDS, UNSAFE, escape_char, safe_response
from nexusleads_lab.testing.modelserver import ModelServer, Script, text, tool_calls
from nexusleads_lab.ui import charts
from nexusleads_lab.ui.chat import answer_item
from nexusleads_lab.ui.html import markdown_html
from nexusleads_lab.ui.panel import ChatPanel
from nexusleads_lab.ui.render import render_response
from nexusleads_lab.ui.text import response_text as format_response

from fetchers import fetchers
from kernels import Kernel

ORG = "acme-analytics"
CONTROLS = [chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)]  # C0, DEL, C1
HOSTILE = [
    *CONTROLS,
    "\u202e",
    "\u2066",
    "\u2069",
    "\u200b",
    "\u200f",
    "\ufeff",
    "\u2028",
    "\u061c",
    "\ufffe",
    "\uffff",
    "�",
    "�",
]
LAYOUT = "\n\t"  # what prose (Markdown, SQL) keeps of the unsafe characters


def unsafe_in(text: str, keep: str = "") -> list[str]:
    return [m.group(0) for m in UNSAFE.finditer(text) if m.group(0) not in keep]


def strings(value, path=()):
    """Every string in a JSON value (keys too), with where it sits."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield (*path, "<key>"), str(k)
            yield from strings(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, (*path, i))


def is_prose(path) -> bool:
    """The response's own prose fields, a section's SQL and a KPI card's SQL (see ``PROSE_FIELDS``)."""
    return (
        bool(path)
        and path[-1] in PROSE_FIELDS
        and len(path) in (1, 3, 5)
        and "rows" not in path
        and "preview" not in path
    )


# -- answers made of hostile text (hypothesis) ------------------------------------------------------

hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.characters()), max_size=10).map("".join)
short_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.characters()), min_size=1, max_size=6).map("".join)
number = st.one_of(st.integers(-(10**9), 10**9), st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False))
scalar = st.one_of(st.none(), st.booleans(), number, hostile_text)
json_value = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(short_text, inner, max_size=3)),
    max_leaves=6,
)
maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731
provenance = {"source": maybe(hostile_text), "sql": maybe(hostile_text)}

widgets = st.fixed_dictionaries(
    {
        "type": st.just("widgets"),
        "items": st.lists(
            st.fixed_dictionaries(
                {
                    "title": hostile_text,
                    "value": st.one_of(number, hostile_text),
                    "subtext": maybe(hostile_text),
                    **provenance,
                }
            ),
            min_size=1,
            max_size=3,
        ),
        **provenance,
    }
)
bars = st.fixed_dictionaries(
    {
        "type": st.just("bars"),
        "label": hostile_text,
        "items": st.lists(st.fixed_dictionaries({"name": hostile_text, "value": number}), min_size=1, max_size=6),
        "total_rows": maybe(st.integers(0, 10**6)),
        **provenance,
    }
)


@st.composite
def line(draw):
    x_type = draw(st.sampled_from(["category", "number", "time"]))
    xs = {"category": hostile_text, "number": number, "time": st.dates().map(lambda d: d.isoformat())}[x_type]
    series = draw(st.lists(short_text, max_size=3, unique=True))
    points = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "x": xs,
                    "y": number,
                    "series": st.sampled_from(series) if series else st.none(),
                }
            ),
            min_size=1,
            max_size=8,
        )
    )
    return {
        "type": "line",
        "label": draw(hostile_text),
        "points": points,
        "series": series,
        "x_type": x_type,
        "x_label": draw(maybe(hostile_text)),
        "y_label": draw(maybe(hostile_text)),
        "total_rows": draw(maybe(st.integers(0, 10**6))),
        **draw(st.fixed_dictionaries(provenance)),
    }


@st.composite
def table(draw):
    columns = draw(st.lists(short_text, min_size=1, max_size=4, unique=True))
    rows = draw(st.lists(st.fixed_dictionaries({c: json_value for c in columns}), max_size=4))
    return {
        "type": "table",
        "title": draw(maybe(hostile_text)),
        "columns": columns,
        "rows": rows,
        "total_rows": len(rows) + draw(st.integers(0, 100)),
        **draw(st.fixed_dictionaries(provenance)),
    }


pills = st.fixed_dictionaries(
    {
        "type": st.just("pills"),
        "label": maybe(hostile_text),
        "items": st.lists(
            st.fixed_dictionaries(
                {
                    "label": hostile_text,
                    "color": st.sampled_from(["green", "red", "amber", "#abc", "#12ab9f"]),
                    "count": st.integers(0, 10**6),
                }
            ),
            min_size=1,
            max_size=4,
        ),
        "total_rows": maybe(st.integers(0, 10**6)),
        **provenance,
    }
)
dashboards = st.fixed_dictionaries(
    {
        "type": st.just("dashboard"),
        "title": hostile_text,
        "sections": st.lists(st.one_of(widgets, bars, line(), table(), pills), min_size=1, max_size=4),
    }
)

PORT = 9  # discard: nothing listens, and nothing may try
MARKDOWN_TRAPS = [
    f"![pixel](http://127.0.0.1:{PORT}/px.png?d=secret)",
    f"![](http://127.0.0.1:{PORT}/a.png)",
    f"<img src=http://127.0.0.1:{PORT}/b.png>",
    f'<img srcset="http://127.0.0.1:{PORT}/c.png 1x">',
    f'<span style="background:url(http://127.0.0.1:{PORT}/d.png)">x</span>',
    f"<iframe src=http://127.0.0.1:{PORT}/></iframe>",
    f"<http://127.0.0.1:{PORT}/e.png>",
    f"<video src=http://127.0.0.1:{PORT}/f.mp4></video>",
    "<audio src=x><source src=y></audio>",
    f'<svg><image href="http://127.0.0.1:{PORT}/g.png"/></svg>',
    f'<link rel=stylesheet href="http://127.0.0.1:{PORT}/h.css">',
    "**bold**",
    "`code`",
    "| a | b |\n|---|---|\n| ![x](http://127.0.0.1:9/t.png) | 2 |",
    "\n\n",
    "# heading\n",
    "[link](javascript:alert(1))",
    "<script>alert(1)</script>",
]
markdown_text = st.lists(st.one_of(hostile_text, st.sampled_from(MARKDOWN_TRAPS)), max_size=8).map("".join)
messages = st.fixed_dictionaries({"type": st.just("message"), "text": markdown_text})

preview_row = st.fixed_dictionaries(
    {
        "key": st.dictionaries(short_text, scalar, max_size=2),
        "before": maybe(st.dictionaries(short_text, scalar, max_size=3)),
        "after": maybe(st.dictionaries(short_text, scalar, max_size=3)),
    }
)
confirms = st.fixed_dictionaries(
    {
        "type": st.just("confirm"),
        "id": st.just("c_fuzz"),
        "title": hostile_text,
        "summary": hostile_text,
        "sql": hostile_text,
        "dry_run_rows": maybe(st.integers(0, 10**6)),
        "dry_run_error": maybe(hostile_text),
        "preview": st.lists(
            st.fixed_dictionaries(
                {
                    "action": st.sampled_from(["update", "insert", "delete"]),
                    "table": hostile_text,
                    "rows": st.integers(0, 10**4),
                    "keys": st.lists(short_text, max_size=2),
                    "columns": st.lists(short_text, max_size=3),
                    "sample": st.lists(preview_row, max_size=3),
                }
            ),
            max_size=2,
        ),
    }
)
responses = st.one_of(dashboards, messages, confirms)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(responses, st.lists(hostile_text, max_size=2))
def test_no_view_gets_an_unsafe_character_from_any_answer(response, notes):
    safe = safe_response(response)
    for path, s in strings(safe):
        assert not unsafe_in(s, LAYOUT if is_prose(path) else ""), (path, s)
    json.dumps(safe).encode("utf-8")  # no lone surrogate is left for a comm, a store or a browser
    assert safe_response(safe) == safe, "a stored answer shown again comes out the same"

    # the cell: every static part (charts are drawn by vl-convert: that is the kernel test below)
    for part in render_response(response, interactive=False):
        if part.later is None:
            for mime, body in part.data.items():
                assert not unsafe_in(body, LAYOUT)
                assert fetchers(body) == [] if mime == "text/html" else True
    # the chat panel: what is synced to the browser
    item = answer_item("k", response, notes, [])
    for path, s in strings(item):  # "html": the message's prose as the kernel rendered it
        assert not unsafe_in(s, LAYOUT if is_prose(path[1:]) or path == ("html",) else "")
    assert fetchers(item.get("html", "")) == []
    # the terminal
    assert not unsafe_in(format_response(response), LAYOUT)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdown_text)
def test_markdown_from_the_model_never_loads_anything_without_a_click(text_):
    html = markdown_html(text_)
    assert fetchers(html) == []


# -- example by example ---------------------------------------------------------------------------


def test_every_text_of_every_section_is_shown_escaped_and_prose_keeps_its_lines():
    safe = safe_response(
        {
            "type": "dashboard",
            "title": "Leads\x1b[2J",
            "sections": [
                {
                    "type": "widgets",
                    "items": [
                        {"title": "Hot\u202e", "value": "12\x0b", "subtext": "new\x07", "sql": "SELECT 1\n-- \x1b"}
                    ],
                },
                {
                    "type": "bars",
                    "label": "By\x00 name",
                    "items": [{"name": "Ada\x0b", "value": 3}],
                    "sql": "SELECT\n\tname",
                },
                {
                    "type": "line",
                    "label": "Trend\x85",
                    "points": [{"x": "W1\x1b", "y": 1, "series": "hot\x01"}],
                    "series": ["hot\x01"],
                    "x_label": "week\x0c",
                    "y_label": "n\ud800",
                },
                {
                    "type": "table",
                    "title": "Top\u2066",
                    "columns": ["bio\x01"],
                    "rows": [{"bio\x01": "Line one.\nLine two.\x1b]52;c;aGk=\x07"}],
                },
                {
                    "type": "pills",
                    "label": "Status\x9b",
                    "items": [{"label": "new\u200b", "color": "green", "count": 2}],
                },
            ],
        }
    )
    widgets, bars, line, table, pills = safe["sections"]
    assert safe["title"] == "Leads\\x1B[2J"
    assert widgets["items"][0] == {
        "title": "Hot\\u202E",
        "value": "12\\x0B",
        "subtext": "new\\x07",
        "sql": "SELECT 1\n-- \\x1B",
    }
    assert (bars["label"], bars["items"][0]["name"], bars["sql"]) == ("By\\x00 name", "Ada\\x0B", "SELECT\n\tname")
    assert (line["label"], line["points"][0], line["series"]) == (
        "Trend\\x85",
        {"x": "W1\\x1B", "y": 1, "series": "hot\\x01"},
        ["hot\\x01"],
    )
    assert (line["x_label"], line["y_label"]) == ("week\\x0C", "n\\uD800")
    assert table["columns"] == ["bio\\x01"] and table["title"] == "Top\\u2066"
    assert table["rows"] == [{"bio\\x01": "Line one.\\nLine two.\\x1B]52;c;aGk=\\x07"}], (
        "a cell is shown exactly, on one line"
    )
    assert (pills["label"], pills["items"][0]["label"]) == ("Status\\x9B", "new\\u200B")


def test_a_message_keeps_its_lines_and_a_carriage_return_cannot_overwrite_one():
    safe = safe_response({"type": "message", "text": "**Safe** answer\r\n\tindented\rEVIL\x1b[1A\u202eright"})
    assert safe["text"] == "**Safe** answer\n\tindented\nEVIL\\x1B[1A\\u202Eright"


def test_a_confirm_keeps_its_sql_so_the_click_still_runs_it_and_shows_each_preview_value_exactly():
    sql = "UPDATE lead_scores SET status = E'contacted\\x1B' WHERE id IN (1, 2)"  # canonical: escapes already visible
    proposal = {
        "type": "confirm",
        "id": "c_abc",
        "title": "Mark\x0b two",
        "summary": "Two leads.\nThen\x1b more.",
        "sql": sql,
        "dry_run_rows": 2,
        "dry_run_error": None,
        "preview": [
            {
                "action": "update",
                "table": "lead_scores",
                "rows": 2,
                "keys": ["id"],
                "columns": ["status"],
                "sample": [{"key": {"id": 1}, "before": {"status": "new\n"}, "after": {"status": "contacted\x1b"}}],
            }
        ],
    }
    safe = safe_response(proposal)
    assert safe["sql"] == sql and safe["id"] == "c_abc"
    assert (safe["title"], safe["summary"]) == ("Mark\\x0B two", "Two leads.\nThen\\x1B more.")
    assert safe["preview"][0]["sample"][0] == {
        "key": {"id": 1},
        "before": {"status": "new\\n"},
        "after": {"status": "contacted\\x1B"},
    }


def test_a_markdown_image_is_a_link_and_raw_html_stays_text():
    html = markdown_html(
        "See ![the chart](http://127.0.0.1:9/px.png?d=SECRET) and ![](http://127.0.0.1:9/q.png) "
        '<img srcset="http://127.0.0.1:9/a.png 1x"> <iframe src="http://127.0.0.1:9/"></iframe>'
    )
    assert fetchers(html) == []
    assert re.search(r'<a class="nxl-md-image" href="http://127\.0\.0\.1:9/px\.png\?d=SECRET"[^>]*>the chart</a>', html)
    assert ">http://127.0.0.1:9/q.png</a>" in html, "an image without alt text is a link showing its address"
    assert "&lt;iframe" in html and "&lt;img srcset" in html


def test_the_terminal_shows_escapes_instead_of_obeying_them():
    out = format_response(
        {
            "type": "dashboard",
            "title": "Leads\x1b[2J",
            "sections": [
                {"type": "bars", "label": "By\x1b]52;c;aGk=\x07 name", "items": [{"name": "Ada\r", "value": 3}]},
                {"type": "table", "columns": ["bio"], "rows": [{"bio": "x\x1b[1Ay"}]},
                {"type": "widgets", "items": [{"title": "T\x9b", "value": "1\x08"}]},
            ],
        }
    )
    assert not unsafe_in(out, "\n")
    assert "Leads\\x1B[2J" in out and "Ada\\r" in out and "x\\x1B[1Ay" in out and "By\\x1B]52;c;aGk=\\x07 name" in out


# -- in a real kernel ---------------------------------------------------------------------------------

PRELUDE = """
%load_ext nexusleads_lab
def _nexus_render(payload, interactive=True):
    import json
    from nexusleads_lab.ui.parts import show_all
    from nexusleads_lab.ui.render import render_response
    show_all(render_response(json.loads(payload), interactive=interactive))
"""


@pytest.fixture(scope="module")
def kernel(db):
    """A real kernel that opens the test database and asks the test's loopback model."""
    server = ModelServer(Script([]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL", "JUPYTER"))}
    env.update(
        NEXUS_HOME=str(db.embedded.pgdata.parent),
        NEXUS_ORG=ORG,
        NEXUS_USER=f"kernel-{uuid.uuid4().hex[:8]}",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=server.base_url,
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    k = Kernel(env)
    k.server = server
    k.run(PRELUDE)
    yield k
    k.stop()
    server.close()


def ready(kernel: Kernel) -> Kernel:
    if not kernel.alive():  # an earlier test killed it: start afresh, so each one stands alone
        kernel.ensure_alive()
        kernel.run(PRELUDE)
    return kernel


def render_in(kernel: Kernel, response: dict, *, interactive: bool = True):
    """The response shown in the kernel as a finished turn shows it (live charts and twins)."""
    return ready(kernel).run(f"_nexus_render({json.dumps(response)!r}, interactive={interactive})")


def bars_in(svg: str) -> int:
    return svg.count('aria-roledescription="bar"')


def points_in(svg: str) -> int:
    """The points of a drawn line (its path is there too)."""
    return svg.count('aria-roledescription="point"') if 'aria-roledescription="line mark"' in svg else 0


def test_a_control_character_in_a_database_value_leaves_the_kernel_alive_and_the_chart_drawn(kernel):
    # every C0 (but NUL, which PostgreSQL cannot hold), DEL and C1 character, one per lead
    chars = [c for c in CONTROLS if c != "\x00"]
    literal = ", ".join(f"E'\\u{ord(c):04X}'" for c in chars)
    sql = (
        "SELECT c.github_login || t.ch AS name, c.followers FROM unnest(ARRAY["
        + literal
        + "]::text[]) WITH ORDINALITY AS t(ch, k) "
        "JOIN (SELECT github_login, followers, row_number() OVER (ORDER BY followers DESC, github_login) AS k FROM contributors) AS c "
        "USING (k) ORDER BY t.k"
    )
    label = "Followers" + "".join(CONTROLS)
    kernel.server.responder = Script(
        [
            tool_calls([("psql", {"sql": sql})]),
            text(
                json.dumps(
                    {
                        "type": "dashboard",
                        "title": "Top\x0b leads",
                        "sections": [
                            {
                                "type": "bars",
                                "label": label,
                                "source": "r1",
                                "x": "name",
                                "y": "followers",
                                "limit": 100,
                            },
                            {"type": "line", "label": label, "source": "r1", "x": "name", "y": "followers"},
                        ],
                    }
                )
            ),
        ]
    )
    out = ready(kernel).run("%%nexus\nFollowers of the top leads, by name")
    assert kernel.alive(), f"the kernel died (exit status {kernel.exit_status()})"
    assert not out.errors, out.errors
    bars_svg, line_svg = out.svgs
    assert bars_in(bars_svg) == len(chars), "every lead is a bar"
    assert points_in(line_svg) == len(chars), "and a point on the line"
    assert len(out.pngs) == 2, "both charts carry their picture for viewers without Vega"
    title = "Followers" + "".join(escape_char(c) for c in CONTROLS)  # what a person sees for each character
    assert f">{title}</text>" in bars_svg and f">{title}</text>" in line_svg
    names = json.loads(kernel.run("import json; print(json.dumps(list(_nexus_df['name'])))").streams)
    assert [n[-1] for n in names] == chars, "the DataFrame keeps the database's values exactly"
    for name in names:
        assert f'name: {escape(name[:-1] + escape_char(name[-1]))}"' in bars_svg


def test_every_control_character_in_a_bars_or_line_label_leaves_a_real_kernel_alive_and_its_chart_drawn(kernel):
    sections = []
    for c in CONTROLS:
        sections.append(
            {
                "type": "bars",
                "label": f"Leads{c}by tier",
                "items": [{"name": f"hot{c}", "value": 3}, {"name": "warm", "value": 5}],
            }
        )
        sections.append(
            {"type": "line", "label": f"Trend{c}", "points": [{"x": f"W1{c}", "y": 1}, {"x": "W2", "y": 4}]}
        )
    out = render_in(kernel, {"type": "dashboard", "title": "Every control character", "sections": sections})
    assert kernel.alive(), f"the kernel died (exit status {kernel.exit_status()})"
    assert not out.errors, out.errors
    svgs = out.svgs
    assert len(svgs) == 2 * len(CONTROLS)
    for c, bar, trend in zip(CONTROLS, svgs[::2], svgs[1::2]):
        assert bars_in(bar) == 2 and f"Leads{escape_char(c)}by tier" in bar and f"hot{escape_char(c)}" in bar
        assert points_in(trend) == 2 and f"Trend{escape_char(c)}" in trend


def test_axis_titles_read_the_same_on_the_axis_in_the_tooltip_and_in_the_description(kernel):
    # vega-lite writes field titles into Vega expressions without escaping backslashes
    x_label, y_label = "week\x0b", 'leads \\"+ 1 + \\"'
    out = render_in(
        kernel,
        {
            "type": "dashboard",
            "title": "Trend",
            "sections": [
                {
                    "type": "line",
                    "label": "Leads",
                    "points": [{"x": "W1", "y": 3}],
                    "x_label": x_label,
                    "y_label": y_label,
                },
            ],
        },
    )
    (svg,) = out.svgs
    x_shown, y_shown = "week\\x0B", 'leads \\"+ 1 + \\"'
    assert f">{x_shown}</text>" in svg and f">{y_shown}</text>" in svg, "the axis titles"
    assert f'aria-label="{escape(x_shown)}: W1; {escape(y_shown)}: 3"' in svg, "the point's description, exactly"
    assert not unsafe_in(svg, LAYOUT)


def test_the_two_characters_xml_forbids_in_a_chart_label_leave_the_kernel_alive(kernel):
    # U+FFFE in a bar's name made vl-convert's SVG text parser panic, which aborts the process.
    out = render_in(
        kernel,
        {
            "type": "dashboard",
            "title": "T",
            "sections": [
                {
                    "type": "bars",
                    "label": "By\ufffe name",
                    "items": [{"name": "Ada\ufffe", "value": 3}, {"name": "B\uffff", "value": 1}],
                },
            ],
        },
    )
    assert kernel.alive(), f"the kernel died (exit status {kernel.exit_status()})"
    assert not out.errors, out.errors
    (svg,) = out.svgs
    assert bars_in(svg) == 2 and "Ada\\uFFFE" in svg and "B\\uFFFF" in svg
    assert len(out.pngs) == 1


def test_a_chart_that_still_holds_a_control_character_is_refused_before_vl_convert(kernel):
    out = ready(kernel).run(
        "from nexusleads_lab.ui import charts\n"
        "try:\n"
        "    charts.chart_bundle(charts.bars_chart({'type': 'bars', 'label': 'x\\x0b', 'items': [{'name': 'a\\x01', 'value': 1}]}))\n"
        "except charts.UnsafeChartText as exc:\n"
        "    print('refused:', exc)\n"
    )
    assert kernel.alive() and out.streams.startswith("refused:"), out.streams + "".join(out.errors)


def _charts(response: dict) -> int:
    return sum(s["type"] in charts.CHARTS for s in response.get("sections") or [])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(responses)
def test_any_unicode_in_any_field_of_any_answer_leaves_a_real_kernel_alive_and_every_chart_drawn(kernel, response):
    out = render_in(kernel, response)
    assert kernel.alive(), f"the kernel died (exit status {kernel.exit_status()})"
    assert not out.errors, out.errors
    n = _charts(response)
    assert len(out.svgs) == n, "every chart is drawn from its Vega spec (which is checked safe)"
    assert len(out.pngs) == n, "and has its picture"
    assert not any("could not draw this chart" in t for t in out.texts())
    for body in out.texts():
        assert not unsafe_in(body, LAYOUT)


# -- the panel and the CLI, end to end ----------------------------------------------------------------

HOSTILE_DASHBOARD = {
    "type": "dashboard",
    "title": "Leads\x1b[2J\u202e",
    "sections": [
        {"type": "bars", "label": "By\x0b name", "items": [{"name": "Ada\x1b]52;c;aGk=\x07", "value": 3}]},
        {"type": "table", "columns": ["bio\x01"], "rows": [{"bio\x01": "x\x1b[1Ay\r"}]},
    ],
}


def test_the_panel_syncs_only_safe_text_live_and_from_history(scripted_assistant):
    assistant = scripted_assistant([text(json.dumps(HOSTILE_DASHBOARD))], org=ORG)
    panel = ChatPanel(assistant)
    panel.send = lambda content, buffers=None: None
    try:
        panel.handle({"type": "ask", "text": "Leads by name"})
        assert panel.wait(30)
        live = panel.messages[-1]["response"]
        assert live["title"] == "Leads\\x1B[2J\\u202E"
        assert live["sections"][0]["items"][0]["name"] == "Ada\\x1B]52;c;aGk=\\x07"
        assert live["sections"][1]["rows"] == [{"bio\\x01": "x\\x1B[1Ay\\r"}]
        panel.handle({"type": "open", "id": panel.conversation_id})
        assert panel.messages[-1]["response"] == live, "the stored answer, opened again, shows the same"
        for _, s in strings(panel.messages):
            assert not unsafe_in(s, LAYOUT)
    finally:
        panel.close()


def test_nexus_lab_ask_prints_escapes_instead_of_sending_them_to_the_terminal(db, tmp_path):
    with ModelServer(Script([text(json.dumps(HOSTILE_DASHBOARD))])) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
        env.update(
            NEXUS_HOME=str(db.embedded.pgdata.parent),
            NEXUS_USER="cli-hostile",
            NEXUS_ORG=ORG,
            OPENAI_API_KEY="test-key",
            OPENAI_BASE_URL=server.base_url,
        )
        proc = subprocess.run(
            [sys.executable, "-m", "nexusleads_lab.cli", "ask", "Leads by name"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=tmp_path,
        )
    assert proc.returncode == 0, proc.stderr
    assert not unsafe_in(proc.stdout + proc.stderr, "\n")
    assert "== Leads\\x1B[2J\\u202E ==" in proc.stdout and "Ada\\x1B]52;c;aGk=\\x07" in proc.stdout
