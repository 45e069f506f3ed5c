"""Decimation keeps texture coordinates exact and seams closed."""

from __future__ import annotations

import numpy as np

from assets.mesh_lod import decimate_levels
from assets.mesh_normals import crease_normals, weld_positions
from assets.model_load import Material, Part
from tests.assets.sample_models import revolved_surface


def _part(n_triangles: int, textured: bool = True) -> Part:
    v, f, uv = revolved_surface(n_triangles)
    src, faces, normals = crease_normals(v, f)
    return Part(vertices=v[src], faces=faces, material=Material(), normals=normals, uv=uv[src] if textured else None)


def _open_edges(part: Part) -> int:
    weld, _ = weld_positions(part.vertices)
    f = weld[part.faces]
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), 1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return int((counts == 1).sum())


def test_levels_hit_their_targets_without_cracks_or_smeared_texture():
    part = _part(20_000)
    full, quarter, twentieth = decimate_levels(part, (1.0, 0.25, 0.05))
    assert full is part
    for level, ratio in ((quarter, 0.25), (twentieth, 0.05)):
        assert abs(len(level.faces) - ratio * len(part.faces)) <= 0.1 * ratio * len(part.faces)
        # No triangle spans the texture seam (u from 0 to 1 across one face).
        assert np.ptp(level.uv[level.faces][:, :, 0], axis=1).max() < 0.2
        # Only the vase's top and bottom rims are open after welding: the seam stayed closed.
        assert _open_edges(level) <= _open_edges(part)
        assert level.vertices.dtype == np.float64 and np.isfinite(level.vertices).all()


def test_untextured_part_decimates_by_position():
    part = _part(8_000, textured=False)
    part.normals = None
    (level,) = decimate_levels(part, (0.25,))
    assert abs(len(level.faces) - 2000) <= 200
    assert level.uv is None and level.normals is None


def test_tiny_part_is_left_alone():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    part = Part(vertices=v, faces=np.array([[0, 1, 2]]), material=Material())
    assert decimate_levels(part, (1.0, 0.05)) == [part, part]
