import numpy as np

from engine.backend import to_numpy
from engine.rotations import matrix_to_rotvec, rotvec_to_matrix, skew, special_procrustes


def test_rodrigues_roundtrip(xp):
    rng = np.random.default_rng(0)
    rv = rng.normal(size=(200, 3))
    rv *= (rng.uniform(0, np.pi - 1e-3, 200) / np.linalg.norm(rv, axis=1))[:, None]
    rv[0] = 0.0
    rv[1] = [1e-8, 0, 0]
    rv[2] = [0, np.pi - 1e-4, 0]
    R = rotvec_to_matrix(xp.asarray(rv))
    Rn = to_numpy(R)
    np.testing.assert_allclose(Rn @ np.swapaxes(Rn, -1, -2), np.broadcast_to(np.eye(3), Rn.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(Rn), 1.0, atol=1e-12)
    np.testing.assert_allclose(to_numpy(matrix_to_rotvec(R)), rv, atol=1e-6)


def test_skew_is_cross_product(xp):
    a, b = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.7, -1.1])
    np.testing.assert_allclose(to_numpy(skew(xp.asarray(a)) @ xp.asarray(b)), np.cross(a, b))


def test_special_procrustes_is_nearest_rotation(xp):
    rng = np.random.default_rng(1)
    R = to_numpy(rotvec_to_matrix(xp.asarray(rng.normal(size=(50, 3)))))
    noisy = R + rng.normal(scale=1e-3, size=R.shape)
    out = to_numpy(special_procrustes(xp.asarray(noisy)))
    np.testing.assert_allclose(np.linalg.det(out), 1.0, atol=1e-10)
    assert np.abs(out - R).max() < 5e-3
    # A reflection is turned into the nearest proper rotation.
    refl = np.diag([1.0, 1.0, -1.0])
    assert np.linalg.det(to_numpy(special_procrustes(xp.asarray(refl)))) > 0
