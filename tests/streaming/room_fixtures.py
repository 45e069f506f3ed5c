"""Fixtures of the room tests: the app served by a real uvicorn on a free port, and WebSocket clients.

    from tests.streaming.room_fixtures import room_server, Client, new_room, run

`room_server` (module scope) serves `create_app(Settings(...))` over a temporary data directory in a
uvicorn thread, with a short grace period; `serve_app(settings)` starts another. `Client` is a
member's socket (the `websockets` library, as a browser would speak it). Tests are plain functions
that `run(coro)` their async body on a fresh event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fitroom.settings import Settings
from tests.local_server import Served, free_port, serve_app
from tests.streaming.tryon_fixtures import STREAM

REPO = Path(__file__).resolve().parents[2]
GRACE_S = 1.5  # the test server's FITROOM_ROOM_GRACE_S


def run(coro, timeout: float = 30.0):
    """Runs a test's async body on its own event loop, failing it after `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def room_settings(data_dir: Path, **overrides) -> Settings:
    values = dict(data_dir=data_dir, room_grace_s=GRACE_S, **STREAM)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def room_server(tmp_path_factory):
    served, stop = serve_app(room_settings(tmp_path_factory.mktemp("rooms") / "data"))
    yield served
    stop()


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed {code} {reason!r}")
        self.code, self.reason = code, reason


class Client:
    """One member's WebSocket: every frame it received in `frames`; `seq` the last sequenced event seen."""

    def __init__(self, ws, member_id: str | None = None):
        self.ws, self.member_id = ws, member_id
        self.frames: list[dict] = []
        self.raw: list[str] = []
        self._unread: list[dict] = []
        self.welcome: dict | None = None
        self.seq = 0

    @classmethod
    async def open(cls, served: Served, room_id: str, token: str, since: int | None = None,
                   welcome: bool = True, **query) -> "Client":
        from websockets.asyncio.client import connect

        url = f"{served.ws}/api/v1/rooms/{room_id}/ws?token={token}"
        if since is not None:
            url += f"&since={since}"
        for k, v in query.items():
            url += f"&{k}={v}"
        ws = await connect(url, max_size=None, open_timeout=10)
        client = cls(ws)
        if welcome:
            client.welcome = await client.next("welcome")
            client.member_id = client.welcome["member_id"]
            # A resume replays since+1..seq next: the client is at `since` until it has them.
            resumed = since is not None and client.welcome["resumed"]
            client.seq = min(since, client.welcome["seq"]) if resumed else client.welcome["seq"]
        return client

    async def recv(self, timeout: float = 5.0) -> dict:
        """The next frame (one not yet returned by `next`)."""
        if self._unread:
            return self._unread.pop(0)
        from websockets.exceptions import ConnectionClosed

        try:
            text = await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed as e:
            rcvd = e.rcvd
            raise Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else None) from None
        self.raw.append(text)
        frame = json.loads(text)
        self.frames.append(frame)
        if frame.get("seq") is not None and frame.get("type") != "welcome":
            assert frame["seq"] == self.seq + 1, f"seq {frame['seq']} after {self.seq}: {frame}"
            self.seq = frame["seq"]
        return frame

    async def next(self, type: str, timeout: float = 5.0, **match) -> dict:
        """The next frame of `type` (and the given field values); frames skipped stay readable by `next`."""
        skipped = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {type} {match} within {timeout} s; got {skipped[-5:]}")
                frame = await self.recv(left)
                if frame.get("type") == type and all(frame.get(k) == v for k, v in match.items()):
                    return frame
                skipped.append(frame)
        finally:
            self._unread[:0] = skipped

    async def send(self, doc) -> None:
        await self.ws.send(doc if isinstance(doc, (str, bytes)) else json.dumps(doc))

    async def closed(self, timeout: float = 5.0) -> tuple[int, str]:
        """Reads until the server closes; (code, reason)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                await self.recv(max(0.01, deadline - time.monotonic()))
        except Closed as e:
            return e.code, e.reason

    async def quiet(self, wait: float = 0.3) -> list[dict]:
        """The frames that arrive within `wait` seconds."""
        out = []
        try:
            while True:
                out.append(await self.recv(wait))
        except asyncio.TimeoutError:
            return out

    async def close(self) -> None:
        await self.ws.close()


async def new_room(http: httpx.AsyncClient, host: str = "Ann", **fields) -> dict:
    r = await http.post("/api/v1/rooms", json={"display_name": host, **fields})
    assert r.status_code == 201, r.text
    return r.json()


async def join(http: httpx.AsyncClient, room: dict, name: str) -> dict:
    r = await http.post(f"/api/v1/rooms/{room['room_id']}/join",
                        json={"invite_token": room["invite_token"], "display_name": name})
    assert r.status_code == 200, r.text
    return r.json()


class ServerProcess:
    """`python -m fitroom.cli serve --port P` in a subprocess over `data_dir` (the restart test)."""

    def __init__(self, data_dir: Path, port: int | None = None, **env):
        self.data_dir, self.port = data_dir, port or free_port()
        self.env = {**os.environ, "FITROOM_DATA_DIR": str(data_dir), "FITROOM_ROOM_GRACE_S": "30",
                    "PYTHONUNBUFFERED": "1", **env}
        self.env.pop("FITROOM_DATABASE_URL", None)
        self.env.pop("FITROOM_REDIS_URL", None)
        self.env.update(env)
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"serve-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "fitroom.cli", "serve", "--port", str(self.port)],
                                     cwd=REPO, env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        fh.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/v1/rooms/none?token=x", timeout=1).status_code in (401, 404):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def interrupt(self, timeout: float = 30.0) -> int:
        """SIGINT (a graceful stop, as Ctrl-C); waits for the exit."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def served(self) -> Served:
        return Served(None, self.url)
