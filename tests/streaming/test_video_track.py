"""The session track's own pieces (the track end to end: test_webrtc_client.py, tests/web_client)."""

import time

from streaming.video_track import RecentMs


def test_stats_cover_the_recent_frames_only():
    recent = RecentMs(window=0.2)
    assert recent.percentiles() == {"p50": None, "p95": None}
    recent.append(200.0)  # the first frame, GL set-up included
    time.sleep(0.25)
    for ms in (10.0, 20.0, 30.0):
        recent.append(ms)
    assert recent.percentiles() == {"p50": 20.0, "p95": 29.0}
    time.sleep(0.25)
    assert recent.percentiles() == {"p50": None, "p95": None}  # a still picture: nothing rendered lately
