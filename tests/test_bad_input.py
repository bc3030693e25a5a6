"""Inputs that break document stores: each fails alone and loses nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.conftest import reference_path


@pytest.fixture()
def kb(tmp_path) -> KnowledgeBase:
    return KnowledgeBase(Settings(data_dir=tmp_path / "data"))


def statuses(report) -> list[tuple[str, str]]:
    return [(Path(o.file).name, o.status) for o in report.outcomes]


def test_slow_pdf_times_out_and_batch_goes_on(tmp_path):
    pdfs = reference_path("corpus", "pdfs")
    kb = KnowledgeBase(Settings(data_dir=tmp_path / "data", parse_timeout=2))
    report = kb.ingest(
        [
            pdfs / "fi_tekoaly-ylakoulussa.pdf",
            pdfs / "pypdf_geotopo_117pages_de.pdf",  # parses in about 5 s
            pdfs / "ai4t_webinaire1-compte-rendu_fr.pdf",
        ]
    )
    assert [status for _, status in statuses(report)] == [
        "indexed",
        "failed",
        "indexed",
    ]
    assert "timed out after 2 s" in report.outcomes[1].reason
    assert kb.stats()["documents"] == 2


def test_truncated_pdf_fails_alone(kb, tmp_path):
    source = reference_path("corpus", "pdfs", "ai4t_webinaire1-compte-rendu_fr.pdf")
    data = source.read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: len(data) // 2])
    good = tmp_path / "good.txt"
    good.write_text("Teachers compare chatbots for privacy.")
    report = kb.ingest([cut, good])
    assert statuses(report) == [("cut.pdf", "failed"), ("good.txt", "indexed")]
    assert "not a readable PDF" in report.outcomes[0].reason
    assert kb.catalogue.list(status="indexing") == []


def test_scanned_pdf_reports_no_text(kb):
    source = reference_path(
        "corpus", "pdfs", "ai4t_instructions-utilisation_text-as-vector-outlines_fr.pdf"
    )
    outcome = kb.ingest_file(source)
    assert outcome.status == "failed"
    assert "no extractable text" in outcome.reason
    assert kb.vectors.count() == 0
    [failure] = kb.catalogue.failures()
    assert failure["file"] == str(source)
    assert failure["reason"] == outcome.reason


def test_failure_is_listed_until_the_file_passes(kb, tmp_path):
    path = tmp_path / "notes.pdf"
    path.write_bytes(b"%PDF-1.4 cut off")
    assert kb.ingest_file(path).status == "failed"
    assert [f["file"] for f in kb.catalogue.failures()] == [str(path)]
    reopened = KnowledgeBase(kb.settings)
    assert [f["file"] for f in reopened.catalogue.failures()] == [str(path)]
    path.unlink()
    path = path.with_suffix(".txt")
    path.write_text("Teachers compare chatbots for privacy.")
    assert kb.ingest_file(path).status == "indexed"
    assert [f["file"] for f in kb.catalogue.failures()] == [str(tmp_path / "notes.pdf")]
    from kb.curation import prune

    prune(kb, [tmp_path])
    assert kb.catalogue.failures() == []


def test_long_summary_and_long_name_index_normally(kb, tmp_path):
    summary = " ".join(f"word{i} about welding practice" for i in range(500))
    name = ("a" * 236) + ".md"
    path = tmp_path / name
    path.write_text(
        f"---\ntitle: Long metadata\nsummary: {summary}\n---\n"
        "# Long metadata\n\nThe body says apprentices weld twice a week.\n",
        encoding="utf-8",
    )
    outcome = kb.ingest_file(path)
    assert outcome.status == "indexed"
    assert outcome.chunks <= 20
    body_hits = kb.search("apprentices weld twice a week", top_k=1, mode="keyword")
    assert "word1 " not in body_hits[0].passage


def test_writes_are_split_at_batch_limit(kb, tmp_path):
    kb.vectors.max_batch = (
        25  # Chroma's own limit is 5461; a low one exercises splitting
    )
    path = tmp_path / "long.txt"
    path.write_text(
        " ".join(f"Sentence {i} explains a welding step." for i in range(900)),
        encoding="utf-8",
    )
    outcome = kb.ingest_file(path)
    assert outcome.chunks > 25
    assert kb.vectors.count() == outcome.chunks
    assert kb.keywords.count() == outcome.chunks


def test_same_pdf_twice_then_renamed_then_restart(kb, tmp_path):
    source = reference_path("corpus", "pdfs", "fi_tekoaly-ylakoulussa.pdf")
    first = tmp_path / "article.pdf"
    shutil.copy(source, first)
    indexed = kb.ingest_file(first)
    assert indexed.status == "indexed"
    assert kb.ingest_file(first).reason == "unchanged"
    renamed = tmp_path / "article-copy.pdf"
    shutil.copy(source, renamed)
    assert kb.ingest_file(renamed).status == "skipped"
    restarted = KnowledgeBase(kb.settings)
    assert restarted.ingest_file(first).reason == "unchanged"
    assert restarted.vectors.count() == indexed.chunks
    hits = restarted.search("tekoäly opettajat", top_k=10)
    ids = [p.chunk_id for p in hits]
    assert len(ids) == len(set(ids))
    record = restarted.document(indexed.document_id)
    assert sorted(record.files) == sorted([str(first), str(renamed)])


def test_known_bytes_are_skipped_without_parsing(kb, tmp_path, monkeypatch):
    path = tmp_path / "notes.txt"
    path.write_text("Apprentices rehearse welding on a simulator first.")
    indexed = kb.ingest_file(path)
    copy = tmp_path / "copy.txt"
    shutil.copy(path, copy)

    def no_parsing(*args, **kwargs):
        raise AssertionError("an indexed file was parsed again")

    monkeypatch.setattr("kb.service.load_document", no_parsing)
    again = kb.ingest([path, copy])
    assert [(o.status, o.reason) for o in again.outcomes] == [
        ("skipped", "unchanged"),
        ("skipped", f"same content as {path}"),
    ]
    assert kb.document(indexed.document_id).files == sorted([str(path), str(copy)])
    # Forcing a rewrite parses the file again.
    with pytest.raises(AssertionError, match="parsed again"):
        kb.ingest_file(path, force=True)


def test_changed_file_replaces_its_chunks(kb, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("The old plan uses a Zanzibar welding rig.")
    old = kb.ingest_file(path)
    path.write_text("The new plan uses a Kilimanjaro painting booth.")
    new = kb.ingest_file(path)
    assert new.status == "indexed"
    assert new.document_id != old.document_id
    assert kb.search("Zanzibar", top_k=3, mode="keyword") == []
    assert [r.id for r in kb.documents()] == [new.document_id]


def test_file_over_memory_limit_fails_alone(tmp_path):
    kb = KnowledgeBase(Settings(data_dir=tmp_path / "data", parse_memory_mb=64))
    big = tmp_path / "big.txt"
    line = "Apprentices practise welding with the simulator in small groups.\n"
    big.write_text(line * 700_000)  # about 45 MB of text
    good = tmp_path / "good.txt"
    good.write_text("Teachers compare chatbots for privacy.")
    report = kb.ingest([big, good])
    assert statuses(report) == [("big.txt", "failed"), ("good.txt", "indexed")]
    assert "needed more than 64 MB (KB_PARSE_MEMORY_MB)" in report.outcomes[0].reason
    assert [record.file for record in kb.documents()] == [str(good)]


def cyclic_pdf() -> bytes:
    """A PDF whose page tree lists itself and whose resources contain themselves."""
    text = b"BT /F1 12 Tf 72 700 Td (Welding apprentices train) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources 5 0 R /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
        b"<< /Font << /F1 6 0 R >> /XObject << /Self 5 0 R >> /Parent 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    data = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(data))
        data += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(data)
    data += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    data += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    data += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    return data + b"startxref\n%d\n%%%%EOF\n" % xref


def test_pdf_with_cyclic_references_fails_alone(tmp_path):
    kb = KnowledgeBase(Settings(data_dir=tmp_path / "data", parse_timeout=30))
    cyclic = tmp_path / "cyclic.pdf"
    cyclic.write_bytes(cyclic_pdf())
    good = tmp_path / "good.txt"
    good.write_text("Teachers compare chatbots for privacy.")
    report = kb.ingest([cyclic, good])
    assert statuses(report) == [("cyclic.pdf", "failed"), ("good.txt", "indexed")]
    assert "cyclic page references" in report.outcomes[0].reason
    assert kb.vectors.count() == kb.stats()["chunks"]


def _texts(count: int, word: str = "welding") -> list:
    from kb.service import TextItem

    return [
        TextItem(f"set/{n}", f"Record {n}", f"Apprentices practise {word} step {n}.")
        for n in range(count)
    ]


def test_text_batch_single_vector_write(kb, monkeypatch):
    calls = []
    add_many = kb.vectors.add_many
    monkeypatch.setattr(
        kb.vectors, "add_many", lambda rows: (calls.append(len(rows)), add_many(rows))
    )
    items = _texts(5)
    items.append(items[2].__class__("set/copy", "Copy", items[2].text))
    report = kb.ingest_texts(items)
    assert [o.status for o in report.outcomes] == ["indexed"] * 5 + ["skipped"]
    assert report.outcomes[5].reason == "same content as set/2"
    assert calls == [5]
    assert kb.vectors.count() == kb.keywords.count() == 5
    assert kb.document(report.outcomes[2].document_id).files == ["set/2", "set/copy"]


def test_failed_text_batch_leaves_nothing_behind(kb, monkeypatch):
    add_many = kb.vectors.add_many

    def half_then_fail(rows):
        add_many(rows[: len(rows) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(kb.vectors, "add_many", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        kb.ingest_texts(_texts(4))
    assert kb.catalogue.list() == []
    assert kb.vectors.count() == kb.keywords.count() == 0
    monkeypatch.undo()
    report = kb.ingest_texts(_texts(4))
    assert [o.status for o in report.outcomes] == ["indexed"] * 4
    assert kb.vectors.count() == kb.keywords.count() == 4


def test_text_written_by_another_writer_meanwhile_is_skipped(kb, monkeypatch):
    items = _texts(3)
    other = KnowledgeBase(kb.settings)  # a second writer on the same data folder
    copy = items[1].__class__("other/1", "Other", items[1].text)
    embed = kb._embed_chunks

    def embed_while_other_writes(documents):
        vectors = embed(documents)
        assert other.ingest_texts([copy]).outcomes[0].status == "indexed"
        return vectors

    monkeypatch.setattr(kb, "_embed_chunks", embed_while_other_writes)
    report = kb.ingest_texts(items)
    assert [(o.status, o.reason) for o in report.outcomes] == [
        ("indexed", ""),
        ("skipped", "same content as other/1"),
        ("indexed", ""),
    ]
    assert kb.vectors.count() == kb.keywords.count() == 3
