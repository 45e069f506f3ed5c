"""Capture checks: is this photo a usable full-length view of one person? Pure functions of arrays.

The checks run in this order, and the first that fails names the reason:
no person -> several people -> head or feet cut off -> person too small -> wrong orientation.

Landmark indices are MediaPipe Pose's 33 (0 nose, 11/12 shoulders, 23/24 hips, 27-32 ankles, heels
and toes). A "person" is one pose found with at least `MIN_VISIBLE_LANDMARKS` visible landmarks.
"""

from __future__ import annotations

import numpy as np

from fitroom.errors import FitroomError

MIN_VISIBLE_LANDMARKS = 12
VISIBLE = 0.5
HEAD = (0, 2, 5, 7, 8)  # nose, eyes, ears
FEET = (27, 28, 29, 30, 31, 32)  # ankles, heels, toes
# A second person counts when at least this tall relative to the main one: a passer-by far behind
# a full-length shopper (under a quarter of their height) does not confuse the fit.
OTHER_PERSON_MIN_RELATIVE_HEIGHT = 0.25
# The person (head to heels) must span at least this fraction of the frame height.
MIN_PERSON_HEIGHT_FRACTION = 0.5
# Margin (fraction of the frame) that head and feet must keep from the top and bottom edges.
EDGE_MARGIN = 0.005
# Body yaw (degrees) from the shoulders and hips in MediaPipe's metric world landmarks.
FRONT_MAX_YAW_DEG = 35.0
SIDE_MIN_YAW_DEG = 55.0


def person_height_px(landmarks_px: np.ndarray, visibility: np.ndarray) -> float:
    """The vertical extent (px) of a person's visible landmarks, widened to the top of the head.

    The eyes sit about 6 % of the stature below the top of the head.
    """
    vis = visibility > VISIBLE
    ys = landmarks_px[vis, 1] if vis.sum() >= 2 else landmarks_px[:, 1]
    span = float(ys.max() - ys.min())
    return span / 0.94 if vis[list(HEAD)].any() else span


def check_people(people: list[tuple[np.ndarray, np.ndarray]], image_size: tuple[int, int]) -> int:
    """Raises unless exactly one person is in the photo; returns the index of the main one.

    people : (landmarks_px (33, 2), visibility (33,)) of each pose found, main (first found) first.
    """
    found = [(lm, vis) for lm, vis in people if int((vis > VISIBLE).sum()) >= MIN_VISIBLE_LANDMARKS]
    if not found:
        raise FitroomError("no_person", "No person was found in the photo.")
    heights = [person_height_px(lm, vis) for lm, vis in found]
    main = int(np.argmax(heights))
    others = [h for i, h in enumerate(heights) if i != main and h >= OTHER_PERSON_MIN_RELATIVE_HEIGHT * heights[main]]
    if others:
        raise FitroomError(
            "several_people",
            f"The photo shows {1 + len(others)} people; it must show the shopper alone.",
        )
    return main


def check_whole_body(landmarks_px: np.ndarray, visibility: np.ndarray, mask: np.ndarray | None, image_size) -> None:
    """Raises when the head or the feet are outside the frame (or not visible)."""
    w, h = image_size
    margin = EDGE_MARGIN * h
    head_ok = any(visibility[i] > VISIBLE and margin < landmarks_px[i, 1] < h - margin for i in HEAD)
    feet_vis = [i for i in FEET if visibility[i] > VISIBLE and margin < landmarks_px[i, 1] < h - margin]
    missing = []
    if not head_ok:
        missing.append("head")
    if len(feet_vis) < 2:
        missing.append("feet")
    if mask is not None and not missing:
        # The person touching the bottom or top edge means a part is cut off even if landmarks guess it.
        person = mask > 0.5
        if person[:2].any(axis=0).sum() > 0.02 * w:
            missing.append("head")
        if person[-2:].any(axis=0).sum() > 0.02 * w:
            missing.append("feet")
    if missing:
        parts = list(dict.fromkeys(missing))
        verb = "is" if parts == ["head"] else "are"
        raise FitroomError(
            "body_cut_off",
            f"The {' and '.join(parts)} {verb} cut off: the photo must show the whole body from head to feet.",
        )


def check_size(landmarks_px: np.ndarray, visibility: np.ndarray, image_size) -> None:
    """Raises when the person spans less than half the frame height."""
    frac = person_height_px(landmarks_px, visibility) / image_size[1]
    if frac < MIN_PERSON_HEIGHT_FRACTION:
        raise FitroomError(
            "person_too_small",
            f"The person fills {frac:.0%} of the photo's height; step closer so that they fill at least "
            f"{MIN_PERSON_HEIGHT_FRACTION:.0%}.",
        )


def body_yaw_deg(world_landmarks: np.ndarray, visibility: np.ndarray) -> float:
    """The body's turn away from the camera (degrees, 0 = facing it, 90 = profile).

    From the left-right axes of the shoulders and the hips in MediaPipe's metric world landmarks
    (x right, z depth): the angle of that axis out of the image plane.
    """
    axes = []
    for left, right in ((11, 12), (23, 24)):
        d = world_landmarks[left] - world_landmarks[right]
        axes.append(np.degrees(np.arctan2(abs(d[2]), abs(d[0]) + 1e-9)))
    return float(np.mean(axes))


def check_orientation(
    landmarks_px: np.ndarray, visibility: np.ndarray, world_landmarks: np.ndarray, view: str
) -> None:
    """Raises when a front photo is not a front view, or a side photo not a profile."""
    yaw = body_yaw_deg(world_landmarks, visibility)
    # In a front view the shopper's left shoulder is on the image's right; in a back view it is not.
    facing_away = landmarks_px[11, 0] < landmarks_px[12, 0]
    shoulder_px = abs(landmarks_px[11, 0] - landmarks_px[12, 0])
    torso_px = abs((landmarks_px[23, 1] + landmarks_px[24, 1]) / 2 - (landmarks_px[11, 1] + landmarks_px[12, 1]) / 2)
    ratio = shoulder_px / max(torso_px, 1e-6)  # about 0.7-1.0 from the front, near 0 in profile
    if view == "front":
        if yaw > FRONT_MAX_YAW_DEG or ratio < 0.45 or facing_away:
            raise FitroomError(
                "not_facing_camera",
                f"The body is turned {yaw:.0f} degrees from the camera; the front photo must face it squarely.",
            )
    elif view == "side":
        if yaw < SIDE_MIN_YAW_DEG and ratio > 0.35:
            raise FitroomError(
                "not_in_profile",
                f"The body is turned only {yaw:.0f} degrees; the side photo must show a profile (about 90 degrees).",
            )
    else:
        raise ValueError(f"view must be 'front' or 'side', not {view!r}")
