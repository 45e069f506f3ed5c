"""On-demand frames of a real look: rendered only after a change, and each change shows."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from fitroom.errors import FitroomError
from streaming.frame_source import FrameSource
from streaming.lighting import LIGHT_NAMES, light_preset, rig_lights
from tests.streaming.look_fixture import small_look

W, H = 320, 240


@pytest.fixture(scope="module")
def look(body_model_cpu):
    return small_look(body_model_cpu)


@pytest.fixture
def source(look):
    with FrameSource(W, H) as fs:
        fs.set_look(look["body_vertices"], look["body_faces"], look["garment_vertices"], look["garment_faces"],
                    fitmap_colors=look["fitmap_colors"])
        yield fs


def _diff(a, b) -> float:
    """Mean absolute pixel difference, 0-255."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_background_before_a_look_and_no_render_for_it():
    with FrameSource(64, 48, light="evening") as fs:
        image = fs.frame()
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8 and (image == image[0, 0]).all()


def test_a_frame_is_rendered_once_then_reused(source):
    first = source.frame()
    assert first.shape == (H, W, 3) and first.dtype == np.uint8 and not first.flags.writeable
    assert first.std() > 10  # a picture, not a blank
    assert source.stats.rendered == 1 and source.stats.render_ms > 0
    for _ in range(3):
        assert source.frame() is first
    assert source.stats.rendered == 1 and source.stats.reused == 3
    # Setting what is already set changes nothing.
    source.set_light("studio")
    source.set_fitmap(False)
    assert source.frame() is first and source.stats.rendered == 1


def test_orbit_zoom_and_pan_change_the_picture(source):
    before = source.frame()
    source.camera.orbit(0.6, 0.0)
    turned = source.frame()
    assert source.stats.rendered == 2 and _diff(before, turned) > 3.0
    source.camera.zoom(1.5)
    zoomed = source.frame()
    source.camera.pan(0.1, 0.0)
    panned = source.frame()
    assert _diff(turned, zoomed) > 3.0 and _diff(zoomed, panned) > 1.0 and source.stats.rendered == 4


def test_each_light_preset_has_its_own_brightness(source):
    means = {}
    for name in LIGHT_NAMES:
        source.set_light(name)
        means[name] = float(source.frame().mean())
    values = sorted(means.values())
    assert min(np.diff(values)) > 2.0, means
    assert means["evening"] == min(values)
    with pytest.raises(FitroomError):
        source.set_light("disco")


def test_shadow_maps_darken_the_floor_where_the_key_light_is_blocked(look):
    """Shadow maps (the GPU default; off on the CPU, see docs/streaming.md "Shadows"): the floor where
    the key light's rays through the shins land is darker than in the same frame without them."""
    frames = {}
    for shadow_maps in (False, True):
        with FrameSource(W, H, shadow_maps=shadow_maps) as fs:
            fs.set_look(look["body_vertices"], look["body_faces"], look["garment_vertices"], look["garment_faces"])
            frames[shadow_maps] = fs.frame().astype(np.int16)
            camera, yaw = fs.camera.camera(W, H), fs.camera.yaw
    darker = (frames[False] - frames[True]).mean(-1)
    body = np.asarray(look["body_vertices"])
    floor_y = min(body[:, 1].min(), np.asarray(look["garment_vertices"])[:, 1].min())
    key = np.asarray(rig_lights(light_preset("studio"), yaw)[0].direction, np.float64)
    key /= np.linalg.norm(key)
    shins = body[(body[:, 1] > floor_y + 0.10) & (body[:, 1] < floor_y + 0.25)]  # shadows within the floor disc
    on_floor = shins + key * ((shins[:, 1] - floor_y) / -key[1])[:, None]
    px = np.unique(np.floor(camera.project(on_floor)).astype(int), axis=0)
    px = px[(px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H)]
    assert len(px) > 50
    assert np.median(darker[px[:, 1], px[:, 0]]) > 15.0  # about 34 of 255 on the studio floor
    assert darker.min() > -12.0  # shadows only darken...
    assert (darker[: H // 10] == 0).all()  # ...and the background above the head is untouched


def test_fit_map_recolours_the_garment(source, look):
    plain = source.frame()
    source.set_fitmap(True)
    fitmap = source.frame()
    changed = np.abs(plain.astype(np.int16) - fitmap.astype(np.int16)).sum(-1) > 30
    assert changed.sum() > 0.01 * W * H  # the garment's pixels
    # ...and only those: the body's head and the background stay.
    top = int(0.12 * H)
    assert not changed[:top].any()
    source.set_fitmap(False)
    assert _diff(source.frame(), plain) < 0.5


def test_a_textured_garment_with_a_normal_map_renders(source, look):
    plain = source.frame()
    source.set_look(look["body_vertices"], look["body_faces"], look["garment_vertices"], look["garment_faces"],
                    uv=look["uv"], texture=look["texture"], normal_map=look["normal_map"], roughness=0.7)
    textured = source.frame()
    assert _diff(plain, textured) > 1.0
    source.set_look(look["body_vertices"], look["body_faces"], look["garment_vertices"], look["garment_faces"],
                    garment_colors=(0.6, 0.05, 0.05))
    assert _diff(textured, source.frame()) > 1.0
    with pytest.raises(ValueError):
        source.set_look(look["body_vertices"], look["body_faces"], look["garment_vertices"], look["garment_faces"],
                        fitmap_colors=np.zeros((3, 3)))


def test_frames_from_several_threads_while_the_camera_moves(source):
    errors = []

    def viewer():
        try:
            for _ in range(6):
                assert source.frame().shape == (H, W, 3)
        except Exception as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=viewer) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(5):
        source.camera.orbit(0.1, 0.02)
    for t in threads:
        t.join()
    assert not errors
    stats = source.stats
    assert stats.rendered + stats.reused == 18 and 1 <= stats.rendered <= 7
