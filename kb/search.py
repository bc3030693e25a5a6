"""Passages: the unit that search returns and answers cite."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kb.vectors import VectorHit


@dataclass
class Passage:
    """A retrieved chunk with the source it came from."""

    document_id: str
    title: str
    file: str
    page: int | None
    section: str | None
    passage: str
    score: float
    chunk_id: str
    language: str
    doc_type: str
    start_char: int
    end_char: int
    similarity: float = 0.0  # cosine similarity to the query, in every mode

    @classmethod
    def from_hit(cls, hit: VectorHit) -> Passage:
        meta = hit.metadata
        return cls(
            document_id=str(meta.get("document_id", "")),
            title=str(meta.get("title", "")),
            file=str(meta.get("file", "")),
            page=int(meta["page"]) if "page" in meta else None,
            section=meta.get("section"),
            passage=hit.text,
            score=round(float(hit.score), 4),
            similarity=round(float(hit.score), 4),
            chunk_id=hit.chunk_id,
            language=str(meta.get("language", "unknown")),
            doc_type=str(meta.get("doc_type", "")),
            start_char=int(meta.get("start_char", 0)),
            end_char=int(meta.get("end_char", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
