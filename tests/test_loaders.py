"""Loaders and chunking on files written by the tests."""

from __future__ import annotations

import pytest

from ingest import load_document
from ingest.loaders import LoadError, load_docx
from kb.embedding import load_embedder


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("all-MiniLM-L6-v2")


def load(path, embedder, chunk_size=200):
    return load_document(path, embedder.tokenize, chunk_size, 32)


MARKDOWN = """---
title: Welding with simulators
author:
tags: [vr, welding]
funding:
  programme: Erasmus+
  year: 2023
---
# Welding with simulators

Intro text about the handbook and why simulators matter in training.

## Before you buy

### Sensors

Optical sensors are disturbed by sunlight, so check the room first.

<!-- a comment that must not be indexed -->
<script>alert("nope")</script>

```
# not a heading, inside a code fence
```
"""


def test_markdown_keeps_heading_path(tmp_path, embedder):
    filler = "Trainees repeat the weld until the seam is even. " * 15
    path = tmp_path / "welding.md"
    path.write_text(
        f"# Welding\n\n{filler}\n\n## Before you buy\n\n{filler}\n\n"
        f"### Sensors\n\nOptical sensors dislike sunlight. {filler}\n",
        encoding="utf-8",
    )
    document = load(path, embedder)
    sections = [chunk.section for chunk in document.chunks]
    assert sections[0] == "Welding"
    assert "Before you buy > Sensors" in sections
    assert document.title == "Welding"


def test_short_sections_are_packed_under_common_heading(tmp_path, embedder):
    path = tmp_path / "welding.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    document = load(path, embedder)
    assert [chunk.section for chunk in document.chunks] == ["Welding with simulators"]
    assert document.title == "Welding with simulators"


def test_markdown_front_matter_becomes_metadata(tmp_path, embedder):
    path = tmp_path / "welding.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    document = load(path, embedder)
    assert document.metadata["tags"] == ["vr", "welding"]
    assert document.metadata["funding"] == {"programme": "Erasmus+", "year": 2023}
    assert "author" not in document.metadata


def test_markdown_drops_comments_and_scripts(tmp_path, embedder):
    path = tmp_path / "welding.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    text = " ".join(chunk.text for chunk in load(path, embedder).chunks)
    assert "a comment that must not be indexed" not in text
    assert "alert" not in text
    assert "sunlight" in text


def test_html_indexes_visible_text_only(tmp_path, embedder):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>AI in class</title><style>p{color:red}</style></head>"
        "<body><h1>AI in class</h1><p>Teachers use chatbots for feedback.</p>"
        "<script>var secret = 'hidden';</script><h2>Risks</h2>"
        "<p>Data protection needs care.</p></body></html>",
        encoding="utf-8",
    )
    document = load(path, embedder)
    text = " ".join(chunk.text for chunk in document.chunks)
    assert document.title == "AI in class"
    assert "chatbots for feedback" in text
    assert "secret" not in text
    assert "color:red" not in text


def test_docx_headings_become_sections(tmp_path, embedder):
    import docx

    document = docx.Document()
    document.add_heading("Strategy", level=1)
    document.add_paragraph("Institutions should start with a readiness check.")
    document.add_heading("Teacher training", level=2)
    document.add_paragraph("Staff need hands-on workshops with the tools.")
    path = tmp_path / "strategy.docx"
    document.save(path)
    loaded = load_docx(path, path.read_bytes())
    assert loaded.doc_type == "docx"
    assert [unit.section for unit in loaded.units] == [
        "Strategy",
        "Strategy > Teacher training",
    ]


def test_text_file_is_one_unit_without_section(tmp_path, embedder):
    path = tmp_path / "notes.txt"
    path.write_text("Meeting notes.\n\nPartners collected practices.", encoding="utf-8")
    document = load(path, embedder)
    assert len(document.units) == 1
    assert document.chunks[0].section is None
    assert document.chunks[0].page is None


def test_chunks_fit_model_with_header(tmp_path, embedder):
    path = tmp_path / "long.txt"
    sentence = "Virtual reality welding training lowers material costs for schools. "
    path.write_text(sentence * 400, encoding="utf-8")
    document = load(path, embedder, chunk_size=embedder.max_chunk_tokens)
    assert len(document.chunks) > 10
    longest = max(
        embedder.count_tokens(embedder.passage_text("A" * 500, "B" * 500, c.text))
        for c in document.chunks
    )
    assert longest <= embedder.max_seq_length


def test_chunk_offsets_point_into_unit(tmp_path, embedder):
    path = tmp_path / "long.txt"
    text = " ".join(f"Sentence number {i} talks about simulators." for i in range(300))
    path.write_text(text, encoding="utf-8")
    document = load(path, embedder, chunk_size=64)
    unit_text = document.units[0].text
    for chunk in document.chunks:
        assert unit_text[chunk.start_char : chunk.end_char] == chunk.text


def test_case_description_with_bad_fields_names_them(tmp_path, embedder):
    path = tmp_path / "case.md"
    path.write_text(
        "---\ntype: case\ntitle: A welding case\ninstitution: School\n"
        "country: Finland\ntechnology: [hologram]\nuse_case: [assessment]\n"
        "sector: welding\ntarget_group: students\nlanguage: en\nyear: soon\n"
        "source: handbook\nlicence: CC BY 4.0\n---\n# A welding case\n\nText here.\n",
        encoding="utf-8",
    )
    with pytest.raises(LoadError) as error:
        load(path, embedder)
    message = str(error.value)
    assert "field 'technology.0'" in message
    assert "field 'year'" in message


def test_case_description_accepts_single_values(tmp_path, embedder):
    path = tmp_path / "case.md"
    path.write_text(
        "---\ntype: case\ntitle: A welding case\ninstitution: School\n"
        "country: Finland\ntechnology: VR\nuse_case: assessment\n"
        "sector: welding\ntarget_group: students\nlanguage: en\nyear: 2024\n"
        "source: handbook\nlicence: CC BY 4.0\n---\n# A welding case\n\n"
        "Students weld in a simulator before the workshop.\n",
        encoding="utf-8",
    )
    document = load(path, embedder)
    assert document.doc_type == "case"
    assert document.metadata["technology"] == ["VR"]
    assert document.metadata["country"] == ["Finland"]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "empty"),
        ("fake.pdf", b"hello, not a pdf", "not a PDF"),
        ("fake.docx", b"plain text", "not a DOCX"),
        ("image.exe", b"MZ\x90\x00", "unsupported file type"),
        ("binary.txt", b"abc\x00\x01\x02", "binary content"),
        ("only-markup.md", b"<!-- nothing -->\n", "no extractable text"),
        ("broken.md", b"---\ntitle: [unclosed\n---\ntext\n", "invalid YAML"),
    ],
)
def test_bad_file_raises_clear_reason(tmp_path, embedder, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError, match=reason):
        load(path, embedder)
