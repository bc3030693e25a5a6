"""The store built from the reference documents: counts, pages, sections, languages."""

from __future__ import annotations

from pathlib import Path

import pytest

EXPECTED_LANGUAGES = {
    "ai4t_future-of-learning_de.md": "de",
    "ai4t_future-of-learning_fr.md": "fr",
    "ai4t_future-of-learning_it.md": "it",
    "ai4t_future-of-learning_en.md": "en",
    "cifp_privacidad-chatbots-ia-docentes_es.md": "es",
    "tekoaly-ylakoulussa_fi.html": "fi",
    "fi_tekoaly-ylakoulussa.pdf": "fi",
    "ai4t_webinaire1-compte-rendu_fr.pdf": "fr",
}


def records_by_name(kb) -> dict:
    return {Path(record.file).name: record for record in kb.documents()}


def all_chunks(kb) -> list[dict]:
    result = kb.vectors._collection.get(include=["metadatas"])
    return result["metadatas"]


def test_every_file_reported(corpus_kb):
    report = corpus_kb.ingest_report
    totals = report.totals()
    assert totals["indexed"] + totals["skipped"] + totals["failed"] == len(
        report.outcomes
    )
    assert totals["indexed"] >= 45


def test_outline_only_pdf_fails_with_reason(corpus_kb):
    failed = {
        Path(o.file).name: o.reason
        for o in corpus_kb.ingest_report.outcomes
        if o.status == "failed"
    }
    assert list(failed) == [
        "ai4t_instructions-utilisation_text-as-vector-outlines_fr.pdf"
    ]
    assert "no extractable text" in next(iter(failed.values()))


def test_chunk_count_matches_catalogue(corpus_kb):
    stats = corpus_kb.stats()
    assert corpus_kb.vectors.count() == stats["chunks"]
    per_document: dict[str, int] = {}
    for meta in all_chunks(corpus_kb):
        per_document[meta["document_id"]] = per_document.get(meta["document_id"], 0) + 1
    for record in corpus_kb.documents():
        assert per_document.get(record.id) == record.chunks, record.file


def test_pdf_chunks_have_pages_in_range(corpus_kb):
    pages = {record.id: record.pages for record in corpus_kb.documents()}
    pdf_chunks = [m for m in all_chunks(corpus_kb) if m["doc_type"] == "pdf"]
    assert len(pdf_chunks) > 100
    for meta in pdf_chunks:
        assert 1 <= meta["page"] <= pages[meta["document_id"]]


def test_keynote_pdf_has_sixteen_pages(corpus_kb):
    record = records_by_name(corpus_kb)[
        "asset_ai-and-future-of-work_keynote-script_en.pdf"
    ]
    assert record.pages == 16
    chunk_pages = {
        m["page"] for m in all_chunks(corpus_kb) if m["document_id"] == record.id
    }
    assert chunk_pages == set(range(1, 17))


def test_markdown_chunks_carry_headings(corpus_kb):
    record = records_by_name(corpus_kb)["drinvet_myths-and-facts.md"]
    sections = [
        m.get("section") for m in all_chunks(corpus_kb) if m["document_id"] == record.id
    ]
    assert any(s and s.startswith("Myth 6") for s in sections)
    assert all(
        m.get("page") is None
        for m in all_chunks(corpus_kb)
        if m["doc_type"] == "markdown"
    )


def test_liascript_noise_is_not_indexed(corpus_kb):
    record = records_by_name(corpus_kb)["asset_ethics-of-ai-in-tvet_liascript.md"]
    texts = corpus_kb.vectors._collection.get(
        where={"document_id": record.id}, include=["documents"]
    )["documents"]
    joined = "\n".join(texts)
    assert "border-radius" not in joined
    assert "SafetyBot" in joined


@pytest.mark.parametrize(("name", "language"), sorted(EXPECTED_LANGUAGES.items()))
def test_document_language_detected(corpus_kb, name, language):
    assert records_by_name(corpus_kb)[name].language == language


def test_docx_and_text_copies_are_both_indexed(corpus_kb):
    records = records_by_name(corpus_kb)
    docx = records["asset_integrating-ai-in-tvet-strategy.docx"]
    text = records["asset_integrating-ai-in-tvet-strategy_deepsearch.txt"]
    assert docx.doc_type == "docx"
    assert text.doc_type == "text"
    assert docx.chunks > 20
    assert text.chunks > 20
