"""The web UI in a real headless Chromium: ask, then read the cited page."""

from __future__ import annotations

import re

import pytest

from tests.conftest import LiveServer


@pytest.mark.browser
def test_question_shows_citation_with_page(browser, live_server, tmp_path):
    page = browser.new_page()
    page.goto(live_server.url + "/", wait_until="networkidle")
    page.locator("#question textarea").fill(
        "Which World Economic Forum projection about jobs lost and created by 2025 "
        "does the keynote on AI and the future of work quote?"
    )
    page.locator("#ask").click()
    citation = page.locator(".kb-citation").first
    citation.wait_for(timeout=60_000)
    page.screenshot(path=str(tmp_path / "answer.png"), full_page=True)

    sources = page.locator(".kb-source").all_inner_texts()
    assert any(re.search(r"page \d+", text) for text in sources)
    links = page.locator(".kb-source a").evaluate_all("els => els.map(e => e.href)")
    assert any(re.search(r"/api/documents/\w+/file#page=\d+$", link) for link in links)
    assert "[1]" in page.locator("#answer").inner_text()


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A server over one text file that carries HTML meant to run in the page."""
    from api.app import create_app
    from kb.service import KnowledgeBase
    from kb.settings import Settings

    folder = tmp_path_factory.mktemp("hostile")
    (folder / "hostile.txt").write_text(
        "Welding simulators in class. "
        '<img src="x" onerror="window.pwned = 1"> '
        "<script>window.pwned = 2</script> "
        "Welding simulators reduce the cost of training material for schools.",
        encoding="utf-8",
    )
    kb = KnowledgeBase(Settings(data_dir=folder / "data"))
    kb.ingest([folder / "hostile.txt"])
    with LiveServer(create_app(kb=kb)) as server:
        yield server


@pytest.mark.browser
def test_document_html_is_shown_as_text(browser, hostile_server):
    page = browser.new_page()
    page.goto(hostile_server.url + "/", wait_until="networkidle")
    page.locator("#question textarea").fill("Do welding simulators reduce costs?")
    page.locator("#ask").click()
    page.locator(".kb-citation").first.wait_for(timeout=60_000)
    assert page.evaluate("() => window.pwned") is None
    assert page.locator("#answer img").count() == 0
    assert "<script>window.pwned = 2</script>" in page.locator("#answer").inner_text()


@pytest.fixture(scope="module")
def curated_server(tmp_path_factory):
    from api.app import create_app
    from kb.auth import new_token
    from kb.service import KnowledgeBase
    from kb.settings import Settings

    token, digest = new_token()
    data_dir = tmp_path_factory.mktemp("ui-curate")
    kb = KnowledgeBase(Settings(data_dir=data_dir, curator_token_sha256=digest))
    with LiveServer(create_app(kb=kb)) as server:
        yield server, token, kb


def fill_case_form(page, token: str, title: str) -> None:
    page.get_by_role("tab", name="Curate").click()
    page.locator("#token input").fill(token)
    fields = {
        "title": title,
        "institution": "Omnia vocational college",
        "country": "Finland",
        "sector": "welding",
        "target_group": "first-year apprentices",
        "language": "fi",
        "year": "2024",
        "source": "Team interview notes, 2024",
        "licence": "CC BY 4.0",
    }
    for name, value in fields.items():
        page.locator(f"#case-{name} input, #case-{name} textarea").first.fill(value)
    for name, value in (("technology", "VR"), ("use_case", "immersive training")):
        choice = page.locator(f"#case-{name} input")
        choice.click()
        choice.fill(value)
        choice.press("Enter")
    page.locator("#case-summary textarea").fill(
        "Apprentices rehearse welding seams on a VR simulator before the workshop."
    )


@pytest.mark.browser
def test_curator_creates_case_from_form(browser, curated_server):
    server, token, kb = curated_server
    page = browser.new_page()
    page.goto(server.url + "/", wait_until="networkidle")
    fill_case_form(page, token, "Omnia VR welding rehearsal for apprentices")
    page.locator("#create-button").click()
    outcome = page.locator("#curate-outcome .kb-outcome")
    outcome.wait_for(timeout=60_000)
    assert "indexed" in outcome.inner_text()
    records = [r for r in kb.documents() if r.doc_type == "case"]
    assert [r.title for r in records] == ["Omnia VR welding rehearsal for apprentices"]
    assert records[0].metadata["country"] == ["Finland"]


@pytest.mark.browser
def test_wrong_token_changes_nothing_in_ui(browser, curated_server):
    server, _, kb = curated_server
    before = kb.stats()["documents"]
    page = browser.new_page()
    page.goto(server.url + "/", wait_until="networkidle")
    fill_case_form(page, "not-the-token", "A case that must not be created")
    page.locator("#create-button").click()
    page.get_by_text("Invalid curator token").wait_for(timeout=30_000)
    assert kb.stats()["documents"] == before


@pytest.mark.browser
def test_curator_edits_and_deletes_document_in_ui(browser, curated_server, tmp_path):
    server, token, kb = curated_server
    note = tmp_path / "harbour-crane-simulator.md"
    note.write_text(
        "# Harbour crane simulator notes\n\nTrainees practise container lifts "
        "on a crane simulator before they work on the quay.\n"
    )
    document_id = kb.ingest_file(note).document_id
    page = browser.new_page()
    page.goto(server.url + "/", wait_until="networkidle")
    page.get_by_role("tab", name="Documents").click()
    page.locator("#refresh").click()
    cells = page.locator('#documents [data-testid^="cell-"]')
    cells.filter(has_text="Harbour crane simulator notes").first.click()
    page.get_by_text("Edit, re-index or delete a document").click()
    id_box = page.locator("#manage-id textarea, #manage-id input").first
    page.wait_for_function(
        "(el) => el.value.length > 0", arg=id_box.element_handle(), timeout=30_000
    )
    assert id_box.input_value() == document_id

    page.locator("#manage-token input").fill(token)
    page.locator("#manage-metadata textarea, #manage-metadata input").first.fill(
        '{"country": ["Estonia"]}'
    )
    page.locator("#manage-save").click()
    page.locator("#manage-outcome .kb-outcome").wait_for(timeout=60_000)
    assert kb.document(document_id).metadata["country"] == ["Estonia"]

    page.locator("#manage-delete").click()
    page.get_by_text(f"deleted {document_id}").wait_for(timeout=60_000)
    assert document_id not in {record.id for record in kb.documents()}
    assert not any("container lifts" in p.passage for p in kb.search("crane", top_k=5))
