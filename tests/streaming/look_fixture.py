"""A small real look for the streaming tests: fitroom's female M reference body wearing a
procedural t-shirt (about 1500 vertices) draped in cotton jersey, with strain fit-map colours and
a made-up striped texture and ribbed normal map on cylindrical uv. Built once per process (~2 s)."""

from __future__ import annotations

import numpy as np


_LOOKS: dict = {}


def _build(model) -> dict:
    from assets.procedural_garments import procedural_garment
    from assets.try_on import ShopperBody, try_on
    from avatar.measurements import measure_body
    from engine.backend import to_numpy
    from engine.fabrics import fabric_preset
    from streaming.fitmap import strain_colors

    garment = procedural_garment(model, "tshirt", "M", "female", target_vertices=1500)
    body = garment.body_vertices  # the M reference body the garment was made on
    look = try_on(model, ShopperBody(body, "female", measure_body(body, model)), garment, fabric_preset("cotton_jersey"))
    gv, gf = look.result.positions, look.result.faces
    centre = gv.mean(0)
    u = np.arctan2(gv[:, 0] - centre[0], gv[:, 2] - centre[2]) / (2 * np.pi) + 0.5
    v = (gv[:, 1] - gv[:, 1].min()) / np.ptp(gv[:, 1])
    ramp = np.arange(64)
    stripes = ((ramp // 8) % 2)[:, None].repeat(64, 1)
    texture = np.stack([np.where(stripes, 200, 40), np.where(stripes, 60, 90), np.full((64, 64), 150)], -1).astype(np.uint8)
    ribs = np.sin(ramp / 64 * 2 * np.pi * 8)[None, :].repeat(64, 0)
    normal = np.stack([0.4 * ribs, np.zeros_like(ribs), np.ones_like(ribs)], -1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    return {
        "body_vertices": body, "body_faces": to_numpy(model.faces), "garment_vertices": gv, "garment_faces": gf,
        "fitmap_colors": strain_colors(look.result.strain_percent), "uv": np.stack([u, v], 1).astype(np.float32),
        "texture": texture, "normal_map": np.round((normal + 1) * 127.5).astype(np.uint8),
    }


def small_look(model) -> dict:
    """The look's arrays (see the module docstring); `model` is the CPU body model fixture."""
    if id(model) not in _LOOKS:
        _LOOKS[id(model)] = _build(model)
    return _LOOKS[id(model)]
