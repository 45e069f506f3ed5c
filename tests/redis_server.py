"""A Redis server for the tests (a pytest plugin, registered in tests/conftest.py).

`redis_url` (session): FITROOM_TEST_REDIS_URL when set (.ci/run starts one with
scripts/start_redis.sh), else a private `redis-server` on a free port in a temporary folder, no
persistence, stopped at the end of the session. Tests that use it are skipped, saying why, only when
neither is available (redis-server not installed: scripts/setup.sh installs it).

`private_redis` (function): a private server of one's own, always started here (so a test may stop
and restart it); skipped when redis-server is not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.local_server import free_port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A `redis-server` child process on 127.0.0.1:`port` with its files in `folder`."""

    def __init__(self, folder: Path, port: int | None = None):
        self.folder, self.port = Path(folder), port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        exe = shutil.which("redis-server")
        if exe is None:
            raise FileNotFoundError("redis-server")
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--daemonize", "no", "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        log.close()
        deadline = time.monotonic() + timeout
        while not _ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{tail}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def start_private(folder: Path) -> RedisServer:
    """Starts a private server (pytest-skips when redis-server is not installed)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; scripts/setup.sh installs it) "
                    "and FITROOM_TEST_REDIS_URL is not set")
    return RedisServer(folder).start()


@pytest.fixture(scope="session")
def redis_url():
    """A Redis URL for the tests: FITROOM_TEST_REDIS_URL, else a private server for this session."""
    url = os.environ.get("FITROOM_TEST_REDIS_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="fitroom-redis-") as folder:
        server = start_private(Path(folder))
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture
def private_redis(tmp_path):
    """A private Redis server that the test may stop and start again (`.stop()`, `.start()`)."""
    server = start_private(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()
