"""Data classes passed from loading to chunking to the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Unit:
    """A citable span of a document: one PDF page or one Markdown section."""

    text: str
    page: int | None = None
    section: str | None = None
    mergeable: bool = True  # False keeps the unit out of section packing


@dataclass
class Chunk:
    """A passage small enough for the embedding model, with its position."""

    text: str
    unit_index: int
    chunk_index: int
    start_char: int
    end_char: int
    page: int | None = None
    section: str | None = None


@dataclass
class LoadedDocument:
    """A parsed file: its units, its metadata and, once split, its chunks."""

    path: Path
    title: str
    doc_type: str
    content_hash: str
    units: list[Unit]
    metadata: dict[str, Any] = field(default_factory=dict)
    pages: int | None = None
    language: str = "unknown"
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(unit.text for unit in self.units)
