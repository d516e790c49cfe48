"""The two tools: ``psql`` (the read path of ``nexus-lab sql``) and ``propose_write`` (a proposal
recorded as the notebook's confirmation card records it). No tool confirms: a write runs only
when a person confirms it outside the agent (``nexus-lab confirm <id>``, the notebook card, the
chat panel, the web page)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from mcp_types import CallToolResult, TextContent, ToolAnnotations

from ..agent.confirm import Confirmations, Proposal
from ..db.engine import Engine
from ..db.errors import QueryError
from ..safetext import visible
from ..words import noun
from .results import MAX_RESULT_BYTES, preview_text, read_result

PSQL_DESCRIPTION = (
    "Run ONE read-only PostgreSQL query (SELECT/WITH/VALUES/TABLE) on the PLG lead database, scoped to "
    "your organization. Returns rows as JSON (bounded; aggregate in SQL). Writes are refused: use propose_write."
)
PROPOSE_DESCRIPTION = (
    "Propose ONE INSERT, UPDATE or DELETE (or several, separated by ';'). Nothing runs: it is parsed, the rows it "
    "would change are counted, and a person runs it with `nexus-lab confirm <id>`. No tool can confirm."
)
PSQL_ANNOTATIONS = ToolAnnotations(
    title="Read the lead database",
    read_only_hint=True,
    destructive_hint=False,
    idempotent_hint=True,
    open_world_hint=False,
)
PROPOSE_ANNOTATIONS = ToolAnnotations(
    title="Propose a write for a person to confirm",
    read_only_hint=False,
    destructive_hint=True,
    idempotent_hint=False,
    open_world_hint=False,
)

SHOW_ANNOTATIONS = ToolAnnotations(
    title="Show a dashboard",
    read_only_hint=True,
    destructive_hint=False,
    idempotent_hint=True,
    open_world_hint=False,
)


@dataclass
class Scope:
    """One caller's view of the database: its organization's engine and its proposals."""

    user: str
    org: str | None
    engine: Engine
    confirmations: Confirmations  # its store borrows from the database's pool: safe from any tool thread


def psql(scope: Scope, sql: str) -> CallToolResult:
    """Exactly ``nexus-lab sql``'s read: the same gate, role, scope, caps and timeout."""
    try:
        result = scope.engine.read(sql)
    except QueryError as exc:
        return _error(exc.paragraph())
    payload = read_result(result)
    return CallToolResult(content=[TextContent(type="text", text=preview_text(payload))], structured_content=payload)


def propose_write(scope: Scope, sql: str, title: str | None = None, summary: str | None = None) -> CallToolResult:
    """Record a proposal (nothing runs) and say how a person confirms it."""
    title = (title or "").strip() or "Proposed change"
    summary = (summary or "").strip()
    try:
        proposal = scope.confirmations.propose(None, title[:200], summary[:2000], sql)
    except QueryError as exc:  # ProposalError included: refused before anything ran
        return _error(f"Nothing was proposed and nothing ran: {exc.paragraph()}")
    return proposal_result(proposal)


def proposal_result(proposal: Proposal) -> CallToolResult:
    """The proposal for the agent: the text, and the same facts as structured content (which is
    all Codex shows its model), the sentence a person runs included."""
    rows = proposal.dry_run_rows or 0
    blocked = proposal.stale or proposal.dry_run_error
    how = (
        f"It cannot be confirmed: {visible(blocked)}"
        if blocked
        else f"Nothing has run. A person runs exactly this, once, with: nexus-lab confirm {proposal.id}  (before "
        f"{proposal.expires_at:%H:%M} UTC; or in the notebook, the chat panel or the web page). No tool can confirm "
        "it: tell the person the id and what it changes."
    )
    structured = {
        "id": proposal.id,
        "sql": proposal.sql,
        "dry_run_rows": proposal.dry_run_rows,
        "dry_run_error": proposal.dry_run_error,
        "expires_at": proposal.expires_at.isoformat(),
        "confirm_with": None if blocked else f"nexus-lab confirm {proposal.id}",
        "note": how,
        "preview": proposal.preview,
    }
    if len(json.dumps(structured, default=str).encode()) > MAX_RESULT_BYTES:
        structured["preview"] = [{k: v for k, v in step.items() if k != "sample"} for step in proposal.preview]
    lines = [f"Proposal {proposal.id}: it would change {rows:,} {noun(rows, 'row')}:", visible(proposal.sql), how]
    text = "\n".join(lines)
    if len(text.encode()) > MAX_RESULT_BYTES:
        text = text.encode()[: MAX_RESULT_BYTES - 3].decode("utf-8", "ignore") + "…"
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=visible(message))], is_error=True)
