"""``/api/chat/conversations``: the caller's own conversations, as the original FastAPI router had them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from ..agent.assistant import Assistant
from ..db.errors import QueryError
from ..db.store import ConversationInfo, NotFound
from .auth import Unauthorized

router = APIRouter(prefix="/api/chat/conversations", tags=["conversations"])


class Conversation(BaseModel):
    id: str
    title: str
    created_at: str
    updated_at: str
    messages: int = Field(description="questions, answers and notes stored in it")
    model: str | None = None

    @classmethod
    def of(cls, info: ConversationInfo) -> Conversation:
        return cls(**info.as_dict())


class ConversationWithTranscript(Conversation):
    transcript: list[dict[str, Any]] = Field(
        description="questions, answers (with their steps and resolved responses) and confirmation outcomes, oldest first"
    )


class NewConversation(BaseModel):
    title: str | None = Field(default=None, max_length=500)


class Rename(BaseModel):
    title: str = Field(min_length=1, max_length=500, pattern=r"\S")


def assistant_for(request: Request) -> Iterator[Assistant]:
    """An assistant scoped to the verified caller, for this one request."""
    state = request.app.state.nexus
    try:
        identity = state.auth.identify(request.headers, request.cookies)
    except Unauthorized:
        raise HTTPException(401, "Unauthorized", headers={"WWW-Authenticate": "Bearer"}) from None
    assistant = state.make_assistant(identity)
    try:
        yield assistant
    except NotFound:
        raise HTTPException(404, "No such conversation.") from None
    except QueryError as exc:
        raise HTTPException(503, exc.paragraph()) from None
    finally:
        assistant.close()


Caller = Depends(assistant_for)


@router.get("", response_model=list[Conversation], summary="The caller's conversations, newest first")
def list_conversations(assistant: Assistant = Caller) -> list[Conversation]:
    return [Conversation.of(info) for info in assistant.conversations()]


@router.post("", response_model=Conversation, status_code=201, summary="Start a conversation")
def create_conversation(body: NewConversation | None = None, assistant: Assistant = Caller) -> Conversation:
    title = (body.title if body else None) or "New conversation"
    return Conversation.of(assistant.store.get(assistant.store.create(title=title, model=assistant.model)))


@router.get(
    "/{conversation_id}", response_model=ConversationWithTranscript, summary="One conversation, with its transcript"
)
def read_conversation(conversation_id: str, assistant: Assistant = Caller) -> ConversationWithTranscript:
    info = assistant.store.get(conversation_id)
    items = [item.to_dict() for item in assistant.transcript(info.id)]
    return ConversationWithTranscript(**info.as_dict(), transcript=items)


@router.patch("/{conversation_id}", response_model=Conversation, summary="Rename a conversation")
def rename_conversation(conversation_id: str, body: Rename, assistant: Assistant = Caller) -> Conversation:
    assistant.rename(conversation_id, body.title)
    return Conversation.of(assistant.store.get(conversation_id))


@router.delete("/{conversation_id}", status_code=204, summary="Delete a conversation and its messages")
def delete_conversation(conversation_id: str, assistant: Assistant = Caller) -> Response:
    assistant.delete(conversation_id)
    return Response(status_code=204)
