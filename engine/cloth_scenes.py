"""Classic cloth test scenes as meshes: what the tests and the drape benchmarks run."""

from __future__ import annotations

import numpy as np


def square_cloth(n: int, size: float = 1.0, height: float = 1.0):
    """A flat n x n grid in the XZ plane at `height`: vertices (n*n, 3), faces (2(n-1)^2, 3)."""
    u = np.linspace(-size / 2, size / 2, n)
    X, Z = np.meshgrid(u, u, indexing="ij")
    v = np.stack([X.ravel(), np.full(n * n, height), Z.ravel()], 1)
    i = np.arange(n - 1)
    I, J = np.meshgrid(i, i, indexing="ij")
    a = (I * n + J).ravel()
    b, c = a + n, a + 1
    f = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, b + 1], 1)])
    return v, f
