import numpy as np
import pytest

from engine.cloth_scenes import square_cloth
from engine.backend import to_numpy
from engine.cloth_topology import (boundary_vertices, clean_mesh, collapse_needles, mixed_areas,
                                   non_manifold_edge_count, triangle_areas, unique_edges, vertex_areas)
from fitroom.errors import FitroomError


def test_clean_mesh_welds_and_drops_broken_triangles():
    v, f = square_cloth(4, 1.0)
    # Split the mesh along a seam (duplicate vertices), add a zero-area and a repeated triangle.
    v2 = np.concatenate([v, v[:4] + 1e-7])
    f2 = f.copy()
    f2[f2 < 4] += len(v)
    f2 = np.concatenate([f2, [[0, 1, 1], [0, 4, 8], f[5], f[5][::-1]]])  # (0, 4, 8) is collinear
    mesh = clean_mesh(v2, f2)
    assert len(mesh.vertices) == 16
    assert mesh.report["welded_vertices"] == 4
    assert mesh.report["degenerate_faces"] == 2
    assert mesh.report["repeated_faces"] == 2  # a grid triangle twice more, once flipped
    assert len(mesh.faces) == len(f)
    assert boundary_vertices(mesh.faces, 16).sum() == 12


def test_non_manifold_edges_are_counted_and_kept():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1.0]])
    f = np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4]])
    mesh = clean_mesh(v, f)
    assert mesh.report["non_manifold_edges"] == 1
    edges, _, manifold = unique_edges(mesh.faces)
    assert (~manifold).sum() == 1 and len(mesh.faces) == 3


@pytest.mark.parametrize("vertices, faces, words", [
    (np.zeros((2, 3)), np.array([[0, 1, 1]]), "three"),
    (np.array([[0, 0, 0], [1, 0, 0], [np.nan, 1, 0]]), np.array([[0, 1, 2]]), "NaN"),
    (np.eye(3), np.array([[0, 1, 5]]), "outside"),
    (np.zeros((3, 3)), np.array([[0, 1, 2]]), "degenerate"),
    (np.eye(3), np.zeros((0, 3), int), "triangles"),
])
def test_bad_meshes_get_clear_errors(vertices, faces, words):
    with pytest.raises(FitroomError, match=words):
        clean_mesh(vertices, faces)


def test_triangle_and_vertex_areas(xp):
    # A unit square in two right triangles, then stretched 2x along x: every area doubles.
    v = xp.asarray([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    f = xp.asarray([[0, 1, 2], [0, 2, 3]])
    area = triangle_areas(v, f)
    np.testing.assert_allclose(to_numpy(area), [0.5, 0.5])
    np.testing.assert_allclose(to_numpy(vertex_areas(f, area, 5)), [1 / 3, 1 / 6, 1 / 3, 1 / 6, 0.0])
    np.testing.assert_allclose(to_numpy(triangle_areas(v * xp.asarray([2.0, 1, 1]), f)), [1.0, 1.0])


def test_mixed_areas_by_hand():
    # The unit square's right triangles: each corner's Voronoi region (no obtuse angle), 1/4 each.
    v = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    np.testing.assert_allclose(mixed_areas(v, np.array([[0, 1, 2], [0, 2, 3]])), [0.25] * 4)
    # An obtuse triangle (120 degrees at vertex 0, area sqrt(3)/4): half there, a quarter each other.
    w = np.array([[0.0, 0, 0], [1, 0, 0], [np.cos(2 * np.pi / 3), np.sin(2 * np.pi / 3), 0]])
    np.testing.assert_allclose(mixed_areas(w, np.array([[0, 1, 2]])), np.sqrt(3) / 4 * np.array([0.5, 0.25, 0.25]))
    # A 4 x 4 grid of 1/3 m squares: interior vertices own (1/3)^2 whatever their triangle count.
    g, f = square_cloth(4, 1.0)
    assert mixed_areas(g, f).sum() == pytest.approx(1.0)
    np.testing.assert_allclose(mixed_areas(g, f).reshape(4, 4)[1:3, 1:3], 1 / 9)


def face_normals_y(v, f):
    return np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])[:, 1]


def shortest_over_next(v, f):
    """(F,) each triangle's shortest edge over its next shortest."""
    lengths = np.sort(np.linalg.norm(v[f[:, [1, 2, 0]]] - v[f], axis=2), axis=1)
    return lengths[:, 0] / lengths[:, 1]


@pytest.mark.parametrize("moved, towards, merged_at", [
    (2 * 6 + 2, 2 * 6 + 3, "midpoint"),  # two interior vertices 1 mm apart
    (1 * 6 + 2, 0 * 6 + 2, "opening"),  # an interior vertex 1 mm from one on the opening
])
def test_needles_are_merged_keeping_the_openings(moved, towards, merged_at):
    v, f = square_cloth(6, 0.1)  # 2 cm edges
    v[moved] = v[towards] + 0.05 * (v[moved] - v[towards])
    assert (shortest_over_next(v, f) < 0.3).sum() == 2  # the two triangles on the short edge
    out_v, out_f, source = collapse_needles(v, f)
    assert len(out_v) == 35 and len(out_f) == len(f) - 2
    assert shortest_over_next(out_v, out_f).min() > 0.3
    assert (face_normals_y(out_v, out_f) > 0).all()  # none turned over
    assert non_manifold_edge_count(out_f) == 0 and boundary_vertices(out_f, 35).sum() == 20
    assert source[moved] == source[towards]
    np.testing.assert_allclose(out_v[source], v[np.arange(36)], atol=0.002)  # others unmoved, merged within 1 mm
    expected = 0.5 * (v[moved] + v[towards]) if merged_at == "midpoint" else v[towards]
    np.testing.assert_allclose(out_v[source[towards]], expected, atol=1e-12)


def test_a_needle_across_a_strip_between_two_openings_is_kept():
    v, f = square_cloth(2, 0.1)  # one quad: every vertex on the opening, its diagonal interior
    v[3] = v[0] + 0.03 * (v[3] - v[0])  # the diagonal now 4 mm long, the sides 97-100 mm
    out_v, out_f, source = collapse_needles(v, f)
    np.testing.assert_array_equal(out_v, v)
    np.testing.assert_array_equal(out_f, f)
    np.testing.assert_array_equal(source, np.arange(4))
