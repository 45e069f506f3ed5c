"""The engine's body model against Anny's own (torch) forward pass."""

import numpy as np
import pytest

from engine.backend import to_numpy
from engine.body_model import body_vertices, forward_kinematics, rest_shape, shape_coefficients, skin
from engine.rotations import rotvec_to_matrix


@pytest.fixture(scope="module")
def anny_model():
    pytest.importorskip("anny", reason="the anny package (torch) is not installed here")
    from avatar.body_model_data import build_anny_model

    return build_anny_model()


def anny_vertices(anny_model, shape, rotvecs, root_translation):
    """Anny's vertices in the world frame for a shape vector and per-bone rotation vectors (Anny frame)."""
    import roma
    import torch

    from avatar.body_model_data import ANNY_TO_WORLD

    n_ph = len(anny_model.phenotype_labels)
    B = len(anny_model.bone_labels)
    pose = torch.eye(4, dtype=torch.float64).repeat(1, B, 1, 1)
    pose[0, :, :3, :3] = roma.rotvec_to_rotmat(torch.as_tensor(rotvecs))
    pose[0, 0, :3, 3] = torch.as_tensor(root_translation)
    out = anny_model(
        pose_parameters=pose,
        phenotype_kwargs={k: float(v) for k, v in zip(anny_model.phenotype_labels, shape[:n_ph])},
        local_changes_kwargs={k: float(v) for k, v in zip(anny_model.local_change_labels, shape[n_ph:])},
    )
    return out["vertices"][0].numpy() @ ANNY_TO_WORLD.T


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_vertices_match_anny_within_a_tenth_of_a_millimetre(anny_model, body_model_cpu, seed):
    shape, rotvecs, root = _random_body(body_model_cpu, seed)
    expected = anny_vertices(anny_model, shape, rotvecs, root)
    err_mm = np.abs(_engine_vertices(body_model_cpu, shape, rotvecs, root) - expected).max() * 1000
    assert err_mm < 0.1, err_mm


def _random_body(m, seed):
    rng = np.random.default_rng(seed)
    n_ph = len(m.phenotype_labels)
    shape = np.concatenate([rng.uniform(0, 1, n_ph), rng.uniform(-1, 1, len(m.local_change_labels))])
    return shape, rng.normal(0, 0.4, (m.n_bones, 3)), rng.normal(0, 0.5, 3)


def _engine_vertices(m, shape, rotvecs, root):
    """Engine vertices for rotations given in Anny's Z-up frame: D' = C D C^T in the world frame."""
    from avatar.body_model_data import ANNY_TO_WORLD as C

    D = to_numpy(rotvec_to_matrix(rotvecs))
    return to_numpy(body_vertices(m, shape, m.xp.asarray(C @ D @ C.T), m.xp.asarray(C @ root)))


@pytest.mark.gpu
def test_cupy_matches_numpy(body_model_cpu, body_arrays):
    """The CuPy path equals the NumPy path, which the test above holds to Anny."""
    import cupy

    from engine.body_model import BodyModel

    gpu = BodyModel.from_arrays(body_arrays, xp=cupy)
    for seed in range(3):
        body = _random_body(body_model_cpu, seed)
        err_mm = np.abs(_engine_vertices(gpu, *body) - _engine_vertices(body_model_cpu, *body)).max() * 1000
        assert err_mm < 0.01, err_mm


def test_shape_and_frame_conventions(body_model_cpu):
    """The mean adult stands about 1.6-1.8 m tall, +Y up, facing +Z, left hand at +X."""
    m = body_model_cpu
    shape = np.r_[np.full(len(m.phenotype_labels), 0.5), np.zeros(len(m.local_change_labels))]
    shape[m.phenotype_labels.index("age")] = 0.75
    v = body_vertices(m, shape)
    stature = v[:, 1].max() - v[:, 1].min()
    assert 1.55 < stature < 1.85
    nose = m.keypoint_regressor[m.keypoint_labels.index("nose")] @ v
    head = m.keypoint_regressor[m.keypoint_labels.index("left_ear")] @ v
    assert nose[2] > head[2]  # the nose is in front of the ears: facing +Z
    lw = m.keypoint_regressor[m.keypoint_labels.index("left_wrist")] @ v
    assert lw[0] > 0.2


def test_rest_shape_subset_matches_full(body_model_cpu):
    m = body_model_cpu
    rng = np.random.default_rng(5)
    shape = rng.uniform(0, 1, m.n_shape)
    coeffs = shape_coefficients(m, shape)
    full = rest_shape(m, coeffs)
    ids = np.array([0, 17, 5000, 13717])
    sub = rest_shape(m, coeffs, vertex_ids=ids)
    np.testing.assert_allclose(sub.vertices, full.vertices[ids], atol=1e-6)
    posed = forward_kinematics(m, full, np.broadcast_to(np.eye(3), (m.n_bones, 3, 3)).copy(), np.zeros(3))
    np.testing.assert_allclose(skin(m, sub.vertices, posed, vertex_ids=ids), skin(m, full.vertices, posed)[ids], atol=1e-6)


def test_shape_coefficient_jacobian_matches_finite_differences(body_model_cpu):
    m = body_model_cpu
    rng = np.random.default_rng(2)
    shape = rng.uniform(0.1, 0.9, m.n_shape)  # away from the piecewise-linear kinks
    shape[len(m.phenotype_labels):] = rng.choice([-0.4, 0.3], len(m.local_change_labels))
    _, J = shape_coefficients(m, shape, jacobian=True)
    eps = 1e-6
    for k in range(m.n_shape):
        d = np.zeros(m.n_shape)
        d[k] = eps
        fd = (shape_coefficients(m, shape + d) - shape_coefficients(m, shape - d)) / (2 * eps)
        np.testing.assert_allclose(J[:, k], fd, atol=1e-6)
