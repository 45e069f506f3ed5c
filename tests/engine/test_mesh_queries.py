import numpy as np

from engine.mesh_queries import SurfaceQuery, box_pairs, closest_point_on_triangles


def test_closest_point_matches_dense_sampling():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 300, 3))
    p = rng.normal(size=(300, 3)) * 2
    q, bary = closest_point_on_triangles(p, a, b, c)
    best = np.full(300, np.inf)
    for u in np.linspace(0, 1, 61):
        for v in np.linspace(0, 1 - u, int(round((1 - u) * 60)) + 1):
            best = np.minimum(best, np.linalg.norm(u * a + v * b + (1 - u - v) * c - p, axis=1))
    d = np.linalg.norm(q - p, axis=1)
    assert np.all(d <= best + 1e-12)
    assert np.all(best - d < 0.03 * np.linalg.norm(b - a, axis=1).max())  # the sampling's own error
    np.testing.assert_allclose(bary.sum(1), 1.0)
    np.testing.assert_allclose(bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c, q, atol=1e-12)


def test_closest_point_hand_cases():
    a, b, c = np.array([[0.0, 0, 0]]), np.array([[1.0, 0, 0]]), np.array([[0.0, 1, 0]])
    for p, want in (([0.2, 0.2, 0.5], [0.2, 0.2, 0]), ([-1, -1, 0], [0, 0, 0]), ([1, 1, 0], [0.5, 0.5, 0]), ([0.5, -2, 1], [0.5, 0, 0])):
        q, _ = closest_point_on_triangles(np.array([p], float), a, b, c)
        np.testing.assert_allclose(q[0], want, atol=1e-12)


def test_box_pairs_equal_brute_force():
    rng = np.random.default_rng(1)
    lo_a = rng.random((200, 3)); hi_a = lo_a + rng.random((200, 3)) * 0.1
    lo_b = rng.random((300, 3)); hi_b = lo_b + rng.random((300, 3)) * 0.4  # some boxes many cells wide
    i, j = box_pairs(lo_a, hi_a, lo_b, hi_b)
    brute = ((lo_a[:, None] <= hi_b[None]) & (lo_b[None] <= hi_a[:, None])).all(2)
    assert set(zip(i.tolist(), j.tolist())) == set(zip(*map(list, np.nonzero(brute))))
    # Points (one array as both corners) take the path without de-duplication: still each pair once.
    i, j = box_pairs(lo_a, lo_a, lo_b, hi_b)
    brute = ((lo_a[:, None] <= hi_b[None]) & (lo_b[None] <= lo_a[:, None])).all(2)
    assert len(i) == brute.sum() and set(zip(i.tolist(), j.tolist())) == set(zip(*map(list, np.nonzero(brute))))


def test_body_lookup_finds_the_nearest_vertex_and_the_sign(reference_bodies, body_model_cpu):
    body = reference_bodies["M"]
    q = SurfaceQuery(body, np.asarray(body_model_cpu.faces))
    rng = np.random.default_rng(2)
    n = q.normals
    # Where garments lie: the torso, clear of hands, feet and face (fingers are thinner than a voxel).
    torso = np.nonzero((body[:, 1] > 0.8) & (body[:, 1] < 1.4) & (np.abs(body[:, 0]) < 0.2))[0]
    ids = rng.choice(torso, 400)
    offset = rng.uniform(-0.004, 0.03, 400)
    points = body[ids] + offset[:, None] * n[ids]
    _, _, signed, _, _ = q.closest(points, q.lookup_nearest(points))
    _, _, exact, _, _ = q.closest(points, q.nearest_vertices(points))
    # The lookup's closest point is the exact one (nearest vertex by grid search) within 0.5 mm.
    assert np.percentile(np.abs(signed - exact), 98) < 5e-4
    assert np.abs(signed - exact).max() < 0.01
    clear = np.abs(offset) > 0.002
    assert np.mean(np.sign(signed[clear]) == np.sign(offset[clear])) > 0.97
