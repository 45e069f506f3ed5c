"""Fit maps: the colour scales run the right way, and the rendered image shows the garment's colours
where the garment is, skin elsewhere on the body, white around it and a colour bar."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from PIL import Image

from streaming.fitmap import LEGEND, PRESSURE_LEGEND, pressure_colors, render_fitmap, strain_colors, write_png


def _linear_to_srgb(c):
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


def _lathe(radii, heights, n: int = 48):
    """A surface of revolution about +Y through profile points (radius, height), bottom to top:
    vertices (k n, 3), faces counter-clockwise seen from outside. A zero radius is a pole (repeated)."""
    angle = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    v = np.concatenate([np.stack([r * np.sin(angle), np.full(n, y), r * np.cos(angle)], 1) for r, y in zip(radii, heights)])
    faces = []
    for k in range(len(radii) - 1):
        for j in range(n):
            a, b = k * n + j, k * n + (j + 1) % n
            faces += [[a, b, b + n], [a, b + n, a + n]]
    return v, np.array(faces)


def _capsule(radius: float, bottom: float, top: float):
    t = np.linspace(-np.pi / 2, 0.0, 8)
    radii = np.concatenate([radius * np.cos(t), radius * np.cos(t[::-1])])
    heights = np.concatenate([bottom + radius + radius * np.sin(t), top - radius - radius * np.sin(t[::-1])])
    return _lathe(radii, heights)


def test_lathe_faces_point_outward():
    from streaming.render import vertex_normals

    v, f = _capsule(0.15, 0.0, 1.7)
    n = vertex_normals(v, f)
    radial = v.copy()
    radial[:, 1] = 0.0
    side = np.linalg.norm(radial, axis=1) > 0.1
    assert (np.sum(n[side] * radial[side], 1) > 0).all()


def _hue(srgb) -> float:
    return colorsys.rgb_to_hsv(*srgb)[0] * 360.0


def test_strain_scale_runs_from_blue_to_red():
    strain = np.linspace(80.0, 140.0, 241)
    srgb = _linear_to_srgb(strain_colors(strain))
    hues = np.array([_hue(c) for c in srgb])
    assert (np.diff(hues) <= 1e-6).all()  # blue, cyan, green, yellow, orange, red: hue only falls
    assert 180.0 <= _hue(srgb[strain == 100.0][0]) <= 240.0  # at rest: cyan to blue
    assert 180.0 <= _hue(srgb[0]) <= 240.0  # compressed: blue
    assert 90.0 <= _hue(srgb[strain == 105.0][0]) <= 150.0  # green
    assert 45.0 <= _hue(srgb[strain == 110.0][0]) <= 65.0  # yellow
    assert np.allclose(srgb[strain >= 120.0], np.array(LEGEND[-1][1]) / 255.0, atol=1e-5)  # red from 120 %
    grey = strain_colors([np.nan])[0]
    assert grey.dtype == np.float32 and np.ptp(grey) < 1e-6 and 0.1 < grey[0] < 0.5
    # The legend's colours are the scale's colours at its stops.
    for value, colour in LEGEND:
        assert np.allclose(_linear_to_srgb(strain_colors([value])[0]), np.array(colour) / 255.0, atol=1e-5)


def test_pressure_scale_runs_from_white_to_red():
    kpa = np.linspace(-1.0, 6.0, 141)
    srgb = _linear_to_srgb(pressure_colors(kpa))
    assert np.allclose(srgb[kpa <= 0.0], 1.0, atol=1e-6)
    assert np.allclose(srgb[kpa >= 4.0], np.array(PRESSURE_LEGEND[-1][1]) / 255.0, atol=1e-5)
    assert (np.diff(srgb[:, 1]) <= 1e-9).all() and (np.diff(srgb[:, 2]) <= 1e-9).all()  # only redder


@pytest.fixture(scope="module")
def fitmap():
    """A body stand-in (a 1.7 m capsule) in a 'top' (an open tube around its middle) whose +X half
    is tight (130 %, red) and -X half at rest (100 %, cyan)."""
    body_v, body_f = _capsule(0.15, 0.0, 1.7)
    top_v, top_f = _lathe([0.18] * 6, np.linspace(0.8, 1.3, 6))
    strain = np.where(top_v[:, 0] > 0.0, 130.0, 100.0)
    image = render_fitmap(body_v, body_f, top_v, top_f, strain_colors(strain), title="test top, size M")
    return image


def _masks(image):
    rgb = image.astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    red = (r > 120) & (g < 0.45 * r) & (b < 0.45 * r)
    cyan = (b > r + 60) & (g > r + 40)
    skin = (r > 120) & (g > 0.6 * r) & (g < r - 15) & (b < g - 5)
    white = (rgb >= 250).all(-1)
    return red, cyan, skin, white


def test_fitmap_shows_the_garment_colours_on_the_body(fitmap):
    height, width, _ = fitmap.shape
    assert (height, width) == (720, 960) and fitmap.dtype == np.uint8
    view = (width - max(110, width // 8)) // 2
    red, cyan, skin, white = _masks(fitmap)
    for k, (tight, loose) in enumerate([("right", "left"), ("left", "right")]):
        half = slice(k * view, (k + 1) * view)
        r_rows, r_cols = np.nonzero(red[:, half])
        c_rows, c_cols = np.nonzero(cyan[:, half])
        s_rows, _ = np.nonzero(skin[:, half])
        assert len(r_rows) > 2000 and len(c_rows) > 2000
        # Front view: +X (the tight half) is on the image's right; back view: on its left.
        assert (r_cols.mean() > c_cols.mean()) == (tight == "right")
        # Skin above (the head and shoulders) and below (the legs) the garment, none inside it.
        assert (s_rows < r_rows.min()).sum() > 2000 and (s_rows > r_rows.max()).sum() > 2000
        garment_rows = slice(r_rows.min() + 5, r_rows.max() - 5)
        assert skin[garment_rows, half].sum() < 0.02 * (red[garment_rows, half].sum() + cyan[garment_rows, half].sum())
        # White background around the figure.
        assert white[:, half][:, :20].mean() > 0.98 and white[:, half][:, -20:].mean() > 0.98


def test_fitmap_has_a_colour_bar_and_title(fitmap):
    height, width, _ = fitmap.shape
    strip = fitmap[:, 2 * ((width - max(110, width // 8)) // 2) :]
    red, cyan, _, white = _masks(strip)
    assert (~white).sum() > 3000  # bar and labels
    red_rows, cyan_rows = np.nonzero(red)[0], np.nonzero(cyan)[0]
    assert len(red_rows) and len(cyan_rows) and red_rows.mean() < cyan_rows.mean()  # red at the top
    dark = (fitmap.astype(int).sum(-1) < 300)
    assert dark[: height // 12, : width // 3].sum() > 50  # the title


def test_write_png_round_trips_atomically(fitmap, tmp_path):
    path = tmp_path / "fitmap.png"
    write_png(path, fitmap)
    assert np.array_equal(np.asarray(Image.open(path)), fitmap)
    assert [p.name for p in tmp_path.iterdir()] == ["fitmap.png"]
    with pytest.raises(ValueError):
        write_png(tmp_path / "bad.png", fitmap.astype(np.float32))


def test_pressure_legend_and_bad_colours():
    body_v, body_f = _capsule(0.15, 0.0, 1.7)
    top_v, top_f = _lathe([0.18] * 3, [0.9, 1.1, 1.3])
    image = render_fitmap(body_v, body_f, top_v, top_f, pressure_colors(np.full(len(top_v), 2.0)),
                          width=480, height=360, legend="pressure")
    assert image.shape == (360, 480, 3)
    with pytest.raises(ValueError):
        render_fitmap(body_v, body_f, top_v, top_f, np.ones((3, 3)))
    with pytest.raises(ValueError):
        render_fitmap(body_v, body_f, top_v, top_f, np.ones((len(top_v), 3)), legend="stretch")
