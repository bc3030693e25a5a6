"""The Compare tab in a real headless Chromium, over the bundled case descriptions."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from kb.compare import compare
from tests.conftest import LiveServer

TOPIC = "assessment with VR simulators"


@pytest.fixture(scope="module")
def cases_server(cases_kb):
    from api.app import create_app

    with LiveServer(create_app(kb=cases_kb)) as server:
        yield server


def local_page(browser, blocked: list[str]):
    """Open a page that aborts, and records, every request that leaves 127.0.0.1."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})

    def route(request_route) -> None:
        url = request_route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    page.route("**/*", route)
    return page


def column_values(page, column: int, rows: int) -> list[str]:
    """Read one column of the virtualised Gradio table in display order.

    Only the rows in view exist in the DOM, so this scrolls through the table.
    A cell's `data-row` is its row in the data. The `data-index` of its row
    element is the position shown, and the two differ once the table is sorted.
    """
    found: dict[int, str] = {}
    viewport = page.locator("#compare-table .virtual-table-viewport")
    for _ in range(100):
        cells = page.locator(f'#compare-table [role="gridcell"][data-col="{column}"]')
        for row, text in cells.evaluate_all(
            "cells => cells.map(c => ["
            "Number(c.closest('[role=row]').dataset.index), c.innerText.trim()])"
        ):
            found[row] = text
        if len(found) >= rows:
            break
        viewport.evaluate("element => element.scrollBy(0, 300)")
        page.wait_for_timeout(100)
    viewport.evaluate("element => element.scrollTo(0, 0)")
    return [found[row] for row in sorted(found)]


@pytest.mark.browser
def test_compare_tab_shows_groups(browser, cases_server, cases_kb):
    blocked: list[str] = []
    page = local_page(browser, blocked)
    page.goto(cases_server.url + "/", wait_until="networkidle")
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-topic textarea").fill(TOPIC)
    page.locator("#compare-group-by input").click()
    page.get_by_role("option", name="Technology").click()
    page.locator("#compare-button").click()
    status = page.locator("#compare-status")
    status.get_by_text("groups").wait_for(timeout=120_000)

    expected = compare(cases_kb, TOPIC, "technology")
    groups = [row.group for row in expected.rows]
    assert f"{len(groups)} groups by technology" in status.inner_text()
    table = page.locator("#compare-table [role='grid']")
    assert table.get_attribute("aria-rowcount") == str(len(groups) + 1)
    assert column_values(page, 0, len(groups)) == groups
    titles = column_values(page, 3, len(groups))
    assert titles == [row.title for row in expected.rows]
    assert page.locator("#compare-csv").is_visible()

    header = page.locator("#compare-table th[title='similarity']")
    header.hover()
    header.locator("button[aria-label='Open cell menu']").click()
    page.get_by_role("menuitem", name="Sort descending").click()
    descending = sorted((row.similarity for row in expected.rows), reverse=True)
    top = '#compare-table [role="row"][data-index="0"] [data-col="1"]'
    page.wait_for_function(
        f"top => document.querySelector(top)?.innerText.trim() === '{descending[0]}'",
        arg=top,
    )
    similarities = [float(value) for value in column_values(page, 1, len(groups))]
    assert similarities == descending
    assert blocked == []
