"""Keyword index, hybrid ranking, filters and batch search on real stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from kb import keyword
from kb.filters import FilterError, parse_filters
from kb.keyword import KeywordIndex, analyze, query_terms
from kb.retrieval import fuse
from kb.service import KnowledgeBase
from kb.settings import Settings


def test_analyze_stems_per_language():
    assert analyze("Opettajien tekoälyn", "fi") == analyze("opettajat tekoäly", "fi")
    assert analyze("Lehrerinnen Ausbildung", "de") == analyze(
        "Lehrerin Ausbildungen", "de"
    )
    assert analyze("the simulators", "en") == ["simul"]
    assert analyze("die Simulatoren", "de") == ["simulator"]


def test_query_terms_cover_index_languages():
    terms = query_terms("teachers training", ["en", "fi"])
    assert "teacher" in terms
    assert "train" in terms


def test_keyword_index_updates_in_place(tmp_path):
    index = KeywordIndex(tmp_path / "k.sqlite3")
    index.add("a", ["a:0"], ["welding simulator for apprentices"], "en")
    index.add("b", ["b:0"], ["chatbot privacy policy"], "en")
    assert [c for c, _ in index.search("welding", 5)] == ["a:0"]
    index.delete("a")
    assert index.search("welding", 5) == []
    assert [c for c, _ in index.search("privacy", 5)] == ["b:0"]


def test_keyword_index_survives_reopen(tmp_path):
    KeywordIndex(tmp_path / "k.sqlite3").add("a", ["a:0"], ["Talent Focus Week"], "en")
    reopened = KeywordIndex(tmp_path / "k.sqlite3")
    assert [c for c, _ in reopened.search("talent week", 5)] == ["a:0"]


def test_keyword_search_respects_document_filter(tmp_path):
    index = KeywordIndex(tmp_path / "k.sqlite3")
    index.add("a", ["a:0"], ["welding simulator"], "en")
    index.add("b", ["b:0"], ["welding torch"], "en")
    assert [c for c, _ in index.search("welding", 5, {"b"})] == ["b:0"]
    assert index.search("welding", 5, set()) == []


def _welding_index(path):
    index = KeywordIndex(path)
    for n in range(40):
        words = ["welding"] * (1 + n % 3) + ["simulator"] * (n % 2) + ["safety"]
        words += ["apprentice"] * (n % 5) + [f"topic{n}"] * (1 + n % 4)
        index.add(f"d{n}", [f"d{n}:0"], [" ".join(words)], "en")
    return index


def test_rescored_candidates_rank_as_fts5_does(tmp_path, monkeypatch):
    index = _welding_index(tmp_path / "k.sqlite3")
    query = "welding simulator safety apprentice topic7"
    exact = index.search(query, 40)
    # topic7 is in 1 row and simulator in 20: a budget of 21 rows selects the
    # candidates by those two terms, which are then scored with every term.
    monkeypatch.setattr(keyword, "POSTINGS_BUDGET", 21)
    monkeypatch.setattr(index, "_rank", _spy(index._rank, calls := []))
    cut = index.search(query, 10)
    assert calls == [["topic7", "simul"]]
    candidates = {f"d{n}:0" for n in range(40) if n % 2 or n == 7}
    expected = [(c, score) for c, score in exact if c in candidates][:10]
    assert [c for c, _ in cut] == [c for c, _ in expected]
    assert [s for _, s in cut] == pytest.approx([s for _, s in expected], rel=1e-6)


def _spy(rank, calls):
    def spy(terms, *args, **kwargs):
        calls.append(list(terms))
        return rank(terms, *args, **kwargs)

    return spy


def test_candidate_selection_keeps_the_rarest_terms(tmp_path, monkeypatch):
    index = _welding_index(tmp_path / "k.sqlite3")
    monkeypatch.setattr(keyword, "POSTINGS_BUDGET", 25)
    monkeypatch.setattr(index, "_rank", _spy(index._rank, calls := []))
    index.search("welding simulator topic3 apprentice", 5)
    # topic3 is in 1 row, simulator in 20, apprentice in 32, welding in 40.
    assert calls == [["topic3", "simul"]]


def test_keyword_totals_follow_writes_and_upgrade(tmp_path):
    path = tmp_path / "k.sqlite3"
    index = KeywordIndex(path)
    index.add("a", ["a:0", "a:1"], ["welding simulator", "welding torch safety"], "en")
    index.add("b", ["b:0"], ["chatbot privacy"], "en")
    index.add("a", ["a:0"], ["welding apprentices"], "en")  # replaced in place
    plan = index.plan("welding")
    assert (plan.chunks, plan.tokens) == (2, 4)
    assert plan.frequencies == {"weld": 1}
    index.delete("b")
    assert (index.plan("x").chunks, index.plan("x").tokens) == (1, 2)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE totals")
    reopened = KeywordIndex(path)  # an index written before the totals existed
    assert (reopened.plan("x").chunks, reopened.plan("x").tokens) == (1, 2)
    reopened.reset()
    assert reopened.plan("x").chunks == 0


def test_language_added_by_another_process_is_stemmed_for(tmp_path):
    path = tmp_path / "k.sqlite3"
    reader = KeywordIndex(path)
    KeywordIndex(path).add("en", ["en:0"], ["welding simulators"], "en")
    assert reader.languages() == ["en"]
    # A second writer, as another process would, adds a German document.
    KeywordIndex(path).add("de", ["de:0"], ["Die Lehrerinnen schweißen"], "de")
    assert reader.languages() == ["de", "en"]
    assert [c for c, _ in reader.search("Lehrerin", 5)] == ["de:0"]


def test_fuse_ranks_shared_items_first():
    fused = fuse([["x", "y", "z"], ["y", "w"]])
    assert [item for item, _ in fused][:2] == ["y", "x"]


def test_fuse_weights_scale_each_ranking():
    fused = dict(fuse([["x"], ["y"]], weights=[1.0, 0.5]))
    assert fused["x"] == pytest.approx(1 / 61)
    assert fused["y"] == pytest.approx(0.5 / 61)


def test_search_names_ranks_by_rare_names_only(tmp_path):
    index = KeywordIndex(tmp_path / "k.sqlite3")
    texts = [f"apprentices practise welding in week {n}" for n in range(60)]
    index.add("a", [f"a:{n}" for n in range(60)], texts, "en")
    index.add("b", ["b:0"], ["Das Projekt DiAgnostiK im Handwerk"], "de")
    query = "Which welding week does the DiAgnostiK project plan?"
    assert [c for c, _ in index.search_names(query, 5)] == ["b:0"]
    assert index.search_names("Which welding week is planned?", 5) == []


def test_parse_filters_groups_repeated_fields():
    assert parse_filters(["technology=VR", "technology=AR", "country=Spain"]) == {
        "technology": ["VR", "AR"],
        "country": ["Spain"],
    }


@pytest.mark.parametrize("item", ["technology", "colour=red", "country="])
def test_parse_filters_rejects_bad_items(item):
    with pytest.raises(FilterError):
        parse_filters([item])


def test_hybrid_finds_exact_name(corpus_kb):
    passages = corpus_kb.search("Smart Education Readiness Index SEAMEO", top_k=3)
    assert any("Smart Education Readiness Index" in p.passage for p in passages)


def test_english_question_finds_german_document_by_name(corpus_kb):
    question = "Which level of AI does the DiAgnostiK craft project leave out?"
    passages = corpus_kb.search(question, top_k=3)
    assert "diagnostik" in passages[0].file


def test_hybrid_restores_missed_neighbour(corpus_kb, monkeypatch):
    """HNSW can miss a true neighbour, so hybrid search restores its dense rank."""
    question = (
        "Which level of AI involvement does the DiAgnostiK craft-training project"
        " deliberately leave out, and what risks make it problematic?"
    )
    vectors = corpus_kb.retriever.vectors
    stored = vectors._collection.get(include=["embeddings", "metadatas"])
    matrix = np.asarray(stored["embeddings"])
    owners = [meta["document_id"] for meta in stored["metadatas"]]

    def exact_nearest(skip):
        def nearest(embedding, top_k, document_ids=None):
            cosines = matrix @ np.asarray(embedding)
            ranked = [
                (stored["ids"][i], float(cosines[i]))
                for i in np.argsort(-cosines)
                if document_ids is None or owners[i] in document_ids
            ]
            return [hit for hit in ranked if hit[0] != skip][:top_k]

        return nearest

    monkeypatch.setattr(vectors, "nearest", exact_nearest(skip=None))
    expected = corpus_kb.search(question, top_k=5)
    target = expected[0]
    assert "diagnostik" in target.file
    monkeypatch.setattr(vectors, "nearest", exact_nearest(skip=target.chunk_id))
    degraded = corpus_kb.search(question, top_k=5)
    assert [p.chunk_id for p in degraded] == [p.chunk_id for p in expected]
    assert degraded[0].similarity == pytest.approx(target.similarity, abs=1e-4)


def test_filter_applies_before_ranking(corpus_kb):
    query = "welding simulator training costs"
    unfiltered = corpus_kb.search(query, top_k=5)
    assert all(p.language == "en" for p in unfiltered)
    filtered = corpus_kb.search(query, top_k=5, filters={"language": ["es"]})
    assert len(filtered) == 5
    assert {p.language for p in filtered} == {"es"}


def test_filter_by_file_name(corpus_kb):
    passages = corpus_kb.search(
        "simulator", top_k=4, filters={"file": ["drinvet_myths-and-facts.md"]}
    )
    assert passages
    assert {Path(p.file).name for p in passages} == {"drinvet_myths-and-facts.md"}


def test_case_filters_match_list_values(cases_kb):
    passages = cases_kb.search(
        "training",
        top_k=10,
        filters={"technology": ["simulator"], "country": ["France"]},
    )
    names = {Path(p.file).name for p in passages}
    assert names == {"caterpillar-france-virtual-welding-training.md"}


def test_every_mode_returns_ranked_passages(corpus_kb):
    for mode in ("dense", "keyword", "hybrid"):
        passages = corpus_kb.search("Instructor 2.0 role", top_k=4, mode=mode)
        assert len(passages) == 4, mode
        scores = [p.score for p in passages]
        assert scores == sorted(scores, reverse=True), mode


def test_delete_removes_from_both_indexes(tmp_path):
    source = tmp_path / "marker.txt"
    source.write_text("The zebrafinch protocol trains welders on Fridays.")
    kb = KnowledgeBase(Settings(data_dir=tmp_path / "data"))
    outcome = kb.ingest_file(source)
    assert kb.search("zebrafinch", top_k=3, mode="keyword")
    kb.delete(outcome.document_id)
    assert kb.search("zebrafinch", top_k=3, mode="keyword") == []
    reopened = KnowledgeBase(Settings(data_dir=tmp_path / "data"))
    assert reopened.search("zebrafinch", top_k=3, mode="hybrid") == []


def test_keyword_index_rebuilt_from_vectors(tmp_path):
    source = tmp_path / "note.txt"
    source.write_text("Holographic lathe training for first-year apprentices.")
    settings = Settings(data_dir=tmp_path / "data")
    KnowledgeBase(settings).ingest_file(source)
    for path in settings.data_dir.glob("keyword.sqlite3*"):
        path.unlink()
    reopened = KnowledgeBase(settings)
    hits = reopened.search("holographic lathe", top_k=1, mode="keyword")
    assert [Path(p.file).name for p in hits] == ["note.txt"]
