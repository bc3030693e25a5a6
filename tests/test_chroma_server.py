"""Server mode: the vectors on a real Chroma server (`chroma run`) on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from kb import curation
from kb.auth import new_token
from kb.cli import main
from kb.errors import ConfigError
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.conftest import ROOT, LiveServer, free_port, subprocess_env

CASES = ROOT / "corpus" / "cases"
QUERIES = [
    "VR training for welding apprentices",
    "chatbot for study counselling",
    "easy-to-read museum visit",
    "SEAMEO smart education readiness",
]
TOKEN, TOKEN_HASH = new_token()


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    binary = Path(sys.executable).with_name("chroma")
    port = free_port()
    log = tmp_path_factory.mktemp("chroma-log") / "server.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                str(binary),
                "run",
                "--path",
                str(tmp_path_factory.mktemp("chroma-server")),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/v2/heartbeat", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"chroma run did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def embedded_kb(tmp_path_factory) -> KnowledgeBase:
    kb = KnowledgeBase(Settings(data_dir=tmp_path_factory.mktemp("embedded")))
    kb.ingest([CASES])
    return kb


@pytest.fixture(scope="module")
def server_kb(chroma_url, tmp_path_factory) -> KnowledgeBase:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("server-mode"),
        chroma_url=chroma_url,
        chroma_collection="cases-on-server",
        curator_token_sha256=TOKEN_HASH,
    )
    kb = KnowledgeBase(settings)
    report = kb.ingest([CASES])
    assert report.totals()["failed"] == 0
    return kb


def ranking(kb: KnowledgeBase, query: str, mode: str) -> list[str]:
    return [p.chunk_id for p in kb.search(query, top_k=5, mode=mode)]


def test_vectors_live_on_the_server(server_kb, chroma_url):
    assert server_kb.vectors.location == chroma_url
    assert not server_kb.settings.store_dir.exists()
    assert server_kb.vectors.count() == server_kb.stats()["chunks"] > 0


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_server_ranks_like_embedded_store(server_kb, embedded_kb, mode):
    for query in QUERIES:
        assert ranking(server_kb, query, mode) == ranking(embedded_kb, query, mode)


def test_api_upload_ask_delete_on_server(server_kb):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    text = b"# Quarry drill rig\n\nApprentices rehearse drilling on the Gravlix rig."
    with (
        LiveServer(create_app(kb=server_kb)) as live,
        httpx.Client(base_url=live.url, timeout=120) as client,
    ):
        uploaded = client.post(
            "/api/documents", files={"file": ("gravlix.md", text)}, headers=auth
        )
        assert uploaded.status_code == 201
        document_id = uploaded.json()["document_id"]
        hits = client.get("/api/search", params={"q": "Gravlix drill rig", "k": 1})
        assert hits.json()[0]["document_id"] == document_id
        deleted = client.delete(f"/api/documents/{document_id}", headers=auth)
        assert deleted.status_code == 200
        hits = client.get("/api/search", params={"q": "Gravlix drill rig", "k": 5})
        assert document_id not in {hit["document_id"] for hit in hits.json()}
    assert curation.check(server_kb).consistent


def test_writes_split_at_batch_limit_on_server(server_kb, tmp_path):
    server_kb.vectors.max_batch = 25
    path = tmp_path / "long.txt"
    path.write_text(" ".join(f"Step {i} of the lift plan." for i in range(900)))
    try:
        outcome = server_kb.ingest_file(path)
    finally:
        server_kb.vectors.max_batch = 5461
    assert outcome.chunks > 25
    document_ids = server_kb.vectors.chunk_document_ids()
    assert document_ids.count(outcome.document_id) == outcome.chunks
    server_kb.delete(outcome.document_id)


def test_migrate_copies_vectors_without_reembedding(
    embedded_kb, chroma_url, monkeypatch, capsys
):
    data_dir = embedded_kb.settings.data_dir
    monkeypatch.setenv("KB_DATA_DIR", str(data_dir))
    argv = ["migrate", "--to", chroma_url, "--collection", "migrated-cases"]
    assert main(argv) == 0
    assert f"copied {embedded_kb.vectors.count()} of" in capsys.readouterr().out
    moved = KnowledgeBase(
        Settings(
            data_dir=data_dir,
            chroma_url=chroma_url,
            chroma_collection="migrated-cases",
        )
    )
    for query in QUERIES:
        assert ranking(moved, query, "hybrid") == ranking(embedded_kb, query, "hybrid")
    assert main(argv) == 2  # the collection is not empty any more


def test_unreachable_server_is_a_clear_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError, match="cannot reach the Chroma server") as error:
        KnowledgeBase(Settings(data_dir=tmp_path, chroma_url=url))
    assert "chroma run" in str(error.value)


def worker_processes(pid: int) -> list[int]:
    """Child processes of `pid` that multiprocessing spawned, as uvicorn's workers."""
    children = [
        child
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return [
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def test_workers_serve_the_api_from_several_processes(server_kb, chroma_url):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **subprocess_env(server_kb.settings.data_dir),
        "KB_CHROMA_URL": chroma_url,
        "KB_CHROMA_COLLECTION": server_kb.settings.chroma_collection,
    }
    kb_binary = Path(sys.executable).with_name("kb")
    command = [str(kb_binary), "serve", "--workers", "2", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "kb serve --workers did not start"
            time.sleep(0.5)
        assert len(worker_processes(process.pid)) == 2

        def search(query: str) -> list[str]:
            response = httpx.get(
                f"{url}/api/search", params={"q": query, "k": 5}, timeout=60
            )
            response.raise_for_status()
            return [hit["chunk_id"] for hit in response.json()]

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(search, QUERIES * 4))
        expected = [ranking(server_kb, query, "hybrid") for query in QUERIES] * 4
        assert results == expected
        assert httpx.get(f"{url}/", timeout=10).status_code == 404  # no web UI
    finally:
        process.terminate()
        output = process.communicate(timeout=60)[0].decode()
    assert "served only without --workers" in output


def test_workers_need_a_chroma_server(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("KB_CHROMA_URL", raising=False)
    assert main(["serve", "--workers", "2"]) == 2
    assert "--workers 2 needs the vectors on a Chroma server" in capsys.readouterr().err
