"""Fixtures of the try-on tests: the app served by uvicorn on a free port, and a Python WebRTC viewer.

Import them into a test module: `from tests.streaming.tryon_fixtures import tryon_server, Viewer`.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np
import pytest

from fitroom.settings import Settings
from tests.local_server import serve_app

STREAM = {"stream_width": 320, "stream_height": 240, "stream_fps": 15, "stream_bitrate": 600_000}


@pytest.fixture(scope="module")
def tryon_server(tmp_path_factory, body_model_cpu):
    settings = Settings(data_dir=tmp_path_factory.mktemp("tryon") / "data", **STREAM)
    served, stop = serve_app(settings, body_model_cpu)
    yield served
    stop()


async def wait_status(client: httpx.AsyncClient, session_id: str, statuses=("ready", "failed"), timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        doc = (await client.get(f"/api/v1/tryon/{session_id}")).json()
        if doc["status"] in statuses or time.monotonic() > deadline:
            return doc
        await asyncio.sleep(0.1)


def picture(image: np.ndarray) -> np.ndarray:
    """The frame without its counter stamp (the top 8 rows), as float."""
    return image[8:].astype(np.float32)


class Viewer:
    """A Python WebRTC viewer: receive-only video and the `control` data channel. codec: offer only
    that one ("h264" or "vp8"), or None for aiortc's default offer (VP8 and H.264)."""

    def __init__(self, base_url: str, session_id: str, codec: str | None = None):
        self.url, self.session_id, self.codec = base_url, session_id, codec
        self.messages: list[dict] = []
        self.pc = self.channel = self.track = None

    async def connect(self, timeout: float = 20.0) -> "Viewer":
        from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription

        self.pc = pc = RTCPeerConnection()
        transceiver = pc.addTransceiver("video", direction="recvonly")
        if self.codec is not None:
            codecs = RTCRtpReceiver.getCapabilities("video").codecs
            transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() == f"video/{self.codec}"])
        self.channel = pc.createDataChannel("control")
        opened = asyncio.Event()
        self.channel.on("open", opened.set)
        self.channel.on("message", lambda m: self.messages.append(json.loads(m)))
        got_track = asyncio.get_running_loop().create_future()
        pc.on("track", lambda t: got_track.done() or got_track.set_result(t))
        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            r = await client.post(f"/api/v1/tryon/{self.session_id}/offer",
                                  json={"sdp": pc.localDescription.sdp, "type": pc.localDescription.type})
        assert r.status_code == 200, r.text
        await pc.setRemoteDescription(RTCSessionDescription(**r.json()))
        self.track = await asyncio.wait_for(got_track, timeout)
        await asyncio.wait_for(opened.wait(), timeout)
        return self

    async def frame(self, timeout: float = 10.0) -> np.ndarray:
        f = await asyncio.wait_for(self.track.recv(), timeout)
        return f.to_ndarray(format="rgb24")

    async def latest(self, seconds: float = 0.4) -> np.ndarray:
        """The newest frame after draining what arrived during `seconds`."""
        end = time.monotonic() + seconds
        image = await self.frame()
        while time.monotonic() < end:
            image = await self.frame()
        return image

    def send(self, doc) -> None:
        self.channel.send(doc if isinstance(doc, str) else json.dumps(doc))

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m.get("type") == kind]

    async def close(self) -> None:
        await self.pc.close()
