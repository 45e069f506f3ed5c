"""A look to take home: the avatar and the draped garment as one GLB (model-viewer, Scene Viewer,
WebXR) or USDZ (AR Quick Look). Metres, +Y up, the body facing +Z.

Both files come from the same two parts (body, garment) through the asset pipeline's writers,
`assets.glb_write.parts_glb_bytes` and `assets.usdz_export.usdz_bytes`, because they carry the
garment's textures (base colour, normal and roughness maps in the GLB; base colour in the USDZ,
which is all Quick Look reads); `avatar.glb_export.look_glb_bytes` writes vertex colours only.
Per-vertex garment colours go to the GLB's COLOR_0 and, as USD's preview material has no vertex
colours, to the USDZ as their mean colour.
"""

from __future__ import annotations

import numpy as np

from assets.glb_write import parts_glb_bytes
from assets.model_load import Material, Part
from assets.texture_resize import encode_texture, fit_texture
from assets.usdz_export import usdz_bytes
from avatar.glb_export import SKIN_COLOUR
from streaming.frame_source import DEFAULT_FABRIC_COLOUR
from streaming.render import vertex_normals

__all__ = ["look_glb", "look_usdz"]


def _encode(image):
    return encode_texture(fit_texture(image))


def _parts(body_vertices, body_faces, garment_vertices, garment_faces, garment_colors, uv, texture, normal_map,
           roughness, usdz: bool) -> list[Part]:
    from PIL import Image

    bv, gv = np.asarray(body_vertices, np.float64), np.asarray(garment_vertices, np.float64)
    bf, gf = np.asarray(body_faces, np.int64), np.asarray(garment_faces, np.int64)
    for v, f, what in ((bv, bf, "body"), (gv, gf, "garment")):
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or not len(f):
            raise ValueError(f"the {what} needs vertices (n, 3) and faces (m, 3)")
        if f.min() < 0 or f.max() >= len(v) or not np.isfinite(v).all():
            raise ValueError(f"the {what}'s faces index outside its vertices, or its vertices are not finite")
    base = (*DEFAULT_FABRIC_COLOUR, 1.0) if texture is None else (1.0, 1.0, 1.0, 1.0)
    colors = None
    if garment_colors is not None:
        c = np.clip(np.asarray(garment_colors, np.float64), 0.0, 1.0)
        if c.shape == (3,):
            base = (*c, 1.0)
        elif c.shape == gv.shape:
            if usdz:
                base = (*c.mean(0), 1.0)
            else:
                colors, base = np.concatenate([c, np.ones((len(c), 1))], 1).astype(np.float32), (1.0, 1.0, 1.0, 1.0)
        else:
            raise ValueError(f"garment colours must be (3,) or {gv.shape}, not {c.shape}")
    textures, rough = {}, 0.85
    if uv is not None:
        uv = np.asarray(uv, np.float32)
        if uv.shape != (len(gv), 2):
            raise ValueError(f"uv must be ({len(gv)}, 2), not {uv.shape}")
        if texture is not None:
            textures["base_color"] = Image.fromarray(np.ascontiguousarray(texture, np.uint8))
        if normal_map is not None:
            textures["normal"] = Image.fromarray(np.ascontiguousarray(np.asarray(normal_map)[..., :3], np.uint8))
        if roughness is not None and np.ndim(roughness) == 2:
            r = np.asarray(roughness, np.uint8)
            textures["metallic_roughness"] = Image.fromarray(np.stack([np.zeros_like(r), r, np.zeros_like(r)], -1))
            rough = 1.0
    if roughness is not None and np.ndim(roughness) == 0:
        rough = float(roughness)
    skin = Material("skin", base_color=tuple(SKIN_COLOUR), roughness=0.6)
    fabric = Material("garment", base_color=tuple(float(x) for x in base), roughness=rough, textures=textures,
                      double_sided=True)  # a single layer of cloth, seen from inside through its openings
    return [
        Part(bv, bf, skin, normals=vertex_normals(bv, bf)),
        Part(gv, gf, fabric, normals=vertex_normals(gv, gf), uv=uv if textures else None, colors=colors),
    ]


def look_glb(body_vertices, body_faces, garment_vertices, garment_faces, *, garment_colors=None, uv=None,
             texture=None, normal_map=None, roughness=None, name: str = "look") -> bytes:
    """The look as one GLB (binary glTF 2.0): a body and a garment primitive with their materials.

    Parameters are those of `FrameSource.set_look`: body_vertices (V, 3), body_faces (F, 3),
    garment_vertices (N, 3), garment_faces (M, 3), metres; garment_colors (3,) or (N, 3) linear
    RGB (e.g. fit-map colours); uv (N, 2) with texture (h, w, 3|4) uint8 sRGB, normal_map
    (h, w, 3) uint8, roughness float or (h, w) uint8. Textures are stored at power-of-two sizes.
    """
    parts = _parts(body_vertices, body_faces, garment_vertices, garment_faces, garment_colors, uv, texture,
                   normal_map, roughness, usdz=False)
    return parts_glb_bytes(parts, _encode, name=name)


def look_usdz(body_vertices, body_faces, garment_vertices, garment_faces, *, garment_colors=None, uv=None,
              texture=None, normal_map=None, roughness=None) -> bytes:
    """The look as a USDZ package for AR Quick Look: two meshes (body, garment) under `/Product/Geom`,
    metres, +Y up. Parameters as `look_glb`; the normal and roughness maps are not carried."""
    parts = _parts(body_vertices, body_faces, garment_vertices, garment_faces, garment_colors, uv, texture,
                   normal_map, roughness, usdz=True)
    return usdz_bytes(parts, _encode)
