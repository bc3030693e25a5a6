"""Retrieval and citation metrics on a gold set of VET questions.

Each line of the gold file is a JSON object with `id`, `question`, `type`,
`relevant` (a list of `{file, page, grade}`, paths relative to the corpus
root) and `answer_facts`. A retrieved passage matches a relevant entry when its
file ends with the entry's path and, for entries with a page, its page agrees.
Ranking metrics come from ranx over passage-level judgments: recall@5 is the
share of questions with a relevant passage among the first five (ranx
`hit_rate@5`), MRR@10 is ranx `mrr@10`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ranx import Qrels, Run
from ranx import evaluate as ranx_evaluate

from kb.retrieval import SearchMode
from kb.search import Passage
from kb.service import KnowledgeBase

RECALL_K = 5
MRR_K = 10


@dataclass
class GoldQuestion:
    id: str
    question: str
    type: str
    language: str
    relevant: list[dict[str, Any]]
    answer_facts: list[str]
    answer: str = ""  # reference answer; empty for unanswerable questions


@dataclass
class QuestionResult:
    id: str
    type: str
    ranking: list[str]  # chunk ids of the retrieved passages, best first
    qrels: dict[str, int]
    hit_rank: int | None  # 1-based rank of the first relevant passage
    fact_in_top5: bool
    found: bool
    cited_relevant: bool
    cited_fact: bool
    top_similarity: float
    files: list[str] = field(default_factory=list)


def load_gold(path: Path) -> list[GoldQuestion]:
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            questions.append(
                GoldQuestion(
                    id=row["id"],
                    question=row["question"],
                    type=row["type"],
                    language=row.get("language", ""),
                    relevant=row.get("relevant", []),
                    answer_facts=row.get("answer_facts", []),
                    answer=row.get("answer", ""),
                )
            )
    return questions


def _entry_id(entry: dict[str, Any]) -> str:
    page = entry.get("page")
    return entry["file"] if page is None else f"{entry['file']}#page={page}"


def matching_entry(
    file: str, page: int | None, relevant: list[dict[str, Any]]
) -> dict[str, Any] | None:
    normalised = file.replace("\\", "/")
    for entry in relevant:
        same_file = (
            normalised.endswith("/" + entry["file"]) or normalised == entry["file"]
        )
        same_page = entry.get("page") is None or page is None or entry["page"] == page
        if same_file and same_page:
            return entry
    return None


def is_relevant(file: str, page: int | None, relevant: list[dict[str, Any]]) -> bool:
    return matching_entry(file, page, relevant) is not None


def contains_fact(text: str, facts: list[str]) -> bool:
    lowered = " ".join(text.lower().split())
    return any(" ".join(fact.lower().split()) in lowered for fact in facts)


def _passage_judgments(
    passages: list[Passage], question: GoldQuestion
) -> tuple[list[str], dict[str, int]]:
    """Return passage ids in rank order and the grades of the relevant ones.

    Judgments are per passage, so recall@5 looks at the first five passages
    and MRR@10 at the rank of the first relevant passage, as a reader sees
    them. Relevant entries that no passage reached stay in the judgments, so
    every answerable question counts.
    """
    ranking: list[str] = []
    qrels: dict[str, int] = {}
    for passage in passages:
        ranking.append(passage.chunk_id)
        entry = matching_entry(passage.file, passage.page, question.relevant)
        if entry is not None:
            qrels[passage.chunk_id] = int(entry.get("grade", 1))
    for entry in question.relevant:
        qrels.setdefault("missed:" + _entry_id(entry), int(entry.get("grade", 1)))
    return ranking, qrels


def evaluate_question(
    kb: KnowledgeBase, question: GoldQuestion, mode: SearchMode | None = None
) -> QuestionResult:
    passages = kb.search(question.question, top_k=MRR_K, mode=mode)
    ranking, qrels = _passage_judgments(passages, question)
    hit_rank = next(
        (
            rank
            for rank, p in enumerate(passages, start=1)
            if is_relevant(p.file, p.page, question.relevant)
        ),
        None,
    )
    top5 = " ".join(p.passage for p in passages[:RECALL_K])
    answer = kb.ask(question.question, mode=mode)
    cited = [c.passage for c in answer.citations]
    return QuestionResult(
        id=question.id,
        type=question.type,
        ranking=ranking,
        qrels=qrels,
        hit_rank=hit_rank,
        fact_in_top5=contains_fact(top5, question.answer_facts),
        found=answer.found,
        cited_relevant=any(
            is_relevant(p.file, p.page, question.relevant) for p in cited
        ),
        cited_fact=contains_fact(
            " ".join(p.passage for p in cited), question.answer_facts
        ),
        top_similarity=max((p.similarity for p in passages), default=0.0),
        files=[p.file for p in passages[:RECALL_K]],
    )


def ranking_metrics(results: list[QuestionResult]) -> dict[str, float]:
    """Return recall@5 and MRR@10 computed by ranx over answerable questions."""
    qrels = Qrels({r.id: r.qrels for r in results})
    run = Run(
        {
            r.id: {item: 1.0 / rank for rank, item in enumerate(r.ranking, start=1)}
            or {"(nothing)": 0.0}
            for r in results
        }
    )
    scores = ranx_evaluate(qrels, run, [f"hit_rate@{RECALL_K}", f"mrr@{MRR_K}"])
    return {
        "recall@5": float(scores[f"hit_rate@{RECALL_K}"]),
        "mrr@10": float(scores[f"mrr@{MRR_K}"]),
    }


def summarise(results: list[QuestionResult]) -> dict[str, dict[str, float]]:
    """Return ranking and answer metrics per question type and overall."""
    groups: dict[str, list[QuestionResult]] = defaultdict(list)
    for result in results:
        groups[result.type].append(result)
        if result.type != "unanswerable":
            groups["all answerable"].append(result)
    summary = {}
    for name, group in sorted(groups.items()):
        n = len(group)
        if name == "unanswerable":
            summary[name] = {"n": n, "abstained": sum(not r.found for r in group) / n}
            continue
        summary[name] = {
            "n": n,
            **ranking_metrics(group),
            "fact_in_top5": sum(r.fact_in_top5 for r in group) / n,
            "answered": sum(r.found for r in group) / n,
            "cited_relevant": sum(r.cited_relevant for r in group) / n,
            "cited_fact": sum(r.cited_fact for r in group) / n,
        }
    return summary


def evaluate(
    kb: KnowledgeBase, gold_path: Path, mode: SearchMode | None = None
) -> tuple[list[QuestionResult], dict]:
    results = [evaluate_question(kb, q, mode) for q in load_gold(gold_path)]
    return results, summarise(results)


def format_table(summary: dict[str, dict[str, float]]) -> str:
    """Render the summary as a Markdown table, one row per question type."""
    lines = [
        "| question type | n | recall@5 | MRR@10 | fact in top 5 | cited gold file "
        "| cited fact | abstained |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in summary.items():
        if name == "unanswerable":
            lines.append(f"| {name} | {row['n']} | | | | | | {row['abstained']:.2f} |")
            continue
        lines.append(
            f"| {name} | {row['n']} | {row['recall@5']:.3f} | {row['mrr@10']:.3f} "
            f"| {row['fact_in_top5']:.3f} | {row['cited_relevant']:.3f} "
            f"| {row['cited_fact']:.3f} | |"
        )
    return "\n".join(lines)
