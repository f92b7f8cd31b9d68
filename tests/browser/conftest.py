"""Fixtures of the browser tests: the live server, Chromium, and a page that records errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from browser.support import CHROMIUM, CHROMIUM_ARGS, LiveServer, live_server


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest, tmp_path_factory) -> LiveServer:
    return live_server(tmp_path_factory, request.config.add_cleanup)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: run `make install` (installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


class Page:
    """A Playwright page plus the console errors and page errors it produced."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def open(self, query: str = "") -> None:
        """Load the app and wait until the projection is drawn."""
        self.page.goto(f"{self.base_url}/{query}")
        self.wait_ready()

    def wait_ready(self, timeout: float = 60_000) -> None:
        self.page.wait_for_function(
            "window.__modalchorus && window.__modalchorus.ready", timeout=timeout
        )

    def probe(self, expression: str):
        """Evaluate ``window.__modalchorus.<expression>``."""
        return self.page.evaluate(f"window.__modalchorus.{expression}")


@pytest.fixture()
def app(browser, server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield Page(page, server.url)
    context.close()
