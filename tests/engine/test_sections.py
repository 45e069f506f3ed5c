"""Plane sections and tape girths on shapes with known answers; the hull against SciPy's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from engine.backend import to_numpy
from engine.cloth_scenes import square_cloth
from engine.sections import (
    connected_labels,
    convex_hull_2d,
    horizontal_section,
    horizontal_sections,
    hull_perimeter,
    plane_section,
    plane_sections,
    polygon_area,
    polygon_perimeter,
    section_girth,
    support_perimeters,
)


def ramanujan(a: float, b: float) -> float:
    """Ramanujan's second approximation of an ellipse's perimeter (relative error ~h^5 / 2^17)."""
    h = ((a - b) / (a + b)) ** 2
    return np.pi * (a + b) * (1 + 3 * h / (10 + np.sqrt(4 - 3 * h)))


def tube(a: float, b: float, height: float, n_around: int = 1024, n_rings: int = 5, centre=(0.0, 0.0)):
    """A closed elliptic cylinder along +Y, outward-wound: vertices (n, 3), triangles (m, 3)."""
    theta = np.arange(n_around) * 2 * np.pi / n_around
    ys = np.linspace(0.0, height, n_rings)
    ring = np.stack([centre[0] + a * np.cos(theta), np.zeros(n_around), centre[1] + b * np.sin(theta)], 1)
    caps = [[centre[0], 0.0, centre[1]], [centre[0], height, centre[1]]]
    v = np.concatenate([ring + [0.0, y, 0.0] for y in ys] + [caps])
    faces = []
    i = np.arange(n_around)
    j = (i + 1) % n_around
    for r in range(n_rings - 1):
        lo, hi = r * n_around, (r + 1) * n_around
        faces += [np.stack([lo + i, hi + j, lo + j], 1), np.stack([lo + i, hi + i, hi + j], 1)]
    bottom, top = len(v) - 2, len(v) - 1
    last = (n_rings - 1) * n_around
    faces += [np.stack([np.full(n_around, bottom), i, j], 1), np.stack([np.full(n_around, top), last + j, last + i], 1)]
    return v, np.concatenate(faces).astype(np.int32)


def box(size=(0.3, 0.5, 0.2)):
    """An axis-aligned box from the origin: 8 vertices, 12 triangles."""
    sx, sy, sz = size
    v = np.array([[x, y, z] for x in (0, sx) for y in (0, sy) for z in (0, sz)], dtype=np.float64)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]
    return v, np.array(faces, dtype=np.int32)


def uv_sphere(radius: float, n_lat: int = 200, n_lon: int = 400):
    """A UV sphere centred at the origin (poles on Y)."""
    phi = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    theta = np.arange(n_lon) * 2 * np.pi / n_lon
    x = np.outer(np.sin(phi), np.cos(theta))
    y = np.outer(np.cos(phi), np.ones(n_lon))
    z = np.outer(np.sin(phi), np.sin(theta))
    ring = np.stack([x, y, z], -1).reshape(-1, 3)
    v = np.concatenate([[[0.0, 1.0, 0.0]], ring, [[0.0, -1.0, 0.0]]]) * radius
    faces = []
    i = np.arange(n_lon)
    j = (i + 1) % n_lon
    faces.append(np.stack([np.zeros(n_lon, int), 1 + j, 1 + i], 1))
    for r in range(len(phi) - 1):
        a, b = 1 + r * n_lon, 1 + (r + 1) * n_lon
        faces += [np.stack([a + i, a + j, b + j], 1), np.stack([a + i, b + j, b + i], 1)]
    last, south = 1 + (len(phi) - 1) * n_lon, len(v) - 1
    faces.append(np.stack([np.full(n_lon, south), last + i, last + j], 1))
    return v, np.concatenate(faces).astype(np.int32)


@pytest.mark.parametrize("a, b", [(0.2, 0.12), (0.15, 0.15), (0.3, 0.05)])
def test_elliptic_cylinder_girth_matches_ramanujan(xp, a, b):
    v, f = tube(a, b, 1.0)
    # Mid-ring and exactly through a ring of vertices (y = 0.5 is a ring): both are one clean loop.
    for h in (0.37, 0.5):
        g = section_girth(xp.asarray(v), xp.asarray(f), h)
        assert abs(g - ramanujan(a, b)) / ramanujan(a, b) < 0.005
        # The inscribed 1024-gon is in fact far closer than the 0.5 % asked.
        assert abs(g - ramanujan(a, b)) / ramanujan(a, b) < 1e-4


def test_section_through_a_ring_of_vertices_is_one_clean_loop():
    v, f = tube(0.2, 0.1, 1.0, n_around=64)
    seg = horizontal_section(v, f, 0.5)  # a ring of vertices lies exactly on the plane
    sec = horizontal_sections(v, f, [0.5])
    assert len(np.unique(sec.loop)) == 1
    # Vertices on the plane count as above: the band below is cut, each of its 128 triangles once
    # (a triangle touching the ring at one vertex gives a zero-length segment there).
    assert seg.shape == (128, 2, 2)
    length = np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1)
    assert np.sum(length < 1e-12) == 64
    ring = v[128:192, [0, 2]]  # the 64 vertices at y = 0.5
    assert length.sum() == pytest.approx(polygon_perimeter(ring), rel=1e-12)
    assert hull_perimeter(seg.reshape(-1, 2)) == pytest.approx(polygon_perimeter(ring), rel=1e-12)


def test_box_section_is_its_rectangle(xp):
    v, f = box((0.3, 0.5, 0.2))
    seg = to_numpy(horizontal_section(xp.asarray(v), xp.asarray(f), 0.21))
    assert np.allclose(seg[:, :, 0].min(), 0) and np.allclose(seg[:, :, 0].max(), 0.3)
    assert np.allclose(seg[:, :, 1].min(), 0) and np.allclose(seg[:, :, 1].max(), 0.2)
    assert section_girth(xp.asarray(v), xp.asarray(f), 0.21) == pytest.approx(1.0, abs=1e-12)
    # Above or below the box: nothing.
    assert section_girth(xp.asarray(v), xp.asarray(f), 0.6) == 0.0
    assert to_numpy(horizontal_section(xp.asarray(v), xp.asarray(f), -0.1)).shape == (0, 2, 2)


def test_box_by_an_oblique_plane_is_a_regular_hexagon(xp):
    v, f = box((1.0, 1.0, 1.0))
    seg = to_numpy(plane_section(xp.asarray(v), xp.asarray(f), [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]))
    pts = seg.reshape(-1, 3)
    assert np.allclose(pts.sum(axis=1), 1.5)  # on the plane
    assert np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1).sum() == pytest.approx(3 * np.sqrt(2), rel=1e-12)


def test_sphere_section_is_its_small_circle():
    r = 0.3
    v, f = uv_sphere(r)
    for h in (0.0, 0.1, -0.2, 0.27):
        expected = 2 * np.pi * np.sqrt(r**2 - h**2)
        assert section_girth(v, f, h) == pytest.approx(expected, rel=5e-4)
    # An oblique plane through the centre cuts a great circle.
    n = np.array([0.3, 1.0, -0.4])
    seg = plane_section(v, f, [0, 0, 0], n)
    assert np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1).sum() == pytest.approx(2 * np.pi * r, rel=5e-4)


def test_oblique_cut_of_a_cylinder_is_an_ellipse():
    r, tilt = 0.1, np.deg2rad(35)
    v, f = tube(r, r, 1.0, n_around=2048)
    sec = plane_sections(v, f, [0, 0.5, 0], [0, np.cos(tilt), np.sin(tilt)])
    assert len(np.unique(sec.loop)) == 1
    length = np.linalg.norm(sec.segments[:, 1] - sec.segments[:, 0], axis=1).sum()
    assert length == pytest.approx(ramanujan(r, r / np.cos(tilt)), rel=1e-4)


def test_loops_tell_separate_bodies_apart(xp):
    v1, f1 = tube(0.1, 0.1, 1.0, n_around=128)
    v2, f2 = tube(0.05, 0.08, 1.0, n_around=96, centre=(0.4, 0.0))
    v = np.concatenate([v1, v2])
    f = np.concatenate([f1, f2 + len(v1)])
    heights = [0.1, 0.33, 0.5, 0.9, 1.5]
    sec = horizontal_sections(xp.asarray(v), xp.asarray(f), heights)
    level = to_numpy(sec.level)
    pts = to_numpy(sec.segments)
    for i, h in enumerate(heights):
        labels = np.unique(sec.loop[level == i])
        assert len(labels) == (2 if h < 1.0 else 0)
        girths = sorted(hull_perimeter(pts[sec.loop == lab].reshape(-1, 2)) for lab in labels)
        if girths:
            assert girths[0] == pytest.approx(ramanujan(0.05, 0.08), rel=1e-3)
            assert girths[1] == pytest.approx(2 * np.pi * 0.1, rel=1e-3)
    # The batch equals the sections one level at a time.
    for i, h in enumerate(heights):
        one = np.sort(to_numpy(horizontal_section(xp.asarray(v), xp.asarray(f), h)).reshape(-1), kind="stable")
        assert np.allclose(one, np.sort(pts[level == i].reshape(-1)))


def test_open_chains_with_a_face_subset():
    v, f = tube(0.1, 0.1, 1.0, n_around=64)
    centroid_x = v[f].mean(axis=1)[:, 0]
    half = np.nonzero(centroid_x > 0)[0]  # the +X half of the tube: an open arc per level
    sec = horizontal_sections(v, f, [0.3, 0.6], face_ids=half)
    assert len(np.unique(sec.loop)) == 2
    assert np.all(sec.segments[:, :, 0] >= -1e-12)


def test_connected_labels():
    labels = connected_labels(7, [0, 1, 4, 6], [1, 2, 5, 4])
    assert labels.tolist() == [0, 0, 0, 3, 4, 4, 4]
    assert connected_labels(3, [], []).tolist() == [0, 1, 2]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [3, 4, 10, 17, 100, 3000])
def test_convex_hull_matches_scipy(seed, n):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 2)) * [1.0, 0.3] + rng.normal(size=2) * 10
    ours = convex_hull_2d(p)
    ref = ConvexHull(p)
    assert {tuple(q) for q in ours} == {tuple(q) for q in p[ref.vertices]}
    assert hull_perimeter(p) == pytest.approx(ref.area, rel=1e-12)  # `area` is the perimeter in 2D
    assert polygon_area(ours) == pytest.approx(ref.volume, rel=1e-12)  # counter-clockwise: positive


def test_convex_hull_degenerate_inputs():
    assert convex_hull_2d(np.zeros((0, 2))).shape == (0, 2)
    assert convex_hull_2d([[1.0, 2.0]] * 5).tolist() == [[1.0, 2.0]]
    line = np.stack([np.linspace(0, 1, 30), np.linspace(0, 2, 30)], 1)
    assert convex_hull_2d(line).tolist() == [[0.0, 0.0], [1.0, 2.0]]
    assert hull_perimeter(line) == pytest.approx(2 * np.sqrt(5))  # a tape round a flat strip
    # Duplicates, collinear edge points and grid points: only the 4 corners remain.
    g = np.stack(np.meshgrid(np.arange(5.0), np.arange(3.0)), -1).reshape(-1, 2)
    hull = convex_hull_2d(np.concatenate([g, g]))
    assert sorted(map(tuple, hull)) == [(0.0, 0.0), (0.0, 2.0), (4.0, 0.0), (4.0, 2.0)]
    assert hull_perimeter(g) == pytest.approx(12.0)
    # Non-finite points are ignored.
    assert hull_perimeter(np.concatenate([g, [[np.nan, 1.0]]])) == pytest.approx(12.0)


def test_support_perimeters_match_the_exact_hull():
    rng = np.random.default_rng(3)
    groups, points = [], []
    for k in range(5):
        theta = rng.uniform(0, 2 * np.pi, 400)
        p = np.stack([0.2 * np.cos(theta), (0.05 + 0.03 * k) * np.sin(theta)], 1) + rng.normal(size=2) * 3
        points.append(p)
        groups.append(np.full(len(p), k))
    got = support_perimeters(np.concatenate(points), np.concatenate(groups), 7, n_directions=256)
    exact = [hull_perimeter(p) for p in points]
    assert np.allclose(got[:5], exact, rtol=1e-4)
    assert got[5] == 0.0 and got[6] == 0.0  # empty groups


def test_values_ride_along_the_cut(xp):
    """Per-vertex values are interpolated to the segments' end points as the positions are: here
    values 1.5 times the positions of a tilted square, cut at y = 0.3."""
    v, f = square_cloth(5, 1.0, height=0.0)
    v = v @ np.array([[1.0, 0, 0], [0, 0.6, 0.8], [0, -0.8, 0.6]])  # tilted about x: y = -0.8 z
    v, f = xp.asarray(v), xp.asarray(f)
    sec = horizontal_sections(v, f, [0.3], values=1.5 * v)
    seg, values = to_numpy(sec.segments), to_numpy(sec.values)
    assert len(seg) > 0 and values.shape == (len(seg), 2, 3)
    np.testing.assert_allclose(values[..., [0, 2]], 1.5 * seg, atol=1e-12)
    np.testing.assert_allclose(values[..., 1], 1.5 * 0.3, atol=1e-12)
    assert horizontal_sections(v, f, [0.3]).values is None
