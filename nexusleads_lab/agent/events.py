"""The event protocol of the original WebSocket bridge, as typed objects.

A turn emits, in order: ``turn.started`` (before any network), ``session.id``, any number of
``agent.action`` (a tool step starting, completing or failing) and ``agent.text`` (the answer
streaming in, then ``done``), and finally ``turn.completed`` or ``error``. Views (the CLI, the
cell renderer, the chat panel) only subscribe to these.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class _Event(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)
    ts: float = Field(default_factory=time.time, description="seconds since the epoch")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class SessionId(_Event):
    type: Literal["session.id"] = "session.id"
    session_id: str = Field(alias="sessionId")


class TurnStarted(_Event):
    type: Literal["turn.started"] = "turn.started"
    question: str | None = None


class AgentAction(_Event):
    type: Literal["agent.action"] = "agent.action"
    action: Literal["command", "tool_call"]
    tool: str
    status: Literal["started", "completed", "failed"]
    call_id: str = Field(alias="callId")
    command: str | None = None
    path: str | None = None
    result_id: str | None = Field(default=None, alias="resultId")
    rows: int | None = None
    truncated: bool | None = None
    elapsed_ms: float | None = Field(default=None, alias="elapsedMs")
    error: str | None = None


class AgentText(_Event):
    type: Literal["agent.text"] = "agent.text"
    text: str
    delta: str | None = None
    status: Literal["streaming", "done"]


class TurnCompleted(_Event):
    type: Literal["turn.completed"] = "turn.completed"
    text: str
    usage: dict[str, int] = Field(default_factory=dict)
    response: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    message: str


Event = Annotated[
    Union[SessionId, TurnStarted, AgentAction, AgentText, TurnCompleted, ErrorEvent],
    Field(discriminator="type"),
]

