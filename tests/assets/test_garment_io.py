"""Garment files: OBJ and GLB read as stored (transforms applied, polygons fanned), and every bad
file refused with a FitroomError saying what was wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assets.garment_io import read_garment_material, read_garment_mesh
from avatar.glb_export import body_glb_bytes
from fitroom.errors import FitroomError

BAD_GLB = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bad_glb"

# A 40 cm square in two quads (a flat garment panel), metres.
SQUARE = np.array([[0, 0, 0], [0.2, 0, 0], [0.4, 0, 0], [0, 0.4, 0], [0.2, 0.4, 0], [0.4, 0.4, 0]], float)


def _obj(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "garment.obj"
    path.write_text(text)
    return path


def _rotation_z(degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def test_obj_with_quads_texture_indices_and_negative_indices(tmp_path):
    text = "# panel\nmtllib panel.mtl\no panel\n"
    text += "".join(f"v {x} {y} {z}\n" for x, y, z in SQUARE)
    text += "vt 0 0\nvt 1 0\nvt 1 1\nvn 0 0 1\ns off\n"
    text += "f 1/1/1 2/2/1 5/3/1 4/1/1\n"  # a quad, 1-based, with texture and normal indices
    text += "f -5//1 -4//1 -1//1 -2//1\n"  # the second quad, relative to the last vertex
    text += "l 1 2\np 3\n"  # lines and points are not cloth
    vertices, faces = read_garment_mesh(_obj(tmp_path, text))
    assert vertices.dtype == np.float64 and faces.dtype == np.int64
    assert np.array_equal(vertices, SQUARE)
    assert faces.tolist() == [[0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4]]


def test_obj_fans_polygons_and_keeps_duplicate_vertices(tmp_path):
    text = "v 0 0 0\nv 0.3 0 0\nv 0.4 0.2 0\nv 0.2 0.4 0\nv 0 0.2 0\nv 0 0 0\nf 1 2 3 4 5\nf 6 2 3\n"
    vertices, faces = read_garment_mesh(_obj(tmp_path, text))
    assert len(vertices) == 6  # the duplicate of vertex 1 is kept (the engine welds)
    assert faces.tolist() == [[0, 1, 2], [0, 2, 3], [0, 3, 4], [5, 1, 2]]


def test_glb_merges_nodes_with_their_transforms(tmp_path):
    import trimesh

    faces = np.array([[0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4]])
    front, back = np.eye(4), np.eye(4)
    front[:3, 3] = [0.0, 1.0, 0.1]
    back[:3, :3], back[:3, 3] = _rotation_z(90.0), [0.0, 1.0, -0.1]
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.Trimesh(SQUARE, faces, process=False), node_name="front", geom_name="front", transform=front)
    scene.add_geometry(trimesh.Trimesh(SQUARE, faces, process=False), node_name="back", geom_name="back", transform=back)
    path = tmp_path / "panels.glb"
    path.write_bytes(scene.export(file_type="glb"))

    vertices, merged = read_garment_mesh(path)
    assert vertices.shape == (12, 3) and merged.shape == (8, 3)
    expected = {
        "front": SQUARE + front[:3, 3],
        "back": SQUARE @ back[:3, :3].T + back[:3, 3],
    }
    # Each node's triangles land on its own transformed vertices.
    got = [vertices[merged[:4]], vertices[merged[4:]]]
    want = [e[faces] for e in expected.values()]
    assert any(np.allclose(got[0], w, atol=1e-6) for w in want) and any(np.allclose(got[1], w, atol=1e-6) for w in want)
    assert not np.allclose(got[0], got[1], atol=1e-3)


def test_gltf_with_a_mirrored_node_keeps_faces_outward(tmp_path):
    import trimesh

    mirror = np.diag([1.0, 1.0, -1.0, 1.0])  # a left panel made from the right one
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.Trimesh(SQUARE, [[0, 1, 4]], process=False), node_name="left", transform=mirror)
    for name, data in scene.export(file_type="gltf").items():
        (tmp_path / name).write_bytes(data)
    (path,) = tmp_path.glob("*.gltf")
    vertices, faces = read_garment_mesh(path)
    a, b, c = vertices[faces[0]]
    # The panel faced +Z; mirrored in z it faces -Z (glTF reverses the winding of mirrored nodes).
    assert np.cross(b - a, c - a)[2] < 0


def test_glb_written_by_fitroom_reads_back(tmp_path):
    v = SQUARE + [0.0, 1.0, 0.0]
    f = np.array([[0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4]])
    path = tmp_path / "panel.glb"
    path.write_bytes(body_glb_bytes(v, f, name="panel"))
    vertices, faces = read_garment_mesh(path)
    assert np.allclose(vertices, v, atol=1e-7) and np.array_equal(faces, f)


def _code(path) -> str:
    with pytest.raises(FitroomError) as info:
        read_garment_mesh(path)
    assert info.value.message
    return info.value.code


def test_bad_files_are_refused_with_a_reason(tmp_path):
    f = np.array([[0, 1, 4], [0, 4, 3]])
    good = body_glb_bytes(SQUARE, f)
    (tmp_path / "truncated.glb").write_bytes(good[: len(good) // 2])
    assert _code(tmp_path / "truncated.glb") == "unreadable_mesh"
    assert _code(_obj(tmp_path, "Dear brand,\nplease find attached our jacket.\n")) == "unreadable_mesh"
    assert _code(_obj(tmp_path, "v 0 0 zero\nf 1 2 3\n")) == "unreadable_mesh"
    assert _code(_obj(tmp_path, "v 0 0 0\nv 1 0 0\nl 1 2\n")) == "no_triangles"
    assert _code(_obj(tmp_path, "v 0 0 0\nv 0.5 0 0\nv nan 0.5 0\nf 1 2 3\n")) == "non_finite_vertices"
    assert _code(_obj(tmp_path, "v 0 0 0\nv 0.5 0 0\nv 0 0.5 0\nf 1 2 4\n")) == "face_index_out_of_range"
    assert _code(_obj(tmp_path, "v 0 0 0\nv 0.5 0 0\nv 0 0.5 0\nf 0 1 2\n")) == "face_index_out_of_range"
    assert _code(_obj(tmp_path, "v 0 0 0\nv 0.5 0 0\nv 0 0.5 0\nf -4 -2 -1\n")) == "face_index_out_of_range"
    assert _code(tmp_path / "missing.obj") == "mesh_not_found"
    (tmp_path / "garment.fbx").write_bytes(b"Kaydara FBX Binary")
    assert _code(tmp_path / "garment.fbx") == "unsupported_mesh_format"


@pytest.mark.parametrize("scale, unit", [(1000.0, "millimetres"), (100.0, "centimetres")])
def test_wrong_units_are_named(tmp_path, scale, unit):
    text = "".join(f"v {x} {y} {z}\n" for x, y, z in SQUARE * scale) + "f 1 2 5 4\n"
    with pytest.raises(FitroomError, match=f"looks like {unit}") as info:
        read_garment_mesh(_obj(tmp_path, text))
    assert info.value.code == "bad_units"
    assert _code(_obj(tmp_path, "v 0 0 0\nv 0.01 0 0\nv 0 0.01 0\nf 1 2 3\n")) == "bad_units"


def test_too_many_vertices_says_how_many(tmp_path):
    n = 250_001
    v = np.zeros((n, 3))
    v[:, 0] = np.linspace(0.0, 1.0, n)
    v[1::2, 1] = 0.01
    text = "".join(f"v {x:.6f} {y:.6f} 0\n" for x, y in v[:, :2].tolist()) + "f 1 2 3\n"
    with pytest.raises(FitroomError, match="250,001 vertices") as info:
        read_garment_mesh(_obj(tmp_path, text))
    assert info.value.code == "too_many_vertices"


@pytest.mark.skipif(not BAD_GLB.is_dir(), reason="the Khronos bad-GLB samples are not in shared/data")
def test_khronos_broken_glbs_give_fitroom_errors_only():
    paths = sorted(BAD_GLB.glob("*.glb"))
    assert len(paths) >= 20
    codes = {}
    for path in paths:
        try:
            vertices, faces = read_garment_mesh(path)
            codes[path.name] = "loaded"
            assert faces.max() < len(vertices)
        except FitroomError as e:
            codes[path.name] = e.code
    # None of these samples holds a triangle mesh.
    assert set(codes.values()) <= {"unreadable_mesh", "no_triangles"}, codes
    assert codes["invalid_magic.glb"] == codes["empty_file.glb"] == codes["bom.glb"] == "unreadable_mesh"


def test_material_comes_with_the_vertices_as_read(tmp_path):
    """Texture coordinates line up with read_garment_mesh's vertices across two meshes; the base
    colour texture, the normal map and roughness (metallic-roughness green channel x factor)."""
    import trimesh
    from PIL import Image
    from trimesh.visual.material import PBRMaterial

    quad = np.array([[0, 0, 0], [0.3, 0, 0], [0.3, 0.3, 0], [0, 0.3, 0]], float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    texture = Image.fromarray(np.full((4, 4, 3), (250, 10, 10), np.uint8))
    normal_map = Image.fromarray(np.full((4, 4, 3), (128, 128, 255), np.uint8))
    mr = Image.fromarray(np.full((4, 4, 3), (0, 200, 0), np.uint8))
    material = PBRMaterial(baseColorTexture=texture, normalTexture=normal_map, metallicRoughnessTexture=mr,
                           roughnessFactor=0.5)
    scene = trimesh.Scene()
    for k in range(2):
        visual = trimesh.visual.TextureVisuals(uv=uv * (k + 1) / 2, material=material)
        scene.add_geometry(trimesh.Trimesh(quad + [0, 0, 0.1 * k], faces, visual=visual, process=False), node_name=f"n{k}")
    path = tmp_path / "textured.glb"
    scene.export(path)
    vertices, _ = read_garment_mesh(path)
    m = read_garment_material(path)
    assert m.uv.shape == (len(vertices), 2) == (8, 2)
    near = vertices[:, 2] < 0.05  # the first quad's vertices carry the first quad's coordinates
    assert np.ptp(m.uv[near], axis=0).tolist() == pytest.approx([0.5, 0.5]) and np.ptp(m.uv[~near], axis=0).tolist() == pytest.approx([1, 1])
    assert m.texture.shape == (4, 4, 3) and tuple(m.texture[0, 0]) == (250, 10, 10)
    assert m.normal_map.shape == (4, 4, 3)
    assert m.roughness.dtype == np.uint8 and int(m.roughness[0, 0]) == 100  # 200 x 0.5


def test_no_material_without_texture_coordinates_or_for_obj(tmp_path):
    path = tmp_path / "plain.glb"
    path.write_bytes(body_glb_bytes(np.array([[0, 0, 0], [0.3, 0, 0], [0, 0.3, 0]], np.float32), np.array([[0, 1, 2]], np.int32)))
    assert read_garment_material(path) is None
    obj = tmp_path / "plain.obj"
    obj.write_text("v 0 0 0\nv 0.3 0 0\nv 0 0.3 0\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n")
    assert read_garment_material(obj) is None
