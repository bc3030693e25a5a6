"""The keyword index: BM25 over stemmed chunk text in SQLite FTS5.

Each chunk is tokenised with the stemmer and stop words of its document's
language and stored in an FTS5 table, which ranks with Okapi BM25 (k1 = 1.2,
b = 0.75) and updates in place: adding or deleting a document touches only its
own rows. A query is expanded to its stems in every language present in the
index, so an English query still matches stemmed German or Finnish text where
the words agree.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import Stemmer
from bm25s import stopwords as bm25s_stopwords

TOKEN = re.compile(r"\w+", re.UNICODE)
STEMMERS = {
    "en": "english",
    "fi": "finnish",
    "it": "italian",
    "de": "german",
    "es": "spanish",
    "fr": "french",
    "pt": "portuguese",
    "nl": "dutch",
    "sv": "swedish",
    "da": "danish",
    "no": "norwegian",
    "ca": "catalan",
    "ro": "romanian",
    "hu": "hungarian",
    "el": "greek",
    "ru": "russian",
    "tr": "turkish",
    "lt": "lithuanian",
}
STOPWORDS = {
    "en": bm25s_stopwords.STOPWORDS_EN,
    "de": bm25s_stopwords.STOPWORDS_GERMAN,
    "fr": bm25s_stopwords.STOPWORDS_FRENCH,
    "it": bm25s_stopwords.STOPWORDS_ITALIAN,
    "es": bm25s_stopwords.STOPWORDS_SPANISH,
    "pt": bm25s_stopwords.STOPWORDS_PORTUGUESE,
    "nl": bm25s_stopwords.STOPWORDS_DUTCH,
    "sv": bm25s_stopwords.STOPWORDS_SWEDISH,
    "da": bm25s_stopwords.STOPWORDS_DANISH,
    "no": bm25s_stopwords.STOPWORDS_NORWEGIAN,
    "tr": bm25s_stopwords.STOPWORDS_TURKISH,
    "ru": bm25s_stopwords.STOPWORDS_RUSSIAN,
}
MAX_QUERY_TERMS = 64
NAME = re.compile(r"\b(?=\w*[A-Z]\w*[A-Z])\w{3,}\b")
RARE_SHARE = 0.02  # a name in more chunks than this gets no extra weight

SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(
    stems,
    chunk_id UNINDEXED,
    document_id UNINDEXED,
    tokenize = "unicode61 remove_diacritics 0"
);
CREATE VIRTUAL TABLE IF NOT EXISTS vocabulary USING fts5vocab(chunks, row);
CREATE TABLE IF NOT EXISTS languages (
    document_id TEXT PRIMARY KEY,
    language TEXT NOT NULL
);
"""


@cache
def _stemmer(language: str) -> Stemmer.Stemmer | None:
    algorithm = STEMMERS.get(language)
    return Stemmer.Stemmer(algorithm) if algorithm else None


@cache
def _stopwords(language: str) -> frozenset[str]:
    return frozenset(STOPWORDS.get(language, ()))


def analyze(text: str, language: str) -> list[str]:
    """Lower-case, drop the language's stop words and stem what remains."""
    stop = _stopwords(language)
    tokens = [t for t in TOKEN.findall(text.lower()) if t not in stop]
    stemmer = _stemmer(language)
    return stemmer.stemWords(tokens) if stemmer else tokens


def query_terms(
    query: str, languages: Iterable[str], name_weight: int = 1
) -> dict[str, int]:
    """Return the stems of the query in each language, with their weights.

    Names and acronyms (two or more capitals, such as DiAgnostiK or SEAMEO)
    weigh `name_weight` times as much as other words. In hybrid search the
    dense ranking covers the meaning, and one rare name identifies the
    requested document better than the common words around it. The index
    drops the extra weight again for names that are common in it.
    """
    languages = sorted(set(languages)) or ["en"]
    stop_everywhere = set.intersection(*(set(_stopwords(lang)) for lang in languages))
    names = {name.lower() for name in NAME.findall(query)}
    terms: dict[str, int] = {}
    for token in TOKEN.findall(query.lower()):
        if token in stop_everywhere:
            continue
        weight = name_weight if token in names else 1
        for language in languages:
            if token in _stopwords(language):
                continue
            stemmer = _stemmer(language)
            term = stemmer.stemWord(token) if stemmer else token
            terms[term] = max(terms.get(term, 0), weight)
    return dict(list(terms.items())[:MAX_QUERY_TERMS])


def _phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class KeywordIndex:
    """BM25 search over chunks, persisted in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._languages_cache: list[str] | None = None
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def add(
        self, document_id: str, chunk_ids: list[str], texts: list[str], language: str
    ) -> None:
        rows = [
            (" ".join(analyze(text, language)), chunk_id, document_id)
            for chunk_id, text in zip(chunk_ids, texts, strict=True)
        ]
        with self._connect() as db:
            db.execute("DELETE FROM chunks WHERE document_id=?", (document_id,))
            db.executemany(
                "INSERT INTO chunks(stems, chunk_id, document_id) VALUES(?, ?, ?)", rows
            )
            db.execute(
                "INSERT OR REPLACE INTO languages(document_id, language) VALUES(?, ?)",
                (document_id, language),
            )
        self._languages_cache = None

    def delete(self, document_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM chunks WHERE document_id=?", (document_id,))
            db.execute("DELETE FROM languages WHERE document_id=?", (document_id,))
        self._languages_cache = None

    def reset(self) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM languages")
        self._languages_cache = None

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def chunk_document_ids(self) -> list[str]:
        """Return the document id of every chunk in the index."""
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT document_id FROM chunks")]

    def document_ids(self) -> set[str]:
        with self._connect() as db:
            rows = db.execute("SELECT DISTINCT document_id FROM chunks").fetchall()
        return {row[0] for row in rows}

    def languages(self) -> list[str]:
        with self._lock:
            if self._languages_cache is None:
                with self._connect() as db:
                    rows = db.execute("SELECT DISTINCT language FROM languages")
                    self._languages_cache = sorted(row[0] for row in rows)
            return self._languages_cache

    def _keep_rare_boosts(self, terms: dict[str, int]) -> dict[str, int]:
        """Drop the name weight of terms found in more than RARE_SHARE of chunks."""
        boosted = [term for term, weight in terms.items() if weight > 1]
        if not boosted:
            return terms
        with self._connect() as db:
            total = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] or 1
            marks = ",".join("?" * len(boosted))
            rows = db.execute(
                f"SELECT term, doc FROM vocabulary WHERE term IN ({marks})", boosted
            ).fetchall()
        common = {term for term, count in rows if count > RARE_SHARE * total}
        return {term: 1 if term in common else weight for term, weight in terms.items()}

    def search_names(
        self, query: str, top_k: int, document_ids: set[str] | None = None
    ) -> list[tuple[str, float]]:
        """Rank chunks by BM25 over the rare names of `query` alone.

        Returns nothing when the query names nothing rare in the index.
        """
        terms = self._keep_rare_boosts(query_terms(query, self.languages(), 2))
        names = {term: 1 for term, weight in terms.items() if weight > 1}
        return self.search_terms(names, top_k, document_ids)

    def search(
        self,
        query: str,
        top_k: int,
        document_ids: set[str] | None = None,
        name_weight: int = 1,
    ) -> list[tuple[str, float]]:
        """Return `(chunk_id, bm25)` pairs, best first; higher scores are better."""
        terms = query_terms(query, self.languages(), name_weight)
        if not terms:
            return []
        return self.search_terms(self._keep_rare_boosts(terms), top_k, document_ids)

    def search_terms(
        self,
        terms: dict[str, int],
        top_k: int,
        document_ids: set[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Rank chunks by BM25 over stemmed `terms`, given with their weights."""
        if not terms or document_ids is not None and not document_ids:
            return []
        # FTS5 sums BM25 over the phrases of a query, so repeating a term
        # multiplies its weight.
        match = " OR ".join(
            _phrase(term) for term, weight in terms.items() for _ in range(weight)
        )
        sql = "SELECT chunk_id, -bm25(chunks) FROM chunks WHERE chunks MATCH ?"
        params: list = [match]
        if document_ids is not None:
            sql += f" AND document_id IN ({','.join('?' * len(document_ids))})"
            params += sorted(document_ids)
        sql += " ORDER BY bm25(chunks) LIMIT ?"
        params.append(top_k)
        with self._connect() as db:
            return [(row[0], float(row[1])) for row in db.execute(sql, params)]
