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
    parts.extend(render_checks(answer))
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


def render_checks(answer: Answer) -> list[str]:
    """Render how a generated answer was made: notice and dropped sentences."""
    parts = []
    if answer.generated:
        parts.append(
            '<p class="kb-generated">Written by a language model from the sources '
            "below; each sentence was checked against the passages it cites.</p>"
        )
    if answer.notice:
        parts.append(f'<p class="kb-notice">{escape(answer.notice)}</p>')
    if answer.unsupported:
        items = "".join(
            f"<li>{escape(item['sentence'])} <i>({escape(item['reason'])})</i></li>"
            for item in answer.unsupported
        )
        parts.append(
            '<div class="kb-unsupported"><p>Removed from the generated answer, '
            f"because the sources do not support them:</p><ul>{items}</ul></div>"
        )
    return parts


def render_partial(text: str) -> str:
    """Render an answer that is still being written."""
    return f'<div class="kb-answer streaming"><p>{escape(text)} …</p></div>'
