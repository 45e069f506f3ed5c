import numpy as np

from engine.backend import array_namespace, to_numpy
from engine.cloth_scenes import square_cloth
from engine.mesh_queries import vertex_neighbours
from engine.self_collision import repel, self_intersections, vertex_triangle_pairs


def _two_sheets(gap: float, tilt: float = 0.0, shift: float = 0.0):
    a, f = square_cloth(6, 0.2, height=0.0)
    b = a.copy()
    b[:, 1] = gap + tilt * b[:, 0]
    b[:, 2] += shift
    return np.concatenate([a, b]), np.concatenate([f, f + len(a)])


def _crossings(x, f) -> int:
    """(edge, triangle) pairs sharing no vertex where the edge passes through the triangle, by
    signed volumes: a reference independent of the engine's Moller-Trumbore (strict signs, so
    for meshes in general position only)."""
    e = np.unique(np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), 1), axis=0)
    ei, ti = (k.ravel() for k in np.meshgrid(np.arange(len(e)), np.arange(len(f)), indexing="ij"))
    keep = ~(f[ti][:, :, None] == e[ei][:, None, :]).any((1, 2))
    p, q = x[e[ei[keep], 0]], x[e[ei[keep], 1]]
    a, b, c = (x[f[ti[keep], k]] for k in range(3))

    def vol(o, u, v, w):
        return np.einsum("kd,kd->k", np.cross(u - o, v - o), w - o)

    ends = vol(a, b, c, p) * vol(a, b, c, q) < 0  # the ends lie on either side of the plane
    sides = np.stack([vol(p, q, a, b), vol(p, q, b, c), vol(p, q, c, a)])  # the line inside the triangle
    return int((ends & ((sides > 0).all(0) | (sides < 0).all(0))).sum())


def test_counts_crossing_sheets_and_not_parallel_ones(xp):
    def count(v, f):
        return self_intersections(xp.asarray(v), xp.asarray(f))

    assert count(*_two_sheets(0.01)) == 0
    assert count(*_two_sheets(0.0, tilt=0.5)) > 0  # the second sheet cuts through the first along x = 0
    # In general position (no edge meets an edge): exactly the crossings counted by signed volumes.
    v, f = _two_sheets(0.003, tilt=0.5, shift=0.007)
    want = _crossings(v, f)
    assert want >= 10 and count(v, f) == want
    flat, ff = square_cloth(10, 1.0)
    assert count(flat, ff) == 0  # coplanar neighbours touch, they do not cross


def _box_pairs_brute(x, f, radius, adjacent=None):
    p = x[f]
    lo, hi = p.min(1) - radius, p.max(1) + radius
    inside = ((lo[None] <= x[:, None]) & (x[:, None] <= hi[None])).all(2)  # (N, F)
    inside &= ~(f[None] == np.arange(len(x))[:, None, None]).any(2)
    if adjacent is not None:
        inside &= ~adjacent[:, f].any(2)
    return set(zip(*map(list, np.nonzero(inside))))


def test_repel_restores_the_thickness_on_the_starting_side(xp):
    start, f = _two_sheets(0.01)
    now = start.copy()
    now[36:, 1] = -0.001  # the upper sheet has fallen just through the lower one
    X, X0, F = xp.asarray(now), xp.asarray(start), xp.asarray(f)
    pairs = vertex_triangle_pairs(X, F, 0.02)
    assert array_namespace(*pairs) is xp
    got = set(zip(*(to_numpy(k).tolist() for k in pairs)))
    assert len(got) == len(pairs[0]) and got == _box_pairs_brute(now, f, 0.02)
    # With the neighbour table: also no triangle holding an edge neighbour of the vertex.
    adjacent = np.zeros((len(now), len(now)), bool)
    for u, w in ((0, 1), (1, 2), (2, 0)):
        adjacent[f[:, u], f[:, w]] = adjacent[f[:, w], f[:, u]] = True
    near = vertex_triangle_pairs(X, F, 0.02, xp.asarray(vertex_neighbours(f, len(now))))
    assert set(zip(*(to_numpy(k).tolist() for k in near))) == _box_pairs_brute(now, f, 0.02, adjacent) < got
    out = repel(X, X0, F, pairs, thickness=0.002, passes=20)
    assert array_namespace(out) is xp
    assert self_intersections(out, F) == 0
    out = to_numpy(out)
    gap = out[36:, 1].mean() - out[:36, 1].mean()
    assert gap > 0.0015  # back above, about the thickness apart
    # By hand: pushed along y only (both sheets flat), half each, so the sheets end the thickness
    # apart about the plane midway between them (y = -0.5 mm): at -1.5 mm and +0.5 mm.
    np.testing.assert_allclose(out[:, [0, 2]], now[:, [0, 2]], atol=1e-12)
    np.testing.assert_allclose(out[:36, 1], -0.0015, atol=1e-6)
    np.testing.assert_allclose(out[36:, 1], 0.0005, atol=1e-6)
