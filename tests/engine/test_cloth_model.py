import numpy as np
import pytest

from engine.cloth_model import bending_matrix
from engine.cloth_scenes import square_cloth


def _hexagon():
    """A regular hexagon of unit sides round a centre vertex 0: six equilateral triangles."""
    a = np.arange(6) * np.pi / 3
    v = np.vstack([[0.0, 0.0, 0.0], np.stack([np.cos(a), np.sin(a), np.zeros(6)], 1)])
    f = np.array([[0, 1 + i, 1 + (i + 1) % 6] for i in range(6)])
    return v, f


def _dense(rows, cols, vals, n):
    k = np.zeros((n, n))
    np.add.at(k, (rows, cols), vals)
    return k


def test_bending_matrix_of_a_hexagon_by_hand():
    """Only the centre is interior. Its cotangent row: 1/sqrt(3) to each rim vertex (two 60 degree
    angles, (cot + cot) / 2), -2 sqrt(3) on itself; its area a third of six sqrt(3)/4 triangles,
    sqrt(3)/2. So K = k L_c^T L_c / A_c: 8 sqrt(3) k on the centre, -4/sqrt(3) k centre-rim,
    2/(3 sqrt(3)) k rim-rim; lifting the centre by d costs 1/2 K_cc d^2."""
    v, f = _hexagon()
    k = 2.0e-5  # N m
    K = _dense(*bending_matrix(v, f, k), 7)
    row = np.r_[-2.0 * np.sqrt(3.0), np.full(6, 1.0 / np.sqrt(3.0))]
    np.testing.assert_allclose(K, k * np.outer(row, row) / (np.sqrt(3.0) / 2.0), rtol=1e-12, atol=1e-20)
    assert K[0, 0] == pytest.approx(8.0 * np.sqrt(3.0) * k)
    assert K[0, 1] == pytest.approx(-4.0 / np.sqrt(3.0) * k)
    # A rigid motion or a flat in-plane shear costs nothing.
    for x in (v + [0.1, -0.2, 0.3], v @ np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])):
        assert np.einsum("ia,ij,ja->", x, K, x) == pytest.approx(0.0, abs=1e-18)


def test_bending_energy_of_a_sheet_rolled_into_a_cylinder():
    """A plate bent to radius R stores 1/2 k A / R^2 (its curvature 1/R squared over its area):
    a 20 cm square rolled round R = 0.15 m, over its interior vertices' areas, within 0.5 %
    (measured 0.06 %; with a third of each triangle as vertex area it was 12.4 % over)."""
    v, f = square_cloth(24, 0.2, height=0.0)
    k, radius = 3.0e-5, 0.15
    K = _dense(*bending_matrix(v, f, k), len(v))
    theta = v[:, 0] / radius
    rolled = np.stack([radius * np.sin(theta), radius * (1.0 - np.cos(theta)), v[:, 2]], 1)
    energy = 0.5 * np.einsum("ia,ij,ja->", rolled, K, rolled)
    from engine.cloth_topology import boundary_vertices, mixed_areas

    area = mixed_areas(v, f)[~boundary_vertices(f, len(v))].sum()
    assert energy == pytest.approx(0.5 * k * area / radius**2, rel=0.005)
