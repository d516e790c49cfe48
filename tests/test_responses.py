"""Response contract: models, lenient parsing, resolution against result frames, streaming display."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripted import dashboard

from nexusleads_lab.agent.responses import (
    RESOLVED_ADAPTER,
    RESPONSE_ADAPTER,
    RESPONSE_EXAMPLES,
    Confirm,
    Dashboard,
    Message,
    Parsed,
    ResolvedBars,
    ResolvedDashboard,
    ResolvedLine,
    ResolvedPills,
    ResolvedTable,
    ResolvedWidgets,
    format_value,
    parse_response,
    partial_display_text,
    resolve_response,
    response_format_prompt,
    response_json,
    response_json_schema,
    scan_top_level,
)
from nexusleads_lab.agent.streaming import StreamingDisplay

XSS = "<img src=x onerror=alert(1)>"

# The three examples of chat-architecture.md, "Response Types", verbatim.
ORIGINAL_EXAMPLES = [
    {"type": "message", "text": "your **markdown** answer"},
    {
        "type": "dashboard",
        "title": "Dashboard Title",
        "sections": [
            {"type": "widgets", "items": [{"title": "Label", "value": "42", "subtext": "info"}]},
            {"type": "bars", "label": "Chart Title", "items": [{"name": "X", "value": 10}]},
            {"type": "table", "columns": ["Name", "Status"], "rows": [{"Name": "x", "Status": "y"}]},
            {"type": "pills", "items": [{"label": "Active", "color": "green", "count": 5}]},
        ],
    },
    {"type": "confirm", "id": "unique_id", "title": "Short title", "summary": "What will happen", "sql": "THE SQL"},
]


# --------------------------------------------------------------------------
# frames


def with_sql(df: pd.DataFrame, sql: str) -> pd.DataFrame:
    df.attrs["sql"] = sql
    return df


def leads_frame(n: int = 60) -> pd.DataFrame:
    tiers = ["hot", "warm", "cold"]
    logins = [f"user{i}" for i in range(n)]
    logins[:3] = ["José", "李雷", "rocket 🚀"]
    return with_sql(
        pd.DataFrame(
            {
                "login": logins,
                "score": pd.array([None if i % 7 == 0 else i * 1.5 for i in range(n)], dtype="Float64"),
                "tier": [tiers[i % 3] for i in range(n)],
                "followers": pd.array([None if i % 5 == 0 else i * 1000 for i in range(n)], dtype="Int64"),
                "created_at": pd.date_range("2024-01-01 09:30", periods=n, freq="D", tz="UTC"),
                "meta": [{"langs": ["python", "go"], "bio": XSS} if i % 2 == 0 else None for i in range(n)],
                "bio": ["x" * 1000 if i == 0 else "short" for i in range(n)],
                "avatar": [b"\x89PNG" if i == 0 else None for i in range(n)],
            }
        ),
        "SELECT login, score, tier FROM contributors JOIN lead_scores USING (contributor_id)",
    )


def tiers_frame() -> pd.DataFrame:
    return with_sql(
        pd.DataFrame({"tier": ["hot", "warm", "cold"], "n": pd.array([12, 340, 1234], dtype="Int64")}),
        "SELECT tier, count(*) AS n FROM lead_scores GROUP BY tier",
    )


def weekly_frame() -> pd.DataFrame:
    weeks = pd.to_datetime(["2024-01-15", "2024-01-01", "2024-01-22", "2024-01-08"]).tz_localize("UTC")
    return with_sql(
        pd.DataFrame(
            {"week": weeks, "hot": pd.array([3, 1, None, 2], dtype="Int64"), "warm": [30.5, 10.0, 40.0, 20.25]}
        ),
        "SELECT date_trunc('week', created_at) AS week, ... ORDER BY 1 DESC",
    )


def kpi_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"leads": [1234567], "hot": [1234], "rate": [0.4567], "avg": [3.14159], "none": pd.array([None], dtype="Int64")}
    )


def statuses_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "status": [
                "new",
                "contacted",
                "qualified",
                "disqualified",
                "converted",
                "mystery",
                "Active",
                "paused",
                "archived",
            ],
            "count": [5, 4, 3, 2, 1, 7.0, 2, 1, 0],
        }
    )


@pytest.fixture()
def frames() -> dict[str, pd.DataFrame]:
    return {"r1": leads_frame(), "r2": tiers_frame()}


def dump(parsed: Parsed) -> dict:
    d = parsed.response.model_dump(mode="json")
    json.dumps(d, allow_nan=False)  # strictly JSON
    return d


def only_section(parsed: Parsed):
    assert isinstance(parsed.response, ResolvedDashboard), parsed
    assert len(parsed.response.sections) == 1, (parsed.response, parsed.notes)
    return parsed.response.sections[0]


def contains(original, resolved) -> bool:
    """Everything in ``original`` is in ``resolved`` unchanged (resolved may add fields)."""
    if isinstance(original, dict):
        return isinstance(resolved, dict) and all(
            k in resolved and contains(v, resolved[k]) for k, v in original.items()
        )
    if isinstance(original, list):
        return isinstance(resolved, list) and len(original) == len(resolved) and all(map(contains, original, resolved))
    return original == resolved and type(original) is type(resolved)


# --------------------------------------------------------------------------
# contract


@pytest.mark.parametrize("example", ORIGINAL_EXAMPLES, ids=lambda e: e["type"])
def test_original_examples_validate_and_resolve_unchanged(example):
    RESPONSE_ADAPTER.validate_python(example)
    for text in (json.dumps(example), json.dumps(example, indent=2)):
        parsed = parse_response(text)
        assert parsed.notes == []
        assert contains(example, dump(parsed)), dump(parsed)


def test_original_dashboard_resolved_fields():
    resolved = parse_response(json.dumps(ORIGINAL_EXAMPLES[1])).response
    widgets, bars, table, pills = resolved.sections
    assert isinstance(widgets, ResolvedWidgets) and widgets.items[0].value == "42" and widgets.items[0].source is None
    assert isinstance(bars, ResolvedBars) and bars.items[0].value == 10 and bars.source is None and bars.sql is None
    assert isinstance(table, ResolvedTable) and table.total_rows == 1
    assert isinstance(pills, ResolvedPills) and pills.items[0].color == "green"


def test_prompt_examples_validate_and_resolve():
    prompt = response_format_prompt()
    frames = {
        "r1": pd.DataFrame({"leads": [3000], "hot": [120]}),
        "r2": tiers_frame(),
        "r3": pd.DataFrame({"project": ["Acme SDK", "Beta"], "leads": [10, 20]}),
        "r4": weekly_frame(),
        "r5": leads_frame(),
    }
    for example in RESPONSE_EXAMPLES:
        RESPONSE_ADAPTER.validate_python(example)
        assert json.dumps(example, ensure_ascii=False) in prompt
        parsed = parse_response(json.dumps(example), frames)
        assert [n for n in parsed.notes if "not a result" in n or "not in" in n or "skipped" in n] == []
        dump(parsed)
    assert {e["type"] for e in RESPONSE_EXAMPLES} == {"message", "dashboard", "confirm"}
    assert any("source" in json.dumps(e) for e in RESPONSE_EXAMPLES if e["type"] == "dashboard")


def test_json_schema_is_derived_and_compact():
    schema = response_json_schema()
    text = json.dumps(schema, separators=(",", ":"))
    assert len(text) < 8000
    defs = schema["$defs"]
    for name in (
        "Message",
        "Dashboard",
        "Confirm",
        "WidgetsSection",
        "BarsFromSource",
        "LineSection",
        "LineFromSource",
        "TableSection",
        "TableFromSource",
        "PillsSection",
        "PillsFromSource",
    ):
        assert name in defs
        assert "type" in defs[name]["properties"]
        assert defs[name]["required"][0] == "type"
    assert "title" in defs["Dashboard"]["properties"]  # a property named title survives compaction
    assert '"title":"Dashboard"' not in text  # auto titles are gone
    assert response_format_prompt(include_schema=True).endswith(text + "\n")
    jsonschema = pytest.importorskip("jsonschema")
    for example in [*ORIGINAL_EXAMPLES, *RESPONSE_EXAMPLES]:
        jsonschema.validate(example, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"type": "dashboard", "sections": []}, schema)


def test_models_construct_in_python():
    d = Dashboard(title="x", sections=[{"type": "bars", "source": "r2", "x": "tier", "y": "n"}])
    resolved, notes = resolve_response(d, {"r2": tiers_frame()})
    assert notes == [] and resolved.sections[0].items[2].value == 1234
    resolved, notes = resolve_response({"type": "message", "text": "hi"})
    assert resolved == Message(text="hi") and notes == []


# --------------------------------------------------------------------------
# resolution from sources


def test_table_from_source_limit_subset_total_rows(frames):
    sec = only_section(
        parse_response(
            dashboard(
                {
                    "type": "table",
                    "title": "Leads",
                    "source": "r1",
                    "columns": ["bio", "login", "created_at", "meta", "followers", "avatar"],
                    "limit": 5,
                }
            ),
            frames,
        )
    )
    assert isinstance(sec, ResolvedTable)
    assert sec.columns == ["bio", "login", "created_at", "meta", "followers", "avatar"]
    assert len(sec.rows) == 5 and sec.total_rows == 60
    assert sec.source == "r1" and sec.sql == frames["r1"].attrs["sql"] and sec.title == "Leads"
    first, second = sec.rows[0], sec.rows[1]
    assert first["login"] == "José" and second["login"] == "李雷" and sec.rows[2]["login"] == "rocket 🚀"
    assert first["created_at"] == "2024-01-01T09:30:00+00:00"
    assert first["meta"] == {"langs": ["python", "go"], "bio": XSS} and second["meta"] is None
    assert first["followers"] is None and second["followers"] == 1000 and type(second["followers"]) is int
    assert first["bio"] == "x" * 500 + "…"
    assert first["avatar"] == repr(b"\x89PNG") and second["avatar"] is None
    assert list(first) == sec.columns


def test_table_defaults_and_caps(frames):
    parsed = parse_response(dashboard({"type": "table", "source": "r1"}), frames)
    sec = only_section(parsed)
    assert len(sec.rows) == 50 and sec.total_rows == 60 and len(sec.columns) == 8 and parsed.notes == []
    assert sec.rows[0]["score"] is None and sec.rows[1]["score"] == 1.5
    big = {"r1": leads_frame(700)}
    parsed = parse_response(dashboard({"type": "table", "source": "r1", "columns": ["login"], "limit": 10_000}), big)
    sec = only_section(parsed)
    assert len(sec.rows) == 500 and sec.total_rows == 700
    assert any("capped at 500" in n for n in parsed.notes)


def test_table_unknown_column_is_skipped_with_note(frames):
    parsed = parse_response(dashboard({"type": "table", "source": "r1", "columns": ["login", "nope", "TIER"]}), frames)
    sec = only_section(parsed)
    assert sec.columns == ["login", "tier"]  # case-insensitive match for TIER
    assert any("'nope' is not in r1" in n for n in parsed.notes)


def test_table_duplicate_and_odd_column_names():
    df = pd.DataFrame([[1, 2, 3]], columns=["name", "name", 7])
    sec = only_section(parse_response(dashboard({"type": "table", "source": "r1"}), {"r1": df}))
    assert sec.columns == ["name", "name_2", "7"] and sec.rows == [{"name": 1, "name_2": 2, "7": 3}]


def test_bars_from_source(frames):
    parsed = parse_response(
        dashboard({"type": "bars", "label": "Leads by tier", "source": "r2", "x": "tier", "y": "n"}), frames
    )
    sec = only_section(parsed)
    assert isinstance(sec, ResolvedBars) and parsed.notes == []
    assert [(i.name, i.value) for i in sec.items] == [("hot", 12), ("warm", 340), ("cold", 1234)]
    assert all(type(i.value) is int for i in sec.items)
    assert (
        sec.label == "Leads by tier"
        and sec.source == "r2"
        and sec.sql.startswith("SELECT tier")
        and sec.total_rows == 3
    )
    # limit, default label, NA values dropped with a note, Float64 values
    parsed = parse_response(dashboard({"type": "bars", "source": "r1", "x": "login", "y": "score", "limit": 8}), frames)
    sec = only_section(parsed)
    assert sec.label == "score by login" and sec.total_rows == 60
    assert [i.name for i in sec.items] == ["李雷", "rocket 🚀", "user3", "user4", "user5", "user6"]
    assert sec.items[0].value == 1.5
    assert any("dropped 2 row(s)" in n for n in parsed.notes)


def test_bars_missing_column_skips_section(frames):
    parsed = parse_response(dashboard({"type": "bars", "source": "r2", "x": "tier", "y": "count"}), frames)
    assert parsed.response.sections == []
    assert any("column 'count' is not in r2 (columns: tier, n)" in n for n in parsed.notes)


def test_line_two_series_sorted_by_date():
    parsed = parse_response(
        dashboard({"type": "line", "source": "r3", "x": "week", "y": ["hot", "warm"]}), {"r3": weekly_frame()}
    )
    sec = only_section(parsed)
    assert isinstance(sec, ResolvedLine)
    assert sec.x_type == "time" and sec.series == ["hot", "warm"] and sec.x_label == "week"
    hot = [(p.x, p.y) for p in sec.points if p.series == "hot"]
    warm = [(p.x, p.y) for p in sec.points if p.series == "warm"]
    assert hot == [("2024-01-01", 1), ("2024-01-08", 2), ("2024-01-15", 3)]  # NA on 01-22 dropped
    assert warm == [("2024-01-01", 10.0), ("2024-01-08", 20.25), ("2024-01-15", 30.5), ("2024-01-22", 40.0)]
    xs = [p.x for p in sec.points]
    assert xs == sorted(xs)
    assert sec.source == "r3" and sec.sql and sec.total_rows == 4
    assert any("dropped 1 point" in n for n in parsed.notes)


def test_line_long_format_and_numbers():
    df = pd.DataFrame({"day": [3, 1, 2, 1], "tier": ["hot", "hot", "hot", "cold"], "n": [30, 10, 20, 5]})
    sec = only_section(
        parse_response(dashboard({"type": "line", "source": "r1", "x": "day", "y": "n", "series": "tier"}), {"r1": df})
    )
    assert sec.x_type == "number" and sec.series == ["hot", "cold"] and sec.y_label == "n"
    assert [(p.x, p.y, p.series) for p in sec.points] == [
        (1, 10, "hot"),
        (1, 5, "cold"),
        (2, 20, "hot"),
        (3, 30, "hot"),
    ]
    # dates as python date objects (psycopg) and inline points with ISO strings are sorted too
    df = pd.DataFrame(
        {"d": [dt.date(2024, 2, 1), dt.date(2024, 1, 1)], "v": [decimal.Decimal("2.5"), decimal.Decimal("1")]}
    )
    sec = only_section(parse_response(dashboard({"type": "line", "source": "r1", "x": "d", "y": "v"}), {"r1": df}))
    assert [(p.x, p.y) for p in sec.points] == [("2024-01-01", 1.0), ("2024-02-01", 2.5)] and sec.x_type == "time"
    sec = only_section(
        parse_response(
            dashboard(
                {
                    "type": "line",
                    "label": "L",
                    "points": [{"x": "2024-03-01", "y": 3}, {"x": "2024-01-01", "y": "1"}, {"x": "2024-02-01", "y": 2}],
                }
            )
        )
    )
    assert [p.x for p in sec.points] == ["2024-01-01", "2024-02-01", "2024-03-01"] and sec.points[0].y == 1


def test_widgets_from_source():
    frames = {"r1": kpi_frame()}
    parsed = parse_response(
        dashboard(
            {
                "type": "widgets",
                "items": [
                    {"title": "Leads", "source": "r1", "column": "leads", "subtext": "all"},
                    {"title": "Hot", "source": "r1", "column": "hot"},
                    {"title": "Rate", "source": "r1", "column": "rate"},
                    {"title": "Avg", "source": "r1", "column": "avg", "row": 0},
                    {"title": "None", "source": "r1", "column": "none"},
                    {"title": "Literal", "value": 7},
                ],
            }
        ),
        frames,
    )
    sec = only_section(parsed)
    assert [i.value for i in sec.items] == ["1,234,567", "1,234", "0.46", "3.14", "—", 7]
    assert sec.items[0].source == "r1" and sec.items[0].subtext == "all" and sec.items[-1].source is None
    assert sec.source is None  # mixed: one literal item
    assert parsed.notes == []
    # a section-level source is a default for items naming only a column
    sec = only_section(
        parse_response(
            dashboard({"type": "widgets", "source": "r1", "items": [{"title": "Hot", "column": "hot"}]}), frames
        )
    )
    assert sec.items[0].value == "1,234" and sec.source == "r1"


def test_format_value():
    assert format_value(1234) == "1,234" and format_value(np.int64(-5)) == "-5"
    assert format_value(2.0) == "2" and format_value(1234.5678) == "1,234.57" and format_value(0.012345) == "0.012"
    assert format_value(pd.NA) == "—" and format_value(float("nan")) == "—" and format_value(None) == "—"
    assert format_value(decimal.Decimal("12.50")) == "12.5" and format_value("abc") == "abc"
    assert format_value(pd.Timestamp("2024-01-01", tz="UTC")) == "2024-01-01"


def test_pills_from_source_colors():
    frames = {"r1": tiers_frame(), "r2": statuses_frame()}
    sec = only_section(parse_response(dashboard({"type": "pills", "source": "r1", "x": "tier", "y": "n"}), frames))
    assert [(p.label, p.color, p.count) for p in sec.items] == [
        ("hot", "red", 12),
        ("warm", "amber", 340),
        ("cold", "blue", 1234),
    ]
    assert sec.source == "r1" and sec.sql
    parsed = parse_response(
        dashboard(
            {"type": "pills", "label": "Status", "source": "r2", "label_column": "status", "count_column": "count"}
        ),
        frames,
    )
    sec = only_section(parsed)
    assert {p.label: p.color for p in sec.items} == {
        "new": "gray",
        "contacted": "blue",
        "qualified": "purple",
        "disqualified": "red",
        "converted": "green",
        "mystery": "blue",
        "Active": "green",
        "paused": "amber",
        "archived": "gray",
    }
    assert sec.items[5].count == 7 and type(sec.items[5].count) is int and sec.label == "Status"


def test_inline_pill_colors():
    parsed = parse_response(
        dashboard(
            {
                "type": "pills",
                "items": [
                    {"label": "a", "color": "Yellow", "count": 1},
                    {"label": "b", "color": "grey", "count": "2"},
                    {"label": "c", "color": "#ABC", "count": 3.0},
                    {"label": "d", "color": "#12ab9F", "count": 4},
                    {"label": "e", "color": "chartreuse", "count": 5},
                    {"label": "hot", "count": 6},
                ],
            }
        )
    )
    sec = only_section(parsed)
    assert [(p.color, p.count) for p in sec.items] == [
        ("amber", 1),
        ("gray", 2),
        ("#abc", 3),
        ("#12ab9f", 4),
        ("gray", 5),
        ("red", 6),
    ]
    assert parsed.notes == ["section 1 (pills): pill 'e': unknown color 'chartreuse', using gray"]


def test_unknown_source_id(frames):
    parsed = parse_response(
        dashboard({"type": "bars", "source": "r9", "x": "a", "y": "b"}, {"type": "table", "source": "r2"}), frames
    )
    assert [type(s) for s in parsed.response.sections] == [ResolvedTable]
    assert parsed.notes == [
        "Parts of this answer are left out: they are built on results this conversation does not have (r9). "
        "Ask the question again to see them."
    ]
    # Nothing left to show: one sentence instead of an empty dashboard, and no internal notes.
    parsed = parse_response(dashboard({"type": "table", "source": "r1"}, {"type": "table", "source": "r4"}))
    assert parsed.response.type == "message" and parsed.notes == []
    assert parsed.response.text == (
        "This answer could not be shown: it is built on results this conversation does not have (r1, r4). "
        "Ask the question again to see it."
    )
    # lenient id spellings
    sec = only_section(parse_response(dashboard({"type": "table", "source": "R2"}), frames))
    assert sec.source == "r2"
    sec = only_section(parse_response(dashboard({"type": "table", "source": 2}), frames))
    assert sec.source == "r2"


def test_empty_source_frame_keeps_section():
    empty = pd.DataFrame({"tier": pd.Series([], dtype="str"), "n": pd.Series([], dtype="Int64")})
    frames = {"r1": empty}
    for section in (
        {"type": "table", "source": "r1"},
        {"type": "bars", "source": "r1", "x": "tier", "y": "n"},
        {"type": "line", "source": "r1", "x": "tier", "y": "n"},
        {"type": "pills", "source": "r1", "x": "tier", "y": "n"},
        {"type": "widgets", "items": [{"title": "N", "source": "r1", "column": "n"}]},
    ):
        parsed = parse_response(dashboard(section), frames)
        sec = only_section(parsed)
        assert any("r1 has no rows" in n for n in parsed.notes), parsed.notes
        data = sec.model_dump(mode="json")
        assert data.get("rows", data.get("points", data.get("items"))) in (
            [],
            [{"title": "N", "value": "—", "subtext": None, "source": "r1", "sql": None}],
        )
        dump(parsed)


# --------------------------------------------------------------------------
# lenient parsing


@pytest.mark.parametrize(
    "wrap",
    [
        "```json\n{}\n```",
        "```\n{}\n```",
        "```JSON\n{}```",
        "Sure! Here it is:\n\n{}\n\nLet me know.",
        "Here:\n```json\n{}\n```\nDone.",
        "  {}  ",
    ],
)
def test_fences_and_prose_around_json(wrap):
    payload = json.dumps({"type": "message", "text": "Hi {there} ```"})
    parsed = parse_response(wrap.replace("{}", payload))
    assert parsed.response == Message(text="Hi {there} ```") and parsed.notes == []


def test_prefers_object_with_type():
    text = 'Config {"a": 1} and then {"type": "message", "text": "answer"}'
    assert parse_response(text).response.text == "answer"
    text = '[{"type": "message", "text": "first"}, {"type": "message", "text": "second"}]'
    assert parse_response(text).response.text == "first"


def test_plain_prose_is_a_message_without_notes():
    for text in (
        "Hello! How can I help?",
        "Use {name} as a placeholder.",
        "a } b { c",
        'Config {"a": 1} ok',
        'Send {"text": "hi"} to the API.',
    ):
        parsed = parse_response(text)
        assert parsed.response == Message(text=text) and parsed.notes == [] and parsed.raw == text
    assert parse_response(None).response == Message(text="") and parse_response(None).raw == ""


def test_trailing_commas_do_not_raise():
    text = '{"type": "dashboard", "title": "T", "sections": [{"type": "bars", "label": "B", "items": [{"name": "a", "value": 1},],},],}'
    parsed = parse_response(text)
    assert isinstance(parsed.response, ResolvedDashboard)  # repaired
    assert parsed.response.sections[0].items[0].value == 1
    assert parsed.notes == ["repaired trailing commas in the JSON"]
    parsed = parse_response('{"type": "message", "text": "x", oops}')
    assert isinstance(parsed.response, Message) and parsed.notes


def test_invalid_and_unknown_sections_are_skipped_with_notes():
    text = dashboard(
        {"type": "bars", "label": "ok", "items": [{"name": "a", "value": "12"}, {"name": "b", "value": "1,234.5"}]},
        {"type": "bars", "label": "bad", "items": "not a list"},
        {"type": "heatmap", "cells": []},
        "not an object",
        {"type": "pills", "items": [{"label": "x", "count": "many"}, {"label": "y", "count": 2}]},
        {
            "type": "line",
            "label": "L",
            "points": [{"x": 1, "y": float("nan")}, {"x": 2, "y": float("inf")}, {"x": 3, "y": 4}],
        },
        {"items": []},
    )
    parsed = parse_response(text)
    secs = parsed.response.sections
    assert [s.type for s in secs] == ["bars", "pills", "line"]
    assert [(i.name, i.value) for i in secs[0].items] == [("a", 12), ("b", 1234.5)]
    assert [p.label for p in secs[1].items] == ["y"]
    assert [(p.x, p.y) for p in secs[2].points] == [(3, 4)]
    notes = parsed.notes
    assert notes[0].startswith("skipped section 2 (bars): items: Input should be a valid list")
    assert "skipped section 3: unknown type 'heatmap'" in notes
    assert "skipped section 4: not an object" in notes
    assert any(n.startswith("section 5 (pills): dropped item 1: count:") for n in notes)
    assert sum(n.startswith("section 6 (line): dropped point") for n in notes) == 2
    assert "skipped section 7: missing type" in notes
    dump(parsed)


def test_dashboard_fixups():
    parsed = parse_response(
        json.dumps(
            {"type": "Dashboard", "sections": [{"type": "bar", "label": "B", "items": [{"name": 2024, "value": 1}]}]}
        )
    )
    assert parsed.response.title == "Dashboard"
    assert parsed.response.sections[0].items[0].name == "2024"
    assert "dashboard has no title; using 'Dashboard'" in parsed.notes
    assert "section 1 (bars): type 'bar' read as 'bars'" in parsed.notes
    # rows as lists aligned with columns are normalised to objects
    sec = only_section(
        parse_response(
            dashboard(
                {
                    "type": "table",
                    "columns": ["a", "b"],
                    "rows": [[1, "x"], [2], [3, "y", "extra"], {"a": 4, "b": None}],
                }
            )
        )
    )
    assert sec.rows == [{"a": 1, "b": "x"}, {"a": 2, "b": None}, {"a": 3, "b": "y"}, {"a": 4, "b": None}]
    # missing type inferred
    parsed = parse_response('{"title": "T", "sections": []}')
    assert isinstance(parsed.response, ResolvedDashboard) and "read as 'dashboard'" in parsed.notes[0]


def test_literal_data_wins_over_source():
    frames = {"r2": tiers_frame()}
    parsed = parse_response(
        dashboard(
            {"type": "bars", "label": "B", "source": "r2", "items": [{"name": "a", "value": 1}]},
            {"type": "widgets", "items": [{"title": "Leads", "value": "3,000", "source": "r2"}]},
        ),
        frames,
    )
    bars, widgets = parsed.response.sections
    assert bars.items[0].value == 1 and widgets.items[0].value == "3,000" and parsed.notes == []
    RESPONSE_ADAPTER.validate_python(
        {
            "type": "dashboard",
            "title": "t",
            "sections": [{"type": "widgets", "items": [{"title": "Leads", "value": "3,000", "source": "r2"}]}],
        }
    )


def test_whole_invalid_becomes_message_with_notes():
    for text, fragment in (
        ('{"type": "confirm", "title": "t", "summary": "s"}', "sql: Field required"),
        ('{"type": "message", "text": {"nested": true}}', "text: Input should be a valid string"),
        ('{"type": "chart", "data": [1, 2]}', "unknown response type 'chart'"),
        ('{"type": 5}', "invalid response type 5"),
        ('{"foo": "bar"}', "no 'type'"),
        ('{"type": "dashboard", "title": "T", "sections": [', "does not parse"),
    ):
        parsed = parse_response(text)
        assert parsed.response == Message(text=text), text
        assert any(fragment in n for n in parsed.notes), (text, parsed.notes)


def test_confirm_and_truncated_message():
    parsed = parse_response('{"type": "confirm", "sql": "DELETE FROM leads WHERE id = 1", "summary": "Deletes lead 1"}')
    assert isinstance(parsed.response, Confirm) and parsed.response.id.startswith("confirm-")
    assert parsed.response.title == "Confirm change" and len(parsed.notes) == 2
    parsed = parse_response('{"type": "message", "text": "cut off he')
    assert parsed.response == Message(text="cut off he") and parsed.notes


def test_xss_strings_are_plain_data():
    frames = {"r1": pd.DataFrame({"name": [XSS], "n": [1]})}
    text = json.dumps(
        {
            "type": "dashboard",
            "title": XSS,
            "sections": [
                {"type": "table", "columns": [XSS], "rows": [{XSS: XSS}]},
                {"type": "bars", "label": XSS, "items": [{"name": XSS, "value": 1}]},
                {"type": "bars", "source": "r1", "x": "name", "y": "n"},
                {"type": "pills", "items": [{"label": "<script>alert(1)</script>", "count": 1}]},
            ],
        }
    )
    parsed = parse_response(text, frames)
    d = dump(parsed)
    assert d["title"] == XSS
    assert d["sections"][0]["columns"] == [XSS] and d["sections"][0]["rows"] == [{XSS: XSS}]
    assert d["sections"][1]["items"][0]["name"] == XSS and d["sections"][2]["items"][0]["name"] == XSS
    assert d["sections"][3]["items"][0]["label"] == "<script>alert(1)</script>"
    assert parse_response(XSS).response.text == XSS
    assert parse_response(json.dumps({"type": "message", "text": XSS})).response.text == XSS
    assert "&lt;" not in json.dumps(d)


# --------------------------------------------------------------------------
# streaming display


def test_partial_display_text_cases():
    assert partial_display_text('{"type": "message", "text": "Hello **wor') == "Hello **wor"
    assert partial_display_text('{"type":"message","text":"a\\nb\\"c\\\\d\\u00e9') == 'a\nb"c\\dé'
    assert partial_display_text('{"type":"message","text":"x\\u00') == "x"
    assert partial_display_text('{"type":"message","text":"x\\') == "x"
    assert partial_display_text('{"type":"message","text":"x\\ud83d') == "x"
    assert partial_display_text('{"type":"message","text":"x\\ud83d\\ude') == "x"
    assert partial_display_text('{"type":"message","text":"x\\ud83d\\ude00') == "x😀"
    assert (
        partial_display_text('{"type": "dashboard", "sections": [{"type": "table", "title": "inner"}], "title": "Top')
        == "Top"
    )
    assert partial_display_text('{"type": "dashboard", "sections": [{"title": "inner"') == ""
    assert partial_display_text('{"type": "confirm", "id": "x", "title": "Archive') == "Archive"
    assert partial_display_text('```json\n{"type": "message", "text": "fenced') == "fenced"
    assert partial_display_text("```json") == "" and partial_display_text("`") == ""
    assert partial_display_text("Just some prose") == "Just some prose"
    assert partial_display_text("Just prose\n```") == "Just prose"
    assert partial_display_text('Here you go: {"type": "message", "text": "Hi') == "Hi"
    assert partial_display_text(None) == "" and partial_display_text("") == ""


# --------------------------------------------------------------------------
# property tests


def _frame_pool() -> list[pd.DataFrame]:
    odd = pd.DataFrame(
        {
            "tier": ["hot", None, "cold"],
            "n": [1, 2, 3],
            "d": [dt.date(2024, 1, 2), None, dt.date(2024, 1, 1)],
            "dec": [decimal.Decimal("1.5"), decimal.Decimal("NaN"), None],
            "mixed": [1, "two", {"three": [3]}],
            "b": [True, False, None],
            "raw": [b"\x00", bytearray(b"x"), memoryview(b"y")],
            "td": pd.to_timedelta([1, 2, None], unit="h"),
            "arr": [np.array([1, 2]), np.array(5), ()],
        }
    )
    dup = pd.DataFrame([[1, "a", 2.5], [2, "b", np.inf]], columns=["x", "x", 3])
    return [
        leads_frame(30),
        tiers_frame(),
        weekly_frame(),
        kpi_frame(),
        statuses_frame(),
        odd,
        dup,
        pd.DataFrame(),
        pd.DataFrame({"n": []}),
    ]


FRAME_POOL = _frame_pool()
COLUMNS = [
    "tier",
    "n",
    "week",
    "hot",
    "warm",
    "login",
    "score",
    "created_at",
    "meta",
    "d",
    "dec",
    "mixed",
    "b",
    "raw",
    "td",
    "arr",
    "x",
    "3",
    "status",
    "count",
    "leads",
    "nope",
    "",
]
SOURCES = ["r1", "r2", "r3", "r4", "r9", "R1", "", "1"]
ODD_STRINGS = [
    "```json",
    "```",
    "{",
    "}",
    '{"type":',
    "[",
    "]",
    XSS,
    "\\u00e9",
    "\\",
    '"',
    "NaN",
    "\n",
    "…",
    "\ud83d",
    "2024-01-01",
    "2024-13-45",
    "#abc",
    "yellow",
    "chartreuse",
    "1,234",
    "12",
]

texts = st.one_of(st.text(max_size=12), st.sampled_from(ODD_STRINGS))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.sampled_from(COLUMNS),
)
json_ish = st.recursive(leaves, lambda c: st.lists(c, max_size=3) | st.dictionaries(texts, c, max_size=3), max_leaves=8)
columns = st.one_of(st.sampled_from(COLUMNS), leaves)
items = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "title": texts,
            "value": leaves,
            "name": leaves,
            "label": leaves,
            "color": st.sampled_from(["green", "Yellow", "#abc", "#12345g", "chartreuse", None, 3]),
            "count": leaves,
            "source": st.sampled_from(SOURCES),
            "column": columns,
            "row": st.one_of(st.integers(-4, 40), leaves),
            "subtext": leaves,
            "x": st.one_of(leaves, st.sampled_from(["2024-01-01", "2024-02-30", "2024-01-01T10:00:00Z"])),
            "y": leaves,
            "series": leaves,
        },
    ),
    json_ish,
)
sections = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["widgets", "bars", "line", "table", "pills", "heatmap", "Bars", "bar", "kpi", None, 3, ""]
            )
        },
        optional={
            "source": st.one_of(st.sampled_from(SOURCES), leaves),
            "x": columns,
            "y": st.one_of(columns, st.lists(columns, max_size=3)),
            "column": columns,
            "columns": st.one_of(st.lists(columns, max_size=4), leaves),
            "label_column": columns,
            "count_column": columns,
            "series": columns,
            "limit": st.one_of(st.integers(-5, 2000), st.just("10"), leaves),
            "label": leaves,
            "title": leaves,
            "items": st.one_of(st.lists(items, max_size=4), items),
            "points": st.lists(items, max_size=4),
            "rows": st.one_of(
                st.lists(
                    st.one_of(
                        st.dictionaries(st.sampled_from(COLUMNS), leaves, max_size=3),
                        st.lists(leaves, max_size=4),
                        leaves,
                    ),
                    max_size=3,
                ),
                leaves,
            ),
        },
    ),
    json_ish,
)
# Plausible sections: mostly valid, so resolution against the frames is exercised, not only rejection.
good_sources = st.sampled_from(["r1", "r2", "r3", "r4"])
good_columns = st.one_of(
    st.sampled_from(["tier", "n", "tier", "n", "week", "hot", "warm", "login", "created_at", "d", "status", "count"]),
    st.sampled_from(COLUMNS),
)
limits = st.one_of(st.none(), st.integers(-2, 700))
numbers = st.one_of(
    st.integers(-1000, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["12", "1,234.5", "x"])
)
xs = st.one_of(
    st.sampled_from(["2024-01-01", "2024-01-08", "2023-12-25", "2024-01-01T10:00:00Z", "w1"]), st.integers(0, 9), texts
)


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


plausible_sections = st.one_of(
    st.builds(
        lambda s, x, y, lim: _drop_none({"type": "bars", "source": s, "x": x, "y": y, "limit": lim}),
        good_sources,
        good_columns,
        good_columns,
        limits,
    ),
    st.builds(
        lambda s, x, y, ser, lim: _drop_none(
            {"type": "line", "source": s, "x": x, "y": y, "series": ser, "limit": lim}
        ),
        good_sources,
        good_columns,
        st.one_of(good_columns, st.lists(good_columns, max_size=3)),
        st.one_of(st.none(), good_columns),
        limits,
    ),
    st.builds(
        lambda s, cols, lim: _drop_none({"type": "table", "source": s, "columns": cols, "limit": lim}),
        good_sources,
        st.one_of(st.none(), st.lists(good_columns, max_size=4)),
        limits,
    ),
    st.builds(
        lambda s, x, y: {"type": "pills", "source": s, "label_column": x, "count_column": y},
        good_sources,
        good_columns,
        good_columns,
    ),
    st.builds(
        lambda its: {"type": "widgets", "items": its},
        st.lists(
            st.one_of(
                st.builds(
                    lambda t, s, c, r: {"title": t, "source": s, "column": c, "row": r},
                    texts,
                    good_sources,
                    good_columns,
                    st.integers(-3, 40),
                ),
                st.builds(lambda t, v: {"title": t, "value": v}, texts, st.one_of(numbers, texts)),
            ),
            max_size=4,
        ),
    ),
    st.builds(
        lambda lbl, its: {"type": "bars", "label": lbl, "items": its},
        texts,
        st.lists(st.builds(lambda n, v: {"name": n, "value": v}, st.one_of(texts, st.integers()), numbers), max_size=5),
    ),
    st.builds(
        lambda lbl, pts: {"type": "line", "label": lbl, "points": pts},
        texts,
        st.lists(
            st.builds(
                lambda x, y, ser: _drop_none({"x": x, "y": y, "series": ser}),
                xs,
                numbers,
                st.one_of(st.none(), st.sampled_from(["a", "b"])),
            ),
            max_size=6,
        ),
    ),
    st.builds(
        lambda cols, rows: {"type": "table", "columns": cols, "rows": rows},
        st.lists(good_columns, max_size=3),
        st.lists(
            st.one_of(st.lists(leaves, max_size=4), st.dictionaries(good_columns, json_ish, max_size=3)), max_size=4
        ),
    ),
    st.builds(
        lambda its: {"type": "pills", "items": its},
        st.lists(
            st.builds(
                lambda lbl, c, n: _drop_none({"label": lbl, "color": c, "count": n}),
                texts,
                st.sampled_from(["green", "Yellow", "grey", "#abc", "#12345g", "chartreuse", None]),
                numbers,
            ),
            max_size=4,
        ),
    ),
)

payloads = st.one_of(
    st.builds(
        lambda title, secs: {"type": "dashboard", "title": title, "sections": secs},
        texts,
        st.lists(st.one_of(plausible_sections, plausible_sections, sections), max_size=5),
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "dashboard", "confirm", "Dashboard", "chart", "", None, 1])},
        optional={
            "text": leaves,
            "title": leaves,
            "sections": st.one_of(st.lists(sections, max_size=5), json_ish),
            "id": leaves,
            "summary": leaves,
            "sql": leaves,
        },
    ),
    st.fixed_dictionaries({"sections": st.lists(sections, max_size=3)}),
    json_ish,
)
frame_maps = st.one_of(
    st.dictionaries(st.sampled_from(["r1", "r2", "r3", "r4"]), st.sampled_from(range(len(FRAME_POOL))), max_size=4),
    st.permutations(range(len(FRAME_POOL))).map(lambda p: {f"r{i + 1}": j for i, j in enumerate(p[:4])}),
)


@st.composite
def frame_aware_section(draw, frames: dict[str, pd.DataFrame]) -> dict:
    """A source section naming a result that exists and (mostly) columns it has."""
    key = draw(st.sampled_from(sorted(frames)))
    cols = st.sampled_from([str(c) for c in frames[key].columns] + ["nope"])
    kind = draw(st.sampled_from(["bars", "line", "line_multi", "table", "pills", "widgets"]))
    lim = draw(limits)
    if kind == "bars":
        return _drop_none({"type": "bars", "source": key, "x": draw(cols), "y": draw(cols), "limit": lim})
    if kind == "line":
        return _drop_none(
            {
                "type": "line",
                "source": key,
                "x": draw(cols),
                "y": draw(cols),
                "series": draw(st.none() | cols),
                "limit": lim,
            }
        )
    if kind == "line_multi":
        return _drop_none(
            {
                "type": "line",
                "source": key,
                "x": draw(cols),
                "y": draw(st.lists(cols, min_size=1, max_size=3)),
                "limit": lim,
            }
        )
    if kind == "table":
        return _drop_none(
            {"type": "table", "source": key, "columns": draw(st.none() | st.lists(cols, max_size=4)), "limit": lim}
        )
    if kind == "pills":
        return {"type": "pills", "source": key, "x": draw(cols), "y": draw(cols)}
    return {
        "type": "widgets",
        "items": [{"title": "w", "source": key, "column": draw(cols), "row": draw(st.integers(-2, 5))}],
    }


@st.composite
def scenarios(draw) -> tuple[object, dict[str, pd.DataFrame]]:
    frames = {k: FRAME_POOL[v] for k, v in draw(frame_maps).items()}
    payload = draw(payloads)
    if frames and isinstance(payload, dict) and isinstance(payload.get("sections"), list) and draw(st.booleans()):
        extra = draw(st.lists(frame_aware_section(frames), min_size=1, max_size=3))
        payload = dict(payload, sections=[*payload["sections"], *extra])
    return payload, frames


def _variant(data, text: str) -> str:
    how = data.draw(
        st.sampled_from(["plain", "plain", "plain", "indent", "fenced", "prose", "truncate", "insert", "random"]),
        label="variant",
    )
    if how == "indent":
        return text.replace(", ", ",\n  ")
    if how == "fenced":
        return f"```json\n{text}\n```"
    if how == "prose":
        return data.draw(texts) + text + data.draw(texts)
    if how == "truncate":
        return text[: data.draw(st.integers(0, len(text)))]
    if how == "insert":
        i = data.draw(st.integers(0, len(text)))
        return text[:i] + data.draw(st.one_of(texts, st.sampled_from([",", "}", "]", '"', ",}"]))) + text[i:]
    if how == "random":
        return data.draw(st.text(max_size=60))
    return text


@settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(scenario=scenarios(), data=st.data())
def test_parse_never_raises_and_always_resolves(scenario, data):
    payload, frames = scenario
    text = _variant(data, json.dumps(payload))
    parsed = parse_response(text, frames)
    assert isinstance(parsed, Parsed) and parsed.raw == text
    assert isinstance(parsed.response, (Message, ResolvedDashboard, Confirm))
    assert all(isinstance(n, str) for n in parsed.notes)
    assert not [n for n in parsed.notes if "internal error" in n], parsed.notes
    dumped = parsed.response.model_dump(mode="json")
    json.dumps(dumped, allow_nan=False)
    assert response_json(RESOLVED_ADAPTER.validate_python(dumped), as_stored=True) == dumped
    partial_display_text(text)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(max_size=40) | st.sampled_from(['a"b\\c\n\t', "😀 é 李", "\u2028 \x00 \x1f", '}{"type":']),
    ensure_ascii=st.booleans(),
    text_first=st.booleans(),
    indent=st.sampled_from([None, 2]),
    fence=st.sampled_from(["", "```json\n", "```\n"]),
    extra=st.booleans(),
)
def test_partial_display_prefixes_of_message(text, ensure_ascii, text_first, indent, fence, extra):
    obj = {"text": text, "type": "message"} if text_first else {"type": "message", "text": text}
    if extra:
        obj = {"meta": {"a": ["}", 1, {"text": "no"}]}, **obj, "after": [1, 2]}
    s = json.dumps(obj, ensure_ascii=ensure_ascii, indent=indent)
    if fence:
        s = f"{fence}{s}\n```"
    assert partial_display_text(s) == text
    assert parse_response(s).response == Message(text=text)
    for i in range(len(s) + 1):
        shown = partial_display_text(s[:i])
        assert text.startswith(shown), (s[:i], shown)


# --------------------------------------------------------------------------
# the streaming display, fed chunk by chunk, shows what a rescan of the whole buffer showed


def rescanned_display(buffer: str) -> str:
    """The display as it was worked out before it streamed incrementally: every chunk rescanned
    the whole buffer (quadratic, and kept here as the reference)."""
    s = buffer.lstrip()
    if not s:
        return ""
    if s.startswith("```") or "```".startswith(s):
        nl = s.find("\n")
        if nl < 0:
            return ""
        lang = s[3:nl].strip().lower()
        body = s[nl + 1 :].lstrip()
        if lang in ("", "json", "jsonc", "json5"):
            if not body:
                return ""
            if body[0] == "{":
                return _rescanned_json(body)
            if lang != "":
                return ""
    if s[0] == "{":
        return _rescanned_json(s)
    m = _RESCAN_JSON_START.search(s)
    if m:
        brace = s.index("{", m.start())
        return _rescanned_json(s[brace:]) or s[: m.start()].rstrip()
    h = _RESCAN_HOLD_BACK.search(s, max(0, len(s) - 80))
    return s[: h.start()].rstrip() if h else s


_RESCAN_JSON_START = re.compile(r'(?:```[\w+-]*[ \t]*\n\s*)?\{\s*"(?:type|text|title)"\s*:')
_RESCAN_HOLD_BACK = re.compile(r'(?:(?:^|\n)[ \t]*`{1,3}[\w+-]*[ \t]*|(?:^|\s)\{\s*"?[a-z]{0,5}"?\s*:?\s*)$')


def _rescanned_json(s: str) -> str:
    fields = scan_top_level(s, 0)
    t_val, t_done = fields.get("type", ("", False))
    t = t_val.strip().lower() if t_done else None
    text, title = fields.get("text", (None,))[0], fields.get("title", (None,))[0]
    if t in ("message", "text", "markdown"):
        return text or ""
    if t in ("dashboard", "confirm", "confirmation"):
        return title or ""
    return text or title or ""


# Pieces that steer the display: fences, JSON starts and keys, escapes cut anywhere, blanks of
# every kind (JSON's own and Unicode's), markers near and far from the end.
_PIECES = st.sampled_from(
    [
        "{",
        "}",
        "[",
        "]",
        '"',
        ":",
        ",",
        " ",
        "\t",
        "\n",
        "\r",
        "\\",
        "\\n",
        '\\"',
        "\\u00e9",
        "\\ud83d",
        "\\ude00",
        "\\u00",
        "\\uZZZZ",
        '"type"',
        '"text"',
        '"title"',
        '"message"',
        '"dashboard"',
        '"confirm"',
        '" Markdown "',
        "type",
        "te",
        ";",
        "=",
        "```",
        "```json",
        "```python",
        "`",
        "json",
        " word",
        "\u2028",
        "\xa0",
        "\x85",
        "\x1c",
        "😀",
        "1",
        "null",
        '{"type":"message","text":"',
        '{"type": "dashboard", "title": "',
        '"sections": [',
        "Here you go: ",
        " " * 40,
        "x" * 50,
    ]
)
streamed_answers = st.one_of(
    st.lists(_PIECES | st.text(max_size=3), max_size=40).map("".join),
    st.lists(_PIECES, min_size=30, max_size=150).map("".join),  # longer than the 80-character hold-back reach
    st.builds(  # a marker about as far from the end as the hold-back reaches
        lambda pre, marker, fill, k, post: pre + marker + fill * k + post,
        st.lists(_PIECES, max_size=8).map("".join),
        st.sampled_from(["\n```", "\n`", " {", '\t{"', "{", "\n ``"]),
        st.sampled_from(["a", " ", "\t", "-", "\n"]),
        st.integers(70, 90),
        st.sampled_from(["", "x", ":", " "]),
    ),
    st.builds(
        lambda pre, obj, indent, ascii_, post: pre + json.dumps(obj, indent=indent, ensure_ascii=ascii_) + post,
        st.sampled_from(["", "```json\n", "```\n", "``` JSON \n\n ", "```js\n", "Here you go: ", "Prose\n```json\n"]),
        st.one_of(
            st.builds(lambda t: {"type": "message", "text": t}, st.text(max_size=30)),
            st.builds(lambda t: {"text": t, "type": "message"}, st.text(max_size=30)),
            st.builds(
                lambda t: {"type": "dashboard", "sections": [{"type": "table", "title": "inner"}], "title": t},
                st.text(max_size=20),
            ),
            st.builds(
                lambda t, k: {
                    "meta": {"a": ["}", 1, {"text": "no"}]},
                    "type": k,
                    "text": t,
                    "title": t[:3],
                    "after": [1],
                },
                st.text(max_size=20),
                st.sampled_from(["message", " Confirm ", "chart", 1, None]),
            ),
        ),
        st.sampled_from([None, 2]),
        st.booleans(),
        st.sampled_from(["", "\n```", " and then", "```"]),
    ),
)


@settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=streamed_answers, data=st.data())
def test_the_streaming_display_fed_in_chunks_shows_what_a_rescan_of_each_prefix_showed(answer, data):
    cuts = sorted(
        set(data.draw(st.lists(st.integers(1, max(1, len(answer))), max_size=len(answer)), label="cuts"))
        | {len(answer)}
    )
    display, folded, start = StreamingDisplay(), "", 0
    for end in cuts:
        edit = display.feed(answer[start:end])
        if edit is not None:
            assert edit.keep <= len(folded) and (edit.keep < len(folded) or edit.delta), edit
            folded = folded[: edit.keep] + edit.delta
        expected = rescanned_display(answer[:end])
        assert display.text == expected, (answer[:end], display.text, expected)
        assert folded == expected, "the edits rebuild what is shown"
        start = end
    assert partial_display_text(answer) == rescanned_display(answer)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=streamed_answers)
def test_the_streaming_display_one_character_at_a_time_matches_every_prefix(answer):
    display = StreamingDisplay()
    for i, ch in enumerate(answer):
        display.feed(ch)
        assert display.text == rescanned_display(answer[: i + 1]), answer[: i + 1]


def test_a_cell_table_lines_up_one_columns_decimals_and_keeps_dates_and_numbers_whole():
    from nexusleads_lab.ui.html import table_html

    html = table_html(
        {
            "columns": ["project", "since", "avg"],
            "rows": [
                {"project": "Observability tooling", "since": "2025-07-06", "avg": 12.5},
                {"project": "Kafka", "since": "2025-07-07", "avg": 3},
                {"project": "Rust", "since": None, "avg": 7.25},
            ],
        }
    )
    assert re.findall(r'<td class="nxl-num">([^<]*)</td>', html) == ["12.50", "3.00", "7.25"]
    assert html.count('<td class="nxl-nowrap">2025-07-0') == 2, "dates stay on one line"
    assert "<td>Observability tooling</td>" in html, "words wrap only between words (CSS: no nowrap, no anywhere)"


def test_a_long_label_with_a_character_outside_the_bmp_still_gets_its_picture_and_two_long_names_stay_two_bars():
    import base64

    from PIL import Image

    from nexusleads_lab.safetext import safe_response
    from nexusleads_lab.ui import charts

    items = [
        {"name": "\x0cA\udfff\U000111c1" * 3, "value": 1},
        {"name": "X" * 70 + "a", "value": 2},
        {"name": "X" * 70 + "b", "value": 3},
    ]
    section = safe_response(
        {"type": "dashboard", "title": "t", "sections": [{"type": "bars", "label": "", "items": items}]}
    )["sections"][0]
    data, _ = charts.chart_bundle(charts.bars_chart(section))
    picture = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
    assert picture.width > 300, "the picture is drawn"
    names = [
        v
        for d in charts.flat_spec(charts.bars_chart(section).to_dict())["datasets"].values()
        for v in (r["name"] for r in d)
    ]
    assert len(set(names)) == 3, "shortened names stay distinct"


def test_charts_drawn_from_several_threads_at_once_never_deadlock_the_process():
    # vl-convert's engine lock is taken without giving up the GIL and a call can run Python (a
    # garbage collection's callbacks, as hypothesis installs): two threads converting at once (the
    # prewarm thread and a cell's first chart) hung the whole process in CI. A child process
    # converts from four threads under frequent collections with a callback; it must finish.
    import subprocess
    import sys
    import textwrap

    probe = textwrap.dedent(
        """
        import gc, threading
        from nexusleads_lab.ui import charts

        gc.callbacks.append(lambda phase, info: sum(range(200)))
        gc.set_threshold(50, 5, 5)

        def work(i):
            for j in range(6):
                junk = [[k] for k in range(300)]
                section = {"type": "bars", "label": f"t{i}{j}", "items": [{"name": f"a{k}", "value": k} for k in range(20)]}
                charts.chart_bundle(charts.bars_chart(section))

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("all drawn")
        """
    )
    try:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail("the process hung: two threads inside vl-convert at once deadlocked")
    assert out.returncode == 0 and out.stdout.strip() == "all drawn", out.stderr[-2000:]


def _nested(depth: int) -> object:
    value: object = 7
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "answer",
    [
        json.dumps(
            {"type": "dashboard", "title": "Leads é", "sections": [{"type": "bars", "label": "b", "items": []}]}
        ),
        '{"type": "message", "text": "lone \\ud800 escape"}',
        '{"type": "message", "text": "a pair \\ud83d\\ude00 and a lone low \\uDC80"}',
        '{"type": "message", "text": "a lone surrogate in the text itself: \ud800"}',
        json.dumps(
            {
                "type": "dashboard",
                "title": "T",
                "sections": [{"type": "table", "columns": ["a"], "rows": [[_nested(45)]]}],
            }
        ),
        json.dumps(
            {
                "type": "dashboard",
                "title": "T",
                "sections": [{"type": "table", "columns": ["a"], "rows": [[_nested(30)]]}],
            }
        ),
        '{"type": "message", "text": "\\\\ud800 is a backslash and letters, not an escape"}',
    ],
)
def test_an_answer_parses_the_same_whether_or_not_its_json_is_walked_to_clean_it(answer, monkeypatch):
    """Parsed JSON is walked to replace lone surrogates and cut nesting beyond ``MAX_DEPTH``
    only when its text can hold either: the result is the same as walking it always."""
    from nexusleads_lab.agent.responses import parse
    from nexusleads_lab.agent.responses.formatting import _clean_tree

    obj = json.loads(answer)
    assert parse._cleaned(json.loads(answer), answer) == _clean_tree(obj)
    as_is = parse_response(answer)
    monkeypatch.setattr(parse, "_cleaned", lambda obj, raw: _clean_tree(obj))
    walked = parse_response(answer)
    assert as_is.response.model_dump() == walked.response.model_dump() and as_is.notes == walked.notes
    json.dumps(as_is.response.model_dump(), ensure_ascii=False).encode("utf-8")  # no lone surrogate left
