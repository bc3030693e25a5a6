"""A killed ingestion leaves a store that the next start finds consistent."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kb import curation
from kb.catalogue import Catalogue
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.conftest import ROOT, subprocess_env

CASES = ROOT / "corpus" / "cases"


def descendants(pid: int) -> list[int]:
    # Each thread lists the children it started; the parser starts from a
    # worker thread.
    found = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    for child in list(found):
        if alive(child):
            found += descendants(child)
    return found


def alive(pid: int) -> bool:
    """Whether the process runs; a zombie waiting for its parent does not."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_during_ingest_leaves_consistent_store(tmp_path, seed):
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "ingest", str(CASES)],
        cwd=ROOT,
        env=subprocess_env(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Wait until indexing is under way, then kill at a random moment in it.
    catalogue_path = data_dir / "catalogue.sqlite3"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if catalogue_path.exists() and Catalogue(catalogue_path).counts()[0] >= 2:
            break
        time.sleep(0.05)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))
    assert process.poll() is None, "ingestion ended before it could be killed"
    helpers = descendants(process.pid)  # fork server, parser, resource tracker
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in helpers):
        time.sleep(0.1)
    assert [pid for pid in helpers if alive(pid)] == []

    kb = KnowledgeBase(Settings(data_dir=data_dir))
    report = curation.check(kb)
    assert report.consistent, report.to_dict()
    assert kb.catalogue.list(status="indexing") == []
    assert kb.vectors.count() == kb.stats()["chunks"]
    assert kb.keywords.count() == kb.stats()["chunks"]
    assert 2 <= kb.stats()["documents"] < len(list(CASES.glob("*.md")))
    finished = kb.ingest([CASES])
    assert finished.totals()["failed"] == 0
    assert curation.check(kb).consistent
