import numpy as np

from engine.backend import array_namespace, to_numpy
from engine.body_model import forward_kinematics, rest_shape, shape_coefficients, skin
from engine.garment_refit import place, refit, transfer_weights
from engine.mesh_queries import SurfaceQuery


def _signed(points, body, faces):
    q = SurfaceQuery(body, faces)
    return q.closest(points, q.nearest_vertices(points))[2]


def test_refit_keeps_every_vertex_outside_a_bigger_and_a_smaller_body(small_skirt, reference_bodies, body_model_cpu, xp):
    faces = np.asarray(body_model_cpu.faces)
    g = small_skirt
    args = [xp.asarray(a) for a in (g.vertices, g.faces, g.body_vertices)]
    for target in (reference_bodies["L"], reference_bodies["M"] * [0.9, 1.0, 0.9]):
        moved, anchors = refit(*args, xp.asarray(target), xp.asarray(faces), clearance=0.004)
        assert array_namespace(moved) is xp
        moved = to_numpy(moved)
        assert _signed(moved, target, faces).min() >= 0.004 - 1e-6  # measured on the host
        # The garment keeps its shape: neighbouring vertices move together.
        e = g.faces[:, :2]
        stretch = np.linalg.norm(moved[e[:, 0]] - moved[e[:, 1]], axis=1) / np.linalg.norm(g.vertices[e[:, 0]] - g.vertices[e[:, 1]], axis=1)
        assert 0.8 < np.median(stretch) < 1.25
    # The anchors are body-relative coordinates on the source body: placed back there, every
    # vertex outside it returns to where it was authored.
    back = to_numpy(place(anchors, SurfaceQuery(args[2], xp.asarray(faces))))
    outside = to_numpy(anchors.distance) >= 0
    assert outside.mean() > 0.95
    np.testing.assert_allclose(back[outside], g.vertices[outside], atol=1e-9)


def test_transferred_weights_follow_the_pose(body_model_cpu):
    from assets.procedural_garments import procedural_garment

    model = body_model_cpu
    faces = np.asarray(model.faces)
    g = procedural_garment(model, "tshirt", "M", "female", target_vertices=1500)
    _, anchors = refit(g.vertices, g.faces, g.body_vertices, g.body_vertices, faces)
    weights, bones = transfer_weights(anchors, faces, np.asarray(model.bone_weights), np.asarray(model.bone_indices), model.n_bones)
    np.testing.assert_allclose(weights.sum(1), 1.0)
    # Raise the left arm 20 degrees: the t-shirt's skinned sleeve moves with it.
    from assets.procedural_garments import reference_body
    from engine.rotations import rotvec_to_matrix

    shape, body = reference_body(model, "M", "female")
    rest = rest_shape(model, shape_coefficients(model, shape))
    identity = np.broadcast_to(np.eye(3), (model.n_bones, 3, 3)).copy()
    pose = identity.copy()
    pose[model.bone("upperarm01.L")] = np.asarray(rotvec_to_matrix(np.array([0.0, 0.0, np.deg2rad(20)])))
    ref, posed = (forward_kinematics(model, rest, p, np.zeros(3)) for p in (identity, pose))
    lift = body[:, 1].min() - np.asarray(skin(model, rest.vertices, ref))[:, 1].min()
    posed_body = np.asarray(skin(model, rest.vertices, posed)) + [0, lift, 0]
    # Linear blend skinning with each bone's motion from the reference pose to the new one.
    S_ref, t_ref = np.asarray(ref.rotations), np.asarray(ref.translations)
    S_new, t_new = np.asarray(posed.rotations), np.asarray(posed.translations)
    R = S_new @ np.linalg.inv(S_ref)
    t = t_new - np.einsum("bij,bj->bi", R, t_ref)
    p = g.vertices - [0, lift, 0]
    moved = np.einsum("nj,njab,nb->na", weights, R[bones], p) + np.einsum("nj,nja->na", weights, t[bones]) + [0, lift, 0]
    assert np.abs(moved - g.vertices).max() > 0.02  # the pose moved the sleeve
    signed = _signed(moved, posed_body, faces)
    assert signed.min() > 0.002  # skinned with the body, the whole shirt stays outside it
    # Refitted in body-relative coordinates instead (closest point and offset, the body's own
    # triangles in the new pose), the shirt follows the arm as skinning does and stays outside.
    refitted, _ = refit(g.vertices, g.faces, g.body_vertices, posed_body, faces, clearance=0.004)
    assert _signed(refitted, posed_body, faces).min() >= 0.004 - 1e-6
    sleeve = np.linalg.norm(moved - g.vertices, axis=1) > 0.02
    assert np.median(np.linalg.norm(refitted[sleeve] - moved[sleeve], axis=1)) < 0.01


def test_refit_puts_a_tshirt_outside_a_tall_thin_and_a_short_heavy_body(body_model_cpu):
    """The M t-shirt, authored on the M reference body (168 cm, chest 92), refitted onto bodies
    solved for 190 cm with chest 80 and 152 cm with chest 104 (the heaviest the body model's
    shape range reaches at that height: asked for chest 112 / waist 98, it gives 103 / 80): every
    vertex starts outside, and the hem keeps its height below the waist (the body, not the world,
    carries the shirt)."""
    from assets.procedural_garments import procedural_garment
    from avatar.measurements import measure_body
    from avatar.reference_body import rest_body, solve_shape

    model = body_model_cpu
    faces = np.asarray(model.faces)
    g = procedural_garment(model, "tshirt", "M", "female", target_vertices=1500)
    source = measure_body(g.body_vertices, model)
    for goal in ({"chest_cm": 80.0, "waist_cm": 62.0, "hip_cm": 86.0, "stature_cm": 190.0},
                 {"chest_cm": 104.0, "waist_cm": 82.0, "hip_cm": 106.0, "stature_cm": 152.0}):
        body = rest_body(model, solve_shape(model, goal, gender=1.0)[0])
        got = measure_body(body, model)
        assert abs(got["stature_cm"] - goal["stature_cm"]) < 3.0 and abs(got["chest_cm"] - goal["chest_cm"]) < 5.0
        moved, _ = refit(g.vertices, g.faces, g.body_vertices, body, faces, clearance=0.004)
        assert _signed(moved, body, faces).min() >= 0.004 - 1e-6
        assert abs(_hem_below_waist(moved, got) - _hem_below_waist(g.vertices, source)) < 0.03


def _hem_below_waist(vertices, measurements) -> float:
    """m from the waist's height down to the garment's lowest 1 % of vertices."""
    return measurements["waist_height_cm"] / 100.0 - np.percentile(vertices[:, 1], 1)
