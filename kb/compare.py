"""Compare practices: the best passage on a topic for each group of documents.

A comparison searches the topic once, `k` passages deep, over the documents
that pass the filters. Each passage belongs to every group of its document
(a case set in France and Italy belongs to both countries), and each group
gets the best ranked passage it has. Every group with at least one passage
in the results appears exactly once. Documents without a value in the group
field join no group, and the comparison counts them as `ungrouped`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from typing import Any

from kb.facets import (
    DEFAULT_DEPTH,
    ResearchError,
    key_metadata,
    ready_records,
    record_values,
    search_filtered,
    select_records,
)
from kb.filters import Filters

GROUP_FIELDS = (
    "country",
    "institution",
    "technology",
    "use_case",
    "sector",
    "year",
    "language",
    "source_language",
    "doc_type",
)
# Case description fields shown with each row; lists stay lists in JSON.
ROW_METADATA = ("institution", "country", "technology", "use_case", "sector", "year")
CSV_COLUMNS = (
    "group",
    "rank",
    "score",
    "similarity",
    "document_id",
    "title",
    "file",
    "page",
    "section",
    "chunk_id",
    "language",
    "doc_type",
    *ROW_METADATA,
    "passage",
)
LIST_SEPARATOR = "; "


@dataclass
class CompareRow:
    """The best passage of one group, with its citation and key metadata."""

    group: str
    rank: int  # position of the passage in the search results, from 1
    score: float  # ranking score of the search mode
    similarity: float  # cosine similarity of the passage to the topic
    document_id: str
    title: str
    file: str
    page: int | None
    section: str | None
    passage: str
    chunk_id: str
    language: str
    doc_type: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        metadata = row.pop("metadata")
        return {**row, **{name: metadata.get(name) for name in ROW_METADATA}}


@dataclass
class Comparison:
    """One row per group for a topic, ordered by the rank of the row's passage."""

    query: str
    group_by: str
    depth: int
    passages: int  # passages the search returned
    rows: list[CompareRow]
    ungrouped: int  # matched documents without a value in the group field
    filters: dict[str, list[str]] = field(default_factory=dict)
    min_similarity: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "group_by": self.group_by,
            "filters": self.filters,
            "depth": self.depth,
            "min_similarity": self.min_similarity,
            "passages": self.passages,
            "groups": len(self.rows),
            "ungrouped": self.ungrouped,
            "rows": [row.to_dict() for row in self.rows],
        }


def validate_group_by(group_by: str) -> None:
    if group_by not in GROUP_FIELDS:
        raise ResearchError(
            f"unknown group_by {group_by!r}; use one of: {', '.join(GROUP_FIELDS)}"
        )


def compare(
    kb,
    query: str,
    group_by: str,
    filters: Filters | None = None,
    depth: int = DEFAULT_DEPTH,
    mode: str | None = None,
    min_similarity: float = 0.0,
) -> Comparison:
    """Return the best passage on `query` for each value of `group_by`.

    Passages below `min_similarity` (cosine similarity to the topic) do not
    count as matches, so a group whose passages are all below it is left out.
    """
    query = (query or "").strip()
    if not query:
        raise ResearchError("the topic is empty: give words to compare on")
    validate_group_by(group_by)
    if not -1.0 <= min_similarity <= 1.0:
        raise ResearchError(
            f"invalid min_similarity {min_similarity}: use a cosine between -1 and 1"
        )
    records = select_records(ready_records(kb), filters)
    by_id = {record.id: record for record in records}
    # NOTE: a group whose passages all rank below `depth` is left out. A larger
    # depth, up to MAX_DEPTH, also finds groups that match the topic only weakly.
    passages = search_filtered(kb, query, filters, records, depth, mode)

    rows: dict[str, CompareRow] = {}
    ungrouped: set[str] = set()
    for rank, passage in enumerate(passages, start=1):
        record = by_id.get(passage.document_id)
        if record is None or passage.similarity < min_similarity:
            continue
        groups = record_values(record, group_by)
        if not groups:
            ungrouped.add(record.id)
        for group in groups:
            if group in rows:
                continue
            rows[group] = CompareRow(
                group=group,
                rank=rank,
                score=passage.score,
                similarity=passage.similarity,
                document_id=passage.document_id,
                title=passage.title,
                file=passage.file,
                page=passage.page,
                section=passage.section,
                passage=passage.passage,
                chunk_id=passage.chunk_id,
                language=record.language,
                doc_type=record.doc_type,
                metadata=key_metadata(record),
            )
    ordered = sorted(rows.values(), key=lambda row: (row.rank, row.group.casefold()))
    return Comparison(
        query=query,
        group_by=group_by,
        depth=depth,
        passages=len(passages),
        rows=ordered,
        ungrouped=len(ungrouped),
        filters={name: list(values) for name, values in (filters or {}).items()},
        min_similarity=min_similarity,
    )


def csv_cell(value: Any) -> str:
    """Format a row value for CSV: lists joined with `; `, None as empty."""
    if value is None:
        return ""
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return str(value)


def comparison_csv(comparison: Comparison) -> str:
    """Return the rows as CSV text with a header row (columns `CSV_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in comparison.rows:
        values = row.to_dict()
        writer.writerow([csv_cell(values[name]) for name in CSV_COLUMNS])
    return buffer.getvalue()
