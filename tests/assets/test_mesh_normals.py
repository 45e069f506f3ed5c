"""Crease-aware normals: flat sides on a box, smooth on a sphere, across texture seams."""

from __future__ import annotations

import numpy as np
import trimesh

from assets.mesh_normals import crease_normals, weld_positions


def test_box_gets_flat_faces():
    box = trimesh.creation.box((1.0, 2.0, 3.0))
    source, faces, normals = crease_normals(box.vertices, box.faces)
    assert len(source) == 24  # 4 corners per side
    fn = box.face_normals
    for k in range(3):
        assert np.allclose(normals[faces[:, k]], fn, atol=1e-6)


def test_sphere_is_smooth_and_unit():
    sphere = trimesh.creation.uv_sphere(1.0, count=[32, 32])
    source, faces, normals = crease_normals(sphere.vertices, sphere.faces)
    radial = sphere.vertices[source] / np.linalg.norm(sphere.vertices[source], axis=1, keepdims=True)
    assert np.einsum("ij,ij->i", normals, radial).min() > 0.999
    assert np.abs(np.linalg.norm(normals, axis=1) - 1).max() < 1e-6


def test_weld_joins_seam_copies():
    v = np.array([[0.0, 0, 0], [1, 0, 0], [1e-9, 0, 0], [0, 1, 0]])
    ids, n = weld_positions(v)
    assert n == 3 and ids[0] == ids[2] and len(set(ids[[0, 1, 3]])) == 3
