"""The body fit's analytic Jacobian and a fit to keypoints made by the model itself."""

import numpy as np
import pytest

from engine.backend import to_numpy
from engine.body_fit import (
    FITTED_BONES,
    FITTED_LOCAL_CHANGES,
    FitSettings,
    ViewObservation,
    _apply_step,
    _Problem,
    _rim_vertices,
    fit_body,
    interior_edges,
    mean_shape,
    standing_pose,
)
from engine.body_model import forward_kinematics, rest_shape, shape_coefficients, skin
from engine.rotations import rotvec_to_matrix


def _free(m):
    n_ph = len(m.phenotype_labels)
    return list(range(1, n_ph)) + [n_ph + m.local_change_labels.index(l) for l in FITTED_LOCAL_CHANGES]


def test_jacobian_matches_finite_differences(body_model, xp):
    m = body_model
    rng = np.random.default_rng(1)
    P = len(m.keypoint_labels)
    H, W = 480, 270
    yy, xx = np.mgrid[0:H, 0:W]
    sdf = (np.hypot(xx - 135.0, yy - 225.0) - 120.0).astype(np.float32)  # a disc: a smooth distance field
    view = ViewObservation(rng.uniform(50, 400, (P, 2)), np.ones(P), None, sdf, 400.0, (W, H))
    shape0 = mean_shape(m, 1.0)
    n_ph = len(m.phenotype_labels)
    shape0[1:n_ph] = [0.8, 0.3, 0.6, 0.4, 0.3]  # off the phenotype anchors, where the blend is smooth
    shape0[n_ph:] = 0.1  # off the kink of the local changes at 0
    free = _free(m)
    cfg = FitSettings(keypoint_huber_px=1e9, silhouette_scale_px=1e9)  # robust weights held at 1
    pr = _Problem(m, [view], 1.7, cfg, free, shape0, standing_pose(m))
    pose = to_numpy(standing_pose(m)).copy()
    pose[pr.bones] = to_numpy(rotvec_to_matrix(rng.normal(0, 0.2, (len(pr.bones), 3)))) @ pose[pr.bones]
    R0 = to_numpy(rotvec_to_matrix(np.array([0.1, 0.3, 0.05])))
    state = dict(shape=shape0, poses=[pose], placements=[(R0, np.array([0.05, 0.1, -3.0]))])
    pr.select_rims(state)
    pr.use_silhouette = True
    assert len(pr.rims[0]) > 100
    r, J = pr.residuals(state, True)
    lo, hi = np.full(m.n_shape, -9.0), np.full(m.n_shape, 9.0)
    Jn = np.zeros_like(J)
    for k in range(J.shape[1]):
        eps = 1e-3 if k < len(free) else 1e-6  # float32 blendshapes need a larger shape step
        step = np.zeros(J.shape[1])
        step[k] = eps
        rp = pr.residuals(_apply_step(pr, state, step, lo, hi), False)[0]
        rm = pr.residuals(_apply_step(pr, state, -step, lo, hi), False)[0]
        Jn[:, k] = (rp - rm) / (2 * eps)
    rel = np.linalg.norm(J - Jn, axis=0) / np.maximum(np.linalg.norm(Jn, axis=0), 1e-9)
    assert rel[: len(free)].max() < 0.01, rel[: len(free)]
    assert rel[len(free) :].max() < 1e-3, rel[len(free) :]


def test_interior_edges_of_a_tetrahedron_and_an_open_fan():
    tet = np.array([[0, 1, 2], [0, 3, 1], [1, 3, 2], [2, 3, 0]])
    verts, tris = interior_edges(tet)
    assert len(verts) == 6
    for (a, b), (f, g) in zip(verts, tris):
        assert f != g and {a, b} <= set(tet[f]) and {a, b} <= set(tet[g])
    fan = np.array([[0, 1, 2], [0, 2, 3]])  # two triangles: one shared edge, four boundary edges
    verts, tris = interior_edges(fan)
    assert verts.tolist() == [[0, 2]] and sorted(tris[0].tolist()) == [0, 1]


def test_rim_vertices_lie_on_the_projected_outline(body_model_cpu):
    """At the true body the rim points' distance to the outline is what the silhouette term
    minimises: it must be about zero, not the several pixels inside that near-rim vertices of a
    rounded torso sit."""
    cv2 = pytest.importorskip("cv2")
    m = body_model_cpu
    shape = mean_shape(m, 0.0)
    rest = rest_shape(m, shape_coefficients(m, shape))
    pose = standing_pose(m, shape=shape)
    X = to_numpy(skin(m, rest.vertices, forward_kinematics(m, rest, pose, np.zeros(3)))).astype(float)
    X = X - X.mean(0) - [0.0, 0.0, 2.6]  # 2.6 m in front of the camera, which looks along -z
    f, (W, H) = 1500.0, (1080, 1920)
    uv = np.stack([W / 2 + f * X[:, 0] / -X[:, 2], H / 2 - f * X[:, 1] / -X[:, 2]], 1)
    faces = to_numpy(m.faces)
    mask = np.zeros((H, W), np.uint8)
    for tri in np.round(uv[faces] * 16).astype(np.int32):
        cv2.fillConvexPoly(mask, tri, 1, shift=4)
    sdf = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 5) - cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    view = ViewObservation(np.zeros((1, 2)), np.zeros(1), None, sdf, f, (W, H))
    rim = _rim_vertices(np, X, faces, interior_edges(faces), view, 100000)
    assert len(rim) > 300
    p = np.round(uv[rim]).astype(int)
    d = sdf[p[:, 1], p[:, 0]]
    # Rounding to pixels and the distance transform's steps: most within 1-2 px. (The rest are inner
    # occluding contours, the chin over the neck or fingers, which the silhouette's robust loss
    # discounts. Vertices with |n . ray| < 0.3 lie a median 4 px and a 75th percentile 9 px inside.)
    assert np.median(np.abs(d)) <= 1.0, np.median(np.abs(d))
    assert np.percentile(np.abs(d), 75) <= 2.0, np.percentile(np.abs(d), 75)


def _synthetic_view(m, shape, pose, translation, f=1500.0, size=(1080, 1920), noise_px=1.0, seed=0):
    rest = rest_shape(m, shape_coefficients(m, shape))
    x = to_numpy(skin(m, rest.vertices, forward_kinematics(m, rest, m.xp.asarray(pose), m.xp.zeros(3)))).astype(float)
    X = x + translation
    K = to_numpy(m.keypoint_regressor).astype(float) @ X
    uv = np.stack([size[0] / 2 + f * K[:, 0] / -K[:, 2], size[1] / 2 - f * K[:, 1] / -K[:, 2]], 1)
    uv += np.random.default_rng(seed).normal(0, noise_px, uv.shape)
    mid = (K[11] + K[12]) / 2
    stature = float(to_numpy(rest.vertices[:, 1].max() - rest.vertices[:, 1].min()))
    return ViewObservation(uv, np.ones(len(uv)), (K - mid) * 0.9, None, f, size), stature


def test_fit_recovers_pose_and_placement_from_keypoints(body_model_cpu):
    m = body_model_cpu
    rng = np.random.default_rng(3)
    true = mean_shape(m, 1.0)
    true[1:6] = [0.7, 0.4, 0.65, 0.55, 0.3]
    pose = to_numpy(standing_pose(m, shape=true)).copy()
    bones = [m.bone(b) for b in FITTED_BONES]
    pose[bones] = to_numpy(rotvec_to_matrix(rng.normal(0, 0.08, (len(bones), 3)))) @ pose[bones]
    t = np.array([0.02, -0.1, -3.2])
    view, stature = _synthetic_view(m, true, pose, t)
    res = fit_body(m, [view], stature, gender=1.0)
    assert res.keypoint_residual_px[0] < 2.5  # 1 px of noise on the detections
    np.testing.assert_allclose(res.placements[0][1], t, atol=0.05)
    fitted = rest_shape(m, shape_coefficients(m, res.shape)).vertices
    assert abs(float(fitted[:, 1].max() - fitted[:, 1].min()) - stature) < 0.005


@pytest.mark.gpu
def test_fit_agrees_on_numpy_and_cupy(body_arrays):
    import cupy

    from engine.body_model import BodyModel

    results = []
    for xp in (np, cupy):
        m = BodyModel.from_arrays(body_arrays, xp=xp)
        true = mean_shape(m, 0.0)
        pose = to_numpy(standing_pose(m, shape=true))
        view, stature = _synthetic_view(m, true, pose, np.array([0.0, -0.1, -3.0]))
        results.append(fit_body(m, [view], stature, gender=0.0))
    np.testing.assert_allclose(results[0].shape, results[1].shape, atol=1e-4)
