"""The control channel: the message schema, the rate limit, and messages applied to a real session."""

from __future__ import annotations

import json
import math
import time

import pytest

from fitroom.errors import FitroomError
from fitroom.settings import Settings
from streaming.control_channel import MAX_MESSAGE_BYTES, ControlChannel, Orbit, Pan, TokenBucket, parse_message
from streaming.tryon_sessions import SessionRegistry, TryOnRequest


class Recorder:
    """The channel end the server writes to: keeps what was sent (stands in for the transport only)."""

    readyState = "open"

    def __init__(self):
        self.sent = []

    def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


def test_valid_messages_parse_to_their_types():
    assert parse_message('{"type": "orbit", "d_yaw": 10, "d_pitch": -5}') == Orbit(type="orbit", d_yaw=10, d_pitch=-5)
    assert parse_message(b'{"type": "pan", "dx": 0.1}') == Pan(type="pan", dx=0.1, dy=0.0)
    assert parse_message('{"type": "light", "name": "evening"}').name == "evening"
    assert parse_message('{"type": "colourway", "colourway": "teal", "hex": "#008080"}').hex == "#008080"


@pytest.mark.parametrize("raw, code", [
    ("not json", "bad_message"),
    ("[1, 2]", "bad_message"),
    ('{"d_yaw": 3}', "bad_message"),
    ('{"type": "teleport"}', "bad_message"),
    ('{"type": "orbit", "d_yaw": 1e9}', "bad_message"),
    ('{"type": "zoom", "factor": 0}', "bad_message"),
    ('{"type": "light", "name": "disco"}', "bad_message"),
    ('{"type": "fitmap", "on": true, "extra": 1}', "bad_message"),
    (b"\xff\xfe", "bad_message"),
    ('{"type": "size", "size": "' + "L" * MAX_MESSAGE_BYTES + '"}', "too_large"),
])
def test_garbage_is_refused_with_a_code(raw, code):
    with pytest.raises(FitroomError) as e:
        parse_message(raw)
    assert e.value.code == code and e.value.message


def test_the_token_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(10.0, 5, clock=lambda: now[0])
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2
    now[0] += 0.25  # 2.5 tokens back
    assert [bucket.take() for _ in range(3)] == [True, True, False]


@pytest.fixture(scope="module")
def registry(tmp_path_factory, body_model_cpu):
    reg = SessionRegistry(Settings(data_dir=tmp_path_factory.mktemp("control"), stream_width=160, stream_height=120))
    reg.model = body_model_cpu
    yield reg
    reg.shutdown()


def _wait(session, status="ready", drapes=1, timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = session.snapshot()
        if doc["status"] == "failed" or (doc["status"] == status and doc["drapes"] >= drapes):
            return doc
        time.sleep(0.05)
    return session.snapshot()


def test_messages_move_the_camera_restyle_and_redrape(registry):
    session = registry.create(TryOnRequest(avatar={"sex": "female", "size": "S"}, garment="skirt", size="S"))
    assert _wait(session)["status"] == "ready"
    channel = ControlChannel(Recorder(), session, registry)
    camera = session.frame_source.camera
    yaw, distance = camera.yaw, camera.distance
    for msg in ({"type": "orbit", "d_yaw": 30, "d_pitch": 0}, {"type": "zoom", "factor": 2},
                {"type": "light", "name": "daylight"}, {"type": "fitmap", "on": True},
                {"type": "colourway", "colourway": "sage"}, {"type": "pan", "dx": 0.1, "dy": 0}):
        assert channel.handle(json.dumps(msg)) is None, msg
    session.call_render(lambda fs: None).result()  # the render thread has applied them
    assert math.isclose(camera.yaw, yaw + math.radians(30)) and math.isclose(camera.distance, distance / 2)
    assert session.frame_source.light == "daylight" and session.frame_source.fitmap
    assert session.request.colourway == "sage"

    assert channel.handle('{"type": "size", "size": "L"}') is None
    assert session.snapshot()["status"] in ("draping", "ready")
    doc = _wait(session, drapes=2)
    assert doc["status"] == "ready" and doc["size"] == "L"


def test_refusals_go_back_on_the_channel_and_leave_the_session_alone(registry):
    session = registry.create(TryOnRequest(avatar={"sex": "male", "size": "M"}, garment="trousers", size="M"))
    rec = Recorder()
    channel = ControlChannel(rec, session, registry, rate=5.0, burst=5)
    before = session.snapshot()
    assert channel.handle("{{{")["error"] == "bad_message"
    assert channel.handle('{"type": "size", "size": "XXXL"}')["error"] == "bad_size"
    assert channel.handle("x" * (MAX_MESSAGE_BYTES + 1))["error"] == "too_large"
    answers = [channel.handle('{"type": "fitmap", "on": false}') for _ in range(10)]
    limited = [a for a in answers if a and a["error"] == "rate_limited"]
    assert len(limited) >= 7  # 2 tokens left of the burst
    assert sum(1 for m in rec.sent if m.get("error") == "rate_limited") == 1  # one error a second is enough
    assert [m["error"] for m in rec.sent[:3]] == ["bad_message", "bad_size", "too_large"]
    after = session.snapshot()
    assert after["size"] == before["size"] and after["garment"] == before["garment"]
    registry.close(session)
