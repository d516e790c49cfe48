#!/usr/bin/env python
"""Agent-loop benchmarks with a zero-latency scripted model and the real database.

    .venv/bin/python benchmarks/bench_agent.py [--out results/agent.md] [--quick]

The model is the loopback :class:`ModelServer` (real HTTP/SSE, real ``openai`` client), so
everything measured is the loop's own cost: the SDK, event emission, tool dispatch, history,
the store (``persist=True``) and the response parsing. Sections:

1. ``turn.started`` latency after ``ask`` is called, and a whole 1-step turn.
2. Per-step overhead of a 3-step turn (two ``psql`` steps + the answer), net of the model
   server's own time and of the engine time the steps report (``elapsed_ms``).
3. Text-delta latency: the server stamps each content chunk just before writing it; the
   event callback stamps the matching ``agent.text`` delta (same process, same clock).
4. Model-visible bytes per ``psql`` call for 10 / 10,000 / 1,000,000 rows, against the
   original design's whole ``json_agg`` result.

Database: a small embedded bench database in ``benchmarks/.data/agent`` (3,000 contributors),
created on first use; the lead-row variant of section 4 uses the 1M-row engine bench database
when ``bench_engine.py`` has created it.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DATA_DIR,
    atomic_write,
    fmt_bytes,
    fmt_ratio,
    header,
    log,
    md_table,
    med,
    p,
    psql_binary,
    quiet_warnings,
)

AGENT_PGDATA = DATA_DIR / "agent" / "pgdata"
ENGINE_PGDATA = DATA_DIR / "engine" / "pgdata"
AGENT_CONTRIBUTORS = 3000

SQL_STEP1 = "SELECT tier, count(*) AS n FROM lead_scores GROUP BY tier ORDER BY tier"
SQL_STEP2 = "SELECT id, contributor_id, score, tier, status FROM lead_scores ORDER BY score DESC, id LIMIT 20"
FINAL = json.dumps({"type": "message", "text": "Most leads are cold; the top 20 are listed in r2."})
LEAD_COLUMNS = "id, project_id, contributor_id, score, tier, status, scored_at, status_changed_at"

MODS = ("nexusleads-lab", "openai", "httpx", "pydantic", "pandas", "adbc-driver-postgresql", "psycopg")


# =========================================================================== scripted model


class TimedResponder:
    """Plays queued steps (one per request) and records how long each took to serve."""

    def __init__(self) -> None:
        self._steps: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self.serve_times: list[float] = []

    def push(self, *steps) -> None:
        with self._lock:
            self._steps.extend(steps)

    def step_for(self, request, number):
        from nexusleads_lab.testing.modelserver import http_error

        with self._lock:
            step = self._steps.popleft() if self._steps else None
        if step is None:
            return http_error(500, "bench: no step queued", should_retry=False)
        return _Timed(step, self.serve_times)

    def take_serve_time(self) -> float:
        with self._lock:
            total = sum(self.serve_times)
            self.serve_times.clear()
        return total


class _Timed:
    def __init__(self, inner, sink: list[float]) -> None:
        self.inner, self.sink = inner, sink

    def serve(self, wire) -> None:
        t0 = time.perf_counter()
        try:
            self.inner.serve(wire)
        finally:
            self.sink.append(time.perf_counter() - t0)


class StampedText:
    """Streams ``prefix`` + one SSE chunk per piece + ``suffix``, stamping each piece's write."""

    def __init__(self, pieces: list[str], *, prefix: str = "", suffix: str = "", pace: float = 0.0) -> None:
        self.pieces, self.prefix, self.suffix, self.pace = pieces, prefix, suffix, pace
        self.stamps: dict[int, float] = {}

    @staticmethod
    def _chunk(wire, delta: dict, finish: str | None = None) -> dict:
        chunk = {
            "id": wire.completion_id,
            "object": "chat.completion.chunk",
            "created": wire.created,
            "model": wire.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if wire.wants_usage:
            chunk["usage"] = None
        return chunk

    def serve(self, wire) -> None:
        wire.start_stream()
        wire.send_event(self._chunk(wire, {"role": "assistant", "content": ""}))
        if self.prefix:
            wire.send_event(self._chunk(wire, {"content": self.prefix}))
        for i, piece in enumerate(self.pieces):
            if self.pace:
                time.sleep(self.pace)
            event = self._chunk(wire, {"content": piece})
            self.stamps[i] = time.perf_counter()  # just before the write reaches the socket
            wire.send_event(event)
        if self.suffix:
            wire.send_event(self._chunk(wire, {"content": self.suffix}))
        wire.send_event(self._chunk(wire, {}, "stop"))
        if wire.wants_usage:
            usage = {"prompt_tokens": 1, "completion_tokens": len(self.pieces), "total_tokens": 1 + len(self.pieces)}
            wire.send_event({**self._chunk(wire, {}), "choices": [], "usage": usage})
        wire.end_stream()


# =========================================================================== harness


class Harness:
    def __init__(self, db) -> None:

        from nexusleads_lab.testing.modelserver import ModelServer

        self.db = db
        self.responder = TimedResponder()
        self.server = ModelServer(self.responder)
        from nexusleads_lab.agent.provider import ModelSettings, make_client

        # The client the product builds (its transport keeps the connection across a turn's steps).
        self.client = make_client(
            ModelSettings(
                model="bench", api_key="bench", base_url=self.server.base_url, replay=None, record=None, max_retries=0
            )
        )
        self.assistants: list = []
        # Count TCP connections the client opens (the handler registers each new one).
        self.connections = 0
        track = self.server._track

        def counting_track(connection, *, add: bool) -> None:
            if add:
                self.connections += 1
            track(connection, add=add)

        self.server._track = counting_track

    def take_connections(self) -> int:
        n, self.connections = self.connections, 0
        return n

    def assistant(self, *, persist: bool, database=None):
        from nexusleads_lab.agent.assistant import Assistant

        a = Assistant(
            database=database or self.db, client=self.client, user="bench", org="acme-analytics", persist=persist
        )
        self.assistants.append(a)
        return a

    def close(self) -> None:
        for a in self.assistants:
            a.close()
        self.server.close()


def bench_turn_started(h: Harness, persist: bool, n: int) -> dict:
    from nexusleads_lab.testing.modelserver import text

    a = h.assistant(persist=persist)
    started, totals = [], []
    for i in range(n + 10):
        a.new_thread()
        h.responder.push(text(FINAL))
        mark: dict[str, float] = {}

        def cb(ev, mark=mark):
            if ev.type == "turn.started" and "t" not in mark:
                mark["t"] = time.perf_counter()

        t0 = time.perf_counter()
        res = a.ask("How many leads do we have?", on_event=cb)
        t1 = time.perf_counter()
        if not res.ok:
            raise RuntimeError(f"turn failed: {res.error}")
        h.responder.take_serve_time()
        if i >= 10:  # warm-up
            started.append(mark["t"] - t0)
            totals.append(t1 - t0)
    return {"started": started, "totals": totals}


def bench_steps(h: Harness, persist: bool, n: int) -> dict:
    from nexusleads_lab.testing.modelserver import text, tool_calls

    a = h.assistant(persist=persist)
    rows = []
    for i in range(n + 5):
        a.new_thread()
        h.responder.push(
            tool_calls([("psql", {"sql": SQL_STEP1})]),
            tool_calls([("psql", {"sql": SQL_STEP2})]),
            text(FINAL),
        )
        engine_ms: list[float] = []

        def cb(ev, engine_ms=engine_ms):
            if ev.type == "agent.action" and ev.status == "completed" and ev.elapsed_ms is not None:
                engine_ms.append(ev.elapsed_ms)

        h.take_connections()
        t0 = time.perf_counter()
        res = a.ask("Break leads down by tier and list the top 20.", on_event=cb)
        total = time.perf_counter() - t0
        if not res.ok or len(engine_ms) != 2:
            raise RuntimeError(f"3-step turn failed: {res.error} ({engine_ms})")
        serve = h.responder.take_serve_time()
        conns = h.take_connections()
        if i >= 5:
            engine = sum(engine_ms) / 1000
            rows.append(
                {
                    "total": total,
                    "serve": serve,
                    "engine": engine,
                    "overhead_step": (total - serve - engine) / 3,
                    "connections": conns,
                }
            )
    return {"rows": rows}


def bench_sdk_floor(h: Harness, n: int) -> dict:
    """The same three requests through the bare openai client (no Assistant), as a floor;
    and the transport around it: connections per request, and what connection reuse would do.

    Variants, interleaved per iteration, each with its own client (own connection pool):
    ``raw``: exactly as the Assistant sends and reads (``model_call.open_stream``, plain JSON
    chunks; the floor); ``sdk``: ``chat.completions.create``, typed chunks; ``drained``: the typed
    parsing, but the HTTP body is read to its end after ``[DONE]`` so httpx can keep the
    connection; ``drained_nodelay``: as ``drained`` with TCP_NODELAY on the model server's
    socket (set on the handler class in this process only, restored afterwards).
    """
    import openai

    from nexusleads_lab.agent.model_call import open_stream
    from nexusleads_lab.agent.tools import TOOL_SPECS
    from nexusleads_lab.testing import modelserver
    from nexusleads_lab.testing.modelserver import text, tool_calls

    a = h.assistant(persist=False)
    a.thread.messages = [{"role": "user", "content": "Break leads down by tier and list the top 20."}]
    messages = a._request_messages(a._system_prompt())
    handler = modelserver._Handler
    nagle_default = handler.disable_nagle_algorithm
    variants = ("raw", "sdk", "drained", "drained_nodelay")
    clients = {v: openai.OpenAI(base_url=h.server.base_url, api_key="bench", max_retries=0) for v in variants}
    per_step: dict[str, list[float]] = {v: [] for v in variants}
    conns: dict[str, int] = dict.fromkeys(variants, 0)
    try:
        for i in range(n + 5):
            for v in variants:
                h.responder.push(
                    tool_calls([("psql", {"sql": SQL_STEP1})]),
                    tool_calls([("psql", {"sql": SQL_STEP2})]),
                    text(FINAL),
                )
                handler.disable_nagle_algorithm = True if v == "drained_nodelay" else nagle_default
                h.take_connections()
                t0 = time.perf_counter()
                for _ in range(3):
                    if v == "raw":  # as the Assistant sends it: the client's transport, plain JSON chunks
                        stream = open_stream(clients[v], "scripted-model", messages)
                    else:
                        stream = clients[v].chat.completions.create(
                            model="scripted-model",
                            messages=messages,
                            tools=TOOL_SPECS,
                            stream=True,
                            stream_options={"include_usage": True},
                        )
                    for _chunk in stream if v in ("raw", "sdk") else _iter_drained(stream):
                        pass
                total = time.perf_counter() - t0
                serve = h.responder.take_serve_time()
                if i >= 5:
                    per_step[v].append((total - serve) / 3)
                    conns[v] += h.take_connections()
    finally:
        handler.disable_nagle_algorithm = nagle_default
        for c in clients.values():
            c.close()
    return {
        "per_step": per_step["raw"],
        "variants": per_step,
        "connections_per_request": {v: conns[v] / (3 * n) for v in variants},
        "transform": _time_request_transform(messages, n * 3),
    }


def _time_request_transform(messages: list, n: int) -> float:
    """How long the SDK's own request-params transformation takes per request (SDK internals,
    benchmark-only; NaN if they moved)."""
    try:
        from openai._utils import maybe_transform
        from openai.types.chat import completion_create_params

        from nexusleads_lab.agent.model_call import request_body

        body = request_body("scripted-model", messages)
        kind = completion_create_params.CompletionCreateParamsStreaming
        for _ in range(10):
            maybe_transform(body, kind)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            maybe_transform(body, kind)
            times.append(time.perf_counter() - t0)
        return med(times)
    except Exception:
        return float("nan")


def _iter_drained(stream):
    """Parse chunks as the sync SDK stream does, but read the body to its end after ``[DONE]``
    before closing (as the SDK's async stream does on HTTP/1.1), so httpx can reuse the
    connection. Uses SDK internals: benchmark-only."""
    process = stream._client._process_response_data
    events = stream._iter_events()
    try:
        for sse in events:
            if sse.data.startswith("[DONE]"):
                for _rest in events:  # the chunked terminator
                    pass
                break
            yield process(data=sse.json(), cast_to=stream._cast_to, response=stream.response)
    finally:
        stream.response.close()


def bench_store(db, n: int) -> dict:
    """What ``persist=True`` pays per stored message: one ``ConversationStore.append`` (one
    statement, committed without waiting for its WAL flush), and the same on a session that waits
    for the flush (``synchronous_commit=on``: the alternative, not what the product does)."""
    from nexusleads_lab.db.store import ConversationStore

    stores = {
        "default": ConversationStore(db.admin_url, "bench-org", "bench-store"),
        "flush": ConversationStore(db.admin_url, "bench-org", "bench-store"),
    }
    stores["flush"].query("SET synchronous_commit = on")
    ids = {k: st.create("bench: store write cost") for k, st in stores.items()}
    content = {"message": {"role": "assistant", "content": FINAL}, "meta": {"response": None, "notes": []}}
    times: dict[str, list[float]] = {k: [] for k in stores}
    try:
        for i in range(n + 10):
            for k, st in stores.items():
                t0 = time.perf_counter()
                st.append(ids[k], "assistant", content)
                if i >= 10:
                    times[k].append(time.perf_counter() - t0)
    finally:
        for k, st in stores.items():
            try:
                st.delete(ids[k])
            finally:
                st.close()
    return times


_TOKEN = re.compile(r"w(\d{4})")


def bench_deltas(h: Harness, *, tokens: int, asks: int, pace: float, json_message: bool) -> dict:
    a = h.assistant(persist=False)
    lat: list[float] = []
    by_pos: list[tuple[int, float]] = []
    unmatched = 0
    for _ in range(asks + 1):
        a.new_thread()
        pieces = [f" w{i:04d}" for i in range(tokens)]
        step = StampedText(
            pieces,
            prefix='{"type":"message","text":"Answer:' if json_message else "Answer:",
            suffix='"}' if json_message else "",
            pace=pace,
        )
        h.responder.push(step)
        got: list[tuple[float, str]] = []

        def cb(ev, got=got):
            if ev.type == "agent.text" and ev.status == "streaming" and ev.delta:
                got.append((time.perf_counter(), ev.delta))

        res = a.ask("Say something long.", on_event=cb)
        if not res.ok:
            raise RuntimeError(f"delta turn failed: {res.error}")
        h.responder.take_serve_time()
        if _ == 0:
            continue  # warm-up ask
        seen = set()
        for t_recv, delta in got:
            for m in _TOKEN.finditer(delta):
                idx = int(m.group(1))
                if idx in step.stamps and idx not in seen:
                    seen.add(idx)
                    lat.append(t_recv - step.stamps[idx])
                    by_pos.append((idx, t_recv - step.stamps[idx]))
        unmatched += tokens - len(seen)
    first = [x for i, x in by_pos if i < 100]
    last = [x for i, x in by_pos if i >= tokens - 100]
    return {
        "lat": lat,
        "first100": first,
        "last100": last,
        "unmatched": unmatched,
        "tokens": tokens,
        "asks": asks,
        "pace": pace,
        "json": json_message,
    }


def bench_bytes(h: Harness, database, label: str, queries: list[tuple[int, str]]) -> list[dict]:
    # reuse the engine-bench import so both benches measure the original design identically
    from bench_engine import psql_json_bytes

    from nexusleads_lab.testing.modelserver import text, tool_calls

    psql = psql_binary()
    a = h.assistant(persist=False, database=database)
    out = []
    for n, sql in queries:
        a.new_thread()
        h.responder.push(tool_calls([("psql", {"sql": sql})]), text(FINAL))
        before = len(h.server.requests)
        res = a.ask(f"Fetch {n} rows.")
        if not res.ok:
            raise RuntimeError(f"bytes turn failed: {res.error}")
        h.responder.take_serve_time()
        request = h.server.requests[before + 1]  # the request after the tool step
        tool_msgs = [m for m in request["messages"] if m.get("role") == "tool"]
        content = tool_msgs[-1]["content"]
        payload = json.loads(content)
        df = res.df
        t0 = time.perf_counter()
        original = len(psql_json_bytes(psql, database.agent_url, sql))
        out.append(
            {
                "label": label,
                "rows": n,
                "sql": sql,
                "ours": len(content.encode()),
                "kept": 0 if df is None else len(df),
                "truncated": bool(payload.get("truncated")),
                "preview_rows": payload.get("preview_rows"),
                "original": original,
                "original_s": time.perf_counter() - t0,
            }
        )
        log(f"bytes: {label} {n:,} rows -> ours {len(content.encode()):,} B, json_agg {original:,} B")
    return out


# =========================================================================== report


def _ms(x: float, d: int = 3) -> str:
    return "n/a" if x != x else f"{x * 1000:.{d}f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(results: dict) -> str:
    from nexusleads_lab.agent.tools import MAX_TOOL_BYTES

    parts = [header("Agent-loop benchmarks", MODS), ""]
    parts.append(
        f"Scripted zero-latency model (`ModelServer` on 127.0.0.1, real `openai` client, SSE), real embedded "
        f"database (`benchmarks/.data/agent`, {AGENT_CONTRIBUTORS:,} contributors)."
    )
    parts.append("")
    ts = results.get("turn_started")
    if ts:
        rows = []
        for mode, r in ts.items():
            rows.append(
                [
                    f"persist={mode}",
                    _ms(med(r["started"])),
                    _ms(p(r["started"], 90)),
                    _ms(max(r["started"])),
                    len(r["started"]),
                    _ms(med(r["totals"]), 2),
                ]
            )
        parts += [
            "#### `turn.started` latency",
            "",
            "From the call to `ask()` to the callback receiving `turn.started`; last column: the whole 1-step turn "
            "(one streamed answer, no tools).",
            "",
            md_table(["mode", "median ms", "p90 ms", "max ms", "asks", "1-step turn median ms"], rows),
            "",
        ]
    st = results.get("steps")
    if st:
        floor = med(results["sdk_floor"]["per_step"]) if results.get("sdk_floor") else float("nan")
        rows = []
        for mode, r in st.items():
            rs = r["rows"]
            over = med([x["overhead_step"] for x in rs])
            rows.append(
                [
                    f"persist={mode}",
                    _ms(med([x["total"] for x in rs]), 2),
                    _ms(med([x["serve"] for x in rs]), 2),
                    _ms(med([x["engine"] for x in rs]), 2),
                    _ms(over, 2),
                    _ms(p([x["overhead_step"] for x in rs], 90), 2),
                    _ms(floor, 2),
                    _ms(over - floor, 2),
                    f"{med([x['connections'] for x in rs]):.0f}",
                    len(rs),
                ]
            )
        parts += [
            "#### Loop overhead per step (3-step turn: two `psql` steps + the answer)",
            "",
            "overhead/step = (turn time − model-server serve time − engine time reported in `agent.action` "
            "`elapsed_ms`) ÷ 3. SDK floor = the same three requests (same system prompt and tools) through the "
            "bare `openai` client with no Assistant, net of serve time, per request.",
            "",
            md_table(
                [
                    "mode",
                    "turn ms",
                    "model server ms",
                    "engine ms",
                    "overhead/step ms",
                    "p90 ms",
                    "SDK floor/step ms",
                    "beyond SDK/step ms",
                    "new TCP conns/turn",
                    "turns",
                ],
                rows,
            ),
            "",
        ]
        o = med([x["overhead_step"] for x in st["False"]["rows"]]) if "False" in st else float("nan")
        parts.append(
            f"Target: per-step overhead < 5 ms (persist=False) -> **{o * 1000:.2f} ms** ({_verdict(o < 0.005)})."
        )
        if "True" in st:
            ot = med([x["overhead_step"] for x in st["True"]["rows"]])
            parts[-1] += f" With persist=True (stores each message in PostgreSQL): {ot * 1000:.2f} ms."
        parts.append("")
        sf = results.get("sdk_floor")
        if sf and "variants" in sf:
            v, c = sf["variants"], sf["connections_per_request"]
            parts += [
                "Model transport (the same three requests through the bare `openai` client, per request, net of "
                "serve time; variants interleaved, each with its own connection pool):",
                "",
                md_table(
                    ["variant", "median ms/request", "p90 ms", "new TCP connections/request"],
                    [
                        *(
                            [
                                [
                                    "as the Assistant streams (`open_stream`, plain JSON chunks)",
                                    _ms(med(v["raw"]), 2),
                                    _ms(p(v["raw"], 90), 2),
                                    f"{c['raw']:.2f}",
                                ]
                            ]
                            if "raw" in v
                            else []
                        ),
                        [
                            "typed (`chat.completions.create`: params transformed, a pydantic object per chunk)",
                            _ms(med(v["sdk"]), 2),
                            _ms(p(v["sdk"], 90), 2),
                            f"{c['sdk']:.2f}",
                        ],
                        [
                            "body drained after `[DONE]` (keep-alive reused), ModelServer as is",
                            _ms(med(v["drained"]), 2),
                            _ms(p(v["drained"], 90), 2),
                            f"{c['drained']:.2f}",
                        ],
                        [
                            "drained + TCP_NODELAY on the ModelServer socket",
                            _ms(med(v["drained_nodelay"]), 2),
                            _ms(p(v["drained_nodelay"], 90), 2),
                            f"{c['drained_nodelay']:.2f}",
                        ],
                    ],
                ),
                "",
                f"Of the SDK's per-request cost, transforming the request params (`maybe_transform` over messages and "
                f"tools, before anything is sent) takes {_ms(sf.get('transform', float('nan')), 2)} ms.",
                "",
            ]
        sw = results.get("store")
        if sw:
            d, o = sw["default"], sw["flush"]
            parts += [
                "Store writes behind `persist=True` (one `ConversationStore.append` per message; a 1-step turn writes "
                "3 rows incl. the conversation, the 3-step turn 7), interleaved:",
                "",
                md_table(
                    ["append", "median ms", "p90 ms", "writes"],
                    [
                        [
                            "as the product does it (one statement, synchronous_commit off)",
                            _ms(med(d), 2),
                            _ms(p(d, 90), 2),
                            len(d),
                        ],
                        [
                            "same session with synchronous_commit=on (alternative)",
                            _ms(med(o), 2),
                            _ms(p(o, 90), 2),
                            len(o),
                        ],
                    ],
                ),
                "",
            ]
    dl = results.get("deltas")
    if dl:
        rows = []
        for name, r in dl.items():
            rows.append(
                [
                    name,
                    len(r["lat"]),
                    _ms(med(r["lat"])),
                    _ms(p(r["lat"], 90)),
                    _ms(p(r["lat"], 99)),
                    _ms(max(r["lat"])),
                    _ms(med(r["first100"])),
                    _ms(med(r["last100"])),
                    r["unmatched"],
                ]
            )
        parts += [
            "#### Text-delta latency (server write -> `agent.text` delta in the callback)",
            "",
            "Each answer chunk carries a numbered token; the server stamps `perf_counter()` just before writing the "
            "SSE chunk, the callback stamps on receipt. Paced = the server sleeps between chunks (each delta measured "
            "alone); burst = chunks back to back (includes queueing behind earlier chunks).",
            "",
            md_table(
                [
                    "variant",
                    "deltas",
                    "median ms",
                    "p90 ms",
                    "p99 ms",
                    "max ms",
                    "first 100 median ms",
                    "last 100 median ms",
                    "unmatched",
                ],
                rows,
            ),
            "",
        ]
        key = next(iter(dl))
        m = med(dl[key]["lat"])
        parts.append(f"Target: < 2 ms ({key}) -> **{m * 1000:.2f} ms** ({_verdict(m < 0.002)}).")
        parts.append("")
    by = results.get("bytes")
    if by:
        rows = []
        for r in by:
            rows.append(
                [
                    r["label"],
                    f"{r['rows']:,}",
                    f"{r['ours']:,} B",
                    f"{r['kept']:,}" + (" (row cap)" if r["truncated"] else ""),
                    r["preview_rows"],
                    fmt_bytes(r["original"]),
                    fmt_ratio(r["original"] / r["ours"]),
                ]
            )
        worst = max(r["ours"] for r in by)
        parts += [
            "#### Model-visible bytes per `psql` call",
            "",
            "Ours = the tool message content the model receives in the next request (captured at the model server). "
            'Original = the whole `psql -t -A -c "SELECT json_agg(t) FROM (<query>) t"` output the original design '
            "sent back. Queries: `SELECT g, md5(g::text), now() FROM generate_series(1, N) g` and real lead rows "
            f"(`SELECT {LEAD_COLUMNS} FROM lead_scores ORDER BY id LIMIT N`, 1M-row engine bench database).",
            "",
            md_table(
                [
                    "query",
                    "rows asked",
                    "ours (to the model)",
                    "rows kept in the kernel",
                    "preview rows",
                    "original json_agg",
                    "original ÷ ours",
                ],
                rows,
            ),
            "",
            f"Target: ours < {MAX_TOOL_BYTES // 1024} KB in every case -> max **{worst:,} B** "
            f"({_verdict(worst < MAX_TOOL_BYTES)}).",
            "",
        ]
    return "\n".join(parts).rstrip() + "\n"


# =========================================================================== main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the Markdown report here")
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke test, not a measurement)")
    ap.add_argument("--only", default="started,steps,deltas,bytes", help="comma list of sections")
    args = ap.parse_args(argv)
    quiet_warnings()
    only = set(args.only.split(","))
    q = args.quick

    from nexusleads_lab.config import Settings
    from nexusleads_lab.db import open_database

    log("agent bench database...")
    db = open_database(Settings(), pgdata=AGENT_PGDATA, contributors=AGENT_CONTRIBUTORS)
    engine_db = None
    h = Harness(db)
    results: dict = {}
    try:
        if "started" in only:
            results["turn_started"] = {}
            for persist, n in ((False, 40 if q else 300), (True, 20 if q else 100)):
                log(f"turn.started: persist={persist}, {n} asks...")
                results["turn_started"][str(persist)] = bench_turn_started(h, persist, n)
        if "steps" in only:
            results["steps"] = {}
            for persist, n in ((False, 10 if q else 60), (True, 10 if q else 40)):
                log(f"3-step turns: persist={persist}, {n} turns...")
                results["steps"][str(persist)] = bench_steps(h, persist, n)
            log("SDK floor...")
            results["sdk_floor"] = bench_sdk_floor(h, 10 if q else 60)
            log("store writes...")
            results["store"] = bench_store(db, 20 if q else 150)
        if "deltas" in only:
            results["deltas"] = {}
            variants = [
                (
                    "message JSON, 60 chunks, paced 2 ms",
                    dict(tokens=60, asks=3 if q else 10, pace=0.002, json_message=True),
                ),
                ("prose, 60 chunks, paced 2 ms", dict(tokens=60, asks=3 if q else 10, pace=0.002, json_message=False)),
                (
                    "message JSON, 1,500 chunks (~10 KB), paced 1 ms",
                    dict(tokens=1500, asks=1 if q else 2, pace=0.001, json_message=True),
                ),
                ("message JSON, 300 chunks, burst", dict(tokens=300, asks=2 if q else 5, pace=0.0, json_message=True)),
            ]
            for name, kw in variants:
                log(f"deltas: {name}...")
                results["deltas"][name] = bench_deltas(h, **kw)
        if "bytes" in only:
            gs = [(n, f"SELECT g, md5(g::text), now() FROM generate_series(1, {n}) g") for n in (10, 10_000, 1_000_000)]
            results["bytes"] = bench_bytes(h, db, "generate_series + md5 + now()", gs)
            if (ENGINE_PGDATA / "PG_VERSION").exists():
                engine_db = open_database(Settings(), pgdata=ENGINE_PGDATA, seed=False)
                leads = [
                    (n, f"SELECT {LEAD_COLUMNS} FROM lead_scores ORDER BY id LIMIT {n}")
                    for n in (10, 10_000, 1_000_000)
                ]
                results["bytes"] += bench_bytes(h, engine_db, "lead_scores rows", leads)
            else:
                log("bytes: engine bench database absent; lead-row variant skipped (run bench_engine.py first)")
    finally:
        h.close()
        db.close()
        if engine_db is not None:
            engine_db.close()
    text_md = render(results)
    print(text_md)
    if args.out:
        atomic_write(args.out, text_md)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
