"""The try-on video: one track per session, rendered and encoded once, fanned out to every viewer.

aiortc encodes in `RTCRtpSender`, one encoder per sender: fanning raw frames out with `MediaRelay`
saves the rendering but every viewer still costs a full encode (measured in `bench/stream.py`:
`per_peer` mode). So `SessionVideoTrack` encodes itself and its `recv()` returns `av.Packet`s, which
aiortc's senders only packetise (`Encoder.pack`). `MediaRelay` (buffered: an H.264 stream cannot skip
P-frames) hands the same packets to each viewer; `ViewerTrack` makes a new viewer start at a
keyframe and asks the session track for one, and a viewer's picture-loss requests (RTCP PLI) are
routed to the shared encoder (`route_keyframe_requests`), since aiortc ignores them for packets.

Every frame carries its counter as a barcode (`frame_stamp`). A page reads it back from the
decoded video to measure glass-to-glass latency: the server keeps when it stamped each counter
(`SessionVideoTrack.stamped_at`, epoch seconds) and sends the recent pairs in the control
channel's stats (`stamps`: [[counter, epoch_ms], ...]).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streaming.frame_stamp import stamp_counter
from streaming.video_encoder import TIME_BASE, VIDEO_CLOCK, SharedEncoder

log = logging.getLogger(__name__)


STATS_WINDOW_S = 5.0  # the stats' percentiles cover the frames of the last 5 s


def percentiles(values) -> dict:
    """p50 and p95 of `values` (ms), None when there are none."""
    v = list(values)
    if not v:
        return {"p50": None, "p95": None}
    return {"p50": round(float(np.percentile(v, 50)), 2), "p95": round(float(np.percentile(v, 95)), 2)}


class RecentMs:
    """Durations (ms) of the frames of the last `window` seconds (at most `maxlen` of them), so that
    the stats describe what happens now: a still picture after a turn shows no render times, and
    the first frame's GL set-up (200 ms) leaves the figures after 5 s."""

    def __init__(self, window: float = STATS_WINDOW_S, maxlen: int = 600):
        self.window, self._items = window, collections.deque(maxlen=maxlen)

    def append(self, ms: float) -> None:
        self._items.append((time.monotonic(), ms))

    def percentiles(self) -> dict:
        now = time.monotonic()
        return percentiles(ms for t, ms in self._items if now - t <= self.window)


class SessionVideoTrack(MediaStreamTrack):
    """The session's one video track: frames from `frame_source` at `fps`, counter-stamped, encoded
    once (`shared_encode`, `recv()` gives `av.Packet`) or left raw (`recv()` gives `av.VideoFrame`
    for aiortc to encode per viewer; for comparison).

    render : a callable `() -> future of (H, W, 3) uint8`, the frame source's next frame computed
    on the session's render thread (rendered only when something changed).
    """

    kind = "video"

    def __init__(self, render, width: int, height: int, fps: int, bitrate: int, codec: str = "h264",
                 shared_encode: bool = True, render_stats=None, encoder: str = "auto"):
        super().__init__()
        self.render, self.width, self.height, self.fps = render, width, height, fps
        self.codec_name = codec
        self.shared_encode = shared_encode
        self.encoder = SharedEncoder(codec, width, height, fps, bitrate, encoder) if shared_encode else None
        self.render_stats = render_stats  # () -> FrameSource.stats, for the render time of rendered frames
        self.counter = 0
        # Per frame: the wait for its render (pipelined: less than the render when frames change) plus
        # stamp, convert and encode: what the track adds to the frame interval.
        self.frame_ms = RecentMs()
        self.render_ms = RecentMs()  # frames actually rendered (not reused)
        self.encode_ms = RecentMs()
        self.sent_at = collections.deque(maxlen=300)
        self.stamped_at: collections.OrderedDict[int, float] = collections.OrderedDict()  # counter -> time.time()
        self._keyframe = threading.Event()
        self._keyframe.set()
        self._start: float | None = None
        self._viewers = 0
        self._wake = asyncio.Event()
        self._pending = collections.deque()  # packets of one frame beyond the first (rare)
        self._prefetch = None  # the next frame, rendering while this one is encoded

    def request_keyframe(self) -> None:
        self._keyframe.set()

    def viewer_added(self) -> None:
        self._viewers += 1
        self._wake.set()
        self.request_keyframe()

    def viewer_removed(self) -> None:
        self._viewers = max(0, self._viewers - 1)

    def stats(self) -> dict:
        now = time.monotonic()
        recent = [t for t in self.sent_at if now - t <= 2.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 and recent[-1] > recent[0] else 0.0
        return {"fps": round(fps, 1), "frames": self.counter, "codec": self.codec_name,
                "encoder": self.encoder.name if self.encoder else "aiortc", "encode_once": self.shared_encode,
                "render_ms": self.render_ms.percentiles(), "encode_ms": self.encode_ms.percentiles(),
                "frame_ms": self.frame_ms.percentiles()}

    def recent_stamps(self, n: int = 40) -> list:
        """[[counter, epoch ms], ...] of the last `n` frames sent, for latency measurement."""
        items = list(self.stamped_at.items())[-n:]
        return [[c, round(t * 1000.0, 1)] for c, t in items]

    def _produce(self, image: np.ndarray, counter: int, keyframe: bool):
        t0 = time.perf_counter()
        image = image.copy()  # the frame source keeps its frame for reuse; the stamp is ours
        stamp_counter(image, counter)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = int(counter * VIDEO_CLOCK / self.fps), TIME_BASE
        if self.encoder is None:
            return frame, (time.perf_counter() - t0) * 1000
        packets = self.encoder.encode(frame, keyframe)
        for p in packets:
            p.pts, p.time_base = frame.pts, TIME_BASE
        return packets, (time.perf_counter() - t0) * 1000

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self._pending:
            return self._pending.popleft()
        while True:
            while self._viewers == 0 and self.readyState == "live":
                # Nobody watches: neither render nor encode (MediaRelay keeps reading its source).
                self._wake.clear()
                self._start, self._prefetch = None, None
                try:
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
            if self.readyState != "live":
                raise MediaStreamError
            if self._start is None:
                self._start, self._next = time.monotonic(), 0
            wait = self._start + self._next / self.fps - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -2.0 / self.fps:
                self._start, self._next = time.monotonic(), 0  # fell behind: do not burst to catch up
            self._next += 1
            t0 = time.perf_counter()
            try:
                image = await asyncio.wrap_future(self._prefetch or self.render())
            except RuntimeError:  # the session closed its render thread (expired, shut down)
                raise MediaStreamError from None
            except Exception:
                log.exception("video: the frame source failed")
                raise MediaStreamError from None
            # The next frame renders (on the render thread) while this one is encoded (on another):
            # at 720p on the CPU each takes tens of ms, and in turn they would halve the frame rate.
            # A change that comes in meanwhile shows one frame later.
            try:
                self._prefetch = self.render()
            except RuntimeError:  # the session closed its render thread: this is the last frame
                self._prefetch = None
            render_ms = (time.perf_counter() - t0) * 1000
            rendered = self._rendered_ms()
            if rendered is not None:
                self.render_ms.append(rendered)
            keyframe = self._keyframe.is_set()
            self._keyframe.clear()
            counter = self.counter
            self.counter += 1
            self.stamped_at[counter] = time.time()
            while len(self.stamped_at) > 600:
                self.stamped_at.popitem(last=False)
            out, encode_ms = await asyncio.get_running_loop().run_in_executor(None, self._produce, image, counter, keyframe)
            self.encode_ms.append(encode_ms)
            self.frame_ms.append(render_ms + encode_ms)
            self.sent_at.append(time.monotonic())
            if isinstance(out, av.VideoFrame):
                return out
            if out:
                self._pending.extend(out[1:])
                return out[0]

    def _rendered_ms(self):
        """The render time of this frame when the frame source rendered it (None when it reused one)."""
        if self.render_stats is None:
            return None
        s = self.render_stats()
        rendered = s.get("rendered", 0)
        previous = getattr(self, "_last_rendered", 0)
        self._last_rendered = rendered
        if rendered > previous:
            return float(s.get("render_ms", 0.0))
        return None


class ViewerTrack(MediaStreamTrack):
    """One viewer's view of the session track (a `MediaRelay` proxy): starts at a keyframe."""

    kind = "video"

    def __init__(self, proxy: MediaStreamTrack, source: SessionVideoTrack):
        super().__init__()
        self.proxy, self.source = proxy, source
        self._started = not source.shared_encode  # raw frames need no keyframe to start from
        self._counted = False

    async def recv(self):
        if not self._counted:
            self._counted = True
            self.source.viewer_added()
        while True:
            data = await self.proxy.recv()
            if self._started or data.is_keyframe:
                self._started = True
                return data

    def stop(self) -> None:
        if self._counted:
            self._counted = False
            self.source.viewer_removed()
        self.proxy.stop()
        super().stop()


def route_keyframe_requests(sender, track: SessionVideoTrack) -> None:
    """Sends a viewer's picture-loss requests to the shared encoder: for packets aiortc's sender
    would only set its own (unused) keyframe flag."""
    if track.shared_encode:
        sender._send_keyframe = track.request_keyframe


class SessionStream:
    """The video of one session: one `SessionVideoTrack` per negotiated codec, fanned out to the
    viewers by one `MediaRelay`."""

    def __init__(self, render, width: int, height: int, fps: int, bitrate: int, shared_encode: bool = True,
                 render_stats=None, encoder: str = "auto"):
        from aiortc.contrib.media import MediaRelay

        self._args = (render, width, height, fps, bitrate)
        self.shared_encode, self.render_stats, self.encoder = shared_encode, render_stats, encoder
        self.relay = MediaRelay()
        self.tracks: dict[str, SessionVideoTrack] = {}

    def viewer(self, codec: str = "h264") -> ViewerTrack:
        """A new viewer's track (the session track of `codec` starts with the first viewer)."""
        track = self.tracks.get(codec)
        if track is None or track.readyState != "live":
            track = self.tracks[codec] = SessionVideoTrack(*self._args, codec=codec, shared_encode=self.shared_encode,
                                                           render_stats=self.render_stats, encoder=self.encoder)
        return ViewerTrack(self.relay.subscribe(track, buffered=True), track)

    def live_track(self) -> SessionVideoTrack | None:
        """The busiest codec's track (normally the only one), None before the first viewer."""
        live = [t for t in self.tracks.values() if t.readyState == "live"]
        return max(live, key=lambda t: t._viewers) if live else None

    def stats(self) -> dict:
        track = self.live_track()
        return track.stats() if track else self.empty_stats(self.shared_encode)

    @staticmethod
    def empty_stats(shared_encode: bool) -> dict:
        return {"fps": 0.0, "frames": 0, "codec": None, "encoder": None, "render_ms": percentiles([]),
                "encode_ms": percentiles([]), "frame_ms": percentiles([]), "encode_once": shared_encode}

    def stop(self) -> None:
        for track in self.tracks.values():
            track.stop()
