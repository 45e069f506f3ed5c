"""Catalogue thumbnails: 512x512 PNG, the model in frame and textured."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from assets.asset_processing import process_model
from streaming.thumbnail import THUMBNAIL_BACKGROUND, render_thumbnail
from tests.assets.sample_models import box_parts_glb, textured_glb


def _pixels(png: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size == (512, 512)
    return np.asarray(img.convert("RGB")).astype(int)


def _model_mask(rgb: np.ndarray) -> np.ndarray:
    background = np.round(np.array(THUMBNAIL_BACKGROUND) * 255)
    return np.abs(rgb - background).max(-1) > 8


def test_textured_thumbnail(tmp_path):
    result = process_model(textured_glb(tmp_path / "vase.glb", 4000, 512), kind="other")
    rgb = _pixels(render_thumbnail(result.lods[1].glb))
    mask = _model_mask(rgb)
    assert 0.1 < mask.mean() < 0.8  # framed: visible, not overflowing
    assert not mask[0].any() and not mask[-1].any() and not mask[:, 0].any() and not mask[:, -1].any()
    # The texture's colours show (red, green and blue areas), not one flat shade.
    model = rgb[mask]
    assert model.std(0).min() > 20
    assert (model[:, 0] > model[:, 2] + 60).any() and (model[:, 2] > model[:, 0] + 60).any()


def test_untextured_furniture_thumbnail(tmp_path):
    result = process_model(box_parts_glb(tmp_path / "table.glb"), kind="furniture")
    rgb = _pixels(render_thumbnail(result.lods[0].glb, size=512))
    mask = _model_mask(rgb)
    assert mask.mean() > 0.05
