"""Measure the sentence check of generated answers (kb.verify) on the gold answers.

Each reference answer of an answerable gold question is treated as a
generated answer about that question's retrieved passages (the eight that a
generated answer reads). Supported sentences should be kept; sentences taken
from the answers of other questions, about other documents, should be
dropped, and so should the question's own sentences with every number
changed. Every sentence is scored in three citation variants:

- `cites all`: it cites every retrieved passage;
- `cites gold`: it cites only the retrieved passages of the question's
  relevant files (questions where retrieval found none are left out);
- `no citation`: it cites nothing and is checked against every passage.

Usage:

    python -m evals.verify_check --gold GOLD.jsonl --corpus PATHS... [--data-dir DIR]

The store in `--data-dir` (default `evals/results/stores/gold`, the one
`kb eval` builds) is reused; `--corpus` adds new or changed files to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from evals.gold import GoldQuestion, is_relevant, load_gold
from kb.generate import stem_language
from kb.keyword import analyze
from kb.service import ANSWER_PASSAGES, KnowledgeBase
from kb.settings import Settings
from kb.verify import (
    MIN_OVERLAP,
    MIN_SIMILARITY,
    NUMBER,
    Thresholds,
    Verifier,
    claim_text,
    split_sentences,
)

DEFAULT_STORE = Path("evals/results/stores/gold")
NEGATIVES_PER_QUESTION = 3
VARIANTS = ("cites all", "cites gold", "no citation")
KINDS = ("own", "foreign", "altered numbers")
SIMILARITY_GRID = [round(0.40 + 0.02 * step, 2) for step in range(26)]
OVERLAP_GRID = [round(0.40 + 0.05 * step, 2) for step in range(13)]  # up to 1.0


@dataclass
class Sample:
    """Scores of one sentence against one citation variant."""

    question: str
    variant: str
    kind: str  # "own", "foreign" or "altered numbers"
    sentence: str
    # Per cited passage group: the best (similarity, overlap, numbers missing).
    scores: list[tuple[float, float, bool]]


def _other_questions(
    index: int, questions: list[GoldQuestion]
) -> Iterable[GoldQuestion]:
    """Yield the next answerable questions whose relevant files differ."""
    own = {entry["file"] for entry in questions[index].relevant}
    for step in range(1, len(questions)):
        other = questions[(index + step) % len(questions)]
        if own.isdisjoint(entry["file"] for entry in other.relevant):
            yield other


def collect_samples(kb: KnowledgeBase, questions: list[GoldQuestion]) -> list[Sample]:
    """Score own and foreign answer sentences against each question's passages."""
    answerable = [q for q in questions if q.type != "unanswerable" and q.answer]
    samples: list[Sample] = []
    for index, question in enumerate(answerable):
        passages = kb.search(question.question, top_k=ANSWER_PASSAGES)
        language = stem_language(question.question)
        verifier = Verifier(kb.embedder, passages, language)
        numbers = list(verifier.numbers)
        gold = [
            n
            for n, p in zip(numbers, passages, strict=True)
            if is_relevant(p.file, p.page, question.relevant)
        ]
        variants = {
            "cites all": [numbers],
            "no citation": [[n] for n in numbers],
        }
        if gold:
            variants["cites gold"] = [gold]
        others = list(_other_questions(index, answerable))[:NEGATIVES_PER_QUESTION]
        claims = []
        for sentence, _ in split_sentences(question.answer):
            claims.append(("own", claim_text(sentence)))
            if NUMBER.search(claim_text(sentence)):
                claims.append(("altered numbers", alter_numbers(claim_text(sentence))))
        for other in others:
            for sentence, _ in split_sentences(other.answer):
                claims.append(("foreign", claim_text(sentence)))
        for kind, claim in claims:
            stems = set(analyze(claim, language))
            if not stems:
                continue
            vector = kb.embedder.encode([claim])[0]
            for variant, groups in variants.items():
                scores = []
                for group in groups:
                    similarity, overlap, missing = verifier.scores(
                        claim, vector, stems, group
                    )
                    scores.append((similarity, overlap, bool(missing)))
                samples.append(Sample(question.id, variant, kind, claim, scores))
    return samples


def alter_numbers(claim: str) -> str:
    """Replace every number n of a claim by 3n + 1, which the sources lack."""
    return NUMBER.sub(lambda m: str(int(re.sub(r"\D", "", m.group())) * 3 + 1), claim)


def judged_supported(sample: Sample, thresholds: Thresholds) -> bool:
    """Apply the rule of Verifier.check to precomputed scores."""
    return any(
        not missing
        and (similarity >= thresholds.similarity or overlap >= thresholds.overlap)
        for similarity, overlap, missing in sample.scores
    )


def rates(samples: list[Sample], thresholds: Thresholds) -> dict[str, dict]:
    """Return, per variant, the share of own sentences kept and of others dropped."""
    table = {}
    for variant in VARIANTS:
        row: dict[str, float] = {}
        for kind in KINDS:
            group = [s for s in samples if s.variant == variant and s.kind == kind]
            if not group:
                continue
            verdicts = [judged_supported(s, thresholds) for s in group]
            share_kept = sum(verdicts) / len(group)
            row[f"{kind} n"] = len(group)
            row[kind] = share_kept if kind == "own" else 1 - share_kept
        if "own" in row and "foreign" in row:
            table[variant] = row
    return table


def grid_search(samples: list[Sample], variant: str) -> list[dict]:
    """Return thresholds by balanced accuracy (mean of kept and dropped), best first."""
    rows = []
    for similarity in SIMILARITY_GRID:
        for overlap in [*OVERLAP_GRID, 1.01]:  # 1.01: similarity alone
            row = rates(samples, Thresholds(similarity, overlap)).get(variant)
            if row:
                rows.append(
                    {
                        "similarity": similarity,
                        "overlap": overlap,
                        "kept": row["own"],
                        "dropped": row["foreign"],
                        "balanced": (row["own"] + row["foreign"]) / 2,
                    }
                )
    return sorted(rows, key=lambda row: -row["balanced"])


def number_failures(samples: list[Sample]) -> dict[str, float]:
    """Return how often the number rule alone rejects each kind of sentence."""
    result = {}
    for kind in KINDS:
        group = [s for s in samples if s.variant == "cites all" and s.kind == kind]
        if group:
            result[kind] = sum(s.scores[0][2] for s in group) / len(group)
    return result


def format_report(samples: list[Sample], thresholds: Thresholds) -> str:
    lines = [
        f"thresholds: similarity >= {thresholds.similarity}, "
        f"overlap >= {thresholds.overlap}, numbers must occur in the cited passages",
        "",
        "| citations | own: n | own: kept | foreign: n | foreign: dropped "
        "| altered numbers: n | altered numbers: dropped |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, row in rates(samples, thresholds).items():
        cells = [variant]
        for kind in KINDS:
            cells += [f"{row.get(kind + ' n', 0):.0f}", f"{row.get(kind, 0):.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    failures = number_failures(samples)
    lines += [
        "",
        "number rule alone rejects (cites all): "
        + ", ".join(f"{name} {share:.3f}" for name, share in failures.items()),
        "",
        "best thresholds by balanced accuracy (cites gold):",
    ]
    for row in grid_search(samples, "cites gold")[:5]:
        lines.append(
            f"  similarity {row['similarity']:.2f}, overlap {row['overlap']:.2f}: "
            f"kept {row['kept']:.3f}, dropped {row['dropped']:.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.verify_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--gold", type=Path, required=True, help="gold questions")
    parser.add_argument(
        "--corpus",
        type=Path,
        nargs="*",
        default=[],
        help="files and folders the gold questions are about; indexed if new",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_STORE, help="store to build or reuse"
    )
    parser.add_argument("--out", type=Path, help="write the samples as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    kb = KnowledgeBase(Settings(data_dir=args.data_dir))
    if args.corpus:
        kb.ingest(args.corpus)
    if not kb.stats()["documents"]:
        parser.error(f"the store in {args.data_dir} is empty; give --corpus PATHS")
    samples = collect_samples(kb, load_gold(args.gold))
    print(format_report(samples, Thresholds(MIN_SIMILARITY, MIN_OVERLAP)))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps([asdict(s) for s in samples], ensure_ascii=False, indent=1),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
