"""The orbit camera: where it looks from, and the ranges it is kept to."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streaming.orbit_camera import OrbitCamera


def test_default_camera_looks_at_the_front_of_the_body():
    cam = OrbitCamera(target=(0.0, 1.0, 0.0), pitch=0.0, distance=3.0)
    pin = cam.camera(1280, 720)
    assert np.allclose(cam.eye, [0.0, 1.0, 3.0])
    assert np.allclose(pin.project([[0.0, 1.0, 0.0]])[0], [640.0, 360.0])
    assert pin.vertical_fov_deg == pytest.approx(cam.vertical_fov_deg)
    # The body's left (+X) shows on the image's right when facing it.
    assert pin.project([[0.3, 1.0, 0.0]])[0, 0] > 640.0


def test_orbit_turns_round_the_target_and_clamps_pitch():
    cam = OrbitCamera(target=(0.0, 1.0, 0.0), pitch=0.0, distance=2.0)
    cam.orbit(math.pi / 2, 0.0)
    assert np.allclose(cam.eye, [2.0, 1.0, 0.0], atol=1e-9)
    cam.orbit(math.pi, 0.0)  # yaw wraps
    assert -math.pi <= cam.yaw <= math.pi and np.allclose(cam.eye, [-2.0, 1.0, 0.0], atol=1e-9)
    cam.orbit(0.0, 10.0)
    assert cam.pitch == pytest.approx(math.radians(70.0))
    cam.orbit(0.0, -10.0)
    assert cam.pitch == pytest.approx(math.radians(-30.0))
    pin = cam.camera(640, 480)  # still aimed at the target
    assert np.allclose(pin.project([[0.0, 1.0, 0.0]])[0], [320.0, 240.0])


def test_zoom_and_pan_stay_in_range():
    cam = OrbitCamera(distance=3.0)
    cam.zoom(2.0)
    assert cam.distance == pytest.approx(1.5)
    cam.zoom(100.0)
    assert cam.distance == cam.min_distance
    cam.zoom(1e-4)
    assert cam.distance == cam.max_distance
    with pytest.raises(ValueError):
        cam.zoom(0.0)
    cam = OrbitCamera(target=(0.0, 1.0, 0.0), pitch=0.0, distance=3.0)
    cam.pan(0.2, -0.1)
    assert np.allclose(cam.eye, [0.2, 0.9, 3.0])
    cam.pan(50.0, 50.0)
    assert cam.pan_offset == (1.0, 1.0)


def test_frame_fits_a_body_in_the_picture():
    body = np.array([[-0.3, 0.0, -0.15], [0.3, 1.7, 0.15]])
    cam = OrbitCamera()
    cam.frame(body, 1280, 720)
    corners = np.array([[x, y, z] for x in body[:, 0] for y in body[:, 1] for z in body[:, 2]])
    uv = cam.camera(1280, 720).project(corners)
    assert (uv[:, 1] > 0).all() and (uv[:, 1] < 720).all() and (uv[:, 0] > 0).all() and (uv[:, 0] < 1280).all()
    assert np.ptp(uv[:, 1]) > 0.75 * 720  # and fills most of its height
    key = cam.key()
    cam.orbit(0.1, 0.0)
    assert cam.key() != key
