"""Avatars from photos over HTTP: a synthetic shopper goes to ready and is tried on; a real photo the
capture checks refuse fails with their reason and leaves nothing; bad input is a 4xx at once; the
photos stay in memory."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fitroom.settings import Settings
from tests.streaming.tryon_fixtures import STREAM

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"
MAX_UPLOAD = 4 * 2**20


@pytest.fixture(scope="module")
def client(tmp_path_factory, body_model_cpu):
    from streaming.api_app import create_app

    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("avatars") / "data", max_upload_bytes=MAX_UPLOAD,
                              **STREAM))
    app.state.tryon.registry.model = body_model_cpu
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def shopper_jpegs(body_model_cpu):
    """JPEG bytes (in memory) of a synthetic 168 cm woman, front and side."""
    from PIL import Image

    from fitroom.samples import natural_standing_pose, render_photos, sample_body

    try:
        rng = np.random.default_rng(3)
        shape = sample_body(body_model_cpu, rng, sex="female", height_cm=168.0)
        photos = render_photos(body_model_cpu, shape, natural_standing_pose(body_model_cpu, rng=rng))
    except Exception as e:  # no EGL for pyrender
        pytest.skip(f"no offscreen OpenGL to render the sample photos: {type(e).__name__}: {e}")
    out = {}
    for view, (rgb, _) in photos.items():
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
        out[view] = buf.getvalue()
    return out


def _avatars_dir(client) -> Path:
    return client.app.state.settings.data_dir / "avatars"


def _wait(client, url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    doc = client.get(url).json()
    while doc["status"] not in ("ready", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        doc = client.get(url).json()
    return doc


def _error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code and body["detail"], body
    return body


def test_photos_make_an_avatar_that_a_try_on_uses(client, shopper_jpegs):
    r = client.post("/api/v1/avatars", data={"height_cm": "168", "sex": "female"},
                    files={"front": ("front.jpg", shopper_jpegs["front"], "image/jpeg"),
                           "side": ("side.jpg", shopper_jpegs["side"], "image/jpeg")})
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["status"] in ("queued", "fitting") and doc["views"] == ["front", "side"]
    assert r.headers["location"] == f"/api/v1/avatars/{doc['id']}"
    doc = _wait(client, r.headers["location"])
    assert doc["status"] == "ready", doc
    s = doc["summary"]
    assert abs(s["height_cm"] - 168) < 1.5 and 60 < s["waist_cm"] < 130 and s["fit_residual_px"] < 15
    folder = _avatars_dir(client) / doc["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["avatar.glb", "avatar.json"]
    assert not list(_avatars_dir(client).glob(".*"))  # no temporary folder left
    assert "photo" not in (folder / "avatar.json").read_text().lower()

    r = client.post("/api/v1/tryon", json={"avatar": {"id": doc["id"]}, "garment": "tshirt", "size": "M"})
    assert r.status_code == 202, r.text
    session = _wait(client, f"/api/v1/tryon/{r.json()['id']}")
    assert session["status"] == "ready", session
    assert session["avatar"] == {"id": doc["id"]} and session["recommended_size"]


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/data/photos is not beside the checkout")
def test_a_refused_photo_fails_with_the_capture_reason_and_leaves_nothing(client):
    photo = (PHOTOS / "COCO_val2014_000000000328.jpg").read_bytes()  # three cadets on a bench
    r = client.post("/api/v1/avatars", data={"height_cm": "175"}, files={"front": ("p.jpg", photo, "image/jpeg")})
    assert r.status_code == 202, r.text
    doc = _wait(client, f"/api/v1/avatars/{r.json()['id']}")
    assert doc["status"] == "failed" and doc["error"] == "several_people", doc
    assert "people" in doc["reason"] and doc["summary"] is None
    assert not (_avatars_dir(client) / doc["id"]).exists()
    assert not list(_avatars_dir(client).glob(".*")) if _avatars_dir(client).exists() else True
    _error(client.post("/api/v1/tryon", json={"avatar": {"id": doc["id"]}}), 422, "bad_avatar")


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 200, 200)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("data, files, status, code", [
    ({"height_cm": "50"}, "jpeg", 422, "bad_height"),
    ({"height_cm": "tall"}, "jpeg", 422, "bad_height"),
    ({"height_cm": "170", "sex": "robot"}, "jpeg", 422, "bad_sex"),
    ({"height_cm": "170"}, {"front": ("a.jpg", b"hello, not a photo", "image/jpeg")}, 415, "not_an_image"),
    ({"height_cm": "170"}, {"front": ("big.png", "_png_50mp", "image/png")}, 413, "image_too_large"),
    ({"height_cm": "170"}, {"front": ("huge.jpg", b"\xff" * (MAX_UPLOAD + 2**17), "image/jpeg")}, 413, "too_large"),
    ({"height_cm": "170"}, {"side": ("s.jpg", "jpeg", "image/jpeg")}, 422, "no_photo"),
    ({"height_cm": "170", "name": "x"}, "jpeg", 422, "invalid_request"),
])
def test_bad_input_is_refused_at_once(client, shopper_jpegs, data, files, status, code):
    if files == "jpeg":
        files = {"front": ("f.jpg", shopper_jpegs["front"], "image/jpeg")}
    made = {"jpeg": lambda: shopper_jpegs["front"], "_png_50mp": lambda: _png(8000, 6500)}
    files = {k: (n, made[v]() if isinstance(v, str) else v, t) for k, (n, v, t) in files.items()}
    before = set(_avatars_dir(client).iterdir()) if _avatars_dir(client).exists() else set()
    _error(client.post("/api/v1/avatars", data=data, files=files), status, code)
    after = set(_avatars_dir(client).iterdir()) if _avatars_dir(client).exists() else set()
    assert after == before


def test_other_bad_requests(client):
    _error(client.post("/api/v1/avatars", json={"height_cm": 170}), 422, "invalid_request")
    _error(client.get("/api/v1/avatars/0123456789abcdef01234567"), 404, "no_avatar")
    _error(client.get("/api/v1/avatars/..body_model.npz"), 404, "no_avatar")
    _error(client.post("/api/v1/tryon", json={"avatar": {"id": "0123456789abcdef01234567"}}), 422, "bad_avatar")


def test_photos_are_never_spooled_to_disk(client, monkeypatch):
    """Starlette rolls form files over 1 MB into a temporary file; this route's parser must not."""
    import tempfile

    def no_disk(*a, **k):
        raise AssertionError("a photo was spooled to disk")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_disk)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_disk)
    noise = np.random.default_rng(0).integers(0, 255, (1100, 1000, 3), np.uint8)
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    assert 2**20 < len(buf.getvalue()) < MAX_UPLOAD
    r = client.post("/api/v1/avatars", data={"height_cm": "170"}, files={"front": ("n.png", buf.getvalue(), "image/png")})
    assert r.status_code == 202, r.text
    assert _wait(client, f"/api/v1/avatars/{r.json()['id']}")["status"] == "failed"  # nobody in the noise
