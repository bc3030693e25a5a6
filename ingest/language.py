"""Offline language detection for whole documents."""

from __future__ import annotations

from langdetect import DetectorFactory, LangDetectException, detect

DetectorFactory.seed = 0  # langdetect samples randomly; a fixed seed makes it stable
SAMPLE_CHARS = 6000


def detect_language(text: str) -> str:
    """Return the ISO 639-1 code of the text's main language, or "unknown"."""
    sample = text[:SAMPLE_CHARS]
    if sum(ch.isalpha() for ch in sample) < 20:
        return "unknown"
    try:
        return detect(sample)
    except LangDetectException:
        return "unknown"
