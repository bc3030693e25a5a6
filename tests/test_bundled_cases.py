"""The bundled case descriptions: valid, varied and answerable."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT

CASES = sorted((ROOT / "corpus" / "cases").glob("*.md"))


def case_records(kb):
    return [r for r in kb.documents() if r.doc_type == "case"]


def test_all_cases_index_without_failure(cases_kb):
    totals = cases_kb.ingest_report.totals()
    assert len(CASES) >= 12
    assert totals["failed"] == 0
    assert totals["indexed"] == len(CASES)


def test_cases_cover_ai_and_xr(cases_kb):
    technologies = {t for r in case_records(cases_kb) for t in r.metadata["technology"]}
    assert "AI" in technologies
    assert technologies & {"VR", "AR", "MR", "XR"}


def test_cases_cover_countries_and_use_cases(cases_kb):
    records = case_records(cases_kb)
    countries = {c for r in records for c in r.metadata["country"]}
    use_cases = {u for r in records for u in r.metadata["use_case"]}
    assert len(countries) >= 5
    assert len(use_cases) >= 5


def test_case_metadata_reaches_chunks(cases_kb):
    record = next(
        r for r in case_records(cases_kb) if Path(r.file).name.startswith("ikea")
    )
    meta = cases_kb.vectors._collection.get(
        where={"document_id": record.id}, include=["metadatas"], limit=1
    )["metadatas"][0]
    assert meta["technology"] == "VR"
    assert meta["use_case"] == "immersive training; career guidance"
    assert meta["year"] == 2018


def test_question_on_cases_cites_case(cases_kb):
    answer = cases_kb.ask("Which school compared the privacy of AI chatbots?")
    assert answer.found
    assert Path(answer.citations[0].passage.file).name.startswith("cifp-manuel-antonio")
