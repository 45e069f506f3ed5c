"""A shopper's avatar from one or two photos: capture -> observations -> body fit -> measurements."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from engine.backend import to_numpy
from engine.body_fit import FitResult, FitSettings, ViewObservation, fit_body
from engine.body_model import BodyModel, body_vertices
from avatar.landmark_offsets import corrected_landmarks, faces_image_left
from fitroom.errors import FitroomError

# MediaPipe pose landmark index of each model keypoint (COCO-WholeBody names); small toes have none.
MEDIAPIPE_INDEX = {
    "nose": 0,
    "left_eye": 2,
    "right_eye": 5,
    "left_ear": 7,
    "right_ear": 8,
    "left_shoulder": 11,
    "right_shoulder": 12,
    "left_elbow": 13,
    "right_elbow": 14,
    "left_wrist": 15,
    "right_wrist": 16,
    "left_hip": 23,
    "right_hip": 24,
    "left_knee": 25,
    "right_knee": 26,
    "left_ankle": 27,
    "right_ankle": 28,
    "left_big_toe": 31,
    "right_big_toe": 32,
    "left_heel": 29,
    "right_heel": 30,
}
# How far each detector landmark is trusted to mean the same point as the model's keypoint:
# MediaPipe's hips sit higher and wider than COCO's, its "foot index" is not the big toe tip,
# and the face points are tiny at full-body scale.
KEYPOINT_TRUST = {
    "left_hip": 0.4,
    "right_hip": 0.4,
    "left_big_toe": 0.3,
    "right_big_toe": 0.3,
    "nose": 0.5,
    "left_eye": 0.3,
    "right_eye": 0.3,
    "left_ear": 0.3,
    "right_ear": 0.3,
}
HEIGHT_RANGE_CM = (100.0, 230.0)
# A phone's main camera is about a 26 mm lens in 35 mm terms; 43.27 mm is the 35 mm frame's diagonal.
DEFAULT_FOCAL_35MM = 26.0
SEX_GENDER = {"female": 1.0, "male": 0.0}


def default_focal_px(width: int, height: int) -> float:
    """Focal length in pixels of a typical phone camera for an image of this size."""
    return DEFAULT_FOCAL_35MM / 43.27 * float(np.hypot(width, height))


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance (H, W) float32 in pixels to the boundary of mask > 0.5: negative inside."""
    import cv2

    inside = (mask > 0.5).astype(np.uint8)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    return (d_out - d_in).astype(np.float32)


def observation_from_capture(capture, labels: tuple[str, ...], sex: str | None = None) -> ViewObservation:
    """The fitting observation of one capture (see `avatar.capture.Capture`).

    The 2D landmarks are first moved onto the model keypoints' meaning (`avatar.landmark_offsets`,
    the table for `sex`, or for either sex when None).
    """
    P = len(labels)
    kp = np.zeros((P, 2))
    kp3 = np.zeros((P, 3))
    weights = np.zeros(P)
    vis = np.asarray(capture.visibility, np.float64)
    landmarks_px = corrected_landmarks(capture.landmarks_px, capture.mask, capture.view, sex)
    for k, label in enumerate(labels):
        i = MEDIAPIPE_INDEX.get(label)
        if i is None:
            continue
        kp[k] = landmarks_px[i]
        # MediaPipe's world frame: x right, y down, z away from the camera; ours: y up, z toward it.
        kp3[k] = capture.world_landmarks[i] * np.array([1.0, -1.0, -1.0])
        weights[k] = np.clip(vis[i], 0.0, 1.0) * KEYPOINT_TRUST.get(label, 1.0)
    w, h = capture.image_size
    focal = capture.focal_px or default_focal_px(w, h)
    facing = 0.0
    if capture.view == "side":
        # In a profile the nose is ahead of the ears: it says which way the body faces.
        facing = -np.pi / 2 if faces_image_left(capture.landmarks_px) else np.pi / 2
    return ViewObservation(
        keypoints_px=kp,
        keypoint_weights=weights,
        keypoints_3d=kp3,
        sdf=signed_distance(capture.mask),
        focal_px=float(focal),
        image_size=(int(w), int(h)),
        facing=float(facing),
    )


@dataclasses.dataclass
class Avatar:
    """A fitted avatar: shape vector (S,), per-view poses, rest-pose vertices (V, 3) and measurements (cm)."""

    shape: np.ndarray
    fit: FitResult
    vertices: np.ndarray
    measurements: dict
    height_cm: float
    sex: str | None
    seconds: float

    def summary(self) -> dict:
        """The JSON summary printed by `fitroom avatar --json`."""
        return {
            "height_cm": round(self.measurements["stature_cm"], 1),
            "chest_cm": round(self.measurements["chest_cm"], 1),
            "waist_cm": round(self.measurements["waist_cm"], 1),
            "hip_cm": round(self.measurements["hip_cm"], 1),
            "inseam_cm": round(self.measurements["inseam_cm"], 1),
            "shoulder_width_cm": round(self.measurements["shoulder_width_cm"], 1),
            "fit_residual_px": round(float(np.nanmax(self.fit.keypoint_residual_px)), 2),
            "silhouette_residual_px": round(float(np.nanmax(self.fit.silhouette_residual_px)), 2),
            "iterations": self.fit.iterations,
            "converged": self.fit.converged,
            "seconds": round(self.seconds, 3),
        }


def check_height(height_cm: float) -> float:
    if not np.isfinite(height_cm) or not HEIGHT_RANGE_CM[0] <= height_cm <= HEIGHT_RANGE_CM[1]:
        raise FitroomError(
            "bad_height", f"Height must be between {HEIGHT_RANGE_CM[0]:.0f} and {HEIGHT_RANGE_CM[1]:.0f} cm, not {height_cm}."
        )
    return float(height_cm)


def fit_avatar(
    model: BodyModel,
    captures: list,
    height_cm: float,
    sex: str | None = None,
    settings: FitSettings | None = None,
) -> Avatar:
    """Fits the body model to captures (front first, optionally a side view) and measures it."""
    from avatar.measurements import measure_body

    start = time.perf_counter()
    height_cm = check_height(height_cm)
    if sex is not None and sex not in SEX_GENDER:
        raise FitroomError("bad_sex", f"Sex must be 'female' or 'male', not {sex!r}.")
    views = [observation_from_capture(c, model.keypoint_labels, sex) for c in captures]
    result = fit_body(
        model, views, height_cm / 100.0, gender=None if sex is None else SEX_GENDER[sex], settings=settings
    )
    if not np.all(np.isfinite(result.shape)):
        raise FitroomError("fit_failed", "The body could not be fitted to this photo; try another photo.")
    vertices = to_numpy(body_vertices(model, result.shape)).astype(np.float64)
    vertices[:, 1] -= vertices[:, 1].min()  # standing on the floor, y = 0
    measurements = measure_body(vertices, model)
    return Avatar(
        shape=result.shape,
        fit=result,
        vertices=vertices,
        measurements=measurements,
        height_cm=height_cm,
        sex=sex,
        seconds=time.perf_counter() - start,
    )
