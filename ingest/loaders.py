"""Loaders: one function per file type, each returning a LoadedDocument."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import re
import zipfile
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup

from ingest.cases import is_case_description, validate_case
from ingest.documents import LoadedDocument, Unit
from ingest.markdown import (
    FrontMatterError,
    clean_inline,
    format_heading_path,
    split_front_matter,
    split_sections,
)

logger = logging.getLogger(__name__)

MIN_WORDS = 1  # a file without a single word has no usable text layer
LONG_FIELD_WORDS = 20  # front matter strings this long are indexed as text
NOT_PROSE_FIELDS = {"title", "source", "licence", "license", "author", "url", "link"}
WORD = re.compile(r"\w{2,}")
H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.M)


class LoadError(ValueError):
    """The file could not be read as its type; the message gives the reason."""


def _content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _require_text(units: list[Unit], path: Path, hint: str) -> None:
    words = sum(len(WORD.findall(unit.text)) for unit in units)
    if words < MIN_WORDS:
        raise LoadError(f"no extractable text ({words} words found); {hint}")


def _plain_metadata(value: Any) -> Any:
    """Make YAML values JSON-safe (dates become ISO strings) and drop empty ones."""
    if isinstance(value, dict):
        cleaned = {str(k): _plain_metadata(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, "", [], {})}
    if isinstance(value, list | tuple):
        items = [_plain_metadata(v) for v in value]
        return [v for v in items if v not in (None, "", [], {})]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _first_line(text: str, limit: int = 120) -> str | None:
    for line in text.splitlines():
        line = line.strip(" #*\t")
        if len(line) >= 3:
            return line[:limit]
    return None


def _title_from_name(path: Path) -> str:
    """Turn a file name such as `before-you-choose.md` into `Before you choose`."""
    words = re.sub(r"[_\-]+", " ", path.stem).strip()
    return words[:1].upper() + words[1:] if words else path.name


def _first_h1(body: str) -> str | None:
    match = H1.search(body)
    return clean_inline(match.group(1)).strip() if match else None


def _markdown_units(body: str) -> list[Unit]:
    return [
        Unit(text=section.text, section=format_heading_path(section.heading_path))
        for section in split_sections(body)
    ]


def _long_text_fields(metadata: dict[str, Any]) -> list[Unit]:
    """Index descriptive front matter (an abstract, a summary) once, as its own unit."""
    units = []
    for key, value in metadata.items():
        if key.lower() in NOT_PROSE_FIELDS or not isinstance(value, str):
            continue
        if len(value.split()) >= LONG_FIELD_WORDS:
            units.append(Unit(text=value.strip(), section=key, mergeable=False))
    return units


def load_markdown(path: Path, data: bytes) -> LoadedDocument:
    try:
        front_matter, body = split_front_matter(_decode(data))
    except FrontMatterError as error:
        raise LoadError(str(error)) from error
    metadata = _plain_metadata(front_matter)
    doc_type = "markdown"
    if is_case_description(front_matter):
        try:
            metadata = validate_case(metadata)
        except ValueError as error:
            raise LoadError(str(error)) from error
        doc_type = "case"
    units = _long_text_fields(metadata) + _markdown_units(body)
    _require_text(units, path, "the file holds only markup or front matter")
    title = (
        metadata.get("title")
        or metadata.get("pageTitle")
        or _first_h1(body)
        or _title_from_name(path)
    )
    return LoadedDocument(
        path=path,
        title=str(title).strip()[:200],
        doc_type=doc_type,
        content_hash=_content_hash(data),
        units=units,
        metadata=metadata,
    )


def load_text(path: Path, data: bytes) -> LoadedDocument:
    text = _decode(data).replace("\r\n", "\n").strip()
    units = [Unit(text=text)] if text else []
    _require_text(units, path, "the file is empty")
    return LoadedDocument(
        path=path,
        title=_first_line(text) or path.stem,
        doc_type="text",
        content_hash=_content_hash(data),
        units=units,
    )


def load_html(path: Path, data: bytes) -> LoadedDocument:
    soup = BeautifulSoup(_decode(data), "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    for tag in soup(["script", "style", "noscript", "template", "svg", "head"]):
        tag.decompose()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            text = heading.get_text(" ", strip=True)
            heading.replace_with(f"\n{'#' * level} {text}\n")
    text = soup.get_text("\n")
    text = re.sub(r"[ \t]+", " ", text)
    units = _markdown_units(re.sub(r"\n\s*\n+", "\n\n", text))
    _require_text(units, path, "the page has no visible text")
    return LoadedDocument(
        path=path,
        title=title or _first_h1(text) or _title_from_name(path),
        doc_type="html",
        content_hash=_content_hash(data),
        units=units,
    )


def load_docx(path: Path, data: bytes) -> LoadedDocument:
    import docx  # imported here: python-docx is only needed for .docx files

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise LoadError(f"not a readable DOCX file: {error}") from error
    lines = []
    for paragraph in document.paragraphs:
        style = paragraph.style.name if paragraph.style is not None else ""
        text = paragraph.text.strip()
        level = re.match(r"Heading (\d)", style)
        if text and level:
            lines.append(f"{'#' * int(level.group(1))} {text.lstrip('# ')}")
        else:
            lines.append(text)
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    units = _markdown_units("\n".join(lines))
    _require_text(units, path, "the document has no text paragraphs")
    title = document.core_properties.title or next(
        (u.section for u in units if u.section), path.stem
    )
    return LoadedDocument(
        path=path,
        title=title.split(" > ")[0],
        doc_type="docx",
        content_hash=_content_hash(data),
        units=units,
    )
