"""`fitroom brand create`, `asset add`, `catalog list` and `serve`: exit codes, JSON, nothing stored on bad input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.catalog_fixtures import blob_files, catalog_url  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]
META = {"name": "Vase", "sku": "VASE-1", "price_minor": 4900, "currency": "EUR", "category": "home", "kind": "other"}


@pytest.fixture
def env(tmp_path, catalog_url) -> dict:
    """The FITROOM_* settings of a fresh data directory (and catalogue)."""
    e = {"FITROOM_DATA_DIR": str(tmp_path / "data")}
    if catalog_url:
        e["FITROOM_DATABASE_URL"] = catalog_url
    return e


def environment(env: dict) -> dict:
    """This process's environment with `env` as its only FITROOM_* variables."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FITROOM_")}, **env}


def fitroom(env, *args):
    """`fitroom ARGS` in this process (the command line reads its settings from `env`): its exit code and output.

    In-process keeps the heavy imports warm (a subprocess per call took 1 to 4 s); `serve` is
    tested in a real subprocess below."""
    import contextlib
    import io
    from unittest import mock

    from fitroom.cli import main

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, environment(env), clear=True), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def listed(env) -> dict:
    r = fitroom(env, "catalog", "list", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_brand_create_prints_the_key_once(env):
    r = fitroom(env, "brand", "create", "Acme Outdoor", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["name"] == "Acme Outdoor" and out["api_key"].startswith("fr_")
    again = fitroom(env, "brand", "create", "acme outdoor")
    assert again.returncode == 2 and "exists" in again.stderr and again.stdout == ""
    plain = fitroom(env, "brand", "create", "Bolt")
    assert plain.returncode == 0 and "shown only this once" in plain.stdout


def test_asset_add_refuses_bad_input_and_stores_nothing(env, tmp_path):
    key = json.loads(fitroom(env, "brand", "create", "Acme", "--json").stdout)["api_key"]
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(META))
    text = tmp_path / "model.glb"
    text.write_text("not a model at all")
    r = fitroom(env, "asset", "add", text, "--meta", meta, "--brand-key", key)
    assert r.returncode == 2 and "model.glb" in r.stderr and "GLB" in r.stderr, r.stderr
    nan = tmp_path / "bad.glb"
    from tests.streaming.test_api_assets import nan_glb

    nan.write_bytes(nan_glb())
    r = fitroom(env, "asset", "add", nan, "--meta", meta, "--brand-key", key)
    assert r.returncode == 2 and "non_finite_vertices" in r.stderr, r.stderr
    # No key, a wrong key, bad metadata, a missing file: exit 2 with one plain line.
    assert "API key" in fitroom(env, "asset", "add", nan, "--meta", meta).stderr
    assert fitroom(env, "asset", "add", nan, "--meta", meta, "--brand-key", "fr_x").returncode == 2
    bad_meta = tmp_path / "bad_meta.json"
    bad_meta.write_text(json.dumps({**META, "kind": "spaceship"}))
    r = fitroom(env, "asset", "add", nan, "--meta", bad_meta, "--brand-key", key)
    assert r.returncode == 2 and "kind" in r.stderr
    r = fitroom(env, "asset", "add", tmp_path / "missing.glb", "--meta", meta, "--brand-key", key)
    assert r.returncode == 2 and "no file" in r.stderr
    # The failed first upload left no product row and no blob.
    assert listed(env)["count"] == 0
    assert blob_files(Path(env["FITROOM_DATA_DIR"]) / "blobs") == []


def test_asset_add_then_list(env, tmp_path):
    for module in ("assets.asset_processing", "streaming.thumbnail"):
        pytest.importorskip(module, reason=f"{module} has not landed yet")
    from tests.assets.sample_models import textured_glb

    key = json.loads(fitroom(env, "brand", "create", "Acme", "--json").stdout)["api_key"]
    glb = textured_glb(tmp_path / "vase.glb", n_triangles=2000, texture_px=128)
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(META))
    env = {**env, "FITROOM_BRAND_KEY": key}
    r = fitroom(env, "asset", "add", glb, "--meta", meta, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["new_product"] is True and {"lod0.glb", "thumbnail.png", "model.usdz"} <= set(out["files"])
    r = fitroom(env, "asset", "add", glb, "--meta", meta, "--json")  # same SKU: another asset of that product
    assert r.returncode == 0 and json.loads(r.stdout)["new_product"] is False
    items = listed({k: v for k, v in env.items() if k != "FITROOM_BRAND_KEY"})
    assert items["count"] == 1 and items["data"][0]["assets"] == 2 and items["data"][0]["status"] == "draft"
    r = fitroom(env, "catalog", "list")
    assert r.returncode == 0 and "VASE-1" in r.stdout and "49.00 EUR" in r.stdout


def test_serve_answers_on_the_port(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "fitroom.cli", "serve", "--port", str(port)], cwd=REPO, env=environment(env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/products", timeout=2) as r:
                    assert r.status == 200 and json.load(r) == {"data": [], "count": 0}
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=5) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
