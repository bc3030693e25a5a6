"""Curator routes: upload, edit, re-index and delete documents (token required)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from kb import curation
from kb.service import FAILED, INDEXED, FileOutcome, KnowledgeBase


class OutcomeOut(BaseModel):
    file: str
    status: str = Field(description="indexed, skipped or failed")
    reason: str
    document_id: str | None
    chunks: int


class MetadataPatch(BaseModel):
    metadata: dict[str, Any] = Field(
        description="Fields to set; a null value removes the field."
    )


def _outcome_response(outcome: FileOutcome) -> JSONResponse:
    if outcome.status == FAILED:
        status = 422
    elif outcome.status == INDEXED:
        status = 201
    else:
        status = 200
    return JSONResponse(status_code=status, content=outcome.to_dict())


def _parse_metadata(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise HTTPException(400, f"metadata is not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise HTTPException(400, "metadata must be a JSON object of field: value")
    return value


def add_curation_routes(app: FastAPI, kb: KnowledgeBase, curator) -> None:
    writes = {"dependencies": [curator], "response_model": OutcomeOut}

    @app.post("/api/documents", status_code=201, **writes)
    async def upload_document(
        file: UploadFile = File(description="The document to index."),
        metadata: str | None = Form(
            default=None, description='JSON object, e.g. {"country": "Finland"}'
        ),
    ) -> JSONResponse:
        limit = int(kb.settings.max_upload_mb * 1_000_000)
        data = await file.read(limit + 1)
        # Indexing takes seconds; a worker thread keeps the event loop serving
        # readers meanwhile.
        outcome = await run_in_threadpool(
            curation.upload, kb, file.filename or "", data, _parse_metadata(metadata)
        )
        return _outcome_response(outcome)

    @app.patch("/api/documents/{document_id}", **writes)
    def patch_document(document_id: str, patch: MetadataPatch) -> JSONResponse:
        return _outcome_response(
            curation.update_metadata(kb, document_id, patch.metadata)
        )

    @app.post("/api/documents/{document_id}/reindex", **writes)
    def reindex_document(document_id: str) -> JSONResponse:
        return _outcome_response(curation.reindex_document(kb, document_id))

    @app.delete("/api/documents/{document_id}", dependencies=[curator])
    def delete_document(document_id: str) -> dict[str, str]:
        kb.delete(document_id)
        return {"deleted": document_id}
