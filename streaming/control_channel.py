"""The `control` data channel: a viewer's JSON messages, validated, rate-limited and applied.

Viewer -> server (one JSON object per message, at most `MAX_MESSAGE_BYTES`):

    {"type": "orbit", "d_yaw": degrees, "d_pitch": degrees}  turn the camera (within +-180 / +-90)
    {"type": "zoom", "factor": f}                            0.2..5, > 1 moves closer
    {"type": "pan", "dx": x, "dy": y}                        fractions of the view, each within +-1
    {"type": "size", "size": "XS".."XL"}                     drape again in another size (a catalogue
                                                             garment's: one of its chart's sizes)
    {"type": "colourway", "colourway": name, "hex": "#rrggbb" (optional, for a name the server lacks)}
    {"type": "light", "name": "studio" | "daylight" | "evening" | "store"}
    {"type": "fitmap", "on": true | false}

Server -> viewer:

    {"type": "stats", "fps", "frames", "render_ms": {"p50", "p95"}, "encode_ms": {...}, "viewers",
     "stamps": [[frame counter, server epoch ms], ...]}    every second
    {"type": "status", "status", "progress", "size", ...}    when the session's drape status changes
    {"type": "error", "error": code, "detail": message}       a refused message (and a log line)

A refused message never touches the session, so the other viewers keep watching undisturbed.
Messages over the rate limit are dropped with one `rate_limited` error a second, not one each: a
viewer flooding the channel would otherwise get as many errors back as it sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from fitroom.errors import FitroomError
from streaming.lighting import LIGHT_NAMES

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4096
RATE_PER_S = 30.0  # sustained messages per second per viewer (a drag sends about 20)
BURST = 30
STATS_EVERY_S = 1.0


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Orbit(_Message):
    type: Literal["orbit"]
    d_yaw: float = Field(0.0, ge=-180, le=180)
    d_pitch: float = Field(0.0, ge=-90, le=90)


class Zoom(_Message):
    type: Literal["zoom"]
    factor: float = Field(gt=0.2, le=5.0)


class Pan(_Message):
    type: Literal["pan"]
    dx: float = Field(0.0, ge=-1, le=1)
    dy: float = Field(0.0, ge=-1, le=1)


class Size(_Message):
    type: Literal["size"]
    size: str = Field(min_length=1, max_length=16)  # a catalogue garment's chart labels: up to 16


class Colourway(_Message):
    type: Literal["colourway"]
    colourway: str = Field(min_length=1, max_length=32)
    hex: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$")


class Light(_Message):
    type: Literal["light"]
    name: Literal[LIGHT_NAMES]


class Fitmap(_Message):
    type: Literal["fitmap"]
    on: bool


ControlMessage = Annotated[Union[Orbit, Zoom, Pan, Size, Colourway, Light, Fitmap], Field(discriminator="type")]
_adapter = TypeAdapter(ControlMessage)


def parse_message(raw) -> ControlMessage:
    """A validated control message from the channel's `raw` str or bytes; FitroomError when not."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        raise FitroomError("too_large", f"A control message is at most {MAX_MESSAGE_BYTES} bytes, not {size}.")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise FitroomError("bad_message", "A control message is one JSON object.") from None
    if not isinstance(doc, dict) or "type" not in doc:
        raise FitroomError("bad_message", 'A control message is a JSON object with a "type".')
    try:
        return _adapter.validate_python(doc)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise FitroomError("bad_message", f"{where}: {first.get('msg')}" if where else str(first.get("msg"))) from None


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; `refused` counts refusals in a row."""

    __slots__ = ("rate", "burst", "clock", "tokens", "last", "refused")

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.last, self.refused = float(burst), clock(), 0

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.refused = 0
            return True
        self.refused += 1
        return False


class ControlChannel:
    """One viewer's control channel on a session.

    channel : the aiortc RTCDataChannel (anything with `send(str)` and `readyState`).
    session, registry : the `TryOnSession` and its `SessionRegistry`.
    stats : `() -> dict` the stats to send every `STATS_EVERY_S`.
    """

    def __init__(self, channel, session, registry, stats=None, rate: float = RATE_PER_S, burst: int = BURST):
        self.channel, self.session, self.registry, self.stats = channel, session, registry, stats
        self.bucket = TokenBucket(rate, burst)
        self.refused = 0
        self._last_limit_error = -1e9
        self._stats_task: asyncio.Task | None = None
        self._loop = None

    def start(self) -> None:
        """Listens on the channel, sends status changes and stats (call on the event loop)."""
        self._loop = asyncio.get_running_loop()
        self.channel.on("message", self.handle)
        self.session.listeners.append(self._status)
        if self.stats is not None:
            self._stats_task = asyncio.ensure_future(self._send_stats())
        self.send({"type": "status", **self.session.snapshot()})

    def stop(self) -> None:
        if self._status in self.session.listeners:
            self.session.listeners.remove(self._status)
        if self._stats_task is not None:
            self._stats_task.cancel()
            self._stats_task = None

    def send(self, doc: dict) -> None:
        if getattr(self.channel, "readyState", "open") == "open":
            self.channel.send(json.dumps(doc))

    def _status(self, event: dict) -> None:
        # Called from the drape thread: hand the message to the event loop.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.send, event)

    async def _send_stats(self) -> None:
        while getattr(self.channel, "readyState", "open") in ("connecting", "open"):
            await asyncio.sleep(STATS_EVERY_S)
            try:
                self.send({"type": "stats", **self.stats()})
            except Exception:  # a closing channel: the loop ends on its state
                log.debug("stats not sent", exc_info=True)

    def handle(self, raw) -> dict | None:
        """Applies one message; returns the error sent back (None when it was applied)."""
        if not self.bucket.take():
            self.refused += 1
            now = time.monotonic()
            if now - self._last_limit_error < 1.0:
                return {"type": "error", "error": "rate_limited"}  # one error a second is enough to tell
            self._last_limit_error = now
            return self._refuse("rate_limited", f"At most {self.bucket.rate:g} control messages a second; this one was dropped.")
        try:
            message = parse_message(raw)
            self.apply(message)
        except FitroomError as e:
            return self._refuse(e.code, e.message)
        return None

    def _refuse(self, code: str, detail: str) -> dict:
        self.refused += 1
        log.warning("try-on %s: control message refused (%s): %s", self.session.id, code, detail)
        error = {"type": "error", "error": code, "detail": detail}
        self.send(error)
        return error

    def apply(self, m) -> None:
        """Applies a valid message to the session (camera moves on the render thread)."""
        s = self.session
        if isinstance(m, Orbit):
            s.call_render(lambda fs: fs.camera.orbit(math.radians(m.d_yaw), math.radians(m.d_pitch)))
        elif isinstance(m, Zoom):
            s.call_render(lambda fs: fs.camera.zoom(m.factor))
        elif isinstance(m, Pan):
            s.call_render(_pan, m.dx, m.dy)
        elif isinstance(m, Size):
            self.registry.change(s, size=m.size)
        elif isinstance(m, Colourway):
            self.registry.change(s, colourway=m.colourway, hex=m.hex)
        elif isinstance(m, Light):
            self.registry.change(s, light=m.name)
        elif isinstance(m, Fitmap):
            self.registry.change(s, fitmap=m.on)


def _pan(fs, dx: float, dy: float) -> None:
    """Pans by fractions of the view (what a drag measures) converted to metres at the target."""
    cam = fs.camera
    view_h = 2.0 * cam.distance * math.tan(math.radians(cam.vertical_fov_deg) / 2.0)
    cam.pan(dx * view_h * fs.width / fs.height, dy * view_h)
