"""The session's video encoder: H.264 from NVIDIA's NVENC where it opens, else libx264; VP8 from libvpx.

One encoder per session (see `video_track`): frames in, `av.Packet`s out, tuned for latency (no
B-frames, no lookahead, a keyframe every two seconds and on request, stream headers on every
keyframe). Only PyAV: no aiortc, so that a GPU machine can check NVENC with PyAV alone.
"""

from __future__ import annotations

import fractions
import logging

import av

from fitroom.errors import FitroomError
from fitroom.settings import STREAM_ENCODERS

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90_000
TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
CODECS = ("h264", "vp8")
_UNUSABLE: dict[tuple, str] = {}  # (encoder name, width, height) -> why it did not open in this process


def _configure(ctx: av.CodecContext, name: str, fps: int) -> None:
    """Low-latency options per encoder: no B-frames, no lookahead, headers on every keyframe."""
    ctx.gop_size = 2 * fps
    ctx.max_b_frames = 0
    if name == "libx264":
        # Baseline: what aiortc offers (profile-level-id 42e01f); level 4 allows 1080p at 30 fps.
        ctx.profile = "Baseline"
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "level": "40",
                       "x264-params": "repeat-headers=1"}  # SPS/PPS on every keyframe
        ctx.thread_count = 2
    elif name == "h264_nvenc":
        # NVENC's fastest preset tuned for ultra-low latency, constant bit rate, an IDR frame when a
        # keyframe is asked for. Without a global header FFmpeg has NVENC repeat SPS/PPS at each IDR.
        ctx.options = {"preset": "p1", "tune": "ull", "rc": "cbr", "zerolatency": "1", "delay": "0",
                       "forced-idr": "1", "profile": "baseline"}  # level: NVENC's choice for the size
    else:
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "error-resilient": "1"}
        ctx.thread_count = 2


class SharedEncoder:
    """One encoder for a session: frames in, `av.Packet`s out (zero latency, no B-frames, a
    keyframe every two seconds and on request).

    codec : `h264` or `vp8` (libvpx). encoder : for H.264, `libx264`, `h264_nvenc` (NVIDIA's
    hardware encoder; FitroomError `encoder_unavailable` when it does not open: no NVIDIA GPU or
    driver) or `auto`: h264_nvenc where it opens, else libx264. `name` is the encoder in use.
    Under `auto` a failed open is remembered for the process and size, so NVENC is tried once;
    an encoder asked for by name is tried every time (a busy GPU's session limit passes)."""

    def __init__(self, codec: str, width: int, height: int, fps: int, bitrate: int, encoder: str = "auto"):
        if codec not in CODECS or encoder not in STREAM_ENCODERS:
            raise FitroomError("bad_setting", f"Unknown codec {codec!r} or encoder {encoder!r}.")
        if codec == "vp8":
            names = ["libvpx"]
        else:
            names = ["h264_nvenc", "libx264"] if encoder == "auto" else [encoder]
        why = "unknown error"
        for name in names:
            key = (name, width, height)
            if encoder == "auto" and key in _UNUSABLE:
                continue
            try:
                ctx = av.CodecContext.create(name, "w")
                ctx.width, ctx.height = width, height
                ctx.pix_fmt = "yuv420p"
                ctx.bit_rate = bitrate
                ctx.framerate = fractions.Fraction(fps, 1)
                ctx.time_base = TIME_BASE
                _configure(ctx, name, fps)
                ctx.open()
            # No NVIDIA device or driver: EPERM, ENOSYS, ...; an FFmpeg built without it: ValueError.
            except (av.FFmpegError, OSError, ValueError) as e:
                why = _UNUSABLE[key] = f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"
                log.info("video encoder %s did not open at %dx%d (%s)", name, width, height, why)
                continue
            self.codec, self.name = ctx, name
            return
        raise FitroomError("encoder_unavailable", f"The video encoder {names[-1]} could not be opened here at "
                           f"{width}x{height} ({why}); use FITROOM_STREAM_ENCODER=auto.")

    def encode(self, frame: av.VideoFrame, keyframe: bool) -> list[av.Packet]:
        frame.pict_type = av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        return list(self.codec.encode(frame))


def nvenc_opens() -> bool:
    """Whether NVIDIA's H.264 encoder opens here (an NVIDIA GPU and driver, FFmpeg built with it)."""
    try:
        SharedEncoder("h264", 640, 360, 20, 1_000_000, "h264_nvenc")
    except FitroomError:
        return False
    return True
