"""Shared fixtures: a real store built once, a real server, and a network guard."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
NETGUARD = TESTS / "netguard"
REFERENCE = Path(os.environ.get("KB_REFERENCE_DIR", ROOT.parent / "shared"))

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(NETGUARD))
import netguard_rules  # noqa: E402

netguard_rules.install()

from kb.service import KnowledgeBase  # noqa: E402
from kb.settings import Settings  # noqa: E402


def reference_path(*parts: str) -> Path:
    """Return a path in the reference corpus, or skip the test when it is absent."""
    path = REFERENCE.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"reference corpus not found at {path}; set KB_REFERENCE_DIR to the "
            "folder with corpus/ and evals/ to run this test"
        )
    return path


def text_pdfs(corpus: Path) -> list[Path]:
    """PDFs of the manifest whose note starts with "(a)": ones with a text layer."""
    with open(corpus / "MANIFEST.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        corpus / row["file"]
        for row in rows
        if row["file"].startswith("pdfs/") and row["note"].startswith("(a)")
    ]


def subprocess_env(data_dir: Path) -> dict[str, str]:
    """Environment for a `kb` subprocess: its own data folder, no network."""
    env = dict(os.environ)
    env["KB_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(NETGUARD), str(ROOT)])
    return env


@pytest.fixture(scope="session", autouse=True)
def no_network_attempts():
    """Fail the session if any code tried to reach a host other than loopback."""
    yield
    assert netguard_rules.attempts == [], (
        f"network access attempted: {netguard_rules.attempts}"
    )


@pytest.fixture(scope="session")
def reference_corpus() -> Path:
    return reference_path("corpus")


@pytest.fixture(scope="session")
def corpus_kb(reference_corpus, tmp_path_factory) -> KnowledgeBase:
    """A store with the reference documents: vet/, partner/ and text PDFs."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("reference-store"))
    kb = KnowledgeBase(settings)
    paths = [reference_corpus / "vet", reference_corpus / "partner"]
    paths += text_pdfs(reference_corpus)
    kb.ingest_report = kb.ingest(paths)
    return kb


@pytest.fixture(scope="session")
def cases_kb(tmp_path_factory) -> KnowledgeBase:
    """A store with the bundled case descriptions only."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("cases-store"))
    kb = KnowledgeBase(settings)
    kb.ingest_report = kb.ingest([ROOT / "corpus" / "cases"])
    return kb


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(corpus_kb):
    from api.app import create_app

    with LiveServer(create_app(kb=corpus_kb)) as server:
        yield server


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from the system packages, driven by Playwright."""
    if not shutil.which("chromium"):
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        yield browser
        browser.close()
