"""The try-on API over HTTP: create, status, bad requests, malformed SDP, unknown sessions, the look."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from fitroom.settings import Settings
from tests.streaming.tryon_fixtures import STREAM


@pytest.fixture(scope="module")
def client(tmp_path_factory, body_model_cpu):
    from streaming.api_app import create_app

    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("tryon_api") / "data", **STREAM))
    app.state.tryon.registry.model = body_model_cpu
    with TestClient(app) as c:
        yield c
    assert app.state.tryon.peer_count() == 0 and not app.state.tryon.registry.sessions()


@pytest.fixture(scope="module")
def ready_session(client):
    r = client.post("/api/v1/tryon", json={"avatar": {"sex": "male", "size": "L"}, "garment": "tshirt", "size": "L"})
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["status"] in ("queued", "draping") and 0.0 <= doc["progress"] <= 1.0
    deadline = time.monotonic() + 60
    while doc["status"] not in ("ready", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        doc = client.get(f"/api/v1/tryon/{doc['id']}").json()
    assert doc["status"] == "ready", doc
    return doc


def _error(r, status: int, code: str):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code and body["detail"], body
    return body


def test_a_session_drapes_in_the_background_and_reports_its_fit(ready_session):
    doc = ready_session
    assert doc["garment"] == "tshirt" and doc["size"] == "L" and doc["progress"] == 1.0
    assert doc["fit"]["vertices"] < 2500 and isinstance(doc["fit"]["fits"], bool)
    assert doc["recommended_size"] in ("XS", "S", "M", "L", "XL") and len(doc["size_advice"]) == 5


@pytest.mark.parametrize("body, code", [
    ({"garment": "cape"}, "bad_garment"),
    ({"size": "XXXL"}, "bad_size"),
    ({"fabric": "chainmail"}, "bad_fabric"),
    ({"colourway": "plaid"}, "bad_colourway"),
    ({"avatar": {"sex": "robot", "size": "M"}}, "bad_avatar"),
    ({"avatar": {"path": "../../etc/passwd"}}, "bad_avatar"),
    ({"avatar": {"height": 2}}, "invalid_request"),
])
def test_bad_requests_are_refused_before_a_session_is_made(client, body, code):
    _error(client.post("/api/v1/tryon", json=body), 422, code)


def test_unknown_sessions_are_404(client):
    for r in (client.get("/api/v1/tryon/nope"), client.get("/api/v1/tryon/nope/stats"),
              client.post("/api/v1/tryon/nope/offer", json={"sdp": "v=0", "type": "offer"}),
              client.get("/api/v1/tryon/nope/look.glb")):
        _error(r, 404, "no_session")


@pytest.mark.parametrize("offer, code", [
    ({"sdp": "this is not sdp", "type": "offer"}, "bad_sdp"),
    ({"sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "type": "offer"}, "bad_sdp"),
    ({"sdp": "v=0\r\n", "type": "answer"}, "bad_sdp"),
    ({"type": "offer"}, "invalid_request"),
])
def test_malformed_offers_get_a_clear_422(client, ready_session, offer, code, caplog):
    with caplog.at_level("WARNING", logger="streaming.api_tryon"):
        body = _error(client.post(f"/api/v1/tryon/{ready_session['id']}/offer", json=offer), 422, code)
    assert len(body["detail"]) < 500
    if code == "bad_sdp":  # the operator's log names the session and why
        assert f"try-on {ready_session['id']}: offer refused (bad_sdp): " in caplog.text
    assert client.get(f"/api/v1/tryon/{ready_session['id']}/stats").json()["peer_connections"] == 0


def test_stats_of_a_session_without_viewers(client, ready_session):
    stats = client.get(f"/api/v1/tryon/{ready_session['id']}/stats").json()
    assert stats["viewers"] == 0 and stats["peer_connections"] == 0 and stats["fps"] == 0.0
    assert stats["codec"] is None and stats["encoder"] is None
    assert set(stats["render_ms"]) == {"p50", "p95"} and set(stats["encode_ms"]) == {"p50", "p95"}


def test_options_list_what_a_try_on_is_made_of(client):
    doc = client.get("/api/v1/tryon/options").json()
    assert {g["id"] for g in doc["garments"]} >= {"tshirt", "dress"}
    assert doc["lights"] == ["studio", "daylight", "evening", "store"] and "M" in doc["sizes"]
    assert all(c["hex"].startswith("#") for c in doc["colourways"])
    # The fit map's legend: the stops the garment is coloured with (streaming.fitmap.LEGEND).
    legend = doc["fitmap_legend"]
    assert [s["strain_percent"] for s in legend] == [90.0, 100.0, 105.0, 110.0, 115.0, 120.0]
    assert legend[1]["hex"] == "#00bee6" and legend[-1]["hex"] == "#dc1e1e"  # cyan at rest, red tight


def test_the_look_downloads_as_glb_and_usdz(client, ready_session):
    pytest.importorskip("streaming.look_export")
    from assets.khronos_validator import validate_many

    r = client.get(f"/api/v1/tryon/{ready_session['id']}/look.glb")
    assert r.status_code == 200 and r.headers["content-type"] == "model/gltf-binary"
    report, = validate_many([r.content])  # the file a headset or model-viewer loads, as served
    assert report.num_errors == 0 and report.info["totalTriangleCount"] > 10000, report.errors
    r = client.get(f"/api/v1/tryon/{ready_session['id']}/look.usdz")
    assert r.status_code == 200 and r.content[:2] == b"PK"


def _offer_sdp() -> str:
    """A real browser-like offer (recvonly video + the control channel) from an aiortc peer."""
    import asyncio

    from aiortc import RTCPeerConnection

    async def make():
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        pc.createDataChannel("control")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(make())


def test_a_viewer_that_never_connects_is_closed_and_counted_down(client, ready_session, monkeypatch):
    from streaming import api_tryon

    monkeypatch.setattr(api_tryon, "CONNECT_TIMEOUT_S", 0.5)
    sid = ready_session["id"]
    r = client.post(f"/api/v1/tryon/{sid}/offer", json={"sdp": _offer_sdp(), "type": "offer"})
    assert r.status_code == 200 and r.json()["type"] == "answer" and "H264" in r.json()["sdp"]
    assert client.get(f"/api/v1/tryon/{sid}/stats").json()["peer_connections"] == 1
    deadline = time.monotonic() + 10
    while client.get(f"/api/v1/tryon/{sid}/stats").json()["peer_connections"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.get(f"/api/v1/tryon/{sid}/stats").json()["peer_connections"] == 0


def test_idle_sessions_expire(client):
    r = client.post("/api/v1/tryon", json={"garment": "skirt", "size": "S"})
    sid = r.json()["id"]
    registry = client.app.state.tryon.registry
    session = registry.get(sid)
    session.touched -= registry.ttl_s + 1
    assert registry.expire() == 1
    _error(client.get(f"/api/v1/tryon/{sid}"), 404, "no_session")
    assert client.get("/api/v1/tryon/options").status_code == 200  # the app carries on
