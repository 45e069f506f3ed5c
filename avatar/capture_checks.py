"""Capture checks: is this photo a usable full-length view of one shopper? Pure functions of arrays.

Every check raises `fitroom.errors.FitroomError(code, message)` with a one-line reason. A photo
is refused for the first reason that applies, in this order (a picture that fits two reasons
gets the earlier one):

1. ``not_an_image``, ``image_too_large``: `avatar.photo_io` (unreadable; over 40 megapixels).
2. ``no_person``: no pose with at least `MIN_VISIBLE_LANDMARKS` visible landmarks.
3. ``several_people``: another person at least `OTHER_PERSON_MIN_RELATIVE_HEIGHT` of the tallest
   one's height (`check_people`).
4. ``body_cut_off``: the frame cuts off the head, the feet or a side of the body
   (`check_whole_body`).
5. ``person_too_small``: the person spans less than `MIN_PERSON_HEIGHT_FRACTION` of the frame
   height (`check_size`).
6. ``not_facing_camera`` / ``not_in_profile``: the body's turn does not fit the view
   (`check_orientation`).

Inputs are MediaPipe Pose's 33 landmarks (0 nose, 1-6 eyes, 7/8 ears, 11/12 shoulders, 23/24 hips,
27/28 ankles, 29/30 heels, 31/32 toes; odd = the person's left) as pixel coordinates
``landmarks_px`` (33, 2) float (x right, y down; they may lie outside the image), visibilities
``visibility`` (33,) in [0, 1], and metric ``world_landmarks`` (33, 3) (hip-centred, x right,
y down, z away from the camera).

The thresholds were set on renders of Anny bodies turned 0-180 degrees
(tests/avatar/test_capture_checks.py) and on the 12 COCO photos in ../shared/data/photos.
"""

from __future__ import annotations

import numpy as np

from fitroom.errors import FitroomError

#: A landmark counts as seen above this MediaPipe visibility.
VISIBLE = 0.5
#: A pose is a person with at least this many visible landmarks (the face is 11). Fewer is what
#: MediaPipe returns on a face-like pattern or a sliver of a body.
MIN_VISIBLE_LANDMARKS = 12
HEAD = (0, 1, 2, 3, 4, 5, 6, 7, 8)
SHOULDERS_HIPS = (11, 12, 23, 24)
FEET = (27, 28, 29, 30, 31, 32)
#: Two poses are one person when their torso centres are closer than this fraction of the taller's
#: height, or the shorter is under `SAME_PERSON_PARTIAL_HEIGHT` of the taller and inside its box.
SAME_PERSON_TORSO_DISTANCE = 0.12
SAME_PERSON_PARTIAL_HEIGHT = 0.6
#: Another person counts when at least this fraction of the tallest person's height, i.e. nearer
#: than three times the shopper's distance: passers-by far behind a shopper do not spoil the photo.
#: On the COCO photos the second people measure 0.5-0.8 of the tallest; a pose found in a logo 0.16.
OTHER_PERSON_MIN_RELATIVE_HEIGHT = 1.0 / 3.0
#: The person (top of the head to the heels) must span at least this fraction of the frame height:
#: with a phone's 26 mm-equivalent lens, standing within about 3 m of the camera.
MIN_PERSON_HEIGHT_FRACTION = 0.5
#: Head and feet landmarks must lie this far (fraction of the frame height) inside the frame.
EDGE_MARGIN = 0.005
#: The segmentation mask must not touch the top or bottom rows over more than this fraction of the
#: width (hair or toes cut even where the landmarks are inside) ...
MASK_EDGE_FRACTION = 0.02
#: ... nor run along the left or right edge over more than this fraction of the person's height:
#: a tennis player's hip and back at the edge measure 0.25, a hand touching it under 0.1.
MASK_SIDE_FRACTION = 0.1
#: The eyes are about 6 % of the stature below the top of the head.
EYE_TO_CROWN_FRACTION = 0.06
#: Body turn from the camera (degrees, `body_yaw_deg`) accepted for a front photo. On renders the
#: estimate is within 6 degrees of the truth up to 60 degrees: a body turned 25 degrees reads 24-30
#: and passes, one turned 35 degrees reads 37-40 and is refused.
FRONT_MAX_YAW_DEG = 35.0
#: Shoulder width over torso length in the image (`shoulder_ratio`) under which a front photo is
#: refused whatever the yaw says: 0.7 facing the camera, 0.5 at 45 degrees, under 0.35 from 60 on.
FRONT_MIN_SHOULDER_RATIO = 0.45
#: A side photo passes with a yaw of at least this, or a shoulder ratio of at most
#: `SIDE_MAX_SHOULDER_RATIO`. On renders 60 degrees reads 55-58 (ratio 0.31-0.35) and passes,
#: 90 degrees reads 76-85 (ratio under 0.06), 45 reads 44-46 (ratio 0.5) and is refused.
SIDE_MIN_YAW_DEG = 55.0
SIDE_MAX_SHOULDER_RATIO = 0.35


def visible_count(visibility: np.ndarray) -> int:
    """Number of visible landmarks in `visibility` (33,)."""
    return int((np.asarray(visibility) > VISIBLE).sum())


def person_height_px(landmarks_px: np.ndarray, visibility: np.ndarray) -> float:
    """Apparent height (px) of a person: the vertical extent of the visible landmarks, raised to the
    top of the head when the eyes are seen.

    landmarks_px : (33, 2) px. visibility : (33,).
    """
    vis = np.asarray(visibility) > VISIBLE
    ys = landmarks_px[vis, 1] if vis.sum() >= 2 else landmarks_px[:, 1]
    span = float(ys.max() - ys.min())
    if vis[[2, 5]].any():
        span /= 1.0 - EYE_TO_CROWN_FRACTION
    return span


def person_box(landmarks_px: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """(4,) px (x0, y0, x1, y1): the box of the visible landmarks (of all when fewer than 2 are)."""
    vis = np.asarray(visibility) > VISIBLE
    pts = landmarks_px[vis] if vis.sum() >= 2 else landmarks_px
    return np.concatenate([pts.min(0), pts.max(0)])


def torso_centre(landmarks_px: np.ndarray) -> np.ndarray:
    """(2,) px: the mean of the shoulders and hips."""
    return landmarks_px[list(SHOULDERS_HIPS)].mean(0)


def same_person(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether two poses, each (landmarks_px (33, 2), visibility (33,)), are one person seen twice.

    Either their torso centres are within `SAME_PERSON_TORSO_DISTANCE` of the taller's height
    (two people side by side are a body's width apart, over 0.2 of their height), or the shorter is
    under `SAME_PERSON_PARTIAL_HEIGHT` of the taller and its centre lies in the taller's box (a
    part of a person, e.g. the head and shoulders seen in a zoomed tile).
    """
    small, large = sorted((a, b), key=lambda p: person_height_px(*p))
    h_small, h_large = person_height_px(*small), person_height_px(*large)
    if np.hypot(*(torso_centre(small[0]) - torso_centre(large[0]))) < SAME_PERSON_TORSO_DISTANCE * h_large:
        return True
    if h_small >= SAME_PERSON_PARTIAL_HEIGHT * h_large:
        return False
    vis = np.asarray(small[1]) > VISIBLE
    centre = small[0][vis].mean(0) if vis.any() else small[0].mean(0)
    x0, y0, x1, y1 = person_box(*large)
    return bool(x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1)


def check_people(people: list[tuple[np.ndarray, np.ndarray]]) -> int:
    """Raises ``no_person`` or ``several_people`` unless the photo shows exactly one person.

    people : every pose found, as (landmarks_px (33, 2), visibility (33,)). Poses with fewer than
        `MIN_VISIBLE_LANDMARKS` visible landmarks are not people; people shorter than
        `OTHER_PERSON_MIN_RELATIVE_HEIGHT` of the tallest are bystanders far behind.

    Returns
    -------
    int : the index in `people` of the tallest person, the shopper.
    """
    found = [i for i, (_, vis) in enumerate(people) if visible_count(vis) >= MIN_VISIBLE_LANDMARKS]
    if not found:
        raise FitroomError("no_person", "No person was found in the photo.")
    heights = {i: person_height_px(*people[i]) for i in found}
    main = max(found, key=heights.get)
    others = [i for i in found if i != main and heights[i] >= OTHER_PERSON_MIN_RELATIVE_HEIGHT * heights[main]]
    if others:
        # The search for others stops at the first who counts: no head count is claimed.
        raise FitroomError("several_people", "The photo shows several people; it must show the shopper alone.")
    return main


def check_whole_body(
    landmarks_px: np.ndarray, visibility: np.ndarray, mask: np.ndarray | None, image_size: tuple[int, int]
) -> None:
    """Raises ``body_cut_off`` when the frame cuts off the head, the feet or a side of the body.

    landmarks_px : (33, 2) px. visibility : (33,). mask : (H, W) person probability, or None.
    image_size : (width, height) px.

    The head needs one visible face landmark and the feet two of the six ankle, heel and toe
    landmarks (one foot hides the other in profile), `EDGE_MARGIN` inside the frame; shoulders and
    hips need only lie inside it (in profile the far ones are hidden). The mask must not touch the
    top or bottom rows over `MASK_EDGE_FRACTION` of the width, nor a side over
    `MASK_SIDE_FRACTION` of the person's height (more than a hand or an elbow).
    """
    w, h = image_size
    margin = EDGE_MARGIN * h

    def inside(i, m=margin):
        x, y = landmarks_px[i]
        return m <= y <= h - m and 0.0 <= x <= w

    def seen(i):
        return visibility[i] > VISIBLE and inside(i)

    cut = []
    if not any(seen(i) for i in HEAD):
        cut.append("the head")
    if sum(seen(i) for i in FEET) < 2:
        cut.append("the feet")
    if not all(inside(i, 0.0) for i in SHOULDERS_HIPS):
        cut.append("a side of the body")
    if mask is not None:
        person = np.asarray(mask) > 0.5
        if person[:2].any(axis=0).sum() > MASK_EDGE_FRACTION * w:
            cut.append("the head")
        if person[-2:].any(axis=0).sum() > MASK_EDGE_FRACTION * w:
            cut.append("the feet")
        side = max(person[:, :2].any(axis=1).sum(), person[:, -2:].any(axis=1).sum())
        if side > MASK_SIDE_FRACTION * person_height_px(landmarks_px, visibility):
            cut.append("a side of the body")
    if cut:
        raise FitroomError(
            "body_cut_off",
            f"The photo cuts off {' and '.join(dict.fromkeys(cut))}; it must show the whole body, head to feet.",
        )


def check_size(landmarks_px: np.ndarray, visibility: np.ndarray, image_size: tuple[int, int]) -> None:
    """Raises ``person_too_small`` when the person spans less than `MIN_PERSON_HEIGHT_FRACTION` of
    the frame height.

    landmarks_px : (33, 2) px. visibility : (33,). image_size : (width, height) px.
    """
    frac = person_height_px(landmarks_px, visibility) / image_size[1]
    if frac < MIN_PERSON_HEIGHT_FRACTION:
        raise FitroomError(
            "person_too_small",
            f"The person fills {frac:.0%} of the photo's height; come closer so that the body fills "
            f"at least {MIN_PERSON_HEIGHT_FRACTION:.0%}.",
        )


def body_yaw_deg(world_landmarks: np.ndarray) -> float:
    """The body's turn from the camera (degrees): 0 facing it (or facing away), 90 in profile.

    world_landmarks : (33, 3) metres. The mean, over the shoulders and the hips, of the angle
    between the left-right axis and the image plane (x right, z depth).
    """
    angles = []
    for left, right in ((11, 12), (23, 24)):
        d = world_landmarks[left] - world_landmarks[right]
        angles.append(np.degrees(np.arctan2(abs(d[2]), abs(d[0]) + 1e-9)))
    return float(np.mean(angles))


def shoulder_ratio(landmarks_px: np.ndarray) -> float:
    """Shoulder width over torso length in the image: about 0.7 from the front, near 0 in profile.

    landmarks_px : (33, 2) px.
    """
    shoulders = abs(landmarks_px[11, 0] - landmarks_px[12, 0])
    torso = abs((landmarks_px[23, 1] + landmarks_px[24, 1]) / 2 - (landmarks_px[11, 1] + landmarks_px[12, 1]) / 2)
    return float(shoulders / max(torso, 1e-6))


def check_orientation(landmarks_px: np.ndarray, world_landmarks: np.ndarray, view: str) -> None:
    """Raises ``not_facing_camera`` when a front photo is not a front view, ``not_in_profile`` when
    a side photo is not a profile.

    landmarks_px : (33, 2) px. world_landmarks : (33, 3) metres. view : 'front' or 'side'.
    """
    yaw = body_yaw_deg(world_landmarks)
    ratio = shoulder_ratio(landmarks_px)
    if view == "front":
        # Facing the camera, the person's left shoulder is on the image's right. MediaPipe tells
        # left from right by the face, so from behind the order flips (renders: -290 px at 180 deg).
        if landmarks_px[11, 0] < landmarks_px[12, 0]:
            raise FitroomError(
                "not_facing_camera", "The person has their back to the camera; the front photo must face it."
            )
        if yaw > FRONT_MAX_YAW_DEG or ratio < FRONT_MIN_SHOULDER_RATIO:
            raise FitroomError(
                "not_facing_camera",
                f"The body is turned about {yaw:.0f} degrees from the camera; the front photo must face it squarely.",
            )
    elif view == "side":
        if yaw < SIDE_MIN_YAW_DEG and ratio > SIDE_MAX_SHOULDER_RATIO:
            raise FitroomError(
                "not_in_profile",
                f"The body is turned only about {yaw:.0f} degrees; the side photo must show it in profile (90 degrees).",
            )
    else:
        raise ValueError(f"view must be 'front' or 'side', not {view!r}")
