"""Responses as cell outputs: markdown, dashboards (KPI cards, charts, tables, pills), confirm cards.

Renderers take the resolved response (a model or its JSON dict, e.g. from a stored
conversation) and return ``Part``s; they never touch the database. ``render_response`` first
makes every text in it safe (``safetext.safe_response``), so nothing below it, Altair and
vl-convert included, sees a control character. Static parts are HTML that any viewer shows;
a chart is Vega plus a PNG, a confirm card its widget plus the same card as HTML (``parts``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..safetext import safe_response, visible, visible_lines
from . import html as h
from . import text
from .parts import Part, html_part, new_display_id, widget_part

if TYPE_CHECKING:
    from ..agent.responses import ResolvedResponse
    from ..agent.transcript import Item as TranscriptItem
    from ..agent.turn import TurnResult
    from ..db.engine import QueryResult
    from .confirm import ConfirmAssistant


def render_result(
    result: TurnResult, *, assistant: ConfirmAssistant | None = None, show_sql: bool = False, interactive: bool = True
) -> list[Part]:
    """Everything a finished turn shows below its steps: the answer, notes, or what went wrong."""
    if result.error and result.response is None:
        error = visible_lines(result.error)
        if result.cancelled:
            return [html_part(h.answer_block(h.stopped_html(error)), error)]
        return [html_part(h.answer_block(h.error_html(error)), f"Error: {error}")]
    parts = render_response(result.response_dict(), assistant=assistant, show_sql=show_sql, interactive=interactive)
    notes = [visible(str(n)) for n in result.notes]
    if notes:
        parts.append(html_part(h.answer_block(h.notes_html(notes)), "\n".join(f"note: {n}" for n in notes)))
    return parts


def render_response(
    response: ResolvedResponse | Mapping[str, Any] | None,
    *,
    assistant: ConfirmAssistant | None = None,
    show_sql: bool = False,
    interactive: bool = True,
) -> list[Part]:
    data = safe_response(response)
    if not data:
        return []
    kind = data.get("type")
    if kind == "message":
        message = data.get("text") or ""
        return [html_part(h.answer_block(h.message_html(message)), message)]
    if kind == "confirm":
        return confirm_parts(data, assistant=assistant, interactive=interactive)
    if kind == "dashboard":
        return dashboard_parts(data, show_sql=show_sql, interactive=interactive)
    return [html_part(h.answer_block(h.message_html(str(data))), text.response_text(data))]


# -- dashboards -----------------------------------------------------------------------------


# A section type -> (html, text) for the static ones; charts are handled apart.
STATIC_SECTIONS: dict[str, Callable[[Mapping[str, Any], bool], tuple[str, str]]] = {
    "widgets": lambda s, _sql: (h.widgets_html(s), text.section_text(s)),
    "table": lambda s, sql: (h.table_html(s, show_sql=sql), text.section_text(s)),
    "pills": lambda s, _sql: (h.pills_html(s), text.section_text(s)),
}


def dashboard_parts(data: Mapping[str, Any], *, show_sql: bool = False, interactive: bool = True) -> list[Part]:
    """Consecutive static sections share one output; each chart is its own."""
    from . import charts

    parts: list[Part] = []
    html_run: list[str] = [h.title_html(data.get("title"))]
    text_run: list[str] = [text.title_text(data)]

    def close_run() -> None:
        if any(html_run):
            parts.append(html_part(h.answer_block("".join(html_run)), "\n".join(t for t in text_run if t)))
        html_run.clear()
        text_run.clear()

    for section in data.get("sections") or []:
        kind = section.get("type")
        if kind in STATIC_SECTIONS:
            html_, text_ = STATIC_SECTIONS[kind](section, show_sql)
            html_run.append(html_)
            text_run.append(text_)
        elif kind in charts.CHARTS:
            close_run()
            parts.extend(charts.chart_parts(section, interactive=interactive))
    close_run()
    return parts


# -- confirm --------------------------------------------------------------------------------


def confirm_parts(
    proposal: Mapping[str, Any], *, assistant: ConfirmAssistant | None = None, interactive: bool = True
) -> list[Part]:
    """The confirm card as one output: the live card (Confirm / Cancel) with the same card as
    static HTML beside it, for viewers without the kernel (nbconvert and an untrusted
    JupyterLab skip a widget they cannot draw). Once resolved, the output becomes the static
    card with its outcome, so a saved notebook shows the card once, in its final state."""
    said = text.confirm_text(proposal)
    static = {"text/html": h.answer_block(h.confirm_html(proposal)), "text/plain": said}
    if not interactive or assistant is None or not proposal.get("id"):
        return [Part(static)]
    from IPython.display import update_display

    from .confirm import ConfirmCard

    display_id = new_display_id()

    def record_outcome(card: ConfirmCard) -> None:
        outcome = card.outcome
        update_display(
            {
                "text/html": h.answer_block(h.confirm_html(proposal, outcome)),
                "text/plain": f"{said}\n\n{h.outcome_text(outcome)}",
            },
            raw=True,
            display_id=display_id,
        )

    card = ConfirmCard(dict(proposal), assistant, on_resolved=record_outcome)
    part = widget_part(card, said)
    part.data["text/html"] = static["text/html"]
    part.display_id = display_id
    return [part]


# -- a stored conversation ------------------------------------------------------------------------


def transcript_parts(items: Sequence[TranscriptItem]) -> list[Part]:
    """A stored conversation (``Assistant.transcript``) as cell outputs: each question, then its
    answer as the live cell would have left it (steps line with its cost, the answer, a card in
    its final state). Static: a resumed conversation's old cards are not clickable again."""
    from ..agent.responses import ResolvedConfirm
    from ..agent.transcript import AnswerItem, OutcomeItem, QuestionItem

    parts: list[Part] = []
    for item in items:
        if isinstance(item, QuestionItem):
            question = visible(item.text)
            parts.append(html_part(h.answer_block(h.question_html(question)), f"> {question}"))
        elif isinstance(item, OutcomeItem):
            outcome = {"status": item.status, "rows_affected": item.rows_affected, "error": item.error}
            words = h.outcome_text(outcome)
            parts.append(html_part(h.answer_block(f'<div class="nxl-caption">{h.esc(words)}</div>'), words))
        elif isinstance(item, AnswerItem):
            steps = h.steps_html(
                [s.step() for s in item.steps], cost=h.cost_text(len(item.steps), item.elapsed_ms, item.usage)
            )
            if steps:
                parts.append(html_part(steps, h.cost_text(len(item.steps), item.elapsed_ms, item.usage)))
            if item.error:
                error = visible_lines(item.error)
                body = h.stopped_html(error) if item.cancelled else h.error_html(error)
                parts.append(html_part(h.answer_block(body), error))
            elif isinstance(item.response, ResolvedConfirm):
                proposal = safe_response(item.response_dict())
                assert proposal is not None  # a response in, a response out
                shown = item.outcome and {**item.outcome, "message": item.outcome.get("error")}
                parts.append(
                    html_part(h.answer_block(h.confirm_html(proposal, shown)), f"CONFIRM: {proposal.get('title')}")
                )
            elif item.response is not None:
                parts.extend(render_response(item.response_dict(), interactive=False))
    return parts


# -- %nexus sql and listings -------------------------------------------------------------------


def display_query_result(result: QueryResult, key: str) -> None:
    """A direct query: the DataFrame (pandas' own, escaped, table) and where it is kept; its text
    is the terminal's (``text.result_text``: every row shown exact, as ``nexus-lab sql`` prints it)."""
    from IPython.display import display

    display({"text/html": result.df._repr_html_(), "text/plain": text.result_text(result)}, raw=True)
    caption = text.result_caption(result)
    display(
        {
            "text/html": h.answer_block(
                f'<div class="nxl-caption">{h.esc(caption)} · <code>nexus.frames[{h.esc(repr(key))}]</code> · <code>_nexus_df</code></div>'
            ),
            "text/plain": f"(nexus.frames[{key!r}], _nexus_df)",
        },
        raw=True,
    )


def listing_part(title: str, columns: list[str], rows: list[list[Any]], empty: str) -> Part:
    if not rows:
        return html_part(h.answer_block(f'<div class="nxl-caption">{h.esc(empty)}</div>'), empty)
    body = f'<div class="nxl-label">{h.esc(title)}</div>' + h.rows_table_html(columns, rows)
    return html_part(h.answer_block(body), text.listing_text(title, columns, rows))
