"""`fastjson` says what the standard library's `json` says: the same values back, the same errors,
whatever the text (the model's, a client's or the database's) holds."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexusleads_lab import fastjson

# JSON values as Python holds them, including what orjson alone refuses: lone surrogates, integers
# beyond 64 bits, deep nesting.
_text = st.text(alphabet=st.characters(codec=None), max_size=20)
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4), max_leaves=30
)


@settings(max_examples=400, deadline=None)
@given(_values)
def test_round_trip_matches_json(value):
    expected = json.loads(json.dumps(value))
    assert fastjson.loads(fastjson.dumps(value)) == expected
    assert fastjson.loads(fastjson.dumpb(value)) == expected
    assert json.loads(fastjson.dumps(value)) == expected  # what it writes, the standard library reads


@settings(max_examples=200, deadline=None)
@given(_values)
def test_reads_what_json_writes(value):
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False), json.dumps(value, indent=2)):
        assert fastjson.loads(text) == json.loads(text)


def test_lone_surrogate_big_int_and_int_keys_are_encoded_as_json_would():
    value = {"a": "x\ud800y", "big": 2**70, 3: "three", "neg": -(2**80)}
    assert json.loads(fastjson.dumps(value)) == json.loads(json.dumps(value))
    data = fastjson.dumpb(value)
    assert data.isascii()  # bytes: the surrogate is an escape, never bytes UTF-8 cannot hold
    assert json.loads(data) == json.loads(json.dumps(value))


def test_output_is_compact_utf8():
    assert fastjson.dumps({"k": ["é", 1, None]}) == '{"k":["é",1,null]}'
    assert fastjson.dumpb({"k": "é"}) == '{"k":"é"}'.encode()


def test_deep_nesting_beyond_orjsons_limit_still_encodes():
    deep: list = []
    for _ in range(400):
        deep = [deep]
    assert fastjson.loads(fastjson.dumps(deep)) == deep


def test_default_is_called_for_datetimes_and_dataclasses_as_json_does():
    @dataclasses.dataclass
    class Point:
        x: int

    when = dt.datetime(2026, 12, 7, 23, 5, tzinfo=dt.UTC)
    value = {"at": when, "p": Point(1), "d": dt.date(2026, 1, 2)}
    assert json.loads(fastjson.dumps(value, default=str)) == json.loads(json.dumps(value, default=str))
    with pytest.raises(TypeError):
        fastjson.dumps({"at": when})  # no default: refused, as json refuses it
    with pytest.raises(TypeError):
        fastjson.dumpb(object())


def test_nan_is_null_not_the_invalid_literal():
    assert fastjson.dumps([math.nan, math.inf]) == "[null,null]"


@pytest.mark.parametrize(
    "text", ["", "{", '{"a":1,}', "[1] x", "\ud800", '"\\ud800"', "NaN", "[Infinity, -Infinity]", b'{"a": "\xff"}']
)
def test_bad_or_unusual_input_reads_or_fails_as_json_does(text):
    try:
        expected = json.loads(text)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            fastjson.loads(text)
        return
    got = fastjson.loads(text)
    assert json.dumps(got) == json.dumps(expected)  # NaN != NaN; their text is the same


def test_float_and_tuple_subclasses_are_numbers_and_lists_with_a_default_as_json_writes_them():
    import collections

    import numpy as np

    Pair = collections.namedtuple("Pair", "a b")
    value = {"f": np.float64(1.5), "t": Pair(1, "x"), "n": [np.float64(2.0)], "when": dt.date(2026, 1, 2)}
    assert fastjson.dumps(value, default=str) == json.dumps(value, default=str, separators=(",", ":"))
    assert fastjson.dumpb(value, default=str) == json.dumps(value, default=str, separators=(",", ":")).encode()


def test_a_long_text_costs_about_its_size_in_memory_not_sixteen_times_it():
    import tracemalloc

    prose = "Leads **grow** where `stars` meet {issues}; see the table below.\n" * 20_000  # 1.3 MB
    value = {"role": "assistant", "content": [{"type": "text", "text": prose}], "n": 2**70}
    for encode in (fastjson.dumps, fastjson.dumpb):
        tracemalloc.start()
        out = encode(value)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert json.loads(out) == value
        assert peak < 4 * len(out), f"{encode.__name__}: peak {peak / len(out):.1f}x the output"
    assert json.loads(fastjson.dumpb({"t": "x\ud800" * 20_000})) == {"t": "x\ud800" * 20_000}


@pytest.mark.parametrize(
    "value",
    [
        ["x" * (fastjson.LONG_TEXT + 1), math.nan, {"a": (math.inf, -math.inf)}],  # a long text: json writes it
        ["\ud800", math.nan],  # a lone surrogate: json writes it
        [2**70, math.inf],  # an integer beyond 64 bits: json writes it
    ],
)
def test_nan_is_null_on_the_paths_json_writes_too(value):
    """Where ``json`` writes the value instead of orjson, a NaN or infinity is still ``null``:
    ``NaN`` is not JSON (jsonb refuses the store's write, a browser's JSON.parse the frame)."""
    for out in (fastjson.dumps(value), fastjson.dumpb(value).decode()):
        read = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} written"))
        assert None in read
        assert "NaN" not in out and "Infinity" not in out
    assert fastjson.dumps([math.nan, "x" * (fastjson.LONG_TEXT + 1)], default=str).startswith("[null,")


def test_a_default_that_answers_nan_is_written_null_on_the_json_path():
    class Odd:
        pass

    out = fastjson.dumps(["x" * (fastjson.LONG_TEXT + 1), Odd()], default=lambda _: math.nan)
    assert out.endswith(",null]")
