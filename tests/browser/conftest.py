"""Real-browser tests: headless Chromium driven by Playwright.

They need a Chromium binary (Debian's ``chromium`` package, or ``COURSE_CHROMIUM`` naming
one) and the ``playwright`` Python package; Playwright's own browser download is not used.
Without them the tests skip, unless ``COURSE_REQUIRE_BROWSER=1`` (CI sets it), when a
missing browser is an error. Screenshots go to ``_build/screenshots/`` (or
``COURSE_SCREENSHOTS``) and are kept as artifacts.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _require() -> bool:
    return os.environ.get("COURSE_REQUIRE_BROWSER", "") == "1"


def _missing(why: str) -> None:
    if _require():
        pytest.fail(f"{why} (COURSE_REQUIRE_BROWSER=1)")
    pytest.skip(why)


def chromium_path() -> str | None:
    env = os.environ.get("COURSE_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


@pytest.fixture(scope="session")
def book_dir() -> Path:
    """The full build (what readers get, and what CI builds), else the fast one, else COURSE_BOOK_HTML's."""
    for candidate in (os.environ.get("COURSE_BOOK_HTML"), ROOT / "_build/html", ROOT / "_build/fast/_build/html"):
        if candidate and (Path(candidate) / "index.html").is_file():
            return Path(candidate)
    if os.environ.get("COURSE_REQUIRE_BROWSER", "") == "1":
        pytest.fail("no built book: run `make book` before the browser tests (COURSE_REQUIRE_BROWSER=1)")
    pytest.skip("no built book: run `make book` (or `COURSE_FAST=1 make book`) first")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    out = Path(os.environ.get("COURSE_SCREENSHOTS", ROOT / "_build" / "screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed: pip install playwright")
    path = chromium_path()
    if path is None:
        _missing("no Chromium found: install Debian's chromium package or set COURSE_CHROMIUM")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A browser page that records console errors and failed requests, and blocks every
    request that leaves ``allowed`` (so a test proves the page needs no network)."""

    def __init__(self, browser, allowed: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 1000})
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("response", lambda r: self.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
        self.page.route("**/*", self._route)
        self.allowed = allowed

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(self.allowed) or url.startswith("data:") or url.startswith("blob:"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


@pytest.fixture
def new_page(browser):
    pages: list[Page] = []

    def make(allowed: str) -> Page:
        page = Page(browser, allowed)
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.page.close()


@pytest.fixture(scope="session")
def serve() -> Iterator:
    """Serve a folder over HTTP on 127.0.0.1; returns its base URL."""
    servers = []

    def start(folder: Path) -> str:
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

        handler = functools.partial(Quiet, directory=str(folder))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
