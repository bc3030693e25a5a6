"""The Statistics tab: charts of the collection and facet counts for a query."""

from __future__ import annotations

from html import escape

import gradio as gr
import pandas as pd

from kb.errors import KBError
from kb.facets import FACET_FIELDS, FACET_LABELS, FacetCounts, facet_counts
from kb.service import KnowledgeBase

CHARTS = (
    ("country", "Documents per country"),
    ("technology", "Documents per technology"),
    ("use_case", "Documents per use case"),
    ("language", "Documents per language of the text"),
    ("source_language", "Case descriptions per language of the source"),
)
FACET_FILTERS = ("technology", "use_case", "country", "sector", "language", "doc_type")
FACET_COLUMNS = ["field", "value", "documents", "case descriptions"]


def chart_frame(counts: FacetCounts, name: str) -> pd.DataFrame:
    """Return the value counts of one facet field as a two-column frame."""
    column = "cases" if name == "source_language" else "documents"
    rows = [(item.value, getattr(item, column)) for item in counts.facets.get(name, [])]
    return pd.DataFrame(rows, columns=["value", "count"])


def facet_frame(counts: FacetCounts) -> pd.DataFrame:
    rows = [
        [FACET_LABELS[name], item.value, item.documents, item.cases]
        for name in FACET_FIELDS
        for item in counts.facets.get(name, [])
    ]
    return pd.DataFrame(rows, columns=FACET_COLUMNS)


def collection_summary(counts: FacetCounts) -> str:
    return (
        f"The collection holds **{counts.documents} documents**, of which "
        f"**{counts.cases} are case descriptions**. A document counts once for "
        "each value it has in a field."
    )


def build_statistics_tab(kb: KnowledgeBase, values: dict[str, list[str]]) -> None:
    """Add the Statistics tab; `values` lists the values of each facet field."""

    def chart_values():
        counts = facet_counts(kb)
        frames = [chart_frame(counts, name) for name, _ in CHARTS]
        return (collection_summary(counts), *frames)

    def count(query, *selected):
        filters = {
            name: list(chosen)
            for name, chosen in zip(FACET_FILTERS, selected, strict=True)
            if chosen
        }
        try:
            counts = facet_counts(kb, query, filters)
        except KBError as error:
            return f"Rejected: {escape(str(error))}", gr.skip()
        scope = (
            f"matching “{escape(counts.query)}” in the top {counts.depth} passages"
            if counts.query
            else "in the collection"
        )
        status = (
            f"{counts.documents} documents ({counts.cases} case descriptions) {scope}."
        )
        return status, facet_frame(counts)

    summary_text, *frames = chart_values()
    with gr.Tab("Statistics", elem_id="statistics-tab"):
        summary = gr.Markdown(summary_text, elem_id="statistics-summary")
        plots = []
        for (name, title), frame in zip(CHARTS, frames, strict=True):
            plots.append(
                gr.BarPlot(
                    frame,
                    x="value",
                    y="count",
                    title=title,
                    x_title=FACET_LABELS[name],
                    y_title=(
                        "case descriptions"
                        if name == "source_language"
                        else "documents"
                    ),
                    sort="-y",
                    y_lim=[0, None],
                    y_axis_format="d",
                    x_label_angle=-40,
                    height=320,
                    elem_id=f"chart-{name}",
                )
            )
        refresh = gr.Button("Refresh", elem_id="statistics-refresh")
        refresh.click(chart_values, outputs=[summary, *plots])

        gr.Markdown("### Facet counts for a query")
        query = gr.Textbox(
            label="Query (optional)",
            placeholder="e.g. chatbots for study counselling",
            elem_id="facets-query",
        )
        with gr.Row():
            selectors = [
                gr.Dropdown(
                    choices=values.get(name, []),
                    multiselect=True,
                    label=FACET_LABELS[name],
                    elem_id=f"facets-filter-{name}",
                )
                for name in FACET_FILTERS
            ]
        button = gr.Button("Count", elem_id="facets-button")
        status = gr.Markdown(elem_id="facets-status")
        table = gr.Dataframe(
            value=facet_frame(facet_counts(kb)),
            interactive=False,
            max_height=500,
            elem_id="facets-table",
        )
        button.click(count, inputs=[query, *selectors], outputs=[status, table])
        query.submit(count, inputs=[query, *selectors], outputs=[status, table])
