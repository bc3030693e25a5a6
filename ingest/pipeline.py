"""Choose a loader from the file's content, then detect language and chunk."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from ingest.chunking import Tokenizer, pack_sections, split_units
from ingest.documents import LoadedDocument, Unit
from ingest.language import detect_language
from ingest.loaders import (
    LoadError,
    load_docx,
    load_html,
    load_markdown,
    load_text,
)
from ingest.pdf import load_pdf

logger = logging.getLogger(__name__)

Loader = Callable[[Path, bytes], LoadedDocument]

LOADERS: dict[str, Loader] = {
    ".pdf": load_pdf,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".text": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
}
SUPPORTED_SUFFIXES = frozenset(LOADERS)


def _check_content(path: Path, data: bytes) -> None:
    """Reject a file whose bytes contradict its extension."""
    suffix = path.suffix.lower()
    if suffix == ".pdf" and b"%PDF-" not in data[:1024]:
        raise LoadError("the file has a .pdf extension but is not a PDF")
    if suffix == ".docx" and not data.startswith(b"PK\x03\x04"):
        raise LoadError("the file has a .docx extension but is not a DOCX (zip) file")
    if suffix not in (".pdf", ".docx") and b"\x00" in data[:8192]:
        raise LoadError("binary content in a text file; check the file type")


def _drop_title_from_sections(document: LoadedDocument) -> None:
    """Shorten `Title > Part` to `Part`: the title is already shown beside it."""
    prefix = f"{document.title} > "
    for unit in document.units:
        if unit.section and unit.section.startswith(prefix):
            unit.section = unit.section[len(prefix) :]


def text_document(
    file: str,
    title: str,
    text: str,
    metadata: dict | None,
    tokenizer: Tokenizer,
    chunk_size: int,
    chunk_overlap: int,
) -> LoadedDocument:
    """Build a document from text already in memory, such as a record of a dataset."""
    data = text.encode("utf-8")
    document = LoadedDocument(
        path=Path(file),
        title=title.strip()[:200] or file,
        doc_type="text",
        content_hash=hashlib.sha256(data).hexdigest(),
        units=[Unit(text=text.strip())],
        metadata=dict(metadata or {}),
    )
    return _finish(document, tokenizer, chunk_size, chunk_overlap)


def _finish(
    document: LoadedDocument, tokenizer: Tokenizer, chunk_size: int, chunk_overlap: int
) -> LoadedDocument:
    """Detect the language, pack short sections and split into chunks."""
    document.language = detect_language(document.text)
    document.units = pack_sections(document.units, tokenizer, chunk_size)
    _drop_title_from_sections(document)
    document.chunks = split_units(document.units, tokenizer, chunk_size, chunk_overlap)
    if not document.chunks:
        raise LoadError("no text left after chunking")
    return document


def parse_file(path: Path) -> LoadedDocument:
    """Read and parse one file into units, without chunking; raise LoadError."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise LoadError(
            f"unsupported file type {path.suffix!r}; supported: {supported}"
        )
    data = path.read_bytes()
    if not data:
        raise LoadError("the file is empty (0 bytes)")
    _check_content(path, data)
    return loader(path, data)


def load_document(
    path: Path,
    tokenizer: Tokenizer,
    chunk_size: int,
    chunk_overlap: int,
    parse_timeout_s: float | None = None,
    parse_memory_mb: int = 1024,
) -> LoadedDocument:
    """Load one file and split it into chunks; raise LoadError with the reason.

    With `parse_timeout_s`, parsing runs in a child process under that time
    limit and `parse_memory_mb` of extra memory.
    """
    if parse_timeout_s is None:
        document = parse_file(path)
    else:
        from ingest.isolation import parse_isolated

        document = parse_isolated(path, parse_timeout_s, parse_memory_mb)
    return _finish(document, tokenizer, chunk_size, chunk_overlap)
