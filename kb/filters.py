"""Metadata filters, resolved against the catalogue to a set of document ids.

Filters apply before ranking: search only ever scores chunks of documents
that pass them, so a filter never empties a top-k that was cut beforehand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePath

from kb.catalogue import DocumentRecord
from kb.errors import KBError

# Fields read from the document record itself rather than from its metadata.
RECORD_FIELDS = {"language", "doc_type", "file"}
FILTER_FIELDS = (
    "technology",
    "use_case",
    "country",
    "language",
    "institution",
    "doc_type",
    "year",
    "file",
)

Filters = Mapping[str, list[str]]


class FilterError(KBError):
    """A filter names an unknown field or has no value."""


def parse_filters(items: Iterable[str]) -> dict[str, list[str]]:
    """Parse `field=value` strings; repeated fields mean any of the values."""
    filters: dict[str, list[str]] = {}
    for item in items:
        field, sep, value = item.partition("=")
        field, value = field.strip(), value.strip()
        if not sep or not value:
            raise FilterError(
                f"invalid filter {item!r}: write field=value, e.g. technology=VR"
            )
        filters.setdefault(field, []).append(value)
    validate_filters(filters)
    return filters


def validate_filters(filters: Filters) -> None:
    unknown = sorted(set(filters) - set(FILTER_FIELDS))
    if unknown:
        raise FilterError(
            f"unknown filter field {', '.join(unknown)}; "
            f"use one of: {', '.join(FILTER_FIELDS)}"
        )


def _values(record: DocumentRecord, field: str) -> list[str]:
    if field == "file":
        names = record.files or [record.file]
        return [name for path in names for name in (path, PurePath(path).name)]
    value = (
        getattr(record, field) if field in RECORD_FIELDS else record.metadata.get(field)
    )
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(item) for item in items]


def _matches(record: DocumentRecord, field: str, requested: list[str]) -> bool:
    present = {value.casefold() for value in _values(record, field)}
    for value in (item.casefold() for item in requested):
        if value in present:
            return True
        if field == "file" and any(p.endswith("/" + value) for p in present):
            return True
    return False


def matching_documents(records: Iterable[DocumentRecord], filters: Filters) -> set[str]:
    """Return the ids of the records that match every filter field."""
    validate_filters(filters)
    return {
        record.id
        for record in records
        if all(_matches(record, field, values) for field, values in filters.items())
    }


def field_values(records: Iterable[DocumentRecord]) -> dict[str, list[str]]:
    """Return the values present for each filter field except `file`, sorted."""
    values: dict[str, set[str]] = {field: set() for field in FILTER_FIELDS}
    for record in records:
        for field in FILTER_FIELDS:
            if field != "file":
                values[field].update(_values(record, field))
    return {field: sorted(found) for field, found in values.items() if found}
