"""The Curate and Documents tabs: upload, create case descriptions, list,
edit, re-index and delete documents."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import get_args

import gradio as gr

from ingest.cases import Technology, UseCase
from kb import curation
from kb.auth import parse_hashes, token_matches
from kb.errors import KBError
from kb.service import FileOutcome, KnowledgeBase

CASE_FIELDS = [
    ("title", "Title"),
    ("institution", "Institution"),
    ("country", "Country"),
    ("sector", "Sector or field"),
    ("target_group", "Target group"),
    ("language", "Language (ISO 639-1, e.g. fi)"),
    ("year", "Year"),
    ("source", "Source (document title, URL or reference)"),
    ("licence", "Licence of this description"),
]
DOCUMENT_COLUMNS = [
    "id",
    "title",
    "type",
    "status",
    "chunks",
    "pages",
    "language",
    "indexed",
    "files",
]


def parse_metadata_changes(text: str) -> dict:
    """Read a JSON object of metadata changes; raise ValueError with the reason."""
    try:
        value = json.loads(text or "")
    except json.JSONDecodeError as error:
        raise ValueError(f"metadata changes are not valid JSON: {error}") from None
    if not isinstance(value, dict) or not value:
        raise ValueError('metadata changes must be a JSON object, e.g. {"year": 2024}')
    return value


def render_outcome(outcome: FileOutcome) -> str:
    detail = outcome.reason or f"{outcome.chunks} chunks"
    status = escape(outcome.status)
    return (
        f'<p class="kb-outcome {status}"><b>{status}</b> '
        f"{escape(outcome.file)}: {escape(detail)}</p>"
    )


def document_rows(kb: KnowledgeBase) -> list[list]:
    return [
        [
            record.id,
            record.title,
            record.doc_type,
            record.status,
            record.chunks,
            record.pages,
            record.language,
            record.indexed_at,
            ", ".join(record.files),
        ]
        for record in kb.documents()
    ] + [
        [
            "",
            failure["reason"],
            "",
            "failed",
            0,
            None,
            "",
            failure["failed_at"],
            failure["file"],
        ]
        for failure in kb.catalogue.failures()
    ]


def build_curate_tabs(kb: KnowledgeBase) -> None:
    """Add the Curate and Documents tabs to the Blocks being built."""
    hashes = parse_hashes(kb.settings.curator_token_sha256)

    def authorised(token: str) -> str | None:
        if not hashes:
            return "Writing is disabled: set KB_CURATOR_TOKEN_SHA256 on the server."
        if not token or not token_matches(token.strip(), hashes):
            return "Invalid curator token; nothing was changed."
        return None

    def form_fields(values: tuple, technology, use_case, summary) -> dict:
        fields = {
            name: value for (name, _), value in zip(CASE_FIELDS, values, strict=True)
        }
        fields["technology"] = technology or []
        fields["use_case"] = use_case or []
        fields["summary"] = summary
        if fields.get("country"):
            fields["country"] = [c.strip() for c in str(fields["country"]).split(",")]
        return fields

    def upload_file(token, file_path, technology, use_case, summary, *values):
        problem = authorised(token)
        if problem:
            return f"<p>{escape(problem)}</p>"
        if not file_path:
            return "<p>Choose a file first.</p>"
        fields = form_fields(values, technology, use_case, summary)
        metadata = {k: v for k, v in fields.items() if v not in (None, "", [])}
        path = Path(file_path)
        try:
            outcome = curation.upload(kb, path.name, path.read_bytes(), metadata)
        except KBError as error:
            return f"<p>Rejected: {escape(str(error))}</p>"
        return render_outcome(outcome)

    def create_case(token, technology, use_case, summary, *values):
        problem = authorised(token)
        if problem:
            return f"<p>{escape(problem)}</p>"
        try:
            name, text = curation.case_markdown(
                form_fields(values, technology, use_case, summary)
            )
            outcome = curation.upload(kb, name, text.encode("utf-8"))
        except (ValueError, KBError) as error:
            return f"<p>Rejected: {escape(str(error))}</p>"
        return render_outcome(outcome)

    with gr.Tab("Curate", elem_id="curate-tab"):
        token = gr.Textbox(label="Curator token", type="password", elem_id="token")
        upload = gr.File(label="Document to upload", type="filepath", elem_id="upload")
        gr.Markdown(
            "Case description fields: they are added to an uploaded document's "
            "metadata, or make a new case description on their own."
        )
        with gr.Row():
            technology = gr.Dropdown(
                list(get_args(Technology)),
                multiselect=True,
                label="Technology",
                elem_id="case-technology",
            )
            use_case = gr.Dropdown(
                list(get_args(UseCase)),
                multiselect=True,
                label="Use case",
                elem_id="case-use_case",
            )
        values = [
            gr.Textbox(label=label, elem_id=f"case-{name}")
            for name, label in CASE_FIELDS
        ]
        summary = gr.Textbox(label="Summary", lines=4, elem_id="case-summary")
        with gr.Row():
            upload_button = gr.Button("Upload and index", elem_id="upload-button")
            create_button = gr.Button(
                "Create case description", elem_id="create-button"
            )
        outcome = gr.HTML(elem_id="curate-outcome")
        inputs = [token, technology, use_case, summary, *values]
        upload_button.click(
            upload_file,
            inputs=[token, upload, technology, use_case, summary, *values],
            outputs=outcome,
        )
        create_button.click(create_case, inputs=inputs, outputs=outcome)

    def manage(action: str, token: str, document_id: str, changes: str):
        problem = authorised(token)
        document_id = (document_id or "").strip()
        if problem:
            return f"<p>{escape(problem)}</p>", document_rows(kb)
        try:
            if action == "delete":
                kb.delete(document_id)
                message = f"<p><b>deleted</b> {escape(document_id)}</p>"
            elif action == "reindex":
                message = render_outcome(curation.reindex_document(kb, document_id))
            else:
                fields = parse_metadata_changes(changes)
                outcome = curation.update_metadata(kb, document_id, fields)
                message = render_outcome(outcome)
        except (ValueError, KBError) as error:
            message = f"<p>Rejected: {escape(str(error))}</p>"
        return message, document_rows(kb)

    def pick_row(event: gr.SelectData) -> str:
        return str(event.row_value[0]) if event.row_value else ""

    with gr.Tab("Documents", elem_id="documents-tab"):
        table = gr.Dataframe(
            headers=DOCUMENT_COLUMNS, value=document_rows(kb), elem_id="documents"
        )
        refresh = gr.Button("Refresh", elem_id="refresh")
        refresh.click(lambda: document_rows(kb), outputs=table)
        with gr.Accordion("Edit, re-index or delete a document", open=False):
            manage_token = gr.Textbox(
                label="Curator token", type="password", elem_id="manage-token"
            )
            document_id = gr.Textbox(
                label="Document id (click a row of the table to fill it in)",
                elem_id="manage-id",
            )
            changes = gr.Textbox(
                label='Metadata changes as JSON, e.g. {"country": ["Finland"]}; '
                "null removes a field",
                elem_id="manage-metadata",
            )
            with gr.Row():
                save = gr.Button("Save metadata", elem_id="manage-save")
                reindex = gr.Button("Re-index", elem_id="manage-reindex")
                delete = gr.Button("Delete", variant="stop", elem_id="manage-delete")
            managed = gr.HTML(elem_id="manage-outcome")
        table.select(pick_row, outputs=document_id)
        inputs = [manage_token, document_id, changes]
        for button, action in (
            (save, "save"),
            (reindex, "reindex"),
            (delete, "delete"),
        ):
            button.click(
                lambda *args, action=action: manage(action, *args),
                inputs=inputs,
                outputs=[managed, table],
            )
