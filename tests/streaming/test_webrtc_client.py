"""A real Python aiortc viewer against the app served by uvicorn: video, control messages, re-drape,
refused messages and clean shutdown, end to end (one session, two viewers, ~20 s)."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import numpy as np

from streaming.frame_stamp import read_counter
from streaming.video_encoder import nvenc_opens
from tests.streaming.tryon_fixtures import Viewer, picture, tryon_server, wait_status  # noqa: F401 (fixture)


async def _changes(viewer: Viewer, before: np.ndarray, seconds: float = 8.0, threshold: float = 2.0) -> float:
    """Reads frames until the picture differs from `before` by more than `threshold` (mean abs)."""
    end, diff = time.monotonic() + seconds, 0.0
    while time.monotonic() < end:
        diff = float(np.abs(picture(await viewer.frame()) - picture(before)).mean())
        if diff > threshold:
            return diff
    return diff


async def _scenario(url: str, hub) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.post("/api/v1/tryon", json={"avatar": {"sex": "female", "size": "M"}, "garment": "tshirt",
                                                     "size": "S", "colourway": "red"})
        assert r.status_code == 202, r.text
        sid = r.json()["id"]
        ready = await wait_status(client, sid)
        assert ready["status"] == "ready", ready
        assert ready["recommended_size"] and ready["size_advice"]

        a = await Viewer(url, sid).connect()
        first = await a.frame()
        frames = [await a.frame() for _ in range(5)]
        assert first.shape == (240, 320, 3)
        assert picture(frames[-1]).std() > 10, "the frame is blank"
        counters = [read_counter(f) for f in frames]
        assert all(b > c for c, b in zip(counters, counters[1:])), counters

        # Orbit: the picture turns.
        before = await a.latest()
        a.send({"type": "orbit", "d_yaw": 90, "d_pitch": 0})
        assert await _changes(a, before) > 2.0

        # A second viewer of the same session; garbage from the first is refused on its channel only.
        b = await Viewer(url, sid).connect()
        await b.frame()
        a.send("this is not json")
        a.send('{"type": "orbit", "d_yaw": 1000}')
        a.send('{"type": "zoom", "factor": 2, "' + "x" * 5000 + '": 1}')
        for _ in range(80):
            a.send({"type": "fitmap", "on": False})
        await asyncio.sleep(0.5)
        errors = {m["error"] for m in a.of_type("error")}
        assert {"bad_message", "too_large", "rate_limited"} <= errors, a.messages[-5:]
        assert not b.of_type("error")
        c0 = read_counter(await b.latest(0.2))
        c1 = read_counter(await b.latest(0.5))
        assert c1 > c0, "the other viewer's stream stopped"

        stats = (await client.get(f"/api/v1/tryon/{sid}/stats")).json()
        assert stats["viewers"] == 2 and stats["peer_connections"] == 2, stats
        assert stats["fps"] > 5 and stats["encode_once"] is True
        assert (stats["codec"], stats["encoder"]) == ("h264", "h264_nvenc" if nvenc_opens() else "libx264")
        assert any(m.get("fps") is not None for m in b.of_type("stats")), "no stats on the channel"

        # A size change from viewer b drapes again; both viewers see the new look.
        drapes = ready["drapes"]
        before = await a.latest()
        b.send({"type": "size", "size": "XL"})
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            seen = [m for m in a.of_type("status") if m.get("size") == "XL"]
            if seen and seen[-1]["status"] == "ready":
                break
            await asyncio.sleep(0.1)
            await a.frame()  # keep the receive queue short
        statuses = [m["status"] for m in a.of_type("status") if m.get("size") == "XL"]
        assert "draping" in statuses and statuses[-1] == "ready", statuses
        doc = (await client.get(f"/api/v1/tryon/{sid}")).json()
        assert doc["size"] == "XL" and doc["drapes"] == drapes + 1
        assert await _changes(a, before, threshold=0.5) > 0.5

        # Both leave: the peer count goes back to zero.
        await a.close()
        await b.close()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            stats = (await client.get(f"/api/v1/tryon/{sid}/stats")).json()
            if stats["peer_connections"] == 0:
                break
            await asyncio.sleep(0.1)
        assert stats["peer_connections"] == 0 and hub.peer_count() == 0, stats


def test_viewers_watch_turn_redrape_and_leave(tryon_server):
    asyncio.run(_scenario(tryon_server.url, tryon_server.hub))


def _cut(viewer: Viewer) -> None:
    """Cuts a viewer off the network without closing anything (a browser killed, a laptop lid shut):
    its UDP sockets stay open but drop every datagram, in and out; its peer connection still thinks
    it is connected and never says goodbye."""
    ice = viewer.pc.getTransceivers()[0].receiver.transport.transport  # RTCDtlsTransport -> RTCIceTransport
    for protocol in ice._connection._protocols:  # aioice's StunProtocols, one per local candidate
        protocol.transport.sendto = lambda *a, **k: None
        protocol.datagram_received = lambda *a, **k: None


async def _vanish_scenario(url: str, hub) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.post("/api/v1/tryon", json={"avatar": {"sex": "male", "size": "M"}, "garment": "tshirt"})
        sid = r.json()["id"]
        assert (await wait_status(client, sid))["status"] == "ready"
        a = await Viewer(url, sid).connect()
        b = await Viewer(url, sid).connect()
        await a.frame()
        await b.frame()
        assert hub.peer_count(sid) == 2
        _cut(a)
        t0 = time.monotonic()
        while hub.peer_count(sid) == 2 and time.monotonic() - t0 < 15:
            await asyncio.sleep(0.1)
            await b.frame()  # keep b's receive queue short
        assert hub.peer_count(sid) == 1, "the vanished viewer's peer was not closed"
        assert a.pc.connectionState == "connected"  # it never closed itself: the server noticed
        c0 = read_counter(await b.latest(0.2))
        c1 = read_counter(await b.latest(0.5))
        assert c1 > c0, "the other viewer's stream stopped"
        assert (await client.get(f"/api/v1/tryon/{sid}/stats")).json()["viewers"] == 1
        await b.close()
        t0 = time.monotonic()
        while hub.peer_count() and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.1)
        assert hub.peer_count() == 0
        await a.close()


def test_a_viewer_that_vanishes_without_closing_is_closed_and_counted_down(tryon_server, caplog):
    hub = tryon_server.hub
    caplog.set_level(logging.INFO, logger="streaming.api_tryon")
    hub.liveness_timeout_s = 2.0
    try:
        asyncio.run(_vanish_scenario(tryon_server.url, hub))
    finally:
        hub.liveness_timeout_s = None
    assert any("silent" in r.getMessage() and "closed" in r.getMessage() for r in caplog.records), caplog.text


async def _vp8_scenario(url: str, hub) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.post("/api/v1/tryon", json={"avatar": {"sex": "female", "size": "S"}, "garment": "dress"})
        sid = r.json()["id"]
        assert (await wait_status(client, sid))["status"] == "ready"
        vp8 = await Viewer(url, sid, codec="vp8").connect()
        frames = [await vp8.frame() for _ in range(5)]
        assert picture(frames[-1]).std() > 10, "the VP8 frame is blank"
        counters = [read_counter(f) for f in frames]
        assert all(b > c for c, b in zip(counters, counters[1:])), counters
        stats = (await client.get(f"/api/v1/tryon/{sid}/stats")).json()
        assert (stats["codec"], stats["encoder"]) == ("vp8", "libvpx"), stats
        before = await vp8.latest()
        vp8.send({"type": "orbit", "d_yaw": 120, "d_pitch": 0})
        assert await _changes(vp8, before) > 2.0

        # An H.264-only viewer joins the same session: its own encode, the VP8 viewer keeps watching.
        h264 = await Viewer(url, sid, codec="h264").connect()
        assert picture(await h264.frame()).std() > 10
        for viewer in (vp8, h264):
            c0 = read_counter(await viewer.latest(0.2))
            c1 = read_counter(await viewer.latest(0.5))
            assert c1 > c0
        assert hub.peer_count(sid) == 2
        await vp8.close()
        await h264.close()
        t0 = time.monotonic()
        while hub.peer_count() and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.1)
        assert hub.peer_count() == 0


def test_a_vp8_only_viewer_watches_and_turns_beside_an_h264_one(tryon_server):
    """A browser that offers only VP8 (no H.264 decoder) gets libvpx's stream of the same session."""
    asyncio.run(_vp8_scenario(tryon_server.url, tryon_server.hub))
