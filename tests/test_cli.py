"""The `kb` console script, run as a subprocess the way a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kb.catalogue import Catalogue
from tests.conftest import ROOT, subprocess_env

KB = [sys.executable, "-m", "kb.cli"]


def run_kb(
    data_dir: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*KB, *args],
        cwd=ROOT,
        env=subprocess_env(data_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kb {' '.join(args)} failed:\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A store with three case descriptions and one broken file."""
    source = tmp_path_factory.mktemp("source")
    for name in sorted((ROOT / "corpus" / "cases").glob("*.md"))[:3]:
        (source / name.name).write_bytes(name.read_bytes())
    (source / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    directory = tmp_path_factory.mktemp("data")
    run_kb(directory, "ingest", str(source))
    return directory


def test_ingest_report_lists_each_file(data_dir, tmp_path):
    source = tmp_path / "more"
    source.mkdir()
    (source / "notes.txt").write_text("Teachers rotate triads on one simulator.")
    (source / "empty.md").write_bytes(b"")
    result = run_kb(data_dir, "ingest", "--json", str(source))
    report = json.loads(result.stdout)
    outcomes = {Path(f["file"]).name: f for f in report["files"]}
    assert outcomes["notes.txt"]["status"] == "indexed"
    assert outcomes["empty.md"]["status"] == "failed"
    assert "empty" in outcomes["empty.md"]["reason"]
    assert report["totals"]["indexed"] == 1
    assert report["totals"]["failed"] == 1


def test_ingest_text_report_has_totals(data_dir):
    cases = str(ROOT / "corpus" / "cases")
    first = run_kb(data_dir, "ingest", cases)
    assert first.stdout.count("same content as") == 3
    assert f"in {data_dir}" in first.stdout
    again = run_kb(data_dir, "ingest", cases)
    assert again.stdout.count("unchanged") == len(list(Path(cases).glob("*.md")))
    assert "0 indexed" in again.stdout


def test_ask_json_has_citation_fields(data_dir):
    result = run_kb(
        data_dir, "ask", "--json", "How did IKEA use virtual reality for onboarding?"
    )
    answer = json.loads(result.stdout)
    assert answer["found"] is True
    citation = answer["citations"][0]
    expected = {"n", "document_id", "title", "file", "page", "section", "passage"}
    assert expected <= set(citation)
    assert citation["file"].endswith("ikea-vr-onboarding-experience.md")
    assert citation["page"] is None


def test_search_json_returns_k_passages(data_dir):
    result = run_kb(data_dir, "search", "--json", "-k", "2", "virtual museum")
    passages = json.loads(result.stdout)
    assert len(passages) == 2
    assert passages[0]["score"] >= passages[1]["score"]


def test_ask_text_prints_numbered_sources(data_dir):
    result = run_kb(data_dir, "ask", "Who is the Easy-to-Read museum guide for?")
    assert "[1]" in result.stdout
    assert "score" in result.stdout


def test_model_change_asks_for_reindex(data_dir, tmp_path):
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(data_dir), str(copy)], check=True)
    Catalogue(copy / "catalogue.sqlite3").set_meta("embedding_model", "other-model")
    result = run_kb(copy, "search", "welding", check=False)
    assert result.returncode == 2
    assert "other-model" in result.stderr
    assert "kb reindex" in result.stderr


def test_unknown_model_setting_is_explained(data_dir):
    result = subprocess.run(
        [*KB, "search", "welding"],
        cwd=ROOT,
        env={**subprocess_env(data_dir), "KB_MODEL": "/nonexistent/model"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "KB_MODEL='/nonexistent/model'" in result.stderr


def test_batch_search_writes_one_line_per_query(data_dir, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        '{"id": "q1", "query": "virtual museum"}\n'
        '{"id": 2, "query": "apprentice training"}\n',
        encoding="utf-8",
    )
    result = run_kb(data_dir, "search", "--queries", str(queries), "-k", "3")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == ["q1", 2]
    assert all(len(row["results"]) == 3 for row in rows)
    assert {"file", "page", "section", "passage", "score"} <= set(rows[0]["results"][0])


def test_search_filter_option(data_dir):
    result = run_kb(
        data_dir, "search", "--json", "-k", "5", "--filter", "country=Italy", "museum"
    )
    passages = json.loads(result.stdout)
    italian = {
        "ai4t-teacher-training-five-countries.md",
        "artemia-easy-to-read-virtual-museum.md",
        "youthink-immersive-media-literacy.md",
    }
    assert passages
    assert {Path(p["file"]).name for p in passages} <= italian


def test_unknown_filter_field_is_an_error(data_dir):
    result = run_kb(data_dir, "search", "--filter", "colour=red", "museum", check=False)
    assert result.returncode == 2
    assert "unknown filter field colour" in result.stderr
