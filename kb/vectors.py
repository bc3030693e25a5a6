"""The vector store: a persistent Chroma collection behind llama-index."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from llama_index.core import Settings as LlamaSettings
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery
from llama_index.vector_stores.chroma import ChromaVectorStore

from kb.errors import ConfigError

logger = logging.getLogger(__name__)

COLLECTION = "passages"
# Explicit stand-ins keep llama-index from looking for OpenAI defaults; assigning
# None does the same but prints a notice on stdout, which would corrupt JSON output.
# Nothing here calls either: answers are extractive and kb.embedding encodes.
LlamaSettings.llm = MockLLM()
LlamaSettings.embed_model = MockEmbedding(embed_dim=1)


@dataclass
class VectorHit:
    """A chunk returned by a vector query, with its cosine similarity."""

    chunk_id: str
    text: str
    metadata: dict[str, Any]
    score: float
    embedding: list[float] | None = None


def chroma_metadata(values: dict[str, Any]) -> dict[str, Any]:
    """Flatten metadata to what Chroma accepts: lists become `a; b`, empty values go."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, list | tuple):
            value = "; ".join(str(item) for item in value if item not in (None, ""))
        if value is None or value == "" or isinstance(value, dict):
            continue
        flat[key] = value if isinstance(value, str | int | float | bool) else str(value)
    return flat


def chroma_client(path: Path | None = None, url: str = "") -> Any:
    """Open the embedded store in `path`, or connect to the Chroma server at `url`.

    Raise ConfigError when the server cannot be reached.
    """
    settings = ChromaSettings(anonymized_telemetry=False)
    if not url:
        if path is None:
            raise ConfigError("the vector store needs a data folder or KB_CHROMA_URL")
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=settings)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"KB_CHROMA_URL={url!r} is not an http(s) URL; "
            "use e.g. http://127.0.0.1:8001"
        )
    try:
        client = chromadb.HttpClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            settings=settings,
        )
        client.heartbeat()
    except Exception as error:
        raise ConfigError(
            f"cannot reach the Chroma server at {url} ({error}); start it with "
            "`chroma run --path DIR --host 127.0.0.1 --port PORT`, or unset "
            "KB_CHROMA_URL to use the store in the data folder"
        ) from error
    return client


def _only(document_ids: set[str] | None) -> dict[str, Any] | None:
    """Chroma's filter for chunks of the given documents; None allows all."""
    if document_ids is None:
        return None
    return {"document_id": {"$in": sorted(document_ids)}}


class VectorIndex:
    """Add, delete and query chunk vectors in one Chroma collection (cosine space).

    The collection lives in the data folder (`path`) or, with `url`, on a
    Chroma server.
    """

    def __init__(
        self, path: Path | None = None, url: str = "", collection: str = COLLECTION
    ) -> None:
        self.name = collection
        self.location = url or str(path)
        self._client = chroma_client(path, url)
        self._collection = self._client.get_or_create_collection(
            collection, metadata={"hnsw:space": "cosine"}
        )
        self._store = ChromaVectorStore(chroma_collection=self._collection)
        self.max_batch = int(self._client.get_max_batch_size())

    def reset(self) -> None:
        """Drop and recreate the collection, e.g. for vectors of a new dimension."""
        self._client.delete_collection(self.name)
        self._collection = self._client.get_or_create_collection(
            self.name, metadata={"hnsw:space": "cosine"}
        )
        self._store = ChromaVectorStore(chroma_collection=self._collection)

    def export(self, page: int = 1000) -> Iterator[dict[str, Any]]:
        """Yield every chunk with its vector, text and metadata, a page at a time."""
        offset = 0
        while True:
            rows = self._collection.get(
                limit=page,
                offset=offset,
                include=["embeddings", "documents", "metadatas"],
            )
            if not rows["ids"]:
                return
            yield {
                "ids": rows["ids"],
                "embeddings": rows["embeddings"],
                "documents": rows["documents"],
                "metadatas": rows["metadatas"],
            }
            offset += len(rows["ids"])

    def import_rows(self, rows: dict[str, Any]) -> None:
        """Write exported rows as they are, split at the store's batch limit."""
        for start in range(0, len(rows["ids"]), self.max_batch):
            end = start + self.max_batch
            self._collection.upsert(**{key: rows[key][start:end] for key in rows})

    def count(self) -> int:
        return self._collection.count()

    def add_many(
        self,
        documents: list[tuple[str, list[str], list[dict[str, Any]], list[list[float]]]],
    ) -> None:
        """Write the chunks of several documents in as few calls as Chroma accepts.

        Each item is `(document_id, texts, metadatas, embeddings)`. Each call
        has a fixed cost (about 20 ms on two cores), so a batch of short
        documents is written together.
        """
        nodes = [
            TextNode(
                id_=f"{document_id}:{index}",
                text=text,
                metadata=chroma_metadata(metadata),
                embedding=embedding,
                relationships={
                    NodeRelationship.SOURCE: RelatedNodeInfo(node_id=document_id)
                },
            )
            for document_id, texts, metadatas, embeddings in documents
            for index, (text, metadata, embedding) in enumerate(
                zip(texts, metadatas, embeddings, strict=True)
            )
        ]
        for start in range(0, len(nodes), self.max_batch):
            self._store.add(nodes[start : start + self.max_batch])

    def delete(self, document_id: str) -> None:
        self._store.delete(ref_doc_id=document_id)

    def chunk_document_ids(self) -> list[str]:
        """Return the document id of every chunk in the collection."""
        result = self._collection.get(include=["metadatas"])
        return [str(meta.get("document_id")) for meta in result["metadatas"] or []]

    def contains_text(self, text: str) -> bool:
        """Return whether any chunk contains the text (case-sensitive substring)."""
        result = self._collection.get(
            where_document={"$contains": text}, limit=1, include=[]
        )
        return bool(result["ids"])

    def get(self, chunk_ids: list[str]) -> list[VectorHit]:
        """Return chunks by id with their embeddings; the score is left at 0."""
        if not chunk_ids:
            return []
        result = self._collection.get(
            ids=chunk_ids, include=["documents", "metadatas", "embeddings"]
        )
        return [
            VectorHit(chunk_id, text or "", dict(meta or {}), 0.0, list(vector))
            for chunk_id, text, meta, vector in zip(
                result["ids"],
                result["documents"],
                result["metadatas"],
                result["embeddings"],
                strict=True,
            )
        ]

    def embeddings(self, chunk_ids: list[str]) -> tuple[list[str], np.ndarray]:
        """Return the ids found among `chunk_ids` and their stored vectors, by row."""
        if not chunk_ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        result = self._collection.get(ids=chunk_ids, include=["embeddings"])
        return list(result["ids"]), np.asarray(result["embeddings"], dtype=np.float32)

    def nearest(
        self,
        embedding: list[float],
        top_k: int,
        document_ids: set[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Return `(chunk_id, cosine)` of the nearest chunks, without their text.

        Reading text and metadata costs more than the search itself (3.4 ms
        against 1.0 ms for 50 hits), so hybrid search reads them only for the
        passages it returns.
        """
        if document_ids is not None and not document_ids:
            return []
        result = self._collection.query(
            query_embeddings=[embedding],
            n_results=top_k,
            where=_only(document_ids),
            include=["distances"],
        )
        # In cosine space Chroma's distance is 1 - cosine.
        return [
            (chunk_id, 1.0 - float(distance))
            for chunk_id, distance in zip(
                result["ids"][0], result["distances"][0], strict=True
            )
        ]

    def query(
        self,
        embedding: list[float],
        top_k: int,
        document_ids: set[str] | None = None,
    ) -> list[VectorHit]:
        """Return the nearest chunks, only of `document_ids` when it is given."""
        # Chroma returns no hits for an empty collection, so the query path
        # needs no count, which takes 9 ms at 200k chunks.
        if document_ids is not None and not document_ids:
            return []
        result = self._store.query(
            VectorStoreQuery(query_embedding=embedding, similarity_top_k=top_k),
            where=_only(document_ids),
        )
        hits = []
        for node, similarity in zip(result.nodes, result.similarities, strict=True):
            # ChromaVectorStore reports exp(-distance); in cosine space the
            # distance is 1 - cosine, so the cosine similarity is 1 + ln(score).
            cosine = 1.0 + math.log(max(similarity, 1e-12))
            hits.append(
                VectorHit(node.node_id, node.get_content(), dict(node.metadata), cosine)
            )
        return hits
