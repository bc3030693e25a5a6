"""Curators through the real API: tokens, upload, edit, re-index, delete, check."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import httpx
import pytest
from pypdf import PdfWriter

from api.app import create_app
from kb import curation
from kb.auth import new_token
from kb.service import KnowledgeBase
from kb.settings import Settings
from kb.uploads import UploadError, safe_file_name
from tests.conftest import ROOT, LiveServer, reference_path

TOKEN, TOKEN_HASH = new_token()
MARKER = "Quokkaweld"
CASE = (ROOT / "corpus" / "cases" / "ikea-vr-onboarding-experience.md").read_bytes()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("curated")
    settings = Settings(data_dir=data_dir, curator_token_sha256=TOKEN_HASH)
    kb = KnowledgeBase(settings)
    kb.ingest([ROOT / "corpus" / "cases" / "artemia-easy-to-read-virtual-museum.md"])
    with LiveServer(create_app(kb=kb)) as server:
        yield kb, server


@pytest.fixture()
def client(store):
    _, server = store
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def upload(client, name: str, data: bytes, metadata: dict | None = None, auth=AUTH):
    form = {"metadata": json.dumps(metadata)} if metadata else {}
    return client.post(
        "/api/documents",
        files={"file": (name, data, "application/octet-stream")},
        data=form,
        headers=auth,
    )


def test_upload_without_token_is_401(client, store):
    kb, _ = store
    before = kb.stats()["documents"]
    response = upload(client, "notes.txt", b"Some welding notes here.", auth={})
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["detail"]
    assert kb.stats()["documents"] == before


def test_upload_with_wrong_token_is_403(client):
    response = upload(client, "notes.txt", b"text", auth={"Authorization": "Bearer x"})
    assert response.status_code == 403
    assert response.json()["detail"] == "invalid curator token"


def test_upload_indexes_and_reports(client, store):
    kb, _ = store
    response = upload(client, "ikea.md", CASE)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "indexed"
    assert body["chunks"] > 0
    assert kb.document(body["document_id"]).file == "ikea.md"
    again = upload(client, "ikea-copy.md", CASE)
    assert again.status_code == 200
    assert again.json()["status"] == "skipped"
    assert sorted(kb.document(body["document_id"]).files) == ["ikea-copy.md", "ikea.md"]


def test_upload_with_metadata_form(client, store):
    kb, _ = store
    text = b"Apprentices in Oulu practise spray painting in a VR booth every week."
    response = upload(
        client, "oulu.txt", text, {"country": "Finland", "technology": ["VR"]}
    )
    document_id = response.json()["document_id"]
    hits = kb.search("spray painting booth", top_k=3, filters={"country": ["Finland"]})
    assert [p.document_id for p in hits][:1] == [document_id]


@pytest.mark.parametrize(
    "name",
    ["../../evil.md", "..\\..\\evil.md", "/tmp/abs.md", "dir/../../x.md"],
)
def test_upload_names_stay_in_data_folder(client, store, name):
    kb, _ = store
    outside = [Path("/tmp/abs.md"), kb.settings.data_dir.parent / "evil.md"]
    existed = [path.exists() for path in outside]
    response = upload(client, name, f"# Title\n\nUnique text for {name}.".encode())
    assert response.status_code == 201
    stored = Path(kb.document(response.json()["document_id"]).abs_path).resolve()
    assert kb.settings.upload_dir.resolve() in stored.parents
    assert [path.exists() for path in outside] == existed


def test_nul_in_name_is_rejected_or_made_safe(client, store):
    kb, _ = store
    with pytest.raises(UploadError):
        safe_file_name("bad\x00name.md")
    response = upload(client, "bad\x00name.md", b"Text about a NUL named file.")
    if response.status_code == 201:  # the HTTP client dropped the NUL byte
        stored = Path(kb.document(response.json()["document_id"]).abs_path)
        assert "\x00" not in str(stored)
        assert kb.settings.upload_dir.resolve() in stored.resolve().parents
    else:
        assert response.status_code == 400


def test_upload_rejects_empty_and_unsupported(client):
    empty = upload(client, "empty.md", b"")
    assert empty.status_code == 400
    assert "0 bytes" in empty.json()["detail"]
    exe = upload(client, "tool.exe", b"MZ\x90\x00")
    assert exe.status_code == 415


def test_upload_too_large_is_413(client, store):
    kb, _ = store
    data = b"a" * (int(kb.settings.max_upload_mb * 1_000_000) + 10)
    assert upload(client, "big.txt", data).status_code == 413


def test_upload_fake_pdf_is_422_and_not_stored(client, store):
    kb, _ = store
    before = kb.stats()
    response = upload(client, "fake.pdf", b"%PDF-1.4 this is not really a pdf")
    assert response.status_code == 422
    assert response.json()["status"] == "failed"
    assert kb.stats()["chunks"] == before["chunks"]


def test_password_pdf_is_rejected_clearly(client):
    data = reference_path(
        "corpus", "pdfs", "pypdf_encrypted_libreoffice-writer-password.pdf"
    ).read_bytes()
    response = upload(client, "locked.pdf", data)
    assert response.status_code == 422
    assert "password-protected" in response.json()["reason"]
    listed = {f["file"]: f["reason"] for f in client.get("/api/failures").json()}
    assert listed["locked.pdf"] == response.json()["reason"]


def test_aes_pdf_with_empty_user_password_is_indexed(client):
    source = reference_path("corpus", "pdfs", "fi_tekoaly-ylakoulussa.pdf")
    writer = PdfWriter(clone_from=str(source))
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    response = upload(client, "aes.pdf", buffer.getvalue())
    assert response.status_code == 201
    assert response.json()["chunks"] > 0


def test_delete_removes_document_everywhere(client, store):
    kb, _ = store
    text = f"The {MARKER} method pairs two welders on one simulator.".encode()
    document_id = upload(client, "marker.txt", text).json()["document_id"]
    assert kb.search(MARKER, top_k=3, mode="keyword")
    response = client.delete(f"/api/documents/{document_id}", headers=AUTH)
    assert response.status_code == 200
    assert client.get(f"/api/documents/{document_id}").status_code == 404
    assert kb.search(MARKER, top_k=3, mode="keyword") == []
    answer = client.post("/api/ask", json={"question": f"What is the {MARKER} method?"})
    assert all(c["document_id"] != document_id for c in answer.json()["citations"])
    reopened = KnowledgeBase(kb.settings)
    assert reopened.search(MARKER, top_k=3) == [] or all(
        p.document_id != document_id for p in reopened.search(MARKER, top_k=3)
    )


def test_delete_without_token_changes_nothing(client, store):
    kb, _ = store
    document_id = kb.documents()[0].id
    assert client.delete(f"/api/documents/{document_id}").status_code == 401
    assert kb.document(document_id)


def test_patch_metadata_reaches_filters(client, store):
    kb, _ = store
    record = next(r for r in kb.documents() if "artemia" in r.file)
    response = client.patch(
        f"/api/documents/{record.id}",
        json={"metadata": {"sector": "museum education", "year": 2024}},
        headers=AUTH,
    )
    assert response.status_code in (200, 201)
    updated = kb.document(record.id)
    assert updated.metadata["year"] == 2024
    assert updated.overrides == {"sector": "museum education", "year": 2024}
    hits = kb.search("museum", top_k=5, filters={"year": ["2024"]})
    assert {p.document_id for p in hits} == {record.id}


def test_reindex_keeps_chunks_and_names(client, store):
    kb, _ = store
    record = next(r for r in kb.documents() if "artemia" in r.file)
    response = client.post(f"/api/documents/{record.id}/reindex", headers=AUTH)
    assert response.json()["status"] == "indexed"
    again = kb.document(record.id)
    assert again.chunks == record.chunks
    assert again.files == record.files


def test_writing_disabled_without_configured_hashes(tmp_path):
    kb = KnowledgeBase(Settings(data_dir=tmp_path / "data"))
    with LiveServer(create_app(kb=kb)) as server:
        response = httpx.post(
            server.url + "/api/documents",
            files={"file": ("a.txt", b"text")},
            headers=AUTH,
        )
    assert response.status_code == 403
    assert "KB_CURATOR_TOKEN_SHA256" in response.json()["detail"]


def test_check_finds_and_repairs_missing_vectors(tmp_path):
    source = tmp_path / "doc.txt"
    source.write_text("Forklift simulators train warehouse apprentices safely.")
    kb = KnowledgeBase(Settings(data_dir=tmp_path / "data"))
    document_id = kb.ingest_file(source).document_id
    assert curation.check(kb).consistent
    kb.vectors.delete(document_id)
    kb.keywords.add("ghost", ["ghost:0"], ["orphan text"], "en")
    report = curation.check(kb)
    assert report.missing_vectors == [document_id]
    assert report.orphan_keywords == ["ghost"]
    repaired = curation.check(kb, repair=True)
    assert repaired.repaired
    assert curation.check(kb).consistent
    assert [p.document_id for p in kb.search("forklift", top_k=1)] == [document_id]


def test_prune_removes_vanished_files(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "keep.txt").write_text("Welding booths need ventilation checks.")
    (folder / "gone.txt").write_text("Crane simulators teach load charts.")
    kb = KnowledgeBase(Settings(data_dir=tmp_path / "data"))
    kb.ingest([folder])
    os.remove(folder / "gone.txt")
    removed = curation.prune(kb, [folder])
    assert [Path(p).name for p in removed] == ["gone.txt"]
    assert [Path(r.file).name for r in kb.documents()] == ["keep.txt"]


def test_reader_token_guards_reading(tmp_path):
    reader, reader_hash = new_token()
    settings = Settings(
        data_dir=tmp_path / "data",
        reader_token_sha256=reader_hash,
        curator_token_sha256=TOKEN_HASH,
    )
    kb = KnowledgeBase(settings)
    with LiveServer(create_app(kb=kb)) as server:
        search = server.url + "/api/search"
        assert httpx.get(search, params={"q": "vr"}).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.get(search, params={"q": "vr"}, headers=wrong).status_code == 403
        good = {"Authorization": f"Bearer {reader}"}
        assert httpx.get(search, params={"q": "vr"}, headers=good).status_code == 200
        assert httpx.get(search, params={"q": "vr"}, headers=AUTH).status_code == 200
