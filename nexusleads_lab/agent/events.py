"""The event protocol of the original WebSocket bridge, as typed objects.

A turn emits, in order: ``turn.started`` (before any network), ``session.id``, any number of
``agent.action`` (a tool step starting, completing or failing) and ``agent.text`` (the answer
streaming in, then ``done``), and finally ``turn.completed`` or ``error``; every one carries the
turn's ``turn_id``. Beside turns, ``confirm.resolved`` reports every confirmation outcome. Views
(the CLI, the cell renderer, the chat panel) only subscribe to these (``Assistant.subscribe``).

A streaming ``agent.text`` is an edit of the shown text, so an answer costs its length however
many chunks it comes in: keep the first ``keep`` characters, then add ``delta`` (``keep`` is 0
on the first edit of each model call). The ``done`` event carries the whole ``text``, as every
``agent.text`` of the original WebSocket protocol did. A view that needs the whole text while it
streams folds the edits with :class:`ShownText` and reads ``.text`` when it redraws; a bridge
that speaks the original protocol does the same and sends ``{text, status}`` at its own pace.
"""

from __future__ import annotations

import threading
import time
import types
import typing
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_serializer, model_validator

from .responses.models import ResolvedResponse, response_json


class _Event(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)
    ts: float = Field(default_factory=time.time, description="seconds since the epoch")
    # Which turn the event belongs to (every event of a turn, from turn.started on): a view
    # subscribed to the assistant tells turns apart by it, whoever asked.
    turn_id: str | None = Field(default=None, alias="turnId")

    # (field, wire name) of an event whose fields are all JSON scalars, else None (set per class)
    _flat: ClassVar[tuple[tuple[str, str], ...] | None] = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.model_fields.items()
        serializers = cls.__pydantic_decorators__.field_serializers or cls.__pydantic_decorators__.model_serializers
        flat = not serializers and all(_scalar(field.annotation) for _, field in fields)
        cls._flat = tuple((name, field.alias or name) for name, field in fields) if flat else None

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    def to_dict(self) -> dict[str, Any]:
        """The event as the wire carries it (``model_dump(mode="json", by_alias=True, exclude_none=True)``;
        an event of JSON scalars straight from its fields: every event of every turn goes out so)."""
        if self._flat is not None:
            values = self.__dict__
            return {wire: values[name] for name, wire in self._flat if values[name] is not None}
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


_SCALARS = (str, int, float, bool, type(None))


def _scalar(annotation: Any) -> bool:
    """Whether a field's values are JSON scalars as they are (str, int, float, bool, None, a Literal of them)."""
    if annotation in _SCALARS:
        return True
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return all(isinstance(v, _SCALARS) for v in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return all(_scalar(a) for a in typing.get_args(annotation))
    return False


class SessionId(_Event):
    type: Literal["session.id"] = "session.id"
    session_id: str = Field(alias="sessionId")


class TurnStarted(_Event):
    type: Literal["turn.started"] = "turn.started"
    question: str | None = None
    # who asked: "cell", "panel", "cli", "server" or "code" (a view may skip its own turns' echo)
    origin: str | None = None
    # the proposal whose outcome this turn reports to the model (a confirmation's follow-up):
    # its question is the product's own line, which a view shows on the card, not as a bubble
    reports: str | None = None


#: A step's fields, as every view shows one (the ``agent.action`` names, snake_case).
STEP_FIELDS = ("call_id", "tool", "status", "command", "path", "result_id", "rows", "truncated", "elapsed_ms", "error")


class AgentAction(_Event):
    """A tool step starting, completing or failing: the one step model, from the loop through the
    turn's result and the transcript to every view."""

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

    def step(self) -> dict[str, Any]:
        """The step as a view's JavaScript gets it: exactly ``STEP_FIELDS``."""
        return {name: getattr(self, name) for name in STEP_FIELDS}


class AgentText(_Event):
    """``streaming``: keep the first ``keep`` characters of the shown text, then add ``delta``;
    ``done``: the whole ``text``."""

    type: Literal["agent.text"] = "agent.text"
    text: str | None = None
    keep: int | None = None
    delta: str | None = None
    status: Literal["streaming", "done"]

    @model_validator(mode="after")
    def _one_shape_per_status(self) -> AgentText:
        if self.status == "done" and self.text is None:
            raise ValueError("a done agent.text carries the whole text")
        if self.status == "streaming" and (self.keep is None or self.delta is None or self.text is not None):
            raise ValueError("a streaming agent.text is an edit: keep and delta, no text")
        return self


class ShownText:
    """The text ``agent.text`` events show, folded from their edits: an edit costs its delta,
    reading ``text`` costs the length. Safe to fold on one thread and read on another."""

    _LOOSE = 64  # small pieces joined into one at a time, so a long answer is not a long list

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._head = ""  # what was read last time
        self._pieces: list[str] = []  # added since
        self._loose = 0  # pieces at the end not joined yet
        self._length = 0

    def __len__(self) -> int:
        return self._length

    @property
    def text(self) -> str:
        with self._lock:
            if self._pieces:
                self._head += "".join(self._pieces)
                self._pieces, self._loose = [], 0
            return self._head

    def apply(self, event: AgentText) -> None:
        if event.text is not None:
            self.replace(event.text)
        else:
            self.edit(event.keep or 0, event.delta or "")

    def replace(self, text: str) -> None:
        with self._lock:
            self._head, self._pieces, self._loose, self._length = text, [], 0, len(text)

    def edit(self, keep: int, delta: str) -> None:
        with self._lock:
            if keep < self._length:
                self._cut(keep)
            if delta:
                self._pieces.append(delta)
                self._length += len(delta)
                self._loose += 1
                if self._loose >= self._LOOSE:
                    self._pieces[-self._loose :] = ["".join(self._pieces[-self._loose :])]
                    self._loose = 0

    def _cut(self, keep: int) -> None:
        if keep <= len(self._head):  # into text already read: rare, as edits cut near the end
            self._head, self._pieces, self._loose = self._head[:keep], [], 0
        else:
            excess = self._length - keep
            while excess:
                last = self._pieces.pop()
                if len(last) > excess:
                    self._pieces.append(last[: len(last) - excess])
                    break
                excess -= len(last)
            self._loose = min(self._loose, len(self._pieces))
        self._length = keep


class TurnCompleted(_Event):
    type: Literal["turn.completed"] = "turn.completed"
    text: str
    usage: dict[str, int] = Field(default_factory=dict)
    elapsed_ms: float | None = Field(default=None, alias="elapsedMs")  # since turn.started
    response: ResolvedResponse | None = None  # a dict that comes in is validated here, once
    notes: list[str] = Field(default_factory=list)
    _made_json: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def answered(cls, *, response_json: dict[str, Any] | None = None, **fields: Any) -> TurnCompleted:
        """The event, given ``response_json(response)`` when the turn has made it already (to store
        it): the wire carries that one (as it is: nobody changes it) instead of making it again."""
        event = cls(**fields)
        event._made_json = response_json
        return event

    @field_serializer("response")
    def _response_json(self, response: ResolvedResponse | None) -> dict[str, Any] | None:
        if response is None:
            return None
        return self._made_json if self._made_json is not None else response_json(response)


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    message: str
    cancelled: bool | None = None  # True: the person stopped the turn (from any view)


class ConfirmResolved(_Event):
    """A proposed write was confirmed, cancelled or failed, from whichever view (a cell's card,
    the panel, ``nexus.confirm()``, the CLI seen by a poll): every card showing it follows. Not
    part of a turn (``turn_id`` is None). The original protocol had no such event; its name
    follows the others'."""

    type: Literal["confirm.resolved"] = "confirm.resolved"
    proposal_id: str = Field(alias="id")
    status: Literal["confirmed", "failed", "cancelled"]
    rows_affected: int | None = Field(default=None, alias="rowsAffected")
    error: str | None = None
    conversation_id: str | None = Field(default=None, alias="conversationId")


Event = Annotated[
    SessionId | TurnStarted | AgentAction | AgentText | TurnCompleted | ErrorEvent | ConfirmResolved,
    Field(discriminator="type"),
]
