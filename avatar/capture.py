"""Body capture from one photo with MediaPipe Pose (0.10.21, whose models ship inside the wheel).

`capture_photo` finds the people in the photo, runs the capture checks (`avatar.capture_checks`,
in the order documented there) and returns the shopper's 2D landmarks, metric world landmarks
and segmentation mask.

Model: ``mp.solutions.pose`` with ``static_image_mode=True``, ``enable_segmentation=True`` and
``model_complexity=1``, the "full" landmark model bundled in the wheel. (``model_complexity=2``,
the heavy model, is not bundled: MediaPipe downloads it on first use, which fails offline.)

Finding several people. The pose solution follows one person: the pose detector's best
detection. Others are found in two steps:

1. Every photo: the same bundled BlazePose detector (pose_detection.tflite) runs in a graph of
   our own that keeps all its detections (`_DETECTOR_GRAPH`), on the whole image and on the two
   squares of the shorter side at its ends (a portrait photo's top and bottom), where people
   under a third of the frame are large enough for it. MediaPipe's own non-maximum suppression
   merges people who stand close (its boxes are large), so raw detections are grouped here by
   their mid-shoulder keypoint (`group_detections`). A group away from the shopper is a
   candidate, confirmed by running the pose landmarker on a crop around it (`_confirm`): that
   drops the detector's false alarms (one on a boy's baseball glove). About 40 ms.
   Measured on renders: two people side by side, touching or 0.2 m apart, and a second person
   1-2 m behind the shopper are found; one 3 m or more behind (under 0.45 of the shopper's
   height) is not. On the COCO photos it finds the second person on a bench, in a kitchen and at
   home plate; on renders of one person, front, side, turned or far away, it finds nobody else.
2. Only when nobody was found, or the person found spans under half the frame height (the
   photo is refused then; only the reason is at stake): the pose landmarker on overlapping
   squares of half the shorter side, each enlarged to 384 px, finds people too small for the
   detector (baseball players seen from the stands, a crowd behind a man cut off at the chest).
   A tile can see a person in a logo (a 0.07-frame "person" in the USTA shield behind a tennis
   player), one reason another person must be a third of the tallest's height to count.

Rejected after measuring on the 12 COCO photos: MediaPipe's face detector (full range) found no
face in 10 of them, none of the three men on a bench; erasing the person found and running the
pose solution again re-finds the erased silhouette or, with a box painted over them, misses a
neighbour whose face the box covers; a multi-person PoseLandmarker task built from the bundled
.tflite files does not load (they lack the normalisation metadata the Tasks API needs).

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

MODEL_COMPLEXITY = 1
DETECTION_CONFIDENCE = 0.5
#: Raw BlazePose detections kept (MediaPipe's own threshold for its best one is 0.5 too).
DETECTOR_MIN_SCORE = 0.5
#: Raw detections whose mid-shoulder keypoints lie within this fraction of the body-circle
#: diameter of the best one are one person.
GROUP_RADIUS = 0.15
#: At most this many candidates are confirmed with the landmarker (best scores first).
MAX_CANDIDATES = 4
#: The crop a candidate is confirmed in: a square this many body-circle diameters wide around its
#: mid-hip keypoint (MediaPipe's own ROI is 1.25), scaled to at most `CONFIRM_PX` a side.
CONFIRM_CROP = 1.4
CONFIRM_PX = 512
#: The confirmed pose must be the candidate: its mid-shoulder within this many diameters of the
#: candidate's mid-shoulder keypoint.
CONFIRM_RADIUS = 0.3
TILE_PX = 384
ERASE_GREY = 127

# BlazePose's detection subgraph (mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt)
# without its non-maximum suppression, whose large boxes merge neighbours: every detection over
# DETECTOR_MIN_SCORE, in the input image's normalised coordinates. Keypoints: 0 mid-hip, 1 a
# point at the full-body circle's radius from it, 2 mid-shoulder, 3 the upper-body circle's.
_DETECTOR_GRAPH = """
input_stream: "image"
output_stream: "detections"
node {
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  output_stream: "TENSORS:input_tensors"
  output_stream: "LETTERBOX_PADDING:letterbox_padding"
  options { [mediapipe.ImageToTensorCalculatorOptions.ext] {
    output_tensor_width: 224 output_tensor_height: 224 keep_aspect_ratio: true
    output_tensor_float_range { min: -1.0 max: 1.0 } border_mode: BORDER_ZERO } }
}
node {
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input_tensors"
  output_stream: "TENSORS:detection_tensors"
  options { [mediapipe.InferenceCalculatorOptions.ext] {
    model_path: "mediapipe/modules/pose_detection/pose_detection.tflite" delegate { xnnpack {} } } }
}
node {
  calculator: "SsdAnchorsCalculator"
  output_side_packet: "anchors"
  options { [mediapipe.SsdAnchorsCalculatorOptions.ext] {
    num_layers: 5 min_scale: 0.1484375 max_scale: 0.75 input_size_height: 224 input_size_width: 224
    anchor_offset_x: 0.5 anchor_offset_y: 0.5 strides: 8 strides: 16 strides: 32 strides: 32 strides: 32
    aspect_ratios: 1.0 fixed_anchor_size: true } }
}
node {
  calculator: "TensorsToDetectionsCalculator"
  input_stream: "TENSORS:detection_tensors"
  input_side_packet: "ANCHORS:anchors"
  output_stream: "DETECTIONS:raw_detections"
  options { [mediapipe.TensorsToDetectionsCalculatorOptions.ext] {
    num_classes: 1 num_boxes: 2254 num_coords: 12 box_coord_offset: 0 keypoint_coord_offset: 4
    num_keypoints: 4 num_values_per_keypoint: 2 sigmoid_score: true score_clipping_thresh: 100.0
    reverse_output_order: true x_scale: 224.0 y_scale: 224.0 h_scale: 224.0 w_scale: 224.0
    min_score_thresh: %(min_score)s } }
}
node {
  calculator: "DetectionLetterboxRemovalCalculator"
  input_stream: "DETECTIONS:raw_detections"
  input_stream: "LETTERBOX_PADDING:letterbox_padding"
  output_stream: "DETECTIONS:detections"
}
""" % {"min_score": DETECTOR_MIN_SCORE}


@dataclasses.dataclass(frozen=True)
class Capture:
    """The shopper captured from one photo.

    Attributes
    ----------
    image_size : (width, height) px.
    landmarks_px : (33, 2) float64 px, MediaPipe Pose's landmarks (x right, y down).
    visibility : (33,) float64 in [0, 1].
    presence : (33,) float64 in [0, 1], or None (the pose solution of MediaPipe 0.10.21 reports none).
    world_landmarks : (33, 3) float64 metres as MediaPipe gives them: hip-centred, x right, y down,
        z away from the camera (negative toward it).
    mask : (H, W) float32 person probability in [0, 1].
    focal_px : focal length in pixels (EXIF), or None.
    view : 'front' or 'side'.
    """

    image_size: tuple[int, int]
    landmarks_px: np.ndarray
    visibility: np.ndarray
    presence: np.ndarray | None
    world_landmarks: np.ndarray
    mask: np.ndarray
    focal_px: float | None
    view: str


@dataclasses.dataclass(frozen=True)
class _Pose:
    """One person found: landmarks_px (33, 2) px and visibility (33,); from a full-resolution pass
    also world (33, 3) metres, mask (H, W) float32 and presence (33,) or None."""

    landmarks_px: np.ndarray
    visibility: np.ndarray
    world: np.ndarray | None = None
    mask: np.ndarray | None = None
    presence: np.ndarray | None = None

    @property
    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        return self.landmarks_px, self.visibility


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


class _MediaPipe:
    """MediaPipe graphs, built once per process (each takes 0.1-0.3 s) and run under one lock: a
    graph processes one image at a time."""

    _lock = threading.Lock()
    _pose: dict = {}
    _detector = None

    @classmethod
    def pose(cls, rgb: np.ndarray, segmentation: bool):
        """The pose solution's result for `rgb` (H, W, 3) uint8."""
        with cls._lock, _native_stderr_silenced():
            pose = cls._pose.get(segmentation)
            if pose is None:
                import mediapipe as mp

                pose = cls._pose[segmentation] = mp.solutions.pose.Pose(
                    static_image_mode=True,
                    model_complexity=MODEL_COMPLEXITY,
                    enable_segmentation=segmentation,
                    min_detection_confidence=DETECTION_CONFIDENCE,
                )
            return pose.process(np.ascontiguousarray(rgb))

    @classmethod
    def detect(cls, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw BlazePose detections in `rgb` (H, W, 3) uint8: scores (n,) and keypoints (n, 4, 2) px."""
        with cls._lock, _native_stderr_silenced():
            if cls._detector is None:
                from mediapipe.python.solution_base import SolutionBase

                cls._detector = SolutionBase(graph_config=_DETECTOR_GRAPH, outputs=["detections"])
            result = cls._detector.process({"image": np.ascontiguousarray(rgb)})
        h, w = rgb.shape[:2]
        dets = result.detections or []
        scores = np.array([d.score[0] for d in dets], np.float64)
        kps = np.array(
            [[[k.x * w, k.y * h] for k in d.location_data.relative_keypoints] for d in dets], np.float64
        ).reshape(-1, 4, 2)
        return scores, kps


def _pose_from(result, width: int, height: int, full: bool, offset=(0.0, 0.0), scale=1.0, size=None) -> _Pose | None:
    """The pose in a MediaPipe result for an image of `width` x `height` px, mapped to a larger
    image where that one is a crop at `offset` (x, y) px enlarged by `scale`; with `full`, also
    the world landmarks and the mask, pasted into an image of `size` (w, h)."""
    if result.pose_landmarks is None:
        return None
    lm = result.pose_landmarks.landmark
    px = np.array([[p.x * width, p.y * height] for p in lm], np.float64) / scale + np.asarray(offset, np.float64)
    vis = np.array([p.visibility for p in lm], np.float64)
    if not full:
        return _Pose(px, vis)
    presence = np.array([p.presence for p in lm], np.float64) if lm[0].HasField("presence") else None
    world = np.array([[p.x, p.y, p.z] for p in result.pose_world_landmarks.landmark], np.float64)
    mask = np.asarray(result.segmentation_mask, np.float32)
    if size is not None:
        full_mask = np.zeros((size[1], size[0]), np.float32)
        x0, y0 = int(offset[0]), int(offset[1])
        full_mask[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] = mask
        mask = full_mask
    return _Pose(px, vis, world, np.ascontiguousarray(mask), presence)


def _shrink(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """`rgb` with its longer side at most `max_side` px (never enlarged), and the scale applied."""
    import cv2

    scale = max_side / max(rgb.shape[:2])
    if scale >= 1.0:
        return np.ascontiguousarray(rgb), 1.0
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def end_squares(width: int, height: int) -> list[tuple[int, int, int]]:
    """(x0, y0, side) px of the squares of the shorter side at both ends of the longer one; none for
    an image within 10 % of square."""
    side = min(width, height)
    if max(width, height) < 1.1 * side:
        return []
    if height > width:
        return [(0, 0, side), (0, height - side, side)]
    return [(0, 0, side), (width - side, 0, side)]


def group_detections(scores: np.ndarray, keypoints: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Raw detections grouped into people: (best score, keypoints (4, 2) px of the best detection).

    scores : (n,). keypoints : (n, 4, 2) px (mid-hip, full-body radius point, mid-shoulder, upper-body
    radius point). A detection joins the best-scoring group whose mid-shoulder keypoint is within
    `GROUP_RADIUS` of that group's body-circle diameter.
    """
    groups: list[tuple[float, np.ndarray]] = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        k = keypoints[i]
        if not any(np.hypot(*(k[2] - g[2])) < GROUP_RADIUS * body_diameter(g) for _, g in groups):
            groups.append((float(scores[i]), k))
    return groups


def body_diameter(keypoints: np.ndarray) -> float:
    """The full-body circle's diameter (px) of a detection's keypoints (4, 2) px."""
    return 2.0 * float(np.hypot(*(keypoints[1] - keypoints[0])))


def detect_people(rgb: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Every person the BlazePose detector sees in `rgb` (H, W, 3), in the whole image and in its
    `end_squares`: (score, keypoints (4, 2) px), best first."""
    H, W = rgb.shape[:2]
    scores, kps = [], []
    for x0, y0, side in [(0, 0, None)] + end_squares(W, H):
        crop = rgb if side is None else rgb[y0 : y0 + side, x0 : x0 + side]
        s, k = _MediaPipe.detect(crop)
        scores.append(s)
        kps.append(k + np.array([x0, y0], np.float64))
    return group_detections(np.concatenate(scores), np.concatenate(kps))


def _is_main(keypoints: np.ndarray, main: _Pose) -> bool:
    """Whether a detection's keypoints (4, 2) px are those of the pose `main`: its mid-shoulder
    keypoint within `GROUP_RADIUS` diameters of main's mid-shoulder. (Its mid-hip keypoint is
    unreliable in profile: on renders it lands between two people standing side by side.)"""
    reach = GROUP_RADIUS * body_diameter(keypoints)
    return bool(np.hypot(*(keypoints[2] - main.landmarks_px[[11, 12]].mean(0))) < reach)


def _confirm(rgb: np.ndarray, keypoints: np.ndarray, main: _Pose | None) -> _Pose | None:
    """The pose of the person a detection's keypoints (4, 2) px point at, from the landmarker run on
    a crop around them with `main` painted out; None when it finds nobody there."""
    import cv2

    H, W = rgb.shape[:2]
    half = 0.5 * CONFIRM_CROP * body_diameter(keypoints)
    cx, cy = keypoints[0]
    x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
    x1, y1 = int(min(cx + half, W)), int(min(cy + half, H))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    crop, scale = _shrink(rgb[y0:y1, x0:x1], CONFIRM_PX)
    if main is not None:
        # The landmarker follows the most salient person in view; the shopper, silhouette and head,
        # is painted grey so that it follows the candidate (the detector anchors on faces).
        crop = crop.copy()
        h, w = crop.shape[:2]
        person = cv2.resize(main.mask[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_LINEAR) > 0.3
        person = cv2.dilate(person.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        hx0, hy0, hx1, hy1 = head_box(main.landmarks_px)
        hx0, hx1 = (np.array([hx0, hx1]) - x0) * scale
        hy0, hy1 = (np.array([hy0, hy1]) - y0) * scale
        person[max(int(hy0), 0) : max(int(hy1), 0), max(int(hx0), 0) : max(int(hx1), 0)] = True
        crop[person] = ERASE_GREY
    pose = _pose_from(_MediaPipe.pose(crop, segmentation=False), crop.shape[1], crop.shape[0], False, (x0, y0), scale)
    if pose is None or checks.visible_count(pose.visibility) < checks.MIN_VISIBLE_LANDMARKS:
        return None
    if np.hypot(*(pose.landmarks_px[[11, 12]].mean(0) - keypoints[2])) > CONFIRM_RADIUS * body_diameter(keypoints):
        return None  # the landmarker followed someone else in the crop
    return pose


def head_box(landmarks_px: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) px around the head of a pose (landmarks_px (33, 2) px): the box of its face
    landmarks (eyes, ears, nose, mouth), widened by 0.6 of its size to each side for the hair and
    the cheeks, 1.0 up to the crown and 0.8 down past the chin."""
    face = landmarks_px[list(checks.HEAD)]
    (x0, y0), (x1, y1) = face.min(0), face.max(0)
    size = max(x1 - x0, y1 - y0, 0.5 * abs(landmarks_px[11, 0] - landmarks_px[12, 0]))
    return x0 - 0.6 * size, y0 - 1.0 * size, x1 + 0.6 * size, y1 + 0.8 * size


def _tiled(rgb: np.ndarray) -> list[_Pose]:
    """People found by the landmarker in overlapping squares (half the shorter side, half a square
    apart), each enlarged to `TILE_PX`: people too small for the whole-image detector. A person
    seen in several squares is kept once, as their tallest (most complete) sighting."""
    import cv2

    H, W = rgb.shape[:2]
    tile = max(64, min(H, W) // 2)
    step = tile // 2
    found: list[_Pose] = []
    for y0 in range(0, max(H - tile, 0) + 1, step):
        for x0 in range(0, max(W - tile, 0) + 1, step):
            crop = cv2.resize(rgb[y0 : y0 + tile, x0 : x0 + tile], (TILE_PX, TILE_PX), interpolation=cv2.INTER_LINEAR)
            pose = _pose_from(_MediaPipe.pose(crop, segmentation=False), TILE_PX, TILE_PX, False, (x0, y0), TILE_PX / tile)
            if pose is None or checks.visible_count(pose.visibility) < checks.MIN_VISIBLE_LANDMARKS:
                continue
            twins = [i for i, p in enumerate(found) if checks.same_person(pose.pair, p.pair)]
            if not twins:
                found.append(pose)
            elif all(checks.person_height_px(*pose.pair) > checks.person_height_px(*found[i].pair) for i in twins):
                found = [p for i, p in enumerate(found) if i not in twins] + [pose]
    return found


def find_people(rgb: np.ndarray) -> list[_Pose]:
    """Every person found in `rgb` (H, W, 3) uint8 (see the module's notes). The first, when the
    pose solution found someone in the whole image, has world landmarks and a mask."""
    H, W = rgb.shape[:2]
    main = _pose_from(_MediaPipe.pose(rgb, segmentation=True), W, H, full=True)
    people = [] if main is None else [main]
    candidates = [k for _, k in detect_people(rgb) if main is None or not _is_main(k, main)]
    for k in candidates[:MAX_CANDIDATES]:
        pose = _confirm(rgb, k, main)
        if pose is None or any(checks.same_person(pose.pair, p.pair) for p in people):
            continue
        people.append(pose)
        tallest = max(checks.person_height_px(*p.pair) for p in people)
        if len(people) > 1 and checks.person_height_px(*pose.pair) >= checks.OTHER_PERSON_MIN_RELATIVE_HEIGHT * tallest:
            break  # the photo shows several people: enough looking
    if len(people) <= 1 and (main is None or checks.person_height_px(*main.pair) < checks.MIN_PERSON_HEIGHT_FRACTION * H):
        # Nobody, or a small subject: others are likely small too and only seen zoomed in.
        people += [p for p in _tiled(rgb) if not any(checks.same_person(p.pair, q.pair) for q in people)]
    return people


def _recapture(rgb: np.ndarray, person: _Pose) -> _Pose:
    """A full capture (world landmarks, mask) of a person found in a crop: the pose solution run on
    a crop around them, its mask pasted into the whole image."""
    H, W = rgb.shape[:2]
    x0, y0, x1, y1 = checks.person_box(*person.pair)
    pad = 0.25 * max(x1 - x0, y1 - y0)
    x0, y0, x1, y1 = int(max(x0 - pad, 0)), int(max(y0 - pad, 0)), int(min(x1 + pad, W)), int(min(y1 + pad, H))
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    pose = _pose_from(_MediaPipe.pose(crop, segmentation=True), x1 - x0, y1 - y0, True, (x0, y0), size=(W, H))
    if pose is None or not checks.same_person(pose.pair, person.pair):
        raise FitroomError("no_person", "The person in the photo could not be made out clearly; try a plainer background.")
    return pose


def capture_photo(rgb: np.ndarray, view: str = "front", focal_px: float | None = None) -> Capture:
    """Checks a photo and captures the shopper in it.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 RGB (as `avatar.photo_io.read_photo` gives it).
    view : 'front' (facing the camera) or 'side' (in profile).
    focal_px : focal length in pixels from EXIF, or None; passed through.

    Returns
    -------
    Capture

    Raises
    ------
    FitroomError
        With the code of the first failed check (order in `avatar.capture_checks`).
    ValueError
        When `view` is neither 'front' nor 'side'.
    """
    if view not in ("front", "side"):
        raise ValueError(f"view must be 'front' or 'side', not {view!r}")
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 16:
        raise FitroomError("not_an_image", "The photo must be an RGB image.")
    rgb = np.ascontiguousarray(rgb)
    H, W = rgb.shape[:2]
    people = find_people(rgb)
    person = people[checks.check_people([p.pair for p in people])]
    checks.check_whole_body(*person.pair, person.mask, (W, H))
    checks.check_size(*person.pair, (W, H))
    if person.world is None:
        person = _recapture(rgb, person)
        checks.check_whole_body(*person.pair, person.mask, (W, H))
        checks.check_size(*person.pair, (W, H))
    checks.check_orientation(person.landmarks_px, person.world, view)
    return Capture(
        image_size=(W, H),
        landmarks_px=person.landmarks_px,
        visibility=person.visibility,
        presence=person.presence,
        world_landmarks=person.world,
        mask=person.mask,
        focal_px=None if focal_px is None else float(focal_px),
        view=view,
    )
