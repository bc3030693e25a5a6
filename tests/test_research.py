"""Facets, comparisons, the case catalogue and the guidebook, on real stores."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from kb.compare import CSV_COLUMNS, compare, comparison_csv, csv_cell
from kb.errors import DocumentNotFoundError, KBError
from kb.facets import (
    FACET_FIELDS,
    ResearchError,
    facet_counts,
    parse_research_filters,
)
from kb.filters import FilterError
from kb.guidebook import build_guidebook, markdown_text, write_guidebook
from kb.practices import NotACaseError, case_detail, case_records
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.conftest import ROOT, LiveServer, subprocess_env

CASE_FILES = sorted((ROOT / "corpus" / "cases").glob("*.md"))
TOPIC = "assessment with VR simulators"
HOSTILE_TITLE = "Welding <script>alert(1)</script> simulators in class"


def front_matter(path: Path) -> dict:
    """Read the YAML front matter of a case file, independently of the loader."""
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---\n")[1])


def as_list(value) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def direct_counts(records, field: str) -> dict[str, tuple[int, int]]:
    """Count (documents, case descriptions) per value straight from the records."""
    counts: dict[str, list[int]] = {}
    for record in records:
        if field in ("language", "doc_type"):
            values = [getattr(record, field)]
        elif field == "source_language":
            values = as_list(record.metadata.get("language"))
            values = values if record.doc_type == "case" else []
        else:
            values = as_list(record.metadata.get(field))
        for value in set(values):
            entry = counts.setdefault(value, [0, 0])
            entry[0] += 1
            entry[1] += record.doc_type == "case"
    return {value: (docs, cases) for value, (docs, cases) in counts.items()}


def facet_dict(counts, field: str) -> dict[str, tuple[int, int]]:
    return {item.value: (item.documents, item.cases) for item in counts.facets[field]}


def chunk_text(kb: KnowledgeBase, chunk_id: str) -> tuple[str, str]:
    """Return (document id, text) of a stored chunk, read from Chroma directly."""
    stored = kb.vectors._collection.get(
        ids=[chunk_id], include=["documents", "metadatas"]
    )
    return stored["metadatas"][0]["document_id"], stored["documents"][0]


# -- facets -------------------------------------------------------------------


def test_facets_equal_catalogue_count(cases_kb):
    records = cases_kb.catalogue.list()
    counts = facet_counts(cases_kb)
    assert counts.documents == len(records) == len(CASE_FILES)
    assert counts.cases == len(CASE_FILES)
    for field in FACET_FIELDS:
        assert facet_dict(counts, field) == direct_counts(records, field), field


def test_facets_match_case_files(cases_kb):
    fronts = [front_matter(path) for path in CASE_FILES]
    counts = facet_counts(cases_kb)
    france = sum("France" in as_list(f["country"]) for f in fronts)
    assert facet_dict(counts, "country")["France"] == (france, france)
    vr = sum("VR" in f["technology"] for f in fronts)
    assert facet_dict(counts, "technology")["VR"] == (vr, vr)
    spanish = sum(f["language"] == "es" for f in fronts)
    assert facet_dict(counts, "source_language")["es"] == (spanish, spanish)
    assert facet_dict(counts, "doc_type") == {"case": (len(fronts), len(fronts))}


def test_facets_value_counts_once_per_document(cases_kb):
    counts = facet_counts(cases_kb)
    total = sum(item.documents for item in counts.facets["country"])
    expected = sum(len(set(as_list(front_matter(p)["country"]))) for p in CASE_FILES)
    assert total == expected
    assert total > counts.documents  # several cases name more than one country


def test_facets_with_filters(cases_kb):
    counts = facet_counts(cases_kb, filters={"technology": ["vr"]})
    records = [r for r in cases_kb.catalogue.list() if "VR" in r.metadata["technology"]]
    assert counts.documents == len(records)
    assert facet_dict(counts, "technology")["VR"] == (len(records), len(records))
    for field in FACET_FIELDS:
        assert facet_dict(counts, field) == direct_counts(records, field), field


def test_facets_sector_filter(cases_kb):
    counts = facet_counts(cases_kb, filters={"sector": ["Welding"]})
    assert counts.documents == 1
    assert facet_dict(counts, "institution") == {"Caterpillar France": (1, 1)}


def test_facets_for_query_count_search_documents(cases_kb):
    query = "chatbots for study counselling"
    counts = facet_counts(cases_kb, query, depth=10)
    found = {p.document_id for p in cases_kb.search(query, top_k=10)}
    records = [r for r in cases_kb.catalogue.list() if r.id in found]
    assert counts.query == query
    assert counts.depth == 10
    assert counts.documents == len(found)
    assert 0 < counts.documents < len(CASE_FILES)
    for field in FACET_FIELDS:
        assert facet_dict(counts, field) == direct_counts(records, field), field


def test_facets_reject_bad_filters():
    with pytest.raises(FilterError, match="unknown filter field colour"):
        parse_research_filters(["colour=red"])
    with pytest.raises(FilterError, match="write field=value"):
        parse_research_filters(["technology"])
    assert parse_research_filters(["sector=welding", "country=Spain"]) == {
        "sector": ["welding"],
        "country": ["Spain"],
    }


def test_facets_reject_bad_depth(cases_kb):
    with pytest.raises(ResearchError, match="k=0"):
        facet_counts(cases_kb, "welding", depth=0)
    with pytest.raises(ResearchError, match="k=500"):
        facet_counts(cases_kb, "welding", depth=500)


# -- compare ------------------------------------------------------------------


def expected_groups(kb, passages, field: str) -> dict[str, int]:
    """Return the best (first) rank of each group among the search results."""
    ranks: dict[str, int] = {}
    for rank, passage in enumerate(passages, start=1):
        record = kb.catalogue.get(passage.document_id)
        for value in as_list(record.metadata.get(field)):
            ranks.setdefault(value, rank)
    return ranks


@pytest.mark.parametrize("group_by", ["country", "technology", "use_case"])
def test_compare_groups_are_complete(cases_kb, group_by):
    comparison = compare(cases_kb, TOPIC, group_by, depth=50)
    passages = cases_kb.search(TOPIC, top_k=50)
    expected = expected_groups(cases_kb, passages, group_by)
    groups = [row.group for row in comparison.rows]
    assert len(groups) == len(set(groups))
    assert set(groups) == set(expected)
    assert {row.group: row.rank for row in comparison.rows} == expected
    assert comparison.passages == len(passages)


def test_compare_rows_cite_real_passages(cases_kb):
    comparison = compare(cases_kb, TOPIC, "institution")
    assert comparison.rows
    for row in comparison.rows:
        document_id, text = chunk_text(cases_kb, row.chunk_id)
        assert document_id == row.document_id
        assert text == row.passage
        record = cases_kb.catalogue.get(row.document_id)
        assert row.title == record.title
        assert row.file == record.file
        assert row.group == record.metadata["institution"]
        assert row.section
        assert 0 < row.similarity <= 1


def test_compare_document_joins_each_group(cases_kb):
    comparison = compare(cases_kb, TOPIC, "country")
    rows = {row.group: row for row in comparison.rows}
    found = {p.document_id for p in cases_kb.search(TOPIC, top_k=50)}
    records = [r for r in cases_kb.catalogue.list() if r.id in found]
    several = [r for r in records if len(r.metadata["country"]) > 1]
    assert several
    for record in several:
        for country in record.metadata["country"]:
            assert country in rows
    for row in comparison.rows:
        assert row.group in cases_kb.catalogue.get(row.document_id).metadata["country"]
    # A country named by one document only is cited from that document.
    for country, row in rows.items():
        holders = [r for r in records if country in r.metadata["country"]]
        if len(holders) == 1:
            assert row.document_id == holders[0].id


def test_compare_min_similarity_drops_weak_matches(cases_kb):
    comparison = compare(cases_kb, TOPIC, "country", min_similarity=0.45)
    passages = [p for p in cases_kb.search(TOPIC, top_k=50) if p.similarity >= 0.45]
    assert {row.group for row in comparison.rows} == set(
        expected_groups(cases_kb, passages, "country")
    )
    assert all(row.similarity >= 0.45 for row in comparison.rows)
    assert len(comparison.rows) < len(compare(cases_kb, TOPIC, "country").rows)


def test_compare_with_filter_keeps_matching_documents(cases_kb):
    comparison = compare(cases_kb, TOPIC, "country", filters={"technology": ["VR"]})
    vr = {r.id for r in cases_kb.catalogue.list() if "VR" in r.metadata["technology"]}
    assert comparison.rows
    assert {row.document_id for row in comparison.rows} <= vr


def test_compare_rejects_bad_input(cases_kb):
    with pytest.raises(ResearchError, match="unknown group_by 'colour'"):
        compare(cases_kb, TOPIC, "colour")
    with pytest.raises(ResearchError, match="topic is empty"):
        compare(cases_kb, "   ", "country")
    with pytest.raises(ResearchError, match="k=0"):
        compare(cases_kb, TOPIC, "country", depth=0)
    with pytest.raises(ResearchError, match="min_similarity"):
        compare(cases_kb, TOPIC, "country", min_similarity=2)


def test_compare_csv_has_json_rows(cases_kb):
    comparison = compare(cases_kb, "chatbots for study counselling", "use_case")
    reader = csv.DictReader(io.StringIO(comparison_csv(comparison)))
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    rows = list(reader)
    expected = comparison.to_dict()["rows"]
    assert len(rows) == len(expected) > 0
    for parsed, row in zip(rows, expected, strict=True):
        assert parsed == {name: csv_cell(row[name]) for name in CSV_COLUMNS}


def test_facets_and_compare_on_reference_documents(corpus_kb):
    records = corpus_kb.catalogue.list(status="ready")
    counts = facet_counts(corpus_kb)
    assert counts.documents == len(records)
    assert counts.cases == sum(record.doc_type == "case" for record in records)
    for field in FACET_FIELDS:
        assert facet_dict(counts, field) == direct_counts(records, field), field
    assert {"pdf", "markdown", "html"} <= set(facet_dict(counts, "doc_type"))

    topic = "virtual reality welding simulator"
    comparison = compare(corpus_kb, topic, "language")
    passages = corpus_kb.search(topic, top_k=50)
    languages: dict[str, int] = {}
    for rank, passage in enumerate(passages, start=1):
        languages.setdefault(
            corpus_kb.catalogue.get(passage.document_id).language, rank
        )
    assert {row.group: row.rank for row in comparison.rows} == languages
    for row in comparison.rows:
        document_id, text = chunk_text(corpus_kb, row.chunk_id)
        assert document_id == row.document_id
        assert text == row.passage


# -- catalogue ----------------------------------------------------------------


def test_case_list_filters(cases_kb):
    spanish = sorted(
        front_matter(p)["title"]
        for p in CASE_FILES
        if "Spain" in as_list(front_matter(p)["country"])
    )
    titles = sorted(r.title for r in case_records(cases_kb, {"country": ["spain"]}))
    assert titles == spanish
    assert len(case_records(cases_kb)) == len(CASE_FILES)


def test_case_detail_has_fields_and_sources(cases_kb):
    path = ROOT / "corpus" / "cases" / "ikea-vr-onboarding-experience.md"
    front = front_matter(path)
    record = next(r for r in cases_kb.catalogue.list() if r.title == front["title"])
    detail = case_detail(cases_kb, record.id)
    for name in ("institution", "sector", "target_group", "source", "licence"):
        assert detail["fields"][name] == front[name]
    assert detail["fields"]["country"] == ["International"]
    assert detail["fields"]["year"] == 2018
    assert detail["files"] == [record.file]
    assert detail["file_url"] == f"/api/documents/{record.id}/file"
    assert detail["source"] == front["source"]


def test_related_cases_by_mean_embedding(cases_kb):
    records = cases_kb.catalogue.list()
    record = records[0]
    detail = case_detail(cases_kb, record.id, related=len(records))

    def centroid(document_id: str) -> np.ndarray:
        stored = cases_kb.vectors._collection.get(
            where={"document_id": document_id}, include=["embeddings"]
        )
        mean = np.asarray(stored["embeddings"]).mean(axis=0)
        return mean / np.linalg.norm(mean)

    related = detail["related"]
    assert len(related) == len(records) - 1
    assert record.id not in {item["id"] for item in related}
    similarities = [item["similarity"] for item in related]
    assert similarities == sorted(similarities, reverse=True)
    target = centroid(record.id)
    for item in related:
        expected = float(target @ centroid(item["id"]))
        assert item["similarity"] == pytest.approx(expected, abs=1e-3)
    assert detail["related_documents"] == []
    assert len(case_detail(cases_kb, record.id, related=2)["related"]) == 2


def test_case_detail_unknown_id(cases_kb):
    with pytest.raises(DocumentNotFoundError, match="'0000000000000000' not found"):
        case_detail(cases_kb, "0000000000000000")
    with pytest.raises(KBError, match="related=99"):
        case_detail(cases_kb, cases_kb.catalogue.list()[0].id, related=99)


# -- guidebook ----------------------------------------------------------------

VOID = {"meta", "link", "br", "hr", "img", "input", "source", "wbr", "col", "area"}


class StructureChecker(HTMLParser):
    """Record tags, ids, links, text and nesting errors of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.ids: list[str] = []
        self.text: list[str] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if "id" in attributes:
            self.ids.append(attributes["id"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data) -> None:
        self.text.append(data)


def parse(html: str) -> StructureChecker:
    checker = StructureChecker()
    checker.feed(html)
    checker.close()
    return checker


def test_guidebook_html_is_well_formed(cases_kb):
    page = parse(build_guidebook(cases_kb).html)
    assert page.doctype
    assert page.errors == []
    assert page.stack == []
    names = [tag for tag, _ in page.tags]
    assert names.count("html") == names.count("head") == names.count("body") == 1
    assert len(page.ids) == len(set(page.ids))
    anchors = [a["href"][1:] for t, a in page.tags if t == "a" and a["href"][0] == "#"]
    assert anchors
    assert set(anchors) <= set(page.ids)


def test_guidebook_is_self_contained(cases_kb):
    page = parse(build_guidebook(cases_kb, base_url="http://127.0.0.1:8000").html)
    names = [tag for tag, _ in page.tags]
    assert "script" not in names
    assert "img" not in names
    for tag, attributes in page.tags:
        if tag in ("link", "iframe", "source", "video", "audio", "object", "embed"):
            raise AssertionError(f"<{tag}> loads a resource: {attributes}")
        assert "src" not in attributes, (tag, attributes)
        assert not any(name.startswith("on") for name in attributes), attributes
    styles = "".join(page.text)
    assert "@import" not in styles
    assert "url(" not in styles
    policy = next(
        a["content"]
        for t, a in page.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    )
    assert "default-src 'none'" in policy


def test_guidebook_lists_cases_grouped(cases_kb):
    book = build_guidebook(cases_kb)
    page = parse(book.html)
    fronts = [front_matter(path) for path in CASE_FILES]
    assert book.cases == len(fronts)
    text = "".join(page.text)
    for front in fronts:
        assert front["title"] in text
        assert markdown_text(front["title"]) in book.markdown
    use_cases = {u for f in fronts for u in f["use_case"]}
    technologies = {t for f in fronts for t in f["technology"]}
    for value in use_cases:
        slug = value.replace(" ", "-")
        assert f"use-case-{slug}" in page.ids
        assert f'<a id="use-case-{slug}"></a>' in book.markdown
    for value in technologies:
        assert f"technology-{value.lower().replace(' ', '-')}" in page.ids
    assert "Facts and figures" in text
    france = sum("France" in as_list(f["country"]) for f in fronts)
    assert f'<td>France</td><td class="count">{france}</td>' in book.html
    assert f"| France | {france} |" in book.markdown


def test_guidebook_filter_and_files(cases_kb, tmp_path):
    book = build_guidebook(cases_kb, {"country": ["Spain"]})
    assert book.cases == 2
    assert "2 case descriptions with country = Spain" in book.html
    html_path, markdown_path = write_guidebook(book, tmp_path / "out")
    assert html_path.read_text(encoding="utf-8") == book.html
    assert markdown_path.read_text(encoding="utf-8") == book.markdown
    assert "IKEA" not in book.html


@pytest.fixture(scope="module")
def hostile_kb(tmp_path_factory) -> KnowledgeBase:
    """A store with a case whose fields carry markup, and one plain text file."""
    folder = tmp_path_factory.mktemp("hostile-cases")
    fields = {
        "type": "case",
        "title": HOSTILE_TITLE,
        "institution": "Omnia <b>college</b>",
        "country": ["Finland"],
        "technology": ["VR"],
        "use_case": ["immersive training"],
        "sector": "welding & metal",
        "target_group": "apprentices",
        "language": "fi",
        "year": 2024,
        "source": "Report https://example.org/report?a=1&b=2 and notes",
        "licence": "CC BY 4.0",
        "summary": 'Apprentices weld on a simulator. <img src="x" onerror="alert(2)">',
    }
    body = (
        f"# {HOSTILE_TITLE}\n\n## Practice\n\nApprentices practise welding seams "
        "on a VR simulator <script>alert(3)</script> before the workshop, with "
        "welding & metal gaps < 5 mm.\n"
    )
    text = "---\n" + yaml.safe_dump(fields, allow_unicode=True) + "---\n\n" + body
    (folder / "hostile-case.md").write_text(text, encoding="utf-8")
    (folder / "welding-report.txt").write_text(
        "A report on welding simulators used by apprentices in Finland.",
        encoding="utf-8",
    )
    kb = KnowledgeBase(Settings(data_dir=folder / "data"))
    report = kb.ingest([folder])
    assert report.totals()["indexed"] == 2, report.to_dict()
    return kb


def test_guidebook_escapes_document_text(hostile_kb):
    book = build_guidebook(hostile_kb)
    assert "<script>" not in book.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in book.html
    assert "gaps &lt; 5 mm" in book.html
    assert "alert(3)" not in book.html  # the loader drops script blocks
    assert "<img" not in book.html
    assert "<b>college</b>" not in book.html
    page = parse(book.html)
    assert page.errors == []
    assert all(tag not in ("script", "img") for tag, _ in page.tags)
    assert "Omnia &lt;b&gt;college&lt;/b&gt;" in book.html
    assert HOSTILE_TITLE in "".join(page.text)
    links = [a["href"] for t, a in page.tags if t == "a"]
    assert "https://example.org/report?a=1&b=2" in links
    assert re.search(r"(?<!\\)<(script|img|b)\b", book.markdown) is None
    assert r'\<img src="x" onerror="alert(2)"\>' in book.markdown
    assert r"\<script\>alert(1)\</script\>" in book.markdown


def test_case_detail_of_non_case_is_rejected(hostile_kb):
    text = next(r for r in hostile_kb.catalogue.list() if r.doc_type == "text")
    case = next(r for r in hostile_kb.catalogue.list() if r.doc_type == "case")
    with pytest.raises(NotACaseError, match="is a text document"):
        case_detail(hostile_kb, text.id)
    detail = case_detail(hostile_kb, case.id)
    assert detail["related"] == []
    assert [item["id"] for item in detail["related_documents"]] == [text.id]
    assert detail["source_links"] == ["https://example.org/report?a=1&b=2"]


# -- HTTP API -----------------------------------------------------------------


@pytest.fixture(scope="module")
def client(cases_kb):
    from api.app import create_api

    with (
        LiveServer(create_api(cases_kb)) as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        yield client


def test_api_facets_match_library(client, cases_kb):
    assert client.get("/api/facets").json() == facet_counts(cases_kb).to_dict()
    params = {"q": "welding", "k": 5, "filter": ["technology=simulator"]}
    body = client.get("/api/facets", params=params).json()
    expected = facet_counts(cases_kb, "welding", {"technology": ["simulator"]}, 5)
    assert body == expected.to_dict()


def test_api_compare_csv_matches_json(client):
    params = {"q": TOPIC, "group_by": "technology"}
    body = client.get("/api/compare", params=params).json()
    response = client.get("/api/compare", params={**params, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "comparison.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    assert body["groups"] == len(body["rows"]) == len(rows) > 0
    for parsed, row in zip(rows, body["rows"], strict=True):
        assert parsed == {name: csv_cell(row[name]) for name in CSV_COLUMNS}


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/api/compare", {"q": "vr", "group_by": "colour"}, 400, "colour"),
        ("/api/compare", {"q": "vr", "filter": "colour=red"}, 400, "colour"),
        ("/api/compare", {"q": "vr", "format": "xml"}, 422, "format"),
        ("/api/compare", {"group_by": "country"}, 422, '"q"'),
        ("/api/compare", {"q": "vr", "k": 0}, 422, '"k"'),
        ("/api/facets", {"filter": "sector"}, 400, "field=value"),
        ("/api/cases", {"filter": "colour=red"}, 400, "colour"),
        ("/api/cases/0000000000000000", {}, 404, "not found"),
        ("/api/guidebook", {"format": "pdf"}, 422, "format"),
    ],
)
def test_api_rejects_bad_input(client, path, params, status, message):
    response = client.get(path, params=params)
    assert response.status_code == status
    assert message in json.dumps(response.json()["detail"])


def test_api_cases_and_detail(client, cases_kb):
    listing = client.get("/api/cases", params={"filter": "country=Spain"}).json()
    assert len(listing) == 2
    assert {item["country"][0] for item in listing} == {"Spain"}
    detail = client.get(f"/api/cases/{listing[0]['id']}", params={"related": 3}).json()
    assert detail == case_detail(cases_kb, listing[0]["id"], 3)
    assert len(detail["related"]) == 3


def test_api_guidebook_download(client, cases_kb):
    response = client.get("/api/guidebook", params={"filter": "sector=welding"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert 'filename="guidebook.html"' in response.headers["content-disposition"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = parse(response.text)
    assert page.errors == []
    record = case_records(cases_kb, {"sector": ["welding"]})[0]
    server = str(client.base_url).rstrip("/")
    file_link = f"{server}/api/documents/{record.id}/file"
    assert file_link in [a.get("href") for t, a in page.tags if t == "a"]
    markdown = client.get("/api/guidebook", params={"format": "md"})
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.text.startswith("# Guidebook")


# -- command line -------------------------------------------------------------


def run_kb(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "kb.cli", *args],
        cwd=ROOT,
        env=subprocess_env(data_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_cli_facets_json(cases_kb):
    data_dir = cases_kb.settings.data_dir
    result = run_kb(data_dir, "facets", "--json", "--filter", "country=France")
    expected = facet_counts(cases_kb, filters={"country": ["France"]})
    assert json.loads(result.stdout) == expected.to_dict()


def test_cli_guidebook_writes_both_files(cases_kb, tmp_path):
    result = run_kb(cases_kb.settings.data_dir, "guidebook", "--out", str(tmp_path))
    assert "wrote 14 case descriptions" in result.stdout
    html = (tmp_path / "guidebook.html").read_text(encoding="utf-8")
    markdown = (tmp_path / "guidebook.md").read_text(encoding="utf-8")
    assert parse(html).errors == []
    assert markdown.count('<a id="case-') == len(CASE_FILES)


def test_cli_compare_csv(cases_kb, tmp_path):
    out = tmp_path / "comparison.csv"
    run_kb(
        cases_kb.settings.data_dir,
        "compare",
        TOPIC,
        "--group-by",
        "country",
        "--format",
        "csv",
        "--out",
        str(out),
    )
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    expected = compare(cases_kb, TOPIC, "country")
    assert [row["group"] for row in rows] == [row.group for row in expected.rows]
    assert [row["chunk_id"] for row in rows] == [row.chunk_id for row in expected.rows]


def test_cli_rejects_unknown_group(cases_kb):
    result = subprocess.run(
        [sys.executable, "-m", "kb.cli", "compare", "vr", "--group-by", "colour"],
        cwd=ROOT,
        env=subprocess_env(cases_kb.settings.data_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2
    assert "unknown group_by 'colour'" in result.stderr
