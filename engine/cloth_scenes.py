"""Classic cloth test scenes as meshes: what the tests and the drape benchmarks run."""

from __future__ import annotations

import numpy as np


def square_cloth(n: int, size: float = 1.0, height: float = 1.0):
    """A flat n x n grid in the XZ plane at `height`, normals +Y: vertices (n*n, 3) (vertex (i, j)
    at index i*n + j, x from i, z from j) and faces (2(n-1)^2, 3). Quads are split along
    alternating diagonals so that the mesh has no preferred shear direction."""
    u = np.linspace(-size / 2, size / 2, n)
    X, Z = np.meshgrid(u, u, indexing="ij")
    v = np.stack([X.ravel(), np.full(n * n, float(height)), Z.ravel()], 1)
    i = np.arange(n - 1)
    I, J = np.meshgrid(i, i, indexing="ij")
    a = (I * n + J).ravel()
    b, c, d = a + 1, a + n, a + n + 1  # +z, +x, +x+z neighbours
    even = ((I + J) % 2 == 0).ravel()[:, None]
    first = np.where(even, np.stack([a, b, d], 1), np.stack([a, b, c], 1))
    second = np.where(even, np.stack([a, d, c], 1), np.stack([b, d, c], 1))
    return v, np.concatenate([first, second]).astype(np.int64)


def disc_cloth(radius: float, rings: int, height: float = 1.0):
    """A flat disc in the XZ plane at `height`, rings of vertices round a centre vertex with about
    equilateral triangles: vertices (N, 3), faces (F, 3), ring index (N,) (0 = centre)."""
    pts, ring_of, faces = [np.zeros(3)], [0], []
    prev = [0]
    for k in range(1, rings + 1):
        count = 6 * k
        ang = np.arange(count) * 2 * np.pi / count
        start = len(pts)
        r = radius * k / rings
        pts += [np.array([r * np.cos(a), 0.0, r * np.sin(a)]) for a in ang]
        ring_of += [k] * count
        cur = list(range(start, start + count))
        # Zip the inner ring (6(k-1) vertices) and this ring by angle.
        i = j = 0
        n_in, n_out = len(prev), count
        while i < n_in or j < n_out:
            a_in = (i + (0.5 if k > 1 else 0.0)) / max(n_in, 1)
            a_out = (j + 0.5) / n_out
            if j < n_out and (i >= n_in or a_out <= a_in) or n_in == 1:
                faces.append([prev[i % n_in], cur[(j + 1) % n_out], cur[j]])
                j += 1
                if n_in == 1 and j >= n_out:
                    break
            else:
                faces.append([prev[i % n_in], prev[(i + 1) % n_in], cur[j % n_out]])
                i += 1
        prev = cur
    v = np.array(pts)
    v[:, 1] = height
    return v, np.array(faces, np.int64), np.array(ring_of)


def drape_coefficient(x, ring, specimen_radius: float, support_radius: float) -> float:
    """Cusick's drape coefficient of a disc draped over a support (BS 5058 / ISO 9073-9): the
    shadow's area beyond the support over the specimen's, 0 hanging straight down, 1 flat.

    x : (N, 3) draped positions of `disc_cloth`'s vertices (Y up); ring : (N,) their ring index.
    The shadow is the area inside the outer edge's projection, taken by angle round the centre.
    """
    x = np.asarray(x)
    edge = x[ring == ring.max()][:, [0, 2]]
    edge = edge[np.argsort(np.arctan2(edge[:, 1], edge[:, 0]))]
    shadow = 0.5 * abs(np.dot(edge[:, 0], np.roll(edge[:, 1], 1)) - np.dot(edge[:, 1], np.roll(edge[:, 0], 1)))
    support = np.pi * support_radius**2
    return float((shadow - support) / (np.pi * specimen_radius**2 - support))
