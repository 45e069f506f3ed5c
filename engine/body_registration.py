"""Registers the body model to any body mesh: Anny's shape, pose and placement fitted to a surface.

A brand's body (from CLO, Marvelous Designer, a scan) comes in its own topology. To carry a
garment in body-relative coordinates (`engine.garment_refit`) fitroom needs that body in Anny's
topology, so Anny is fitted to the mesh and the fitted Anny body stands in for it.

Cost: a symmetric point-to-surface distance, both directions as point-to-plane rows (which
converge in a few Gauss-Newton steps where point-to-point ICP crawls along the surface):

- model -> target: a fixed, surface-uniform subset of Anny's vertices against their closest points
  on the target (the target's normal there);
- target -> model: area-uniform samples of the target against their closest points on the posed
  model (a triangle and barycentric coordinates, so the row moves with the triangle's vertices);
- each row carries a Cauchy weight on its point-to-point distance and is dropped where the two
  surfaces' normals disagree (an arm's front against the torso's side), so outliers fade;
- weak priors: shape towards the mean, bone rotations towards the reference pose.

Correspondences are recomputed every iteration (`SurfaceQuery`), and each iteration is one
Levenberg-Marquardt step with the correspondences fixed. The Jacobians are body_fit's analytic
ones (`engine.body_fit.BodyJacobians`: shape through blendshapes, bone heads and the kinematic
chain; a left increment per fitted bone; a global rotation and translation).

Frame: the target is in fitroom's world frame (metres, +Y up, facing +Z). The start stands the
mean body on the target's floor, at its centroid, at its height, and tries a few arm angles
(Anny's A-pose, arms down, a T-pose), keeping the one whose surfaces are closest.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from engine.backend import to_numpy
from engine.body_fit import BONE_PRIOR_RAD, DEFAULT_BONE_PRIOR_RAD, FITTED_BONES, FITTED_LOCAL_CHANGES
from engine.body_fit import BodyJacobians, _align, _cauchy_weights, mean_shape
from engine.body_model import BodyModel, body_vertices, forward_kinematics, identity_pose, rest_shape
from engine.body_model import shape_coefficients, skin
from engine.mesh_queries import SurfaceQuery, face_normals
from engine.rotations import left_jacobian_inverse, matrix_to_rotvec, rotvec_to_matrix

# Fitted bones: body_fit's (spine, neck, shoulders, arms, legs, feet) plus the head and wrists,
# which a brand's body holds in its own way.
REGISTERED_BONES = FITTED_BONES + ("head", "wrist.L", "wrist.R")
# Arm angles from the vertical tried at the start (degrees; None: Anny's reference A-pose, 43 deg),
# each facing +Z and -Z (a body exported facing away).
START_ARM_ANGLES = (None, 15.0, 88.0)
START_YAWS_DEG = (0.0, 180.0)


@dataclasses.dataclass(frozen=True)
class RegistrationSettings:
    """Weights, robust scales and sampling of the registration (lengths in metres)."""

    iterations: int = 18
    model_points: int = 2500  # Anny vertices in the model -> target rows
    target_points: int = 2500  # target samples in the target -> model rows
    sigma_m: float = 0.003  # one standard deviation of a point-to-plane row
    rows_weight: float = 600.0  # the data terms count as this many rows each (sum of weights normalised)
    cauchy_start_m: float = 0.03  # Cauchy scale at the start, halved each iteration down to
    cauchy_end_m: float = 0.006
    normal_agreement: float = 0.2  # rows whose normals' dot product is below this are dropped
    phenotype_sigma: float = 1.0
    local_change_sigma: float = 0.5
    bone_prior_scale: float = 2.0  # body_fit's bone prior widths, times this
    max_edge_m: float = 0.025  # target edges longer than this are split (closest points need a fine mesh)
    stat_samples: int = 20000  # target samples for the reported residuals
    tolerance: float = 1e-4
    # Stop early when, after this many iterations, the median model -> target distance is still
    # above `hopeless_m`: bodies are at 1-3 mm by then, non-bodies at 10-90 mm (docs/cloth.md).
    hopeless_after: int = 6
    hopeless_m: float = 0.008


@dataclasses.dataclass
class Registration:
    """A fitted body.

    vertices : (V, 3) float64, the fitted Anny body (model topology) in the target's frame, metres.
    shape : (S,) shape vector; pose : (B, 3, 3) bone deltas; rotation (3, 3), translation (3,):
        vertices = skin(shape, pose) @ rotation.T + translation.
    residual_mm : {"target_to_model": {"mean", "p95"}, "model_to_target": {"mean", "p95"}} in mm
        (each over area-uniform samples of one surface; the model's is its outer skin).
    iterations, seconds : the work done.
    """

    vertices: np.ndarray
    shape: np.ndarray
    pose: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    residual_mm: dict
    iterations: int
    seconds: float

    @property
    def p95_mm(self) -> float:
        """The worse of the two directions' 95th percentile distances (mm)."""
        return max(self.residual_mm["target_to_model"]["p95"], self.residual_mm["model_to_target"]["p95"])


def sample_surface(vertices, faces, n: int, seed: int = 0):
    """Area-uniform points on a triangle mesh: points (n, 3), face (n,), barycentric (n, 3)."""
    v, f = np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    area = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    rng = np.random.default_rng(seed)
    face = rng.choice(len(f), size=n, p=area / area.sum())
    a, b = rng.random(n), rng.random(n)
    flip = a + b > 1.0
    a[flip], b[flip] = 1.0 - a[flip], 1.0 - b[flip]
    bary = np.stack([1.0 - a - b, a, b], 1)
    return np.einsum("nk,nkd->nd", bary, v[f[face]]), face, bary


def split_long_edges(vertices, faces, max_edge: float):
    """The mesh with every edge longer than `max_edge` split (trimesh), so that a closest-point
    query near a vertex sees the right triangles. Returns (vertices (n, 3), faces (m, 3))."""
    import trimesh.remesh

    v, f = np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    e = np.linalg.norm(v[f[:, [1, 2, 0]]] - v[f], axis=2)
    if e.max(initial=0.0) <= max_edge:
        return v, f
    v, f = trimesh.remesh.subdivide_to_size(v, f, max_edge=max_edge, max_iter=12)
    return np.asarray(v, np.float64), np.asarray(f, np.int64)


def skin_faces(model: BodyModel) -> np.ndarray:
    """The model's outer skin: a boolean mask (F,) of the triangles of its largest connected
    component (Anny also has eyeballs and, inside the head, the mouth: a body mesh from elsewhere
    has its own or none, so they are left out of the model -> target distances)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = to_numpy(model.faces).astype(np.int64)
    n = model.n_vertices
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]]])
    _, label = connected_components(coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)), directed=False)
    return label[f[:, 0]] == np.argmax(np.bincount(label))


def _nearest(points, query: SurfaceQuery):
    """Nearest mesh vertex (P,) int of each point. On the host a k-d tree: a registration meets
    points far from the surface (a poor start, a mesh that is no body), where the grid search of
    `SurfaceQuery.nearest_vertices` widens its radius and slows down by orders of magnitude."""
    if query.xp is not np:
        return query.nearest_vertices(points)
    from scipy.spatial import cKDTree

    tree = getattr(query, "_registration_tree", None)
    if tree is None or tree[0] is not query.vertices:
        tree = (query.vertices, cKDTree(query.vertices))
        query._registration_tree = tree
    return tree[1].query(points)[1].astype(np.int64)


def _distances(points, query: SurfaceQuery):
    """Unsigned distances (P,) of points to a surface, with the closest point (P, 3), the surface
    normal there (P, 3), its face (P,) and barycentric coordinates (P, 3)."""
    nearest = query.walk(points, _nearest(points, query))
    q, n, _, face, bary = query.closest(points, nearest)
    return np.linalg.norm(points - q, axis=1), q, n, face, bary


def _stats_mm(d) -> dict:
    d = np.asarray(d) * 1000.0
    return {"mean": round(float(d.mean()), 2), "p95": round(float(np.percentile(d, 95)), 2)}


def _arm_pose(model: BodyModel, shape, angle_deg):
    """Reference pose with both upper arms turned to `angle_deg` from the vertical (None: as is)."""
    pose = to_numpy(identity_pose(model)).copy()
    if angle_deg is None:
        return pose
    rest = rest_shape(model, shape_coefficients(model, shape), vertex_ids=model.xp.arange(1))
    heads = to_numpy(rest.heads)
    a = np.deg2rad(angle_deg)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        upper, lower = model.bone(f"upperarm01.{side}"), model.bone(f"lowerarm01.{side}")
        d = heads[lower] - heads[upper]
        d /= np.linalg.norm(d)
        pose[upper] = _align(d, np.array([sign * np.sin(a), -np.cos(a), 0.0]))
    return pose


class _Fit:
    """The registration problem: state, correspondences, rows; see the module docstring."""

    def __init__(self, model: BodyModel, target_v, target_f, cfg: RegistrationSettings, free_shape, shape0):
        self.model, self.cfg = model, cfg
        self.faces = to_numpy(model.faces).astype(np.int64)
        self.target = SurfaceQuery(target_v, target_f)
        self.free = np.asarray(free_shape)
        self.shape0 = shape0
        self.body = BodyJacobians(model, REGISTERED_BONES)
        self.bones = self.body.bones
        self.bone_sigma = cfg.bone_prior_scale * np.array(
            [BONE_PRIOR_RAD.get(b, DEFAULT_BONE_PRIOR_RAD) for b in REGISTERED_BONES]
        )
        n_ph = len(model.phenotype_labels)
        self.shape_sigma = np.where(self.free < n_ph, cfg.phenotype_sigma, cfg.local_change_sigma)
        self.lower = np.where(np.arange(model.n_shape) < n_ph, 0.0, -1.0)
        self.skin_faces = self.faces[skin_faces(model)]
        # Surface-uniform model vertices: one per cell of a grid sized for the wanted count.
        self.model_ids = self._uniform_vertices(cfg.model_points)
        self.samples, sface, sbary = sample_surface(target_v, target_f, cfg.target_points, seed=1)
        tn = face_normals(np.asarray(target_v, np.float64), np.asarray(target_f))
        self.sample_normals = tn[sface]
        self.model_query = None

    def _uniform_vertices(self, n: int):
        v = to_numpy(body_vertices(self.model, self.shape0)).astype(np.float64)
        f = self.skin_faces
        area = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1).sum() / 2.0
        cell = np.sqrt(area / n)
        ids = np.unique(f)
        key = np.floor((v[ids] - v.min(0)) / cell).astype(np.int64)
        _, first = np.unique(key, axis=0, return_index=True)
        return np.sort(ids[first])

    def vertices(self, state):
        """All posed, placed model vertices (V, 3) float64."""
        m = self.model
        rest = rest_shape(m, shape_coefficients(m, state["shape"]))
        posed = forward_kinematics(m, rest, m.xp.asarray(state["pose"]), m.xp.zeros(3))
        x = to_numpy(skin(m, rest.vertices, posed)).astype(np.float64)
        return x @ state["R"].T + state["t"]

    def correspond(self, X, scale: float):
        """Correspondences at the model vertices X (V, 3): the rows' fixed data for this iteration."""
        cfg = self.cfg
        if self.model_query is None:
            self.model_query = SurfaceQuery(X, self.faces)
        else:
            self.model_query.reset(X)
        # model -> target
        pm = X[self.model_ids]
        d1, q1, n1, _, _ = _distances(pm, self.target)
        agree1 = (self.model_query.normals[self.model_ids] * n1).sum(1) > cfg.normal_agreement
        w1 = _cauchy_weights(np, d1, scale) * agree1
        # target -> model
        d2, _, n2m, face2, bary2 = _distances(self.samples, self.model_query)
        agree2 = (n2m * self.sample_normals).sum(1) > cfg.normal_agreement
        w2 = _cauchy_weights(np, d2, scale) * agree2
        return dict(q1=q1, n1=n1, w1=w1, d1=d1, fv2=self.faces[face2], bary2=bary2, w2=w2)

    def rows(self, state, c, jacobian: bool):
        """Residuals (and Jacobian) of the data rows and priors with correspondences `c` fixed."""
        m, cfg = self.model, self.cfg
        xp = m.xp
        ids = np.unique(np.concatenate([self.model_ids, c["fv2"].reshape(-1)]))
        where = np.searchsorted(ids, self.model_ids)
        where2 = np.searchsorted(ids, c["fv2"])
        coeffs, dcoeffs = shape_coefficients(m, state["shape"], jacobian=True)
        dcoeffs = dcoeffs[:, self.free]
        X, dX = self.body.vertices(coeffs, dcoeffs, state["pose"], (state["R"], state["t"]), ids, jacobian)
        X = to_numpy(X)
        s1 = np.sqrt(c["w1"] / max(c["w1"].sum(), 1e-9) * cfg.rows_weight) / cfg.sigma_m
        s2 = np.sqrt(c["w2"] / max(c["w2"].sum(), 1e-9) * cfg.rows_weight) / cfg.sigma_m
        r1 = ((X[where] - c["q1"]) * c["n1"]).sum(1) * s1
        y2 = np.einsum("nk,nkd->nd", c["bary2"], X[where2])
        r2 = ((y2 - self.samples) * self.sample_normals).sum(1) * s2
        rs = (state["shape"][self.free] - self.shape0[self.free]) / self.shape_sigma
        rv = to_numpy(matrix_to_rotvec(xp.asarray(state["pose"][self.bones])))
        rb = (rv / self.bone_sigma[:, None]).reshape(-1)
        r = np.concatenate([r1, r2, rs, rb])
        if not jacobian:
            return r, None
        dX = to_numpy(dX)
        J1 = np.einsum("nd,ndp->np", c["n1"], dX[where]) * s1[:, None]
        dy = np.einsum("nk,nkdp->ndp", c["bary2"], dX[where2])
        J2 = np.einsum("nd,ndp->np", self.sample_normals, dy) * s2[:, None]
        n_shape, n_par = len(self.free), dX.shape[2]
        Js = np.zeros((n_shape, n_par))
        Js[:, :n_shape] = np.diag(1.0 / self.shape_sigma)
        Jb = np.zeros((rb.size, n_par))
        Jl = to_numpy(left_jacobian_inverse(xp.asarray(rv))) / self.bone_sigma[:, None, None]
        for k in range(len(self.bones)):
            Jb[3 * k : 3 * k + 3, n_shape + 6 + 3 * k : n_shape + 9 + 3 * k] = Jl[k]
        return r, np.concatenate([J1, J2, Js, Jb])

    def step(self, state, delta):
        """The state after a parameter step: shape added and clipped, rotations composed on the left."""
        n = len(self.free)
        shape = state["shape"].copy()
        shape[self.free] = np.clip(shape[self.free] + delta[:n], self.lower[self.free], 1.0)
        pose = state["pose"].copy()
        bones = self.bones
        pose[bones] = to_numpy(rotvec_to_matrix(delta[n + 6 :].reshape(-1, 3))) @ pose[bones]
        dR = to_numpy(rotvec_to_matrix(delta[n : n + 3]))
        # The rotation column is -skew(X - t): a turn about the current translation.
        return dict(shape=shape, pose=pose, R=dR @ state["R"], t=state["t"] + delta[n + 3 : n + 6])


def _chamfer(X, fit: _Fit) -> float:
    """Mean of the two directions' mean distances (m): how well a start lines up."""
    c = fit.correspond(X, 1.0)
    d1 = np.linalg.norm(X[fit.model_ids] - c["q1"], axis=1)
    y2 = np.einsum("nk,nkd->nd", c["bary2"], X[c["fv2"]])
    d2 = np.linalg.norm(y2 - fit.samples, axis=1)
    return float(d1.mean() + d2.mean()) / 2.0


def _start(model: BodyModel, fit: _Fit, target_v, target_f, shape0):
    """The initial state: height, floor, centroid, and the best of `START_ARM_ANGLES`."""
    hi = model.phenotype_labels.index("height")
    tv = np.asarray(target_v, np.float64)
    t_height = tv[:, 1].max() - tv[:, 1].min()
    t_centre = sample_surface(tv, target_f, 4000, seed=2)[0].mean(0)
    shape = shape0.copy()
    # Height: the reference-pose stature is monotonic in the height phenotype; a few secant steps.
    lo, up = 0.0, 1.0

    def stature(h):
        s = shape.copy()
        s[hi] = h
        v = to_numpy(body_vertices(model, s))
        return float(v[:, 1].max() - v[:, 1].min())

    s_lo, s_up = stature(lo), stature(up)
    for _ in range(6):
        if t_height <= s_lo or t_height >= s_up:
            break
        mid = lo + (t_height - s_lo) / (s_up - s_lo) * (up - lo)
        s_mid = stature(mid)
        if abs(s_mid - t_height) < 0.002:
            lo = up = mid
            break
        if s_mid < t_height:
            lo, s_lo = mid, s_mid
        else:
            up, s_up = mid, s_mid
    shape[hi] = np.clip((lo + up) / 2.0 if lo != up else lo, 0.0, 1.0)
    best = None
    for angle in START_ARM_ANGLES:
        pose = _arm_pose(model, shape, angle)
        for yaw in START_YAWS_DEG:
            R = to_numpy(rotvec_to_matrix(np.array([0.0, np.deg2rad(yaw), 0.0])))
            state = dict(shape=shape.copy(), pose=pose.copy(), R=R, t=np.zeros(3))
            X = fit.vertices(state)
            centre = sample_surface(X, fit.faces, 4000, seed=2)[0].mean(0)
            state["t"] = np.array([t_centre[0] - centre[0], tv[:, 1].min() - X[:, 1].min(), t_centre[2] - centre[2]])
            score = _chamfer(X + state["t"], fit)
            if best is None or score < best[0]:
                best = (score, state)
    return best[1]


def register_body(model: BodyModel, vertices, faces, sex_hint: str | None = None, iterations: int | None = None,
                  settings: RegistrationSettings | None = None) -> Registration:
    """Fits Anny (shape, pose of `REGISTERED_BONES`, rotation, translation) to a body mesh.

    Parameters
    ----------
    model : BodyModel (NumPy or CuPy; the loop runs on the host)
    vertices : (N, 3) float, the target body in the world frame (metres, +Y up, facing +Z)
    faces : (F, 3) int, its triangles (any topology; long edges are split first)
    sex_hint : "female", "male" or None (gender fitted)
    iterations : Levenberg-Marquardt iterations (default `settings.iterations`)

    Returns
    -------
    Registration, with the fitted Anny vertices (V, 3) and the residuals in mm.
    """
    start_time = time.perf_counter()
    cfg = settings or RegistrationSettings()
    n_iter = cfg.iterations if iterations is None else int(iterations)
    tv, tf = split_long_edges(to_numpy(vertices), to_numpy(faces), cfg.max_edge_m)
    gender = {"female": 1.0, "male": 0.0}.get(sex_hint or "", 0.5)
    shape0 = mean_shape(model, gender)
    n_ph = len(model.phenotype_labels)
    free = [i for i, label in enumerate(model.phenotype_labels) if label != "gender" or sex_hint is None]
    free += [n_ph + model.local_change_labels.index(label) for label in FITTED_LOCAL_CHANGES
             if label in model.local_change_labels]
    fit = _Fit(model, tv, tf, cfg, free, shape0)
    state = _start(model, fit, tv, tf, shape0)
    lam = 1e-3
    scale = cfg.cauchy_start_m
    done = 0
    for it in range(n_iter):
        c = fit.correspond(fit.vertices(state), scale)
        r, J = fit.rows(state, c, jacobian=True)
        cost = float(r @ r)
        JtJ, g = J.T @ J, J.T @ r
        improved = False
        for _ in range(6):
            A = JtJ + lam * (np.diag(np.diag(JtJ)) + 1e-6 * np.eye(len(g)))
            trial = fit.step(state, -np.linalg.solve(A, g))
            new_cost = float(np.sum(fit.rows(trial, c, jacobian=False)[0] ** 2))
            if new_cost < cost:
                improved, state = True, trial
                lam = max(lam / 3.0, 1e-7)
                break
            lam *= 4.0
        done = it + 1
        if it >= cfg.hopeless_after and float(np.median(c["d1"])) > cfg.hopeless_m:
            break  # no body: it will not come within reach (see `hopeless_m`)
        at_floor = scale <= cfg.cauchy_end_m
        scale = max(scale / 2.0, cfg.cauchy_end_m)
        if at_floor and (not improved or (cost - new_cost) / max(cost, 1e-12) < cfg.tolerance):
            break
    X = fit.vertices(state)
    fit.model_query.reset(X)
    stats_pts = sample_surface(tv, tf, cfg.stat_samples, seed=3)[0]
    d_tm = _distances(stats_pts, fit.model_query)[0]
    d_mt = _distances(sample_surface(X, fit.skin_faces, cfg.stat_samples, seed=4)[0], fit.target)[0]
    residual = {"target_to_model": _stats_mm(d_tm), "model_to_target": _stats_mm(d_mt)}
    return Registration(vertices=X, shape=state["shape"], pose=state["pose"], rotation=state["R"], translation=state["t"],
                        residual_mm=residual, iterations=done, seconds=time.perf_counter() - start_time)
