"""The `fitroom` command line: exit codes, JSON, and nothing written on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO.parent / "shared" / "data" / "photos"
SUMMARY_KEYS = {"height_cm", "chest_cm", "waist_cm", "hip_cm", "inseam_cm", "shoulder_width_cm", "fit_residual_px", "seconds"}


def fitroom(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "fitroom.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def sample_photos(tmp_path_factory):
    """A front and a side photo of a synthetic shopper (1080x1920 JPEGs) and their true body."""
    from PIL import Image

    from avatar.body import load_body_model
    from fitroom.samples import natural_standing_pose, render_photos, sample_body

    model = load_body_model(device="cpu")
    rng = np.random.default_rng(11)
    shape = sample_body(model, rng, sex="male", height_cm=181.0)
    photos = render_photos(model, shape, natural_standing_pose(model, rng=rng), views=("front", "side"))
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for view, (rgb, _) in photos.items():
        paths[view] = folder / f"{view}.jpg"
        Image.fromarray(rgb).save(paths[view], quality=92)
    return paths, shape


def test_avatar_front_and_side_writes_files_and_prints_json(sample_photos, tmp_path):
    paths, _ = sample_photos
    out = tmp_path / "me"
    r = fitroom("avatar", paths["front"], "--side", paths["side"], "--height-cm", 181, "--sex", "male", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert SUMMARY_KEYS <= set(summary)
    assert abs(summary["height_cm"] - 181) < 1.0
    assert 70 < summary["chest_cm"] < 140 and 60 < summary["waist_cm"] < 130 and 70 < summary["hip_cm"] < 140
    assert summary["fit_residual_px"] < 15
    assert sorted(p.name for p in out.iterdir()) == ["avatar.glb", "avatar.json"]
    doc = json.loads((out / "avatar.json").read_text())
    assert doc["format"] == "fitroom.avatar/1" and len(doc["poses"]) == 2
    assert "photo" not in json.dumps(doc).lower()  # only parameters and measurements are kept

    # The written avatar measures the same through `fitroom measure`.
    m = fitroom("measure", out / "avatar.glb", "--json")
    assert m.returncode == 0, m.stderr
    measured = json.loads(m.stdout)
    for key in ("chest_cm", "waist_cm", "hip_cm", "inseam_cm"):
        assert abs(measured[key] - summary[key]) < 0.2, key


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/data/photos is not beside the checkout")
def test_refused_photo_exits_2_with_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "nobody"
    r = fitroom("avatar", PHOTOS / "COCO_val2014_000000000328.jpg", "--height-cm", 170, "-o", out, "--json")
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "people" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--height-cm", "17"], "Height must be between"),
        (["--height-cm", "170", "--sex", "other"], "invalid choice"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, args, message):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"not really")
    r = fitroom("avatar", photo, *args, "-o", tmp_path / "out")
    assert r.returncode == 2
    assert message in r.stderr
    assert not (tmp_path / "out").exists()


def test_text_file_is_not_an_image(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_text("hello")
    r = fitroom("avatar", photo, "--height-cm", 170, "-o", tmp_path / "out")
    assert r.returncode == 2 and "not an image" in r.stderr
    assert not (tmp_path / "out").exists()


def test_measure_refuses_unreadable_and_wrong_topology(tmp_path):
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    r = fitroom("measure", bad, "--json")
    assert r.returncode == 2 and r.stderr.strip()
    r = fitroom("measure", tmp_path / "missing.glb", "--json")
    assert r.returncode == 2 and r.stderr.strip()


def test_reference_body_matches_the_size_chart(tmp_path):
    from avatar.size_chart import size_measurements

    out = tmp_path / "ref_m.glb"
    r = fitroom("reference-body", "--size", "M", "--sex", "female", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    chart = size_measurements("M", "female")
    for key in ("chest_cm", "waist_cm", "hip_cm", "stature_cm"):
        assert abs(info["measurements"][key] - chart[key]) < 1.0, (key, info["measurements"][key], chart[key])
    assert out.stat().st_size > 100_000
    r = fitroom("reference-body", "--size", "XXXL", "-o", tmp_path / "x.glb")
    assert r.returncode == 2 and "Size must be one of" in r.stderr
