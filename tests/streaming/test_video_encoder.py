"""The session encoder: H.264 from NVIDIA's NVENC where it opens, else libx264; VP8 from libvpx.

Without an NVIDIA GPU (CI) `auto` must fall back to libx264 and a named h264_nvenc must be a clear
error; on a GPU machine the same tests check that NVENC is picked and its stream decodes.
"""

import time

import av
import numpy as np
import pytest

from fitroom.errors import FitroomError
from fitroom.settings import Settings
from streaming.frame_stamp import read_counter, stamp_counter
from streaming.video_encoder import TIME_BASE, SharedEncoder, nvenc_opens


def round_trip(encoder: SharedEncoder, codec: str, width: int, height: int, frames: int = 12):
    """Encodes `frames` stamped frames (keyframes at 0 and 6); returns the counters read back from
    the decoded pictures, whether each first packet of a keyframe is a keyframe, and encode ms."""
    decoder = av.CodecContext.create(codec, "r")
    rng = np.random.default_rng(0)
    read, keys, ms = [], [], []
    for i in range(frames):
        image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        stamp_counter(image, 1000 + i)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = i * 4500, TIME_BASE
        t0 = time.perf_counter()
        packets = encoder.encode(frame, keyframe=i in (0, 6))
        ms.append((time.perf_counter() - t0) * 1000)
        if i in (0, 6):
            keys.append(bool(packets) and packets[0].is_keyframe)
        for packet in packets:
            for picture in decoder.decode(packet):
                read.append(read_counter(picture.to_ndarray(format="rgb24")))
    return read, keys, ms


def test_auto_picks_nvenc_where_it_opens_else_libx264_and_the_stream_decodes():
    encoder = SharedEncoder("h264", 320, 240, 20, 1_000_000)
    assert encoder.name == ("h264_nvenc" if nvenc_opens() else "libx264")
    read, keys, _ = round_trip(encoder, "h264", 320, 240)
    # Zero latency: every frame comes out as it goes in (no B-frames, no lookahead).
    assert read == list(range(1000, 1012))
    assert keys == [True, True]


def test_vp8_is_libvpx_whatever_the_h264_setting():
    encoder = SharedEncoder("vp8", 320, 240, 20, 1_000_000, "h264_nvenc")
    assert encoder.name == "libvpx"
    read, keys, _ = round_trip(encoder, "vp8", 320, 240)
    assert read == list(range(1000, 1012)) and keys == [True, True]


def test_nvenc_by_name_without_a_gpu_is_a_clear_error_and_no_server_starts(tmp_path):
    if nvenc_opens():
        pytest.skip("NVENC opens here")
    with pytest.raises(FitroomError) as e:
        SharedEncoder("h264", 320, 240, 20, 1_000_000, "h264_nvenc")
    assert e.value.code == "encoder_unavailable" and "h264_nvenc" in e.value.message
    from streaming.api_app import create_app

    data = tmp_path / "data"
    with pytest.raises(FitroomError, match="h264_nvenc"):
        create_app(Settings(data_dir=data, stream_encoder="h264_nvenc"))
    assert not data.exists()  # nothing was opened or written


def test_an_encoder_ffmpeg_lacks_is_unavailable_not_a_crash(monkeypatch):
    """A PyAV whose FFmpeg was built without NVENC raises ValueError (UnknownCodecError) at create:
    `auto` still falls back, a named encoder is `encoder_unavailable`."""
    from streaming import video_encoder

    real = av.CodecContext.create

    def without_nvenc(name, mode):
        if name == "h264_nvenc":
            raise av.codec.codec.UnknownCodecError(name)
        return real(name, mode)

    monkeypatch.setattr(av.CodecContext, "create", without_nvenc)
    monkeypatch.setattr(video_encoder, "_UNUSABLE", {})
    assert SharedEncoder("h264", 320, 240, 20, 1_000_000).name == "libx264"
    with pytest.raises(FitroomError) as e:
        SharedEncoder("h264", 320, 240, 20, 1_000_000, "h264_nvenc")
    assert e.value.code == "encoder_unavailable" and "UnknownCodecError" in e.value.message


def test_the_encoder_setting():
    assert Settings.from_env({}).stream_encoder == "auto"
    assert Settings.from_env({"FITROOM_STREAM_ENCODER": " H264_NVENC "}).stream_encoder == "h264_nvenc"
    with pytest.raises(FitroomError, match="FITROOM_STREAM_ENCODER must be one of auto, libx264, h264_nvenc"):
        Settings.from_env({"FITROOM_STREAM_ENCODER": "x265"})
    with pytest.raises(FitroomError) as e:
        SharedEncoder("h265", 320, 240, 20, 1_000_000)
    assert e.value.code == "bad_setting"


def test_nvenc_encodes_1080p_within_the_frame_budget():
    """On an NVIDIA GPU: 1080p at NVENC's fastest preset decodes frame for frame; the encode's p95
    stays under 10 ms (the issue's budget for render plus encode is 20 ms p95 at 30 fps)."""
    if not nvenc_opens():
        pytest.skip("NVENC does not open here (no NVIDIA GPU or driver, or FFmpeg without it)")
    encoder = SharedEncoder("h264", 1920, 1080, 30, 8_000_000, "h264_nvenc")
    read, keys, ms = round_trip(encoder, "h264", 1920, 1080, frames=40)
    assert read == list(range(1000, 1040)) and keys == [True, True]
    assert np.percentile(ms[5:], 95) < 10.0, ms
