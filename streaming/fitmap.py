"""Fit maps: colour scales for a draped garment's strain and pressure, and a still image of the look.

Scales. `strain_colors` follows the strain maps of garment CAD tools (CLO, Browzwear): blue to
cyan where the fabric is at rest or compressed (100 % of its rest length or less), green a little
stretched (105 %), yellow (110 %), orange (115 %), red from 120 % on, where most woven fabrics feel
tight. `pressure_colors` runs from white (no contact) to red at 4 kPa and more (firm compression
wear). Both interpolate their `LEGEND` stops in sRGB, so the colour bar (drawn in sRGB) and the
unlit garment show the same colours, and return linear RGB as `streaming.render` and glTF expect.
Values without data (NaN) are grey.

Image. `render_fitmap` draws the body (skin colour) and the garment (its fit-map colours) from the
front and from the back, side by side, with a colour bar on the right. Both cameras frame the
bounding box of body and garment together; the back view's lights are the front's turned around.
"""

from __future__ import annotations

import io

import numpy as np

from avatar.glb_export import SKIN_COLOUR
from fitroom.files import write_atomic
from streaming.render import DEFAULT_LIGHTS, DirectionalLight, PinholeCamera, Surface, shared_renderer

__all__ = [
    "LEGEND",
    "PRESSURE_LEGEND",
    "NO_DATA_SRGB",
    "strain_colors",
    "pressure_colors",
    "fitmap_cameras",
    "render_fitmap",
    "write_png",
]

# (strain in % of rest length, displayed sRGB colour 0-255); below the first and above the last
# stop the end colours hold.
LEGEND = [
    (90.0, (40, 80, 230)),
    (100.0, (0, 190, 230)),
    (105.0, (40, 190, 70)),
    (110.0, (250, 220, 0)),
    (115.0, (250, 130, 0)),
    (120.0, (220, 30, 30)),
]
# (contact pressure in kPa, displayed sRGB colour 0-255).
PRESSURE_LEGEND = [
    (0.0, (255, 255, 255)),
    (1.0, (255, 225, 120)),
    (2.5, (250, 140, 40)),
    (4.0, (220, 30, 30)),
]
NO_DATA_SRGB = (150, 150, 150)
_LEGENDS = {"strain": (LEGEND, "strain", "%"), "pressure": (PRESSURE_LEGEND, "pressure", "kPa")}
_TEXT = (40, 40, 40)
# Turned 180 degrees about +Y: the back view is lit as the front one is.
_BACK_LIGHTS = tuple(
    DirectionalLight((-l.direction[0], l.direction[1], -l.direction[2]), l.intensity, l.color) for l in DEFAULT_LIGHTS
)


def _ramp_srgb(values, legend) -> np.ndarray:
    """Displayed colours (n, 3) float64 in [0, 1] of `values` (n,) on a legend's stops."""
    x = np.asarray(values, np.float64).reshape(-1)
    stops = np.array([s for s, _ in legend])
    colours = np.array([c for _, c in legend], np.float64) / 255.0
    out = np.stack([np.interp(x, stops, colours[:, k]) for k in range(3)], 1)
    out[np.isnan(x)] = np.array(NO_DATA_SRGB) / 255.0
    return out


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def strain_colors(strain_percent) -> np.ndarray:
    """Fit-map colours (n, 3) float32 linear RGB of strains (n,) in % of rest length (100 = at rest)."""
    return _srgb_to_linear(_ramp_srgb(strain_percent, LEGEND)).astype(np.float32)


def pressure_colors(kpa) -> np.ndarray:
    """Fit-map colours (n, 3) float32 linear RGB of contact pressures (n,) in kPa (white at 0, red >= 4)."""
    return _srgb_to_linear(_ramp_srgb(kpa, PRESSURE_LEGEND)).astype(np.float32)


def fitmap_cameras(points, width: int, height: int, margin: float = 0.1) -> tuple[PinholeCamera, PinholeCamera]:
    """Front and back cameras (width x height pixels) framing the bounding box of `points` (n, 3), metres.

    The front camera looks along -Z at the body's front (+Z), the back one along +Z; the box fills
    the image but for `margin` (a fraction of each side) on every edge.
    """
    p = np.asarray(points, np.float64).reshape(-1, 3)
    lo, hi = p.min(0), p.max(0)
    centre, size = (lo + hi) / 2.0, hi - lo
    focal = 2.0 * height  # a 28 degree vertical field of view: little perspective distortion
    usable = 1.0 - 2.0 * margin
    # Distance from the box's near face at which its width and height both fit.
    distance = focal * max(size[1] / (usable * height), size[0] / (usable * width), 1e-3)
    camera = PinholeCamera(int(width), int(height), focal)
    front = camera.look_at([centre[0], centre[1], hi[2] + distance], centre)
    back = camera.look_at([centre[0], centre[1], lo[2] - distance], centre)
    return front, back


def _draw_legend(draw, x0: int, height: int, legend: str, font) -> None:
    """Draws the colour bar of `legend` and its labels with PIL's `draw`, from column x0 on."""
    stops, heading, unit = _LEGENDS[legend]
    top, bottom = int(0.15 * height), int(0.85 * height)
    lo, hi = stops[0][0], stops[-1][0]
    # Row y shows the value at its height: the highest at the top.
    ys = np.arange(top, bottom)
    colours = np.round(_ramp_srgb(hi - (ys - top) / (bottom - 1 - top) * (hi - lo), stops) * 255).astype(int)
    for y, c in zip(ys.tolist(), colours.tolist()):
        draw.line([(x0 + 10, y), (x0 + 31, y)], fill=tuple(c))
    draw.rectangle([(x0 + 9, top - 1), (x0 + 32, bottom)], outline=(190, 190, 190))  # white ends stay visible
    draw.text((x0 + 10, top - 2 * font.size), heading, fill=_TEXT, font=font)
    for value, _ in stops:
        y = bottom - 1 - (value - lo) / (hi - lo) * (bottom - 1 - top)
        draw.line([(x0 + 32, y), (x0 + 37, y)], fill=_TEXT)
        draw.text((x0 + 40, y), f"{value:g} {unit}", fill=_TEXT, font=font, anchor="lm")


def render_fitmap(
    body_vertices,
    body_faces,
    garment_vertices,
    garment_faces,
    garment_colors,
    *,
    width: int = 960,
    height: int = 720,
    title: str = "",
    legend: str = "strain",
) -> np.ndarray:
    """A fit-map image: front and back views of the body wearing the garment, and a colour bar.

    Parameters
    ----------
    body_vertices : (V, 3) float, body_faces : (F, 3) int
        The body, world metres (+Y up, facing +Z).
    garment_vertices : (N, 3) float, garment_faces : (M, 3) int
        The draped garment, world metres.
    garment_colors : (N, 3) float
        Linear RGB in [0, 1] per garment vertex, e.g. `strain_colors(strain)`.
    width, height : int
        Image size in pixels; the colour bar takes the right eighth (at least 110 px).
    title : str
        Written at the top left.
    legend : {"strain", "pressure"}
        The scale the colour bar shows.

    Returns
    -------
    image : (height, width, 3) uint8 sRGB, white background.
    """
    from PIL import Image, ImageDraw, ImageFont

    if legend not in _LEGENDS:
        raise ValueError(f"legend must be one of {sorted(_LEGENDS)}, not {legend!r}")
    gv = np.asarray(garment_vertices, np.float64)
    colors = np.asarray(garment_colors, np.float64)
    if colors.shape != gv.shape:
        raise ValueError(f"garment colours {colors.shape} must be one (r, g, b) per garment vertex {gv.shape}")
    bv = np.asarray(body_vertices, np.float64)
    legend_width = max(110, width // 8)
    view_width = (width - legend_width) // 2
    surfaces = [
        Surface(bv, np.asarray(body_faces), base_color=tuple(SKIN_COLOUR[:3])),
        Surface(gv, np.asarray(garment_faces), colors=colors, roughness=0.9),
    ]
    front, back = fitmap_cameras(np.concatenate([bv, gv]), view_width, height)
    renderer = shared_renderer(view_width, height)
    image = np.full((height, width, 3), 255, np.uint8)
    image[:, :view_width] = renderer.render(surfaces, front)
    image[:, view_width : 2 * view_width] = renderer.render(surfaces, back, lights=_BACK_LIGHTS)
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    small = ImageFont.load_default(size=max(10, height // 45))
    _draw_legend(draw, 2 * view_width, height, legend, small)
    for k, label in enumerate(("front", "back")):
        draw.text((k * view_width + view_width // 2, height - 8), label, fill=_TEXT, font=small, anchor="mb")
    if title:
        draw.text((12, 10), title, fill=_TEXT, font=ImageFont.load_default(size=max(12, height // 32)))
    return np.asarray(pil).copy()


def write_png(path, image) -> None:
    """Writes an image (H, W, 3) or (H, W, 4) uint8 as PNG to `path`, atomically."""
    from PIL import Image

    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"a PNG image is (H, W, 3 or 4) uint8, not {a.shape} {a.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())
