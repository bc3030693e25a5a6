"""Retrieval and citation metrics on a gold set of VET questions.

Each line of the gold file is a JSON object with `id`, `question`, `type`,
`relevant` (a list of `{file, page, grade}`, paths relative to the corpus
root) and `answer_facts`. A retrieved passage matches a relevant entry when its
file ends with the entry's path and, for entries with a page, its page agrees.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    @property
    def answerable(self) -> bool:
        return bool(self.relevant)


@dataclass
class QuestionResult:
    id: str
    type: str
    hit_rank: int | None  # 1-based rank of the first relevant passage
    fact_in_top5: bool
    found: bool
    cited_relevant: bool
    cited_fact: bool
    top_score: float
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
                )
            )
    return questions


def is_relevant(file: str, page: int | None, relevant: list[dict[str, Any]]) -> bool:
    normalised = file.replace("\\", "/")
    for entry in relevant:
        same_file = (
            normalised.endswith("/" + entry["file"]) or normalised == entry["file"]
        )
        same_page = entry.get("page") is None or page is None or entry["page"] == page
        if same_file and same_page:
            return True
    return False


def contains_fact(text: str, facts: list[str]) -> bool:
    lowered = " ".join(text.lower().split())
    return any(" ".join(fact.lower().split()) in lowered for fact in facts)


def evaluate_question(kb: KnowledgeBase, question: GoldQuestion) -> QuestionResult:
    passages = kb.search(question.question, top_k=MRR_K)
    hit_rank = next(
        (
            rank
            for rank, p in enumerate(passages, start=1)
            if is_relevant(p.file, p.page, question.relevant)
        ),
        None,
    )
    top5 = " ".join(p.passage for p in passages[:RECALL_K])
    answer = kb.ask(question.question)
    cited = [c.passage for c in answer.citations]
    return QuestionResult(
        id=question.id,
        type=question.type,
        hit_rank=hit_rank,
        fact_in_top5=contains_fact(top5, question.answer_facts),
        found=answer.found,
        cited_relevant=any(
            is_relevant(p.file, p.page, question.relevant) for p in cited
        ),
        cited_fact=contains_fact(
            " ".join(p.passage for p in cited), question.answer_facts
        ),
        top_score=passages[0].score if passages else 0.0,
        files=[p.file for p in passages[:RECALL_K]],
    )


def summarise(results: list[QuestionResult]) -> dict[str, dict[str, float]]:
    """Return recall@5, MRR@10 and answer-fact rates per question type and overall."""
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
            "recall@5": sum(
                r.hit_rank is not None and r.hit_rank <= RECALL_K for r in group
            )
            / n,
            "mrr@10": sum(1 / r.hit_rank for r in group if r.hit_rank) / n,
            "fact_in_top5": sum(r.fact_in_top5 for r in group) / n,
            "answered": sum(r.found for r in group) / n,
            "cited_relevant": sum(r.cited_relevant for r in group) / n,
            "cited_fact": sum(r.cited_fact for r in group) / n,
        }
    return summary


def evaluate(kb: KnowledgeBase, gold_path: Path) -> tuple[list[QuestionResult], dict]:
    results = [evaluate_question(kb, q) for q in load_gold(gold_path)]
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


def main(argv: list[str] | None = None) -> int:
    import argparse

    from kb.settings import Settings

    parser = argparse.ArgumentParser(
        description="Evaluate retrieval and citations of the store in KB_DATA_DIR."
    )
    parser.add_argument("gold", type=Path, help="gold questions, one JSON per line")
    parser.add_argument("--json", type=Path, help="also write per-question results")
    args = parser.parse_args(argv)

    kb = KnowledgeBase(Settings())
    results, summary = evaluate(kb, args.gold)
    print(format_table(summary))
    if args.json:
        payload = {"summary": summary, "questions": [vars(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
