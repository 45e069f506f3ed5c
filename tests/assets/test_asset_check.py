"""The whole validation of an upload: the Khronos bad-GLB corpus, hand-made bad models and archives,
and good .glb, .gltf and .obj uploads that pass with their real statistics."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assets.asset_check import AssetReport, Problem, check_asset, check_model
from avatar.glb_export import ARRAY_BUFFER, _Builder, _pack, body_glb_bytes
from tests.assets.test_gltf_structure import CORPUS as STRUCTURE_CODES

BAD_GLB = Path(__file__).resolve().parents[3] / "shared" / "data" / "bad_glb"

# What `check_asset` says of each corpus file: the structure check's errors, except that files not
# starting with 'glTF' are refused by the content sniffing and the valid files, holding no mesh, are empty.
CORPUS = {
    **STRUCTURE_CODES,
    **dict.fromkeys(["empty_file.glb", "invalid_magic.glb", "no_header.glb"], ["unsupported_file"]),
    **dict.fromkeys(["extra_data.glb", "two_images.glb", "valid.glb", "valid_buffer.glb"], ["empty_mesh"]),
}

# A 60 cm cube standing on the floor, metres, +Y up: 8 vertices, 12 triangles.
CUBE_V = (np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float) - [0.5, 0, 0.5]) * 0.6
CUBE_F = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                   [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buf, format="PNG")
    return buf.getvalue()


def mesh_glb(vertices, faces, *, mode: int = 4, texture: bytes | None = None, bounds: bool = True) -> bytes:
    """A one-mesh GLB written as stored (no checks on the arrays), optionally with a texture."""
    b = _Builder()
    v = np.asarray(vertices, np.float32)
    attributes = {"POSITION": b.add(v, "VEC3", ARRAY_BUFFER, min_max=False)}
    if bounds:  # finite bounds even around NaN, as a careless exporter writes them
        finite = v[np.isfinite(v).all(1)]
        b.accessors[-1].update(min=finite.min(0).tolist(), max=finite.max(0).tolist())
    primitive = {"attributes": attributes, "mode": mode, "indices": b.add(np.asarray(faces, np.uint32).ravel(), "SCALAR")}
    doc = {"scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}], "meshes": [{"primitives": [primitive]}]}
    if texture is not None:
        attributes["TEXCOORD_0"] = b.add(np.zeros((len(v), 2), np.float32), "VEC2", ARRAY_BUFFER)
        b.blob += b"\0" * (-len(b.blob) % 4)
        b.views.append({"buffer": 0, "byteOffset": len(b.blob), "byteLength": len(texture)})
        b.blob += texture
        doc.update(images=[{"bufferView": len(b.views) - 1, "mimeType": "image/png"}], textures=[{"source": 0}],
                   materials=[{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}])
        primitive["material"] = 0
    return _pack(doc, b)


def codes(report: AssetReport, severity: str = "error") -> list[str]:
    return [p.code for p in report.problems if p.severity == severity]


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


@pytest.fixture
def no_loading(monkeypatch):
    """Fails a test that reaches the geometry loader."""
    def refuse(path):
        raise AssertionError(f"{path} was loaded")

    monkeypatch.setattr("assets.garment_io._read_gltf", refuse)
    monkeypatch.setattr("assets.garment_io._read_obj", refuse)


@pytest.mark.skipif(not BAD_GLB.is_dir(), reason=f"{BAD_GLB} is not there")
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file_gets_a_clear_result(name):
    report = check_asset(BAD_GLB / name)
    assert codes(report) == CORPUS[name]
    assert not report.ok and report.stats["file_bytes"] == (BAD_GLB / name).stat().st_size
    out = json.loads(json.dumps(report.to_dict()))
    assert out["ok"] is False and out["errors"] == len(CORPUS[name])
    assert all(p["message"] and p["code"] for p in out["problems"])


def test_a_good_textured_glb_passes_with_its_statistics(tmp_path):
    path = write(tmp_path / "cube.glb", mesh_glb(CUBE_V, CUBE_F, texture=png(1024, 1024)))
    report = check_asset(path)
    assert report.problems == [] and report.ok
    stats = report.stats
    assert (stats["triangles"], stats["vertices"], stats["textures"]) == (12, 8, [(1024, 1024)])
    assert stats["file_bytes"] == path.stat().st_size
    np.testing.assert_allclose(stats["bounds_m"], [[-0.3, 0, -0.3], [0.3, 0.6, 0.3]], atol=1e-6)
    assert report.to_dict()["stats"]["textures"] == [[1024, 1024]]


def test_budget_warnings_do_not_refuse(tmp_path):
    path = write(tmp_path / "cube.glb", mesh_glb(CUBE_V * 100, CUBE_F, texture=png(3000, 16)))  # centimetres
    report = check_asset(path)
    assert report.ok and codes(report) == []
    assert codes(report, "warning") == ["texture_size_budget", "texture_not_power_of_two", "too_large"]
    assert "It looks like centimetres (0.6 m if so)" in report.warnings[-1].message
    assert report.warnings[0].where == "/images/0"


def test_nan_vertices(tmp_path):
    v = CUBE_V.copy()
    v[5] = np.nan
    report = check_asset(write(tmp_path / "nan.glb", mesh_glb(v, CUBE_F)))
    assert codes(report) == ["non_finite_vertices"]
    assert report.errors[0].message == "1 vertex has NaN or infinite coordinates (the first is vertex 5)."
    obj = write(tmp_path / "nan.obj", "v 0 0 0\nv 1 0 0\nv nan 1 0\nv 0 1 0\nf 1 2 4\nf 2 3 4\n")
    assert codes(check_asset(obj)) == ["non_finite_vertices"]


def test_empty_meshes(tmp_path):
    report = check_asset(write(tmp_path / "points.glb", mesh_glb(CUBE_V, np.arange(6).reshape(2, 3), mode=0)))
    assert codes(report) == ["empty_mesh"] and codes(report, "warning") == ["mesh_without_triangles"]
    assert report.warnings[0].where == "/meshes/0"
    assert codes(check_asset(write(tmp_path / "v.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n"))) == ["empty_mesh"]


def test_a_million_triangles_is_refused_without_loading(tmp_path, no_loading):
    # 1,000,002 triangles over four vertices: 12 MB of indices, counted from the accessor alone.
    faces = np.tile(np.array([[0, 1, 2], [0, 2, 3]], np.uint32), (500_001, 1))
    report = check_asset(write(tmp_path / "huge.glb", mesh_glb(CUBE_V[:4], faces)))
    assert codes(report) == ["too_many_triangles"]
    assert report.stats["triangles"] == 1_000_002
    assert report.errors[0].message == "The model has 1,000,002 triangles; the limit is 1,000,000. Decimate it."
    assert codes(report, "warning") == ["file_size_budget"]  # 12 MB


def test_a_huge_obj_is_refused_before_parsing(tmp_path, no_loading):
    text = "v 0 0 0\nv 1 0 0\nv 0 1 0\n" + "f 1 2 3\n" * 1_000_001
    report = check_asset(write(tmp_path / "huge.obj", text))
    assert codes(report) == ["too_many_triangles"] and report.stats["triangles"] == 1_000_001


def test_over_the_file_size_limit_is_refused_without_loading(tmp_path, no_loading, monkeypatch):
    monkeypatch.setattr("assets.asset_budgets.MAX_FILE_BYTES", 1000)
    report = check_asset(write(tmp_path / "cube.glb", mesh_glb(CUBE_V, CUBE_F, texture=png(64, 64))))
    assert codes(report) == ["file_too_large"]


def test_truncated_glbs(tmp_path):
    data = mesh_glb(CUBE_V, CUBE_F)
    for n, expected in [(0, "unsupported_file"), (3, "unsupported_file"), (11, "glb_truncated_header"),
                        (16, "glb_length_mismatch"), (len(data) // 2, "glb_length_mismatch"),
                        (len(data) - 1, "glb_length_mismatch")]:
        report = check_asset(write(tmp_path / "cut.glb", data[:n]))
        assert codes(report)[0] == expected, n
    assert "glb_truncated_chunk" in codes(check_asset(write(tmp_path / "cut.glb", data[:-1])))


def test_refused_archives_are_error_problems(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where check_asset extracts
    good = mesh_glb(CUBE_V, CUBE_F)
    cases = {
        "bomb.zip": ({"model.glb": good, "t.png": b"\0" * (8 * 1024 * 1024)}, "archive_too_large"),
        "traversal.zip": ({"model.glb": good, "../../outside.png": b"x"}, "unsafe_archive"),
        "absolute.zip": ({"/model.glb": good}, "unsafe_archive"),
        "two.zip": ({"a.glb": good, "b.glb": good}, "several_model_files"),
    }
    for name, (entries, code) in cases.items():
        path = tmp_path / name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for entry, data in entries.items():
                z.writestr(zipfile.ZipInfo(entry), data, zipfile.ZIP_DEFLATED)
        report = check_asset(path)
        assert codes(report) == [code], name
        assert report.errors[0].where == name
    assert list(scratch.iterdir()) == []  # the temporary folder is always removed
    text = write(tmp_path / "notes.glb", "Our new sofa, in three colours.\n")
    assert codes(check_asset(text)) == ["unsupported_file"]
    assert codes(check_asset(tmp_path / "nothing.glb")) == ["file_not_found"]


def test_obj_archive_with_material_and_texture_passes(tmp_path):
    lines = ["mtllib chair.mtl", "usemtl wood"] + [f"v {x:.3f} {y:.3f} {z:.3f}" for x, y, z in CUBE_V]
    lines += ["vt 0 0", "vt 1 0", "vt 1 1"] + [f"f {a}/1 {b}/2 {c}/3" for a, b, c in CUBE_F + 1]
    files = {"chair.obj": "\n".join(lines) + "\n", "chair.mtl": "newmtl wood\nKd 1 1 1\nmap_Kd -s 1 1 1 tex/wood.png\n",
             "tex/wood.png": png(256, 256)}
    path = tmp_path / "chair.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    report = check_asset(path)
    assert report.problems == []
    assert report.stats["triangles"] == 12 and report.stats["vertices"] == 8
    assert report.stats["textures"] == [(256, 256)]
    assert report.stats["file_bytes"] == sum(len(d if isinstance(d, bytes) else d.encode()) for d in files.values())


def test_gltf_archive_with_buffer_and_texture_passes(tmp_path):
    b = _Builder()
    pos = b.add(CUBE_V.astype(np.float32), "VEC3", ARRAY_BUFFER, min_max=True)
    idx = b.add(CUBE_F.astype(np.uint16).ravel(), "SCALAR")
    uv = b.add(np.zeros((8, 2), np.float32), "VEC2", ARRAY_BUFFER)
    doc = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
           "meshes": [{"primitives": [{"attributes": {"POSITION": pos, "TEXCOORD_0": uv}, "indices": idx, "material": 0}]}],
           "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
           "textures": [{"source": 0}], "images": [{"uri": "textures/base%20colour.png"}],
           "accessors": b.accessors, "bufferViews": b.views, "buffers": [{"uri": "cube.bin", "byteLength": len(b.blob)}]}
    folder = tmp_path / "cube"
    write(folder / "cube.gltf", json.dumps(doc))
    write(folder / "cube.bin", bytes(b.blob))
    write(folder / "textures" / "base colour.png", png(512, 512))
    report = check_model(folder / "cube.gltf")
    assert report.problems == [] and report.stats["textures"] == [(512, 512)]
    assert report.stats["file_bytes"] == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    # Without its texture the .gltf is refused, saying which file is missing.
    (folder / "textures" / "base colour.png").unlink()
    report = check_model(folder / "cube.gltf")
    assert codes(report) == ["missing_file"] and report.errors[0].where == "/images/0/uri"


def test_obj_problems(tmp_path):
    report = check_asset(write(tmp_path / "a.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n"))
    assert codes(report) == ["face_index_out_of_range"]
    report = check_asset(write(tmp_path / "b.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n"))
    assert codes(report) == ["unreadable_geometry"] and "line 4" in report.errors[0].message
    report = check_asset(write(tmp_path / "c.obj", "mtllib ../../../etc/passwd\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"))
    assert codes(report) == ["unsafe_uri"]
    # A missing material only warns (the mesh shows untextured); degenerate triangles warn.
    report = check_asset(write(tmp_path / "d.obj", "mtllib gone.mtl\nv 0 0 0\nv .1 0 0\nv 0 .1 0\nf 1 2 3\nf 1 1 2\n"))
    assert report.ok and codes(report, "warning") == ["missing_file", "degenerate_triangles"]


def test_report_dict():
    report = AssetReport([Problem("warning", "triangle_budget", "Many triangles.")])
    report.stats["textures"] = [(2048, 1024)]
    out = report.to_dict()
    assert out == {"ok": True, "errors": 0, "warnings": 1,
                   "problems": [{"severity": "warning", "code": "triangle_budget", "message": "Many triangles.", "where": ""}],
                   "stats": {"triangles": 0, "vertices": 0, "file_bytes": 0, "textures": [[2048, 1024]], "bounds_m": None}}


def test_body_glb_from_the_project_passes(tmp_path):
    """fitroom's own GLB writer makes files the checks accept (the processing output path)."""
    path = write(tmp_path / "body.glb", body_glb_bytes(CUBE_V, CUBE_F))
    assert check_asset(path).problems == []
