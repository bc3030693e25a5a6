"""Several clients at once against the real server: writers take turns, readers
never wait for them, and the store stays consistent."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.app import create_app
from kb import curation
from kb.auth import new_token
from kb.catalogue import INDEXING
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.conftest import ROOT, LiveServer

TOKEN, TOKEN_HASH = new_token()
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MUSEUM = ROOT / "corpus" / "cases" / "artemia-easy-to-read-virtual-museum.md"
TOPICS = ["welding", "nursing", "carpentry", "logistics", "baking", "plumbing"]


def note(marker: str, topic: str) -> bytes:
    return (
        f"# {marker} practice\n\nApprentices in {topic} train with the {marker} "
        f"headset. Teachers of {topic} run the {marker} sessions in small groups "
        "and review each session with the class afterwards.\n"
    ).encode()


def long_note(sentences: int) -> bytes:
    lines = [
        f"Session {n}: the trainee checks valve {n}, logs pressure, and the "
        f"instructor rates step {n} on the shared simulator dashboard."
        for n in range(sentences)
    ]
    return ("# Simulator logbook\n\n" + "\n\n".join(lines)).encode()


@pytest.fixture()
def server(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", curator_token_sha256=TOKEN_HASH)
    kb = KnowledgeBase(settings)
    kb.ingest([MUSEUM])
    with LiveServer(create_app(kb=kb)) as live:
        yield kb, live


def upload(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return client.post(
        "/api/documents",
        files={"file": (name, data, "application/octet-stream")},
        headers=AUTH,
    )


def test_uploads_deletes_and_questions_at_once(server):
    kb, live = server
    markers = [f"Zorblax{n}" for n in range(6)]
    keep, drop = markers[:4], markers[4:]
    errors: list[str] = []
    done = threading.Event()

    def writer(marker: str, topic: str) -> None:
        with httpx.Client(base_url=live.url, timeout=120) as client:
            response = upload(client, f"{marker}.md", note(marker, topic))
            if response.status_code != 201:
                errors.append(f"upload {marker}: {response.status_code}")
                return
            if marker in drop:
                document_id = response.json()["document_id"]
                deleted = client.delete(f"/api/documents/{document_id}", headers=AUTH)
                if deleted.status_code != 200:
                    errors.append(f"delete {marker}: {deleted.status_code}")

    def reader() -> int:
        answered = 0
        with httpx.Client(base_url=live.url, timeout=120) as client:
            while not done.is_set():
                ask_response = client.post(
                    "/api/ask", json={"question": "VR museum visit"}
                )
                searched = client.get("/api/search", params={"q": "headset", "k": 3})
                listed = client.get("/api/documents")
                for response in (ask_response, searched, listed):
                    if response.status_code != 200:
                        errors.append(f"{response.url.path}: {response.status_code}")
                answered += 1
        return answered

    with ThreadPoolExecutor(max_workers=9) as pool:
        readers = [pool.submit(reader) for _ in range(3)]
        writers = [
            pool.submit(writer, marker, topic)
            for marker, topic in zip(markers, TOPICS, strict=True)
        ]
        for future in writers:
            future.result()
        done.set()
        rounds = [future.result() for future in readers]

    assert errors == []
    assert all(count >= 1 for count in rounds)
    for marker in keep:
        assert any(marker in p.passage for p in kb.search(marker, top_k=3)), marker
    for marker in drop:
        assert not any(marker in p.passage for p in kb.search(marker, top_k=10))
    files = {record.file for record in kb.documents()}
    assert files == {str(MUSEUM)} | {f"{marker}.md" for marker in keep}
    report = curation.check(kb)
    assert report.consistent, report.to_dict()


def test_ask_during_long_upload(server):
    kb, live = server
    finished = threading.Event()
    result: dict[str, int] = {}

    def long_upload() -> None:
        with httpx.Client(base_url=live.url, timeout=300) as client:
            result["status"] = upload(client, "logbook.md", long_note(900)).status_code
        finished.set()

    thread = threading.Thread(target=long_upload)
    thread.start()
    deadline = time.monotonic() + 120
    while not kb.catalogue.list(status=INDEXING):
        assert time.monotonic() < deadline, "the upload never started indexing"
        assert not finished.is_set(), "the upload ended before it could be observed"
        time.sleep(0.02)

    with httpx.Client(base_url=live.url, timeout=120) as client:
        answer = client.post("/api/ask", json={"question": "easy-to-read museum"})
        documents = client.get("/api/documents").json()
    answered_during_upload = not finished.is_set()
    thread.join()

    assert answer.status_code == 200
    assert answer.json()["found"] is True
    assert answered_during_upload
    statuses = {d["file"]: d["status"] for d in documents}
    assert statuses["logbook.md"] == INDEXING
    assert result["status"] == 201
    assert kb.catalogue.list(status=INDEXING) == []
    assert curation.check(kb).consistent


def test_request_encoding_matches_ingestion_encoding(cases_kb):
    embedder = cases_kb.embedder
    texts = ["How do I run VR sessions for a class of 20?", "Welding", "VR " * 300]
    assert embedder.encode_now(texts) == pytest.approx(embedder.encode(texts), abs=1e-5)
    assert embedder.encode_query(texts[0]) == pytest.approx(
        embedder.encode(texts[:1])[0], abs=1e-6
    )
