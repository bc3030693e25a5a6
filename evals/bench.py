"""`kb bench`: ingestion, search, HTTP, memory and cold-start figures in one run.

Each part prints its table row as it finishes; the whole result goes to
`<out>/bench.json` and the Markdown tables to `<out>/bench.md`, which
BENCHMARKS.md quotes.

- Ingestion runs the real pipeline (parse, chunk, embed, write both indexes)
  on the VET documents and on SciFact abstracts, then encodes the very same
  chunk texts with `SentenceTransformer.encode` alone. The ratio of the two
  throughputs is the cost of everything around the model.
- Search latency is measured with the collection grown to each target size.
  Added chunks are recombined sentences of the real chunks for the keyword
  index; their vectors are normalised mixtures of three real chunk vectors,
  so the vector index contains a realistic distribution without hours of
  encoding. The added chunks belong to ready catalogue documents, like any
  other.
- HTTP load runs `kb serve` as a child process on 127.0.0.1 and sends
  `/api/search` requests from 1, 8 and 32 client threads. It is measured
  again with the VET store's vectors moved to a `chroma run` server, with
  one and with two `--workers`.
- The reference pipeline is what a llama-index user writes by default:
  `VectorStoreIndex.from_documents` over a fresh Chroma collection with
  `HuggingFaceEmbedding` on the same model folder and default settings.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from ranx import Qrels, Run
from ranx import evaluate as ranx_evaluate
from tqdm import tqdm

from evals.beir import BeirDataset, corpus_id, load_beir
from evals.runner import document_ranking
from kb.catalogue import DocumentRecord
from kb.embedding import resolve_model_path
from kb.service import KnowledgeBase
from kb.settings import Settings

SENTENCE = re.compile(r"(?<=[.!?])\s+")
MIXTURE = 3  # real vectors averaged into one added vector
ADDED_PER_DOCUMENT = 200
HTTP_CLIENTS = (1, 8, 32)
SERVER_MODE_WORKERS = (1, 2)
BUNDLED_CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "cases"
COLD_QUESTION = "How can one VR simulator serve a class?"


def percentiles(timings_ms: list[float]) -> dict[str, float]:
    ordered = sorted(timings_ms)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)

    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
    }


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def stored_chunks(kb: KnowledgeBase) -> tuple[list[str], np.ndarray]:
    """Return the texts the model encoded for each stored chunk, and the vectors."""
    rows = kb.vectors._collection.get(include=["documents", "metadatas", "embeddings"])
    texts = [
        kb.embedder.passage_text(
            str(meta.get("title", "")), meta.get("section"), text or ""
        )
        for text, meta in zip(rows["documents"], rows["metadatas"], strict=True)
    ]
    return texts, np.asarray(rows["embeddings"], dtype=np.float32)


def raw_encode_seconds(kb: KnowledgeBase, texts: list[str]) -> float:
    model = kb.embedder._model
    started = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True)
    return time.perf_counter() - started


def ingestion_row(
    name: str, kb: KnowledgeBase, documents: int, seconds: float
) -> dict[str, Any]:
    texts, _ = stored_chunks(kb)
    tokens = sum(kb.embedder.count_tokens(text) for text in texts)
    raw = raw_encode_seconds(kb, texts)
    return {
        "corpus": name,
        "documents": documents,
        "chunks": len(texts),
        "tokens": tokens,
        "seconds": round(seconds, 1),
        "docs_per_s": round(documents / seconds, 2),
        "chunks_per_s": round(len(texts) / seconds, 1),
        "tokens_per_s": round(tokens / seconds),
        "raw_encode_s": round(raw, 1),
        "raw_chunks_per_s": round(len(texts) / raw, 1),
        "ratio_to_raw": round(raw / seconds, 3),
    }


def scifact_subset(dataset: BeirDataset, documents: int) -> set[str]:
    """Return the judged abstracts plus unjudged ones, `documents` ids in all."""
    judged = {doc for docs in dataset.qrels.values() for doc in docs}
    unjudged = [doc for doc in dataset.corpus_ids() if doc not in judged]
    return judged | set(unjudged[: max(0, documents - len(judged))])


def ndcg(dataset: BeirDataset, ranking) -> float:
    run = Run({qid: ranking(query) for qid, query in dataset.queries.items()})
    return round(float(ranx_evaluate(Qrels(dataset.qrels), run, "ndcg@10")), 4)


def grow(
    kb: KnowledgeBase,
    target: int,
    pool: tuple[list[str], np.ndarray],
    rng: random.Random,
) -> int:
    """Add recombined chunks until the store contains `target`, and return the count.

    `pool` contains the real chunk texts and vectors that added chunks mix.
    """
    texts, vectors = pool
    sentences = [s for text in texts for s in SENTENCE.split(text) if len(s) > 30]
    current = kb.vectors.count()
    serial = len(kb.catalogue.list())
    # Written in bulk straight to the three stores: the same rows that
    # ingestion writes, without paying for encoding text that is made up.
    with tqdm(
        total=max(0, target - current), unit="chunk", desc=f"grow {target}"
    ) as bar:
        while current < target:
            rows: dict[str, list] = {
                "ids": [],
                "embeddings": [],
                "documents": [],
                "metadatas": [],
            }
            batch = []
            while current < target and len(rows["ids"]) < kb.vectors.max_batch - 200:
                size = min(ADDED_PER_DOCUMENT, target - current)
                serial += 1
                document_id = f"{serial:016x}"
                file = f"generated/{serial}.txt"
                chunk_texts = [" ".join(rng.sample(sentences, 4)) for _ in range(size)]
                for index, text in enumerate(chunk_texts):
                    mixed = vectors[rng.sample(range(len(vectors)), MIXTURE)].mean(0)
                    rows["ids"].append(f"{document_id}:{index}")
                    rows["embeddings"].append(mixed / np.linalg.norm(mixed))
                    rows["documents"].append(text)
                    rows["metadatas"].append(
                        {
                            "document_id": document_id,
                            "ref_doc_id": document_id,
                            "file": file,
                            "title": f"Generated document {serial}",
                            "doc_type": "text",
                            "language": "en",
                            "chunk_index": index,
                        }
                    )
                kb.catalogue.begin_document(
                    DocumentRecord(
                        id=document_id,
                        file=file,
                        abs_path=file,
                        title=f"Generated document {serial}",
                        doc_type="text",
                        language="en",
                        content_hash=document_id,
                        status="indexing",
                        chunks=size,
                        pages=None,
                        indexed_at="",
                    )
                )
                kb.keywords.add(
                    document_id,
                    [f"{document_id}:{i}" for i in range(size)],
                    chunk_texts,
                    "en",
                )
                batch.append((document_id, file))
                current += size
            kb.vectors._collection.add(**rows)
            for document_id, file in batch:
                kb.catalogue.mark_ready(document_id, file, file)
            bar.update(len(rows["ids"]))
    return current


def search_latency(kb: KnowledgeBase, queries: list[str], mode: str) -> dict:
    kb.search(queries[0], top_k=10, mode=mode)  # warm caches
    timings = []
    for query in queries:
        started = time.perf_counter()
        kb.search(query, top_k=10, mode=mode)
        timings.append((time.perf_counter() - started) * 1000)
    return percentiles(timings)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ChromaServer:
    """`chroma run` on a free port of 127.0.0.1, as a child process."""

    def __init__(self, path: Path, limit_s: float = 60) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        chroma = Path(sys.executable).with_name("chroma")
        self.process = subprocess.Popen(
            [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1"]
            + ["--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.perf_counter() + limit_s
        while True:
            try:
                httpx.get(f"{self.url}/api/v2/heartbeat", timeout=2).raise_for_status()
                return
            except httpx.HTTPError as error:
                if self.process.poll() is not None or time.perf_counter() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"chroma run did not start on {self.url}"
                    ) from error
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def server_mode_load(
    work: Path, store: Path, queries: list[str], requests: int
) -> list[dict]:
    """HTTP load on a copy of `store` whose vectors sit on a Chroma server."""
    data_dir = work / "server-mode"
    shutil.copytree(store, data_dir)
    chroma = ChromaServer(work / "chroma-server")
    try:
        subprocess.run(
            [sys.executable, "-m", "kb.cli", "migrate", "--to", chroma.url],
            env=dict(os.environ, KB_DATA_DIR=str(data_dir)),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        rows = []
        for workers in SERVER_MODE_WORKERS:
            server = ServeProcess(data_dir, chroma.url, workers)
            try:
                server.first_answer_seconds(COLD_QUESTION)
                http_load(server.url, queries, 8, 50)  # warm up every worker
                for clients in (1, 8):
                    row = http_load(server.url, queries, clients, requests)
                    rows.append({"workers": workers, **row})
                    print("server mode", rows[-1], flush=True)
            finally:
                server.stop()
        return rows
    finally:
        chroma.stop()


class ServeProcess:
    """`kb serve` on a free port of 127.0.0.1, as a child process."""

    def __init__(
        self, data_dir: Path, chroma_url: str | None = None, workers: int = 1
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, KB_DATA_DIR=str(data_dir))
        if chroma_url:
            env["KB_CHROMA_URL"] = chroma_url
        command = [sys.executable, "-m", "kb.cli", "serve", "--port", str(self.port)]
        if workers > 1:
            command += ["--workers", str(workers)]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def first_answer_seconds(self, question: str, limit_s: float = 120) -> float:
        """Seconds from process start to the first answered question."""
        while time.perf_counter() - self.started < limit_s:
            try:
                response = httpx.post(
                    f"{self.url}/api/ask", json={"question": question}, timeout=30
                )
                if response.status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError("kb serve exited during start-up")
            time.sleep(0.1)
        raise RuntimeError(
            f"kb serve returned no answer within {limit_s} s; run it by hand to see why"
        )

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
        return round(kib / 1024, 1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def http_load(url: str, queries: list[str], clients: int, requests: int) -> dict:
    """Send `requests` searches from `clients` threads; latency and throughput."""
    timings: list[float] = []
    errors = 0
    lock = threading.Lock()
    jobs = iter(range(requests))

    def client() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=60) as session:
            while True:
                with lock:
                    job = next(jobs, None)
                if job is None:
                    return
                started = time.perf_counter()
                response = session.get(
                    "/api/search", params={"q": queries[job % len(queries)], "k": 10}
                )
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    timings.append(elapsed)
                    errors += response.status_code != 200

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": requests,
        "errors": errors,
        "requests_per_s": round(requests / wall, 1),
        **percentiles(timings),
    }


def reference_pipeline(dataset: BeirDataset, subset: set[str], work: Path) -> dict:
    """Ingest and search the way the libraries do it by default."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.PersistentClient(
        path=str(work / "reference"),
        settings=ChromaSettings(anonymized_telemetry=False),
    )
    store = ChromaVectorStore(chroma_collection=client.get_or_create_collection("ref"))
    path, _ = resolve_model_path(Settings().model)
    embed_model = HuggingFaceEmbedding(model_name=str(path), device="cpu")
    documents = [
        Document(text=item.text, metadata={"file": item.file})
        for item in dataset.corpus(subset)
    ]
    started = time.perf_counter()
    index = VectorStoreIndex.from_documents(
        documents,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=embed_model,
    )
    seconds = time.perf_counter() - started
    retriever = index.as_retriever(similarity_top_k=100)
    # The model reads at most max_seq_length word pieces of each chunk and
    # drops the rest, so only those count as embedded.
    limit = embed_model._model.max_seq_length
    tokenizer = embed_model._model.tokenizer
    stored = client.get_collection("ref").get(include=["documents"])["documents"]
    embedded_tokens = sum(
        min(limit, len(tokenizer(text)["input_ids"])) for text in stored
    )

    def ranking(query: str) -> dict[str, float]:
        result: dict[str, float] = {}
        for hit in retriever.retrieve(query):
            doc = corpus_id(hit.node.metadata.get("file", ""))
            if doc not in result:
                result[doc] = 1.0 / (len(result) + 1)
        return result or {"(nothing)": 0.0}

    queries = list(dataset.queries.values())
    retriever.retrieve(queries[0])
    timings = []
    for query in queries:
        t = time.perf_counter()
        retriever.retrieve(query)
        timings.append((time.perf_counter() - t) * 1000)
    return {
        "seconds": round(seconds, 1),
        "chunks": len(stored),
        "embedded_tokens": embedded_tokens,
        "tokens_per_s": round(embedded_tokens / seconds),
        "ndcg@10": ndcg(dataset, ranking),
        **percentiles(timings),
    }


def run_bench(
    out: Path,
    beir_dir: Path,
    vet_paths: list[Path],
    scifact_documents: int = 1000,
    sizes: tuple[int, ...] = (5_000, 50_000, 200_000),
    http_requests: int = 300,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    work = out / "stores"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    result: dict[str, Any] = {"machine": machine(), "ingestion": []}

    vet = KnowledgeBase(Settings(data_dir=work / "vet"))
    _ = vet.embedder  # load the model outside the timed part
    started = time.perf_counter()
    report = vet.ingest(vet_paths)
    seconds = time.perf_counter() - started
    indexed = report.totals()["indexed"]
    result["ingestion"].append(ingestion_row("VET documents", vet, indexed, seconds))
    print(result["ingestion"][-1], flush=True)

    started = time.perf_counter()
    vet.ingest(vet_paths)
    result["reingest_unchanged_s"] = round(time.perf_counter() - started, 2)

    dataset = load_beir(beir_dir)
    subset = scifact_subset(dataset, scifact_documents)
    dataset.qrels = {
        q: {d: g for d, g in docs.items() if d in subset}
        for q, docs in dataset.qrels.items()
    }
    scifact = KnowledgeBase(Settings(data_dir=work / "scifact"))
    started = time.perf_counter()
    scifact.ingest_texts(dataset.corpus(subset))
    seconds = time.perf_counter() - started
    result["ingestion"].append(
        ingestion_row("SciFact abstracts", scifact, len(subset), seconds)
    )
    print(result["ingestion"][-1], flush=True)
    result["quality"] = {
        mode: ndcg(dataset, lambda q, m=mode: document_ranking(scifact, q, m))
        for mode in ("dense", "hybrid")
    }
    result["reference"] = reference_pipeline(dataset, subset, work)
    result["reference"]["ours_seconds"] = result["ingestion"][-1]["seconds"]
    print("reference", result["reference"], flush=True)

    queries = list(dataset.queries.values())
    rng = random.Random(0)
    pool = stored_chunks(scifact)
    result["search"] = []
    for size in sizes:
        chunks = grow(scifact, size, pool, rng)
        row: dict[str, Any] = {"chunks": chunks}
        for mode in ("dense", "keyword", "hybrid"):
            row[mode] = search_latency(scifact, queries, mode)
        row["disk_mb"] = round(folder_bytes(work / "scifact") / 2**20, 1)
        row["disk_mb_per_10k"] = round(row["disk_mb"] / chunks * 10_000, 1)
        row["bench_peak_rss_mb"] = peak_rss_mb()
        result["search"].append(row)
        print(row, flush=True)

    # Memory of the server itself on the largest collection, after a load test.
    server = ServeProcess(work / "scifact")
    try:
        server.first_answer_seconds(COLD_QUESTION)
        http_load(server.url, queries, 8, http_requests)
        result["server_peak_rss_largest_mb"] = server.peak_rss_mb()
    finally:
        server.stop()
    print("server peak RSS", result["server_peak_rss_largest_mb"], flush=True)

    # The cold-start target is for the bundled corpus, as `make run` serves it.
    bundled = KnowledgeBase(Settings(data_dir=work / "bundled"))
    bundled.ingest([BUNDLED_CORPUS])
    del bundled
    server = ServeProcess(work / "bundled")
    try:
        result["cold_start_s"] = round(server.first_answer_seconds(COLD_QUESTION), 2)
    finally:
        server.stop()
    print("cold start", result["cold_start_s"], flush=True)

    server = ServeProcess(work / "vet")
    try:
        result["cold_start_vet_s"] = round(
            server.first_answer_seconds(COLD_QUESTION), 2
        )
        result["http"] = [
            http_load(server.url, queries, clients, http_requests)
            for clients in HTTP_CLIENTS
        ]
        result["server_peak_rss_mb"] = server.peak_rss_mb()
    finally:
        server.stop()
    print("http", result["http"], flush=True)
    result["http_server_mode"] = server_mode_load(
        work, work / "vet", queries, http_requests
    )

    (out / "bench.json").write_text(json.dumps(result, indent=2))
    (out / "bench.md").write_text(markdown(result))
    print(markdown(result))
    return result


def machine() -> dict[str, Any]:
    import platform

    import torch

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| corpus | docs | chunks | tokens | s | docs/s | chunks/s | tokens/s "
        "| raw encode s | raw chunks/s | ingestion / raw |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["ingestion"]:
        lines.append(
            f"| {r['corpus']} | {r['documents']} | {r['chunks']} | {r['tokens']} "
            f"| {r['seconds']} | {r['docs_per_s']} | {r['chunks_per_s']} "
            f"| {r['tokens_per_s']} | {r['raw_encode_s']} | {r['raw_chunks_per_s']} "
            f"| {r['ratio_to_raw']} |"
        )
    lines += [
        "",
        f"Re-ingesting the unchanged VET folder: {result['reingest_unchanged_s']} s.",
        "",
        "| chunks | dense p50/p95/p99 ms | keyword p50/p95/p99 ms "
        "| hybrid p50/p95/p99 ms | disk MB | MB per 10k chunks | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["search"]:
        cells = [
            f"{r[m]['p50_ms']} / {r[m]['p95_ms']} / {r[m]['p99_ms']}"
            for m in ("dense", "keyword", "hybrid")
        ]
        lines.append(
            f"| {r['chunks']} | {' | '.join(cells)} | {r['disk_mb']} "
            f"| {r['disk_mb_per_10k']} | {r['bench_peak_rss_mb']} |"
        )
    lines += [
        "",
        "| clients | requests | errors | requests/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["http"]:
        lines.append(
            f"| {r['clients']} | {r['requests']} | {r['errors']} "
            f"| {r['requests_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |"
        )
    lines += [
        "",
        "| server mode: workers | clients | requests | errors | requests/s "
        "| p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["http_server_mode"]:
        lines.append(
            f"| {r['workers']} | {r['clients']} | {r['requests']} | {r['errors']} "
            f"| {r['requests_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |"
        )
    ref = result["reference"]
    ours_s = ref["ours_seconds"]
    ours = result["ingestion"][-1]
    lines += [
        "",
        "Cold start of `kb serve` to the first answer: "
        f"{result['cold_start_s']} s with the bundled corpus, "
        f"{result['cold_start_vet_s']} s with the VET store; server peak RSS "
        f"after the load test: {result['server_peak_rss_mb']} MB on the VET store, "
        f"{result['server_peak_rss_largest_mb']} MB on the "
        f"{result['search'][-1]['chunks']}-chunk store.",
        "",
        "| pipeline | ingestion s | chunks | tokens embedded | tokens/s | nDCG@10 "
        "| search p50 / p95 ms |",
        "|---|---|---|---|---|---|---|",
        f"| llama-index defaults (dense) | {ref['seconds']} | {ref['chunks']} "
        f"| {ref['embedded_tokens']} | {ref['tokens_per_s']} | {ref['ndcg@10']} "
        f"| {ref['p50_ms']} / {ref['p95_ms']} |",
        f"| this product, dense | {ours_s} | {ours['chunks']} | {ours['tokens']} "
        f"| {ours['tokens_per_s']} | {result['quality']['dense']} | |",
        f"| this product, hybrid | {ours_s} | {ours['chunks']} | {ours['tokens']} "
        f"| {ours['tokens_per_s']} | {result['quality']['hybrid']} | |",
        "",
        f"Ingestion time ratio, reference / ours: {round(ref['seconds'] / ours_s, 2)}.",
    ]
    return "\n".join(lines) + "\n"
