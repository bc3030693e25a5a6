"""The sentence check of generated answers, measured on the gold answers.

Needs the reference corpus and builds the expensive `corpus_kb` store. The
bounds sit a few points below the rates measured by evals/verify_check.py
(see BENCHMARKS.md), so a change that weakens the check fails here.
"""

from __future__ import annotations

import pytest

from evals.gold import load_gold
from evals.verify_check import collect_samples, rates
from kb.verify import Thresholds
from tests.conftest import reference_path


@pytest.fixture(scope="module")
def gold_rates(corpus_kb):
    questions = load_gold(reference_path("evals", "vet_gold.jsonl"))
    return rates(collect_samples(corpus_kb, questions), Thresholds())


def test_gold_answer_sentences_kept(gold_rates):
    assert gold_rates["cites gold"]["own n"] >= 25
    assert gold_rates["cites gold"]["own"] >= 0.70


def test_foreign_sentences_dropped(gold_rates):
    assert gold_rates["cites gold"]["foreign n"] >= 75
    assert gold_rates["cites gold"]["foreign"] >= 0.95
    assert gold_rates["no citation"]["foreign"] >= 0.95


def test_altered_numbers_dropped(gold_rates):
    assert gold_rates["cites all"]["altered numbers n"] >= 8
    assert gold_rates["cites all"]["altered numbers"] >= 0.85
