"""3D Commerce budgets and geometry sanity: arrays in, the right warnings and errors out."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from assets.asset_budgets import (
    MAX_TRIANGLES,
    check_file_size,
    check_geometry,
    check_texture,
    check_triangle_count,
    image_size,
)

# A unit cube standing on the floor (y = 0), 12 triangles, metres.
CUBE_V = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float) - [0.5, 0, 0.5]
CUBE_F = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                   [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


def png_header(width: int, height: int) -> bytes:
    """A PNG with the given size in its header and no pixel data (Pillow reads only the header)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def codes(problems, severity=None) -> list[str]:
    return [p.code for p in problems if severity in (None, p.severity)]


def test_triangle_budget_and_hard_limit():
    assert check_triangle_count(100_000) == []
    assert codes(check_triangle_count(100_001), "warning") == ["triangle_budget"]
    assert codes(check_triangle_count(MAX_TRIANGLES)) == ["triangle_budget"]
    over = check_triangle_count(MAX_TRIANGLES + 1)
    assert codes(over, "error") == ["too_many_triangles"]
    assert over[0].message == "The model has 1,000,001 triangles; the limit is 1,000,000. Decimate it."


def test_file_size_budget_and_hard_limit():
    assert check_file_size(5_000_000) == []
    assert codes(check_file_size(6_000_000), "warning") == ["file_size_budget"]
    big = check_file_size(60_000_000)
    assert codes(big, "error") == ["file_too_large"] and "60.0 MB; the limit is 50.0 MB" in big[0].message


def test_texture_sizes_from_real_images():
    buf = io.BytesIO()
    Image.new("RGB", (1024, 512)).save(buf, format="JPEG")
    assert check_texture(buf.getvalue(), "/images/0") == ((1024, 512), [])
    buf = io.BytesIO()
    Image.new("RGBA", (300, 256)).save(buf, format="PNG")
    size, problems = check_texture(buf.getvalue(), "/images/1")
    assert size == (300, 256) and codes(problems) == ["texture_not_power_of_two"]
    assert problems[0].where == "/images/1" and "300×256 px" in problems[0].message


@pytest.mark.parametrize("w, h, expected", [
    (2048, 2048, []),
    (4096, 4096, ["texture_size_budget"]),
    (4096, 3000, ["texture_size_budget", "texture_not_power_of_two"]),
    (16384, 16, ["texture_too_large"]),
    (100_000, 100_000, ["texture_too_large"]),  # Pillow's decompression-bomb guard, reported as too large
])
def test_texture_budgets_from_headers(w, h, expected):
    size, problems = check_texture(png_header(w, h))
    assert codes(problems) == expected
    assert size == (None if w == 100_000 else (w, h))
    assert [p.severity for p in problems] == ["error" if c == "texture_too_large" else "warning" for c in expected]


def test_unreadable_texture():
    size, problems = check_texture(b"GIF89a" + b"\0" * 3, "shirt.png")
    assert size is None and codes(problems, "error") == ["unreadable_texture"] and problems[0].where == "shirt.png"
    assert image_size(b"") is None


def test_a_good_cube_has_no_problems_and_its_bounds():
    problems, bounds = check_geometry(CUBE_V, CUBE_F)
    assert problems == []
    np.testing.assert_allclose(bounds, [[-0.5, 0, -0.5], [0.5, 1, 0.5]])


def test_nan_and_infinite_vertices():
    v = CUBE_V.copy()
    v[3] = np.nan
    v[6, 1] = np.inf
    problems, bounds = check_geometry(v, CUBE_F)
    assert codes(problems) == ["non_finite_vertices"]
    assert problems[0].message == "2 vertices have NaN or infinite coordinates (the first is vertex 3)."
    assert problems[0].where == "vertex 3"
    # The bounds come from the triangles with finite corners only.
    assert np.isfinite(bounds).all()
    problems, bounds = check_geometry(np.full((3, 3), np.nan), [[0, 1, 2]])
    assert codes(problems) == ["non_finite_vertices"] and bounds is None


def test_empty_and_broken_meshes():
    for v, f in [(np.zeros((0, 3)), np.zeros((0, 3), int)), (CUBE_V, np.zeros((0, 3), int))]:
        problems, bounds = check_geometry(v, f)
        assert codes(problems, "error") == ["empty_mesh"] and bounds is None
    problems, _ = check_geometry(CUBE_V, np.vstack([CUBE_F, [[0, 1, 8]]]))
    assert codes(problems) == ["face_index_out_of_range"]
    assert problems[0].message == "Faces use vertices 0 to 8, but there are 8."


def test_degenerate_triangles():
    f = np.vstack([CUBE_F, [[0, 0, 1], [0, 1, 1]]])  # two with a repeated corner
    v = np.vstack([CUBE_V, [[0.1, 0.2, 0.3], [0.2, 0.4, 0.6], [0.3, 0.6, 0.9]]])  # three collinear points
    f = np.vstack([f, [[8, 9, 10]]])
    problems, _ = check_geometry(v, f)
    assert codes(problems, "warning") == ["degenerate_triangles"]
    assert problems[0].message == "3 of 15 triangles (20 %) have zero area; remove them."
    problems, _ = check_geometry(v, [[0, 0, 1], [8, 9, 10]])
    assert codes(problems, "error") == ["all_triangles_degenerate"]


@pytest.mark.parametrize("scale, code, hint", [
    (100.0, "too_large", "It looks like centimetres (1 m if so)"),
    (1000.0, "too_large", "It looks like millimetres (1 m if so)"),
    (0.005, "too_small", "Check the unit"),
    (1e5, "implausible_size", "Check the unit"),
    (1e-5, "implausible_size", "Check the unit"),
])
def test_real_world_size_with_unit_hints(scale, code, hint):
    problems, bounds = check_geometry(CUBE_V * scale, CUBE_F)
    assert codes(problems) == [code] and hint in problems[0].message
    assert problems[0].severity == ("error" if code == "implausible_size" else "warning")
    np.testing.assert_allclose(bounds[1], [0.5 * scale, scale, 0.5 * scale])


def test_z_up_hint():
    # A 40 x 40 cm table top 75 cm tall, standing on z = 0 with y centred: exported Z-up.
    box = CUBE_V[:, [0, 2, 1]] * [0.4, 0.4, 0.75]
    problems, _ = check_geometry(box, CUBE_F)
    assert codes(problems) == ["looks_z_up"] and "+Y up" in problems[0].message
    # The same table Y-up, and a shoe (longest along Z, standing on y = 0), get no hint.
    assert check_geometry(CUBE_V * [0.4, 0.75, 0.4], CUBE_F)[0] == []
    assert check_geometry(CUBE_V * [0.1, 0.12, 0.3], CUBE_F)[0] == []


def test_a_million_triangles_is_checked_quickly():
    """The geometry checks are vectorised: a 1M-triangle grid costs well under a second."""
    n = 708  # 2 * 707^2 = 999,698 triangles
    x, z = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    v = np.stack([x.ravel(), np.zeros(n * n), z.ravel()], 1)
    i = np.arange(n * n).reshape(n, n)
    a, b, c, d = i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel()
    f = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    assert len(f) == 999_698
    problems, bounds = check_geometry(v, f)
    assert problems == []  # a flat 1 m square sheet on the floor, every triangle with area
    np.testing.assert_allclose(bounds, [[0, 0, 0], [1, 0, 1]])
    assert check_triangle_count(len(f) + 400)[0].code == "too_many_triangles"
