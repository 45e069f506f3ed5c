"""Fits the body model to photos: robust Levenberg-Marquardt with analytic Jacobians.

One shape is shared by all views (front, optionally side); each view has its own pose and its own
placement in the camera frame. Camera frame (OpenGL): x right, y up, the camera looks along -z from
the origin; pixel u = cx + f x / (-z), v = cy - f y / (-z).

Terms (each a block of rows of the residual vector):
- 2D keypoints: the model's keypoints projected against the detected ones, in pixels.
- 3D keypoints: hip-centred model keypoints against the detector's metric world landmarks, with
  the detector's scale solved in closed form each iteration.
- silhouette: the signed distance to the mask boundary, sampled where the model's outer contour
  (rim vertices that are not hidden behind the body) projects.
- stature: the rest body's height against the shopper's height (metric scale).
- priors: shape towards the mean, pose towards a relaxed standing pose.

Jacobians are analytic. Pose: a rotation increment delta on a bone's delta rotation,
D_c <- exp(delta) D_c, turns every point skinned to the bone's subtree by G_p delta about the
bone's posed head. Shape: exact through blendshapes, bone heads and the kinematic chain, holding
the rest bone orientations fixed (their change with shape is second order; the cost itself is
always evaluated exactly, so Levenberg-Marquardt only accepts true decreases).
"""

from __future__ import annotations

import dataclasses
import weakref

import numpy as np

from engine.backend import scatter_add, to_numpy
from engine.body_model import (
    BodyModel,
    RestShape,
    forward_kinematics,
    identity_pose,
    rest_shape,
    shape_coefficients,
    skin,
)
from engine.mesh_queries import vertex_normals
from engine.rotations import left_jacobian_inverse, matrix_to_rotvec, rotvec_to_matrix, skew

# Bones whose rotation is fitted: spine, neck, shoulders, arms, legs.
FITTED_BONES = (
    "spine03",
    "spine01",
    "neck01",
    "clavicle.L",
    "clavicle.R",
    "upperarm01.L",
    "upperarm01.R",
    "lowerarm01.L",
    "lowerarm01.R",
    "upperleg01.L",
    "upperleg01.R",
    "lowerleg01.L",
    "lowerleg01.R",
    "foot.L",
    "foot.R",
)
# Prior stiffness of each fitted bone (radians at one standard deviation).
BONE_PRIOR_RAD = {
    "spine03": 0.15,
    "spine01": 0.15,
    "neck01": 0.25,
    "clavicle.L": 0.1,
    "clavicle.R": 0.1,
    "foot.L": 0.2,
    "foot.R": 0.2,
}
DEFAULT_BONE_PRIOR_RAD = 0.6

# The shape parameters that are fitted; the other local changes stay at 0.
FITTED_LOCAL_CHANGES = (
    "measure-bust-circ-incr",
    "measure-underbust-circ-incr",
    "measure-waist-circ-incr",
    "measure-hips-circ-incr",
    "measure-shoulder-dist-incr",
    "measure-napetowaist-dist-incr",
    "measure-waisttohip-dist-incr",
    "measure-upperleg-height-incr",
    "measure-lowerleg-height-incr",
    "measure-thigh-circ-incr",
    "measure-upperarm-circ-incr",
    "measure-neck-circ-incr",
    "buttocks-volume-incr",
    "stomach-pregnant-incr",
    "torso-scale-depth-incr",
    "torso-scale-horiz-incr",
    "hip-scale-depth-incr",
    "hip-scale-horiz-incr",
    "breast-volume-vert-up",
)
# Local changes that mostly change the body's depth: only a profile view sees them.
DEPTH_LOCAL_CHANGES = (
    "buttocks-volume-incr",
    "stomach-pregnant-incr",
    "torso-scale-depth-incr",
    "hip-scale-depth-incr",
    "breast-volume-vert-up",
)


@dataclasses.dataclass(frozen=True)
class ViewObservation:
    """What one photo says about the body.

    keypoints_px : (P, 2) pixel positions of the model's keypoints (`model.keypoint_labels`).
    keypoint_weights : (P,) confidence in [0, 1]; 0 for keypoints the detector does not give.
    keypoints_3d : (P, 3) metric, hip-centred landmarks in camera axes (x right, y up, z toward the
        camera), or None.
    sdf : (H, W) signed distance to the person mask's boundary in pixels (negative inside), or None.
    focal_px : focal length in pixels; the principal point is the image centre.
    image_size : (width, height) in pixels.
    facing : yaw of the body about +y in radians at the start (0: facing the camera; +-pi/2: profile).
    """

    keypoints_px: np.ndarray
    keypoint_weights: np.ndarray
    keypoints_3d: np.ndarray | None
    sdf: np.ndarray | None
    focal_px: float
    image_size: tuple[int, int]
    facing: float = 0.0


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """Weights (one over the standard deviation of each term) and iteration budget."""

    keypoint_sigma_px: float = 6.0
    # Once the silhouette is in, keypoints mostly pose the body: detector landmarks and the model's
    # keypoints differ by some pixels in meaning (hips, feet), which must not bend the shape.
    keypoint_sigma_full_px: float = 6.0
    # While only keypoints are fitted, the shape stays near the mean except its height.
    pose_phase_shape_scale: float = 0.05
    keypoint_huber_px: float = 20.0
    keypoint3d_sigma_m: float = 0.05
    silhouette_sigma_px: float = 4.0
    # Cauchy scale of the silhouette term: a rim point several pixels inside the person mask most
    # likely sits where the mask fills a narrow gap (arm and waist, the crotch), so its pull fades.
    silhouette_scale_px: float = 3.0
    stature_sigma_m: float = 0.002
    phenotype_sigma: float = 0.6
    local_change_sigma: float = 0.35
    max_rim_points: int = 400
    pose_iterations: int = 5
    # More iterations fit the mask's own noise: front+side mean girth error 1.35 cm with 10 and
    # 1.29 cm with 7 on the benchmark's bodies, 1.37 and 1.31 cm on 30 others (docs/avatar.md).
    full_iterations: int = 7
    tolerance: float = 1e-4


@dataclasses.dataclass
class FitResult:
    """shape : (S,) fitted shape vector; poses : per view (B, 3, 3); placements : per view
    (rotation (3, 3), translation (3,)) of the body in the camera frame; keypoint_residual_px :
    per view, the median 2D keypoint error; silhouette_residual_px : per view, the median
    |signed distance| at the rim; iterations and whether the last phase converged."""

    shape: np.ndarray
    poses: list
    placements: list
    keypoint_residual_px: list
    silhouette_residual_px: list
    iterations: int
    converged: bool


def standing_pose(model: BodyModel, arm_from_vertical_deg: float = 15.0, shape=None):
    """A relaxed standing pose (B, 3, 3): arms hanging `arm_from_vertical_deg` away from the body.

    Built from the rest skeleton of `shape` (mean body when None): each upper arm is turned from its
    rest direction to the target direction in the body's frontal plane.
    """
    xp = model.xp
    if shape is None:
        shape = mean_shape(model)
    rest = rest_shape(model, shape_coefficients(model, shape), vertex_ids=xp.arange(1))
    heads = to_numpy(rest.heads)
    pose = to_numpy(identity_pose(model)).copy()
    a = np.deg2rad(arm_from_vertical_deg)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        upper, lower = model.bone(f"upperarm01.{side}"), model.bone(f"lowerarm01.{side}")
        d = heads[lower] - heads[upper]
        d /= np.linalg.norm(d)
        target = np.array([sign * np.sin(a), -np.cos(a), 0.0])
        pose[upper] = _align(d, target)
        # The reference pose bends the elbow forward; straighten it to a relaxed slight bend.
        pose[model.bone(f"lowerarm01.{side}")] = np.eye(3)
    return xp.asarray(pose)


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) of smallest angle taking unit vector a to unit vector b."""
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-9:
        return np.eye(3)
    return to_numpy(rotvec_to_matrix(axis / s * np.arctan2(s, c)))


def mean_shape(model: BodyModel, gender: float = 0.5) -> np.ndarray:
    """The mean adult shape vector (S,): phenotypes at their middle, adult age, no local changes."""
    s = np.zeros(model.n_shape)
    labels = model.phenotype_labels
    s[: len(labels)] = 0.5
    s[labels.index("gender")] = gender
    s[labels.index("age")] = 0.75  # between Anny's "young" (2/3) and "old" (1) anchors: an adult
    return s


def keypoint_influences(model: BodyModel):
    """Each keypoint as a skinned point of its own, with one rest position per bone it follows.

    A keypoint regressed from skinned vertices, k = sum_i r_i sum_b w_ib (S_b v_i + t_b), equals
    sum_b c_b (S_b u_b + t_b) with c_b = sum_i r_i w_ib and u_b = sum_i r_i w_ib v_i / c_b, and u_b
    is linear in the blendshape coefficients. So a keypoint costs one row per bone it follows
    instead of its whole regression support. Returns host arrays over the N (keypoint, bone) pairs:
    keypoint (N,), bone (N,), weight c (N,), rest position u0 (N, 3) and its blendshapes (K, N, 3).
    """
    reg = to_numpy(model.keypoint_regressor).astype(np.float64)
    wts = to_numpy(model.bone_weights).astype(np.float64)
    idx = to_numpy(model.bone_indices)
    P, V = reg.shape
    B, J = model.n_bones, idx.shape[1]
    p_ids, v_ids = np.nonzero(reg > 0)
    c = np.zeros((P, B))
    np.add.at(c, (np.repeat(p_ids, J), idx[v_ids].reshape(-1)), (reg[p_ids, v_ids][:, None] * wts[v_ids]).reshape(-1))
    pair_p, pair_b = np.nonzero(c > 1e-9)
    slot = np.full((P, B), -1)
    slot[pair_p, pair_b] = np.arange(len(pair_p))
    rows = slot[np.repeat(p_ids, J), idx[v_ids].reshape(-1)]
    keep = rows >= 0
    # Dense (N, V) coefficients: one matrix product serves the template and every blendshape.
    coef = np.zeros((len(pair_p), V))
    np.add.at(coef, (rows[keep], np.repeat(v_ids, J)[keep]), (reg[p_ids, v_ids][:, None] * wts[v_ids]).reshape(-1)[keep])
    weight = c[pair_p, pair_b]
    tv = to_numpy(model.template_vertices).astype(np.float64)
    bs = to_numpy(model.blendshapes)
    K = bs.shape[0]
    u0 = coef @ tv / weight[:, None]
    ub = (coef.astype(np.float32) @ bs.transpose(1, 0, 2).reshape(V, -1)).reshape(-1, K, 3).transpose(1, 0, 2)
    return pair_p, pair_b, weight, u0, ub.astype(np.float64) / weight[None, :, None]


def interior_edges(faces: np.ndarray):
    """The mesh's edges shared by exactly two triangles: vertices (E, 2) and triangles (E, 2).

    faces : (F, 3) int. Boundary and non-manifold edges are left out: neither can lie on the
    contour between a triangle facing the camera and one facing away.
    """
    faces = np.asarray(faces, np.int64)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e.sort(axis=1)
    owner = np.tile(np.arange(len(faces)), 3)
    key = e[:, 0] * (int(faces.max()) + 1) + e[:, 1]
    order = np.argsort(key, kind="stable")
    key, e, owner = key[order], e[order], owner[order]
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    count = np.diff(np.r_[start, len(key)])
    pair = start[count == 2]
    return e[pair], np.stack([owner[pair], owner[pair + 1]], 1)


# Arrays derived once per body model: (id, name) -> (weak reference, arrays).
_MODEL_CACHE: dict = {}


def _cached(model: BodyModel, name: str, build):
    """`build(model)` (a tuple of host arrays) moved to the model's device, built once per model."""
    ref, arrays = _MODEL_CACHE.get((id(model), name), (None, None))
    if ref is None or ref() is not model:  # a new model, or an old one's id reused
        arrays = tuple(model.xp.asarray(a) for a in build(model))
        _MODEL_CACHE[(id(model), name)] = (weakref.ref(model), arrays)
    return arrays


class BodyJacobians:
    """Posed, placed model points and their analytic Jacobians (see the module docstring).

    A point X = R x + t: x the body model's posed point (skinned vertex or regressed keypoint), for a
    shape and bone deltas `pose` (B, 3, 3), in metres; (R (3, 3), t (3,)) the placement. The
    Jacobian's c = S + 6 + 3 C columns are, in order: the S fitted shape parameters; a rotation
    increment d (radians) of the placement, R <- exp(d) R (column block -skew(X - t)); the
    translation (metres); per bone of `bones` (C of them) a rotation increment d (radians) of its
    delta, D <- exp(d) D. Shape columns hold the rest bone orientations fixed (second order).
    """

    def __init__(self, model: BodyModel, bones=FITTED_BONES):
        xp = model.xp
        self.model, self.xp = model, xp
        self.bones = np.array([model.bone(b) for b in bones])
        B = model.n_bones
        sub = np.zeros((len(self.bones), B), bool)
        for k, c in enumerate(self.bones):
            for b in range(B):
                x = b
                while x >= 0 and x != c:
                    x = model.parents[x]
                sub[k, b] = x == c
        self.subtree = xp.asarray(sub)  # (fitted bone, bone): is the bone in the fitted bone's subtree
        kp, kb, kw, self.kp_u0, self.kp_ublend = _cached(model, "influences", keypoint_influences)
        self.kp_bone = kb
        # (P, N) sums weighted pair rows into keypoints; (C, P, N) keeps the pairs in a fitted bone's subtree.
        agg = np.zeros((len(model.keypoint_labels), len(kp)))
        agg[to_numpy(kp), np.arange(len(kp))] = to_numpy(kw)
        self.kp_agg = xp.asarray(agg)
        self.kp_agg_sub = self.kp_agg[None] * self.subtree[:, kb].astype(np.float64)[:, None, :]
        self.par = np.where(model.parents < 0, 0, model.parents)

    def vertices(self, coeffs, dcoeffs, pose, placement, ids, jacobian: bool = True):
        """Vertices `ids` (n,) posed and placed, (n, 3), and their Jacobian (n, 3, c) (None without
        `jacobian`), float64 on the model's array module; arguments as for `points`."""
        Xs, dXs = self.points(coeffs, dcoeffs, pose, placement, self.vertex_set(ids), jacobian, keypoints=False)
        return Xs[1], dXs[1] if jacobian else None

    def vertex_set(self, ids):
        """(ids, rest template (n, 3), blendshapes (K, n, 3)) of vertices `ids` (n,), float64 on xp:
        the per-vertex data `points` takes, gathered once for a subset used repeatedly."""
        m, xp = self.model, self.xp
        ids = xp.asarray(ids)
        return ids, m.template_vertices[ids].astype(np.float64), m.blendshapes[:, ids].astype(np.float64)

    def points(self, coeffs, dcoeffs, pose, placement, vertices, jacobian: bool, keypoints: bool = True):
        """Keypoints and vertices posed and placed, with their Jacobians (see the class docstring).

        coeffs : (K,) and dcoeffs : (K, S) blendshape coefficients and their derivative with respect
        to the S shape parameters fitted (`shape_coefficients(..., jacobian=True)`, columns picked);
        dcoeffs may be None without `jacobian`. pose : (B, 3, 3) bone deltas. placement : (rotation
        (3, 3), translation (3,)). vertices : (ids, template, blendshapes) from `vertex_set`.
        Returns ([keypoints (P, 3), vertices (n, 3)], [their Jacobians (P, 3, c), (n, 3, c)] or None
        without `jacobian`), float64 on the model's array module.

        A vertex follows its J bones from one rest position; a keypoint is a weighted sum of
        (keypoint, bone) pair rows, each with a rest position of its own (`keypoint_influences`).
        keypoints=False leaves the keypoints out (their rows come back as zeros).
        """
        m, xp = self.model, self.xp
        B = m.n_bones
        ids, template, blend = vertices
        rest = rest_shape(m, coeffs, vertex_ids=xp.arange(0))
        vr = template + xp.tensordot(coeffs, blend, axes=(0, 0))
        posed = forward_kinematics(m, rest, xp.asarray(pose), xp.zeros(3))
        Rg = xp.asarray(placement[0])
        tg = xp.asarray(placement[1])
        S, t = posed.rotations, posed.translations
        pairs = slice(None) if keypoints else slice(0, 0)
        kb, kp_agg, kp_agg_sub = self.kp_bone[pairs], self.kp_agg[:, pairs], self.kp_agg_sub[:, :, pairs]
        kp_ublend = self.kp_ublend[:, pairs]
        uk = self.kp_u0[pairs] + xp.tensordot(coeffs, kp_ublend, axes=(0, 0))  # (N, 3)
        xbk = xp.einsum("nab,nb->na", S[kb], uk) + t[kb]
        idx = m.bone_indices[ids]
        wv = m.bone_weights[ids].astype(np.float64)
        xbv = xp.einsum("njab,nb->nja", S[idx], vr) + t[idx]  # (n, J, 3)
        X_parts = [kp_agg @ xbk @ Rg.T + tg, xp.einsum("nj,nja->na", wv, xbv) @ Rg.T + tg]
        if not jacobian:
            return X_parts, None

        n_shape = dcoeffs.shape[1]
        par = self.par
        dh = xp.einsum("kbd,ks->bds", m.head_blendshapes, dcoeffs)
        U, R = m.reference_orientations, rest.orientations
        dR = _procrustes_derivative(xp, R, m.template_orientation, m.orientation_blendshapes, coeffs, dcoeffs)
        A = U @ xp.swapaxes(R, -1, -2)
        A[0] = xp.eye(3)
        dA = xp.einsum("bij,bkjs->biks", U, dR)  # d(U R^T) = U dR^T
        dA[0] = 0.0
        dw = xp.zeros_like(dh)
        for level in m.levels[1:]:
            p = par[level]
            arm = rest.heads[level] - rest.heads[p]
            dq = xp.einsum("bij,bjs->bis", A[p], dh[level] - dh[p]) + xp.einsum("bijs,bj->bis", dA[p], arm)
            dw[level] = dw[p] + xp.einsum("bij,bjs->bis", posed.aligned[p], dq)
        dS = xp.einsum("bij,bjk,blks->bils", posed.aligned, U, dR)  # S = G U R^T
        # d(S_b (u - h_b) + w_b) = S_b du + dS_b u + [dw_b - S_b dh_b - dS_b h_b]; the bracket is per bone.
        Cb = dw - S @ dh - xp.einsum("bijs,bj->bis", dS, rest.heads)
        duk = xp.tensordot(kp_ublend, dcoeffs, axes=(0, 0))  # (N, 3, S)
        dxbk = S[kb] @ duk + xp.einsum("nijs,nj->nis", dS[kb], uk) + Cb[kb]
        dxk = xp.tensordot(kp_agg, dxbk, axes=(1, 0))
        Wv = _dense_weights(xp, idx, wv, B)
        Mv = (Wv @ S.reshape(B, 9)).reshape(-1, 3, 3)
        dv = xp.tensordot(blend, dcoeffs, axes=(0, 0))  # (n, 3, S)
        dxv = (
            Mv @ dv
            + xp.einsum("nijs,nj->nis", (Wv @ dS.reshape(B, -1)).reshape(-1, 3, 3, n_shape), vr)
            + (Wv @ Cb.reshape(B, -1)).reshape(-1, 3, n_shape)
        )
        # Bone columns: a turn of fitted bone c moves what its subtree carries about its posed head.
        heads_c = posed.heads[self.bones]  # (C, 3)
        lever_k = kp_agg_sub @ xbk - kp_agg_sub.sum(2)[..., None] * heads_c[:, None]
        wsub = wv[None] * self.subtree.astype(np.float64)[:, idx]  # (C, n, J)
        lever_v = xp.einsum("cnj,nja->cna", wsub, xbv) - wsub.sum(2)[..., None] * heads_c[:, None]
        Gp = posed.aligned[par[self.bones]]  # (C, 3, 3)
        dX_parts = []
        for X, dx, lever in ((X_parts[0], dxk, lever_k), (X_parts[1], dxv, lever_v)):
            dX = xp.zeros((len(X), 3, n_shape + 6 + 3 * len(self.bones)))
            dX[:, :, :n_shape] = xp.einsum("ab,nbs->nas", Rg, dx)
            dX[:, :, n_shape : n_shape + 3] = -skew(X - tg)
            dX[:, :, n_shape + 3 : n_shape + 6] = xp.eye(3)
            turn = Rg @ (-skew(lever)) @ Gp[:, None]  # (C, n, 3, 3)
            dX[:, :, n_shape + 6 :] = xp.moveaxis(turn, 0, 2).reshape(len(X), 3, 3 * len(self.bones))
            dX_parts.append(dX)
        return X_parts, dX_parts


class _Problem:
    """Residuals and Jacobians of the fit for a parameter state; see the module docstring."""

    def __init__(self, model: BodyModel, views, height_m: float, settings: FitSettings, free_shape, prior_shape, prior_pose):
        xp = model.xp
        self.model, self.views, self.height_m, self.cfg = model, views, height_m, settings
        self.xp = xp
        self.free_shape = np.asarray(free_shape)
        self.prior_shape = prior_shape
        self.prior_pose = to_numpy(prior_pose)
        self.body = BodyJacobians(model, FITTED_BONES)
        self.bones = self.body.bones
        self.bone_sigma = np.array([BONE_PRIOR_RAD.get(b, DEFAULT_BONE_PRIOR_RAD) for b in FITTED_BONES])
        n_ph = len(model.phenotype_labels)
        self.shape_sigma0 = np.where(self.free_shape < n_ph, settings.phenotype_sigma, settings.local_change_sigma)
        self.height_index = model.phenotype_labels.index("height")
        self.set_phase("pose")
        self.edges = _cached(model, "edges", lambda m: interior_edges(to_numpy(m.faces)))
        labels = model.keypoint_labels
        self.hips = (labels.index("left_hip"), labels.index("right_hip"))
        self.rims = [np.zeros(0, np.int64) for _ in views]
        self.extreme = (0, 0)

    def set_phase(self, phase: str):
        """'pose': keypoints only, shape held near the mean but for its height; 'full': everything."""
        cfg = self.cfg
        self.use_silhouette = phase == "full"
        self.kp_sigma = cfg.keypoint_sigma_full_px if phase == "full" else cfg.keypoint_sigma_px
        scale = np.where(self.free_shape == self.height_index, 1.0, cfg.pose_phase_shape_scale)
        self.shape_sigma = self.shape_sigma0 * (1.0 if phase == "full" else scale)

    def layout(self):
        """(number of shape parameters, parameters per view, all parameters)."""
        n_shape = len(self.free_shape)
        per_view = 6 + 3 * len(self.bones)
        return n_shape, per_view, n_shape + per_view * len(self.views)

    def posed_vertices(self, state, rest: RestShape, v: int):
        """View v's posed vertices (V, 3) of the rest shape `rest`, in the camera frame."""
        m = self.model
        posed = forward_kinematics(m, rest, self.xp.asarray(state["poses"][v]), self.xp.zeros(3))
        x = skin(m, rest.vertices, posed)
        Rg, tg = (self.xp.asarray(a) for a in state["placements"][v])
        return x.astype(np.float64) @ Rg.T + tg

    def select_rims(self, state, rims: bool = True):
        """Chooses the stature's top and bottom vertices and (`rims`) per view the vertices on the
        model's visible outer contour; without `rims` (the keypoints-only phase) there are none."""
        xp, m = self.xp, self.model
        rest = rest_shape(m, shape_coefficients(m, state["shape"]))
        # Stature is measured standing in the reference pose, as `avatar.measurements` measures it.
        ry = skin(m, rest.vertices, self._reference_pose(rest))[:, 1]
        self.extreme = (int(xp.argmax(ry)), int(xp.argmin(ry)))
        self.rims = []
        for v, view in enumerate(self.views):
            if view.sdf is None or not rims:
                self.rims.append(np.zeros(0, np.int64))
                continue
            X = self.posed_vertices(state, rest, v)
            self.rims.append(_rim_vertices(xp, X, m.faces, self.edges, view, self.cfg.max_rim_points))
        # The rim's rest positions and blendshapes, gathered once per selection.
        self.rim_sets = [self.body.vertex_set(r) for r in self.rims]
        self.extreme_set = self.body.vertex_set(np.array(self.extreme))

    def _reference_pose(self, rest: RestShape):
        return forward_kinematics(self.model, rest, identity_pose(self.model), self.xp.zeros(3))

    def residuals(self, state, jacobian: bool):
        """The residual vector r and (when asked) the Jacobian J, both host float64 arrays."""
        m, xp, cfg = self.model, self.xp, self.cfg
        n_shape, per_view, n_params = self.layout()
        coeffs, dcoeffs = shape_coefficients(m, state["shape"], jacobian=True)
        dcoeffs = dcoeffs[:, self.free_shape]
        rows_r, rows_J = [], []

        # Stature: the reference-pose body between its current highest and lowest vertices.
        identity = to_numpy(identity_pose(m))
        X2, dX2 = self.body.points(
            coeffs, dcoeffs, identity, (np.eye(3), np.zeros(3)), self.extreme_set, jacobian, keypoints=False
        )
        stature = float(X2[1][0, 1] - X2[1][1, 1])
        rows_r.append(np.array([(stature - self.height_m) / cfg.stature_sigma_m]))
        if jacobian:
            J = np.zeros((1, n_params))
            J[0, :n_shape] = to_numpy(dX2[1][0, 1, :n_shape] - dX2[1][1, 1, :n_shape]) / cfg.stature_sigma_m
            rows_J.append(J)

        # Priors.
        rows_r.append((state["shape"][self.free_shape] - self.prior_shape[self.free_shape]) / self.shape_sigma)
        J = np.zeros((n_shape, n_params))
        J[:, :n_shape] = np.diag(1.0 / self.shape_sigma)
        rows_J.append(J)
        for v in range(len(self.views)):
            D = state["poses"][v][self.bones]
            Dp = self.prior_pose[self.bones]
            rv = to_numpy(matrix_to_rotvec(xp.asarray(D @ np.swapaxes(Dp, -1, -2))))
            rows_r.append((rv / self.bone_sigma[:, None]).reshape(-1))
            J = np.zeros((rv.size, n_params))
            base = n_shape + v * per_view + 6
            Jl = to_numpy(left_jacobian_inverse(xp.asarray(rv))) / self.bone_sigma[:, None, None]
            for k in range(len(self.bones)):
                J[3 * k : 3 * k + 3, base + 3 * k : base + 3 * k + 3] = Jl[k]
            rows_J.append(J)

        for v, view in enumerate(self.views):
            r, Jv = self._view_terms(state, v, view, coeffs, dcoeffs, jacobian)
            rows_r.append(r)
            if jacobian:
                J = np.zeros((len(r), n_params))
                J[:, :n_shape] = Jv[:, :n_shape]
                J[:, n_shape + v * per_view : n_shape + (v + 1) * per_view] = Jv[:, n_shape:]
                rows_J.append(J)
        r = np.concatenate(rows_r)
        return (r, np.concatenate(rows_J)) if jacobian else (r, None)

    def _view_terms(self, state, v, view: ViewObservation, coeffs, dcoeffs, jacobian):
        """Keypoint and silhouette rows of one view: residuals (n,), Jacobian (n, n_shape + per_view)."""
        xp, cfg = self.xp, self.cfg
        rim = self.rims[v] if self.use_silhouette else np.zeros(0, np.int64)
        vertices = self.rim_sets[v] if self.use_silhouette else self.body.vertex_set(rim)
        Xs, dXs = self.body.points(coeffs, dcoeffs, state["poses"][v], state["placements"][v], vertices, jacobian)
        K = Xs[0]
        f = view.focal_px
        centre = (view.image_size[0] / 2.0, view.image_size[1] / 2.0)
        uv = _project(xp, K, f, centre)
        w2 = xp.asarray(view.keypoint_weights)
        res2 = (uv - xp.asarray(view.keypoints_px)) / self.kp_sigma
        hub2 = _huber_weights(xp, xp.linalg.norm(res2, axis=1) * self.kp_sigma, cfg.keypoint_huber_px)
        s2 = xp.sqrt(w2 * hub2)[:, None]
        blocks_r = [(res2 * s2).reshape(-1)]
        if view.keypoints_3d is not None:
            rel = K - (K[self.hips[0]] + K[self.hips[1]]) / 2.0
            obs = xp.asarray(view.keypoints_3d)
            w3 = xp.sqrt(w2)[:, None]
            scale = float(xp.sum(w3**2 * rel * obs) / max(float(xp.sum(w3**2 * obs * obs)), 1e-9))
            blocks_r.append(((rel - scale * obs) / cfg.keypoint3d_sigma_m * w3).reshape(-1))
        if len(rim):
            sdf, gu, gv = _sample_sdf(xp, view.sdf, _project(xp, Xs[1], f, centre))
            ss = xp.sqrt(_cauchy_weights(xp, sdf, cfg.silhouette_scale_px))
            blocks_r.append(sdf / cfg.silhouette_sigma_px * ss)
        r = to_numpy(xp.concatenate(blocks_r))
        if not jacobian:
            return r, None
        dK = dXs[0]
        cols = dK.shape[2]
        blocks_J = [(_project_jacobian(xp, K, dK, f) / self.kp_sigma * s2[:, :, None]).reshape(-1, cols)]
        if view.keypoints_3d is not None:
            dmid = (dK[self.hips[0]] + dK[self.hips[1]]) / 2.0
            blocks_J.append(((dK - dmid) / cfg.keypoint3d_sigma_m * w3[:, :, None]).reshape(-1, cols))
        if len(rim):
            duv = _project_jacobian(xp, Xs[1], dXs[1], f)
            blocks_J.append((gu[:, None] * duv[:, 0] + gv[:, None] * duv[:, 1]) / cfg.silhouette_sigma_px * ss[:, None])
        return r, to_numpy(xp.concatenate(blocks_J))

    def stats(self, state):
        """Per view: median 2D keypoint error (px) over confident keypoints and median |sdf| at the rim."""
        m, xp = self.model, self.xp
        coeffs = shape_coefficients(m, state["shape"])
        kp_err, sil_err = [], []
        for v, view in enumerate(self.views):
            Xs, _ = self.body.points(coeffs, None, state["poses"][v], state["placements"][v], self.rim_sets[v], False)
            centre = (view.image_size[0] / 2.0, view.image_size[1] / 2.0)
            err = to_numpy(xp.linalg.norm(_project(xp, Xs[0], view.focal_px, centre) - xp.asarray(view.keypoints_px), axis=1))
            good = view.keypoint_weights > 0.5
            kp_err.append(float(np.median(err[good])) if good.any() else float("nan"))
            if len(self.rims[v]) and view.sdf is not None:
                sdf = _sample_sdf(xp, view.sdf, _project(xp, Xs[1], view.focal_px, centre))[0]
                sil_err.append(float(np.median(np.abs(to_numpy(sdf)))))
            else:
                sil_err.append(float("nan"))
        return kp_err, sil_err


def _project(xp, P, f, centre):
    """Pinhole projection of camera-frame points (n, 3) to pixels (n, 2)."""
    z = -P[:, 2]
    return xp.stack([centre[0] + f * P[:, 0] / z, centre[1] - f * P[:, 1] / z], 1)


def _project_jacobian(xp, P, dP, f):
    """d pixels / d params (n, 2, c) from camera-frame points (n, 3) and d points (n, 3, c)."""
    z = -P[:, 2]
    dz = -dP[:, 2]
    du = f / z[:, None] * dP[:, 0] - (f * P[:, 0] / z**2)[:, None] * dz
    dv = -f / z[:, None] * dP[:, 1] + (f * P[:, 1] / z**2)[:, None] * dz
    return xp.stack([du, dv], 1)


def _dense_weights(xp, indices, weights, n_bones):
    """Dense skinning weights (n, B) from per-vertex bone indices and weights (n, J)."""
    n = indices.shape[0]
    W = xp.zeros((n, n_bones))
    rows = xp.repeat(xp.arange(n), indices.shape[1])
    scatter_add(W, (rows, indices.reshape(-1)), weights.reshape(-1))
    return W


def _procrustes_derivative(xp, R, M0, dM_blend, coeffs, dcoeffs):
    """d R / d shape (B, 3, 3, S) for R = special_procrustes(M0 + sum_k c_k M_k).

    With M = R P (P symmetric) and dR = R [w]x, the skew part of R^T dM gives
    (tr(P) I - P) w = vee(R^T dM - dM^T R).
    """
    dM = xp.einsum("kbij,ks->bijs", dM_blend, dcoeffs)
    M = M0 + xp.tensordot(coeffs, dM_blend, axes=(0, 0))
    P = xp.swapaxes(R, -1, -2) @ M
    P = (P + xp.swapaxes(P, -1, -2)) / 2.0
    X = xp.einsum("bji,bjks->biks", R, dM)
    K = X - xp.swapaxes(X, 1, 2)
    vee = xp.stack([K[:, 2, 1], K[:, 0, 2], K[:, 1, 0]], 1)  # (B, 3, S)
    trace = P[:, 0, 0] + P[:, 1, 1] + P[:, 2, 2]
    Mw = trace[:, None, None] * xp.eye(3) - P
    w = xp.linalg.solve(Mw, vee)  # (B, 3, S)
    Wx = xp.zeros(w.shape[:1] + (3, 3) + w.shape[2:])
    Wx[:, 0, 1], Wx[:, 0, 2], Wx[:, 1, 2] = -w[:, 2], w[:, 1], -w[:, 0]
    Wx[:, 1, 0], Wx[:, 2, 0], Wx[:, 2, 1] = w[:, 2], -w[:, 1], w[:, 0]
    return xp.einsum("bij,bjks->biks", R, Wx)


def _huber_weights(xp, magnitude, k):
    """IRLS weights of the Huber loss for residual magnitudes (n,) with threshold k."""
    return xp.where(magnitude <= k, 1.0, k / xp.maximum(magnitude, 1e-12))


def _cauchy_weights(xp, residual, scale):
    """IRLS weights of the Cauchy loss for residuals (n,) with scale `scale` (same units)."""
    return 1.0 / (1.0 + (residual / scale) ** 2)


def _sample_sdf(xp, sdf, uv):
    """Bilinear samples of a signed distance image (H, W) and its gradient at pixel positions (n, 2)."""
    sdf = xp.asarray(sdf)
    H, W = sdf.shape
    u = xp.clip(uv[:, 0], 0.0, W - 1.001)
    v = xp.clip(uv[:, 1], 0.0, H - 1.001)
    u0, v0 = xp.floor(u).astype(np.int64), xp.floor(v).astype(np.int64)
    fu, fv = u - u0, v - v0
    a, b = sdf[v0, u0], sdf[v0, u0 + 1]
    c, d = sdf[v0 + 1, u0], sdf[v0 + 1, u0 + 1]
    val = (a * (1 - fu) + b * fu) * (1 - fv) + (c * (1 - fu) + d * fu) * fv
    gu = (b - a) * (1 - fv) + (d - c) * fv
    gv = (c - a) * (1 - fu) + (d - b) * fu
    # Outside the image the distance keeps growing away from it.
    val = val + xp.abs(uv[:, 0] - u) + xp.abs(uv[:, 1] - v)
    return val.astype(np.float64), gu.astype(np.float64), gv.astype(np.float64)


def _rim_vertices(xp, X, faces, edges, view: ViewObservation, max_points: int):
    """Vertices on the visible outer contour of the posed body X (V, 3) seen from the camera.

    The contour generator of a triangle mesh is the set of its edges between a triangle facing
    the camera and one facing away (`edges`: vertices (E, 2) and triangles (E, 2) from
    `interior_edges`); their vertices project onto the body's outline, so at the true body their
    signed distance to the person's outline is zero. (Vertices whose normal is merely close to
    perpendicular to the ray lie up to several pixels inside the outline on a rounded torso and
    bias the silhouette term outward.) A contour vertex is kept when a short step outward (along
    its projected normal) leaves the body's own projected footprint, so contours hidden behind
    the body (an arm in front of the torso in a profile) are left out.
    """
    f = view.focal_px
    W, H = view.image_size
    tri = X[faces]
    fn = xp.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = vertex_normals(X, faces, fn)
    # The camera is at the origin: a triangle faces it when its normal points back along the ray.
    front = xp.sum(fn * tri.sum(1), 1) < 0
    edge_vertices, edge_faces = edges
    on_contour = xp.zeros(len(X), bool)
    on_contour[edge_vertices[front[edge_faces[:, 0]] != front[edge_faces[:, 1]]].reshape(-1)] = True
    z = -X[:, 2]
    uv = xp.stack([W / 2 + f * X[:, 0] / z, H / 2 - f * X[:, 1] / z], 1)
    # The body's footprint on a coarse grid (cells about an edge length of the mesh).
    cell = max(2.0, float(xp.median(xp.linalg.norm(uv[faces[:, 0]] - uv[faces[:, 1]], axis=1))) * 1.5)
    gw, gh = int(W / cell) + 3, int(H / cell) + 3
    occ = xp.zeros((gh, gw), bool)
    centres = (uv[faces[:, 0]] + uv[faces[:, 1]] + uv[faces[:, 2]]) / 3.0
    for pts in (uv, centres):
        gi = xp.clip((pts / cell).astype(np.int64) + 1, 0, xp.asarray([gw - 1, gh - 1]))
        occ[gi[:, 1], gi[:, 0]] = True
    # Projected outward normal: the normal's image-plane direction.
    n2 = xp.stack([normals[:, 0], -normals[:, 1]], 1)
    n2 = n2 / xp.maximum(xp.linalg.norm(n2, axis=1, keepdims=True), 1e-9)
    probe = uv + n2 * (1.6 * cell)
    gi = xp.clip((probe / cell).astype(np.int64) + 1, 0, xp.asarray([gw - 1, gh - 1]))
    outside = ~occ[gi[:, 1], gi[:, 0]]
    ids = to_numpy(xp.nonzero(on_contour & outside)[0])
    if len(ids) > max_points:
        ids = ids[np.linspace(0, len(ids) - 1, max_points).astype(np.int64)]
    return ids


def initial_placement(model: BodyModel, view: ViewObservation, height_m: float):
    """A first rotation (3, 3) and translation (3,) of the body from the keypoints' extent."""
    w = view.keypoint_weights > 0.3
    pts = view.keypoints_px[w]
    if len(pts) < 2:
        raise ValueError("too few keypoints to place the body")
    span_px = max(pts[:, 1].max() - pts[:, 1].min(), 1.0)
    # Nose to ankles is about 87 % of the stature.
    depth = view.focal_px * 0.87 * height_m / span_px
    centre = pts.mean(0)
    W, H = view.image_size
    x = (centre[0] - W / 2) * depth / view.focal_px
    y = -(centre[1] - H / 2) * depth / view.focal_px
    R = to_numpy(rotvec_to_matrix(np.array([0.0, view.facing, 0.0])))
    return R, np.array([x, y, -depth])


def fit_body(
    model: BodyModel,
    views: list[ViewObservation],
    height_m: float,
    gender: float | None = None,
    settings: FitSettings | None = None,
) -> FitResult:
    """Fits one shape and a pose per view to the observations (see the module docstring).

    height_m : the shopper's stature in metres. gender : 0 male, 1 female, None to fit it.
    """
    cfg = settings or FitSettings()
    n_ph = len(model.phenotype_labels)
    shape0 = mean_shape(model, 0.5 if gender is None else gender)
    free = [i for i, l in enumerate(model.phenotype_labels) if l != "gender" or gender is None]
    has_profile = any(abs(abs(v.facing) - np.pi / 2) < np.pi / 4 for v in views)
    fitted = [l for l in FITTED_LOCAL_CHANGES if has_profile or l not in DEPTH_LOCAL_CHANGES]
    free += [n_ph + model.local_change_labels.index(l) for l in fitted if l in model.local_change_labels]
    prior_pose = standing_pose(model, shape=shape0)
    problem = _Problem(model, views, height_m, cfg, free, shape0, prior_pose)
    state = dict(
        shape=shape0.copy(),
        poses=[to_numpy(prior_pose).copy() for _ in views],
        placements=[initial_placement(model, v, height_m) for v in views],
    )
    problem.select_rims(state, rims=False)
    lower = np.where(np.arange(model.n_shape) < n_ph, 0.0, -1.0)
    upper = np.ones(model.n_shape)

    iterations = 0
    converged = False
    for phase, n_iter in (("pose", cfg.pose_iterations), ("full", cfg.full_iterations)):
        problem.set_phase(phase)
        lam = 1e-3
        for it in range(n_iter):
            if problem.use_silhouette and it % 3 == 0:
                problem.select_rims(state)
            r, J = problem.residuals(state, jacobian=True)
            cost = float(r @ r)
            JtJ = J.T @ J
            g = J.T @ r
            improved = False
            for _ in range(6):
                A = JtJ + lam * (np.diag(np.diag(JtJ)) + 1e-6 * np.eye(len(g)))
                step = -np.linalg.solve(A, g)
                trial = _apply_step(problem, state, step, lower, upper)
                r_new, _ = problem.residuals(trial, jacobian=False)
                new_cost = float(r_new @ r_new)
                if new_cost < cost:
                    improved = True
                    state = trial
                    lam = max(lam / 3.0, 1e-7)
                    break
                lam *= 4.0
            iterations += 1
            if not improved or (cost - new_cost) / max(cost, 1e-12) < cfg.tolerance:
                converged = True
                break
    kp_err, sil_err = problem.stats(state)
    return FitResult(
        shape=state["shape"],
        poses=state["poses"],
        placements=state["placements"],
        keypoint_residual_px=kp_err,
        silhouette_residual_px=sil_err,
        iterations=iterations,
        converged=converged,
    )


def _apply_step(problem: _Problem, state, step, lower, upper):
    """The state after a parameter step: shape added and clipped, rotations composed on the left."""
    n_shape, per_view, _ = problem.layout()
    shape = state["shape"].copy()
    shape[problem.free_shape] += step[:n_shape]
    shape = np.clip(shape, lower, upper)
    poses, placements = [], []
    for v in range(len(problem.views)):
        s = step[n_shape + v * per_view : n_shape + (v + 1) * per_view]
        R, t = state["placements"][v]
        dR = to_numpy(rotvec_to_matrix(s[:3]))
        placements.append((dR @ R, t + s[3:6]))
        pose = state["poses"][v].copy()
        dB = to_numpy(rotvec_to_matrix(s[6:].reshape(-1, 3)))
        pose[problem.bones] = dB @ pose[problem.bones]
        poses.append(pose)
    return dict(shape=shape, poses=poses, placements=placements)
