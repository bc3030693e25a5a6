"""The catalogue of practices: case descriptions with their fields and neighbours.

Related practices are the case descriptions nearest by embedding. A document
is represented by the mean of its chunk embeddings from the vector store,
normalised to unit length, and two documents compare by the cosine of these
vectors.
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np

from kb.catalogue import READY, DocumentRecord
from kb.errors import DocumentNotFoundError, KBError
from kb.facets import (
    CASE,
    ResearchError,
    key_metadata,
    ready_records,
    record_values,
    select_records,
)
from kb.filters import Filters

DEFAULT_RELATED = 5
MAX_RELATED = 50
URL = re.compile(r"https?://[^\s<>\"')\]]+")
# Case description fields in the order the catalogue shows them.
CASE_FIELD_ORDER = (
    "institution",
    "country",
    "technology",
    "use_case",
    "sector",
    "target_group",
    "language",
    "year",
    "source",
    "licence",
    "summary",
)


class NotACaseError(KBError):
    """The requested document exists but is not a case description."""

    status = 404

    def __init__(self, record: DocumentRecord) -> None:
        super().__init__(
            f"document {record.id!r} is a {record.doc_type} document, not a case "
            "description; list case descriptions with `kb cases` or GET /api/cases"
        )


def source_links(text: str | None) -> list[str]:
    """Return the http(s) URLs in a source field, in order, without repeats."""
    if not text:
        return []
    return list(dict.fromkeys(match.rstrip(".,;:") for match in URL.findall(text)))


def file_url(document_id: str) -> str:
    """Return the API path that serves the original file of a document."""
    return f"/api/documents/{quote(document_id)}/file"


def case_records(kb, filters: Filters | None = None) -> list[DocumentRecord]:
    """Return the ready case descriptions that pass the filters, by title."""
    records = [r for r in ready_records(kb) if r.doc_type == CASE]
    return sorted(select_records(records, filters), key=lambda r: r.title.casefold())


def case_summary(record: DocumentRecord) -> dict[str, Any]:
    """Return the fields a list of practices shows for one case description."""
    summary = record.metadata.get("summary")
    return {
        "id": record.id,
        "title": record.title,
        **key_metadata(record),
        "language": "; ".join(record_values(record, "source_language")) or None,
        "summary": str(summary) if summary is not None else None,
        "file": record.file,
    }


@dataclass
class RelatedDocument:
    """A document near another one by mean chunk embedding."""

    id: str
    title: str
    doc_type: str
    similarity: float  # cosine of the two mean embeddings
    institution: str | None
    country: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "doc_type": self.doc_type,
            "similarity": self.similarity,
            "institution": self.institution,
            "country": self.country,
        }


class CentroidCache:
    """Mean chunk embeddings of documents, kept while the document is unchanged."""

    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], np.ndarray | None] = {}
        self._lock = threading.Lock()

    def get(self, kb, records: list[DocumentRecord]) -> dict[str, np.ndarray]:
        """Return the unit-length mean embedding of each record that has chunks."""
        with self._lock:
            missing = [r for r in records if (r.id, r.indexed_at) not in self._vectors]
            for record in missing:
                ids = [f"{record.id}:{index}" for index in range(record.chunks)]
                hits = kb.vectors.get(ids)
                vectors = [hit.embedding for hit in hits if hit.embedding is not None]
                centroid = None
                if vectors:
                    mean = np.asarray(vectors, dtype=np.float64).mean(axis=0)
                    norm = float(np.linalg.norm(mean))
                    centroid = mean / norm if norm > 0 else None
                self._vectors[(record.id, record.indexed_at)] = centroid
            found = {r.id: self._vectors[(r.id, r.indexed_at)] for r in records}
        return {key: vector for key, vector in found.items() if vector is not None}


_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _centroids(kb) -> CentroidCache:
    with _caches_lock:
        cache = _caches.get(kb)
        if cache is None:
            cache = _caches[kb] = CentroidCache()
        return cache


def validate_related(count: int) -> None:
    if not 0 <= count <= MAX_RELATED:
        raise ResearchError(
            f"invalid related={count}: ask for 0 to {MAX_RELATED} related documents"
        )


def nearest_documents(
    kb,
    record: DocumentRecord,
    candidates: list[DocumentRecord],
    count: int = DEFAULT_RELATED,
) -> list[RelatedDocument]:
    """Return up to `count` candidates nearest to `record`, most similar first."""
    validate_related(count)
    others = [c for c in candidates if c.id != record.id]
    if count == 0 or not others:
        return []
    vectors = _centroids(kb).get(kb, [record, *others])
    target = vectors.get(record.id)
    if target is None:
        return []
    scored = [
        (float(np.dot(target, vectors[other.id])), other)
        for other in others
        if other.id in vectors
    ]
    scored.sort(key=lambda item: (-item[0], item[1].title.casefold()))
    return [
        RelatedDocument(
            id=other.id,
            title=other.title,
            doc_type=other.doc_type,
            similarity=round(similarity, 4),
            institution=key_metadata(other)["institution"],
            country=record_values(other, "country"),
        )
        for similarity, other in scored[:count]
    ]


def case_record(kb, document_id: str) -> DocumentRecord:
    """Return a ready case description, or raise an error that names the id."""
    record = kb.catalogue.get(document_id)
    if record is None or record.status != READY:
        raise DocumentNotFoundError(document_id)
    if record.doc_type != CASE:
        raise NotACaseError(record)
    return record


def case_detail(kb, document_id: str, related: int = DEFAULT_RELATED) -> dict:
    """Return a case description with its fields, sources and nearest neighbours.

    `related` lists the nearest other case descriptions. `related_documents`
    lists the nearest documents that are not case descriptions, such as the
    reports a case may be based on.
    """
    validate_related(related)
    record = case_record(kb, document_id)
    records = ready_records(kb)
    cases = [r for r in records if r.doc_type == CASE]
    others = [r for r in records if r.doc_type != CASE]
    fields = {
        name: record.metadata[name]
        for name in CASE_FIELD_ORDER
        if name in record.metadata
    }
    extra = {
        name: value
        for name, value in record.metadata.items()
        if name not in fields and name not in ("type", "title")
    }
    return {
        **case_summary(record),
        "fields": fields,
        "extra_fields": extra,
        "files": record.files or [record.file],
        "file_url": file_url(record.id),
        "source": record.metadata.get("source"),
        "source_links": source_links(record.metadata.get("source")),
        "text_language": record.language,
        "indexed_at": record.indexed_at,
        "related": [
            item.to_dict() for item in nearest_documents(kb, record, cases, related)
        ],
        "related_documents": [
            item.to_dict() for item in nearest_documents(kb, record, others, related)
        ],
    }
