"""Turn files into chunks with metadata, independent of the store."""

from ingest.documents import Chunk, LoadedDocument, Unit
from ingest.pipeline import SUPPORTED_SUFFIXES, load_document, text_document

__all__ = [
    "Chunk",
    "LoadedDocument",
    "SUPPORTED_SUFFIXES",
    "Unit",
    "load_document",
    "text_document",
]
