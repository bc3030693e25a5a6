"""Regenerate the README screenshots of the Compare tab and of the guidebook.

    python -m evals.screenshots [--out docs] [--data-dir DIR]

Without `--data-dir` the bundled case descriptions are indexed into a
temporary store first, which takes about a minute on two CPU cores. The web UI is served
on 127.0.0.1 only, and headless Chromium (`chromium` on the path, or
`--chromium PATH`) is driven by Playwright.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "assessment with VR simulators"
VIEWPORT = {"width": 1400, "height": 1200}
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Server:
    """uvicorn serving the app on 127.0.0.1 in a background thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.url = f"http://127.0.0.1:{_free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 60 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _local_page(browser):
    """Open a page that aborts every request except to 127.0.0.1 and file URLs."""
    page = browser.new_page(viewport=VIEWPORT)

    def route(request_route) -> None:
        url = urlsplit(request_route.request.url)
        if url.scheme == "file" or url.hostname == "127.0.0.1":
            request_route.continue_()
        else:
            print(f"blocked a request to {url.geturl()}", file=sys.stderr)
            request_route.abort()

    page.route("**/*", route)
    return page


def shoot_compare_tab(browser, url: str, path: Path) -> None:
    page = _local_page(browser)
    page.goto(url + "/", wait_until="networkidle")
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-topic textarea").fill(TOPIC)
    page.locator("#compare-button").click()
    page.locator("#compare-status").get_by_text("groups").wait_for(timeout=120_000)
    page.wait_for_timeout(2000)  # the table fades in after the status text
    page.screenshot(path=str(path))
    page.close()


def shoot_guidebook(browser, html_path: Path, path: Path) -> None:
    page = _local_page(browser)
    page.goto(html_path.resolve().as_uri(), wait_until="load")
    page.screenshot(path=str(path))
    page.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder")
    parser.add_argument("--data-dir", type=Path, help="an existing store to show")
    parser.add_argument(
        "--chromium", default=shutil.which("chromium"), help="Chromium executable"
    )
    args = parser.parse_args(argv)
    if not args.chromium:
        print("error: chromium not found; pass --chromium PATH", file=sys.stderr)
        return 2

    from playwright.sync_api import sync_playwright

    from api.app import create_app
    from kb.guidebook import build_guidebook, write_guidebook
    from kb.service import KnowledgeBase
    from kb.settings import Settings

    with tempfile.TemporaryDirectory(prefix="vet-kb-screenshots-") as scratch:
        scratch_dir = Path(scratch)
        kb = KnowledgeBase(Settings(data_dir=args.data_dir or scratch_dir / "data"))
        if args.data_dir is None:
            kb.ingest([ROOT / "corpus" / "cases"])
        html_path, _ = write_guidebook(build_guidebook(kb), scratch_dir / "book")
        args.out.mkdir(parents=True, exist_ok=True)
        with _Server(create_app(kb=kb)) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, headless=True, args=LAUNCH_ARGS
            )
            shoot_compare_tab(browser, server.url, args.out / "compare-tab.png")
            shoot_guidebook(browser, html_path, args.out / "guidebook.png")
            browser.close()
    print(f"wrote {args.out / 'compare-tab.png'} and {args.out / 'guidebook.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
