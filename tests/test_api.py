"""The HTTP API through a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

CITATION_FIELDS = {
    "n",
    "document_id",
    "title",
    "file",
    "page",
    "section",
    "passage",
    "score",
}


@pytest.fixture(scope="module")
def client(live_server):
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        yield client


def test_health_reports_counts(client, corpus_kb):
    body = client.get("/api/health").json()
    documents, chunks = corpus_kb.catalogue.counts()
    assert body == {
        "status": "ok",
        "documents": documents,
        "chunks": chunks,
        "model": "all-MiniLM-L6-v2",
    }


def test_ask_returns_answer_with_citations(client):
    response = client.post(
        "/api/ask", json={"question": "What does a welding simulator save a company?"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["found"] is True
    assert body["citations"]
    assert set(body["citations"][0]) >= CITATION_FIELDS
    assert "[1]" in body["answer"]


def test_ask_matches_library_call(client, corpus_kb):
    question = "Which AI tool diagnoses gaps in mathematics?"
    body = client.post("/api/ask", json={"question": question}).json()
    assert body == corpus_kb.ask(question).to_dict()


def test_ask_unanswerable_says_so(client):
    question = "Secondo i dati INDIRE, quanti visori VR usano gli istituti?"
    body = client.post("/api/ask", json={"question": question}).json()
    assert body["found"] is False
    assert body["citations"] == []
    assert "No supporting source" in body["answer"]


def test_ask_rejects_empty_question(client):
    response = client.post("/api/ask", json={"question": ""})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "question"]


def test_search_returns_k_ranked_passages(client):
    body = client.get("/api/search", params={"q": "welding simulator", "k": 3}).json()
    assert [item["n"] for item in body] == [1, 2, 3]
    scores = [item["score"] for item in body]
    assert scores == sorted(scores, reverse=True)
    assert set(body[0]) >= CITATION_FIELDS


def test_documents_list_and_detail(client, corpus_kb):
    listing = client.get("/api/documents").json()
    assert len(listing) == len(corpus_kb.documents())
    first = listing[0]
    detail = client.get(f"/api/documents/{first['id']}").json()
    assert detail == first


def test_unknown_document_is_404_json(client):
    response = client.get("/api/documents/0000000000000000")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


def test_source_file_is_served_unchanged(client, corpus_kb):
    pdf = next(r for r in corpus_kb.documents() if r.doc_type == "pdf")
    response = client.get(f"/api/documents/{pdf.id}/file")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content == Path(pdf.abs_path).read_bytes()


def test_html_source_is_served_as_text(client, corpus_kb):
    page = next(r for r in corpus_kb.documents() if r.doc_type == "html")
    response = client.get(f"/api/documents/{page.id}/file")
    assert response.headers["content-type"].startswith("text/plain")


def test_openapi_docs_and_ui_are_served(client):
    assert client.get("/docs").status_code == 200
    assert "/api/ask" in client.get("/openapi.json").json()["paths"]
    ui = client.get("/")
    assert ui.status_code == 200
    assert "gradio" in ui.text.lower()


def test_search_filter_query_parameter(client):
    params = {"q": "realidad virtual", "k": 4, "filter": ["language=es"]}
    body = client.get("/api/search", params=params).json()
    assert len(body) == 4
    assert {item["language"] for item in body} == {"es"}


def test_search_bad_filter_is_400(client):
    response = client.get("/api/search", params={"q": "vr", "filter": "colour=red"})
    assert response.status_code == 400
    assert "unknown filter field colour" in response.json()["detail"]


def test_ask_with_filters_cites_only_matching(client):
    body = client.post(
        "/api/ask",
        json={
            "question": "How is AI used in schools?",
            "filters": {"language": ["fi"]},
        },
    ).json()
    assert body["citations"]
    assert {c["language"] for c in body["citations"]} == {"fi"}
