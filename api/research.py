"""Routes for researchers: facets, comparisons, the case catalogue and the guidebook."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.models import ErrorOut, SearchModeName
from kb.compare import compare, comparison_csv
from kb.facets import DEFAULT_DEPTH, MAX_DEPTH, facet_counts, parse_research_filters
from kb.guidebook import HTML_FILE, MARKDOWN_FILE, build_guidebook
from kb.practices import (
    DEFAULT_RELATED,
    MAX_RELATED,
    case_detail,
    case_records,
    case_summary,
)
from kb.service import KnowledgeBase

FILTER_HELP = (
    "field=value, repeatable, e.g. technology=VR; the search filter fields plus "
    "sector and source_language"
)
# A browser that shows the guidebook instead of saving it may load nothing at all.
GUIDEBOOK_CSP = "default-src 'none'; style-src 'unsafe-inline'"


class FacetValueOut(BaseModel):
    value: str
    documents: int = Field(description="Documents with this value.")
    cases: int = Field(description="Case descriptions with this value.")


class FacetsOut(BaseModel):
    query: str | None
    filters: dict[str, list[str]]
    depth: int | None = Field(description="Passages searched for the query.")
    documents: int
    cases: int
    facets: dict[str, list[FacetValueOut]]


class CompareRowOut(BaseModel):
    group: str
    rank: int = Field(description="Position of the passage in the search results.")
    score: float = Field(description="Ranking score of the search mode.")
    similarity: float = Field(description="Cosine similarity to the topic.")
    document_id: str
    title: str
    file: str
    page: int | None
    section: str | None
    passage: str
    chunk_id: str
    language: str
    doc_type: str
    institution: str | None
    country: list[str] | None
    technology: list[str] | None
    use_case: list[str] | None
    sector: str | None
    year: int | str | None


class ComparisonOut(BaseModel):
    query: str
    group_by: str
    filters: dict[str, list[str]]
    depth: int
    min_similarity: float
    passages: int = Field(description="Passages the search returned.")
    groups: int
    ungrouped: int = Field(
        description="Matched documents without a value in the group field."
    )
    rows: list[CompareRowOut]


class CaseOut(BaseModel):
    id: str
    title: str
    institution: str | None
    country: list[str]
    technology: list[str]
    use_case: list[str]
    sector: str | None
    year: int | str | None
    language: str | None = Field(description="Language of the source.")
    summary: str | None
    file: str


class RelatedOut(BaseModel):
    id: str
    title: str
    doc_type: str
    similarity: float = Field(description="Cosine of the mean chunk embeddings.")
    institution: str | None
    country: list[str]


class CaseDetailOut(CaseOut):
    fields: dict[str, Any]
    extra_fields: dict[str, Any]
    files: list[str]
    file_url: str
    source: str | None
    source_links: list[str]
    text_language: str
    indexed_at: str
    related: list[RelatedOut]
    related_documents: list[RelatedOut]


def add_research_routes(app: FastAPI, kb: KnowledgeBase, reader) -> None:
    """Add the research routes, each guarded by the `reader` dependency."""
    errors = {400: {"model": ErrorOut}}

    @app.get(
        "/api/facets", response_model=FacetsOut, responses=errors, dependencies=[reader]
    )
    def facets(
        q: str | None = Query(
            default=None, max_length=2000, description="Count only what this matches."
        ),
        filter: list[str] = Query(default=[], description=FILTER_HELP),
        k: int = Query(
            default=DEFAULT_DEPTH, ge=1, le=MAX_DEPTH, description="Passages searched."
        ),
        mode: SearchModeName | None = Query(default=None, description="Ranking."),
    ) -> dict:
        filters = parse_research_filters(filter)
        return facet_counts(kb, q, filters, depth=k, mode=mode).to_dict()

    @app.get(
        "/api/compare",
        response_model=ComparisonOut,
        responses={**errors, 200: {"content": {"text/csv": {}}}},
        dependencies=[reader],
    )
    def compare_practices(
        q: str = Query(min_length=1, max_length=2000, description="Topic."),
        group_by: str = Query(
            default="country",
            description="institution, country, technology, use_case, sector, year, "
            "language, source_language or doc_type",
        ),
        filter: list[str] = Query(default=[], description=FILTER_HELP),
        k: int = Query(
            default=DEFAULT_DEPTH, ge=1, le=MAX_DEPTH, description="Passages searched."
        ),
        mode: SearchModeName | None = Query(default=None, description="Ranking."),
        min_similarity: float = Query(
            default=0.0, ge=-1.0, le=1.0, description="Lowest cosine that matches."
        ),
        format: Literal["json", "csv"] = Query(default="json"),
    ):
        comparison = compare(
            kb,
            q,
            group_by,
            parse_research_filters(filter),
            depth=k,
            mode=mode,
            min_similarity=min_similarity,
        )
        if format == "csv":
            return Response(
                comparison_csv(comparison).encode("utf-8"),
                media_type="text/csv; charset=utf-8",
                headers={
                    "Content-Disposition": 'attachment; filename="comparison.csv"'
                },
            )
        return comparison.to_dict()

    @app.get(
        "/api/cases",
        response_model=list[CaseOut],
        responses=errors,
        dependencies=[reader],
    )
    def cases(filter: list[str] = Query(default=[], description=FILTER_HELP)):
        records = case_records(kb, parse_research_filters(filter))
        return [case_summary(record) for record in records]

    @app.get(
        "/api/cases/{document_id}",
        response_model=CaseDetailOut,
        responses={404: {"model": ErrorOut}, **errors},
        dependencies=[reader],
    )
    def case(
        document_id: str,
        related: int = Query(
            default=DEFAULT_RELATED,
            ge=0,
            le=MAX_RELATED,
            description="Nearest case descriptions and other documents to list.",
        ),
    ) -> dict:
        return case_detail(kb, document_id, related)

    @app.get(
        "/api/guidebook",
        responses={
            **errors,
            200: {"content": {"text/html": {}, "text/markdown": {}}},
        },
        dependencies=[reader],
    )
    def guidebook(
        request: Request,
        filter: list[str] = Query(default=[], description=FILTER_HELP),
        format: Literal["html", "md"] = Query(default="html"),
    ) -> Response:
        base_url = str(request.base_url).rstrip("/")
        book = build_guidebook(kb, parse_research_filters(filter), base_url)
        if format == "md":
            body, media_type, name = book.markdown, "text/markdown", MARKDOWN_FILE
        else:
            body, media_type, name = book.html, "text/html", HTML_FILE
        return Response(
            body.encode("utf-8"),
            media_type=f"{media_type}; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Content-Security-Policy": GUIDEBOOK_CSP,
            },
        )
