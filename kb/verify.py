"""Checks of generated sentences against the passages they cite.

A generated answer is split into sentences, and each sentence is compared with
the passages that its [n] markers cite, in two ways:

- similarity: the cosine similarity of its embedding (the knowledge base's
  sentence-transformers model) to the whole passage or to the passage's most
  similar sentence, whichever is higher;
- overlap: the share of its content words (stemmed, stop words dropped, as for
  BM25) that occur in the cited passages, their titles or sections.

A sentence is supported when either score reaches its threshold and every
number it states occurs in a cited passage. A sentence without citations is
checked against every retrieved passage and, when one supports it, gets that
passage's marker. This is a similarity test, not logical entailment: a
sentence that reuses a passage's words but changes its meaning can pass. The
thresholds come from `evals/verify_check.py`, which measures them on the gold
answers.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kb.embedding import Embedder
from kb.keyword import analyze
from kb.search import Passage

# Measured by evals/verify_check.py on the gold answers; see README.md.
MIN_SIMILARITY = 0.55
MIN_OVERLAP = 0.60

# A marker is [3], [1, 2], [1; 2] or a range such as [2-4].
MARKER = re.compile(r"\[\s*(\d+(?:\s*(?:[,;]|[-–])\s*\d+)*)\s*\]")
MARKER_PART = re.compile(r"(\d+)\s*[-–]\s*(\d+)|(\d+)")
MAX_RANGE = 10  # a wider range such as [1-99] is treated as a list of two
# End of a sentence: terminal punctuation, closing quotes or brackets, then
# the citation markers that follow it, then white space.
SENTENCE_END = re.compile(r"[.!?…][\"'”’)]*(?:[ \t]*\[[\d\s,;–-]+\])*(?P<space>\s+)")
LINE_END = re.compile(r"\s*\n\s*")
BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
# A number such as 18, 2018, 3.5, 30,000 or 1 005 (space between thousands),
# but not the digit in a name such as AI4T or 4C/ID.
NUMBER = re.compile(
    r"(?<![\w.,])(?:\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+(?:[.,]\d+)*)(?![\w])"
)
LOOSE_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
PASSAGE_SENTENCE_BREAK = re.compile(r"(?<=[.!?;:])\s+|\n+")
MIN_PASSAGE_SENTENCE_WORDS = 3


@dataclass
class SentenceCheck:
    """The verdict on one generated sentence."""

    sentence: str  # as shown, with its citation markers
    citations: list[int]
    supported: bool
    similarity: float = 0.0
    overlap: float = 0.0
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "sentence": self.sentence,
            "citations": list(self.citations),
            "similarity": round(self.similarity, 4),
            "overlap": round(self.overlap, 4),
            "reason": self.reason,
        }


def _marker_numbers(body: str) -> list[int]:
    numbers: list[int] = []
    for match in MARKER_PART.finditer(body):
        if match.group(3):
            numbers.append(int(match.group(3)))
            continue
        first, last = int(match.group(1)), int(match.group(2))
        if first <= last and last - first <= MAX_RANGE:
            numbers.extend(range(first, last + 1))
        else:
            numbers.extend([first, last])
    return numbers


def clean_citations(text: str, valid: Collection[int]) -> tuple[str, list[int]]:
    """Rewrite markers as [a][b], dropping numbers outside `valid`.

    Returns the new text and the sorted numbers that were dropped.
    """
    dropped: set[int] = set()

    def rewrite(match: re.Match[str]) -> str:
        kept: list[int] = []
        for number in _marker_numbers(match.group(1)):
            if number not in valid:
                dropped.add(number)
            elif number not in kept:
                kept.append(number)
        return "".join(f"[{number}]" for number in kept)

    cleaned = MARKER.sub(rewrite, text)
    cleaned = re.sub(r"(\[\d+\])[ \t]+(?=\[\d+\])", r"\1", cleaned)
    # A dropped marker can leave a space before punctuation or a double space.
    cleaned = re.sub(r"[ \t]+(?=[.,;:!?])", "", cleaned)
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
    return cleaned, sorted(dropped)


def cited_numbers(sentence: str) -> list[int]:
    """Return the citation numbers of a sentence in order of first appearance."""
    numbers: list[int] = []
    for match in MARKER.finditer(sentence):
        for number in _marker_numbers(match.group(1)):
            if number not in numbers:
                numbers.append(number)
    return numbers


def claim_text(sentence: str) -> str:
    """Return the sentence without citation markers and list bullets."""
    text = BULLET.sub("", MARKER.sub("", sentence))
    text = re.sub(r"\s+(?=[.,;:!?])", "", text)
    return " ".join(text.split())


def _separator(space: str) -> str:
    if "\n\n" in space.replace(" ", "").replace("\t", ""):
        return "\n\n"
    return "\n" if "\n" in space else " "


class SentenceSplitter:
    """Split streamed text into sentences, each with the separator after it.

    A sentence is complete once the first character of the next one has
    arrived: until then more citation markers could still follow it.
    """

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        self._buffer += text
        sentences: list[tuple[str, str]] = []
        while True:
            found = self._next_break()
            if found is None:
                return sentences
            end, restart = found
            sentence = self._buffer[:end].strip()
            separator = _separator(self._buffer[end:restart])
            self._buffer = self._buffer[restart:]
            if sentence:
                sentences.append((sentence, separator))

    def flush(self) -> list[tuple[str, str]]:
        """Return what is left as the last sentence."""
        rest, self._buffer = self._buffer.strip(), ""
        return [(rest, "")] if rest else []

    def _next_break(self) -> tuple[int, int] | None:
        """Return where the first complete sentence ends and the next starts."""
        candidates = []
        for match in SENTENCE_END.finditer(self._buffer):
            restart = match.end()
            if restart >= len(self._buffer):
                break  # the next sentence has not started yet
            following = self._buffer[restart]
            # "e.g. the" or "approx. five": a lower-case word continues the sentence.
            if following.islower() or following == "[":
                continue
            candidates.append((match.start("space"), restart))
            break
        line = LINE_END.search(self._buffer)
        if line is not None and line.end() < len(self._buffer):
            candidates.append((line.start(), line.end()))
        return min(candidates) if candidates else None


def split_sentences(text: str) -> list[tuple[str, str]]:
    """Split a whole generated text into (sentence, separator) pairs."""
    splitter = SentenceSplitter()
    return splitter.feed(text) + splitter.flush()


def _digits(number: str) -> str:
    # Digits only, so that 1,005 and 1.005 and 1 005 and 1005 compare equal.
    return re.sub(r"\D", "", number)


def _passage_numbers(text: str) -> set[str]:
    """Return the numbers of a passage, also those glued to words.

    Text extracted from PDFs often loses spaces ("while85million"), so the
    passage side also takes digit runs next to letters.
    """
    numbers = {_digits(number) for number in NUMBER.findall(text)}
    numbers.update(_digits(number) for number in LOOSE_NUMBER.findall(text))
    return numbers


def _passage_sentences(text: str) -> list[str]:
    pieces = [piece.strip() for piece in PASSAGE_SENTENCE_BREAK.split(text)]
    return [p for p in pieces if len(p.split()) >= MIN_PASSAGE_SENTENCE_WORDS]


@dataclass
class _PassageEvidence:
    vectors: np.ndarray  # the whole passage first, then each of its sentences
    stems: set[str]
    numbers: set[str]


@dataclass
class Thresholds:
    """Minimum scores for support; either one suffices."""

    similarity: float = MIN_SIMILARITY
    overlap: float = MIN_OVERLAP


@dataclass
class Verifier:
    """Check sentences against numbered passages ([1] is `passages[0]`)."""

    embedder: Embedder
    passages: list[Passage]
    language: str = "en"
    thresholds: Thresholds = field(default_factory=Thresholds)
    _evidence: dict[int, _PassageEvidence] = field(
        default_factory=dict, init=False, repr=False
    )

    @property
    def numbers(self) -> range:
        return range(1, len(self.passages) + 1)

    def _passage(self, number: int) -> _PassageEvidence:
        """Embed and analyse a passage the first time a sentence cites it."""
        if number not in self._evidence:
            passage = self.passages[number - 1]
            header = " ".join(part for part in (passage.title, passage.section) if part)
            texts = [passage.passage, *_passage_sentences(passage.passage)]
            self._evidence[number] = _PassageEvidence(
                vectors=self.embedder.encode(texts),
                stems=set(analyze(f"{header}\n{passage.passage}", self.language)),
                numbers=_passage_numbers(f"{header}\n{passage.passage}"),
            )
        return self._evidence[number]

    def scores(
        self, claim: str, vector: np.ndarray, stems: set[str], numbers: Iterable[int]
    ) -> tuple[float, float, list[str]]:
        """Return similarity, overlap and the claim's numbers the passages lack."""
        evidence = [self._passage(number) for number in numbers]
        similarity = max(float(np.max(e.vectors @ vector)) for e in evidence)
        known = set().union(*(e.stems for e in evidence))
        overlap = len(stems & known) / len(stems)
        present = set().union(*(e.numbers for e in evidence))
        missing = [n for n in NUMBER.findall(claim) if _digits(n) not in present]
        return similarity, overlap, missing

    def _supported(self, similarity: float, overlap: float, missing: list[str]) -> bool:
        if missing:
            return False
        return (
            similarity >= self.thresholds.similarity
            or overlap >= self.thresholds.overlap
        )

    def check(self, sentence: str) -> SentenceCheck:
        """Check one sentence whose markers cite only valid passage numbers.

        A supported sentence without citations comes back with the marker of
        the passage that supports it appended.
        """
        citations = [n for n in cited_numbers(sentence) if n in self.numbers]
        claim = claim_text(sentence)
        stems = set(analyze(claim, self.language))
        if not stems:
            # Nothing to check, such as a lone "Yes." or a heading of symbols.
            return SentenceCheck(sentence, citations, supported=True)
        vector = self.embedder.encode([claim])[0]
        if citations:
            similarity, overlap, missing = self.scores(claim, vector, stems, citations)
            supported = self._supported(similarity, overlap, missing)
            reason = ""
            if missing:
                reason = (
                    f"states {', '.join(missing)}, which the cited passages "
                    "do not contain"
                )
            elif not supported:
                reason = "the cited passages do not support it"
            return SentenceCheck(
                sentence, citations, supported, similarity, overlap, reason
            )
        return self._check_uncited(sentence, claim, vector, stems)

    def _check_uncited(
        self, sentence: str, claim: str, vector: np.ndarray, stems: set[str]
    ) -> SentenceCheck:
        supporting = []  # (similarity, overlap, number) of each supporting passage
        for number in self.numbers:
            similarity, overlap, missing = self.scores(claim, vector, stems, [number])
            if self._supported(similarity, overlap, missing):
                supporting.append((similarity, overlap, number))
        if not supporting:
            similarity, overlap = 0.0, 0.0
            if self.passages:
                similarity, overlap, _ = self.scores(claim, vector, stems, self.numbers)
            return SentenceCheck(
                sentence,
                [],
                False,
                similarity,
                overlap,
                "it cites no passage, and no retrieved passage supports it",
            )
        similarity, overlap, number = max(supporting)
        return SentenceCheck(
            f"{sentence} [{number}]", [number], True, similarity, overlap
        )
