"""Synthetic shoppers: Anny bodies of known shape, posed and photographed like a phone capture.

Used by `make demo`, the tests and the avatar accuracy benchmark. A sample is a shape vector
(`sample_body`, stature solved to the requested height), a relaxed standing pose
(`natural_standing_pose`) and full-length photos (`render_photos`): 1080x1920 portrait, the focal
length the fit assumes for a phone photo without metadata (`avatar.fit.default_focal_px`, a 26 mm
equivalent lens: about 72 degrees of vertical field of view), the camera at chest height aimed at
the middle of the body, far enough (about 1.3-1.8 m with that lens) that the body fills `fill`
(80 %) of the frame height. (At 2.5-3.5 m that lens sees a body at only 45-55 % of the frame
height, at or below the capture checks' 50 % minimum.) The side view turns the body 90 degrees to
face +X, its right side to the camera. The shopper wears tight dark trunks (and a top for women)
over a skin colour drawn from a palette, in front of a plain light wall on a light floor.

Stature is the reference-pose body's height from the soles to the top of the head, as
`avatar.reference_body.rest_body` and `fitroom measure` take it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.backend import to_numpy
from engine.body_model import (
    BodyModel,
    body_vertices,
    forward_kinematics,
    identity_pose,
    rest_shape,
    shape_coefficients,
    skin,
)
from engine.rotations import rotvec_to_matrix

SEX_GENDER = {"female": 1.0, "male": 0.0}
VIEW_YAW_DEG = {"front": 0.0, "side": 90.0}  # side: the body faces +X, the camera's right
PHOTO_SIZE = (1080, 1920)  # width, height: a phone's portrait photo

# Skin tones (sRGB), light to dark, and underwear colours (sRGB).
SKIN_TONES = (
    (241, 198, 170),
    (226, 176, 145),
    (204, 148, 112),
    (172, 114, 82),
    (132, 86, 60),
    (96, 62, 44),
)
CLOTH_COLOURS = ((38, 38, 44), (30, 46, 84), (84, 32, 42), (52, 60, 52))
WALL_SRGB = (0.93, 0.92, 0.90)
FLOOR_LINEAR = (0.62, 0.58, 0.54)


def _srgb_to_linear(c) -> np.ndarray:
    c = np.asarray(c, np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _adult_shape(model: BodyModel, gender: float) -> np.ndarray:
    s = np.zeros(model.n_shape)
    s[: len(model.phenotype_labels)] = 0.5
    s[model.phenotype_labels.index("gender")] = gender
    s[model.phenotype_labels.index("age")] = 0.75
    return s


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) of smallest angle taking direction a (3,) to direction b (3,)."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-12:
        return np.eye(3)
    return to_numpy(rotvec_to_matrix(axis / s * np.arctan2(s, c)))


def _rot(axis, deg: float) -> np.ndarray:
    axis = np.asarray(axis, np.float64)
    return to_numpy(rotvec_to_matrix(axis / np.linalg.norm(axis) * np.deg2rad(deg)))


def _reference_heads(model: BodyModel, shape: np.ndarray) -> np.ndarray:
    """Bone heads (B, 3) host float64 in the reference pose (identity deltas), which is not the
    blendshapes' rest pose: the pose deltas are defined about the reference pose's bones."""
    xp = model.xp
    rest = rest_shape(model, shape_coefficients(model, shape), vertex_ids=xp.arange(1))
    return to_numpy(forward_kinematics(model, rest, identity_pose(model), xp.zeros(3)).heads).astype(np.float64)


def natural_standing_pose(
    model: BodyModel,
    rng: np.random.Generator | None = None,
    arm_abduction_deg: float = 15.0,
    elbow_bend_deg: float = 12.0,
    shape: np.ndarray | None = None,
) -> np.ndarray:
    """A relaxed standing pose (B, 3, 3) of delta rotations, host float64.

    The upper arms hang `arm_abduction_deg` out from vertical in the frontal plane, leaving a gap
    between arm and waist as try-on capture apps ask; the elbows bend forward by `elbow_bend_deg`;
    the legs are straight with the feet about hip-width apart, flat on the floor and turned out a
    few degrees.

    Parameters
    ----------
    model : BodyModel
    rng : numpy Generator or None
        With a generator, small random variations (each a few degrees): abduction, elbow bend,
        arm swing, leg spread, head and trunk tilt, left and right drawn separately. None: the
        symmetric pose exactly.
    arm_abduction_deg, elbow_bend_deg : float, degrees
    shape : (S,) or None
        The body whose reference-pose skeleton sets the bone directions (the mean adult when None;
        the directions vary little with shape).
    """
    B = model.n_bones
    heads = _reference_heads(model, _adult_shape(model, 0.5) if shape is None else shape)
    pose = np.broadcast_to(np.eye(3), (B, 3, 3)).copy()
    jitter = (lambda sd: float(rng.normal(0.0, sd))) if rng is not None else (lambda sd: 0.0)  # noqa: E731
    bone = model.bone

    for side, sign in (("L", 1.0), ("R", -1.0)):  # the body's left is +X (it faces +Z)
        # Arms: upper arm turned to the target direction, forearm bent forward from it.
        abd = np.deg2rad(np.clip(arm_abduction_deg + jitter(2.0), 6.0, 30.0))
        swing = np.deg2rad(jitter(3.0))  # forward (+) / backward arm swing
        upper_dir = np.array([sign * np.sin(abd), -np.cos(abd) * np.cos(swing), np.cos(abd) * np.sin(swing)])
        u, lo, wr = bone(f"upperarm01.{side}"), bone(f"lowerarm01.{side}"), bone(f"wrist.{side}")
        D_upper = _align(heads[lo] - heads[u], upper_dir)
        pose[u] = D_upper  # its parents (shoulder, clavicle, spine) stay at identity
        bend = np.deg2rad(np.clip(elbow_bend_deg + jitter(4.0), 0.0, 35.0))
        lateral = np.cross(upper_dir, [0.0, 0.0, 1.0])
        forward = np.cross(lateral, upper_dir)
        forward /= np.linalg.norm(forward)
        fore_dir = np.cos(bend) * upper_dir + np.sin(bend) * forward
        # G_lower = G_upper D_lower must take the rest forearm direction to fore_dir.
        pose[lo] = _align(heads[wr] - heads[lo], D_upper.T @ fore_dir)

        # Legs: the whole leg turned at the hip so the ankle sits a little outside the hip joint.
        ul, ft = bone(f"upperleg01.{side}"), bone(f"foot.{side}")
        leg = heads[ft] - heads[ul]
        spread = np.deg2rad(2.0 + jitter(1.0))
        target = np.array([sign * np.sin(spread), -np.cos(spread), 0.0])
        D_leg = _align(leg, target)
        pose[ul] = D_leg
        # Feet flat: undo the leg's turn at the foot (G_foot = D_leg D_foot), then turn the toes out.
        pose[ft] = D_leg.T @ _rot([0.0, 1.0, 0.0], sign * (4.0 + jitter(3.0)))

    if rng is not None:
        pose[bone("spine03")] = _rot([1.0, 0.0, 0.0], jitter(1.5)) @ _rot([0.0, 0.0, 1.0], jitter(1.0))
        pose[bone("neck01")] = _rot([1.0, 0.0, 0.0], jitter(3.0)) @ _rot([0.0, 0.0, 1.0], jitter(2.0))
    return pose


def stature_cm(model: BodyModel, shape: np.ndarray) -> float:
    """Stature (cm): top of the head to the soles of the rest (reference-pose) body of `shape` (S,)."""
    y = to_numpy(body_vertices(model, shape))[:, 1]
    return float(y.max() - y.min()) * 100.0


def solve_height(model: BodyModel, shape: np.ndarray, height_cm: float, tol_cm: float = 0.05) -> np.ndarray:
    """`shape` (S,) with its stature set to `height_cm` (a copy).

    Bisection on the `height` phenotype in [0, 1]; when that range cannot reach the target, the
    phenotype stays at its end and the `measure-upperleg-height-incr` and
    `measure-lowerleg-height-incr` local changes (together, in [-1, 1]) are solved instead.
    Raises ValueError when neither reaches it.
    """
    s = np.array(shape, np.float64)
    h = model.phenotype_labels.index("height")
    n_ph = len(model.phenotype_labels)
    legs = [n_ph + model.local_change_labels.index(k) for k in
            ("measure-upperleg-height-incr", "measure-lowerleg-height-incr")]

    def bisect(set_value, lo, hi):
        set_value(lo)
        f_lo = stature_cm(model, s) - height_cm
        set_value(hi)
        f_hi = stature_cm(model, s) - height_cm
        if f_lo > 0 or f_hi < 0:
            return f_lo > 0  # True: target below the range; False: above
        for _ in range(40):
            # Stature is close to linear in these parameters: a secant step inside the bracket
            # converges in a few evaluations, halving keeps it safe.
            mid = lo + (hi - lo) * float(np.clip(-f_lo / (f_hi - f_lo), 0.1, 0.9))
            set_value(mid)
            f = stature_cm(model, s) - height_cm
            if abs(f) <= tol_cm:
                return None
            if f < 0:
                lo, f_lo = mid, f
            else:
                hi, f_hi = mid, f
        return None

    def set_height(v):
        s[h] = v

    below = bisect(set_height, 0.0, 1.0)
    if below is None:
        return s
    s[h] = 0.0 if below else 1.0

    def set_legs(v):
        s[legs] = v

    if bisect(set_legs, -1.0, 1.0) is None:
        return s
    raise ValueError(f"no body of this shape is {height_cm:.1f} cm tall")


def sample_body(
    model: BodyModel,
    rng: np.random.Generator,
    sex: str = "female",
    height_cm: float = 170.0,
    local_change_sd: float = 0.0,
) -> np.ndarray:
    """A random adult shape vector (S,) of the given sex whose stature is `height_cm` (within 0.1 cm).

    Phenotypes: gender exactly 0 (male) or 1 (female), age uniform in [0.62, 0.9] (about 22 to 70
    years in Anny's age scale), muscle in [0.2, 0.8], weight in [0.1, 0.9] (lean to heavy),
    proportions in [0.2, 0.8]; height solved (`solve_height`). With `local_change_sd` > 0 the girth
    and torso local changes (not the leg lengths) get normal noise of that standard deviation,
    clipped to [-1, 1], for bodies off the phenotype manifold.
    """
    if sex not in SEX_GENDER:
        raise ValueError(f"sex must be 'female' or 'male', not {sex!r}")
    s = np.zeros(model.n_shape)
    ph = model.phenotype_labels
    s[ph.index("gender")] = SEX_GENDER[sex]
    s[ph.index("age")] = rng.uniform(0.62, 0.9)
    s[ph.index("muscle")] = rng.uniform(0.2, 0.8)
    s[ph.index("weight")] = rng.uniform(0.1, 0.9)
    s[ph.index("proportions")] = rng.uniform(0.2, 0.8)
    s[ph.index("height")] = 0.5
    if local_change_sd > 0:
        n_ph = len(ph)
        for k, label in enumerate(model.local_change_labels):
            if "height" in label or "length" in label or "dist" in label:
                continue
            s[n_ph + k] = np.clip(rng.normal(0.0, local_change_sd), -1.0, 1.0)
    return solve_height(model, s, height_cm)


def clothing_colors(model: BodyModel, shape: np.ndarray, skin_srgb, cloth_srgb, top: bool) -> np.ndarray:
    """Per-vertex linear RGB (V, 3): skin, with trunks (and a top when `top`) in `cloth_srgb`.

    The garments are cut on the reference-pose body: trunks from just below the hip joints' height
    to a few centimetres below the crotch, a top from the underbust to above the bust; arms and
    hands (by their skinning weights) stay bare.
    """
    v = to_numpy(body_vertices(model, shape)).astype(np.float64)
    heads = _reference_heads(model, shape)
    heads[:, 1] -= v[:, 1].min()
    v[:, 1] -= v[:, 1].min()
    H = v[:, 1].max()
    w = to_numpy(model.bone_weights).astype(np.float64)
    idx = to_numpy(model.bone_indices)
    arm_bones = np.array([any(k in b for k in ("arm", "wrist", "finger", "metacarpal")) for b in model.bone_labels])
    arm = (w * arm_bones[idx]).sum(1)
    hip = heads[model.bone("upperleg01.L")]
    # The crotch: the lowest torso point near the midline above the knees.
    mid = (np.abs(v[:, 0]) < 0.015) & (v[:, 1] > 0.35 * H) & (v[:, 1] < 0.6 * H)
    crotch = v[mid, 1].min() if mid.any() else hip[1] - 0.08 * H
    # Signed distances (metres, positive inside) to each garment's edges, blended over about one
    # edge length of the torso mesh. The edges are horizontal, like the mesh's rows of vertices, so
    # they do not show its triangles as teeth.
    scale = H / 1.7
    bare_arm = (0.3 - arm) * 0.1
    inside = np.minimum(np.minimum(v[:, 1] - (crotch - 0.035 * scale), hip[1] + 0.055 * scale - v[:, 1]), bare_arm)
    if top:
        band = np.minimum(np.minimum(v[:, 1] - 0.675 * H, 0.752 * H - v[:, 1]), bare_arm)
        inside = np.maximum(inside, band)
    t = np.clip(inside / 0.015 + 0.5, 0.0, 1.0)[:, None]
    t = t * t * (3.0 - 2.0 * t)
    return (1.0 - t) * _srgb_to_linear(skin_srgb) + t * _srgb_to_linear(cloth_srgb)


def placed_body(model: BodyModel, shape: np.ndarray, pose: np.ndarray, view: str = "front") -> np.ndarray:
    """Posed vertices (V, 3) host float64 as photographed: the body turned for `view` about the
    vertical through its root (front: facing +Z; side: facing +X), standing on the floor y = 0."""
    if view not in VIEW_YAW_DEG:
        raise ValueError(f"view must be one of {', '.join(VIEW_YAW_DEG)}, not {view!r}")
    xp = model.xp
    rest = rest_shape(model, shape_coefficients(model, shape))
    posed = forward_kinematics(model, rest, xp.asarray(pose), xp.zeros(3))
    v = to_numpy(skin(model, rest.vertices, posed)).astype(np.float64)
    v = v @ _rot([0.0, 1.0, 0.0], VIEW_YAW_DEG[view]).T
    v[:, 1] -= v[:, 1].min()
    return v


def photo_camera(
    vertices: np.ndarray,
    width: int = PHOTO_SIZE[0],
    height: int = PHOTO_SIZE[1],
    focal_px: float | None = None,
    fill: float = 0.8,
    camera_height_frac: float = 0.72,
    distance_m: float | None = None,
):
    """The phone camera for a body `vertices` (V, 3) standing on y = 0 around the vertical Y axis.

    The camera is on the +Z side at `camera_height_frac` of the body's height (chest height), aimed
    at the middle of the body, at `distance_m` or (None) at the distance where the body spans
    `fill` of the image height. `focal_px` None: `avatar.fit.default_focal_px(width, height)`.
    Returns a `streaming.render.PinholeCamera`.
    """
    from streaming.render import PinholeCamera

    if focal_px is None:
        from avatar.fit import default_focal_px

        focal_px = default_focal_px(width, height)
    top = float(vertices[:, 1].max())
    eye_y, target = camera_height_frac * top, np.array([0.0, 0.5 * top, 0.0])
    base = PinholeCamera(width=int(width), height=int(height), focal_px=float(focal_px))

    def at(d):
        return base.look_at([0.0, eye_y, d], target)

    if distance_m is None:
        lo, hi = 0.3, 50.0
        for _ in range(50):  # the projected height shrinks monotonically with distance
            d = 0.5 * (lo + hi)
            v = at(d).project(vertices)[:, 1]
            span = np.nan if np.isnan(v).any() else v.max() - v.min()
            if np.isnan(span) or span > fill * height:
                lo = d
            else:
                hi = d
        distance_m = hi
    return at(float(distance_m))


def render_photos(
    model: BodyModel,
    shape: np.ndarray,
    pose: np.ndarray,
    height_px: int = PHOTO_SIZE[1],
    width_px: int = PHOTO_SIZE[0],
    focal_px: float | None = None,
    views=("front", "side"),
    fill: float = 0.8,
    distance_m: float | None = None,
    rng: np.random.Generator | None = None,
    floor: bool = True,
) -> dict:
    """Full-length photos of a posed body, as a phone on a tripod would take them.

    Parameters
    ----------
    model : BodyModel
    shape : (S,) shape vector. pose : (B, 3, 3) delta rotations (`natural_standing_pose`).
    height_px, width_px : image size (portrait by default).
    focal_px : focal length in pixels; None: the fit's default for a phone photo of this size.
    views : any of "front" (the body faces the camera) and "side" (turned 90 degrees to face +X,
        the camera's right), all taken by the same camera, placed from the front view.
    fill : fraction of the image height the front body spans (ignored when `distance_m` is given).
    rng : picks the skin tone and underwear colour (None: a medium tone, dark grey underwear).
    floor : draw a floor under the feet (else only the plain wall colour).

    Returns
    -------
    dict view -> (rgb (height_px, width_px, 3) uint8 C-contiguous, PinholeCamera)
        The camera's pose is in the world frame of `placed_body(model, shape, pose, view)`.
    """
    from streaming.render import Surface, shared_renderer

    shape = np.asarray(shape, np.float64)
    pose = to_numpy(pose)
    female = shape[model.phenotype_labels.index("gender")] >= 0.5
    if rng is None:
        skin_srgb, cloth_srgb = SKIN_TONES[1], CLOTH_COLOURS[0]
    else:
        skin_srgb = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
        cloth_srgb = CLOTH_COLOURS[int(rng.integers(len(CLOTH_COLOURS)))]
    colors = clothing_colors(model, shape, skin_srgb, cloth_srgb, top=bool(female))
    faces = to_numpy(model.faces)
    placed = {view: placed_body(model, shape, pose, view) for view in views}
    front = placed["front"] if "front" in placed else placed_body(model, shape, pose, "front")
    camera = photo_camera(front, width_px, height_px, focal_px, fill=fill, distance_m=distance_m)
    renderer = shared_renderer(width_px, height_px)
    out = {}
    for view, v in placed.items():
        surfaces = [Surface(vertices=v, faces=faces, colors=colors, roughness=0.7)]
        if floor:
            surfaces.append(_floor(camera))
        rgb = renderer.render(surfaces, camera, background=WALL_SRGB, ambient=0.4)
        out[view] = (rgb, camera)
    return out


def _floor(camera):
    """A floor quad at y = 0 from 1.5 m behind the body to under the camera."""
    from streaming.render import Surface

    z_cam = float(camera.position[2])
    x = 4.0
    v = np.array([[-x, 0.0, -1.5], [x, 0.0, -1.5], [x, 0.0, z_cam + 1.0], [-x, 0.0, z_cam + 1.0]])
    f = np.array([[0, 2, 1], [0, 3, 2]])
    return Surface(vertices=v, faces=f, base_color=FLOOR_LINEAR, normals=np.tile([0.0, 1.0, 0.0], (4, 1)), roughness=0.9)


@dataclasses.dataclass(frozen=True)
class SamplePhoto:
    """A synthetic shopper's front photo with the truth behind it."""

    rgb: np.ndarray  # (H, W, 3) uint8
    camera: object  # streaming.render.PinholeCamera
    shape: np.ndarray  # (S,)
    pose: np.ndarray  # (B, 3, 3)
    sex: str
    height_cm: float


def demo_photo(model: BodyModel, seed: int = 7, sex: str = "female", height_cm: float = 172.0) -> SamplePhoto:
    """One front photo of a random shopper (deterministic for a seed) for `make demo`."""
    rng = np.random.default_rng(seed)
    shape = sample_body(model, rng, sex=sex, height_cm=height_cm)
    pose = natural_standing_pose(model, rng=rng)
    rgb, camera = render_photos(model, shape, pose, views=("front",), rng=rng)["front"]
    return SamplePhoto(rgb=rgb, camera=camera, shape=shape, pose=pose, sex=sex, height_cm=float(height_cm))
