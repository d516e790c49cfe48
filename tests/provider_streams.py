"""The conformance table's fixtures (``tests/fixtures/provider_streams``, format in its README) and
the check that a request is one a strict OpenAI-compatible server accepts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexusleads_lab.testing.modelserver import RawReply

FOLDER = Path(__file__).parent / "fixtures" / "provider_streams"


@dataclass
class Fixture:
    name: str
    header: dict[str, str]
    replies: list[list[str]] = field(default_factory=list)  # SSE events, as on the wire

    @property
    def expect(self) -> dict[str, Any]:
        return json.loads(self.header["expect"])

    def steps(self) -> list[RawReply]:
        return [RawReply(tuple(events)) for events in self.replies]

    def chunks(self, reply: int = 0) -> list[Any]:
        """The JSON of one reply's ``data:`` events (what the openai client hands the reader)."""
        out = []
        for event in self.replies[reply]:
            data = "\n".join(line[5:].lstrip() for line in event.splitlines() if line.startswith("data:"))
            if data and data != "[DONE]":
                out.append(json.loads(data))
        return out


def load(name: str) -> Fixture:
    lines = (FOLDER / f"{name}.sse").read_text(encoding="utf-8").splitlines()
    fixture = Fixture(name, {})
    events: list[str] | None = None
    current: list[str] = []
    for line in [*lines, ""]:
        if events is None and line.startswith("# "):
            key, _, value = line[2:].partition(":")
            fixture.header[key.strip()] = value.strip()
        elif line.startswith("--- reply"):
            events = []
            fixture.replies.append(events)
        elif events is not None:
            if line:
                current.append(line)
            elif current:
                events.append("\n".join(current))
                current = []
    for key in ("provider", "quirk", "source", "expect"):
        assert key in fixture.header, f"{name}.sse has no '# {key}:' line"
    return fixture


def names() -> list[str]:
    return sorted(p.stem for p in FOLDER.glob("*.sse"))


def strict_problems(request: dict[str, Any]) -> list[str]:
    """Why a strict server (OpenAI's own validation) would refuse this chat-completion request."""
    tools = {t["function"]["name"] for t in request.get("tools") or []}
    problems: list[str] = []
    open_calls: set[str] = set()
    seen_ids: set[str] = set()
    for n, message in enumerate(request.get("messages") or []):
        role = message.get("role")
        if role == "assistant":
            if open_calls:
                problems.append(f"message {n}: calls {sorted(open_calls)} got no tool message")
                open_calls = set()
            calls = message.get("tool_calls")
            if calls is not None and not calls:
                problems.append(f"message {n}: an empty tool_calls list")
            if message.get("content") is None and not calls:
                problems.append(f"message {n}: an assistant message with neither content nor tool calls")
            for call in calls or []:
                function = call.get("function") or {}
                if call.get("type") != "function":
                    problems.append(f"message {n}: a call whose type is {call.get('type')!r}")
                if not call.get("id") or call["id"] in seen_ids:
                    problems.append(f"message {n}: a call with a missing or repeated id {call.get('id')!r}")
                if function.get("name") not in tools:
                    problems.append(f"message {n}: a call to {function.get('name')!r}, not in the tool list")
                try:
                    if not isinstance(json.loads(function.get("arguments")), dict):
                        raise ValueError
                except (TypeError, ValueError):
                    problems.append(f"message {n}: arguments that are not a JSON object: {function.get('arguments')!r}")
                seen_ids.add(call.get("id"))
                open_calls.add(call.get("id"))
        elif role == "tool":
            if message.get("tool_call_id") not in open_calls:
                problems.append(f"message {n}: a tool message answering no open call ({message.get('tool_call_id')!r})")
            open_calls.discard(message.get("tool_call_id"))
        elif open_calls:
            problems.append(f"message {n}: a {role} message before calls {sorted(open_calls)} were answered")
            open_calls = set()
    if open_calls:
        problems.append(f"calls {sorted(open_calls)} got no tool message")
    return problems
