"""The floor's baked contact shadow (the CPU's stand-in for shadow maps): where it falls, how it
fades with height, and that it darkens the rendered floor under the feet and nothing else."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from streaming.lighting import light_preset
from streaming.look_scene import LookScene, contact_shadow
from streaming.orbit_camera import OrbitCamera
from streaming.render import OffscreenRenderer, Surface
from tests.streaming.look_fixture import small_look

W, H = 320, 240


def _patch(x: float, y: float, z: float) -> np.ndarray:
    """A 20 cm square of points 5 mm apart, horizontal, centred at (x, y, z) metres."""
    g = np.arange(-0.1, 0.1001, 0.005)
    u, w = np.meshgrid(g, g)
    return np.stack([u.ravel() + x, np.full(u.size, y), w.ravel() + z], 1)


def test_the_shadow_falls_under_the_points_and_fades_with_height():
    centre, radius, size = np.zeros(3), 0.6, 128
    on_floor = contact_shadow(_patch(0.3, 0.0, 0.0), centre, radius, size)
    # x = +0.3 m is column (0.3 / 1.2 + 0.5) * 128 = 96; z = 0 is row 64.
    assert on_floor.shape == (size, size) and on_floor[64, 96] == 1.0
    assert on_floor[64, 32] == 0.0 and on_floor[0, 0] == 0.0 and on_floor.min() >= 0.0
    # Half the occlusion at 0.35 m, times the 1.6 gain: 0.8 in the patch's middle.
    assert contact_shadow(_patch(0.3, 0.35, 0.0), centre, radius, size)[64, 96] == pytest.approx(0.8, abs=0.01)
    # Rows run along -Z: a patch at z = -0.3 m lands on row 96.
    behind = contact_shadow(_patch(0.0, 0.0, -0.3), centre, radius, size)
    assert behind[96, 64] == 1.0 and behind[32, 64] == 0.0
    # Points beyond the disc's square cast nothing there (and break nothing).
    assert contact_shadow(_patch(5.0, 0.0, 0.0), centre, radius, size).max() == 0.0


def test_the_rendered_floor_is_darker_under_the_feet_only(body_model_cpu):
    look = small_look(body_model_cpu)
    scene = LookScene()
    scene.set_surfaces(Surface(look["body_vertices"], look["body_faces"]),
                       Surface(look["garment_vertices"], look["garment_faces"]), None)
    camera = OrbitCamera()
    camera.frame(np.concatenate([look["body_vertices"], look["garment_vertices"]]), W, H)
    camera.orbit(0.0, 0.4)  # looking down onto the floor
    studio = light_preset("studio")
    frames = []
    with OffscreenRenderer(W, H) as renderer:
        for preset in (dataclasses.replace(studio, shadow=0.0), studio):
            scene.set_light(preset)
            frames.append(scene.render(renderer, camera.camera(W, H), camera.yaw).astype(np.int16))
    darker = (frames[0] - frames[1]).mean(-1)
    assert darker.min() >= 0.0 and darker.max() > 40.0  # about 60 of 255 next to the feet
    assert (darker[: H // 2] == 0).all()  # the body and the background above are untouched
    shaded = np.argwhere(darker > 5.0)[:, ::-1]  # (x, y) pixels
    body = look["body_vertices"]
    feet = camera.camera(W, H).project(body[body[:, 1] < body[:, 1].min() + 0.03]).mean(0)
    assert len(shaded) > 300 and np.linalg.norm(shaded.mean(0) - feet) < 15.0
