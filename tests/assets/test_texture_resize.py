"""Texture sizes: power of two, capped; alpha kept as PNG."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from assets.texture_resize import encode_texture, fit_texture, power_of_two_size


def test_power_of_two_sizes():
    assert power_of_two_size(4096, 4096) == (2048, 2048)
    assert power_of_two_size(1000, 3000) == (512, 2048)  # aspect kept within a factor of two
    assert power_of_two_size(300, 200) == (256, 256)
    assert power_of_two_size(1500, 1500, 1024) == (1024, 1024)
    assert power_of_two_size(1, 1) == (1, 1)


def test_opaque_texture_is_jpeg_and_alpha_is_png():
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 1000, 3), np.uint8))
    enc = encode_texture(fit_texture(rgb))
    assert enc.mime_type == "image/jpeg" and (enc.width, enc.height) == (1024, 512)
    assert Image.open(io.BytesIO(enc.data)).size == (1024, 512)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 3] = 128
    enc = encode_texture(fit_texture(Image.fromarray(rgba)))
    assert enc.mime_type == "image/png" and Image.open(io.BytesIO(enc.data)).mode == "RGBA"
    opaque = Image.fromarray(np.full((64, 64, 4), 255, np.uint8))
    assert encode_texture(fit_texture(opaque)).mime_type == "image/jpeg"  # an unused alpha channel is dropped
