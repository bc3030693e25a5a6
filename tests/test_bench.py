"""The benchmark's own parts: percentiles and growing a store with added chunks."""

from __future__ import annotations

import random

import pytest

from evals.bench import grow, percentiles, stored_chunks
from kb import curation
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.conftest import ROOT


def test_percentiles_pick_ranked_values():
    result = percentiles([float(n) for n in range(1, 101)])
    assert result == {"p50_ms": 50.5, "p95_ms": 96.0, "p99_ms": 100.0}


def test_grow_adds_ready_chunks_to_all_three_stores(tmp_path):
    kb = KnowledgeBase(Settings(data_dir=tmp_path / "data"))
    kb.ingest([ROOT / "corpus" / "cases"])
    before = kb.vectors.count()
    target = before + 450
    assert grow(kb, target, stored_chunks(kb), random.Random(0)) == target
    assert kb.vectors.count() == kb.keywords.count() == target
    assert kb.stats()["chunks"] == target
    assert curation.check(kb).consistent
    generated = [r for r in kb.documents() if r.file.startswith("generated/")]
    assert sum(r.chunks for r in generated) == 450
    assert all(r.status == "ready" for r in generated)
    vectors = stored_chunks(kb)[1]
    assert vectors[-1] @ vectors[-1] == pytest.approx(1.0, abs=1e-4)
