"""Body capture from a photo with MediaPipe Pose (0.10.21, whose models ship inside the package).

`capture_photo` finds the people in the photo, runs the capture checks and returns the main
person's 2D landmarks, metric world landmarks and segmentation mask. MediaPipe's pose solution
tracks one person, so others are found by erasing each person found (their dilated mask painted
grey) and looking again; when that finds nobody full-size, a search over overlapping zoomed tiles
finds people too small for the whole-image detector (crowds, players far away).

Photos stay in memory: nothing here writes or logs pixels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading

import numpy as np

from avatar import capture_checks as checks
from fitroom.errors import FitroomError

MAX_EXTRA_PEOPLE = 2  # erase-and-look-again passes after the first person
DETECTION_CONFIDENCE = 0.5
# The look-again passes only need to detect: a smaller copy of the photo is enough and faster.
REDETECT_HEIGHT_PX = 640


@dataclasses.dataclass(frozen=True)
class Capture:
    """One person captured from one photo.

    image_size : (width, height) px; landmarks_px : (33, 2) px; visibility : (33,) in [0, 1];
    world_landmarks : (33, 3) metres, hip-centred, x right, y down, z away from the camera;
    mask : (H, W) float32 person probability; focal_px : from EXIF or None; view : 'front'|'side'.
    """

    image_size: tuple[int, int]
    landmarks_px: np.ndarray
    visibility: np.ndarray
    world_landmarks: np.ndarray
    mask: np.ndarray
    focal_px: float | None
    view: str


@contextlib.contextmanager
def _native_stderr_silenced():
    """MediaPipe's C++ (TFLite, absl) logs straight to file descriptor 2; a user error must stay one line."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _Detector:
    """MediaPipe Pose, built once per process (construction takes a while) and used under a lock."""

    _lock = threading.Lock()
    _pose = None

    @classmethod
    def run(cls, rgb: np.ndarray, segmentation: bool):
        import mediapipe as mp

        with cls._lock, _native_stderr_silenced():
            if cls._pose is None:
                # model_complexity=1 is the "full" landmark model bundled in the wheel; 2 (heavy)
                # would be downloaded at run time, which fails offline.
                cls._pose = {
                    seg: mp.solutions.pose.Pose(
                        static_image_mode=True,
                        model_complexity=1,
                        enable_segmentation=seg,
                        min_detection_confidence=DETECTION_CONFIDENCE,
                    )
                    for seg in (True, False)
                }
            return cls._pose[segmentation].process(np.ascontiguousarray(rgb))


def _landmarks(result, width: int, height: int):
    lm = result.pose_landmarks.landmark
    px = np.array([[p.x * width, p.y * height] for p in lm], np.float64)
    vis = np.array([p.visibility for p in lm], np.float64)
    return px, vis


def _resize(rgb: np.ndarray, height: int) -> tuple[np.ndarray, float]:
    import cv2

    scale = height / rgb.shape[0]
    if scale >= 1.0:
        return rgb, 1.0
    return cv2.resize(rgb, (round(rgb.shape[1] * scale), height), interpolation=cv2.INTER_AREA), scale


def _other_people(rgb: np.ndarray, mask: np.ndarray) -> list:
    """People besides the one under `mask`, found by painting each found person out and looking again.

    A person is painted out as the grey box around their mask: painting the silhouette itself
    would leave a person-shaped blob that the detector finds again.
    """
    import cv2

    small, scale = _resize(rgb, REDETECT_HEIGHT_PX)
    h, w = small.shape[:2]
    person = cv2.resize((mask > 0.3).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    img = small.copy()
    people = []
    for _ in range(MAX_EXTRA_PEOPLE + 1):
        ys, xs = np.nonzero(person)
        if len(ys) == 0:
            break
        pad = int(0.02 * h)
        img[max(ys.min() - pad, 0) : ys.max() + pad + 1, max(xs.min() - pad, 0) : xs.max() + pad + 1] = 127
        if len(people) == MAX_EXTRA_PEOPLE:
            break
        res = _Detector.run(img, segmentation=True)
        if res.pose_landmarks is None:
            break
        px, vis = _landmarks(res, w, h)
        people.append((px / scale, vis))
        person = (res.segmentation_mask > 0.3).astype(np.uint8)
    return people


def _tiled_people(rgb: np.ndarray) -> list:
    """People found in overlapping square tiles of half the image's shorter side, each zoomed in."""
    import cv2

    H, W = rgb.shape[:2]
    tile = max(64, min(H, W) // 2)
    step = tile // 2
    found = []
    for y0 in range(0, max(H - tile, 0) + 1, step):
        for x0 in range(0, max(W - tile, 0) + 1, step):
            crop = cv2.resize(rgb[y0 : y0 + tile, x0 : x0 + tile], (384, 384), interpolation=cv2.INTER_LINEAR)
            res = _Detector.run(crop, segmentation=False)
            if res.pose_landmarks is None:
                continue
            px, vis = _landmarks(res, tile, tile)
            px += [x0, y0]
            v = vis > checks.VISIBLE
            if v.sum() < checks.MIN_VISIBLE_LANDMARKS:
                continue
            centre, height = px[v].mean(0), checks.person_height_px(px, vis)
            # Overlapping tiles see the same person twice.
            if all(np.hypot(*(centre - c)) > 0.5 * max(height, hh) for c, hh, _ in found):
                found.append((centre, height, (px, vis)))
    return [p for _, _, p in found]


def find_people(rgb: np.ndarray):
    """(people, main capture arrays or None): every person found as (landmarks_px, visibility)."""
    H, W = rgb.shape[:2]
    res = _Detector.run(rgb, segmentation=True)
    if res.pose_landmarks is None:
        return _tiled_people(rgb), None
    px, vis = _landmarks(res, W, H)
    world = np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark], np.float64)
    mask = np.asarray(res.segmentation_mask, np.float32)
    people = [(px, vis)] + _other_people(rgb, mask)
    if len(people) == 1 and checks.person_height_px(px, vis) < checks.MIN_PERSON_HEIGHT_FRACTION * H:
        # A small subject: others may be small too, and are only found zoomed in.
        people += [p for p in _tiled_people(rgb) if not _same_person(p, (px, vis))]
    return people, (px, vis, world, mask)


def _same_person(a, b) -> bool:
    va, vb = a[1] > checks.VISIBLE, b[1] > checks.VISIBLE
    if not va.any() or not vb.any():
        return False
    ca, cb = a[0][va].mean(0), b[0][vb].mean(0)
    return np.hypot(*(ca - cb)) < 0.5 * max(checks.person_height_px(*a), checks.person_height_px(*b))


def capture_photo(rgb: np.ndarray, view: str = "front", focal_px: float | None = None) -> Capture:
    """Checks and captures the person in a photo (H, W, 3) uint8 RGB. Raises FitroomError."""
    if view not in ("front", "side"):
        raise ValueError(f"view must be 'front' or 'side', not {view!r}")
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise FitroomError("not_an_image", "The photo must be an RGB image.")
    H, W = rgb.shape[:2]
    people, main = find_people(rgb)
    index = checks.check_people(people, (W, H))
    if main is None or index != 0:
        # Only the zoomed-in search saw this person: they are far too small in the frame.
        px, vis = people[index]
        checks.check_whole_body(px, vis, None, (W, H))
        raise FitroomError(
            "person_too_small",
            f"The person fills {checks.person_height_px(px, vis) / H:.0%} of the photo's height; step closer so that "
            f"they fill at least {checks.MIN_PERSON_HEIGHT_FRACTION:.0%}.",
        )
    px, vis, world, mask = main
    checks.check_whole_body(px, vis, mask, (W, H))
    checks.check_size(px, vis, (W, H))
    checks.check_orientation(px, vis, world, view)
    return Capture(
        image_size=(W, H),
        landmarks_px=px,
        visibility=vis,
        world_landmarks=world,
        mask=mask,
        focal_px=focal_px,
        view=view,
    )
