"""A look to take home: the GLB passes the Khronos validator, the USDZ opens with two meshes."""

from __future__ import annotations

import io
import json
import struct
import zipfile

import numpy as np
import pytest

from assets.khronos_validator import validate_many, validator_available
from streaming.look_export import look_glb, look_usdz
from tests.streaming.look_fixture import small_look


@pytest.fixture(scope="module")
def look(body_model_cpu):
    return small_look(body_model_cpu)


def _arrays(look):
    return look["body_vertices"], look["body_faces"], look["garment_vertices"], look["garment_faces"]


def _gltf_json(glb: bytes) -> dict:
    length, kind = struct.unpack_from("<II", glb, 12)
    assert glb[:4] == b"glTF" and kind == 0x4E4F534A
    return json.loads(glb[20 : 20 + length])


@pytest.mark.skipif(not validator_available(), reason="the Khronos glTF-Validator is not installed (scripts/setup.sh)")
def test_look_glbs_pass_the_khronos_validator(look):
    plain = look_glb(*_arrays(look))
    fitmap = look_glb(*_arrays(look), garment_colors=look["fitmap_colors"])
    textured = look_glb(*_arrays(look), uv=look["uv"], texture=look["texture"], normal_map=look["normal_map"],
                        roughness=np.full((32, 32), 200, np.uint8))
    reports = validate_many([plain, fitmap, textured])
    for report in reports:
        assert report.num_errors == 0, report.errors[:3]
    doc = _gltf_json(textured)
    garment = doc["materials"][doc["meshes"][0]["primitives"][1]["material"]]
    assert {"baseColorTexture", "metallicRoughnessTexture"} <= set(garment["pbrMetallicRoughness"])
    assert "normalTexture" in garment and len(doc["images"]) == 3
    assert "COLOR_0" in _gltf_json(fitmap)["meshes"][0]["primitives"][1]["attributes"]
    # Metres, +Y up: the body stands about 1.7 m tall on the floor.
    body = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    assert 1.4 < body["max"][1] - body["min"][1] < 2.0


def test_look_usdz_opens_with_the_body_and_the_garment(look, tmp_path):
    from pxr import Usd, UsdGeom

    data = look_usdz(*_arrays(look), uv=look["uv"], texture=look["texture"], normal_map=look["normal_map"])
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()[0].endswith(".usdc")
    path = tmp_path / "look.usdz"
    path.write_bytes(data)
    stage = Usd.Stage.Open(str(path))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    meshes = [UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)]
    assert len(meshes) == 2
    counts = sorted(len(m.GetPointsAttr().Get()) for m in meshes)
    assert counts == sorted([len(look["body_vertices"]), len(look["garment_vertices"])])


def test_bad_look_arrays_are_refused(look):
    bv, bf, gv, gf = _arrays(look)
    with pytest.raises(ValueError):
        look_glb(bv, bf, gv, gf + len(gv))
    with pytest.raises(ValueError):
        look_glb(bv, bf, gv, gf, garment_colors=np.zeros((2, 3)))
