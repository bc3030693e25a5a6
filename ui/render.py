"""HTML for answers and citations; every document string is escaped first."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from kb.answer import Answer


def source_link(document_id: str, page: int | None) -> str:
    link = f"/api/documents/{quote(document_id)}/file"
    return f"{link}#page={page}" if page else link


def render_answer(answer: Answer) -> str:
    """Render an answer: its text, then one card per citation."""
    status = "found" if answer.found else "not-found"
    parts = [f'<div class="kb-answer {status}"><p>{escape(answer.answer)}</p></div>']
    for citation in answer.citations:
        passage = citation.passage
        where = (
            f"page {passage.page}"
            if passage.page
            else (f"section: {passage.section}" if passage.section else "")
        )
        link = source_link(passage.document_id, passage.page)
        parts.append(
            '<div class="kb-citation">'
            f'<div class="kb-source"><b>[{citation.n}]</b> {escape(passage.title)}'
            f"{' · ' + escape(where) if where else ''}"
            f' · <a href="{escape(link)}" target="_blank" rel="noopener">'
            "open source</a>"
            f' <span class="kb-score">score {passage.score:.2f}</span></div>'
            f'<div class="kb-file">{escape(passage.file)}</div>'
            f"<blockquote>{escape(passage.passage)}</blockquote>"
            "</div>"
        )
    return "\n".join(parts)
