"""One typed settings object, read from the environment in one place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def default_data_dir() -> Path:
    """Return the per-user data folder, following the XDG base directory rules."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "vet-kb"


class Settings(BaseSettings):
    """Settings of the knowledge base; each field is read from `KB_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="KB_", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder of the catalogue, the vector store and uploaded files.",
    )
    model: str = Field(
        default=DEFAULT_MODEL,
        description=(
            "Embedding model: the name of a packaged model or the path of a "
            "sentence-transformers model folder."
        ),
    )
    chunk_size: int = Field(
        default=200,
        ge=32,
        description="Maximum chunk length in the model's word-piece tokens.",
    )
    chunk_overlap: int = Field(
        default=32, ge=0, description="Tokens shared by neighbouring chunks."
    )
    top_k: int = Field(default=5, ge=1, le=100, description="Passages per search.")
    answer_threshold: float = Field(
        default=0.35,
        description=(
            "Minimum cosine similarity of the best passage for an answer to cite "
            "it; below it the answer says that no supporting source was found."
        ),
    )
    search_mode: Literal["dense", "keyword", "hybrid"] = Field(
        default="hybrid",
        description="Ranking: dense vectors, BM25 keywords, or both fused.",
    )
    curator_token_sha256: str = Field(
        default="",
        repr=False,
        description=(
            "Comma-separated SHA-256 hashes of curator tokens; writing through "
            "the API is disabled while this is empty."
        ),
    )
    reader_token_sha256: str = Field(
        default="",
        repr=False,
        description=(
            "Comma-separated SHA-256 hashes of reader tokens; when set, reading "
            "through the API needs a reader or curator token."
        ),
    )
    parse_timeout: float = Field(
        default=60,
        gt=0,
        description="Seconds one file may take to parse before it is reported.",
    )
    parse_memory_mb: int = Field(
        default=1024,
        ge=64,
        description="Memory in MB the parser of one file may add before it is stopped.",
    )
    max_upload_mb: float = Field(
        default=50, gt=0, description="Largest file accepted by upload, in MB."
    )
    llm_base_url: str = Field(
        default="",
        description=(
            "Base URL of an OpenAI-compatible chat API, such as "
            "http://127.0.0.1:11434/v1 for Ollama; empty keeps answers extractive."
        ),
    )
    llm_model: str = Field(
        default="", description="Model name sent to the LLM server, e.g. llama3.2."
    )
    llm_api_key: str = Field(
        default="",
        repr=False,
        description="API key sent to the LLM server; empty for servers without keys.",
    )
    llm_timeout: float = Field(
        default=60,
        gt=0,
        description=(
            "Seconds to wait for the LLM server (for a stream: between two chunks) "
            "before falling back to the extractive answer."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `kb serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port of `kb serve`.")
    chroma_url: str = Field(
        default="",
        description=(
            "URL of a Chroma server (`chroma run`), e.g. http://127.0.0.1:8001; "
            "empty keeps the vectors in the data folder."
        ),
    )
    chroma_collection: str = Field(
        default="passages",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$",
        description="Chroma collection of this knowledge base's chunk vectors.",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def keyword_path(self) -> Path:
        return self.data_dir / "keyword.sqlite3"

    @property
    def catalogue_path(self) -> Path:
        return self.data_dir / "catalogue.sqlite3"
