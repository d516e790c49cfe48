"""A long answer streams in linear time and memory: the display keeps its scan state between
chunks, events carry edits, and the turn keeps one copy of the text, not one per chunk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

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
        env.update(NEXUS_HOME=str(db.embedded.pgdata.parent), NEXUS_USER="long-answers", NEXUS_ORG="pico-labs",
                   OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-streaming-test")  # fmt: skip
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
