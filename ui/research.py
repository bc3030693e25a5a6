"""The Compare and Catalogue tabs: practices side by side, and the case catalogue."""

from __future__ import annotations

import functools
import hashlib
import tempfile
from html import escape
from pathlib import Path

import gradio as gr
import pandas as pd

from kb.compare import GROUP_FIELDS, Comparison, compare, comparison_csv
from kb.errors import KBError
from kb.facets import FACET_LABELS, count_facets, ready_records
from kb.guidebook import build_guidebook, write_guidebook
from kb.practices import case_detail, case_records, case_summary
from kb.service import KnowledgeBase
from ui.statistics import build_statistics_tab

COMPARE_EXAMPLES = [
    "assessment with VR simulators",
    "chatbots for study counselling",
    "teacher training on artificial intelligence",
]
COMPARE_COLUMNS = [
    "group",
    "similarity",
    "rank",
    "title",
    "page or section",
    "passage",
    "institution",
    "country",
    "technology",
    "use case",
    "year",
    "document id",
]
COMPARE_TYPES = [
    "str",
    "number",
    "number",
    "str",
    "str",
    "str",
    "str",
    "str",
    "str",
    "str",
    "str",
    "str",
]
# Column widths in the order of COMPARE_COLUMNS; the passage gets the most room.
COMPARE_WIDTHS = [
    "7%",
    "6%",
    "4%",
    "12%",
    "7%",
    "25%",
    "8%",
    "6%",
    "6%",
    "7%",
    "5%",
    "7%",
]
CATALOGUE_FILTERS = ("technology", "use_case", "country", "sector", "year")
CATALOGUE_COLUMNS = [
    "title",
    "institution",
    "country",
    "technology",
    "use case",
    "sector",
    "year",
    "id",
]


def _join(values) -> str:
    if values is None:
        return ""
    if isinstance(values, list):
        return ", ".join(str(value) for value in values)
    return str(values)


def _selected_filters(names, selected) -> dict[str, list[str]]:
    return {
        name: [str(value) for value in values]
        for name, values in zip(names, selected, strict=True)
        if values
    }


@functools.cache
def _output_folder() -> tempfile.TemporaryDirectory:
    """Return this process's folder for CSV and guidebook downloads.

    The folder is removed when the process exits. Gradio copies each file it
    serves into its own cache first.
    """
    return tempfile.TemporaryDirectory(prefix="vet-kb-research-")


def _write_unique(folder: Path, stem: str, suffix: str, text: str) -> str:
    """Write text under a name derived from its content and return the path."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    path = folder / f"{stem}-{digest}{suffix}"
    if not path.exists():
        path.write_text(text, encoding="utf-8", newline="")
    return str(path)


# -- Compare ------------------------------------------------------------------


def comparison_frame(comparison: Comparison) -> pd.DataFrame:
    """Return one table row per group, in the columns of the Compare tab."""
    rows = []
    for row in comparison.rows:
        meta = row.to_dict()
        where = f"page {row.page}" if row.page else row.section or ""
        rows.append(
            [
                row.group,
                row.similarity,
                row.rank,
                row.title,
                where,
                row.passage,
                _join(meta["institution"]),
                _join(meta["country"]),
                _join(meta["technology"]),
                _join(meta["use_case"]),
                _join(meta["year"]),
                row.document_id,
            ]
        )
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def comparison_status(comparison: Comparison) -> str:
    group = FACET_LABELS.get(comparison.group_by, comparison.group_by).lower()
    text = (
        f"**{len(comparison.rows)} groups** by {group} for "
        f"“{escape(comparison.query)}”, from the top {comparison.passages} passages. "
        "Sort by a column with the ⋮ menu in its header."
    )
    if comparison.ungrouped:
        text += (
            f" {comparison.ungrouped} matching documents have no {group} "
            "and are not shown."
        )
    return text


def build_compare_tab(kb: KnowledgeBase, values: dict[str, list[str]]) -> None:
    folder = Path(_output_folder().name)
    filter_names = ("technology", "use_case", "country", "sector")

    def run(topic, group_by, min_similarity, *selected):
        empty = pd.DataFrame([], columns=COMPARE_COLUMNS)
        hidden = gr.DownloadButton(visible=False)
        topic = (topic or "").strip()
        if not topic:
            return "Type a topic first.", empty, hidden
        try:
            comparison = compare(
                kb,
                topic,
                group_by,
                _selected_filters(filter_names, selected),
                min_similarity=float(min_similarity or 0.0),
            )
        except KBError as error:
            return f"Rejected: {escape(str(error))}", empty, hidden
        csv_path = _write_unique(
            folder, "comparison", ".csv", comparison_csv(comparison)
        )
        return (
            comparison_status(comparison),
            comparison_frame(comparison),
            gr.DownloadButton(value=csv_path, visible=True),
        )

    with gr.Tab("Compare", elem_id="compare-tab"):
        gr.Markdown(
            "Compare practices on a topic: one row per group with its best "
            "matching passage, its citation and its similarity to the topic."
        )
        with gr.Row():
            topic = gr.Textbox(
                label="Topic",
                placeholder="e.g. " + COMPARE_EXAMPLES[0],
                elem_id="compare-topic",
                scale=3,
            )
            group_by = gr.Dropdown(
                choices=[(FACET_LABELS[name], name) for name in GROUP_FIELDS],
                value="country",
                label="Group by",
                elem_id="compare-group-by",
                scale=1,
            )
        with gr.Accordion("Filters", open=False, elem_id="compare-filters"):
            with gr.Row():
                selectors = [
                    gr.Dropdown(
                        choices=values.get(name, []),
                        multiselect=True,
                        label=FACET_LABELS[name],
                        elem_id=f"compare-filter-{name}",
                    )
                    for name in filter_names
                ]
            min_similarity = gr.Slider(
                0.0,
                1.0,
                value=0.0,
                step=0.05,
                label="Minimum similarity of a matching passage",
                elem_id="compare-min-similarity",
            )
        button = gr.Button("Compare", variant="primary", elem_id="compare-button")
        status = gr.Markdown(elem_id="compare-status")
        table = gr.Dataframe(
            value=pd.DataFrame([], columns=COMPARE_COLUMNS),
            datatype=COMPARE_TYPES,
            interactive=False,
            wrap=True,
            max_height=700,
            column_widths=COMPARE_WIDTHS,
            elem_id="compare-table",
        )
        download = gr.DownloadButton(
            "Download CSV", visible=False, elem_id="compare-csv"
        )
        gr.Examples(COMPARE_EXAMPLES, inputs=topic)
        inputs = [topic, group_by, min_similarity, *selectors]
        outputs = [status, table, download]
        button.click(run, inputs=inputs, outputs=outputs)
        topic.submit(run, inputs=inputs, outputs=outputs)


# -- Catalogue ----------------------------------------------------------------


def catalogue_rows(records) -> pd.DataFrame:
    rows = []
    for record in records:
        summary = case_summary(record)
        rows.append(
            [
                summary["title"],
                _join(summary["institution"]),
                _join(summary["country"]),
                _join(summary["technology"]),
                _join(summary["use_case"]),
                _join(summary["sector"]),
                _join(summary["year"]),
                summary["id"],
            ]
        )
    return pd.DataFrame(rows, columns=CATALOGUE_COLUMNS)


def _link(url: str, text: str) -> str:
    return f'<a href="{escape(url)}" target="_blank" rel="noopener">{escape(text)}</a>'


def render_case(detail: dict) -> str:
    """Render a case description: fields, sources and related practices."""
    parts = [f'<div class="kb-case"><h3>{escape(detail["title"])}</h3><dl>']
    for name, value in detail["fields"].items():
        if name in ("summary", "source"):
            continue  # shown below the fields
        label = FACET_LABELS.get(name, name.replace("_", " ").capitalize())
        if name == "language":
            label = FACET_LABELS["source_language"]
        parts.append(f"<dt>{escape(label)}</dt><dd>{escape(_join(value))}</dd>")
    for name, value in detail["extra_fields"].items():
        parts.append(f"<dt>{escape(name)}</dt><dd>{escape(_join(value))}</dd>")
    parts.append("</dl>")

    if detail.get("summary"):
        parts.append(f'<p class="kb-summary">{escape(detail["summary"])}</p>')

    parts.append("<h4>Sources</h4><ul>")
    files = ", ".join(detail["files"])
    parts.append(f"<li>Case file: {_link(detail['file_url'], files)}</li>")
    if detail.get("source"):
        parts.append(f"<li>Based on: {escape(detail['source'])}</li>")
    for url in detail["source_links"]:
        parts.append(f"<li>{_link(url, url)}</li>")
    parts.append("</ul>")

    for key, heading in (
        ("related", "Related practices"),
        ("related_documents", "Related documents"),
    ):
        if not detail[key]:
            continue
        parts.append(f'<h4>{heading}</h4><ol class="kb-related" id="kb-{key}">')
        for item in detail[key]:
            where = _join([item["institution"], _join(item["country"])])
            parts.append(
                f"<li>{escape(item['title'])} "
                f'<span class="kb-score">{escape(where.strip(", "))} · '
                f"similarity {item['similarity']:.2f} · id {escape(item['id'])}"
                "</span></li>"
            )
        parts.append("</ol>")
    parts.append("</div>")
    return "\n".join(parts)


def build_catalogue_tab(kb: KnowledgeBase) -> None:
    folder = Path(_output_folder().name)
    cases = count_facets(case_records(kb))
    choices = {
        name: [item.value for item in cases.facets[name]] for name in CATALOGUE_FILTERS
    }

    def case_choices(records) -> list[tuple[str, str]]:
        return [(record.title, record.id) for record in records]

    def guidebook_files(filters, request: gr.Request | None) -> tuple[str, str]:
        base_url = None
        if request is not None and getattr(request, "request", None) is not None:
            base_url = str(request.request.base_url)
        book = build_guidebook(kb, filters, base_url)
        stem = "guidebook-" + hashlib.sha256(book.html.encode()).hexdigest()[:12]
        html_path, markdown_path = write_guidebook(book, folder / stem)
        return str(html_path), str(markdown_path)

    def apply_filters(technology, use_case, country, sector, year, request: gr.Request):
        selected = (technology, use_case, country, sector, year)
        try:
            filters = _selected_filters(CATALOGUE_FILTERS, selected)
            records = case_records(kb, filters)
            html_path, markdown_path = guidebook_files(filters, request)
        except KBError as error:
            gr.Warning(f"Rejected: {error}")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return (
            catalogue_rows(records),
            gr.Dropdown(choices=case_choices(records), value=None),
            f"{len(records)} case descriptions.",
            gr.DownloadButton(value=html_path),
            gr.DownloadButton(value=markdown_path),
        )

    def refresh_downloads(
        technology, use_case, country, sector, year, request: gr.Request
    ):
        # The server address is known only in a request, and the guidebook
        # needs it to link each case file.
        selected = (technology, use_case, country, sector, year)
        filters = _selected_filters(CATALOGUE_FILTERS, selected)
        html_path, markdown_path = guidebook_files(filters, request)
        return gr.DownloadButton(value=html_path), gr.DownloadButton(
            value=markdown_path
        )

    def open_case(document_id: str | None) -> str:
        if not document_id:
            return ""
        try:
            return render_case(case_detail(kb, document_id))
        except KBError as error:
            return f"<p>{escape(str(error))}</p>"

    def select_row(event: gr.SelectData):
        row = event.row_value or []
        return row[-1] if row else gr.skip()

    records = case_records(kb)
    html_path, markdown_path = guidebook_files(None, None)
    with gr.Tab("Catalogue", elem_id="catalogue-tab") as tab:
        gr.Markdown(
            "Browse the case descriptions. Select a row, or pick a title below, to "
            "see its fields, its sources and the nearest practices."
        )
        with gr.Row():
            selectors = [
                gr.Dropdown(
                    choices=choices[name],
                    multiselect=True,
                    label=FACET_LABELS[name],
                    elem_id=f"catalogue-filter-{name}",
                )
                for name in CATALOGUE_FILTERS
            ]
        count = gr.Markdown(
            f"{len(records)} case descriptions.", elem_id="catalogue-count"
        )
        table = gr.Dataframe(
            value=catalogue_rows(records),
            interactive=False,
            wrap=True,
            column_widths=["34%", "16%", "10%", "9%", "11%", "9%", "5%", "6%"],
            max_height=500,
            elem_id="catalogue-table",
        )
        case = gr.Dropdown(
            choices=case_choices(records),
            label="Case description",
            elem_id="catalogue-case",
        )
        detail = gr.HTML(elem_id="catalogue-detail")
        with gr.Row():
            html_button = gr.DownloadButton(
                "Download guidebook (HTML)", value=html_path, elem_id="guidebook-html"
            )
            markdown_button = gr.DownloadButton(
                "Download guidebook (Markdown)",
                value=markdown_path,
                elem_id="guidebook-markdown",
            )
        for selector in selectors:
            selector.change(
                apply_filters,
                inputs=selectors,
                outputs=[table, case, count, html_button, markdown_button],
            )
        tab.select(
            refresh_downloads,
            inputs=selectors,
            outputs=[html_button, markdown_button],
        )
        table.select(select_row, outputs=case)
        case.change(open_case, inputs=case, outputs=detail)


def build_research_tabs(kb: KnowledgeBase) -> None:
    """Add the Compare, Catalogue and Statistics tabs to the Blocks being built."""
    collection = count_facets(ready_records(kb))
    values = {
        name: [item.value for item in items]
        for name, items in collection.facets.items()
    }
    build_compare_tab(kb, values)
    build_catalogue_tab(kb)
    build_statistics_tab(kb, values)
