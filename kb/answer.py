"""Extractive answers: the sentences of the best passages that answer the question.

No language model is involved. Each sentence of the answer is quoted from a
retrieved passage and followed by the numbered citation of that passage; the
same sentence found in several documents is shown once with all its citations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kb.embedding import Embedder
from kb.search import Passage

NO_SOURCE = (
    "No supporting source was found in the knowledge base for this question. "
    "Try other words, or add documents that cover it."
)
# Names and acronyms such as INDIRE, AI4T or ArteMIA: two or more capitals.
NAME = re.compile(r"\b(?=\w*[A-Z]\w*[A-Z])[\w]{4,}\b")


def distinctive_names(question: str) -> list[str]:
    """Return the names and acronyms of a question, which a source must mention."""
    return sorted(set(NAME.findall(question)))


SENTENCE_BREAK = re.compile(r"(?<=[.!?;:])\s+(?=[\"“(\[A-ZÀ-ÖØ-Þ0-9])|\n+")
BULLET = re.compile(r"^\s*(?:[-*•▪◦]|\d+[.)])\s+")
MIN_WORDS = 5
TERMINAL = (".", "!", "?", ";", ":", ")", '"', "”")
MAX_SENTENCE_CHARS = 400
MAX_SENTENCES = 3
MAX_PER_PASSAGE = 2
PASSAGE_MARGIN = 0.12  # passages this far below the best one are not quoted
DUPLICATE_COSINE = 0.92  # sentences this close are the same statement


@dataclass
class Citation:
    n: int
    passage: Passage

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, **self.passage.to_dict()}


@dataclass
class Answer:
    question: str
    answer: str
    found: bool
    citations: list[Citation] = field(default_factory=list)
    # Set for answers written by a language model (kb.generate); an extractive
    # answer quotes its sources and keeps the defaults.
    generated: bool = False
    notice: str | None = None  # why the answer fell back or may be incomplete
    unsupported: list[dict[str, Any]] = field(default_factory=list)
    removed_citations: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "found": self.found,
            "citations": [citation.to_dict() for citation in self.citations],
            "generated": self.generated,
            "notice": self.notice,
            "unsupported": list(self.unsupported),
            "removed_citations": list(self.removed_citations),
        }


@dataclass
class _Candidate:
    text: str
    passage_index: int
    score: float = 0.0
    sources: list[int] = field(default_factory=list)


def split_sentences(text: str) -> list[str]:
    sentences = []
    for piece in SENTENCE_BREAK.split(text):
        piece = BULLET.sub("", piece).strip()
        words = len(piece.split())
        # A line without closing punctuation is a heading, unless it is long.
        if words < MIN_WORDS or (words < 20 and not piece.endswith(TERMINAL)):
            continue
        sentences.append(piece[:MAX_SENTENCE_CHARS])
    return sentences


def _candidates(passages: list[Passage]) -> list[_Candidate]:
    best = max(passage.similarity for passage in passages)
    return [
        _Candidate(sentence, index)
        for index, passage in enumerate(passages)
        if passage.similarity >= best - PASSAGE_MARGIN
        for sentence in split_sentences(passage.passage)
    ]


def _select(candidates: list[_Candidate], vectors: np.ndarray) -> list[_Candidate]:
    """Take the best sentences, merging a repeat into the sentence it repeats."""
    chosen: list[tuple[_Candidate, np.ndarray]] = []
    per_passage: dict[int, int] = {}
    for position in np.argsort([-c.score for c in candidates]):
        candidate, vector = candidates[position], vectors[position]
        repeat = next(
            (c for c, v in chosen if float(v @ vector) >= DUPLICATE_COSINE), None
        )
        if repeat is not None:
            if candidate.passage_index not in repeat.sources:
                repeat.sources.append(candidate.passage_index)
            continue
        if len(chosen) >= MAX_SENTENCES:
            continue
        if per_passage.get(candidate.passage_index, 0) >= MAX_PER_PASSAGE:
            continue
        per_passage[candidate.passage_index] = (
            per_passage.get(candidate.passage_index, 0) + 1
        )
        candidate.sources = [candidate.passage_index]
        chosen.append((candidate, vector))
    return [candidate for candidate, _ in chosen]


def extractive_answer(
    question: str,
    passages: list[Passage],
    embedder: Embedder,
    threshold: float,
    missing_names: list[str] | None = None,
) -> Answer:
    """Build an answer from the passages, or say that none supports it.

    `missing_names` are names from the question that no document mentions; a
    question about something the collection never names gets no answer.
    """
    if missing_names:
        names = ", ".join(missing_names)
        return Answer(question, f"{NO_SOURCE} No document mentions: {names}.", False)
    if not passages or max(p.similarity for p in passages) < threshold:
        return Answer(question, NO_SOURCE, found=False)

    candidates = _candidates(passages)
    if not candidates:
        candidates = [_Candidate(passages[0].passage[:MAX_SENTENCE_CHARS], 0)]
    vectors = embedder.encode_now([c.text for c in candidates])
    query = embedder.encode_query(question)
    for candidate, vector in zip(candidates, vectors, strict=True):
        # The passage score carries the context the single sentence lacks.
        passage_score = passages[candidate.passage_index].similarity
        candidate.score = 0.6 * float(vector @ query) + 0.4 * passage_score

    numbers: dict[int, int] = {}
    parts = []
    for candidate in _select(candidates, vectors):
        for index in candidate.sources:
            numbers.setdefault(index, len(numbers) + 1)
        markers = "".join(f"[{numbers[index]}]" for index in candidate.sources)
        parts.append(f"{candidate.text} {markers}")
    citations = [Citation(n, passages[index]) for index, n in numbers.items()]
    return Answer(question, " ".join(parts), found=True, citations=citations)
