"""Fixtures of the browser tests: a real `uvicorn` server of the app (its own port and temporary data
directory) and Debian's Chromium, headless, driven by Playwright.

`browser` skips when playwright (PyPI) or /usr/bin/chromium is missing (scripts/setup.sh installs both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.local_server import free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
    # aiortc cannot resolve the mDNS names Chromium puts in place of its host candidates.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
STREAM = {"FITROOM_STREAM_WIDTH": "640", "FITROOM_STREAM_HEIGHT": "360"}


def _data_dir(tmp: Path) -> Path:
    """A temporary data directory that shares the converted body model (read only) and a copy of
    the cached reference bodies, so the server drapes without converting Anny again."""
    from fitroom.settings import get_settings

    real = get_settings().data_dir.resolve()
    data = tmp / "data"
    data.mkdir()
    model = real / "body_model.npz"
    if not model.exists():
        from avatar.body_model_data import convert

        convert(model)
    (data / "body_model.npz").symlink_to(model)
    if (real / "reference_bodies").is_dir():
        shutil.copytree(real / "reference_bodies", data / "reference_bodies")
    return data


def start_server(tmp: Path, env: dict | None = None):
    """(base URL, process, log path) of a uvicorn server of `streaming.api_app:create_app`, started."""
    import httpx

    port = free_port()
    full_env = {**os.environ, "FITROOM_DATA_DIR": str(_data_dir(tmp)), "FITROOM_DEVICE": "cpu", **STREAM, **(env or {})}
    log_path = tmp / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "streaming.api_app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return url, proc, log_path
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the server did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.1)


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The base URL of a uvicorn server of `streaming.api_app:create_app` on a free port."""
    url, proc, _ = start_server(tmp_path_factory.mktemp("web"))
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (PyPI) is not installed: run scripts/setup.sh")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is not installed: run scripts/setup.sh")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


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
