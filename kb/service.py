"""The knowledge base: one object that ingests, searches and answers."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from ingest import SUPPORTED_SUFFIXES, LoadedDocument, load_document, text_document
from ingest.loaders import LoadError
from kb.answer import Answer, distinctive_names, extractive_answer
from kb.catalogue import INDEXING, READY, Catalogue, DocumentRecord
from kb.embedding import Embedder, load_embedder, resolve_model_path
from kb.errors import ConfigError, DocumentNotFoundError, ModelMismatchError
from kb.filters import Filters, field_values, matching_documents
from kb.keyword import KeywordIndex
from kb.retrieval import Retriever, SearchMode
from kb.search import Passage
from kb.settings import Settings
from kb.vectors import VectorIndex

logger = logging.getLogger(__name__)

INDEXED, SKIPPED, FAILED = "indexed", "skipped", "failed"
CASE_FIELDS = ("institution", "country", "technology", "use_case", "sector", "year")
READY_MARGIN = 10


@dataclass
class FileOutcome:
    """Outcome of ingesting one file: indexed, skipped or failed, with the reason."""

    file: str
    status: str
    reason: str = ""
    document_id: str | None = None
    chunks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestReport:
    outcomes: list[FileOutcome] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        counts = {INDEXED: 0, SKIPPED: 0, FAILED: 0}
        for outcome in self.outcomes:
            counts[outcome.status] += 1
        counts["chunks"] = sum(o.chunks for o in self.outcomes if o.status == INDEXED)
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [outcome.to_dict() for outcome in self.outcomes],
            "totals": self.totals(),
        }


@dataclass
class TextItem:
    """A text to index without a file, e.g. one record of an evaluation dataset."""

    file: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def keyword_text(title: str, section: str | None, text: str) -> str:
    """Return the text BM25 indexes for a chunk: title, section and chunk."""
    return "\n".join(part for part in (title, section, text) if part)


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Expand folders into their supported files, sorted; keep named files."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix.lower() in SUPPORTED_SUFFIXES
                    and not any(
                        part.startswith(".") for part in p.relative_to(path).parts
                    )
                )
            )
        else:
            files.append(path)
    return files


ANSWER_PASSAGES = 8  # passages an answer reads, whatever the search top-k


class KnowledgeBase:
    """Catalogue, vector store and embedding model behind one interface."""

    def __init__(self, settings: Settings, check_model: bool = True) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.catalogue = Catalogue(settings.catalogue_path)
        if check_model:
            self._check_model()
        self.vectors = VectorIndex(
            settings.store_dir, settings.chroma_url, settings.chroma_collection
        )
        self.keywords = KeywordIndex(settings.keyword_path)
        self._embedder: Embedder | None = None
        self._retriever: Retriever | None = None
        self._embedder_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._recover_interrupted()
        self.fill_keyword_index()

    # -- set-up --------------------------------------------------------------

    def _check_model(self) -> None:
        _, name = resolve_model_path(self.settings.model)
        built_with = self.catalogue.get_meta("embedding_model")
        if built_with is not None and built_with != name:
            raise ModelMismatchError(
                f"the index in {self.settings.data_dir} was built with the embedding "
                f"model {built_with!r}, but KB_MODEL is {name!r}. Vectors of two "
                "models cannot be compared: run `kb reindex` to rebuild the index "
                "with the new model, or set KB_MODEL back."
            )

    @property
    def embedder(self) -> Embedder:
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.settings.model)
                self._check_chunk_size(self._embedder)
            return self._embedder

    def _check_chunk_size(self, embedder: Embedder) -> None:
        if self.settings.chunk_size > embedder.max_chunk_tokens:
            raise ConfigError(
                f"KB_CHUNK_SIZE={self.settings.chunk_size} is larger than the "
                f"{embedder.max_chunk_tokens} tokens that model {embedder.name} can "
                "embed with a chunk's title; lower KB_CHUNK_SIZE"
            )

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the write lock of this process and of the data folder.

        Readers never take it; writers in any process take turns.
        """
        with self._write_lock, open(self.settings.data_dir / "write.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _recover_interrupted(self) -> None:
        """Remove documents whose ingestion was killed before they became ready."""
        with open(self.settings.data_dir / "write.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process is writing; its documents are not stale
            for record in self.catalogue.list(status=INDEXING):
                logger.warning(
                    "removing interrupted document %s (%s)", record.id, record.file
                )
                self.vectors.delete(record.id)
                self.keywords.delete(record.id)
                self.catalogue.delete(record.id)
            fcntl.flock(lock, fcntl.LOCK_UN)

    def fill_keyword_index(self) -> None:
        """Index in BM25 the ready documents the keyword index lacks, from Chroma."""
        missing = self.catalogue.ready_ids() - self.keywords.document_ids()
        for document_id in sorted(missing):
            record = self.catalogue.get(document_id)
            hits = self.vectors.get(
                [f"{document_id}:{index}" for index in range(record.chunks)]
            )
            self.keywords.add(
                document_id,
                [hit.chunk_id for hit in hits],
                [
                    keyword_text(record.title, hit.metadata.get("section"), hit.text)
                    for hit in hits
                ],
                record.language,
            )
        if missing:
            logger.info("added %d documents to the keyword index", len(missing))

    # -- ingestion -----------------------------------------------------------

    def ingest(
        self,
        paths: Iterable[Path],
        on_file: Callable[[FileOutcome], None] | None = None,
    ) -> IngestReport:
        """Index files and folders; one failing file never stops the others.

        The next file is parsed and chunked in a second thread while the
        current one is encoded and written.
        """
        report = IngestReport()
        files = collect_files(paths)
        with ThreadPoolExecutor(1, thread_name_prefix="kb-parse") as parser:
            loading = parser.submit(self._load_file, files[0]) if files else None
            for index in range(len(files)):
                loaded = loading.result()
                if index + 1 < len(files):
                    loading = parser.submit(self._load_file, files[index + 1])
                outcome = self._index_loaded(loaded)
                report.outcomes.append(outcome)
                if on_file:
                    on_file(outcome)
        totals = report.totals()
        logger.info(
            "ingestion finished: %(indexed)d indexed, %(skipped)d skipped, "
            "%(failed)d failed, %(chunks)d chunks",
            totals,
        )
        return report

    def ingest_file(
        self,
        path: Path,
        overrides: dict[str, Any] | None = None,
        file: str | None = None,
        force: bool = False,
    ) -> FileOutcome:
        """Index one file. A file that cannot be read or parsed is a failed outcome.

        `overrides` are metadata set by a curator and win over the file's own.
        `file` is the name to show, by default the path as given. `force`
        rewrites a document even when its content is already indexed.
        """
        return self._index_loaded(self._load_file(path, file, force), overrides, force)

    def _load_file(
        self, path: Path, file: str | None = None, force: bool = False
    ) -> FileOutcome | tuple[LoadedDocument, str, str]:
        """Parse and chunk a file, or return its outcome if nothing is to be indexed."""
        file = file or str(path)
        abs_path = str(path.resolve())
        try:
            if not path.is_file():
                raise LoadError(f"file not found: {file}")
            if not force and (known := self._skip_known(path, file, abs_path)):
                return known
            document = load_document(
                path,
                tokenizer=self.embedder.tokenize,
                chunk_size=self.settings.chunk_size,
                chunk_overlap=self.settings.chunk_overlap,
                parse_timeout_s=self.settings.parse_timeout,
                parse_memory_mb=self.settings.parse_memory_mb,
            )
        except (LoadError, OSError) as error:
            logger.warning("failed to ingest %s: %s", file, error)
            self.catalogue.record_failure(abs_path, file, str(error))
            return FileOutcome(file, FAILED, str(error))
        self.catalogue.clear_failure(abs_path)
        return document, file, abs_path

    def _index_loaded(
        self,
        loaded: FileOutcome | tuple[LoadedDocument, str, str],
        overrides: dict[str, Any] | None = None,
        force: bool = False,
    ) -> FileOutcome:
        """Encode and write a loaded document, unless loading decided its outcome."""
        if isinstance(loaded, FileOutcome):
            return loaded
        document, file, abs_path = loaded
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        document.metadata.update(overrides)
        with self.writing():
            if force:
                self._remove(document.content_hash[:16])
            return self._store(document, file, abs_path, overrides=overrides)

    def ingest_texts(
        self,
        items: Iterable[TextItem],
        on_item: Callable[[FileOutcome], None] | None = None,
        batch_size: int = 256,
    ) -> IngestReport:
        """Index texts already in memory (dataset records), encoding in batches.

        The next batch is chunked in a second thread while the current one is
        encoded and written.
        """
        report = IngestReport()
        iterator = iter(items)
        batches = iter(lambda: list(islice(iterator, batch_size)), [])
        with ThreadPoolExecutor(1, thread_name_prefix="kb-chunk") as chunker:
            chunking = chunker.submit(self._chunk_text_batch, next(batches, []))
            while True:
                chunked = chunking.result()
                if not chunked:
                    break
                chunking = chunker.submit(self._chunk_text_batch, next(batches, []))
                report.outcomes.extend(self._index_text_batch(chunked, on_item))
        return report

    def _chunk_text_batch(
        self, batch: list[TextItem]
    ) -> list[LoadedDocument | FileOutcome]:
        chunked: list[LoadedDocument | FileOutcome] = []
        for item in batch:
            try:
                chunked.append(self._chunk_text_item(item))
            except LoadError as error:
                chunked.append(FileOutcome(item.file, FAILED, str(error)))
        return chunked

    def _index_text_batch(
        self,
        chunked: list[LoadedDocument | FileOutcome],
        on_item: Callable[[FileOutcome], None] | None,
    ) -> list[FileOutcome]:
        pending = [item for item in chunked if not isinstance(item, FileOutcome)]

        # Encode only documents not indexed yet, in one call across documents,
        # and write them to the stores together; _store reports the others.
        new: dict[str, LoadedDocument] = {}
        for document in pending:
            document_id = document.content_hash[:16]
            if document_id not in new and not self._is_ready(document_id):
                new[document_id] = document
        vectors = self._embed_chunks(list(new.values()))
        by_id: dict[str, np.ndarray] = {}
        start = 0
        for document_id, document in new.items():
            by_id[document_id] = vectors[start : start + len(document.chunks)]
            start += len(document.chunks)

        outcomes: list[FileOutcome] = []
        with self.writing():
            # Another process may have written some of them meanwhile.
            new = {key: doc for key, doc in new.items() if not self._is_ready(key)}
            written: dict[str, FileOutcome] = {}
            if new:
                written = self._write_new_batch(new, by_id)
            for document in chunked:
                if isinstance(document, FileOutcome):
                    outcomes.append(document)  # failed to chunk
                    continue
                document_id = document.content_hash[:16]
                if document_id in written:
                    outcomes.append(written.pop(document_id))
                    continue
                file = str(document.path)
                outcomes.append(self._store(document, file, file))
        if on_item:
            for outcome in outcomes:
                on_item(outcome)
        return outcomes

    def _write_new_batch(
        self, documents: dict[str, LoadedDocument], vectors: dict[str, np.ndarray]
    ) -> dict[str, FileOutcome]:
        """Write new text documents with one vector-store call; each ready last."""
        previous = {}
        records = []
        keyword_rows = []
        rows = []
        for document_id, document in documents.items():
            file = str(document.path)
            previous[document_id] = self.catalogue.document_for_file(file)
            records.append(self._record(document_id, document, file, file))
            keyword_rows.append(self._keyword_rows(document_id, document))
            rows.append(
                self._vector_rows(document_id, document, file, vectors[document_id])
            )

        self.catalogue.begin_documents(records)
        try:
            self.keywords.add_many(keyword_rows)
            self.vectors.add_many(rows)
        except BaseException:
            for document_id in documents:
                self._remove(document_id)
            raise

        self._record_model()
        self.catalogue.mark_ready_many(
            [
                (document_id, str(doc.path), str(doc.path))
                for document_id, doc in documents.items()
            ]
        )
        outcomes = {}
        for document_id, document in documents.items():
            file = str(document.path)
            self._drop_if_orphaned(previous[document_id], keep=document_id)
            chunks = len(document.chunks)
            outcomes[document_id] = FileOutcome(file, INDEXED, "", document_id, chunks)
        logger.info("indexed %d texts in one batch", len(documents))
        return outcomes

    def _chunk_text_item(self, item: TextItem) -> LoadedDocument:
        return text_document(
            item.file,
            item.title,
            item.text,
            item.metadata,
            tokenizer=self.embedder.tokenize,
            chunk_size=self.settings.chunk_size,
            chunk_overlap=self.settings.chunk_overlap,
        )

    def _embed_chunks(self, documents: list[LoadedDocument]) -> np.ndarray:
        """Encode the chunks of the documents, each behind its title and section."""
        embedder = self.embedder
        texts = [
            embedder.passage_text(document.title, chunk.section, chunk.text)
            for document in documents
            for chunk in document.chunks
        ]
        return embedder.encode(texts)

    def _is_ready(self, document_id: str) -> bool:
        record = self.catalogue.get(document_id)
        return record is not None and record.status == READY

    def _store(
        self,
        document: LoadedDocument,
        file: str,
        abs_path: str,
        vectors: np.ndarray | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> FileOutcome:
        document_id = document.content_hash[:16]
        previous_id = self.catalogue.document_for_file(abs_path)
        existing = self.catalogue.get(document_id)
        if existing is not None and existing.status == READY:
            return self._skip(existing, file, abs_path, previous_id)

        self._write_document(document_id, document, file, abs_path, vectors, overrides)
        self._drop_if_orphaned(previous_id, keep=document_id)
        logger.info(
            "indexed %s as %s (%d chunks)", file, document_id, len(document.chunks)
        )
        return FileOutcome(file, INDEXED, "", document_id, len(document.chunks))

    def _skip_known(self, path: Path, file: str, abs_path: str) -> FileOutcome | None:
        """Skip a file whose exact bytes are indexed already, without parsing it."""
        with path.open("rb") as handle:
            document_id = hashlib.file_digest(handle, "sha256").hexdigest()[:16]
        if not self._is_ready(document_id):
            return None
        with self.writing():
            existing = self.catalogue.get(document_id)
            if existing is None or existing.status != READY:
                return None  # deleted meanwhile: parse and index it
            self.catalogue.clear_failure(abs_path)
            previous_id = self.catalogue.document_for_file(abs_path)
            return self._skip(existing, file, abs_path, previous_id)

    def _skip(
        self,
        existing: DocumentRecord,
        file: str,
        abs_path: str,
        previous_id: str | None,
    ) -> FileOutcome:
        """Record another name of an indexed document and report it skipped."""
        self.catalogue.add_file(abs_path, file, existing.id)
        self._drop_if_orphaned(previous_id, keep=existing.id)
        if previous_id == existing.id:
            return FileOutcome(file, SKIPPED, "unchanged", existing.id, existing.chunks)
        return FileOutcome(
            file,
            SKIPPED,
            f"same content as {existing.file}",
            existing.id,
            existing.chunks,
        )

    def _write_document(
        self,
        document_id: str,
        document: LoadedDocument,
        file: str,
        abs_path: str,
        vectors: np.ndarray | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        """Write the catalogue entry and chunks to both indexes; ready comes last."""
        self.catalogue.begin_document(
            self._record(document_id, document, file, abs_path, overrides)
        )
        try:
            if vectors is None:
                vectors = self._embed_chunks([document])
            self.keywords.add_many([self._keyword_rows(document_id, document)])
            self.vectors.add_many(
                [self._vector_rows(document_id, document, file, vectors)]
            )
        except BaseException:
            self._remove(document_id)
            raise
        self._record_model()
        self.catalogue.mark_ready(document_id, abs_path, file)

    @staticmethod
    def _record(
        document_id: str,
        document: LoadedDocument,
        file: str,
        abs_path: str,
        overrides: dict[str, Any] | None = None,
    ) -> DocumentRecord:
        return DocumentRecord(
            id=document_id,
            file=file,
            abs_path=abs_path,
            title=document.title,
            doc_type=document.doc_type,
            language=document.language,
            content_hash=document.content_hash,
            status=INDEXING,
            chunks=len(document.chunks),
            pages=document.pages,
            indexed_at="",
            metadata=document.metadata,
            overrides=overrides or {},
        )

    @staticmethod
    def _keyword_rows(
        document_id: str, document: LoadedDocument
    ) -> tuple[str, list[str], list[str], str]:
        return (
            document_id,
            [f"{document_id}:{index}" for index in range(len(document.chunks))],
            [
                keyword_text(document.title, chunk.section, chunk.text)
                for chunk in document.chunks
            ],
            document.language,
        )

    def _vector_rows(
        self, document_id: str, document: LoadedDocument, file: str, vectors
    ) -> tuple[str, list[str], list[dict[str, Any]], list[list[float]]]:
        return (
            document_id,
            [chunk.text for chunk in document.chunks],
            [
                self._chunk_metadata(document_id, document, file, c)
                for c in document.chunks
            ],
            vectors.tolist(),
        )

    def _record_model(self) -> None:
        """Record which model built the index, when the first document is written."""
        if self.catalogue.get_meta("embedding_model") is None:
            self.catalogue.set_meta("embedding_model", self.embedder.name)
            self.catalogue.set_meta("embedding_dimension", str(self.embedder.dimension))

    @staticmethod
    def _chunk_metadata(document_id, document, file, chunk) -> dict[str, Any]:
        metadata = {
            "document_id": document_id,
            "file": file,
            "title": document.title,
            "doc_type": document.doc_type,
            "language": document.language,
            "page": chunk.page,
            "section": chunk.section,
            "chunk_index": chunk.chunk_index,
            "start_char": chunk.start_char,
            "end_char": chunk.end_char,
        }
        for name in CASE_FIELDS:
            if name in document.metadata:
                metadata[name] = document.metadata[name]
        return metadata

    def _drop_if_orphaned(self, document_id: str | None, keep: str) -> None:
        """Delete a document that no file name points at any more."""
        if document_id is None or document_id == keep:
            return
        record = self.catalogue.get(document_id)
        if record is not None and not record.files:
            self._remove(document_id)

    def _remove(self, document_id: str) -> None:
        """Delete a document from both indexes, then from the catalogue."""
        self.vectors.delete(document_id)
        self.keywords.delete(document_id)
        self.catalogue.delete(document_id)

    def delete(self, document_id: str) -> None:
        if self.catalogue.get(document_id) is None:
            raise DocumentNotFoundError(document_id)
        with self.writing():
            self._remove(document_id)
        logger.info("deleted document %s", document_id)

    def reindex(
        self, on_file: Callable[[FileOutcome], None] | None = None
    ) -> IngestReport:
        """Rebuild the index from the catalogued files with the configured model."""
        records = self.catalogue.list()
        paths = [Path(record.abs_path) for record in records]
        with self.writing():
            self.vectors.reset()
            self.keywords.reset()
            for record in records:
                self.catalogue.delete(record.id)
            self.catalogue.set_meta("embedding_model", self.embedder.name)
            self.catalogue.set_meta("embedding_dimension", str(self.embedder.dimension))
        return self.ingest(paths, on_file)

    # -- reading -------------------------------------------------------------

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self._retriever = Retriever(self.vectors, self.keywords, self.embedder)
        return self._retriever

    def search(
        self,
        query: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
    ) -> list[Passage]:
        """Return the top-k passages of ready documents that pass the filters."""
        top_k = top_k or self.settings.top_k
        mode = mode or self.settings.search_mode
        if filters:
            allowed = matching_documents(self.catalogue.list(status=READY), filters)
            return self.retriever.search(query, top_k, allowed, mode)
        # Without filters every document may match, so readiness is checked after
        # ranking; the margin covers chunks of documents still being written.
        # NOTE: a document of more than READY_MARGIN matching chunks that is still
        # being written can shorten a result list until it is ready.
        ready = self.catalogue.ready_ids()
        passages = self.retriever.search(query, top_k + READY_MARGIN, None, mode)
        return [p for p in passages if p.document_id in ready][:top_k]

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
    ) -> Answer:
        passages = self.answer_passages(question, top_k, filters, mode)
        return self.answer_from(question, passages)

    def answer_passages(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
    ) -> list[Passage]:
        """Return the passages an answer reads: at least ANSWER_PASSAGES of them."""
        top_k = max(top_k or self.settings.top_k, ANSWER_PASSAGES)
        return self.search(question, top_k=top_k, filters=filters, mode=mode)

    def answer_from(self, question: str, passages: list[Passage]) -> Answer:
        """Build the extractive answer to `question` from retrieved passages."""
        missing = [
            name
            for name in distinctive_names(question)
            if not any(
                self.vectors.contains_text(variant)
                for variant in {name, name.lower(), name.upper(), name.capitalize()}
            )
        ]
        return extractive_answer(
            question,
            passages,
            self.embedder,
            self.settings.answer_threshold,
            missing_names=missing,
        )

    def filter_values(self) -> dict[str, list[str]]:
        """Return the values each filter field takes in the ready documents."""
        return field_values(self.catalogue.list(status=READY))

    def documents(self) -> list[DocumentRecord]:
        return self.catalogue.list()

    def document(self, document_id: str) -> DocumentRecord:
        record = self.catalogue.get(document_id)
        if record is None:
            raise DocumentNotFoundError(document_id)
        return record

    def source_file(self, document_id: str) -> Path:
        """Return the original file of a document, for opening at a page."""
        record = self.document(document_id)
        path = Path(record.abs_path)
        if not path.is_file():
            raise DocumentNotFoundError(document_id)
        return path

    def stats(self) -> dict[str, Any]:
        documents, chunks = self.catalogue.counts()
        return {
            "data_dir": str(self.settings.data_dir),
            "documents": documents,
            "chunks": chunks,
            "model": self.catalogue.get_meta("embedding_model")
            or resolve_model_path(self.settings.model)[1],
            "pid": os.getpid(),
        }
