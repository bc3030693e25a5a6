"""Measure the keyword index's candidate budget: latency and nDCG@10 per setting.

Builds a keyword index of the SciFact abstracts (one row each) and grows it
with distractors made of four recombined sentences of those abstracts, then
runs the test queries with each (POSTINGS_BUDGET, MIN_CANDIDATES) setting.
Latency is the keyword side of one hybrid search: analysing the query, the
ranking of the whole query and the ranking of its rare names.

    python -m evals.keyword_budget --beir ../shared/corpus/beir-scifact --rows 200000

The first setting, an unlimited budget, is plain FTS5 BM25.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from pathlib import Path

from ranx import Qrels, Run
from ranx import evaluate as ranx_evaluate
from tqdm import tqdm

from evals.beir import corpus_id, load_beir
from evals.bench import percentiles
from kb import keyword
from kb.keyword import KeywordIndex

SENTENCE = re.compile(r"(?<=[.!?])\s+")
SETTINGS = (
    (10**12, 500),
    (5_000, 500),
    (5_000, 1000),
    (10_000, 200),
    (10_000, 500),
    (15_000, 500),
    (20_000, 500),
)
BATCH = 200


def build(index: KeywordIndex, texts: dict[str, str], rows: int) -> None:
    """Index each abstract as one row, then distractors up to `rows` rows."""
    ids = list(texts)
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        index.add(f"real{start}", batch, [texts[i] for i in batch], "en")
    sentences = [s for text in texts.values() for s in SENTENCE.split(text)]
    sentences = [s for s in sentences if len(s) > 30]
    rng = random.Random(0)
    count = len(ids)
    with tqdm(total=max(0, rows - count), unit="row", desc="distractors") as bar:
        while count < rows:
            size = min(BATCH, rows - count)
            chunk_ids = [f"added:{count + n}" for n in range(size)]
            added = [" ".join(rng.sample(sentences, 4)) for _ in range(size)]
            index.add(f"added{count}", chunk_ids, added, "en")
            count += size
            bar.update(size)


def measure(index: KeywordIndex, queries: dict[str, str], qrels: dict) -> dict:
    """nDCG@10 of keyword mode and latency of the keyword side of hybrid search."""
    run = {}
    for qid, query in queries.items():
        ranked = index.search(query, 10)
        run[qid] = {chunk: score for chunk, score in ranked} or {"(none)": 0.0}
    ndcg = float(ranx_evaluate(Qrels(qrels), Run(run), "ndcg@10"))
    timings = []
    for query in list(queries.values())[:100]:
        started = time.perf_counter()
        plan = index.plan(query)
        index.search(plan, 50, None, name_weight=2)
        index.search_names(plan, 50, None)
        timings.append((time.perf_counter() - started) * 1000)
    latency = percentiles(timings)
    return {
        "ndcg@10": round(ndcg, 4),
        "p50_ms": latency["p50_ms"],
        "p95_ms": latency["p95_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beir", type=Path, required=True, help="BEIR SciFact folder")
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the index")
    args = parser.parse_args()

    dataset = load_beir(args.beir)
    texts = {corpus_id(item.file): item.text for item in dataset.corpus()}
    queries = dataset.queries
    with tempfile.TemporaryDirectory() as folder:
        index = KeywordIndex(Path(folder) / "keyword.sqlite3")
        build(index, texts, args.rows)
        print(f"{index.count()} rows, {len(queries)} judged queries")
        print("| postings budget | candidates | nDCG@10 | p50 ms | p95 ms |")
        print("|---|---|---|---|---|")
        for budget, candidates in SETTINGS:
            keyword.POSTINGS_BUDGET = budget
            keyword.MIN_CANDIDATES = candidates
            result = measure(index, queries, dataset.qrels)
            label = "unlimited" if budget >= 10**12 else f"{budget:,}"
            print(
                f"| {label} | {candidates} | {result['ndcg@10']} "
                f"| {result['p50_ms']} | {result['p95_ms']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
