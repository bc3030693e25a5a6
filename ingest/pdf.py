"""PDF loading with pypdf: one unit per page, 1-based page numbers."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError, PyPdfError

from ingest.documents import LoadedDocument, Unit
from ingest.loaders import LoadError, _content_hash, _first_line, _require_text

logger = logging.getLogger(__name__)

FILE_NAME = re.compile(r"\.(html?|docx?|pptx?|odt|pdf|tmp|tex)$|^tmp-", re.I)


def _normalise_page_text(text: str) -> str:
    text = text.replace("\x00", "")
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)  # re-join words hyphenated at EOL
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _open(path: Path, data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data))
    except (PdfReadError, PyPdfError, ValueError) as error:
        raise LoadError(f"not a readable PDF: {error}") from error
    if reader.is_encrypted:
        try:
            decrypted = reader.decrypt("")
        except (FileNotDecryptedError, NotImplementedError, PyPdfError) as error:
            raise LoadError(f"encrypted PDF that cannot be opened: {error}") from error
        if not decrypted:
            raise LoadError(
                "password-protected PDF: remove the password (or save an "
                "unprotected copy) and ingest that file"
            )
    return reader


def _title(reader: PdfReader, first_page: str, path: Path) -> str:
    try:
        meta_title = (reader.metadata or {}).get("/Title")
    except (PyPdfError, ValueError, UnicodeDecodeError):
        meta_title = None
    if isinstance(meta_title, str):
        meta_title = meta_title.strip()
        # Exporters often put a temporary file name or a layer name in /Title.
        if len(meta_title) >= 8 and not FILE_NAME.search(meta_title):
            return meta_title[:200]
    return _first_line(first_page) or path.stem


def load_pdf(path: Path, data: bytes) -> LoadedDocument:
    reader = _open(path, data)
    units: list[Unit] = []
    try:
        page_count = len(reader.pages)
        for number, page in enumerate(reader.pages, start=1):
            text = _normalise_page_text(page.extract_text() or "")
            if text:
                units.append(Unit(text=text, page=number))
    except (PdfReadError, PyPdfError, ValueError, KeyError) as error:
        raise LoadError(f"PDF could not be parsed: {error}") from error
    _require_text(
        units,
        path,
        "the pages are probably scanned images; run OCR on the file first",
    )
    return LoadedDocument(
        path=path,
        title=_title(reader, units[0].text, path),
        doc_type="pdf",
        content_hash=_content_hash(data),
        units=units,
        pages=page_count,
    )
