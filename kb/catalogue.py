"""The catalogue: the source of truth for which documents exist and their state.

The vector store is derived from it. A document is visible to search only while
its status is `ready`, which is set after all its chunks are written.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    abs_path TEXT NOT NULL,
    title TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    language TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    metadata TEXT NOT NULL,
    overrides TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    chunks INTEGER NOT NULL DEFAULT 0,
    pages INTEGER,
    indexed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    abs_path TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS files_by_document ON files(document_id);
CREATE TABLE IF NOT EXISTS failures (
    abs_path TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
"""

READY = "ready"
INDEXING = "indexing"


@dataclass
class DocumentRecord:
    """One catalogue row, with every file name that carries the same content."""

    id: str
    file: str
    abs_path: str
    title: str
    doc_type: str
    language: str
    content_hash: str
    status: str
    chunks: int
    pages: int | None
    indexed_at: str
    metadata: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)  # set by curators


class Catalogue:
    """SQLite catalogue; a connection per call makes it safe to share across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            columns = {
                row["name"] for row in db.execute("PRAGMA table_info(documents)")
            }
            if "overrides" not in columns:  # written before metadata edits existed
                db.execute(
                    "ALTER TABLE documents "
                    "ADD COLUMN overrides TEXT NOT NULL DEFAULT '{}'"
                )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        try:
            with db:
                yield db
        finally:
            db.close()

    def get_meta(self, key: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO meta(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def begin_document(self, record: DocumentRecord) -> None:
        """Insert a document in state `indexing`, before its chunks are written."""
        self.begin_documents([record])

    def begin_documents(self, records: list[DocumentRecord]) -> None:
        """Insert documents in state `indexing`, in one transaction."""
        with self._connect() as db:
            db.executemany(
                "INSERT INTO documents(id, file, abs_path, title, doc_type, language, "
                "content_hash, metadata, overrides, status, chunks, pages, indexed_at) "
                "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        record.id,
                        record.file,
                        record.abs_path,
                        record.title,
                        record.doc_type,
                        record.language,
                        record.content_hash,
                        json.dumps(record.metadata, ensure_ascii=False),
                        json.dumps(record.overrides, ensure_ascii=False),
                        INDEXING,
                        record.chunks,
                        record.pages,
                        _now(),
                    )
                    for record in records
                ],
            )

    def mark_ready(self, document_id: str, abs_path: str, file: str) -> None:
        """Make a fully written document visible and point its file name at it."""
        self.mark_ready_many([(document_id, abs_path, file)])

    def mark_ready_many(self, documents: list[tuple[str, str, str]]) -> None:
        """`mark_ready` for `(document_id, abs_path, file)` items, one transaction."""
        with self._connect() as db:
            for document_id, abs_path, file in documents:
                db.execute(
                    "UPDATE documents SET status=?, indexed_at=? WHERE id=?",
                    (READY, _now(), document_id),
                )
                self._link_file(db, abs_path, file, document_id)

    def add_file(self, abs_path: str, file: str, document_id: str) -> None:
        """Record another file name that carries the content of a document."""
        with self._connect() as db:
            self._link_file(db, abs_path, file, document_id)

    @staticmethod
    def _link_file(
        db: sqlite3.Connection, abs_path: str, file: str, document_id: str
    ) -> None:
        db.execute(
            "INSERT INTO files(abs_path, file, document_id) VALUES(?, ?, ?) "
            "ON CONFLICT(abs_path) DO UPDATE SET file=excluded.file, "
            "document_id=excluded.document_id",
            (abs_path, file, document_id),
        )

    def delete(self, document_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM files WHERE document_id=?", (document_id,))
            db.execute("DELETE FROM documents WHERE id=?", (document_id,))

    def set_overrides(self, document_id: str, overrides: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE documents SET overrides=? WHERE id=?",
                (json.dumps(overrides, ensure_ascii=False), document_id),
            )

    def file_links(self, document_id: str) -> list[tuple[str, str]]:
        """Return `(abs_path, file)` for every file name of a document."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT abs_path, file FROM files WHERE document_id=?", (document_id,)
            ).fetchall()
        return [(row["abs_path"], row["file"]) for row in rows]

    def remove_file(self, abs_path: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM files WHERE abs_path=?", (abs_path,))

    def all_file_links(self) -> list[tuple[str, str]]:
        """Return `(abs_path, document_id)` for every file name in the catalogue."""
        with self._connect() as db:
            rows = db.execute("SELECT abs_path, document_id FROM files").fetchall()
        return [(row["abs_path"], row["document_id"]) for row in rows]

    def document_for_file(self, abs_path: str) -> str | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT document_id FROM files WHERE abs_path=?", (abs_path,)
            ).fetchone()
        return row["document_id"] if row else None

    def record_failure(self, abs_path: str, file: str, reason: str) -> None:
        """Remember the last failed ingestion of a file, until it succeeds."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO failures(abs_path, file, reason, failed_at) "
                "VALUES(?, ?, ?, ?) ON CONFLICT(abs_path) DO UPDATE SET "
                "file=excluded.file, reason=excluded.reason, "
                "failed_at=excluded.failed_at",
                (abs_path, file, reason, _now()),
            )

    def clear_failure(self, abs_path: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM failures WHERE abs_path=?", (abs_path,))

    def failures(self) -> list[dict[str, str]]:
        """Return the files whose last ingestion failed, with the reason."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT abs_path, file, reason, failed_at FROM failures "
                "ORDER BY failed_at"
            ).fetchall()
        return [dict(row) for row in rows]

    def get(self, document_id: str) -> DocumentRecord | None:
        records = self._select("WHERE d.id=?", (document_id,))
        return records[0] if records else None

    def list(self, status: str | None = None) -> list[DocumentRecord]:
        if status is None:
            return self._select("", ())
        return self._select("WHERE d.status=?", (status,))

    def ready_ids(self) -> set[str]:
        with self._connect() as db:
            rows = db.execute("SELECT id FROM documents WHERE status=?", (READY,))
            return {row["id"] for row in rows}

    def counts(self) -> tuple[int, int]:
        """Return the number of ready documents and of their chunks."""
        with self._connect() as db:
            row = db.execute(
                "SELECT COUNT(*) AS n, COALESCE(SUM(chunks), 0) AS c "
                "FROM documents WHERE status=?",
                (READY,),
            ).fetchone()
        return int(row["n"]), int(row["c"])

    def _select(self, where: str, params: tuple) -> list[DocumentRecord]:
        with self._connect() as db:
            rows = db.execute(
                f"SELECT d.* FROM documents d {where} ORDER BY d.title", params
            ).fetchall()
            files = db.execute("SELECT document_id, file FROM files ORDER BY file")
            names: dict[str, list[str]] = {}
            for row in files:
                names.setdefault(row["document_id"], []).append(row["file"])
        return [
            DocumentRecord(
                id=row["id"],
                file=row["file"],
                abs_path=row["abs_path"],
                title=row["title"],
                doc_type=row["doc_type"],
                language=row["language"],
                content_hash=row["content_hash"],
                status=row["status"],
                chunks=row["chunks"],
                pages=row["pages"],
                indexed_at=row["indexed_at"],
                metadata=json.loads(row["metadata"]),
                files=names.get(row["id"], []),
                overrides=json.loads(row["overrides"]),
            )
            for row in rows
        ]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
