"""Curator operations: upload, metadata edits, re-indexing, deletion, checks."""

from __future__ import annotations

import contextlib
import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.cases import validate_case
from kb.catalogue import INDEXING, READY
from kb.errors import DocumentNotFoundError
from kb.service import FAILED, FileOutcome, KnowledgeBase
from kb.uploads import save_upload

logger = logging.getLogger(__name__)


def upload(
    kb: KnowledgeBase, name: str, data: bytes, metadata: dict[str, Any] | None = None
) -> FileOutcome:
    """Store an uploaded file in the data folder and index it.

    Raise UploadError for a rejected name, type or size. A file that cannot
    be parsed comes back as a failed outcome, and its copy is removed.
    """
    max_bytes = int(kb.settings.max_upload_mb * 1_000_000)
    path = save_upload(kb.settings.upload_dir, name, data, max_bytes)
    outcome = kb.ingest_file(path, overrides=metadata, file=path.name)
    if outcome.status == FAILED:
        path.unlink(missing_ok=True)
        if not any(path.parent.iterdir()):
            path.parent.rmdir()
    return outcome


def reindex_document(kb: KnowledgeBase, document_id: str) -> FileOutcome:
    """Parse and index one document again from its file, keeping its file names."""
    record = kb.document(document_id)
    links = kb.catalogue.file_links(document_id)
    outcome = kb.ingest_file(
        Path(record.abs_path), overrides=record.overrides, file=record.file, force=True
    )
    if outcome.document_id:
        for abs_path, file in links:
            kb.catalogue.add_file(abs_path, file, outcome.document_id)
    return outcome


def update_metadata(
    kb: KnowledgeBase, document_id: str, changes: dict[str, Any]
) -> FileOutcome:
    """Merge curator metadata into a document (None removes a field), re-index it."""
    record = kb.document(document_id)
    overrides = {**record.overrides, **changes}
    overrides = {key: value for key, value in overrides.items() if value is not None}
    kb.catalogue.set_overrides(document_id, overrides)
    return reindex_document(kb, document_id)


@dataclass
class CheckReport:
    """Inconsistencies between the catalogue and the two indexes."""

    interrupted: list[str] = field(default_factory=list)
    missing_vectors: list[str] = field(default_factory=list)
    missing_keywords: list[str] = field(default_factory=list)
    orphan_vectors: list[str] = field(default_factory=list)
    orphan_keywords: list[str] = field(default_factory=list)
    repaired: bool = False

    @property
    def consistent(self) -> bool:
        return not any(
            (
                self.interrupted,
                self.missing_vectors,
                self.missing_keywords,
                self.orphan_vectors,
                self.orphan_keywords,
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "consistent": self.consistent}


def check(kb: KnowledgeBase, repair: bool = False) -> CheckReport:
    """Compare catalogue, vector store and keyword index; optionally repair."""
    # The snapshot is taken between writes, so a document that another client
    # is indexing right now is not mistaken for an interrupted one.
    with kb.writing():
        records = {record.id: record for record in kb.catalogue.list()}
        vector_counts = Counter(kb.vectors.chunk_document_ids())
        keyword_counts = Counter(kb.keywords.chunk_document_ids())
    report = CheckReport()
    for document_id, record in sorted(records.items()):
        if record.status == INDEXING:
            report.interrupted.append(document_id)
        elif vector_counts.get(document_id, 0) != record.chunks:
            report.missing_vectors.append(document_id)
        elif keyword_counts.get(document_id, 0) != record.chunks:
            report.missing_keywords.append(document_id)
    report.orphan_vectors = sorted(set(vector_counts) - set(records))
    report.orphan_keywords = sorted(set(keyword_counts) - set(records))
    if repair and not report.consistent:
        _repair(kb, report)
    return report


def _repair(kb: KnowledgeBase, report: CheckReport) -> None:
    for document_id in report.orphan_vectors:
        kb.vectors.delete(document_id)
    for document_id in report.orphan_keywords:
        kb.keywords.delete(document_id)
    for document_id in report.interrupted:
        kb.delete(document_id)
    for document_id in report.missing_keywords:
        kb.keywords.delete(document_id)
    kb.fill_keyword_index()
    for document_id in report.missing_vectors:
        record = kb.catalogue.get(document_id)
        if record is not None and Path(record.abs_path).is_file():
            reindex_document(kb, document_id)
        else:
            with contextlib.suppress(DocumentNotFoundError):
                kb.delete(document_id)
    report.repaired = True
    logger.info("repaired the store: %s", report.to_dict())


def prune(kb: KnowledgeBase, folders: list[Path]) -> list[str]:
    """Forget files under `folders` that no longer exist; return their paths."""
    roots = [str(folder.resolve()) for folder in folders if folder.is_dir()]
    removed = []
    for abs_path, document_id in kb.catalogue.all_file_links():
        inside = any(abs_path.startswith(root.rstrip("/") + "/") for root in roots)
        if inside and not Path(abs_path).exists():
            kb.catalogue.remove_file(abs_path)
            record = kb.catalogue.get(document_id)
            if record is not None and record.status == READY and not record.files:
                kb.delete(document_id)
            removed.append(abs_path)
    for failure in kb.catalogue.failures():
        abs_path = failure["abs_path"]
        inside = any(abs_path.startswith(root.rstrip("/") + "/") for root in roots)
        if inside and not Path(abs_path).exists():
            kb.catalogue.clear_failure(abs_path)
    return removed


def case_markdown(fields: dict[str, Any]) -> tuple[str, str]:
    """Build a case description file from form fields; return (file name, text).

    Raise ValueError naming each invalid field, before anything is written.
    """
    front = {key: value for key, value in fields.items() if value not in (None, "", [])}
    front["type"] = "case"
    validated = validate_case(front)
    # The summary becomes the body, so that it is indexed once.
    body = validated.pop("summary", "")
    text = (
        "---\n"
        + yaml.safe_dump(validated, allow_unicode=True, sort_keys=False)
        + "---\n\n"
        + f"# {validated['title']}\n\n{body}\n"
    )
    slug = re.sub(r"[^a-z0-9]+", "-", validated["title"].lower()).strip("-")[:80]
    return f"{slug or 'case'}.md", text
