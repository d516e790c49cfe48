"""A long answer streams in linear time and memory: the display keeps its scan state between
chunks, events carry edits, and the turn keeps one copy of the text, not one per chunk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

from hypothesis import example, given, settings
from hypothesis import strategies as st

from nexusleads_lab.agent.streaming import StreamingDisplay
from nexusleads_lab.testing.modelserver import ModelServer, Script, text

MB = 1_000_000
# Markdown-ish prose with a code span and braces on every line: the display checks each of them
# for a code fence or a JSON start in progress.
PROSE = ("Leads **grow** where `stars` meet {issues}; see the table below.\n" * (MB // 60))[:MB]


def stream(answer: str, chunk_size: int) -> tuple[StreamingDisplay, float]:
    """Feed ``answer`` to a display in ``chunk_size`` pieces; -> (display, CPU seconds)."""
    display = StreamingDisplay()
    started = time.process_time()
    for i in range(0, len(answer), chunk_size):
        display.feed(answer[i : i + chunk_size])
    return display, time.process_time() - started


def grows_linearly(make, small: int, big: int, chunk_size: int) -> str | None:
    """None when feeding ``make(big)`` costs about ``big / small`` times ``make(small)`` (each the
    least CPU of three runs); else why not. A ratio, not a time: the machines are shared and noisy,
    and a rescan per chunk (what these tests guard against) makes the ratio the square, not the size."""
    costs = [min(stream(make(n), chunk_size)[1] for _ in range(3)) for n in (small, big)]
    expected = big / small
    ratio = costs[1] / max(costs[0], 1e-4)
    return None if ratio < 3 * expected else f"{ratio:.0f}x the CPU for {expected:.0f}x the text ({costs})"


def test_unclosed_nested_json_costs_the_display_linear_time():
    head = '{"type":"dashboard","title":"x","sections":['
    display, _ = stream(head + "[" * 150_000, chunk_size=4)  # took 197 s when every chunk rescanned
    assert display.text == "x", "the dashboard's title is shown while its sections stream"
    assert grows_linearly(lambda n: head + "[" * n, 15_000, 150_000, chunk_size=4) is None


def test_a_megabyte_answer_costs_the_display_linear_time():
    display, _ = stream(PROSE, chunk_size=8)
    assert PROSE.startswith(display.text) and len(display.text) > len(PROSE) - 80, "all but a marker in progress"
    assert grows_linearly(lambda n: PROSE[:n], MB // 10, MB, chunk_size=8) is None
    display, _ = stream(json.dumps({"type": "message", "text": PROSE}), chunk_size=8)
    assert display.text == PROSE
    message = lambda n: json.dumps({"type": "message", "text": PROSE[:n]})  # noqa: E731
    assert grows_linearly(message, MB // 10, MB, chunk_size=8) is None


CHILD = textwrap.dedent(
    """
    import json, tracemalloc
    from nexusleads_lab.agent.assistant import Assistant
    from nexusleads_lab.agent.events import ShownText

    assistant = Assistant()
    assert assistant.ask("warm up").ok  # imports, connections: not part of the measurement
    streaming_peak, shown, edits = 0, ShownText(), 0

    def on_event(event):
        global streaming_peak, edits
        if event.type == "agent.text":
            shown.apply(event)
            if event.status == "streaming":
                edits += 1
                streaming_peak = max(streaming_peak, tracemalloc.get_traced_memory()[1])

    tracemalloc.start()
    result = assistant.ask("tell me everything", on_event=on_event)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    texts = [e for e in result.events if e.type == "agent.text"]
    print(json.dumps({
        "ok": result.ok, "error": result.error, "peak": peak, "streaming_peak": streaming_peak, "edits": edits,
        "shown": shown.text == result.response.text,
        "kept": [(e.status, len(e.delta or ""), len(e.text or "")) for e in texts],
    }))
    """
)


def test_a_megabyte_answer_through_the_openai_client_costs_a_few_times_its_size_in_memory(db):
    answer = json.dumps({"type": "message", "text": PROSE})
    steps = [text(json.dumps({"type": "message", "text": "ready"})), text(answer, chunk_size=256)]
    with ModelServer(Script(steps)) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_", "DATABASE_URL"))}
        env.update(
            NEXUS_HOME=str(db.embedded.pgdata.parent),
            NEXUS_USER="long-answers",
            NEXUS_ORG="pico-labs",
            OPENAI_BASE_URL=server.base_url,
            OPENAI_API_KEY="sk-streaming-test",
        )
        proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["ok"], out["error"]
    assert out["edits"] >= 3000 and out["shown"], "the answer streamed in thousands of edits and showed whole"
    # the turn keeps one merged edit for the stretch of streaming, then the whole text once
    assert out["kept"] == [["streaming", len(PROSE), 0], ["done", 0, len(PROSE)]]
    size = len(answer)
    print(
        f"\npeak while streaming {out['streaming_peak'] / size:.1f}x, whole turn {out['peak'] / size:.1f}x the answer"
    )
    assert out["streaming_peak"] < 6 * size
    assert out["peak"] < 12 * size  # parsing and storing it included (the store alone turns it over six times)


NESTED_STRINGS = st.text(
    alphabet=st.sampled_from(['"', "\\", "}", "]", "{", "[", ",", ":", "a", "é", "\n", "\U0001f600"])
)


@settings(max_examples=200, deadline=None)
@given(labels=st.lists(NESTED_STRINGS, min_size=1, max_size=4), cuts=st.lists(st.integers(1, 400), max_size=10))
@example(labels=['"}], "title": "evil'], cuts=[])  # a quote and brackets escaped inside a nested string
@example(labels=['"}], "title": "evil'], cuts=[81])  # ... cut right after its backslash
def test_strings_inside_a_dashboards_sections_are_passed_over_wherever_the_chunks_cut_them(labels, cuts):
    sections = [{"type": "bars", "label": label, "source": "r1"} for label in labels]
    # a later duplicate key wins: the title after the sections is the one shown
    head, tail = '{"type": "dashboard", "title": "First", "sections": ', ', "title": "Le\\u0074\\"s see"}'
    answer = head + json.dumps(sections) + tail
    points = sorted({c % len(answer) for c in cuts} - {0})
    display = StreamingDisplay()
    for a, b in zip([0, *points], [*points, len(answer)]):
        display.feed(answer[a:b])
    assert display.text == 'Let"s see', "the title after the sections is the one shown"
