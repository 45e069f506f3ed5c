"""Procedural garments graded on the reference bodies: t-shirt, long-sleeve shirt, dress, skirt, trousers.

Method
------
Each garment is built round the reference body of its size and sex (`reference_body`) from a few
structured pieces whose boundary vertices are shared along seams, so the result is one welded,
edge-manifold mesh of good triangles (split quads) whose density is chosen for `target_vertices`.

- The torso envelope E: at each height, the convex hull of the body's horizontal section (a tape
  bridges hollows, and so does cloth: the cleavage, the small of the back, the gap between the
  thighs) offset outward by r(y). The offset is a Minkowski sum with a disc, whose perimeter is the
  hull's plus 2 pi r, so r sets the garment's girth exactly and keeps it r off the body at that
  height. Below the hip a skirt's or top's hull is cumulative (the union of the sections from the
  hip down): cloth hangs from the seat instead of following the thighs in. A top's hull is also
  bridged over 5 cm of height between waist and chest (the fold under the bust). Arms are left
  out; above a top's underarm the section is clipped to the slab |x| <= x_arm(y) between the
  armholes (taking in the arm where it comes near the torso, so the envelope passes round it).
- Rings: horizontal loops of E sampled by arc length (the torso of every garment, skirts).
- Yokes: the front and the back of a top above the underarm, each a Coons patch between the
  armhole (where E crosses the armhole slab's side), the shoulder seams (on the top of the
  shoulder) and the neckline, evened out by arc length and projected onto E up the chest and
  back; above the shoulder point onto the body offset by 7 mm along its normal (horizontal rays
  meet E ill-conditioned on the tops of the shoulders, and the patch's own blend of its boundary
  stood 4-7 cm off the collarbones beside a deep front neckline).
- Limbs: rings of offset convex hulls of a limb's sections (planes perpendicular to the arm's bone
  axis; horizontal for legs). A sleeve's cap is lofted from its armhole in the arm's cylindrical
  coordinates; trouser legs hang from a pants junction (a bridge of vertices from the front to the
  back centre is the shared side of both legs' first loops).
- Last passes push any vertex closer than 4.5 mm to the body out along the body's normal (the
  tops of the shoulders, which a horizontal offset clears only by r times their slope), flip the
  odd sliver's edge, smooth out any local fold where pieces meet at fine resolutions, and merge
  the ends of needles (a 1.5 mm edge beside 13 mm ones, where grid rows meet the neckline or an
  armhole at a grazing angle; `engine.cloth_topology.collapse_needles`).

Girths are the tape girths of the garment round its torso at the body's waist and hip levels
(see `garment_girths`). A top's chest is taken where garments' chests are measured, 2 cm below
its underarm: the underarm lies 5-9 cm below the body's chest level, because a top with ease
cannot pass between arm and torso at the chest (0.5-2.5 cm apart on the reference bodies, less
than its ease plus 4 mm of clearance on both sides), so at the body's chest level the section runs
round torso and sleeves together.
"""

from __future__ import annotations

import dataclasses
import weakref

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from assets.garment import Garment
from assets.garment_chart import GARMENT_KINDS, garment_measurements
from avatar.size_chart import size_measurements
from avatar.body_model_data import save_arrays
from engine.backend import to_numpy
from engine.body_model import BodyModel
from engine.cloth_topology import collapse_needles
from engine.mesh_queries import SurfaceQuery
from engine.sections import convex_hull_2d, horizontal_sections, plane_sections, polygon_perimeter
from fitroom.errors import FitroomError
from fitroom.settings import get_settings

__all__ = ["reference_body", "procedural_garment", "garment_girths"]

N_DIR = 256  # support directions of a section's hull
N_POLAR = 720  # polar samples of an envelope contour
R_MIN = 0.0055  # m, least horizontal offset of a ring from the body's hull
R_TOP = 0.007  # m, offset on the shoulders and round the neck
CLEARANCE = 0.0045  # m, the final pass pushes every vertex at least this far off the body
ARM_BONES = ("upperarm", "lowerarm", "wrist", "finger", "metacarpal")

# ---------------------------------------------------------------------------------------------
# Reference bodies
# ---------------------------------------------------------------------------------------------

_BODIES: dict = {}


def _normalised(size: str, sex: str) -> str:
    size_measurements(size, sex)  # raises bad_size / bad_sex
    return size.strip().upper()


def reference_body(model: BodyModel, size: str, sex: str) -> tuple[np.ndarray, np.ndarray]:
    """The reference body of a chart size: shape (S,) and rest vertices (V, 3) float64, metres.

    Solved once (`avatar.reference_body.solve_shape`, seconds), then cached in the process and in
    the data directory (`reference_bodies/{sex}_{size}.npz`).
    """
    from avatar.reference_body import rest_body, solve_shape

    size = _normalised(size, sex)
    key = (id(model), sex, size)
    hit = _BODIES.get(key)
    if hit is not None and hit[0]() is model:
        return hit[1], hit[2]
    path = get_settings().data_dir / "reference_bodies" / f"{sex}_{size}.npz"
    shape = vertices = None
    if path.exists():
        try:
            with np.load(path) as z:
                shape, vertices = np.asarray(z["shape"], np.float64), np.asarray(z["vertices"], np.float64)
        except (OSError, KeyError, ValueError):
            shape = None
        if shape is not None and (shape.shape != (model.n_shape,) or vertices.shape != (model.n_vertices, 3)):
            shape = None  # written for another body model
    if shape is None:
        shape, _ = solve_shape(model, size_measurements(size, sex), gender=1.0 if sex == "female" else 0.0)
        vertices = rest_body(model, shape)
        save_arrays({"shape": shape, "vertices": vertices}, path)
    _BODIES[key] = (weakref.ref(model), shape, vertices)
    return shape, vertices


# ---------------------------------------------------------------------------------------------
# The body: parts, joints, levels and distances
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Body:
    """A reference body prepared for building garments (all metres, host arrays)."""

    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    surface: SurfaceQuery  # closest points on the body
    arm: np.ndarray  # (F,) int: +1 left arm, -1 right arm, 0 elsewhere
    joints: dict  # bone label -> (3,) head position
    levels: dict  # chest, waist, hip, crotch heights (m)
    neck: np.ndarray  # (k, 3) the neck-base loop
    acromion_x: float


_CONTEXTS: dict = {}


def _face_arm_side(model: BodyModel, faces: np.ndarray) -> np.ndarray:
    """(F,) +1 / -1 for faces of the left / right arm (by their vertices' dominant bones), else 0."""
    w = to_numpy(model.bone_weights)
    idx = to_numpy(model.bone_indices)
    dominant = idx[np.arange(len(idx)), np.argmax(w, axis=1)]
    side = np.zeros(len(model.bone_labels), np.int8)
    for b, label in enumerate(model.bone_labels):
        if label.startswith(ARM_BONES):
            side[b] = 1 if label.endswith(".L") else -1
    vs = side[dominant][faces]  # (F, 3)
    votes = vs.astype(np.int64).sum(axis=1)
    return np.where(votes >= 2, 1, np.where(votes <= -2, -1, 0)).astype(np.int8)


def _joints(model: BodyModel, shape: np.ndarray) -> dict:
    """Bone heads (3,) of the rest-posed body, standing on the floor like `rest_body`."""
    from engine.body_model import body_vertices, forward_kinematics, identity_pose, rest_shape, shape_coefficients

    rest = rest_shape(model, shape_coefficients(model, shape))
    posed = forward_kinematics(model, rest, identity_pose(model), model.xp.zeros(3))
    heads = to_numpy(posed.heads).astype(np.float64)
    floor = float(to_numpy(body_vertices(model, shape))[:, 1].min())
    heads[:, 1] -= floor
    return {label: heads[i] for i, label in enumerate(model.bone_labels)}


def _body_context(model: BodyModel, size: str, sex: str) -> _Body:
    """The prepared reference body of a size (cached per model, size and sex)."""
    from avatar.measurements import body_landmarks, measure_body

    key = (id(model), sex, size)
    hit = _CONTEXTS.get(key)
    if hit is not None and hit[0]() is model:
        return hit[1]
    shape, v = reference_body(model, size, sex)
    faces = to_numpy(model.faces).astype(np.int64)
    m = measure_body(v, model)
    lm = body_landmarks(model)
    body = _Body(
        vertices=v,
        faces=faces,
        surface=SurfaceQuery(v, faces),
        arm=_face_arm_side(model, faces),
        joints=_joints(model, shape),
        levels={
            "chest": m["chest_height_cm"] / 100.0,
            "waist": m["waist_height_cm"] / 100.0,
            "hip": m["hip_height_cm"] / 100.0,
            "crotch": m["inseam_cm"] / 100.0,
        },
        neck=v[lm.neck],
        acromion_x=float(abs(v[lm.acromion_left, 0])),
    )
    _CONTEXTS[key] = (weakref.ref(model), body)
    return body


def _body_distance(body: _Body, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed distances (n,) of points (n, 3) to the body surface (> 0 outside) and unit
    directions (n, 3) pointing away from the body (from the closest point, or the surface normal
    there for a point on the surface)."""
    points = np.asarray(points, np.float64)
    q = body.surface
    closest, normal, signed, _, _ = q.closest(points, q.walk(points, q.nearest_vertices(points)))
    dist = np.abs(signed)
    away = (points - closest) / np.maximum(dist, 1e-30)[:, None] * np.where(signed < 0, -1.0, 1.0)[:, None]
    return signed, np.where(dist[:, None] > 1e-7, away, normal)


def _push_out(body: _Body, points: np.ndarray, clearance: float, mask=None, rounds: int = 4) -> np.ndarray:
    """Points (n, 3) moved out along the body's normal until at least `clearance` (m) off it."""
    p = np.array(points, np.float64)
    todo = np.ones(len(p), bool) if mask is None else np.asarray(mask, bool).copy()
    for _ in range(rounds):
        ids = np.nonzero(todo)[0]
        if len(ids) == 0:
            break
        d, direction = _body_distance(body, p[ids])
        short = d < clearance
        ids, d, direction = ids[short], d[short], direction[short]
        p[ids] += direction * (clearance - d + 2e-4)[:, None]
        todo[:] = False
        todo[ids] = True
    return p


# ---------------------------------------------------------------------------------------------
# Sections, hulls and envelopes
# ---------------------------------------------------------------------------------------------

_THETA = (np.arange(N_DIR) + 0.5) * (2.0 * np.pi / N_DIR)
_DIRS = np.stack([np.sin(_THETA), np.cos(_THETA)])  # (2, D) unit directions in (x, z), 0 = +z
_PHI = -np.pi + (np.arange(N_POLAR) + 0.5) * (2.0 * np.pi / N_POLAR)


def _clip_segments(seg: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Segments (s, 2, 2) cut to lo <= x <= hi (per segment bounds (s,)); returns the kept part and mask."""
    a, b = seg[:, 0], seg[:, 1]
    dx = b[:, 0] - a[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_hi = (hi - a[:, 0]) / dx
        t_lo = (lo - a[:, 0]) / dx
    up = dx > 0
    flat = dx == 0
    t0 = np.where(up, t_lo, np.where(flat, 0.0, t_hi))
    t1 = np.where(up, t_hi, np.where(flat, 1.0, t_lo))
    t0 = np.maximum(np.nan_to_num(t0, nan=0.0, posinf=np.inf, neginf=-np.inf), 0.0)
    t1 = np.minimum(np.nan_to_num(t1, nan=1.0, posinf=np.inf, neginf=-np.inf), 1.0)
    keep = t0 <= t1
    keep &= ~flat | ((a[:, 0] >= lo) & (a[:, 0] <= hi))
    p0 = a + (b - a) * t0[:, None]
    p1 = a + (b - a) * t1[:, None]
    return np.stack([p0, p1], axis=1)[keep], keep


def _supports(points_by_level: list) -> tuple[np.ndarray, np.ndarray]:
    """Support values (L, D) and support points (L, D, 2) of 2D point sets, one per level."""
    L = len(points_by_level)
    h = np.full((L, N_DIR), -np.inf)
    P = np.zeros((L, N_DIR, 2))
    cols = np.arange(N_DIR)
    for i, q in enumerate(points_by_level):
        if len(q) == 0:
            continue
        proj = q @ _DIRS
        j = np.argmax(proj, axis=0)
        h[i] = proj[j, cols]
        P[i] = q[j]
    return h, P


def _raw_sections(body: _Body, heights, face_mask) -> tuple[np.ndarray, np.ndarray]:
    """Segments (s, 2, 2) (x, z) of the body's horizontal sections (faces `face_mask`), sorted by
    level, and their levels (s,)."""
    sec = horizontal_sections(body.vertices, body.faces[face_mask], np.asarray(heights, np.float64))
    lev = np.asarray(sec.level)
    order = np.argsort(lev, kind="stable")
    return np.asarray(sec.segments, np.float64)[order], lev[order]


def _level_points(seg: np.ndarray, lev: np.ndarray, n_levels: int, x_clip=None) -> list:
    """Per level, the (n, 2) points of sorted section segments, optionally cut to |x| <= x_clip
    (per level; the cut's end points are kept, so a hull includes the chord along the cut)."""
    if x_clip is not None:
        c = np.asarray(x_clip, np.float64)[lev]
        seg, keep = _clip_segments(seg, -c, c)
        lev = lev[keep]
    bounds = np.searchsorted(lev, np.arange(n_levels + 1))
    return [seg[bounds[i] : bounds[i + 1]].reshape(-1, 2) for i in range(n_levels)]


def _section_points(body: _Body, heights, face_mask, x_clip=None) -> list:
    """Per height, the (n, 2) (x, z) points of the body's section (see `_level_points`)."""
    seg, lev = _raw_sections(body, heights, face_mask)
    return _level_points(seg, lev, len(np.atleast_1d(heights)), x_clip)


def _dilate(h: np.ndarray, P: np.ndarray, heights: np.ndarray, window) -> tuple[np.ndarray, np.ndarray]:
    """Supports of the union of the sections within `window` (m, one or per level) above each
    level (ascending levels): cloth hangs over hollows shorter than the window, such as the
    fold under the bust."""
    h2, P2 = h.copy(), P.copy()
    ends = np.searchsorted(heights, heights + window, side="right")
    cols = np.arange(h.shape[1])
    for i, e in enumerate(ends):
        j = i + np.argmax(h[i:e], axis=0)
        h2[i], P2[i] = h[j, cols], P[j, cols]
    return h2, P2


def _hang(h: np.ndarray, P: np.ndarray, heights: np.ndarray, y_hang: float) -> None:
    """Makes the supports of levels below `y_hang` cumulative from the top down (in place):
    the hull of everything between `y_hang` and the level, as cloth hanging from there."""
    prev = None
    for i in np.argsort(-heights):  # top down
        if heights[i] <= y_hang + 1e-9 and prev is not None:
            better = h[prev] > h[i]
            h[i] = np.where(better, h[prev], h[i])
            P[i] = np.where(better[:, None], P[prev], P[i])
        prev = i


def _polar(Q: np.ndarray, centre: np.ndarray, phi: np.ndarray = _PHI) -> np.ndarray:
    """Radii (A,) of a convex polygon Q (D, 2), ordered by angle, along rays from `centre` at `phi`."""
    phi = (np.asarray(phi) + np.pi) % (2 * np.pi) - np.pi
    d = Q - centre
    ang = np.arctan2(d[:, 0], d[:, 1])
    order = np.argsort(ang)
    d, ang = d[order], ang[order]
    k = np.searchsorted(ang, phi) - 1  # edge from vertex k to k+1 (cyclic) holds the ray
    A, B = d[k % len(d)], d[(k + 1) % len(d)]
    u = np.stack([np.sin(phi), np.cos(phi)], axis=1)
    e = B - A
    cross = lambda p, q: p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        t = cross(A, e) / cross(u, e)
    fallback = np.linalg.norm(A, axis=1)
    return np.where(np.isfinite(t) & (t > 0), t, fallback)


class _Envelope:
    """A stack of convex contours round a vertical axis: polar radii (L, A) about centres (L, 2)
    (x, z) at ascending heights (L,); between heights the radii and centres are interpolated."""

    def __init__(self, heights, h, P, r):
        self.heights = np.asarray(heights, np.float64)
        self.h, self.P = h, P
        self.set_offsets(r)

    def set_offsets(self, r) -> None:
        """Offsets every level's hull by r (L,) metres."""
        self.r = np.asarray(r, np.float64)
        Q = self.P + self.r[:, None, None] * _DIRS.T[None]
        self.centres = Q.mean(axis=1)
        self.radius = np.stack([_polar(Q[i], self.centres[i]) for i in range(len(Q))])
        self.hull_perimeter = self.h.sum(axis=1) * (2.0 * np.pi / N_DIR)

    def _interp(self, y):
        y = np.clip(np.asarray(y, np.float64), self.heights[0], self.heights[-1])
        i = np.clip(np.searchsorted(self.heights, y) - 1, 0, len(self.heights) - 2)
        span = self.heights[i + 1] - self.heights[i]
        w = np.where(span > 0, (y - self.heights[i]) / np.where(span > 0, span, 1.0), 0.0)
        return i, w

    def centre(self, y) -> np.ndarray:
        i, w = self._interp(y)
        return self.centres[i] * (1 - w)[..., None] + self.centres[i + 1] * w[..., None]

    def radius_at(self, y, phi) -> np.ndarray:
        """Radii (n,) at heights y (n,) and polar angles phi (n,)."""
        i, w = self._interp(y)
        f = (np.asarray(phi) + np.pi) / (2 * np.pi) * N_POLAR - 0.5
        j0 = np.floor(f).astype(np.int64)
        a = f - j0
        j0 %= N_POLAR
        j1 = (j0 + 1) % N_POLAR
        r0 = self.radius[i, j0] * (1 - a) + self.radius[i, j1] * a
        r1 = self.radius[i + 1, j0] * (1 - a) + self.radius[i + 1, j1] * a
        return r0 * (1 - w) + r1 * w

    def point(self, y, phi) -> np.ndarray:
        """Points (n, 3) of the envelope at heights y (n,) and angles phi (n,)."""
        y = np.asarray(y, np.float64)
        phi = np.asarray(phi, np.float64)
        c = self.centre(y)
        r = self.radius_at(y, phi)
        return np.stack([c[..., 0] + r * np.sin(phi), y, c[..., 1] + r * np.cos(phi)], axis=-1)

    def project(self, p: np.ndarray) -> np.ndarray:
        """Points (n, 3) moved horizontally along rays from the axis onto the envelope."""
        c = self.centre(p[:, 1])
        phi = np.arctan2(p[:, 0] - c[:, 0], p[:, 2] - c[:, 1])
        return self.point(p[:, 1], phi)

    def contour(self, y: float) -> np.ndarray:
        """(A, 3) dense contour at height y, ordered by angle."""
        return self.point(np.full(N_POLAR, y), _PHI)

    def perimeter(self, y: float) -> float:
        return polygon_perimeter(self.contour(y)[:, [0, 2]])

    def sides(self, ys, sign: int) -> np.ndarray:
        """Angles (n,) of the contours' extreme points in x at heights ys (n,) (sign +1: max x)."""
        ys = np.atleast_1d(np.asarray(ys, np.float64))
        x = sign * self.point(np.repeat(ys, N_POLAR), np.tile(_PHI, len(ys)))[:, 0].reshape(len(ys), N_POLAR)
        j = np.argmax(x, axis=1)
        rows = np.arange(len(ys))
        x0, x1, x2 = x[rows, (j - 1) % N_POLAR], x[rows, j], x[rows, (j + 1) % N_POLAR]
        den = x0 - 2 * x1 + x2
        shift = np.where(den < 0, 0.5 * (x0 - x2) / np.where(den < 0, den, -1.0), 0.0)
        return _PHI[j] + np.clip(shift, -1.0, 1.0) * (2 * np.pi / N_POLAR)

    def crossings(self, ys, values, phi_from, phi_to, coord: int = 0) -> np.ndarray:
        """Angles (n,) between phi_from and phi_to (a stretch where coordinate `coord` (0: x,
        2: z) is monotone) where the contour at ys reaches `values`; ends where it does not."""
        ys, values, phi_from, phi_to = np.broadcast_arrays(*(np.atleast_1d(np.asarray(a, np.float64)) for a in (ys, values, phi_from, phi_to)))
        n, K = len(ys), 181
        phis = phi_from[:, None] + np.linspace(0.0, 1.0, K)[None] * (phi_to - phi_from)[:, None]
        c = self.point(np.repeat(ys, K), phis.ravel())[:, coord].reshape(n, K)
        s = np.where(c[:, -1] >= c[:, 0], 1.0, -1.0)
        sc, target = s[:, None] * c, s * values
        k = np.clip((sc < target[:, None]).sum(axis=1), 1, K - 1)
        rows = np.arange(n)
        a, b = sc[rows, k - 1], sc[rows, k]
        t = np.clip((target - a) / np.where(b != a, b - a, 1.0), 0.0, 1.0)
        return phis[rows, k - 1] + t * (phis[rows, k] - phis[rows, k - 1])

    def arc(self, y: float, phi0: float, phi1: float, n_seg: int) -> np.ndarray:
        """(n_seg + 1, 3) points from angle phi0 to phi1 (phi1 > phi0), evenly spaced by arc length."""
        inner = _PHI[(_PHI > phi0) & (_PHI < phi1)]
        inner = np.concatenate([inner, _PHI[(_PHI + 2 * np.pi > phi0) & (_PHI + 2 * np.pi < phi1)] + 2 * np.pi])
        inner.sort()
        phis = np.concatenate([[phi0], inner, [phi1]])
        dense = self.point(np.full(len(phis), y), phis)
        return _resample(dense, n_seg)


def _resample(dense: np.ndarray, n_seg: int) -> np.ndarray:
    """(n_seg + 1, k) points evenly spaced by arc length along an open polyline (m, k)."""
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    t = np.linspace(0.0, s[-1], n_seg + 1)
    return np.stack([np.interp(t, s, dense[:, c]) for c in range(dense.shape[1])], axis=1)


def _length(poly: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(poly, axis=0), axis=1).sum())


def _profile(y: np.ndarray, knots: list) -> np.ndarray:
    """Piecewise-linear function of height through (height, value) knots, constant beyond."""
    k = sorted(knots)
    return np.interp(y, [a for a, _ in k], [b for _, b in k])


def _grid_heights(lo: float, hi: float, step: float, must=()) -> np.ndarray:
    """Ascending heights from lo to hi, at most `step` apart, through every height in `must`."""
    marks = sorted({lo, hi, *[m for m in must if lo < m < hi]})
    out = [lo]
    for a, b in zip(marks[:-1], marks[1:]):
        n = max(1, int(np.ceil((b - a) / step - 1e-9)))
        out.extend(np.linspace(a, b, n + 1)[1:])
    return np.array(out)


# ---------------------------------------------------------------------------------------------
# Mesh assembly
# ---------------------------------------------------------------------------------------------


class _Mesh:
    """Vertices and triangles being assembled; pieces refer to shared vertices by index."""

    def __init__(self):
        self.points: list = []
        self.n = 0
        self.faces: list = []

    def add(self, p: np.ndarray) -> np.ndarray:
        p = np.atleast_2d(np.asarray(p, np.float64))
        self.points.append(p)
        ids = np.arange(self.n, self.n + len(p))
        self.n += len(p)
        return ids

    def vertices(self) -> np.ndarray:
        return np.concatenate(self.points)

    def grid(self, ids: np.ndarray, closed: bool) -> None:
        """Triangulates a grid of vertex ids (rows, cols), columns wrapping round when `closed`;
        each quad is split along its shorter diagonal."""
        V = self.vertices()
        a = ids[:-1]
        b = np.roll(ids, -1, axis=1)[:-1] if closed else ids[:-1, 1:]
        c = np.roll(ids, -1, axis=1)[1:] if closed else ids[1:, 1:]
        d = ids[1:] if closed else ids[1:, :-1]
        if not closed:
            a = a[:, :-1]
        a, b, c, d = a.ravel(), b.ravel(), c.ravel(), d.ravel()
        short_ac = np.linalg.norm(V[a] - V[c], axis=1) <= np.linalg.norm(V[b] - V[d], axis=1)
        t1 = np.where(short_ac[:, None], np.stack([a, b, c], 1), np.stack([a, b, d], 1))
        t2 = np.where(short_ac[:, None], np.stack([a, c, d], 1), np.stack([b, c, d], 1))
        self.faces.append(np.concatenate([t1, t2]))


def _laplacian(n: int, faces: np.ndarray) -> sparse.csr_matrix:
    """Row-normalised vertex adjacency (n, n) of a triangle mesh: the uniform Laplacian's average."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    A = sparse.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    A.data[:] = 1.0
    deg = np.asarray(A.sum(axis=1)).ravel()
    return sparse.diags(1.0 / np.maximum(deg, 1)) @ A


def _orient_outward(V: np.ndarray, pieces: list, body: _Body) -> np.ndarray:
    """Faces (F, 3) of all pieces, each piece (a grid, wound consistently in itself) flipped if
    most of its face normals point towards the body: the whole is then wound outward."""
    out = []
    for F in pieces:
        sample = F[:: max(1, len(F) // 200)]
        c = V[sample].mean(axis=1)
        n = np.cross(V[sample[:, 1]] - V[sample[:, 0]], V[sample[:, 2]] - V[sample[:, 0]])
        _, away = _body_distance(body, c)
        out.append(F[:, ::-1] if np.sign((n * away).sum(1)).sum() < 0 else F)
    return np.concatenate(out)


def _corner_min(V: np.ndarray, tri) -> float:
    """Smallest corner angle (degrees) of one triangle (3,) of vertex ids."""
    p = V[list(tri)]
    out = 180.0
    for k in range(3):
        u, w = p[(k + 1) % 3] - p[k], p[(k + 2) % 3] - p[k]
        c = float(u @ w / (np.linalg.norm(u) * np.linalg.norm(w) + 1e-30))
        out = min(out, np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
    return out


def _min_corner_angles(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    """(m,) smallest corner angle of each triangle, degrees."""
    t = V[F]
    out = []
    for k in range(3):
        u, w = t[:, (k + 1) % 3] - t[:, k], t[:, (k + 2) % 3] - t[:, k]
        c = (u * w).sum(1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1) + 1e-30)
        out.append(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
    return np.min(out, axis=0)


def _flip_slivers(V: np.ndarray, F: np.ndarray, below: float = 10.0) -> np.ndarray:
    """Flips the longest edge of triangles with a corner under `below` degrees where that makes
    both triangles better and keeps them nearly coplanar (seams of pieces meet at grid corners
    where three vertices can fall almost in line). Winding and the vertex set are kept."""
    F = F.copy()
    bad = np.nonzero(_min_corner_angles(V, F) < below)[0]
    if len(bad) == 0:
        return F
    # Only the faces round the slivers' vertices can take part.
    near = np.nonzero(np.isin(F, F[bad]).any(axis=1))[0]
    owner = {}
    for f in near.tolist():
        a, b, c = F[f].tolist()
        owner[(a, b)], owner[(b, c)], owner[(c, a)] = f, f, f
    edges = set(tuple(sorted(e)) for e in owner)
    for f in bad:
        tri = F[f].tolist()
        k = int(np.argmax([np.linalg.norm(V[tri[(i + 1) % 3]] - V[tri[i]]) for i in range(3)]))
        a, b, c = tri[k], tri[(k + 1) % 3], tri[(k + 2) % 3]
        g = owner.get((b, a))
        if g is None:
            continue
        d = [v for v in F[g].tolist() if v not in (a, b)][0]
        if tuple(sorted((c, d))) in edges:
            continue
        t1, t2 = (a, d, c), (d, b, c)
        n1 = np.cross(V[d] - V[a], V[c] - V[a])
        n2 = np.cross(V[b] - V[d], V[c] - V[d])
        if n1 @ n2 <= 0.7 * np.linalg.norm(n1) * np.linalg.norm(n2):
            continue
        if min(_corner_min(V, t1), _corner_min(V, t2)) <= min(_corner_min(V, tri), _corner_min(V, F[g])):
            continue
        for e in ((a, b), (b, c), (c, a)):
            owner.pop(e, None)
        for e in ((b, a), (a, d), (d, b)):
            owner.pop(e, None)
        F[f], F[g] = t1, t2
        for face, (x, y, z) in ((f, t1), (g, t2)):
            owner[(x, y)], owner[(y, z)], owner[(z, x)] = face, face, face
        edges.discard(tuple(sorted((a, b))))
        edges.add(tuple(sorted((c, d))))
    return F


# m^3: signed volumes below this are rounding noise (coplanar faces, as on a skirt's flat front,
# give about 1e-23); a real crossing of centimetre faces gives many orders more.
EPS_VOLUME = 1e-16


def _signed_volumes(a, b, c, d) -> np.ndarray:
    return np.einsum("ij,ij->i", np.cross(b - a, c - a), d - a)


def _intersecting_faces(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Ids of faces that cross a face they share no vertex with (an edge of one passes through
    the other): a broad phase on face centres and boxes, then orientation tests (coplanar
    contact, within `EPS_VOLUME`, is not a crossing)."""
    tri = V[F]
    lo, hi = tri.min(axis=1), tri.max(axis=1)
    centre = tri.mean(axis=1)
    radius = np.linalg.norm(tri - centre[:, None], axis=2).max(axis=1)
    # Faces that meet have centres at most their two radii apart. Most faces are small: pair
    # those within twice the 99th-percentile radius, and look up the few large ones one by one.
    small = float(np.percentile(radius, 99))
    tree = cKDTree(centre)
    big = np.nonzero(radius > small)[0]
    near = tree.query_ball_point(centre[big], radius[big] + radius.max())
    counts = np.array([len(n) for n in near], np.int64)
    pairs = np.concatenate([
        tree.query_pairs(2 * small, output_type="ndarray"),
        np.stack([np.repeat(big, counts), np.concatenate(near).astype(np.int64) if len(big) else np.zeros(0, np.int64)], axis=1),
    ])
    pairs = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1), axis=0)
    if len(pairs) == 0:
        return np.zeros(0, np.int64)
    i, j = pairs[:, 0], pairs[:, 1]
    keep = np.all((lo[i] <= hi[j]) & (lo[j] <= hi[i]), axis=1)
    i, j = i[keep], j[keep]
    keep = ~(F[i][:, :, None] == F[j][:, None, :]).any(axis=(1, 2))
    i, j = i[keep], j[keep]
    hit = np.zeros(len(i), bool)
    for x, y in ((i, j), (j, i)):
        a, b, c = V[F[y, 0]], V[F[y, 1]], V[F[y, 2]]
        for e0, e1 in ((0, 1), (1, 2), (2, 0)):
            p, q = V[F[x, e0]], V[F[x, e1]]
            s1, s2 = _signed_volumes(a, b, c, p), _signed_volumes(a, b, c, q)
            cross = ((s1 > EPS_VOLUME) & (s2 < -EPS_VOLUME)) | ((s1 < -EPS_VOLUME) & (s2 > EPS_VOLUME))
            u, v, w = _signed_volumes(p, q, a, b), _signed_volumes(p, q, b, c), _signed_volumes(p, q, c, a)
            e = EPS_VOLUME
            hit |= cross & (((u > e) & (v > e) & (w > e)) | ((u < -e) & (v < -e) & (w < -e)))
    return np.unique(np.concatenate([i[hit], j[hit]]))


def _untangle(V: np.ndarray, F: np.ndarray, body: _Body, watch: np.ndarray, rounds: int = 10) -> np.ndarray:
    """Vertices with any local fold or needle smoothed out: where faces cross or a triangle has a
    corner under 3 degrees, the vertices within two rings (more if it persists) get a few
    Laplacian steps and are kept off the body; vertices on an opening only slide along it.
    Folds come where pieces meet at a fine resolution (a sleeve cap and the yoke along the
    armhole, the rows under a deep neckline) and are a few millimetres across; only the faces
    `watch` (F,) bool are searched (the regular ring grids never fold)."""
    V = V.copy()
    edges = np.sort(np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    opening = np.zeros(len(V), bool)
    opening[uniq[counts == 1].ravel()] = True
    M = _laplacian(len(V), F)
    adjacency = (M > 0).astype(np.int8)
    # Along the openings, a vertex's neighbours on its boundary loop: an opening's vertices may
    # slide along it (its shape barely changes) when the fold reaches the edge.
    b = uniq[counts == 1]
    B = sparse.csr_matrix((np.full(2 * len(b), 0.5), (np.r_[b[:, 0], b[:, 1]], np.r_[b[:, 1], b[:, 0]])), shape=(len(V), len(V)))
    watched = np.nonzero(watch)[0]
    for k in range(rounds):
        Fw = F[watched]
        bad = watched[np.union1d(_intersecting_faces(V, Fw), np.nonzero(_min_corner_angles(V, Fw) < 3.0)[0])]
        if len(bad) == 0:
            break
        region = np.zeros(len(V), bool)
        region[F[bad].ravel()] = True
        for _ in range(2 + k // 2):  # a wider patch each time a fold survives
            region |= (adjacency @ region.astype(np.int8)) > 0
        ids = np.nonzero(region & ~opening)[0]
        edge = np.nonzero(region & opening)[0]
        for _ in range(4 + 2 * k):
            V[ids] += 0.5 * (M[ids] @ V - V[ids])
            if k >= 2:
                V[edge] += 0.5 * (B[edge] @ V - V[edge])
        ids = np.r_[ids, edge] if k >= 2 else ids
        V[ids] = _push_out(body, V[ids], CLEARANCE)
    return V


# ---------------------------------------------------------------------------------------------
# Garment girths
# ---------------------------------------------------------------------------------------------


def _loop_boxes(points: np.ndarray, labels: np.ndarray):
    """Per loop label: (labels (k,), x min (k,), x max (k,)) of segment points (s, 2, 2)."""
    uniq, inv = np.unique(labels, return_inverse=True)
    x = points[:, :, 0]
    lo = np.full(len(uniq), np.inf)
    hi = np.full(len(uniq), -np.inf)
    np.minimum.at(lo, inv, x.min(axis=1))
    np.maximum.at(hi, inv, x.max(axis=1))
    return uniq, inv, lo, hi


CHEST_LINE_M = 0.02  # a top's chest is measured this far below its underarm


UNDERARM_DROP_M = 0.02  # the torso loop's half-width falls at least this much below an underarm
UNDERARM_LEVEL_M = 0.0006  # ... and then narrows by less than this per 2 mm step
# ... or has gone this far below the underarm: the sleeves' caps leave the torso loop within it
# (0.4-1.6 cm on the draped M and XL tops), where an XL bodice narrows 0.8 mm a step to the waist
# and long sleeves hang beside it all the way (the tape went 9.4 cm below the underarm).
SLEEVE_CAP_M = 0.02


def garment_girths(vertices, faces, heights: dict, centre_x: float = 0.0, rest=None) -> dict:
    """Tape girths (cm) of a garment round its torso at horizontal levels.

    Parameters
    ----------
    vertices : (n, 3) float, metres, +Y up.
    faces : (m, 3) int.
    heights : name -> the body's level (m), e.g. {"chest": 1.24, "waist": 1.09}.
    centre_x : x of the body's midline.
    rest : (n, 3) float, the garment's rest shape (a draped garment's authored vertices), or None.
        Given, compressed cloth counts at its rest length: the solver lets fabric shrink 5 % in
        its plane at no cost (`SolverSettings.compression_slack`, standing for wrinkles finer than
        the mesh), where a real garment keeps its length in fine wrinkles, which a tape (and the
        garment's ease) takes in. The hull's perimeter is multiplied by the loop's length with
        each segment at the longer of its draped and rest lengths, over its draped length.

    Returns
    -------
    dict
        name -> perimeter (cm) of the convex hull of the torso loop of the horizontal section
        (the loops whose x range holds `centre_x`). At "chest", where that loop also runs round
        the sleeves (above a top's underarm, which lies below the body's chest: a garment with
        ease cannot pass between the arm and the torso there), the tape goes where a garment's
        chest is measured: `CHEST_LINE_M` below the underarm. The underarm is found scanning
        down in 2 mm steps: past the first level where the torso loop's half-width falls by
        `UNDERARM_DROP_M` or more, or the first where a loop beside it appears (a sleeve parts
        from it), down to where it stops narrowing by more than `UNDERARM_LEVEL_M` a step (the
        sleeves' caps have left it too) or to the first level whose section holds no loop
        besides the torso's (below the sleeves: what narrows there is the bodice on its way to
        the waist, which on a large body draped can narrow as fast, e.g. 0.64 mm a step, and
        would take the tape down past the waist). Other levels are taped where they are.
    """
    V = np.asarray(vertices, np.float64)
    F = np.asarray(faces, np.int64)
    out = {}
    for name, y in heights.items():
        at = _chest_tape_level(V, F, y, centre_x) if name == "chest" else y
        sec = horizontal_sections(V, F, [at], values=rest)
        seg = np.asarray(sec.segments)
        _, inv, lo, hi = _loop_boxes(seg, sec.loop)
        torso = np.isin(inv, np.nonzero((lo <= centre_x) & (hi >= centre_x))[0])
        if not torso.any():
            out[name] = 0.0
            continue
        girth = polygon_perimeter(convex_hull_2d(seg[torso].reshape(-1, 2))) * 100.0
        if rest is not None:
            draped = np.linalg.norm(seg[torso, 1] - seg[torso, 0], axis=1)
            at_rest = np.linalg.norm(np.diff(np.asarray(sec.values)[torso], axis=1)[:, 0], axis=1)
            girth *= np.maximum(draped, at_rest).sum() / max(draped.sum(), 1e-12)
        out[name] = girth
    return out


def _chest_tape_level(V, F, y: float, centre_x: float) -> float:
    """Where the chest tape goes (m) below the body's chest level y: y itself, or `CHEST_LINE_M`
    below a top's underarm when the torso loop runs round the sleeves at y (see garment_girths).

    Only at the chest: lower down a drop in the torso loop's width is its hem, and the first loop
    beside it a trouser leg at the crotch, and neither is an underarm.
    """
    levels = y - np.arange(0.0, 0.20, 0.002)
    sec = horizontal_sections(V, F, levels)
    uniq, inv, lo, hi = _loop_boxes(np.asarray(sec.segments), sec.loop)
    loop_level = np.zeros(len(uniq), np.int64)
    loop_level[inv] = np.asarray(sec.level)
    torso = (lo <= centre_x) & (hi >= centre_x)
    half = np.zeros(len(levels))
    np.maximum.at(half, loop_level[torso], np.maximum(hi[torso] - centre_x, centre_x - lo[torso]))
    sleeves = np.bincount(loop_level[~torso], minlength=len(levels)) > 0  # loops beside the torso's
    drop = np.nonzero((half[1:] < half[:-1] - UNDERARM_DROP_M) & (half[1:] > 0))[0]
    # A sleeve that parts gradually (a draped XL t-shirt: 9 mm a step) shows as the first level
    # with a loop beside the torso's, where the level itself has none, once the torso loop has
    # lost the sleeves' width (a sash or a bow beside a bodice that did not narrow is no sleeve).
    shed = np.maximum.accumulate(half) - half >= UNDERARM_DROP_M
    parted = np.nonzero(sleeves & (half > 0) & shed)[0] if not sleeves[0] else np.zeros(0, np.int64)
    starts = ([int(drop[0]) + 1] if len(drop) else []) + ([int(parted[0])] if len(parted) else [])
    if not starts:
        return y
    i = min(starts)  # below the underarm the loop may still take in the sleeves' caps: go on
    last = min(len(levels) - 1, i + int(round(SLEEVE_CAP_M / 0.002)))
    while i < last and sleeves[i] and half[i] - half[i + 1] > UNDERARM_LEVEL_M:
        i += 1  # down while it narrows steeply: until it levels off, the sleeves end or SLEEVE_CAP_M
    return float(levels[i] - CHEST_LINE_M)


# ---------------------------------------------------------------------------------------------
# Torso envelopes
# ---------------------------------------------------------------------------------------------


def _torso_offsets(env_h, heights, girth_knots, r_min=R_MIN) -> np.ndarray:
    """Offsets (L,) that give the hull of each level the girth of a piecewise-linear profile."""
    P = env_h.sum(axis=1) * (2.0 * np.pi / N_DIR)
    G = _profile(heights, girth_knots)
    return np.maximum((G - P) / (2.0 * np.pi), r_min)


def _lower_envelope(body: _Body, heights: np.ndarray, girth_knots: list, hang: bool) -> _Envelope:
    """Envelope of the torso and legs (arms left out), hanging below the hip if `hang`."""
    pts = _section_points(body, heights, body.arm == 0)
    h, P = _supports(pts)
    if hang:
        _hang(h, P, heights, body.levels["hip"])
    return _Envelope(heights, h, P, _torso_offsets(h, heights, girth_knots))


# ---------------------------------------------------------------------------------------------
# Tops: t-shirt, long-sleeve shirt, dress
# ---------------------------------------------------------------------------------------------

TOP_STYLE = {
    # neckline: widening of the neck hole beyond the body's neck base each side (m), front and back
    # drops below the high point of the shoulder (m); sleeve offsets (m) at the top and at the end.
    "tshirt": dict(neck_widen=0.020, front_drop=0.070, back_drop=0.020, sleeve_r=(0.013, 0.013)),
    "longsleeve": dict(neck_widen=0.018, front_drop=0.065, back_drop=0.020, sleeve_r=(0.014, 0.009)),
    "dress": dict(neck_widen=0.035, front_drop=0.100, back_drop=0.030, sleeve_r=(0.011, 0.011)),
}


@dataclasses.dataclass
class _TopFrame:
    """Levels (m) and the envelope of a top."""

    env: _Envelope
    y_hem: float
    y_u: float
    y_sp: float
    y_hps: float
    y_fnp: float
    y_bnp: float
    neck_a: float
    x_arm: object  # callable y -> x of the armhole plane (left side; mirrored on the right)
    r_chest: float
    z_u: float  # z of the side seams (the underarm points)


def _lateral_extent(pts_by_level, x_max: float) -> np.ndarray:
    """Per level, the largest |x| of section points within |x| <= x_max (0 when none)."""
    out = np.zeros(len(pts_by_level))
    for i, q in enumerate(pts_by_level):
        ax = np.abs(q[:, 0]) if len(q) else np.zeros(0)
        ax = ax[ax <= x_max]
        out[i] = ax.max() if len(ax) else 0.0
    return out


ARMHOLE_DROP_M = 0.05  # least depth of a top's underarm below the body's chest level
ARMHOLE_LEAD_M = 0.06  # ... and below the level where the arm comes within the chest offset


def _underarm_level(body: _Body, r_chest: float) -> float:
    """Garment underarm height (m). A set-in armhole sits well below the armpit: it rises from the
    underarm in front of and behind the arm, and must be round the arm's front and back (about
    `ARMHOLE_LEAD_M` of rise) before the arm comes closer to the torso than the garment's offset.
    So: `ARMHOLE_DROP_M` below the chest level, and `ARMHOLE_LEAD_M` below the highest level
    where the gap between arm and torso is under the chest offset plus 5 mm, whichever is lower."""
    chest = body.levels["chest"]
    ys = chest + 0.02 - np.arange(0.0, 0.20, 0.0025)
    torso = _section_points(body, ys, body.arm == 0)
    arm = _section_points(body, ys, body.arm == 1)
    gap = np.array([a[:, 0].min() - t[:, 0].max() if len(a) and len(t) else np.inf for t, a in zip(torso, arm)])
    close = np.nonzero(gap < r_chest + 0.005)[0]
    y_close = float(ys[close[-1]]) if len(close) else chest
    return min(chest - ARMHOLE_DROP_M, y_close - ARMHOLE_LEAD_M)


def _top_frame(body: _Body, kind: str, chart: dict) -> _TopFrame:
    """Solves the levels, the armhole slab and the offsets of a top's torso envelope."""
    lv = body.levels
    style = TOP_STYLE[kind]
    chest_g, waist_g, hip_g = chart["chest_cm"] / 100, chart["waist_cm"] / 100, chart["hip_cm"] / 100
    everything = np.ones(len(body.faces), bool)
    x_p = body.acromion_x + 0.005
    # Shoulder point: the lowest level above the chest where the body (within a slab a little wider
    # than the shoulders) no longer reaches the armhole plane x_p less the offset on the shoulder.
    ys_up = np.arange(lv["chest"] + 0.01, float(body.neck[:, 1].max()) + 0.02, 0.0025)
    reach = _lateral_extent(_section_points(body, ys_up, everything), x_p + 0.05)
    below = np.nonzero(reach > x_p - R_TOP)[0]
    y_sp = float(ys_up[min(below[-1] + 1, len(ys_up) - 1)]) if len(below) else float(ys_up[0])
    # High point of the shoulder: where the shoulder slope has narrowed to the neckline's width.
    neck_side = body.neck[np.argmax(np.abs(body.neck[:, 0]))]
    neck_a = abs(float(neck_side[0])) + style["neck_widen"]
    wide = np.nonzero((reach > neck_a - R_TOP) & (ys_up >= y_sp))[0]
    y_hps = float(ys_up[wide[-1] + 1]) if len(wide) and wide[-1] + 1 < len(ys_up) else float(neck_side[1])
    y_hps = max(y_hps, y_sp + 0.02)
    y_fnp = y_hps - style["front_drop"]
    y_bnp = y_hps - style["back_drop"]
    y_hem = min(y_hps - chart["length_cm"] / 100, lv["hip"] - 0.04)

    chest_hull = _supports(_section_points(body, [lv["chest"]], body.arm == 0))[0]
    r_chest = max((chest_g - chest_hull.sum() * 2 * np.pi / N_DIR) / (2 * np.pi), R_MIN)
    y_u = _underarm_level(body, r_chest)
    hem_g = chart.get("hem_cm", chart["hip_cm"]) / 100

    lower_h = _grid_heights(y_hem, y_u, 0.005, must=(lv["waist"], lv["hip"]))
    upper_h = _grid_heights(y_u, y_hps + 0.02, 0.0025, must=(lv["chest"], y_sp, y_hps))[1:]
    heights = np.concatenate([lower_h, upper_h])
    n_low = len(lower_h)
    # The torso alone (arms left out), its hollows between the waist and the chest bridged (the
    # fold under the bust, the small of the back): what the tube hangs on, and the sides the
    # armholes start from. The bridging fades out towards the waist, which a fitted dress follows.
    ht, Pt = _supports(_section_points(body, heights, body.arm == 0))
    below = (heights <= lv["chest"] + 1e-9) & (heights >= lv["waist"])
    window = 0.05 * np.clip((heights[below] - lv["waist"]) / 0.06, 0.0, 1.0)
    ht[below], Pt[below] = _dilate(ht[below], Pt[below], heights[below], window)
    _hang(ht[:n_low], Pt[:n_low], lower_h, lv["hip"])
    side_t = Pt[:, :, 0].max(axis=1)  # (L,) the dilated torso's half-width
    up_seg, up_lev = _raw_sections(body, upper_h, everything)

    def build(r_ch: float):
        x_u = side_t[n_low - 1] + r_ch
        m = max(0.012, ((x_p - x_u) + 0.02) / np.pi)
        t = np.clip((upper_h - y_u) / (y_sp - y_u), 0.0, 1.0)
        x_nominal = x_u + (x_p - x_u) * t - m * np.sin(np.pi * t)
        x_arm_up = x_nominal

        def x_arm(y):
            return np.interp(np.asarray(y, np.float64), np.r_[y_u, upper_h], np.r_[x_u, x_arm_up])

        # Above the underarm: everything within the armhole slab, and the bridged torso.
        hs, Ps = _supports(_level_points(up_seg, up_lev, len(upper_h), x_arm_up))
        h, P = ht.copy(), Pt.copy()
        take = hs > h[n_low:]
        h[n_low:] = np.where(take, hs, h[n_low:])
        P[n_low:] = np.where(take[..., None], Ps, P[n_low:])
        P_u = h[n_low - 1].sum() * 2 * np.pi / N_DIR
        # The chest girth holds from the underarm down to the chest line below it.
        g_u = P_u + 2 * np.pi * r_ch
        knots = [(y_u, g_u), (y_u - CHEST_LINE_M - 0.01, g_u), (lv["waist"], waist_g), (lv["hip"], hip_g), (y_hem, hem_g if kind == "dress" else hip_g)]
        r = _torso_offsets(h[:n_low], lower_h, knots)
        # From the hip up the offset, not the girth, runs linearly between the levels: the top
        # follows the body's shape there with an ease that changes smoothly (no creases).
        hull = h[:n_low].sum(axis=1) * (2 * np.pi / N_DIR)
        at = lambda y: float(np.interp(y, lower_h, hull))  # noqa: E731
        y_cl = y_u - CHEST_LINE_M - 0.01  # the chest girth holds from the underarm to here
        r_knots = [(y_cl, (g_u - at(y_cl)) / (2 * np.pi)), (lv["waist"], (waist_g - at(lv["waist"])) / (2 * np.pi)), (lv["hip"], (hip_g - at(lv["hip"])) / (2 * np.pi))]
        up = (lower_h >= lv["hip"]) & (lower_h < y_cl)
        r[up] = np.maximum(_profile(lower_h[up], r_knots), R_MIN)
        fall = np.clip((upper_h - (lv["chest"] + 0.01)) / max(y_sp - lv["chest"] - 0.01, 1e-3), 0.0, 1.0)
        r_up = R_TOP + (r_ch - R_TOP) * 0.5 * (1 + np.cos(np.pi * fall))
        env = _Envelope(heights, h, P, np.concatenate([r, r_up]))
        return env, x_arm, x_u, P_u

    # The underarm ring carries the chart's chest girth (where a top's chest is measured); its
    # hull depends a little on the armhole slab above it (through the dilation), so solve twice.
    r_ch = r_chest
    for _ in range(2):
        env, x_arm, x_u, P_u = build(r_ch)
        r_ch = max((chest_g - P_u) / (2 * np.pi), R_MIN)
    env, x_arm, x_u, P_u = build(r_ch)
    z_u = float(env.point(np.array([y_u]), env.sides(y_u, 1))[0, 2])
    return _TopFrame(env, y_hem, y_u, y_sp, y_hps, y_fnp, y_bnp, neck_a, x_arm, r_ch, z_u)


def _coons(B, T, L, R) -> np.ndarray:
    """Transfinite (Coons) interpolation of a patch (rows, cols, 3) from its bottom and top rows
    (cols, 3) and left and right columns (rows, 3), bottom to top."""
    nr, nc = len(L), len(B)
    s = np.linspace(0.0, 1.0, nc)[None, :, None]
    t = np.linspace(0.0, 1.0, nr)[:, None, None]
    P = (1 - t) * B[None] + t * T[None] + (1 - s) * L[:, None] + s * R[:, None]
    P -= (1 - s) * (1 - t) * B[0] + s * (1 - t) * B[-1] + (1 - s) * t * T[0] + s * t * T[-1]
    return P


ARMHOLE_RISE = 1.0  # near the underarm an armhole runs at most this far along the torso per unit of rise


def _arc_params(poly: np.ndarray) -> np.ndarray:
    """(..., n) normalised arc length along polylines (..., n, 3)."""
    run = np.concatenate([np.zeros(poly.shape[:-2] + (1,)), np.cumsum(np.linalg.norm(np.diff(poly, axis=-2), axis=-1), axis=-1)], axis=-1)
    return run / np.maximum(run[..., -1:], 1e-12)


def _even_grid(P: np.ndarray, project, iterations: int = 4) -> np.ndarray:
    """A patch grid (rows, cols, 3) with its boundary kept and its interior rows and columns
    re-spaced by arc length, at parameters blended across the patch from the boundary's own (an
    arc-length Coons patch), projected with `project` after each pass. Unlike Laplacian
    smoothing this keeps the rows evenly spaced along every column, also under a deep notch in
    the boundary (a neckline), so the rows never crowd against it and fold."""
    P = P.copy()
    nr, nc = P.shape[:2]
    s_b, s_t = _arc_params(P[0]), _arc_params(P[-1])
    t_l, t_r = _arc_params(P[:, 0]), _arc_params(P[:, -1])
    s = np.linspace(0.0, 1.0, nc)[None, :]
    t = np.linspace(0.0, 1.0, nr)[:, None]
    want_s = (1 - t) * s_b[None] + t * s_t[None]  # (nr, nc) where each vertex sits along its row
    want_t = (1 - s) * t_l[:, None] + s * t_r[:, None]  # ... and along its column
    for _ in range(iterations):
        u = _arc_params(P)
        for i in range(1, nr - 1):
            P[i, 1:-1] = np.stack([np.interp(want_s[i, 1:-1], u[i], P[i, :, c]) for c in range(3)], axis=1)
        u = _arc_params(np.swapaxes(P, 0, 1))
        for j in range(1, nc - 1):
            P[1:-1, j] = np.stack([np.interp(want_t[1:-1, j], u[j], P[:, j, c]) for c in range(3)], axis=1)
        P[1:-1, 1:-1] = project(P[1:-1, 1:-1].reshape(-1, 3)).reshape(nr - 2, nc - 2, 3)
    return P


def _armhole(fr: _TopFrame, sign: int, front: bool, n_seg: int) -> np.ndarray:
    """(n_seg + 1, 3) points of one half of an armhole, from the underarm up to the shoulder point:
    where the envelope crosses the armhole's plane x = sign * x_arm(y) in front of or behind the
    arm, but near the underarm no further along the contour from the side seam than
    `ARMHOLE_RISE` times the rise, so the armhole leaves the underarm steeply even where the
    torso's side is flat."""
    env = fr.env
    ys = np.linspace(fr.y_u, fr.y_sp, 80)
    side = env.sides(ys, sign)
    if sign > 0:
        a, b = (np.zeros_like(ys), side) if front else (side, np.full_like(ys, np.pi))
    else:
        a, b = (side, np.zeros_like(ys)) if front else (np.full_like(ys, -np.pi), side)
    x = sign * fr.x_arm(ys)
    phi = env.crossings(ys, x, a, b)
    # The side seam's line (z = z_u) round the side, and the contour from there to the crossing.
    seam = env.crossings(ys, fr.z_u, side - np.pi / 3, side + np.pi / 3, coord=2)
    K = 64
    phis = seam[:, None] + np.linspace(0.0, 1.0, K)[None] * (phi - seam)[:, None]
    pts = env.point(np.repeat(ys, K), phis.ravel()).reshape(len(ys), K, 3)
    run = np.concatenate([np.zeros((len(ys), 1)), np.cumsum(np.linalg.norm(np.diff(pts[:, :, [0, 2]], axis=1), axis=2), axis=1)], axis=1)
    rise = ys - fr.y_u
    # The limit matters only near the underarm; it fades out a few centimetres up.
    limit = np.minimum(ARMHOLE_RISE * rise * np.exp(np.maximum(rise - 0.03, 0.0) / 0.01), run[:, -1])
    k = np.clip((run < limit[:, None]).sum(axis=1), 1, K - 1)
    rows = np.arange(len(ys))
    t = np.clip((limit - run[rows, k - 1]) / np.maximum(run[rows, k] - run[rows, k - 1], 1e-12), 0.0, 1.0)
    phi = phis[rows, k - 1] + t * (phis[rows, k] - phis[rows, k - 1])
    reach = sign * env.point(ys, side)[:, 0] > x
    phi = np.where(reach | (ys < fr.y_sp - 0.02), phi, side)  # at the top: the shoulder point
    # Smooth out the kinks where the arm enters the slab (the envelope widens abruptly there),
    # keeping the ends, and put the curve back on the envelope.
    dense = env.point(ys, phi)
    kernel = np.ones(9) / 9.0
    smooth = np.stack([np.convolve(np.pad(dense[:, c], 4, mode="edge"), kernel, mode="valid") for c in range(3)], axis=1)
    smooth[:, 1] = ys
    inner = env.project(smooth[1:-1])
    dense = np.concatenate([dense[:1], inner, dense[-1:]])
    return _resample(dense, n_seg)


def _neckline(fr: _TopFrame, front: bool, n_seg: int) -> np.ndarray:
    """(n_seg + 1, 3) points of the front or back neckline from the right to the left high point
    of the shoulder. Seen from the front the neckline is a parabola through both high points and
    the neck point, so its height has a smooth maximum at the high points."""
    env = fr.env
    drop = fr.y_hps - (fr.y_fnp if front else fr.y_bnp)
    t = np.linspace(0.0, np.pi, 121)
    xs = -fr.neck_a * np.cos(t)
    ys = fr.y_hps - drop * np.sin(t) ** 2
    lo, hi = env.sides(ys, -1), env.sides(ys, +1)
    phi = env.crossings(ys, xs, lo, hi) if front else env.crossings(ys, xs, hi, lo + 2 * np.pi)
    phi[0], phi[-1] = lo[0], hi[-1]
    return _resample(env.point(ys, phi), n_seg)


def _shoulder_seam(fr: _TopFrame, sign: int, n_seg: int) -> np.ndarray:
    """(n_seg + 1, 3) points along the top of the shoulder from the shoulder point to the neck."""
    ys = np.linspace(fr.y_sp, fr.y_hps, 40)
    return _resample(fr.env.point(ys, fr.env.sides(ys, sign)), n_seg)


def _ring(env: _Envelope, y: float, c_front: int, c_back: int, z_side: float | None = None) -> np.ndarray:
    """(c_front + c_back, 3) ring: right side point, front (right to left), left side point, back.
    The side points are the contour's extremes in x, or its lateral crossings of z = z_side."""
    lo, hi = env.sides(y, -1)[0], env.sides(y, +1)[0]
    if z_side is not None:
        w = np.pi / 3  # z falls monotonically round each side within this angle of the extreme
        hi = env.crossings(y, z_side, hi - w, hi + w, coord=2)[0]
        lo = env.crossings(y, z_side, lo - w, lo + w, coord=2)[0]
    front = env.arc(y, lo, hi, c_front)
    back = env.arc(y, hi, lo + 2 * np.pi, c_back)
    return np.concatenate([front[:-1], back[:-1]])


# ---------------------------------------------------------------------------------------------
# Sleeves and legs: offset hulls of limb sections
# ---------------------------------------------------------------------------------------------


def _offset_polygon(points2d: np.ndarray, r: float) -> np.ndarray:
    """(D, 2) boundary of the convex hull of 2D points offset by r (a Minkowski sum with a disc)."""
    proj = points2d @ _DIRS
    j = np.argmax(proj, axis=0)
    return points2d[j] + r * _DIRS.T


def _polar_points(Q: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(n, 2) points of the convex polygon Q (D, 2) on rays from its centre at `angles` (0 = +y axis
    of the plane, counter to the first axis), and the centre."""
    centre = Q.mean(axis=0)
    r = _polar(Q, centre, angles)
    return centre + r[:, None] * np.stack([np.sin(angles), np.cos(angles)], axis=1)


class _Arm:
    """The bone axis of one arm: shoulder joint -> elbow -> wrist, with frames perpendicular to it."""

    def __init__(self, body: _Body, sign: int):
        s = "L" if sign > 0 else "R"
        j = body.joints
        self.sign = sign
        self.knots = np.array([j[f"upperarm01.{s}"], j[f"lowerarm01.{s}"], j[f"wrist.{s}"]])
        seg = np.diff(self.knots, axis=0)
        self.lengths = np.linalg.norm(seg, axis=1)
        self.dirs = seg / self.lengths[:, None]
        self.faces = body.faces[body.arm == sign]
        self.body = body

    def frames(self, s):
        """Axis points (n, 3), tangents (n, 3), 'down' axes e1 (n, 3) and 'front' axes e2 (n, 3)
        at stations s (n,) (m along the axis; the tangent turns smoothly over 10 cm at the elbow)."""
        s = np.atleast_1d(np.asarray(s, np.float64))
        s_e = self.lengths[0]
        upper = self.knots[0] + self.dirs[0] * s[:, None]
        lower = self.knots[1] + self.dirs[1] * np.minimum(s - s_e, self.lengths[1])[:, None]
        p = np.where((s <= s_e)[:, None], upper, lower)
        w = np.clip((s - (s_e - 0.05)) / 0.10, 0.0, 1.0)[:, None]
        w = w * w * (3 - 2 * w)
        t = (1 - w) * self.dirs[0] + w * self.dirs[1]
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        e1 = np.array([0.0, -1.0, 0.0]) + t[:, 1:2] * t  # 'down' less its part along the axis
        e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
        e2 = np.cross(e1, t) * self.sign
        return p, t, e1, e2

    def frame(self, s: float):
        """`frames` at one station: p (3,), t (3,), e1 (3,), e2 (3,)."""
        return tuple(a[0] for a in self.frames(s))

    def station(self, p: np.ndarray) -> np.ndarray:
        """Stations (n,) of points (n, 3) projected on the upper-arm axis."""
        return (p - self.knots[0]) @ self.dirs[0]

    def polar(self, s: float, r: float) -> np.ndarray | None:
        """(A,) radii from the axis at station s, at the polar angles `_PHI` (0 = down, pi/2 =
        front), of the arm's section there, its convex hull offset by r; None if the plane misses."""
        p, t, e1, e2 = self.frame(s)
        sec = plane_sections(self.body.vertices, self.faces, p, t)
        seg = np.asarray(sec.segments)
        if len(seg) == 0:
            return None
        labels, inv = np.unique(sec.loop, return_inverse=True)
        mids = np.zeros((len(labels), 3))
        np.add.at(mids, inv, seg.mean(axis=1))
        mids /= np.bincount(inv)[:, None]
        keep = inv == np.argmin(np.linalg.norm(mids - p, axis=1))  # the loop round the axis
        q = seg[keep].reshape(-1, 3) - p
        Q = _offset_polygon(np.stack([q @ e2, q @ e1], axis=1), r)  # (front, down) coordinates
        return _polar(Q, np.zeros(2), _PHI)

    def at(self, s, angles, radii) -> np.ndarray:
        """Points (n, 3) at stations s (n,) (or one), polar angles (n,) and radii (n,) about the axis."""
        angles = np.asarray(angles, np.float64)
        p, _, e1, e2 = self.frames(np.broadcast_to(np.asarray(s, np.float64), angles.shape))
        r = np.asarray(radii, np.float64)[:, None]
        return p + r * (np.cos(angles)[:, None] * e1 + np.sin(angles)[:, None] * e2)

    def cylindrical(self, pts: np.ndarray):
        """Stations (n,), polar angles (n,) and radii (n,) of points (n, 3) about the upper-arm axis."""
        s = self.station(pts)
        _, t, e1, e2 = self.frame(0.0)
        d = pts - (self.knots[0] + s[:, None] * self.dirs[0])
        return s, np.arctan2(d @ e2, d @ e1), np.linalg.norm(d - (d @ t)[:, None] * t, axis=1)


def _polar_at(table: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Radii at any angles from a polar table (..., A) sampled at `_PHI` (periodic, linear)."""
    f = ((np.asarray(angles) + np.pi) % (2 * np.pi)) / (2 * np.pi) * N_POLAR - 0.5
    j0 = np.floor(f).astype(np.int64)
    w = f - j0
    return table[..., j0 % N_POLAR] * (1 - w) + table[..., (j0 + 1) % N_POLAR] * w


def _even_angles(table: np.ndarray, start: float, n: int) -> np.ndarray:
    """(n,) increasing polar angles from `start` that split a polar contour (A,) into n equal arcs."""
    phi = start + np.linspace(0.0, 2 * np.pi, 4 * N_POLAR + 1)
    r = _polar_at(table, phi)
    xy = r[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=1)
    run = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
    return np.interp(np.arange(n) * run[-1] / n, run, phi)


def _sleeve(mesh: _Mesh, body: _Body, fr: _TopFrame, armhole_ids: np.ndarray, sign: int, chart: dict, style: dict, h: float):
    """Adds a sleeve from its armhole loop (ids, starting at the underarm, front first) to its end.

    Each ring round the arm is its section's offset hull split into equal arcs from the underarm
    column, so the columns stay evenly spaced down to a narrow cuff. The cap between the armhole
    and the first ring is lofted in the arm's cylindrical coordinates (station, polar angle,
    radius about the bone axis): the angles blend from the armhole's to the ring's, and away from
    the armhole the radius stays outside the arm's offset hull, so the cap cannot fold.
    """
    arm = _Arm(body, sign)
    loop = mesh.vertices()[armhole_ids]
    n = len(loop)
    r_top, r_end = style["sleeve_r"]
    s_loop, angles, rho_loop = arm.cylindrical(loop)
    angles = angles[0] + np.unwrap(angles - angles[0])
    if angles[-1] < angles[0]:
        raise FitroomError("garment_failed", "The armhole does not run round the arm; the body is not in its rest pose.")
    s_sp = float(s_loop[np.argmax(loop[:, 1])])
    s0 = float(s_loop.max()) + 0.025
    s_end = min(max(s_sp + chart["sleeve_cm"] / 100, s0 + 0.02), arm.lengths.sum() - 0.03)
    stations = np.linspace(s0, s_end, max(1, int(round((s_end - s0) / h))) + 1)
    rs = np.interp(stations, [s0, s_end], [r_top, r_end])
    tables = [arm.polar(st, r) for st, r in zip(stations, rs)]
    ring_angles = [_even_angles(tb, angles[0], n) for tb in tables]
    rings = [arm.at(st, a, _polar_at(tb, a)) for st, a, tb in zip(stations, ring_angles, tables)]
    # The arm's offset hull between the armhole and the first ring, as a table over stations.
    cap_tables = [(st, arm.polar(st, r_top)) for st in np.arange(max(float(s_loop.min()), 0.0), s0, 0.01)]
    cap_tables = [(st, tb) for st, tb in cap_tables if tb is not None] + [(s0, tables[0])]
    t_s = np.array([st for st, _ in cap_tables])
    t_r = np.stack([tb for _, tb in cap_tables])  # (k, A)
    rho0 = _polar_at(tables[0], ring_angles[0])
    n_cap = max(2, int(round(float(np.linalg.norm(rings[0] - loop, axis=1).max()) / h)))
    cap = []
    for t in np.linspace(0.0, 1.0, n_cap + 1)[1:-1]:
        s = (1 - t) * s_loop + t * s0
        a = (1 - t) * angles + t * ring_angles[0]
        rho = (1 - t) * rho_loop + t * rho0
        k = np.clip(np.searchsorted(t_s, s) - 1, 0, len(t_s) - 2)
        w = np.clip((s - t_s[k]) / (t_s[k + 1] - t_s[k]), 0.0, 1.0)
        floor = _polar_at(t_r[k], a)[np.arange(n), np.arange(n)] * (1 - w) + _polar_at(t_r[k + 1], a)[np.arange(n), np.arange(n)] * w
        # The arm's hull binds away from the armhole; at the armhole the cap leaves the torso
        # as the armhole does (under the arm the hull may reach past the underarm point).
        cap.append(arm.at(s, a, rho + min(1.0, 2.0 * t) * np.maximum(floor - rho, 0.0)))
    cap_ids = mesh.add(_push_out(body, np.concatenate(cap), CLEARANCE + 0.002)).reshape(n_cap - 1, -1)
    ring_ids = np.stack([mesh.add(r) for r in rings])
    mesh.grid(np.concatenate([armhole_ids[None], cap_ids, ring_ids]), closed=True)


def _build_top(body: _Body, kind: str, chart: dict, h: float):
    """Vertices (n, 3), faces (m, 3) and attached (n,) of a t-shirt, long-sleeve shirt or dress."""
    fr = _cached_frame(body, kind, chart)
    env, lv = fr.env, body.levels
    style = TOP_STYLE[kind]
    mesh = _Mesh()
    ring_u = _ring(env, fr.y_u, 64, 64)
    c_front = max(8, int(round(_length(ring_u[:65]) / h)))
    c_back = max(8, int(round(_length(np.concatenate([ring_u[64:], ring_u[:1]])) / h)))
    # Torso tube: rings from the hem up to the underarm, through the waist and hip levels; the
    # side seams run straight down from the underarm points (constant z).
    z_side = fr.z_u
    ys = _grid_heights(fr.y_hem, fr.y_u, h, must=(lv["waist"], lv["hip"]))
    tube = np.stack([mesh.add(_ring(env, y, c_front, c_back, None if y == ys[-1] else z_side)) for y in ys])
    mesh.grid(tube, closed=True)
    top = tube[-1]
    U_r, U_l = top[0], top[c_front]
    front_row = top[: c_front + 1]
    back_row = np.concatenate([top[c_front:], top[:1]])
    # Seams and openings of the yoke.
    sh_len = _length(_shoulder_seam(fr, +1, 20))
    k_s = max(2, int(round(sh_len / h)))
    k_s = min(k_s, (min(c_front, c_back) - 3) // 2)
    k_nf, k_nb = c_front - 2 * k_s, c_back - 2 * k_s
    r_f = max(3, int(round(_length(_armhole(fr, 1, True, 60)) / h)))
    r_b = max(3, int(round(_length(_armhole(fr, 1, False, 60)) / h)))
    sp = {sg: mesh.add(_armhole(fr, sg, True, 1)[-1])[0] for sg in (1, -1)}
    hps = {sg: mesh.add(_shoulder_seam(fr, sg, 1)[-1])[0] for sg in (1, -1)}
    arm_ids = {}
    for sg in (1, -1):
        for fb, n in ((True, r_f), (False, r_b)):
            pts = _armhole(fr, sg, fb, n)
            arm_ids[(sg, fb)] = np.concatenate([[U_l if sg > 0 else U_r], mesh.add(pts[1:-1]), [sp[sg]]])
    seam = {sg: np.concatenate([[sp[sg]], mesh.add(_shoulder_seam(fr, sg, k_s)[1:-1]), [hps[sg]]]) for sg in (1, -1)}
    neck_f = np.concatenate([[hps[-1]], mesh.add(_neckline(fr, True, k_nf)[1:-1]), [hps[1]]])
    neck_b = np.concatenate([[hps[1]], mesh.add(_neckline(fr, False, k_nb)[::-1][1:-1]), [hps[-1]]])
    # Yoke patches (bottom row, top row, left column, right column), all bottom-to-top and
    # left-to-right as seen from outside; they share the underarm ring, the shoulder seams and
    # the armholes with their neighbours.
    patches = [
        (front_row, np.concatenate([seam[-1], neck_f[1:-1], seam[1][::-1]]), arm_ids[(-1, True)], arm_ids[(1, True)]),
        (back_row, np.concatenate([seam[1], neck_b[1:-1], seam[-1][::-1]]), arm_ids[(1, False)], arm_ids[(-1, False)]),
    ]
    y_flat = fr.y_sp - 0.01

    def onto_yoke(p):
        """Onto the envelope up the chest and back; on the near-horizontal tops of the shoulders,
        where a horizontal ray meets the envelope ill-conditioned, onto the body offset by R_TOP
        along its normal (the patch's blend of its boundary stood up to 7 cm off the collarbones
        beside a deep front neckline, a collar-like flap)."""
        w = np.clip((y_flat - p[:, 1]) / 0.02, 0.0, 1.0)[:, None]
        top = w[:, 0] < 1.0
        wrapped = p.copy()
        d, away = _body_distance(body, p[top])
        wrapped[top] -= away * (d - R_TOP)[:, None]
        q = w * env.project(p) + (1.0 - w) * wrapped
        return _push_out(body, q, CLEARANCE + 0.002, mask=top, rounds=2)

    for B, T, L, R in patches:
        V = mesh.vertices()
        P = _even_grid(_coons(V[B], V[T], V[L], V[R]), onto_yoke)
        ids = np.empty((len(L), len(B)), np.int64)
        ids[0], ids[-1], ids[:, 0], ids[:, -1] = B, T, L, R
        ids[1:-1, 1:-1] = mesh.add(P[1:-1, 1:-1].reshape(-1, 3)).reshape(len(L) - 2, len(B) - 2)
        mesh.grid(ids, closed=False)
    # Sleeves: armhole loops start at the underarm and run up the front first.
    for sg in (1, -1):
        loop = np.concatenate([arm_ids[(sg, True)], arm_ids[(sg, False)][::-1][1:-1]])
        _sleeve(mesh, body, fr, loop, sg, chart, style, h)
    V = mesh.vertices()
    return V, mesh.faces, np.zeros(len(V), bool)


_FRAMES: dict = {}


def _cached_frame(body: _Body, kind: str, chart: dict) -> _TopFrame:
    key = (id(body), kind, tuple(sorted(chart.items())))
    if key not in _FRAMES:
        _FRAMES[key] = _top_frame(body, kind, chart)
    return _FRAMES[key]


# ---------------------------------------------------------------------------------------------
# Skirts and trousers
# ---------------------------------------------------------------------------------------------

WAISTBAND_M = 0.02  # height of the attached band at the top of skirts and trousers
BAND_ABOVE_WAIST_M = 0.015  # the band's top edge above the body's waist level


def _build_skirt(body: _Body, chart: dict, h: float):
    """Vertices, faces, attached of a skirt: rings from the waistband to the hem, flaring below the hip."""
    lv = body.levels
    y_top = lv["waist"] + BAND_ABOVE_WAIST_M
    y_hem = y_top - chart["length_cm"] / 100
    knots = [(y_top, chart["waist_cm"] / 100), (lv["waist"], chart["waist_cm"] / 100), (lv["hip"], chart["hip_cm"] / 100), (y_hem, chart["hem_cm"] / 100)]
    env = _cached_env(body, "skirt", chart, y_hem, y_top, knots)
    ys = _grid_heights(y_hem, y_top, h, must=(lv["waist"], lv["hip"], y_top - WAISTBAND_M))
    mean_p = np.mean([env.perimeter(y) for y in ys[:: max(1, len(ys) // 8)]])
    n = max(12, 2 * int(round(mean_p / h / 2)))
    mesh = _Mesh()
    rings = np.stack([mesh.add(_centre_ring(env, y, n)) for y in ys])
    mesh.grid(rings, closed=True)
    V = mesh.vertices()
    return V, mesh.faces, V[:, 1] >= y_top - WAISTBAND_M - 1e-9


def _centre_ring(env: _Envelope, y: float, n: int) -> np.ndarray:
    """(n, 3) ring from the front centre (index 0) round the left side to the back centre (n / 2)."""
    left = env.arc(y, 0.0, np.pi, n // 2)
    right = env.arc(y, np.pi, 2 * np.pi, n // 2)
    return np.concatenate([left[:-1], right[:-1]])


_ENVS: dict = {}


def _cached_env(body, kind, chart, lo, hi, knots) -> _Envelope:
    key = (id(body), kind, tuple(sorted(chart.items())))
    if key not in _ENVS:
        lv = body.levels
        heights = _grid_heights(lo, hi, 0.004, must=(lv["waist"], lv["hip"]))
        _ENVS[key] = _lower_envelope(body, heights, knots, hang=kind == "skirt")
    return _ENVS[key]


def _leg_contours(body: _Body, heights: np.ndarray, sign: int, r_top: float, knee_y: float, hem_g: float, eps: float = 0.0025):
    """Per height (descending from the crotch), the (D, 2) offset hull of one leg's section (x > 0
    for sign +1), cut at |x| >= eps so that the legs never cross. The offset starts at the torso's
    (the leg continues the seat), then the girth runs straight to the knee and the hem."""
    pts = [q[sign * q[:, 0] > 0] for q in _section_points(body, heights, body.arm == 0)]
    p_hull = np.array([polygon_perimeter(convex_hull_2d(q)) for q in pts])
    g_top = p_hull[0] + 2 * np.pi * r_top
    g_knee = max(hem_g, float(np.interp(knee_y, heights[::-1], p_hull[::-1])) + 2 * np.pi * 0.012)
    g = _profile(heights, [(heights[0], g_top), (knee_y, g_knee), (heights[-1], hem_g)])
    out = []
    for q, gi, pi in zip(pts, g, p_hull):
        Q = _offset_polygon(q, max((gi - pi) / (2 * np.pi), R_MIN))
        Q[:, 0] = sign * np.maximum(sign * Q[:, 0], eps)
        out.append(Q)
    return out


def _build_trousers(body: _Body, chart: dict, h: float):
    """Vertices, faces, attached of trousers: torso rings to below the crotch, a bridge, two legs."""
    lv, j = body.levels, body.joints
    y_top = lv["waist"] + BAND_ABOVE_WAIST_M
    y_c = lv["crotch"] - 0.02
    ankle = min(j["foot.L"][1], j["foot.R"][1])
    y_hem = max(y_top - chart["length_cm"] / 100, ankle + 0.015)
    waist_g, hip_g = chart["waist_cm"] / 100, chart["hip_cm"] / 100
    knots = [(y_top, waist_g), (lv["waist"], waist_g), (lv["hip"], hip_g), (y_c, hip_g)]
    env = _cached_env(body, "trousers", chart, y_c, y_top, knots)
    ys = _grid_heights(y_c, y_top, h, must=(lv["waist"], lv["hip"], y_top - WAISTBAND_M))
    n = max(16, 2 * int(round(env.perimeter(lv["hip"]) / h / 2)))
    m = n // 2
    mesh = _Mesh()
    rings = np.stack([mesh.add(_centre_ring(env, y, n)) for y in ys])
    mesh.grid(rings, closed=True)
    V = mesh.vertices()
    bottom = rings[0]
    f, b = V[bottom[0]], V[bottom[m]]
    k = max(1, int(round(np.linalg.norm(f - b) / h)) - 1)
    bridge = mesh.add(f + (b - f) * np.linspace(0, 1, k + 2)[1:-1, None])
    knee_y = 0.5 * (j["lowerleg01.L"][1] + j["lowerleg01.R"][1])
    hem_g = chart["hem_cm"] / 100
    leg_ys = _grid_heights(y_hem, y_c, h)[:-1][::-1]  # from just below the crotch down to the hem
    for sign in (1, -1):
        if sign > 0:  # front centre, round the left side, back centre, bridge back to the front
            top = np.concatenate([bottom[: m + 1], bridge[::-1]])
        else:
            top = np.concatenate([bottom[m:], bottom[:1], bridge])
        Vt = mesh.vertices()[top]
        centre = Vt[:, [0, 2]].mean(axis=0)
        angles = np.arctan2(Vt[:, 0] - centre[0], Vt[:, 2] - centre[1])
        r_c = float(env.r[np.argmin(np.abs(env.heights - y_c))])
        contours = _leg_contours(body, leg_ys, sign, r_c, knee_y, hem_g)
        ids = [top]
        for y, Q in zip(leg_ys, contours):
            xy = _polar_points(Q[:, [0, 1]], angles)
            ids.append(mesh.add(np.stack([xy[:, 0], np.full(len(xy), y), xy[:, 1]], axis=1)))
        mesh.grid(np.stack(ids), closed=True)
    V = mesh.vertices()
    return V, mesh.faces, V[:, 1] >= y_top - WAISTBAND_M - 1e-9


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------

# A split-quad grid of edge h has about one vertex per h^2 of garment. The garment's area is
# about this factor times its length times its chest (or hip) girth, measured on XS-XL of both
# sexes within 7 %: it sets the first build's h, and each build's area the next one's.
_AREA_FACTOR = {"tshirt": 1.45, "longsleeve": 1.94, "dress": 1.30, "skirt": 1.12, "trousers": 1.31}
_EDGE: dict = {}  # (body, kind, chart, target vertices) -> the edge length h the search settled on


def _build(body: _Body, kind: str, chart: dict, h: float):
    """Vertices (n, 3), faces (m, 3) wound outward, pushed off the body; attached (n,)."""
    top = kind in ("tshirt", "longsleeve", "dress")
    if top:
        V, pieces, attached = _build_top(body, kind, chart, h)
    elif kind == "skirt":
        V, pieces, attached = _build_skirt(body, chart, h)
    else:
        V, pieces, attached = _build_trousers(body, chart, h)
    V = _push_out(body, V, CLEARANCE)
    F = _flip_slivers(V, _orient_outward(V, pieces, body))
    if top:  # the yoke, the sleeves and where they meet the tube
        V = _untangle(V, F, body, V[F, 1].max(axis=1) >= _cached_frame(body, kind, chart).y_u - 0.03)
        F = _flip_slivers(V, F)
    # Needles where grid rows meet an opening or an armhole at a grazing angle: merged away.
    V, F, source = collapse_needles(V, F)
    merged = np.zeros(len(V), bool)
    np.logical_or.at(merged, source, attached)
    return V, _flip_slivers(V, F), merged


def procedural_garment(
    model: BodyModel, kind: str, size: str, sex: str = "female", target_vertices: int = 10_000
) -> Garment:
    """A garment of `kind` graded to `size`, authored round that size's reference body.

    Parameters
    ----------
    model : the body model (Anny), any backend.
    kind : one of `GARMENT_KINDS`.
    size : XS..XL.
    sex : `female` or `male` (the size chart it is graded on).
    target_vertices : about how many vertices the mesh has (within 15 %).

    Returns
    -------
    Garment
        vertices (N, 3) float64 and faces (F, 3) int64 wound outward, `attached` marking a skirt's or
        trousers' waistband, the reference body's vertices, and the garment's own girths (cm)
        where it has them, measured by `garment_girths`: at the body's waist and hip levels, and
        for a top's chest on its chest line, 2 cm below its underarm.

    Raises FitroomError (`bad_kind`, `bad_size`, `bad_sex`, `bad_resolution`).
    """
    if kind not in GARMENT_KINDS:
        raise FitroomError("bad_kind", f"Garment kind must be one of {', '.join(GARMENT_KINDS)}, not {kind!r}.")
    size = _normalised(size, sex)
    if not 500 <= int(target_vertices) <= 200_000:
        raise FitroomError("bad_resolution", f"target_vertices must be between 500 and 200000, not {target_vertices}.")
    chart = garment_measurements(kind, size, sex)
    body = _body_context(model, size, sex)
    # The edge length found for these arguments is kept, so that a garment depends on its
    # arguments only (seeding the search with another resolution's area changed the mesh).
    key = (id(body), kind, tuple(sorted(chart.items())), int(target_vertices))
    h = _EDGE.get(key)
    if h is not None:
        V, F, attached = _build(body, kind, chart, h)
    else:
        area = _AREA_FACTOR[kind] * chart["length_cm"] * chart.get("chest_cm", chart["hip_cm"]) / 1e4
        for _ in range(3):
            h = float(np.sqrt(area / target_vertices))
            V, F, attached = _build(body, kind, chart, h)
            area = len(V) * h * h
            if abs(len(V) / target_vertices - 1) < 0.10:
                break
        _EDGE[key] = h
    levels = {k: body.levels[k] for k in ("chest", "waist", "hip") if f"{k}_cm" in chart}
    girths = garment_girths(V, F, levels)
    return Garment(
        vertices=V,
        faces=F.astype(np.int64),
        attached=np.asarray(attached, bool),
        body_vertices=body.vertices.copy(),
        kind=kind,
        size=size,
        sex=sex,
        girths_cm={k: round(float(v), 2) for k, v in girths.items()},
    )
