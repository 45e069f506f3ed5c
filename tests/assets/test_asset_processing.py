"""process_model end to end on generated models: LOD counts, texture sizes, normalised bounds,
Khronos-valid GLBs and a USDZ that USD opens."""

from __future__ import annotations

import io
import json
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assets.asset_processing import LOD_RATIOS, process_model
from assets.khronos_validator import validate_many
from fitroom.errors import FitroomError
from tests.assets.sample_models import box_parts_glb, textured_glb, write_obj_folder


def glb_json(glb: bytes) -> tuple[dict, bytes]:
    (json_len,) = struct.unpack_from("<I", glb, 12)
    doc = json.loads(glb[20 : 20 + json_len])
    return doc, glb[20 + json_len + 8 :]


def glb_images(glb: bytes) -> list:
    doc, binary = glb_json(glb)
    out = []
    for image in doc.get("images", []):
        view = doc["bufferViews"][image["bufferView"]]
        data = binary[view.get("byteOffset", 0) : view.get("byteOffset", 0) + view["byteLength"]]
        out.append(Image.open(io.BytesIO(data)))
    return out


def assert_khronos_clean(result) -> None:
    reports = validate_many([lod.glb for lod in result.lods])
    for lod, report in zip(result.lods, reports):
        assert report.num_errors == 0, (lod.ratio, report.errors[:5])


@pytest.fixture(scope="module")
def textured(tmp_path_factory):
    """The 20k-triangle GLB with a 4096 px texture, floating and off-centre, processed once."""
    folder = tmp_path_factory.mktemp("textured")
    path = textured_glb(folder / "vase.glb", 20_000, 4096, offset=(0.4, 0.3, -0.2))
    stages = []
    result = process_model(path, kind="other", progress=lambda f, s: stages.append((f, s)))
    return path, result, stages


def test_lod_triangle_counts(textured):
    path, result, _ = textured
    full = result.lods[0].triangles
    assert [lod.ratio for lod in result.lods] == list(LOD_RATIOS)
    assert 19_000 < full <= 20_000
    for lod in result.lods:
        assert abs(lod.triangles - lod.ratio * full) <= 0.1 * lod.ratio * full, (lod.ratio, lod.triangles)
        doc, _ = glb_json(lod.glb)
        count = sum(doc["accessors"][p["indices"]]["count"] // 3 for p in doc["meshes"][0]["primitives"])
        assert count == lod.triangles


def test_textures_power_of_two_and_capped(textured):
    _, result, _ = textured
    sizes = []
    for lod in result.lods:
        (img,) = glb_images(lod.glb)
        w, h = img.size
        assert w <= lod.texture_px and h <= lod.texture_px <= 2048
        assert w & (w - 1) == 0 and h & (h - 1) == 0
        sizes.append(w)
    assert sizes == [2048, 1024, 512]


def test_bounds_stand_on_floor_centred(textured):
    _, result, _ = textured
    lo, hi = np.array(result.bounds_m)
    assert lo[1] == pytest.approx(0.0, abs=1e-6)
    assert (lo[[0, 2]] + hi[[0, 2]]) / 2 == pytest.approx([0.0, 0.0], abs=1e-6)
    assert hi[1] == pytest.approx(1.0, abs=1e-3)  # metres already: not rescaled
    assert any("floor" in n for n in result.notes) and any("normals" in n for n in result.notes)


def test_every_glb_passes_khronos(textured):
    assert_khronos_clean(textured[1])


def test_usdz_opens_with_mesh_in_metres(textured, tmp_path):
    from pxr import Usd, UsdGeom

    _, result, _ = textured
    path = tmp_path / "product.usdz"
    path.write_bytes(result.usdz)
    stage = Usd.Stage.Open(str(path))
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    meshes = [UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)]
    assert len(meshes) == 1
    doc, _ = glb_json(result.lods[0].glb)
    n_points = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]["count"]
    assert len(meshes[0].GetPointsAttr().Get()) == n_points
    assert UsdGeom.PrimvarsAPI(meshes[0]).GetPrimvar("st").HasValue()


def test_progress_reported_in_order(textured):
    stages = textured[2]
    fractions = [f for f, _ in stages]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert stages[-1][1] == "done"


def test_z_up_cm_obj_garment(tmp_path):
    obj = write_obj_folder(tmp_path / "obj", 4000, scale=100.0, z_up=True)
    result = process_model(obj, kind="garment")
    lo, hi = np.array(result.bounds_m)
    # An elliptic tube 1.0 m wide, 0.7 m tall (y 0.7-1.4 on the reference body), 0.5 m deep.
    assert lo == pytest.approx([-0.5025, 0.7, -0.2513], abs=2e-3)
    assert hi == pytest.approx([0.5025, 1.4, 0.2513], abs=2e-3)
    assert "scaled cm -> m" in " ".join(result.notes) and "rotated Z-up -> Y-up" in " ".join(result.notes)
    assert_khronos_clean(result)
    (img,) = glb_images(result.lods[0].glb)
    assert img.size == (512, 512)


def test_garment_in_cm_keeps_its_place_on_the_body(tmp_path):
    """A garment around the reference body's torso (y 1.0-1.5 m) written in centimetres, +Y up."""
    path = textured_glb(tmp_path / "top.glb", 4000, 256, scale=0.5, offset=(0.0, 1.0, 0.0))
    # textured_glb writes metres; rewrite the same shape in centimetres.
    cm = textured_glb(tmp_path / "top_cm.glb", 4000, 256, scale=50.0, offset=(0.0, 100.0, 0.0))
    result = process_model(cm, kind="garment")
    reference = process_model(path, kind="garment")
    assert np.array(result.bounds_m) == pytest.approx(np.array(reference.bounds_m), abs=1e-4)
    lo, hi = np.array(result.bounds_m)
    assert lo[1] == pytest.approx(1.0, abs=1e-3) and hi[1] == pytest.approx(1.5, abs=1e-3)
    assert any("scaled cm -> m" in n for n in result.notes) and not any("floor" in n for n in result.notes)


def test_floating_furniture_stands_on_floor(tmp_path):
    path = box_parts_glb(tmp_path / "table.glb", lift=0.5)
    result = process_model(path, kind="furniture")
    lo, hi = np.array(result.bounds_m)
    assert lo == pytest.approx([-0.6, 0.0, -0.35], abs=1e-5)
    assert hi == pytest.approx([0.6, 0.75, 0.35], abs=1e-5)
    assert_khronos_clean(result)


def test_furniture_in_mm_is_scaled(tmp_path):
    path = box_parts_glb(tmp_path / "table_mm.glb", lift=0.0, scale=1000.0)
    result = process_model(path, kind="furniture")
    assert np.ptp(np.array(result.bounds_m), axis=0) == pytest.approx([1.2, 0.75, 0.7], abs=1e-5)
    assert any("scaled mm -> m" in n for n in result.notes)


def test_explicit_z_up(tmp_path):
    obj = write_obj_folder(tmp_path / "obj", 1000, scale=1.0, z_up=True, offset=(0.0, 0.5, 0.0))
    result = process_model(obj, kind="furniture", up_axis="z")
    lo, hi = np.array(result.bounds_m)
    assert lo[1] == pytest.approx(0.0, abs=1e-6) and hi[1] == pytest.approx(0.7, abs=2e-3)


def test_failures_are_plain_errors_and_leave_no_temporary_files(tmp_path):
    before = set(Path(tempfile.gettempdir()).glob("fitroom-*"))
    bad = tmp_path / "bad.glb"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(FitroomError) as e:
        process_model(bad, kind="other")
    assert e.value.code == "unreadable_model"
    good = box_parts_glb(tmp_path / "table.glb")
    with pytest.raises(FitroomError) as e:
        process_model(good, kind="spaceship")
    assert e.value.code == "bad_kind"
    process_model(good, kind="furniture")
    assert set(Path(tempfile.gettempdir()).glob("fitroom-*")) == before
