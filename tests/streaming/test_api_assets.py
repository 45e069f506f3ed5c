"""Uploads through the real app (TestClient) on SQLite and PostgreSQL: a generated GLB goes to
`ready` with its served files; every bad input answers 4xx or ends `failed` with reasons, and
afterwards the database holds no asset row and the blob store no file."""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from assets.catalog_models import Asset, AssetFile, Product, UploadJob
from tests.catalog_fixtures import blob_files, catalog_url, settings  # noqa: F401 (fixtures)
from tests.streaming.test_api_products import TEE, brand_key, check_error

BAD_GLB = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bad_glb"
PRODUCTS = "/api/v1/products"


def needs_pipeline():
    for module in ("assets.asset_processing", "streaming.thumbnail"):
        pytest.importorskip(module, reason=f"{module} has not landed yet")


@pytest.fixture
def api(settings):
    from streaming.api_app import create_app

    app = create_app(dataclasses.replace(settings, max_upload_bytes=32 * 1024 * 1024))
    with TestClient(app) as client:
        client.acme, client.bolt = brand_key(app, "Acme"), brand_key(app, "Bolt")
        client.tee = client.post(PRODUCTS, json=TEE, headers=client.acme).json()["id"]
        yield client


def upload(api, data: bytes, name: str = "model.glb", headers=None, **form):
    url = f"{PRODUCTS}/{api.tee}/assets"
    return api.post(url, files={"file": (name, data, "application/octet-stream")}, data=form,
                    headers=api.acme if headers is None else headers)


def finished(api, r) -> dict:
    """The final status of an accepted upload."""
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status"] == "queued" and r.headers["location"] == accepted["status_url"]
    api.app.state.jobs.wait(120)
    status = api.get(accepted["status_url"], headers=api.acme)
    assert status.status_code == 200, status.text
    return status.json()


def count(api, model) -> int:
    with api.app.state.db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def assert_nothing_stored(api):
    """No asset row, no blob (not even a temporary file), no upload left waiting; the product stays."""
    assert count(api, Asset) == 0 and count(api, AssetFile) == 0
    assert blob_files(api.app.state.settings.blob_dir) == []
    assert list(api.app.state.settings.upload_dir.iterdir()) == []
    assert count(api, Product) == 1


def glb_parts(data: bytes) -> tuple[dict, bytearray]:
    n_json = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + n_json])
    return doc, bytearray(data[20 + n_json + 8:])


def glb_pack(doc: dict, blob: bytes) -> bytes:
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    blob = bytes(blob) + b"\0" * (-len(blob) % 4)
    return b"".join([struct.pack("<III", 0x46546C67, 2, 28 + len(text) + len(blob)), struct.pack("<II", len(text), 0x4E4F534A),
                     text, struct.pack("<II", len(blob), 0x004E4942), blob])


def plain_glb(vertices, faces) -> bytes:
    from avatar.glb_export import look_glb_bytes, MeshPart

    return look_glb_bytes([MeshPart("m", vertices, faces)])


def grid(n_side: int, size_m: float = 1.0):
    """A flat (n_side - 1)^2 * 2 triangle grid in the XY plane, metres."""
    t = np.linspace(0.0, size_m, n_side)
    x, y = np.meshgrid(t, t)
    v = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], 1)
    i = np.arange(n_side * n_side).reshape(n_side, n_side)
    a, b, c, d = i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel()
    return v, np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])


def nan_glb() -> bytes:
    data = plain_glb(*grid(10, 0.5))
    doc, blob = glb_parts(data)
    acc = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    offset = doc["bufferViews"][acc["bufferView"]].get("byteOffset", 0)
    blob[offset:offset + 12] = np.full(3, np.nan, np.float32).tobytes()
    return glb_pack(doc, blob)


def zipped(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def small_glb(tmp_path_factory) -> bytes:
    from tests.assets.sample_models import textured_glb

    return textured_glb(tmp_path_factory.mktemp("glb") / "vase.glb", n_triangles=3000, texture_px=256).read_bytes()


def test_a_valid_glb_goes_to_ready_with_its_files_served(api, small_glb):
    needs_pipeline()
    status = finished(api, upload(api, small_glb, "vase.glb", size="M", colourway="navy"))
    assert status["status"] == "ready" and status["progress"] == 1.0 and status["reasons"] == [], status
    asset = status["asset"]
    assert (asset["size"], asset["colourway"], asset["source_name"]) == ("M", "navy", "vase.glb")
    files = {f["name"]: f for f in asset["files"]}
    assert {"lod0.glb", "lod1.glb", "lod2.glb", "thumbnail.png", "model.usdz"} <= set(files)
    tris = [files[f"lod{i}.glb"]["triangles"] for i in range(3)]
    assert tris[0] > tris[1] > tris[2] > 0
    types = {"lod0.glb": ("model/gltf-binary", b"glTF"), "thumbnail.png": ("image/png", b"\x89PNG"),
             "model.usdz": ("model/vnd.usdz+zip", b"PK")}
    for name, (content_type, magic) in types.items():
        r = api.get(files[name]["url"], headers=api.acme)  # a draft: its brand only
        assert r.status_code == 200 and r.headers["content-type"] == content_type and r.content.startswith(magic)
        assert len(r.content) == files[name]["size_bytes"] and r.headers["etag"]
        check_error(api.get(files[name]["url"]), 404, "no_asset")
        check_error(api.get(files[name]["url"], headers=api.bolt), 404, "no_asset")
    from PIL import Image

    assert Image.open(io.BytesIO(api.get(files["thumbnail.png"]["url"], headers=api.acme).content)).size == (512, 512)
    check_error(api.get(f"/api/v1/assets/{asset['id']}/files/source.zip", headers=api.acme), 404, "no_file")
    # Rows and blobs: one asset, its files, the source; all blobs named by some row.
    assert count(api, Asset) == 1 and count(api, AssetFile) == len(files)
    stored = {p.name for p in blob_files(api.app.state.settings.blob_dir)}
    with api.app.state.db.session() as s:
        named = set(s.scalars(select(AssetFile.digest)).all()) | set(s.scalars(select(Asset.source_digest)).all())
    assert stored == named
    assert list(api.app.state.settings.upload_dir.iterdir()) == []
    # Published, anyone may fetch; deleted, rows and blobs go.
    api.patch(f"{PRODUCTS}/{api.tee}", json={"status": "published"}, headers=api.acme)
    assert api.get(files["lod2.glb"]["url"]).status_code == 200
    assert [a["id"] for a in api.get(f"{PRODUCTS}/{api.tee}/assets").json()] == [asset["id"]]
    assert api.delete(f"{PRODUCTS}/{api.tee}", headers=api.acme).status_code == 204
    assert count(api, Asset) == 0 and count(api, UploadJob) == 0
    assert blob_files(api.app.state.settings.blob_dir) == []


def test_every_bad_glb_of_the_khronos_corpus_is_refused_and_leaves_nothing(api):
    results = {}
    for path in sorted(BAD_GLB.glob("*.glb")):
        r = upload(api, path.read_bytes(), path.name)
        if r.status_code == 202:
            status = finished(api, r)
            assert status["status"] == "failed", (path.name, status)
            assert status["reasons"] and all(x["message"] for x in status["reasons"]), status
            assert "processing_error" not in {x["code"] for x in status["reasons"]}, status  # a check, not a crash
            results[path.name] = status["reasons"][0]["code"]
        else:
            body = check_error(r, r.status_code)
            assert r.status_code in (415, 422) and path.name in body["detail"] or body["error"] == "empty_upload", body
            results[path.name] = r.status_code
        assert_nothing_stored(api)
    assert len(results) == 28
    assert results["empty_file.glb"] == 422 and results["invalid_magic.glb"] == 415


@pytest.mark.parametrize("name, make, code", [
    ("truncated.glb", lambda glb: glb[: len(glb) // 2], "glb_length_mismatch"),
    ("nan.glb", lambda glb: nan_glb(), "non_finite_vertices"),
    ("million.glb", lambda glb: plain_glb(*grid(710, 2.0)), "too_many_triangles"),
    ("bomb.zip", lambda glb: zipped({"model.glb": glb, "texture.png": bytes(30 * 2**20)}), "archive_too_large"),
    ("traversal.zip", lambda glb: zipped({"model.glb": glb, "../../evil.png": b"x"}), "unsafe_archive"),
    ("absolute.zip", lambda glb: zipped({"model.glb": glb, "/etc/evil.png": b"x"}), "unsafe_archive"),
    ("two_models.zip", lambda glb: zipped({"a.glb": glb, "b.glb": glb}), "several_model_files"),
    ("notes.zip", lambda glb: zipped({"readme.txt": b"hello"}), "no_model_file"),
])
def test_bad_uploads_fail_with_reasons_and_leave_nothing(api, small_glb, name, make, code):
    status = finished(api, upload(api, make(small_glb), name))
    assert status["status"] == "failed" and status["asset"] is None, status
    assert status["reasons"][0]["code"] == code and status["reasons"][0]["message"], status
    assert_nothing_stored(api)


def test_request_errors(api, small_glb, settings):
    check_error(upload(api, b"just some text, not a model", "model.glb"), 415, "unsupported_media_type")
    check_error(upload(api, b"", "model.glb"), 422, "empty_upload")
    check_error(upload(api, small_glb, headers={}), 401, "unauthorized")
    check_error(upload(api, small_glb, headers=api.bolt), 404, "no_product")  # Acme's draft
    check_error(upload(api, small_glb, size="XXL"), 422, "bad_size")
    check_error(upload(api, small_glb, colourway="plaid"), 422, "bad_colourway")
    check_error(upload(api, small_glb, role="hat"), 422, "invalid_request")
    check_error(api.post(f"{PRODUCTS}/{api.tee}/assets", headers=api.acme), 422, "invalid_request")
    check_error(api.get("/api/v1/uploads/0123456789abcdef0123456789abcdef", headers=api.acme), 404, "no_upload")
    check_error(api.get("/api/v1/assets/12345"), 404, "no_asset")
    assert_nothing_stored(api)
    assert count(api, UploadJob) == 0
    # Another brand's published product: 403.
    api.patch(f"{PRODUCTS}/{api.tee}", json={"status": "published"}, headers=api.acme)
    check_error(upload(api, small_glb, headers=api.bolt), 403, "forbidden")


def test_an_upload_over_the_limit_is_413_before_it_is_stored(settings, small_glb):
    from streaming.api_app import create_app

    app = create_app(dataclasses.replace(settings, max_upload_bytes=len(small_glb) // 2))
    with TestClient(app) as api:
        api.acme = brand_key(app, "Acme")
        api.tee = api.post(PRODUCTS, json=TEE, headers=api.acme).json()["id"]
        # Just over the limit: caught while the file is copied; far over: refused by the body limit,
        # from Content-Length, before the multipart body is parsed.
        for data in (small_glb, small_glb * 4):
            body = check_error(upload(api, data), 413, "too_large")
            assert "MB" in body["detail"]
            assert_nothing_stored(api)
        # A streamed body without Content-Length is cut off once it passes the limit.
        chunks = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.glb\"\r\n\r\n" if i == 0 else
                  small_glb for i in range(8))
        r = api.post(f"{PRODUCTS}/{api.tee}/assets", content=chunks,
                     headers={**api.acme, "Content-Type": "multipart/form-data; boundary=b"})
        assert "content-length" not in r.request.headers
        check_error(r, 413, "too_large")
        assert_nothing_stored(api)


def test_status_of_another_brands_upload_is_404(api, small_glb):
    r = upload(api, b"glTF\x02\x00\x00\x00" + b"\x00" * 8, "broken.glb")
    job = finished(api, r)
    assert job["status"] == "failed"
    check_error(api.get(job["status_url"], headers=api.bolt), 404, "no_upload")
    check_error(api.get(job["status_url"]), 401, "unauthorized")
