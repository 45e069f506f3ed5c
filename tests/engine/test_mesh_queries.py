import numpy as np

from engine.backend import array_namespace, to_numpy
from engine.colliders import MeshCollider
from engine.mesh_queries import SurfaceQuery, box_pairs, closest_point_on_triangles, grid_candidates


def _sphere(radius: float = 0.2, n: int = 16):
    """A closed sphere mesh, faces outward: an octahedron's faces each split into n^2 triangles,
    the vertices pushed onto the sphere (all on it: the mesh is inscribed). n = 16: 1026 vertices,
    2048 faces, edges up to 3 cm."""
    keys, verts, faces = {}, [], []

    def vid(p):
        key = tuple(np.round(p, 9))
        if key not in keys:
            keys[key] = len(verts)
            verts.append(p / np.linalg.norm(p) * radius)
        return keys[key]

    for sx in (1, -1):
        for sy in (1, -1):
            for sz in (1, -1):
                a, b, c = np.array([sx, 0, 0.0]), np.array([0, sy, 0.0]), np.array([0, 0, sz * 1.0])
                if sx * sy * sz < 0:
                    b, c = c, b  # keep the faces outward
                g = {(i, j): vid(a + (b - a) * i / n + (c - a) * j / n) for i in range(n + 1) for j in range(n + 1 - i)}
                for i in range(n):
                    for j in range(n - i):
                        faces.append([g[i, j], g[i + 1, j], g[i, j + 1]])
                        if i + j < n - 1:
                            faces.append([g[i + 1, j], g[i + 1, j + 1], g[i, j + 1]])
    return np.array(verts), np.array(faces, np.int64)


def test_closest_point_matches_dense_sampling(xp):
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 300, 3))
    p = rng.normal(size=(300, 3)) * 2
    q, bary = closest_point_on_triangles(*(xp.asarray(t) for t in (p, a, b, c)))
    assert array_namespace(q, bary) is xp
    q, bary = to_numpy(q), to_numpy(bary)
    best = np.full(300, np.inf)
    for u in np.linspace(0, 1, 61):
        for v in np.linspace(0, 1 - u, int(round((1 - u) * 60)) + 1):
            best = np.minimum(best, np.linalg.norm(u * a + v * b + (1 - u - v) * c - p, axis=1))
    d = np.linalg.norm(q - p, axis=1)
    assert np.all(d <= best + 1e-12)
    assert np.all(best - d < 0.03 * np.linalg.norm(b - a, axis=1).max())  # the sampling's own error
    np.testing.assert_allclose(bary.sum(1), 1.0)
    np.testing.assert_allclose(bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c, q, atol=1e-12)


def test_closest_point_hand_cases(xp):
    a, b, c = xp.asarray([[0.0, 0, 0]]), xp.asarray([[1.0, 0, 0]]), xp.asarray([[0.0, 1, 0]])
    for p, want in (([0.2, 0.2, 0.5], [0.2, 0.2, 0]), ([-1, -1, 0], [0, 0, 0]), ([1, 1, 0], [0.5, 0.5, 0]), ([0.5, -2, 1], [0.5, 0, 0])):
        q, _ = closest_point_on_triangles(xp.asarray([p], dtype=xp.float64), a, b, c)
        np.testing.assert_allclose(to_numpy(q)[0], want, atol=1e-12)


def _pairs(i, j):
    return set(zip(to_numpy(i).tolist(), to_numpy(j).tolist()))


def test_box_pairs_equal_brute_force(xp):
    rng = np.random.default_rng(1)
    lo_a = rng.random((200, 3)); hi_a = lo_a + rng.random((200, 3)) * 0.1
    lo_b = rng.random((300, 3)); hi_b = lo_b + rng.random((300, 3)) * 0.4  # some boxes many cells wide
    la, ha, lb, hb = (xp.asarray(t) for t in (lo_a, hi_a, lo_b, hi_b))
    i, j = box_pairs(la, ha, lb, hb)
    assert array_namespace(i, j) is xp
    brute = ((lo_a[:, None] <= hi_b[None]) & (lo_b[None] <= hi_a[:, None])).all(2)
    assert len(i) == brute.sum() and _pairs(i, j) == set(zip(*map(list, np.nonzero(brute))))
    # Points (one array as both corners) take the path without de-duplication: still each pair once.
    i, j = box_pairs(la, la, lb, hb)
    brute = ((lo_a[:, None] <= hi_b[None]) & (lo_b[None] <= lo_a[:, None])).all(2)
    assert len(i) == brute.sum() and _pairs(i, j) == set(zip(*map(list, np.nonzero(brute))))
    i, j = box_pairs(xp.zeros((0, 3)), xp.zeros((0, 3)), lb, hb)
    assert len(i) == len(j) == 0


def test_grid_candidates_are_the_neighbouring_cells_and_hold_every_close_site(xp):
    rng = np.random.default_rng(3)
    points, sites, cell = rng.random((150, 3)), rng.random((400, 3)) * 1.2 - 0.1, 0.08
    pi, si = grid_candidates(xp.asarray(points), xp.asarray(sites), cell)
    assert array_namespace(pi, si) is xp
    got = _pairs(pi, si)
    assert len(got) == len(pi)  # each pair once
    # By hand: the pairs whose cells (origin 2 cells below both sets' corner) are at most one apart.
    lo = np.minimum(points.min(0), sites.min(0)) - 2 * cell
    cp, cs = ((points - lo) / cell).astype(np.int64), ((sites - lo) / cell).astype(np.int64)
    want = set(zip(*map(list, np.nonzero((np.abs(cp[:, None] - cs[None]) <= 1).all(2)))))
    assert got == want and len(want) > 150
    close = np.linalg.norm(points[:, None] - sites[None], axis=2) <= cell
    assert set(zip(*map(list, np.nonzero(close)))) <= got  # every site within a cell is a candidate


def test_sphere_query_is_exact_against_brute_force_and_the_sphere(xp):
    """On a closed inscribed sphere mesh: nearest vertices and closest points equal brute force
    over all vertices and faces, and the signed distance lies between the sphere's (|p| - r) and
    that plus the mesh's sag (the polyhedron lies between its faces' smallest plane distance and r)."""
    r = 0.2
    v, f = _sphere(r)
    q = SurfaceQuery(xp.asarray(v), xp.asarray(f))
    rng = np.random.default_rng(4)
    radial = rng.normal(size=(300, 3))
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    offset = rng.uniform(-0.03, 0.05, 300)
    points = radial * (r + offset)[:, None]
    p = xp.asarray(points)
    d_all = np.linalg.norm(points[:, None] - v[None], axis=2)
    rows = np.arange(len(points))
    for nearest in (q.nearest_vertices(p), q.lookup_nearest(p)):
        np.testing.assert_allclose(d_all[rows, to_numpy(nearest)], d_all.min(1), atol=1e-12)
    closest, normal, signed, face, bary = (to_numpy(a) for a in q.closest(p, q.lookup_nearest(p)))
    brute, _ = closest_point_on_triangles(points[:, None], v[f[:, 0]][None], v[f[:, 1]][None], v[f[:, 2]][None])
    np.testing.assert_allclose(np.abs(signed), np.linalg.norm(brute - points[:, None], axis=2).min(1), atol=1e-12)
    np.testing.assert_allclose(np.einsum("pk,pkd->pd", bary, v[f[face]]), closest, atol=1e-12)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    sag = r - np.einsum("fd,fd->f", n / np.linalg.norm(n, axis=1, keepdims=True), v[f[:, 0]]).min()  # 0.78 mm
    assert 0 < sag < 1e-3
    assert np.all(signed >= offset - 1e-12) and np.all(signed <= offset + sag + 1e-12)
    assert np.all(np.sign(signed[np.abs(offset) > sag]) == np.sign(offset[np.abs(offset) > sag]))
    assert np.all(np.einsum("pd,pd->p", normal, radial) > 0.999)
    assert np.all(np.einsum("vd,vd->v", to_numpy(q.normals), v / r) > 0.999)  # vertex normals are radial
    # The collider answers the same; moved to a new pose (5 voxels away), it follows exactly.
    collider = MeshCollider(xp.asarray(v), xp.asarray(f))
    c0, n0, s0 = (to_numpy(a) for a in collider.contacts(p))
    np.testing.assert_allclose(s0, signed, atol=1e-12)
    np.testing.assert_allclose(c0, closest, atol=1e-12)
    shift = np.array([0.05, -0.02, 0.01])
    collider.set_pose(xp.asarray(v + shift))
    c1, n1, s1 = (to_numpy(a) for a in collider.contacts(xp.asarray(points + shift)))
    np.testing.assert_allclose(s1, s0, atol=1e-9)
    np.testing.assert_allclose(c1, c0 + shift, atol=1e-9)
    np.testing.assert_allclose(n1, n0, atol=1e-9)


def test_body_lookup_finds_the_nearest_vertex_and_the_sign(reference_bodies, body_model_cpu, xp):
    body = reference_bodies["M"]
    q = SurfaceQuery(xp.asarray(body), xp.asarray(np.asarray(body_model_cpu.faces)))
    rng = np.random.default_rng(2)
    n = to_numpy(q.normals)
    # Where garments lie: the torso, clear of hands, feet and face (fingers are thinner than a voxel).
    torso = np.nonzero((body[:, 1] > 0.8) & (body[:, 1] < 1.4) & (np.abs(body[:, 0]) < 0.2))[0]
    ids = rng.choice(torso, 400)
    offset = rng.uniform(-0.004, 0.03, 400)
    points = xp.asarray(body[ids] + offset[:, None] * n[ids])
    signed = to_numpy(q.closest(points, q.lookup_nearest(points))[2])
    exact = to_numpy(q.closest(points, q.nearest_vertices(points))[2])
    # The lookup's closest point is the exact one (nearest vertex by grid search) within 0.5 mm.
    assert np.percentile(np.abs(signed - exact), 98) < 5e-4
    assert np.abs(signed - exact).max() < 0.01
    clear = np.abs(offset) > 0.002
    assert np.mean(np.sign(signed[clear]) == np.sign(offset[clear])) > 0.97
