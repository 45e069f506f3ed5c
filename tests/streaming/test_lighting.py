"""Lighting presets: four distinct rigs with colour temperatures that turn with the camera."""

from __future__ import annotations

import numpy as np
import pytest

from fitroom.errors import FitroomError
from streaming.lighting import LIGHT_NAMES, kelvin_rgb, light_preset, rig_lights


def test_the_four_presets_exist_and_differ():
    assert LIGHT_NAMES == ("studio", "daylight", "evening", "store")
    presets = [light_preset(n) for n in LIGHT_NAMES]
    assert len({p.background for p in presets}) == 4
    for p in presets:
        assert len(p.lights) == 3 and all(l.intensity > 0 for l in p.lights)
        assert 0.0 <= p.shadow <= 1.0 and all(0.0 <= c <= 1.0 for c in (*p.background, *p.floor, *p.ambient))
    # The evening key light is a warm lamp: more red than blue.
    key = light_preset("evening").lights[0].color
    assert key[0] > 2 * key[2]


def test_kelvin_colours_run_from_warm_to_cool():
    warm, neutral, cool = kelvin_rgb(2700), kelvin_rgb(6600), kelvin_rgb(10000)
    assert warm[0] == 1.0 and warm[2] < 0.3
    assert np.allclose(neutral, 1.0, atol=0.05)
    assert cool[2] == 1.0 and cool[0] < 0.9


def test_unknown_preset_is_a_plain_error():
    with pytest.raises(FitroomError, match="studio"):
        light_preset("disco")


def test_rig_turns_with_the_camera():
    p = light_preset("studio")
    same = rig_lights(p, 0.0)
    assert np.allclose([l.direction for l in same], [l.direction for l in p.lights])
    half = rig_lights(p, np.pi)  # camera behind the body: the rig comes round with it
    for a, b in zip(p.lights, half):
        assert np.allclose(b.direction, (-a.direction[0], a.direction[1], -a.direction[2]), atol=1e-12)
        assert b.color == a.color and b.intensity == a.intensity
