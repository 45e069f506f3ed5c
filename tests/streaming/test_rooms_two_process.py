"""Two real `fitroom serve` processes sharing one Redis (FITROOM_REDIS_URL) and one database carry
the same room (issue 6): members connected to different processes see each other's events in the
same seq order with no gaps, and a member resumes with `since` on the other process.

The database is PostgreSQL when FITROOM_TEST_POSTGRES_URL is set (a fresh database, dropped
afterwards), else one SQLite file in a shared FITROOM_DATA_DIR (WAL, busy timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from pathlib import Path

import httpx
import pytest

from tests.catalog_fixtures import drop_test_database
from tests.local_server import free_port, start_server_process, stop_process, wait_http

PG_ENV = "FITROOM_TEST_POSTGRES_URL"


@pytest.fixture(scope="module")
def database_url():
    base = os.environ.get(PG_ENV)
    if not base:
        yield None  # SQLite in the shared data directory
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from assets.catalog_db import database_url as with_driver

    name = f"fitroom_t_{secrets.token_hex(6)}"
    admin = create_engine(with_driver(None, base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        drop_test_database(admin, name)
        admin.dispose()


@contextlib.contextmanager
def _servers(folder: Path, redis_url: str, database_url: str | None, **settings: str):
    """[(url, process)] of two `fitroom serve` processes with FITROOM_REDIS_URL and one database."""
    env = {**os.environ, "FITROOM_DATA_DIR": str(folder / "data"), "FITROOM_REDIS_URL": redis_url, **settings}
    env.pop("FITROOM_DATABASE_URL", None)
    if database_url:
        env["FITROOM_DATABASE_URL"] = database_url
    procs, urls = [], []
    try:
        for i in range(2):
            port, log = free_port(), folder / f"server{i}.log"
            procs.append(start_server_process(port, env, log))
            urls.append(f"http://127.0.0.1:{port}")
            wait_http(urls[-1], procs[-1], log)  # the first makes the database before the second opens it
        yield list(zip(urls, procs))
    finally:
        stop_process(*procs, timeout=15)


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory, redis_url, database_url):
    """[url of process 1, url of process 2]."""
    with _servers(tmp_path_factory.mktemp("two-process"), redis_url, database_url) as servers:
        yield [url for url, _ in servers]


class Client:
    """A member's websocket: keeps every frame; `events` are the sequenced ones after the welcome."""

    def __init__(self, name: str):
        self.name = name
        self.frames: list[dict] = []
        self.kept: list[dict] | None = None
        self.ws = None
        self.task = None

    async def open(self, base: str, room_id: str, token: str, since: int | None = None) -> dict:
        from websockets.asyncio.client import connect

        url = base.replace("http://", "ws://") + f"/api/v1/rooms/{room_id}/ws?token={token}"
        if since is not None:
            url += f"&since={since}"
        self.frames, self.kept = [], None
        self.ws = await connect(url, open_timeout=10)
        self.task = asyncio.create_task(self._read())
        return await self.wait(lambda f: f["type"] == "welcome")

    async def _read(self) -> None:
        from websockets import ConnectionClosed

        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
        except ConnectionClosed:
            pass

    async def send(self, msg: dict) -> None:
        await self.ws.send(json.dumps(msg))

    async def wait(self, pred, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for f in self.frames:
                if pred(f):
                    return f
            assert time.monotonic() < deadline, f"{self.name}: not seen; last frames {self.frames[-5:]}"
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.ws.close()
        await self.task

    @property
    def events(self) -> list[dict]:
        frames = self.frames if self.kept is None else self.kept
        return [f for f in frames if f.get("seq") is not None and f["type"] != "welcome"]

    def freeze(self) -> None:
        """`events` from now on: what has arrived so far (the closing sockets' presence events come later)."""
        self.kept = list(self.frames)

    @property
    def welcome(self) -> dict:
        return next(f for f in self.frames if f["type"] == "welcome")


async def _ana_and_dee(http, host: str, joiner: str) -> tuple[dict, dict]:
    """Ana creates a room on `host`; Dee joins it through `joiner`: (Ana's room, Dee's join)."""
    room = (await http.post(host + "/api/v1/rooms", json={"display_name": "Ana"})).json()
    joined = (await http.post(f"{joiner}/api/v1/rooms/{room['room_id']}/join",
                              json={"invite_token": room["invite_token"], "display_name": "Dee"})).json()
    return room, joined


def _mine(events, member_id, kinds=("chat", "trying", "cart_added")):
    return [e for e in events if e["member"] == member_id and e["type"] in kinds]


def test_members_on_two_processes_share_one_room(two_servers):
    p1, p2 = two_servers

    async def scenario():
        async with httpx.AsyncClient(timeout=20) as http:
            r = await http.post(p1 + "/api/v1/rooms", json={"display_name": "Ana", "name": "two processes"})
            assert r.status_code == 201, r.text
            room = r.json()
            room_id, invite = room["room_id"], room["invite_token"]
            j1 = await http.post(f"{p1}/api/v1/rooms/{room_id}/join", json={"invite_token": invite, "display_name": "Ben"})
            j2 = await http.post(f"{p2}/api/v1/rooms/{room_id}/join", json={"invite_token": invite, "display_name": "Cy ✨"})
            assert j1.status_code == 200 and j2.status_code == 200, (j1.text, j2.text)
            ana, ben, cy = Client("Ana@1"), Client("Ben@1"), Client("Cy@2")
            await ana.open(p1, room_id, room["member_token"])
            await ben.open(p1, room_id, j1.json()["member_token"])
            await cy.open(p2, room_id, j2.json()["member_token"])
            ana_id, cy_id = room["member_id"], j2.json()["member_id"]
            # everyone sees everyone online before the messages start
            last_presence = max(c.welcome["seq"] for c in (ana, ben, cy))
            for c in (ana, ben, cy):
                await c.wait(lambda f: f.get("seq") == last_presence or (f["type"] == "welcome" and f["seq"] >= last_presence))

            async def talk(client: Client, who: str):
                for i in range(4):
                    await client.send({"type": "chat", "text": f"{who} says {i} — ünïcødé 👗"})
                    await client.send({"type": "trying", "garment": "tshirt", "size": "SML"[i % 3], "colourway": f"c{i}"})
                    await client.send({"type": "cart_add", "garment": "tshirt", "size": "M", "colourway": f"c{i}", "qty": i + 1})

            await asyncio.gather(talk(ana, "ana"), talk(cy, "cy"))
            for c in (ana, ben, cy):
                await c.wait(lambda f: len(_mine(c.events, ana_id)) == 12 and len(_mine(c.events, cy_id)) == 12)
            await asyncio.sleep(0.2)  # anything late or duplicated would show now
            for c in (ana, ben, cy):
                c.freeze()

            # the snapshot over HTTP agrees on both processes
            s1 = (await http.get(f"{p1}/api/v1/rooms/{room_id}", params={"token": room["member_token"]})).json()
            s2 = (await http.get(f"{p2}/api/v1/rooms/{room_id}", params={"token": j2.json()["member_token"]})).json()
            for c in (ana, ben, cy):
                await c.close()
            return room_id, ana, ben, cy, ana_id, cy_id, s1, s2

    room_id, ana, ben, cy, ana_id, cy_id, s1, s2 = asyncio.run(scenario())
    start = max(c.welcome["seq"] for c in (ana, ben, cy))
    seqs = {c.name: [e["seq"] for e in c.events] for c in (ana, ben, cy)}
    for c in (ana, ben, cy):
        s = seqs[c.name]
        assert s == list(range(c.welcome["seq"] + 1, c.welcome["seq"] + 1 + len(s))), f"{c.name}: gaps or disorder {s}"
    # identical events, identical order, on both processes
    after = [[e for e in c.events if e["seq"] > start] for c in (ana, ben, cy)]
    assert after[0] == after[1] == after[2]
    assert len(after[0]) >= 24
    for member_id, who in ((ana_id, "ana"), (cy_id, "cy")):
        mine = _mine(after[0], member_id)
        assert [e["text"] for e in mine if e["type"] == "chat"] == [f"{who} says {i} — ünïcødé 👗" for i in range(4)]
        assert [e["colourway"] for e in mine if e["type"] == "trying"] == [f"c{i}" for i in range(4)]
        assert [e["item"]["qty"] for e in mine if e["type"] == "cart_added"] == [1, 2, 3, 4]
        assert {e["room_id"] for e in mine} == {room_id}
    # the two processes' states agree: the whole cart, the seq
    assert s1["seq"] == s2["seq"] >= after[0][-1]["seq"]
    assert s1["room"]["cart"] == s2["room"]["cart"] and len(s1["room"]["cart"]) == 8


def test_a_member_resumes_on_the_other_process(two_servers):
    p1, p2 = two_servers

    async def scenario():
        async with httpx.AsyncClient(timeout=20) as http:
            room, j = await _ana_and_dee(http, p1, p2)
        room_id = room["room_id"]
        ana, dee = Client("Ana@1"), Client("Dee@2")
        await ana.open(p1, room_id, room["member_token"])
        await dee.open(p2, room_id, j["member_token"])
        await dee.send({"type": "chat", "text": "hello from 2"})
        await ana.wait(lambda f: f.get("text") == "hello from 2")
        await dee.wait(lambda f: f.get("text") == "hello from 2")
        first = list(dee.events)
        applied = first[-1]["seq"]  # Dee has applied everything up to here
        await dee.close()
        await ana.wait(lambda f: f["type"] == "presence" and f["status"] == "away")
        for i in range(5):
            await ana.send({"type": "chat", "text": f"while away {i}"})
        await ana.wait(lambda f: f.get("text") == "while away 4")
        missed = [e for e in ana.events if e["seq"] > applied]
        # Dee comes back through process 1 with since=N
        welcome = await dee.open(p1, room_id, j["member_token"], since=applied)
        await ana.send({"type": "chat", "text": "welcome back"})
        await dee.wait(lambda f: f.get("text") == "welcome back")
        await ana.wait(lambda f: f.get("text") == "welcome back")
        await asyncio.sleep(0.1)
        out = (welcome, applied, missed, list(dee.events), list(ana.events))
        await ana.close()
        await dee.close()
        return out

    welcome, applied, missed, resumed, ana_events = asyncio.run(scenario())
    assert welcome["resumed"] is True and welcome["seq"] >= missed[-1]["seq"]
    assert [e["text"] for e in missed if e["type"] == "chat"] == [f"while away {i}" for i in range(5)]
    assert missed[0]["type"] == "presence" and missed[0]["status"] == "away"
    # the replay: exactly N < seq <= S, in order, then live events, nothing twice, nothing missing
    seqs = [e["seq"] for e in resumed]
    assert seqs == list(range(applied + 1, applied + 1 + len(seqs)))
    replay = [e for e in resumed if e["seq"] <= welcome["seq"]]
    assert replay == [e for e in ana_events if applied < e["seq"] <= welcome["seq"]]
    assert replay[: len(missed)] == missed
    assert resumed[-1]["text"] == "welcome back"
    assert [e for e in resumed if e["seq"] > welcome["seq"]] == [e for e in ana_events if e["seq"] > welcome["seq"]]


def test_the_newest_socket_of_a_member_wins_across_processes(two_servers):
    """Dee opens the room on process 1, then again on process 2 (a second tab): the first socket is
    closed 4408 replaced, and Ana sees Dee stay online (no `away` from the closed one)."""
    p1, p2 = two_servers

    async def scenario():
        async with httpx.AsyncClient(timeout=20) as http:
            room, j = await _ana_and_dee(http, p1, p1)
        room_id = room["room_id"]
        ana, first, second = Client("Ana@1"), Client("Dee@1"), Client("Dee@2")
        await ana.open(p1, room_id, room["member_token"])
        await first.open(p1, room_id, j["member_token"])
        await ana.wait(lambda f: f["type"] == "presence" and f["member"] == j["member_id"])
        await second.open(p2, room_id, j["member_token"])
        await asyncio.wait_for(first.task, 10)  # the first socket is closed by the server
        await second.send({"type": "chat", "text": "from my second tab"})
        await ana.wait(lambda f: f.get("text") == "from my second tab")
        await asyncio.sleep(0.3)
        presence = [f["status"] for f in ana.frames if f["type"] == "presence" and f["member"] == j["member_id"]]
        out = (first.ws.close_code, first.ws.close_reason, presence)
        await ana.close()
        await second.close()
        return out

    code, reason, presence = asyncio.run(scenario())
    assert (code, reason) == (4408, "replaced")
    assert presence == ["online", "online"]  # the second tab's; never away


def _stored_seqs(folder: Path, database_url: str | None, room_id: str) -> list[int]:
    from sqlalchemy import create_engine, text

    from assets.catalog_db import database_url as with_driver

    engine = create_engine(with_driver(folder / "data", database_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT seq FROM room_events WHERE room_id = :r ORDER BY seq"),
                                     {"r": room_id}).scalars())
    finally:
        engine.dispose()


def test_members_of_a_killed_process_are_taken_over(tmp_path, redis_url, database_url):
    """Process 2 is killed (SIGKILL: no goodbye) after its member's burst of chat, none of it stored
    yet (a 30 s write-behind). Process 1 stores a later event of its own (Cy's join), shows the
    member away within the heartbeat TTL (reason server_gone), stores the events process 2 had
    published from Redis's log, and with no reconnect lets the member leave after the grace."""
    from streaming.room_broker_redis import HEARTBEAT_S, PROC_TTL_S

    grace = 2.0
    with _servers(tmp_path, redis_url, database_url, FITROOM_ROOM_GRACE_S=str(grace),
                  FITROOM_ROOM_FLUSH_S="30") as [(p1, _), (p2, proc2)]:

        async def scenario():
            async with httpx.AsyncClient(timeout=20) as http:
                room, j = await _ana_and_dee(http, p1, p2)
                room_id, invite = room["room_id"], {"invite_token": room["invite_token"]}
                ana, dee = Client("Ana@1"), Client("Dee@2")
                await ana.open(p1, room_id, room["member_token"])
                await dee.open(p2, room_id, j["member_token"])
                for i in range(10):
                    await dee.send({"type": "chat", "text": f"last words {i}"})
                last_words = await ana.wait(lambda f: f.get("text") == "last words 9")
                proc2.kill()
                killed = time.monotonic()
                unstored = await asyncio.to_thread(_stored_seqs, tmp_path, database_url, room_id)
                # a later event stored by the survivor before it takes over (a join is stored at once)
                cy = (await http.post(f"{p1}/api/v1/rooms/{room_id}/join", json={**invite, "display_name": "Cy"})).json()
            wait = PROC_TTL_S + 2 * HEARTBEAT_S + 3
            dee_id = j["member_id"]
            away = await ana.wait(lambda f: f["type"] == "presence" and f["status"] == "away" and f["member"] == dee_id,
                                  timeout=wait)
            away_s = time.monotonic() - killed
            left = await ana.wait(lambda f: f["type"] == "left" and f["member"] == dee_id, timeout=grace + 5)
            left_s = time.monotonic() - killed
            await ana.close()
            with contextlib.suppress(Exception):
                await dee.close()
            return room_id, dee_id, cy, last_words, unstored, away, away_s, left, left_s

        room_id, dee_id, cy, last_words, unstored, away, away_s, left, left_s = asyncio.run(scenario())
    # process 1 stopped (gracefully: it stored what it had): every event is in the database
    stored = _stored_seqs(tmp_path, database_url, room_id)
    assert last_words["seq"] not in unstored and max(unstored) < last_words["seq"]
    assert away["member"] == dee_id and away["reason"] == "server_gone" and cy["member_id"] != dee_id
    assert away_s <= PROC_TTL_S + 2 * HEARTBEAT_S + 3
    assert left["reason"] == "timeout" and left_s - away_s >= grace - 0.5
    assert stored == list(range(1, stored[-1] + 1)) and stored[-1] >= left["seq"]
