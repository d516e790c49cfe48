"""``/api/chat/conversations``: the caller's own conversations, as the original FastAPI router had them.

Bounded: the list pages (``limit``, ``before`` = the last id of the page before), a transcript
pages whole turns (``limit`` items, ``before`` = a message position), read from the database page
by page. Titles go out with bidi and other invisible controls shown as ``\\u202E``-style escapes,
and come in with lone surrogates as U+FFFD.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from ..agent.assistant import Assistant
from ..db.errors import QueryError
from ..db.store import ConversationInfo, ConversationStore, NotFound
from ..safetext import visible, without_surrogates
from .auth import Unauthorized
from .errors import NO_SUCH_CONVERSATION, failure_text
from .tenancy import UnknownOrganization

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
        fields = info.as_dict()
        return cls(**{**fields, "title": visible(fields["title"])})


class ConversationWithTranscript(Conversation):
    transcript: list[dict[str, Any]] = Field(
        description="questions, answers (with their steps and resolved responses) and confirmation outcomes, "
        "oldest first: the latest whole turns before position `before`, at most `limit` items (or the one turn "
        "there, if it alone has more)"
    )
    transcript_total: int = Field(description="messages stored in the whole conversation (the last position)")
    transcript_from: int = Field(
        description="messages stored before this page (0: nothing earlier); the next page's `before`"
    )


def _clean_title(title: str | None) -> str | None:
    return None if title is None else without_surrogates(title)


class NewConversation(BaseModel):
    title: str | None = Field(default=None, max_length=500)

    @field_validator("title", mode="before")
    @classmethod
    def _readable(cls, title: str | None) -> str | None:
        return _clean_title(title)


class Rename(BaseModel):
    title: str = Field(min_length=1, max_length=500, pattern=r"\S")

    @field_validator("title", mode="before")
    @classmethod
    def _readable(cls, title: str) -> str:
        return without_surrogates(title)


def assistant_for(request: Request) -> Iterator[Assistant]:
    """An assistant scoped to the verified caller, for this one request."""
    state = request.app.state.nexus
    try:
        identity = state.auth.identify(request)
        state.tenants.check(identity)
    except Unauthorized:
        raise HTTPException(401, "Unauthorized", headers={"WWW-Authenticate": "Bearer"}) from None
    except UnknownOrganization as exc:
        raise HTTPException(403, str(exc)) from None
    except QueryError as exc:
        raise HTTPException(503, failure_text(f"checking organization {identity.org!r}", exc)) from None
    assistant = state.make_assistant(identity)
    try:
        yield assistant
    except NotFound:
        raise HTTPException(404, NO_SUCH_CONVERSATION) from None
    except QueryError as exc:
        raise HTTPException(503, failure_text(f"{request.method} {request.url.path}", exc)) from None
    finally:
        assistant.close()


Caller = Depends(assistant_for)


def _store(assistant: Assistant) -> ConversationStore:
    """The caller's conversation store (a server's assistants always keep one)."""
    if (store := assistant.store) is None:
        raise RuntimeError("A server's assistant keeps its conversations; this one was made with persist=False.")
    return store


@router.get("", response_model=list[Conversation], summary="The caller's conversations, newest first")
def list_conversations(
    limit: int = Query(100, ge=1, le=500, description="at most this many"),
    before: str | None = Query(None, description="the id of the last conversation of the previous page"),
    assistant: Assistant = Caller,
) -> list[Conversation]:
    return [Conversation.of(info) for info in _store(assistant).list(limit, before=before)]


@router.post("", response_model=Conversation, status_code=201, summary="Start a conversation")
def create_conversation(body: NewConversation | None = None, assistant: Assistant = Caller) -> Conversation:
    title = (body.title if body else None) or "New conversation"
    return Conversation.of(assistant.start_conversation(title))


@router.get(
    "/{conversation_id}", response_model=ConversationWithTranscript, summary="One conversation, with its transcript"
)
def read_conversation(
    conversation_id: str,
    limit: int = Query(200, ge=1, le=1000, description="at most this many transcript items, the latest kept"),
    before: int | None = Query(
        None, ge=0, description="only messages up to this position (the previous page's `transcript_from`)"
    ),
    assistant: Assistant = Caller,
) -> ConversationWithTranscript:
    info = _store(assistant).get(conversation_id)
    page = assistant.transcript_page(info.id, limit=limit, before=before)
    return ConversationWithTranscript(
        **Conversation.of(info).model_dump(),
        transcript=[item.to_dict() for item in page.items],
        transcript_total=page.total,
        transcript_from=page.start,
    )


@router.patch("/{conversation_id}", response_model=Conversation, summary="Rename a conversation")
def rename_conversation(conversation_id: str, body: Rename, assistant: Assistant = Caller) -> Conversation:
    assistant.rename(conversation_id, body.title)
    return Conversation.of(_store(assistant).get(conversation_id))


@router.delete("/{conversation_id}", status_code=204, summary="Delete a conversation and its messages")
def delete_conversation(conversation_id: str, assistant: Assistant = Caller) -> Response:
    assistant.delete(conversation_id)
    return Response(status_code=204)
