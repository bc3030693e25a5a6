"""`kb eval`: retrieval quality per ranking mode on BEIR and on the gold questions.

Writes `results.json`, `report.md` and `recall.png` (recall@k curves) to the
output folder. Stores are built in `<out>/stores/` and reused by later runs.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

from ranx import Qrels, Run
from ranx import evaluate as ranx_evaluate
from tqdm import tqdm

from evals.beir import BeirDataset, corpus_id, load_beir
from evals.gold import evaluate as evaluate_gold
from evals.gold import format_table
from kb.service import KnowledgeBase
from kb.settings import Settings

logger = logging.getLogger(__name__)

CURVE_KS = [1, 2, 3, 5, 10, 20, 50, 100]
BEIR_DEPTH = 100
LATENCY_QUERIES = 100
RERANK_NOTE = (
    "not measured: no cross-encoder reranker ships its weights in a package "
    "that installs offline"
)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def document_ranking(kb: KnowledgeBase, query: str, mode: str) -> dict[str, float]:
    """Rank corpus ids by their best passage; scores fall with rank."""
    ranking: dict[str, float] = {}
    for passage in kb.search(query, top_k=BEIR_DEPTH, mode=mode):
        doc = corpus_id(passage.file)
        if doc not in ranking:
            ranking[doc] = 1.0 / (len(ranking) + 1)
    return ranking or {"(nothing)": 0.0}


def _latency(kb: KnowledgeBase, queries: list[str], mode: str) -> dict[str, float]:
    timings = []
    for query in queries:
        started = time.perf_counter()
        kb.search(query, top_k=10, mode=mode)
        timings.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": statistics.median(timings),
        "p95_ms": _percentile(timings, 0.95),
        "mean_ms": statistics.fmean(timings),
    }


def build_beir_store(dataset: BeirDataset, data_dir: Path) -> KnowledgeBase:
    kb = KnowledgeBase(Settings(data_dir=data_dir))
    items = list(dataset.corpus())
    with tqdm(total=len(items), unit="doc", desc="index BEIR") as bar:
        report = kb.ingest_texts(items, on_item=lambda outcome: bar.update(1))
    totals = report.totals()
    logger.info(
        "BEIR store: %d indexed, %d skipped", totals["indexed"], totals["skipped"]
    )
    return kb


def evaluate_beir(kb: KnowledgeBase, dataset: BeirDataset, modes) -> dict[str, Any]:
    qrels = Qrels(dataset.qrels)
    metrics = ["ndcg@10", "recall@10", "recall@100", "mrr@10"]
    curve_metrics = [f"recall@{k}" for k in CURVE_KS]
    results: dict[str, Any] = {}
    sample = list(dataset.queries.values())[:LATENCY_QUERIES]
    for mode in modes:
        run = Run(
            {
                qid: document_ranking(kb, text, mode)
                for qid, text in tqdm(dataset.queries.items(), desc=f"BEIR {mode}")
            }
        )
        scores = ranx_evaluate(qrels, run, metrics + curve_metrics)
        results[mode] = {
            "metrics": {m: float(scores[m]) for m in metrics},
            "curve": {k: float(scores[f"recall@{k}"]) for k in CURVE_KS},
            "latency": _latency(kb, sample, mode),
        }
    return results


def evaluate_gold_modes(kb: KnowledgeBase, gold: Path, modes) -> dict[str, Any]:
    results = {}
    for mode in modes:
        _, summary = evaluate_gold(kb, gold, mode)
        results[mode] = summary
    return results


def plot_curves(beir: dict[str, Any] | None, out: Path) -> Path | None:
    if not beir:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for mode, result in beir.items():
        ks = list(result["curve"])
        axis.plot(ks, [result["curve"][k] for k in ks], marker="o", label=mode)
    axis.set_xscale("log")
    axis.set_xlabel("k (documents)")
    axis.set_ylabel("recall@k")
    axis.set_title("BEIR recall@k by ranking mode")
    axis.grid(True, alpha=0.3)
    axis.legend()
    path = out / "recall.png"
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def format_report(results: dict[str, Any]) -> str:
    lines = ["# Retrieval evaluation", ""]
    beir = results.get("beir")
    if beir:
        lines += [
            f"BEIR folder `{results['beir_folder']}`, {results['beir_queries']} "
            "queries.",
            "",
            "| mode | nDCG@10 | recall@10 | recall@100 | MRR@10 | p50 ms | p95 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for mode, row in beir.items():
            m, lat = row["metrics"], row["latency"]
            lines.append(
                f"| {mode} | {m['ndcg@10']:.3f} | {m['recall@10']:.3f} "
                f"| {m['recall@100']:.3f} | {m['mrr@10']:.3f} "
                f"| {lat['p50_ms']:.1f} | {lat['p95_ms']:.1f} |"
            )
        lines += ["", f"hybrid + rerank: {RERANK_NOTE}.", ""]
    for mode, summary in (results.get("gold") or {}).items():
        lines += [f"## Gold questions, {mode}", "", format_table(summary), ""]
    return "\n".join(lines)


def run_eval(
    out: Path,
    beir_folder: Path | None,
    gold: Path | None,
    corpus: list[Path],
    modes: list[str],
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"modes": modes, "rerank": RERANK_NOTE}
    if beir_folder is not None:
        dataset = load_beir(beir_folder)
        kb = build_beir_store(dataset, out / "stores" / "beir")
        results["beir_folder"] = str(beir_folder)
        results["beir_queries"] = len(dataset.queries)
        results["beir"] = evaluate_beir(kb, dataset, modes)
    if gold is not None:
        kb = KnowledgeBase(Settings(data_dir=out / "stores" / "gold"))
        kb.ingest(corpus)
        results["gold_file"] = str(gold)
        results["gold"] = evaluate_gold_modes(kb, gold, modes)
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (out / "report.md").write_text(format_report(results), encoding="utf-8")
    plot_curves(results.get("beir"), out)
    return results
