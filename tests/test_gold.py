"""Retrieval and citation quality on the gold questions.

The floors sit just under the values measured with the default hybrid
ranking when they were set, because Chroma's approximate (HNSW) index can swap
near-tied passages between builds.
Raise them when retrieval improves; never lower them.
"""

from __future__ import annotations

import pytest

from evals.gold import contains_fact, evaluate, is_relevant, load_gold
from tests.conftest import reference_path

FLOORS = {
    "all answerable": {"recall@5": 0.93, "mrr@10": 0.83, "fact_in_top5": 0.83},
    "factual": {"recall@5": 0.93, "mrr@10": 0.82},
    "paraphrase": {"recall@5": 1.0, "mrr@10": 0.95},
    "comparison": {"recall@5": 1.0, "mrr@10": 0.95},
    "crosslingual": {"recall@5": 0.75, "mrr@10": 0.70},
    "pdf": {"recall@5": 0.66, "mrr@10": 0.80},
}


@pytest.fixture(scope="module")
def gold_run(corpus_kb):
    results, summary = evaluate(corpus_kb, reference_path("evals", "vet_gold.jsonl"))
    print("\nquestion type      n  recall@5  MRR@10  fact@5  cited-fact")
    for name, row in summary.items():
        if "recall@5" in row:
            print(
                f"{name:16} {row['n']:3}  {row['recall@5']:8.3f} {row['mrr@10']:7.3f}"
                f" {row['fact_in_top5']:7.3f} {row['cited_fact']:10.3f}"
            )
    return results, summary


@pytest.mark.parametrize(
    ("group", "metric", "floor"),
    [(g, m, f) for g, metrics in FLOORS.items() for m, f in metrics.items()],
)
def test_retrieval_floor(gold_run, group, metric, floor):
    _, summary = gold_run
    assert summary[group][metric] >= floor


def test_unanswerable_questions_abstain(gold_run):
    results, _ = gold_run
    unanswerable = [r for r in results if r.type == "unanswerable"]
    assert unanswerable
    assert all(not r.found for r in unanswerable)


def test_answerable_questions_are_answered(gold_run):
    results, _ = gold_run
    silent = [r.id for r in results if r.type != "unanswerable" and not r.found]
    assert silent == []


def test_citations_point_to_gold_files(gold_run):
    _, summary = gold_run
    assert summary["all answerable"]["cited_relevant"] >= 0.80
    assert summary["factual"]["cited_relevant"] >= 0.86


def test_cited_passages_hold_answer_facts(gold_run):
    _, summary = gold_run
    assert summary["factual"]["cited_fact"] >= 0.80
    assert summary["all answerable"]["cited_fact"] >= 0.70


def test_pdf_citation_names_gold_page(corpus_kb):
    gold = {q.id: q for q in load_gold(reference_path("evals", "vet_gold.jsonl"))}
    question = gold["q059"]
    answer = corpus_kb.ask(question.question)
    pdf_citations = [c.passage for c in answer.citations if c.passage.page]
    assert any(is_relevant(p.file, p.page, question.relevant) for p in pdf_citations)
    assert any(contains_fact(p.passage, question.answer_facts) for p in pdf_citations)


def test_answer_markers_match_citations(corpus_kb):
    answer = corpus_kb.ask("How can one VR simulator serve a class of twenty students?")
    assert answer.found
    numbers = [citation.n for citation in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    for n in numbers:
        assert f"[{n}]" in answer.answer
