"""A long answer streams in linear time: the display keeps its scan state between chunks."""

from __future__ import annotations

import json
import time

from nexusleads_lab.agent.streaming import StreamingDisplay

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


def test_150_kb_of_unclosed_nested_json_costs_the_display_well_under_a_second():
    answer = '{"type":"dashboard","title":"x","sections":[' + "[" * 150_000  # took 197 s rescanning
    display, cpu = stream(answer, chunk_size=4)
    assert display.text == "x", "the dashboard's title is shown while its sections stream"
    assert cpu < 1.0, f"{cpu:.2f} s of CPU"


def test_a_megabyte_answer_costs_the_display_under_a_second_of_cpu():
    display, cpu = stream(PROSE, chunk_size=8)
    assert PROSE.startswith(display.text) and len(display.text) > len(PROSE) - 80, "all but a marker in progress"
    assert cpu < 1.0, f"{cpu:.2f} s of CPU for the prose"
    display, cpu = stream(json.dumps({"type": "message", "text": PROSE}), chunk_size=8)
    assert display.text == PROSE
    assert cpu < 1.0, f"{cpu:.2f} s of CPU for the message"
