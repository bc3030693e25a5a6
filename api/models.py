"""Request and response models of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

SearchModeName = Literal["dense", "keyword", "hybrid"]


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000, description="The question.")
    top_k: int | None = Field(
        default=None, ge=1, le=50, description="Passages to read."
    )
    filters: dict[str, list[str]] | None = Field(
        default=None,
        description='Metadata filters, e.g. {"technology": ["VR", "AR"]}.',
    )
    mode: SearchModeName | None = Field(default=None, description="Ranking mode.")


class PassageOut(BaseModel):
    n: int | None = None
    document_id: str
    title: str
    file: str
    page: int | None
    section: str | None
    passage: str
    score: float
    similarity: float
    chunk_id: str
    language: str
    doc_type: str
    start_char: int
    end_char: int


class UnsupportedOut(BaseModel):
    sentence: str = Field(description="A generated sentence that was dropped.")
    citations: list[int] = Field(description="The passage numbers it cited.")
    similarity: float = Field(description="Best cosine similarity to those passages.")
    overlap: float = Field(description="Share of its content words they contain.")
    reason: str


class AnswerOut(BaseModel):
    question: str
    answer: str = Field(description="Answer text with [n] citation markers.")
    found: bool = Field(description="False when no supporting source was found.")
    citations: list[PassageOut]
    generated: bool = Field(
        default=False,
        description="True when a language model wrote the answer (KB_LLM_BASE_URL).",
    )
    notice: str | None = Field(
        default=None,
        description="Why the answer fell back to quoting sources, or may be partial.",
    )
    unsupported: list[UnsupportedOut] = Field(
        default=[],
        description="Generated sentences dropped: no cited passage supports them.",
    )
    removed_citations: list[int] = Field(
        default=[],
        description="Citation numbers removed because no such passage was retrieved.",
    )


class DocumentOut(BaseModel):
    id: str
    file: str
    files: list[str]
    title: str
    doc_type: str
    language: str
    status: str
    chunks: int
    pages: int | None
    indexed_at: str
    content_hash: str
    metadata: dict[str, Any]


class HealthOut(BaseModel):
    status: str
    documents: int
    chunks: int
    model: str


class ErrorOut(BaseModel):
    detail: str


class FailureOut(BaseModel):
    """A file whose last ingestion failed."""

    file: str = Field(description="The file name as given or uploaded.")
    reason: str = Field(description="Why it failed and what to do.")
    failed_at: str = Field(description="When it failed (UTC, ISO 8601).")
