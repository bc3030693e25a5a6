"""BEIR-format datasets: corpus.jsonl, queries.jsonl and qrels/test.tsv."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kb.service import TextItem

PREFIX = "beir:"  # file name given to each record, followed by its corpus id


@dataclass
class BeirDataset:
    folder: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def corpus(self, limit_ids: set[str] | None = None) -> Iterator[TextItem]:
        """Yield the corpus records as texts to index, optionally only some ids."""
        with open(self.folder / "corpus.jsonl", encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                if limit_ids is not None and row["_id"] not in limit_ids:
                    continue
                text = f"{row.get('title', '')}\n{row['text']}".strip()
                yield TextItem(
                    PREFIX + row["_id"], row.get("title") or row["_id"], text
                )

    def corpus_ids(self) -> list[str]:
        with open(self.folder / "corpus.jsonl", encoding="utf-8") as handle:
            return [json.loads(line)["_id"] for line in handle]


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    """Read the queries and the judgments of one split of a BEIR folder."""
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["_id"] in qrels:
                queries[row["_id"]] = row["text"]
    return BeirDataset(folder, queries, qrels)


def corpus_id(file: str) -> str:
    """Return the corpus id of a passage indexed from a BEIR record."""
    return file[len(PREFIX) :] if file.startswith(PREFIX) else file
