"""The keyword index: BM25 over stemmed chunk text in SQLite FTS5.

Each chunk is tokenised with the stemmer and stop words of its document's
language and stored in an FTS5 table, which ranks with Okapi BM25 (k1 = 1.2,
b = 0.75) and updates in place: adding or deleting a document touches only its
own rows. A query is expanded to its stems in every language present in the
index, so an English query still matches stemmed German or Finnish text where
the words agree.

FTS5 scores every row that contains any query term, so a query of common words
costs time in proportion to the collection. When the query's terms occur in
more than POSTINGS_BUDGET rows together, only the rarest terms that fit the
budget select candidates. The best MIN_CANDIDATES of those (or
CANDIDATES_PER_RESULT x top_k, if more) are then scored with the full BM25
formula over every term.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
BM25_K1 = 1.2  # the FTS5 defaults, used again when candidates are rescored
BM25_B = 0.75
# Rows that one FTS5 query may score; measured in BENCHMARKS.md.
POSTINGS_BUDGET = 10_000
CANDIDATES_PER_RESULT = 4
MIN_CANDIDATES = 500

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
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    chunks INTEGER NOT NULL,
    tokens INTEGER NOT NULL
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


def _match(terms: dict[str, int]) -> str:
    # FTS5 sums BM25 over the phrases of a query, so repeating a term
    # multiplies its weight.
    return " OR ".join(
        _phrase(term) for term, weight in terms.items() for _ in range(weight)
    )


@dataclass
class QueryPlan:
    """The analysed query with the index's counts for its stems.

    `names` are the stems of names (two or more capitals) that occur in at
    most RARE_SHARE of chunks. `frequencies` gives the number of chunks that
    contain each stem. `chunks` and `tokens` give the size of the index.
    """

    stems: list[str]
    names: list[str]
    frequencies: dict[str, int]
    chunks: int
    tokens: int

    def weighted(self, name_weight: int = 1) -> dict[str, int]:
        """Return the stems with their weights: rare names count `name_weight` times."""
        rare = set(self.names)
        return {stem: name_weight if stem in rare else 1 for stem in self.stems}

    def idf(self, stem: str) -> float:
        """Inverse document frequency as FTS5 computes it."""
        found = self.frequencies.get(stem, 0)
        value = math.log((self.chunks - found + 0.5) / (found + 0.5))
        return value if value > 0 else 1e-6


class KeywordIndex:
    """BM25 search over chunks, persisted in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._languages_cache: list[str] | None = None
        self._languages_totals: tuple[int, int] | None = None
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            if db.execute("SELECT 1 FROM totals").fetchone() is None:
                # An index written before the totals existed counts them once.
                rows = db.execute("SELECT stems FROM chunks").fetchall()
                db.execute(
                    "INSERT INTO totals(id, chunks, tokens) VALUES(1, ?, ?)",
                    (len(rows), sum(len(row[0].split()) for row in rows)),
                )

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
        self.add_many([(document_id, chunk_ids, texts, language)])

    def add_many(self, documents: list[tuple[str, list[str], list[str], str]]) -> None:
        """Add or replace `(document_id, chunk_ids, texts, language)` items at once."""
        with self._connect() as db:
            for document_id, chunk_ids, texts, language in documents:
                stems = [analyze(text, language) for text in texts]
                rows = [
                    (" ".join(words), chunk_id, document_id)
                    for chunk_id, words in zip(chunk_ids, stems, strict=True)
                ]
                self._delete_rows(db, document_id)
                db.executemany(
                    "INSERT INTO chunks(stems, chunk_id, document_id) VALUES(?, ?, ?)",
                    rows,
                )
                db.execute(
                    "UPDATE totals SET chunks = chunks + ?, tokens = tokens + ?",
                    (len(rows), sum(len(words) for words in stems)),
                )
                db.execute(
                    "INSERT OR REPLACE INTO languages(document_id, language) "
                    "VALUES(?, ?)",
                    (document_id, language),
                )
        self._languages_cache = None

    def delete(self, document_id: str) -> None:
        with self._connect() as db:
            self._delete_rows(db, document_id)
            db.execute("DELETE FROM languages WHERE document_id=?", (document_id,))
        self._languages_cache = None

    @staticmethod
    def _delete_rows(db: sqlite3.Connection, document_id: str) -> None:
        """Delete a document's rows and take them off the totals."""
        # document_id is not indexed, so finding its rows scans the table:
        # once here, after which rows are deleted by rowid.
        rows = db.execute(
            "SELECT rowid, stems FROM chunks WHERE document_id=?", (document_id,)
        ).fetchall()
        if not rows:
            return
        db.executemany("DELETE FROM chunks WHERE rowid=?", [(r[0],) for r in rows])
        db.execute(
            "UPDATE totals SET chunks = chunks - ?, tokens = tokens - ?",
            (len(rows), sum(len(row[1].split()) for row in rows)),
        )

    def reset(self) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM languages")
            db.execute("UPDATE totals SET chunks = 0, tokens = 0")
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
        """Return the languages of the indexed documents, sorted."""
        with self._connect() as db:
            totals = db.execute("SELECT chunks, tokens FROM totals").fetchone()
            return self._languages(db, tuple(totals))

    def _languages(self, db: sqlite3.Connection, totals: tuple[int, int]) -> list[str]:
        # The list is read again whenever the totals changed, so that a
        # document added by another process is stemmed at once.
        with self._lock:
            if self._languages_cache is None or totals != self._languages_totals:
                rows = db.execute("SELECT DISTINCT language FROM languages")
                self._languages_cache = sorted(row[0] for row in rows)
                self._languages_totals = totals
            return self._languages_cache

    def plan(self, query: str) -> QueryPlan:
        """Analyse `query` once for the keyword and the name rankings."""
        with self._connect() as db:
            chunks, tokens = db.execute("SELECT chunks, tokens FROM totals").fetchone()
            languages = self._languages(db, (chunks, tokens))
            terms = query_terms(query, languages, name_weight=2)
            frequencies: dict[str, int] = {}
            if terms:
                marks = ",".join("?" * len(terms))
                rows = db.execute(
                    f"SELECT term, doc FROM vocabulary WHERE term IN ({marks})",
                    list(terms),
                )
                frequencies = dict(rows.fetchall())
        rare_limit = RARE_SHARE * max(chunks, 1)
        names = [
            stem
            for stem, weight in terms.items()
            if weight > 1 and frequencies.get(stem, 0) <= rare_limit
        ]
        return QueryPlan(list(terms), names, frequencies, chunks, tokens)

    def search_names(
        self,
        query: str | QueryPlan,
        top_k: int,
        document_ids: set[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Rank chunks by BM25 over the rare names of `query` alone.

        Returns nothing when the query names nothing rare in the index.
        """
        plan = self.plan(query) if isinstance(query, str) else query
        names = dict.fromkeys(plan.names, 1)
        return self.search_terms(names, plan, top_k, document_ids)

    def search(
        self,
        query: str | QueryPlan,
        top_k: int,
        document_ids: set[str] | None = None,
        name_weight: int = 1,
    ) -> list[tuple[str, float]]:
        """Return `(chunk_id, bm25)` pairs, best first; higher scores are better."""
        plan = self.plan(query) if isinstance(query, str) else query
        return self.search_terms(plan.weighted(name_weight), plan, top_k, document_ids)

    def search_terms(
        self,
        terms: dict[str, int],
        plan: QueryPlan,
        top_k: int,
        document_ids: set[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Rank chunks by BM25 over stemmed `terms`, given with their weights."""
        if not terms or document_ids is not None and not document_ids:
            return []
        by_rarity = sorted(terms, key=lambda term: plan.frequencies.get(term, 0))
        selective: dict[str, int] = {}
        postings = 0
        for term in by_rarity:
            postings += plan.frequencies.get(term, 0)
            if selective and postings > POSTINGS_BUDGET:
                break
            selective[term] = terms[term]
        if len(selective) == len(terms):
            return self._rank(terms, top_k, document_ids)
        depth = max(MIN_CANDIDATES, CANDIDATES_PER_RESULT * top_k)
        candidates = self._rank(selective, depth, document_ids, stems=True)
        return self._rescore(candidates, terms, plan)[:top_k]

    def _rank(
        self,
        terms: dict[str, int],
        limit: int,
        document_ids: set[str] | None,
        stems: bool = False,
    ) -> list:
        """Rows that match any of `terms`, ranked by FTS5's BM25, best first."""
        columns = "chunk_id, -bm25(chunks)" + (", stems" if stems else "")
        sql = f"SELECT {columns} FROM chunks WHERE chunks MATCH ?"
        params: list = [_match(terms)]
        if document_ids is not None:
            sql += f" AND document_id IN ({','.join('?' * len(document_ids))})"
            params += sorted(document_ids)
        sql += " ORDER BY bm25(chunks) LIMIT ?"
        params.append(limit)
        with self._connect() as db:
            rows = db.execute(sql, params).fetchall()
        if stems:
            return rows
        return [(row[0], float(row[1])) for row in rows]

    @staticmethod
    def _rescore(
        candidates: list[tuple[str, float, str]],
        terms: dict[str, int],
        plan: QueryPlan,
    ) -> list[tuple[str, float]]:
        """Score candidate rows with BM25 over all `terms`, as FTS5 would."""
        average = plan.tokens / max(plan.chunks, 1) or 1.0
        weights = {term: weight * plan.idf(term) for term, weight in terms.items()}
        scored = []
        for chunk_id, _, stems in candidates:
            words = stems.split()
            counts = Counter(words)
            norm = BM25_K1 * (1 - BM25_B + BM25_B * len(words) / average)
            score = 0.0
            for term, weight in weights.items():
                if count := counts.get(term):
                    score += weight * count * (BM25_K1 + 1) / (count + norm)
            scored.append((chunk_id, score))
        return sorted(scored, key=lambda item: -item[1])
