"""Lighting presets for the live try-on: `studio`, `daylight`, `evening` and `store`.

A preset is a three-point rig (key, fill, rim: directional lights with a colour temperature and an
intensity), an ambient level, the background colour and how dark the floor's contact shadow is.
The rig is defined for a camera on the +Z side of a body facing +Z and turns with the camera about
+Y (`rig_lights`), so the side the shopper looks at is always lit as a product photo is.

Shadows. pyrender's shadow maps (`RenderFlags.SHADOWS_DIRECTIONAL`: a depth pass per directional
light into a `SHADOW_TEX_SZ` = 2048 px texture, then in every lit pixel a 3x3 filtered lookup of
each light's map) work through EGL, but on Mesa's llvmpipe (2 CPU cores) the lookup is what costs:
a smaller texture saves little and shows acne, and even the key light casting alone doubles a
1280x720 frame (render + encode p95 over the 80 ms budget). The measurements are in
docs/streaming.md, "Shadows" (`bench/render_presets.py --shadow-variants`). So on the CPU the floor
gets a soft contact shadow baked into its texture once per look instead (`streaming.look_scene`),
and shadow maps (all three lights: pyrender's shadow flag is per light type, not per light) are
for GPU machines (`FrameSource(..., shadow_maps=True)`, the default there).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fitroom.errors import FitroomError
from streaming.render import DirectionalLight

__all__ = ["LightPreset", "PRESETS", "LIGHT_NAMES", "kelvin_rgb", "light_preset", "rig_lights"]


def kelvin_rgb(kelvin: float) -> tuple[float, float, float]:
    """Linear RGB (3,) in [0, 1], brightest channel 1, of a black body at `kelvin` (1000-40000 K).

    Tanner Helland's fit of the black-body sRGB colours (within a few percent of CIE 1931 from
    1500 K to 12000 K), converted to linear RGB because lights are linear in the renderer.
    """
    t = float(np.clip(kelvin, 1000.0, 40000.0)) / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * np.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307)
    srgb = np.clip(np.array([r, g, b]) / 255.0, 0.0, 1.0)
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return tuple(float(x) for x in linear / linear.max())


@dataclasses.dataclass(frozen=True)
class LightPreset:
    """A lighting preset.

    name : its name. lights : key, fill and rim for a camera at yaw 0 (on +Z looking at -Z).
    ambient : (3,) linear RGB ambient light. background : (3,) displayed sRGB in [0, 1].
    floor : (3,) linear RGB base colour of the floor disc. shadow : darkness of the contact shadow
    under the body in [0, 1] (0 none, 1 black).
    """

    name: str
    lights: tuple
    ambient: tuple
    background: tuple
    floor: tuple
    shadow: float


def _rig(key, fill, rim) -> tuple:
    """Three `DirectionalLight`s from (direction, intensity, kelvin) triples."""
    return tuple(DirectionalLight(tuple(d), float(i), kelvin_rgb(k)) for d, i, k in (key, fill, rim))


PRESETS = {
    # A photo studio: neutral 5600 K softbox key from the upper left, half-strength fill, a cool rim.
    "studio": LightPreset(
        "studio",
        _rig(((0.35, -0.45, -1.0), 2.6, 5600), ((-0.6, -0.2, -1.0), 1.3, 5600), ((0.0, -0.5, 1.0), 1.4, 7000)),
        ambient=(0.30, 0.30, 0.30), background=(0.93, 0.93, 0.94), floor=(0.75, 0.75, 0.75), shadow=0.55,
    ),
    # A sunny street: a high warm sun, a blue sky fill, bright ambient sky light and a pale sky behind.
    "daylight": LightPreset(
        "daylight",
        _rig(((0.45, -1.0, -0.6), 3.4, 5200), ((-0.7, -0.3, -0.8), 1.1, 10000), ((-0.2, -0.4, 1.0), 1.0, 6500)),
        ambient=(0.34, 0.38, 0.46), background=(0.70, 0.82, 0.95), floor=(0.55, 0.53, 0.50), shadow=0.7,
    ),
    # An evening room: a low warm 2700 K lamp from the side, little fill, a blue dusk rim, dark walls.
    "evening": LightPreset(
        "evening",
        _rig(((1.0, -0.25, -0.5), 2.2, 2700), ((-0.8, -0.1, -0.6), 0.35, 3000), ((-0.3, -0.3, 1.0), 1.2, 9000)),
        ambient=(0.10, 0.08, 0.07), background=(0.14, 0.12, 0.15), floor=(0.30, 0.24, 0.20), shadow=0.4,
    ),
    # A shop floor: even 4000 K ceiling light from above and in front, strong fill, warm white walls.
    "store": LightPreset(
        "store",
        _rig(((0.15, -1.0, -0.5), 2.6, 4000), ((-0.3, -0.4, -1.0), 1.8, 4000), ((0.0, -0.6, 1.0), 0.8, 3500)),
        ambient=(0.42, 0.41, 0.39), background=(0.97, 0.95, 0.91), floor=(0.85, 0.82, 0.78), shadow=0.45,
    ),
}
LIGHT_NAMES = tuple(PRESETS)


def light_preset(name: str) -> LightPreset:
    """The preset called `name`; a `FitroomError` (`bad_light`) for an unknown one."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise FitroomError("bad_light", f"A light is one of {', '.join(LIGHT_NAMES)}, not {name!r}.") from None


def rig_lights(preset: LightPreset, yaw: float) -> tuple:
    """The preset's lights turned by `yaw` radians about +Y (the orbit camera's yaw), so they keep
    their place relative to the camera."""
    c, s = np.cos(yaw), np.sin(yaw)
    out = []
    for light in preset.lights:
        x, y, z = light.direction
        out.append(dataclasses.replace(light, direction=(c * x + s * z, y, -s * x + c * z)))
    return tuple(out)
