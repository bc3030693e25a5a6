"""The Gradio Blocks app: ask a question, read the answer and its sources."""

from __future__ import annotations

import gradio as gr

from kb.generate import AnswerGenerator
from kb.service import KnowledgeBase
from ui.curate import build_curate_tabs
from ui.render import render_answer
from ui.research import build_research_tabs
from ui.stream import streaming_ask

# Passed to gr.mount_gradio_app: Gradio 6 takes page styles at mount time.
CSS = """
.kb-citation {border-left: 3px solid #6b8afd; padding: 4px 12px; margin: 10px 0;}
.kb-citation blockquote {white-space: pre-wrap; margin: 6px 0; color: #333;}
.kb-file, .kb-score {color: #777; font-size: 0.85em;}
.kb-answer.not-found {color: #a05a00;}
.kb-generated {color: #777; font-size: 0.85em;}
.kb-notice {color: #a05a00;}
.kb-unsupported {color: #777; font-size: 0.9em;}
.kb-case dl {display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px;}
.kb-case dt {font-weight: 600;}
.kb-summary {font-style: italic;}
"""

EXAMPLES = [
    "How can one VR simulator serve a class of twenty students?",
    "What should a school check before buying an XR training simulator?",
    "Which AI tools help teachers personalise learning?",
]
FILTER_LABELS = {
    "technology": "Technology",
    "use_case": "Use case",
    "country": "Country",
    "language": "Language",
    "doc_type": "Document type",
}


def build_ui(kb: KnowledgeBase) -> gr.Blocks:
    fields = list(FILTER_LABELS)

    def ask(question: str, *selected: list[str]) -> str:
        question = (question or "").strip()
        if not question:
            return "<p>Type a question first.</p>"
        filters = {
            field: values
            for field, values in zip(fields, selected, strict=True)
            if values
        }
        return render_answer(kb.ask(question, filters=filters or None))

    stats = kb.stats()
    values = kb.filter_values()
    with gr.Blocks(title="VET practice knowledge base") as blocks:
        gr.Markdown(
            "## AI and XR in vocational education: ask the knowledge base\n"
            f"{stats['documents']} documents, {stats['chunks']} passages. "
            "Every answer quotes its sources."
        )
        with gr.Tab("Ask", elem_id="ask-tab"):
            question = gr.Textbox(
                label="Question", placeholder="e.g. " + EXAMPLES[0], elem_id="question"
            )
            with gr.Accordion("Filters", open=False, elem_id="filters"), gr.Row():
                selectors = [
                    gr.Dropdown(
                        choices=values.get(field, []),
                        multiselect=True,
                        label=label,
                        elem_id=f"filter-{field}",
                    )
                    for field, label in FILTER_LABELS.items()
                ]
            button = gr.Button("Ask", variant="primary", elem_id="ask")
            answer = gr.HTML(elem_id="answer")
            gr.Examples(EXAMPLES, inputs=question)
            inputs = [question, *selectors]
            generator = AnswerGenerator(kb)
            if generator.enabled:
                ask = streaming_ask(generator, fields)
            button.click(ask, inputs=inputs, outputs=answer)
            question.submit(ask, inputs=inputs, outputs=answer)
        build_research_tabs(kb)
        build_curate_tabs(kb)
    return blocks
