"""Fixtures of the browser tests: a real server process of the app (`fitroom serve`, its own port and
temporary data directory) and Debian's Chromium, headless, driven by Playwright.

`browser` skips when playwright (PyPI) or /usr/bin/chromium is missing (scripts/setup.sh installs both).
"""

from __future__ import annotations

import os

import pytest

from tests.local_server import free_port, server_data_dir, start_server_process, stop_process, wait_http

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
    # aiortc cannot resolve the mDNS names Chromium puts in place of its host candidates.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
STREAM = {"FITROOM_STREAM_WIDTH": "640", "FITROOM_STREAM_HEIGHT": "360"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The base URL of a `fitroom serve` process (the app as deployed) on a free port, with its own
    data directory (tests/local_server.py: `server_data_dir`) and a 640x360 stream on the CPU."""
    tmp = tmp_path_factory.mktemp("web")
    port, log = free_port(), tmp / "server.log"
    env = {**os.environ, "FITROOM_DATA_DIR": str(server_data_dir(tmp)), "FITROOM_DEVICE": "cpu", **STREAM}
    proc = start_server_process(port, env, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url, proc, log, path="/")
        yield url
    finally:
        stop_process(proc)


def launch_chromium(extra_args=()):
    """Debian's Chromium, headless, through Playwright (a generator for a fixture: yields the browser)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (PyPI) is not installed: run scripts/setup.sh")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is not installed: run scripts/setup.sh")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + list(extra_args))
        yield b
        b.close()


@pytest.fixture(scope="module")
def browser():
    yield from launch_chromium()


def _open_page(browser, url: str, **context_args):
    context = browser.new_context(**({"viewport": {"width": 1280, "height": 900}} | context_args))
    pg = context.new_page()
    pg.console_errors = []
    pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    pg.goto(url)
    pg.wait_for_selector("body[data-ready='true']", timeout=15_000)
    return pg


@pytest.fixture
def open_page(browser, server):
    """`open_page(path="/")`: a page in a new browser context (its own storage, like another shopper)
    on the storefront at `path`, once ready; `page.console_errors` collects console and page errors.
    Every context is closed after the test."""
    pages = []

    def open_(path: str = "/", **context_args):
        pg = _open_page(browser, server + path if path.startswith("/") else path, **context_args)
        pages.append(pg)
        return pg

    yield open_
    for pg in pages:
        pg.context.close()


@pytest.fixture
def page(open_page):
    """A fresh page on the storefront; `page.console_errors` collects console errors and page errors."""
    return open_page("/")
