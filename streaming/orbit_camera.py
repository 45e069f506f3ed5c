"""An orbit camera for the live try-on: turn round the body, zoom and pan, kept to sane ranges.

World frame: metres, +Y up, the body faces +Z. At yaw 0 the camera is in front of the body (on
+Z) looking at it; positive yaw turns the camera to the body's left (towards +X), positive pitch
raises it. Angles are radians.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from streaming.render import PinholeCamera

__all__ = ["OrbitCamera"]

_MIN_PITCH, _MAX_PITCH = math.radians(-30.0), math.radians(70.0)
_MAX_PAN = 1.0  # m from the framed target: enough to look at a sleeve, never to lose the body


@dataclasses.dataclass
class OrbitCamera:
    """State of a camera orbiting a target.

    target : (3,) the point orbited, metres. yaw, pitch : radians. distance : metres from the
    (panned) target. pan_offset : (2,) metres right and up in the camera's plane.
    vertical_fov_deg : vertical field of view. min_distance, max_distance : zoom limits, metres.
    """

    target: tuple = (0.0, 0.9, 0.0)
    yaw: float = 0.0
    pitch: float = math.radians(5.0)
    distance: float = 3.2
    pan_offset: tuple = (0.0, 0.0)
    vertical_fov_deg: float = 35.0
    min_distance: float = 0.5
    max_distance: float = 8.0

    def __post_init__(self):
        self._clamp()

    def _clamp(self) -> None:
        self.yaw = math.remainder(float(self.yaw), 2.0 * math.pi)  # in [-pi, pi]
        self.pitch = min(max(float(self.pitch), _MIN_PITCH), _MAX_PITCH)
        self.distance = min(max(float(self.distance), self.min_distance), self.max_distance)
        self.pan_offset = tuple(float(np.clip(p, -_MAX_PAN, _MAX_PAN)) for p in self.pan_offset)
        self.target = tuple(float(x) for x in self.target)

    def orbit(self, d_yaw: float, d_pitch: float) -> None:
        """Turns the camera by `d_yaw` about +Y and raises it by `d_pitch` (radians; pitch clamped
        to [-30, 70] degrees)."""
        self.yaw += float(d_yaw)
        self.pitch += float(d_pitch)
        self._clamp()

    def zoom(self, factor: float) -> None:
        """Moves in (`factor` > 1) or out (< 1): the distance is divided by `factor`, within limits."""
        factor = float(factor)
        if not math.isfinite(factor) or factor <= 0.0:
            raise ValueError(f"a zoom factor is a positive number, not {factor}")
        self.distance /= factor
        self._clamp()

    def pan(self, dx: float, dy: float) -> None:
        """Slides the camera and its target `dx` metres right and `dy` up in the image plane
        (each kept within 1 m of the framed target)."""
        self.pan_offset = (self.pan_offset[0] + float(dx), self.pan_offset[1] + float(dy))
        self._clamp()

    def frame(self, points, width: int, height: int, margin: float = 0.08) -> None:
        """Aims at the bounding box of `points` (n, 3), metres, from the front (yaw 0, pitch 5
        degrees, no pan) at the distance where the box fills the image but for `margin` a side."""
        p = np.asarray(points, np.float64).reshape(-1, 3)
        lo, hi = p.min(0), p.max(0)
        half_fov = math.radians(self.vertical_fov_deg) / 2.0
        aspect = width / height
        usable = 1.0 - 2.0 * margin
        need_v = (hi[1] - lo[1]) / 2.0 / (math.tan(half_fov) * usable)
        need_h = (hi[0] - lo[0]) / 2.0 / (math.tan(half_fov) * aspect * usable)
        self.target = tuple((lo + hi) / 2.0)
        self.yaw, self.pitch, self.pan_offset = 0.0, math.radians(5.0), (0.0, 0.0)
        self.distance = max(need_v, need_h) + (hi[2] - lo[2]) / 2.0
        self._clamp()

    def key(self) -> tuple:
        """A hashable snapshot of the state: equal keys give the same picture."""
        return (self.target, self.yaw, self.pitch, self.distance, self.pan_offset, self.vertical_fov_deg)

    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The camera's backward (from target to eye), right and up unit vectors (3,)."""
        cp, sp, cy, sy = math.cos(self.pitch), math.sin(self.pitch), math.cos(self.yaw), math.sin(self.yaw)
        back = np.array([sy * cp, sp, cy * cp])
        right = np.array([cy, 0.0, -sy])
        return back, right, np.cross(back, right)

    @property
    def eye(self) -> np.ndarray:
        """Camera centre (3,), metres."""
        back, right, up = self._axes()
        centre = np.asarray(self.target) + self.pan_offset[0] * right + self.pan_offset[1] * up
        return centre + self.distance * back

    def camera(self, width: int, height: int) -> PinholeCamera:
        """The pinhole camera (width x height pixels) of this state."""
        back, right, up = self._axes()
        pose = np.eye(4)
        pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, back, self.eye
        focal = height / (2.0 * math.tan(math.radians(self.vertical_fov_deg) / 2.0))
        return PinholeCamera(int(width), int(height), focal, pose)
