"""Dense, keyword and hybrid retrieval over ready documents.

Hybrid search fuses the dense and the keyword rankings by reciprocal rank
fusion (RRF): a chunk scores the sum of 1 / (RRF_K + rank) over the rankings
that contain it. The dense ranking comes from Chroma's approximate index, and
keyword candidates that it missed join it at their exact rank. Every passage
also carries its cosine similarity to the query, which the answer threshold uses
whatever the ranking mode.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from kb.embedding import Embedder
from kb.keyword import KeywordIndex
from kb.search import Passage
from kb.vectors import VectorHit, VectorIndex

SearchMode = Literal["dense", "keyword", "hybrid"]
SEARCH_MODES: tuple[str, ...] = ("dense", "keyword", "hybrid")
RRF_K = 60
MIN_CANDIDATES = 50  # depth of each ranking before fusion
# Weight of rare names in the keyword ranking of hybrid search; plain keyword
# search keeps standard BM25. Both choices are measured in BENCHMARKS.md.
HYBRID_NAME_WEIGHT = 2
# Hybrid search fuses a third ranking when the query names something rare in the
# index: chunks ranked by those names alone, at half the weight of the others.
# A name is often the only link between an English question and a document in
# another language, which the English embedding model ranks low.
NAME_RANKING_WEIGHT = 0.5


def fuse(
    rankings: list[list[str]], k: int = RRF_K, weights: list[float] | None = None
) -> list[tuple[str, float]]:
    """Return ids ranked by (weighted) reciprocal rank fusion, best first."""
    scores: dict[str, float] = {}
    for index, ranking in enumerate(rankings):
        weight = weights[index] if weights else 1.0
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


class Retriever:
    """Rank chunks of the allowed documents for a query."""

    def __init__(
        self, vectors: VectorIndex, keywords: KeywordIndex, embedder: Embedder
    ) -> None:
        self.vectors = vectors
        self.keywords = keywords
        self.embedder = embedder

    def search(
        self,
        query: str,
        top_k: int,
        allowed: set[str],
        mode: SearchMode = "hybrid",
    ) -> list[Passage]:
        """Return the top-k passages of documents in `allowed`, best first."""
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}")
        query_vector = self.embedder.encode_query(query)
        depth = max(MIN_CANDIDATES, top_k)
        if mode == "dense":
            hits = self.vectors.query(query_vector.tolist(), top_k, allowed)
            return [self._passage(hit, hit.score, hit.score) for hit in hits]

        if mode == "keyword":
            ranked = self.keywords.search(query, top_k, allowed)
            similarities: dict[str, float] = {}
        else:
            plan = self.keywords.plan(query)
            keyword_ranking = self.keywords.search(
                plan, depth, allowed, name_weight=HYBRID_NAME_WEIGHT
            )
            named = self.keywords.search_names(plan, depth, allowed)
            nearest = self.vectors.nearest(query_vector.tolist(), depth, allowed)
            nearest = self._complete_nearest(
                nearest, depth, keyword_ranking + named, query_vector
            )
            similarities = dict(nearest)
            rankings = [[c for c, _ in nearest], [c for c, _ in keyword_ranking]]
            if named:
                rankings.append([c for c, _ in named])
            ranked = fuse(rankings, weights=[1.0, 1.0, NAME_RANKING_WEIGHT])
            ranked = ranked[:top_k]
        return self._resolve(ranked, similarities, query_vector)

    def _complete_nearest(
        self,
        nearest: list[tuple[str, float]],
        depth: int,
        candidates: list[tuple[str, float]],
        query_vector: np.ndarray,
    ) -> list[tuple[str, float]]:
        """Add keyword candidates that the approximate index missed to `nearest`.

        Chroma's HNSW graph returned 47 to 50 of the true best 50 on the
        reference documents, varying between builds, so a keyword candidate
        could lose its dense vote. Its cosine comes from its stored vector, and
        it joins when that cosine beats the last one in `nearest`.
        """
        known = {chunk_id for chunk_id, _ in nearest}
        missing = list(dict.fromkeys(c for c, _ in candidates if c not in known))
        if not missing:
            return nearest
        floor = nearest[-1][1] if len(nearest) >= depth else -math.inf
        ids, matrix = self.vectors.embeddings(missing)
        if not ids:
            return nearest
        cosines = matrix @ query_vector.astype(np.float32)
        found = [
            (chunk_id, float(cosine))
            for chunk_id, cosine in zip(ids, cosines, strict=True)
            if cosine > floor
        ]
        if not found:
            return nearest
        merged = sorted(nearest + found, key=lambda item: -item[1])
        return merged[:depth]

    def _resolve(
        self,
        ranked: list[tuple[str, float]],
        similarities: dict[str, float],
        query_vector: np.ndarray,
    ) -> list[Passage]:
        """Fetch text and metadata of ranked ids; compute missing similarities."""
        fetched = {
            hit.chunk_id: hit for hit in self.vectors.get([c for c, _ in ranked])
        }
        passages = []
        for chunk_id, score in ranked:
            hit = fetched.get(chunk_id)
            if hit is None:
                continue  # the keyword index is ahead of the vector store
            similarity = similarities.get(chunk_id)
            if similarity is None and hit.embedding is not None:
                similarity = float(np.dot(query_vector, np.asarray(hit.embedding)))
            passages.append(self._passage(hit, score, similarity or 0.0))
        return passages

    @staticmethod
    def _passage(hit: VectorHit, score: float, similarity: float) -> Passage:
        passage = Passage.from_hit(hit)
        passage.score = round(float(score), 4)
        passage.similarity = round(float(similarity), 4)
        return passage
