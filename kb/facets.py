"""Facet counts: how many documents and case descriptions have each field value.

Counts cover the whole collection, or the documents that a query and filters
select. A query selects the documents of the passages that search returns for
it, `DEFAULT_DEPTH` passages deep. A document counts once for each distinct
value it has in a field, so a case description set in France and Italy adds
one to both countries.

Filters follow `kb.filters`: values compare case-insensitively and a repeated
field matches any of its values. Two fields come on top of the search filters:
`sector` and `source_language`, read from the case description fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kb.catalogue import READY, DocumentRecord
from kb.errors import KBError
from kb.filters import FILTER_FIELDS, FilterError, Filters, matching_documents

if TYPE_CHECKING:
    from kb.search import Passage

CASE = "case"  # doc_type of case descriptions
# Fields from case description metadata that search filters do not cover.
EXTRA_FILTER_FIELDS = ("sector", "source_language")
RESEARCH_FILTER_FIELDS = FILTER_FIELDS + EXTRA_FILTER_FIELDS
FACET_FIELDS = (
    "technology",
    "use_case",
    "country",
    "institution",
    "language",
    "source_language",
    "sector",
    "year",
    "doc_type",
)
FACET_LABELS = {
    "technology": "Technology",
    "use_case": "Use case",
    "country": "Country",
    "institution": "Institution",
    "language": "Language of the text",
    "source_language": "Language of the source",
    "sector": "Sector",
    "year": "Year",
    "doc_type": "Document type",
}
DEFAULT_DEPTH = 50  # passages searched when a query selects the documents
MAX_DEPTH = 200


class ResearchError(KBError):
    """A facet, comparison or catalogue request has an invalid value."""


def parse_research_filters(items: Iterable[str]) -> dict[str, list[str]]:
    """Parse `field=value` strings of search fields plus sector and source_language."""
    filters: dict[str, list[str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not value:
            raise FilterError(
                f"invalid filter {item!r}: write field=value, e.g. technology=VR"
            )
        filters.setdefault(name, []).append(value)
    validate_research_filters(filters)
    return filters


def validate_research_filters(filters: Filters) -> None:
    unknown = sorted(set(filters) - set(RESEARCH_FILTER_FIELDS))
    if unknown:
        raise FilterError(
            f"unknown filter field {', '.join(unknown)}; "
            f"use one of: {', '.join(RESEARCH_FILTER_FIELDS)}"
        )
    for name, values in filters.items():
        if not values or not all(str(value).strip() for value in values):
            raise FilterError(f"filter field {name!r} has an empty value")


def record_values(record: DocumentRecord, name: str) -> list[str]:
    """Return the distinct values of a facet field of one document, in file order.

    `language` and `doc_type` come from the catalogue record: the detected
    language of the indexed text and the loader used. `source_language` is the
    `language` field of a case description, the language its source is in.
    """
    if name in ("language", "doc_type"):
        raw: Any = getattr(record, name)
    elif name == "source_language":
        raw = record.metadata.get("language") if record.doc_type == CASE else None
    else:
        raw = record.metadata.get(name)
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    values = (str(item).strip() for item in items)
    return list(dict.fromkeys(value for value in values if value))


def key_metadata(record: DocumentRecord) -> dict[str, Any]:
    """Return the key case fields of a document in fixed types.

    `country`, `technology` and `use_case` become lists of strings, and
    `institution` and `sector` strings or None. `year` is an integer, or the
    text as given when a curator set it to something else. Curator overrides
    are not validated against the case schema, so display needs these types.
    """
    values: dict[str, Any] = {}
    for name in ("institution", "country", "technology", "use_case", "sector"):
        found = record_values(record, name)
        if name in ("institution", "sector"):
            values[name] = "; ".join(found) or None
        else:
            values[name] = found
    year = record.metadata.get("year")
    if year is not None and not isinstance(year, int):
        year = int(year) if str(year).strip().isdigit() else str(year)
    values["year"] = year
    return values


def ready_records(kb) -> list[DocumentRecord]:
    return kb.catalogue.list(status=READY)


def select_records(
    records: list[DocumentRecord], filters: Filters | None
) -> list[DocumentRecord]:
    """Return the records that match every filter field, in the order given."""
    if not filters:
        return list(records)
    validate_research_filters(filters)
    search_filters = {k: v for k, v in filters.items() if k in FILTER_FIELDS}
    allowed = (
        matching_documents(records, search_filters)
        if search_filters
        else {record.id for record in records}
    )
    selected = []
    for record in records:
        if record.id not in allowed:
            continue
        if all(
            _matches_extra(record, name, values)
            for name, values in filters.items()
            if name in EXTRA_FILTER_FIELDS
        ):
            selected.append(record)
    return selected


def _matches_extra(record: DocumentRecord, name: str, requested: list[str]) -> bool:
    present = {value.casefold() for value in record_values(record, name)}
    return any(str(value).strip().casefold() in present for value in requested)


def validate_depth(depth: int) -> None:
    if not 1 <= depth <= MAX_DEPTH:
        raise ResearchError(
            f"invalid depth k={depth}: search between 1 and {MAX_DEPTH} passages"
        )


def validate_mode(mode: str | None) -> None:
    from kb.retrieval import SEARCH_MODES  # imports the vector store libraries

    if mode is not None and mode not in SEARCH_MODES:
        raise ResearchError(
            f"unknown search mode {mode!r}; use one of: {', '.join(SEARCH_MODES)}"
        )


def search_filtered(
    kb,
    query: str,
    filters: Filters | None,
    records: list[DocumentRecord],
    depth: int = DEFAULT_DEPTH,
    mode: str | None = None,
) -> list[Passage]:
    """Return the top `depth` passages for a query among the filtered documents.

    `records` are the ready documents that pass `filters`. Without the extra
    fields this is `KnowledgeBase.search`, so the results equal /api/search.
    With them, the retriever ranks only chunks of `records`, as search does
    for its own filters, so the depth is never cut before filtering.
    """
    validate_depth(depth)
    validate_mode(mode)
    if not any(name in EXTRA_FILTER_FIELDS for name in filters or {}):
        return kb.search(query, top_k=depth, filters=filters or None, mode=mode)
    allowed = {record.id for record in records}
    if not allowed:
        return []
    return kb.retriever.search(query, depth, allowed, mode or kb.settings.search_mode)


@dataclass
class FacetValue:
    """One value of a facet field with the number of documents that have it."""

    value: str
    documents: int
    cases: int

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "documents": self.documents, "cases": self.cases}


@dataclass
class FacetCounts:
    """Counts per facet field over a set of documents."""

    documents: int
    cases: int
    facets: dict[str, list[FacetValue]]
    query: str | None = None
    filters: dict[str, list[str]] = field(default_factory=dict)
    depth: int | None = None  # passages searched for the query

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "filters": self.filters,
            "depth": self.depth,
            "documents": self.documents,
            "cases": self.cases,
            "facets": {
                name: [item.to_dict() for item in values]
                for name, values in self.facets.items()
            },
        }


def count_facets(records: Iterable[DocumentRecord]) -> FacetCounts:
    """Count documents and case descriptions per value of every facet field.

    Values are sorted by document count, most first, then alphabetically.
    """
    records = list(records)
    documents: dict[str, dict[str, int]] = {name: {} for name in FACET_FIELDS}
    cases: dict[str, dict[str, int]] = {name: {} for name in FACET_FIELDS}
    for record in records:
        for name in FACET_FIELDS:
            for value in record_values(record, name):
                documents[name][value] = documents[name].get(value, 0) + 1
                if record.doc_type == CASE:
                    cases[name][value] = cases[name].get(value, 0) + 1
    facets = {
        name: [
            FacetValue(value, count, cases[name].get(value, 0))
            for value, count in sorted(
                counts.items(), key=lambda item: (-item[1], item[0].casefold())
            )
        ]
        for name, counts in documents.items()
    }
    return FacetCounts(
        documents=len(records),
        cases=sum(1 for record in records if record.doc_type == CASE),
        facets=facets,
    )


def facet_counts(
    kb,
    query: str | None = None,
    filters: Filters | None = None,
    depth: int = DEFAULT_DEPTH,
    mode: str | None = None,
) -> FacetCounts:
    """Count facet values over the ready documents that the query and filters select.

    Without a query, every ready document that passes the filters counts. With
    one, only the documents of the top `depth` passages count.
    """
    query = (query or "").strip() or None
    records = select_records(ready_records(kb), filters)
    if query is not None:
        passages = search_filtered(kb, query, filters, records, depth, mode)
        found = {passage.document_id for passage in passages}
        records = [record for record in records if record.id in found]
    counts = count_facets(records)
    counts.query = query
    counts.filters = {name: list(values) for name, values in (filters or {}).items()}
    counts.depth = depth if query is not None else None
    return counts
