"""Catalogue thumbnails: a processed product GLB rendered to a square PNG.

The camera looks at the model from the front (+Z), a little from the right and above, with a
30 degree field of view, as close as it can while the model's bounding box stays inside the
frame with a small margin. Lit by `render.DEFAULT_LIGHTS` over a light grey background, with each
material's base colour, vertex colours and base colour texture (at most 1024 px: more is not seen
in a 512 px image). Rendering uses the process-wide offscreen renderer of the thumbnail's size, so
after the first thumbnail of a process (GL context and shaders, about 1.5 s on a CPU) one takes
about 0.1-0.2 s for a 25k-triangle level of detail.
"""

from __future__ import annotations

import io

import numpy as np

from assets.model_load import load_parts
from assets.model_normalise import bounds
from assets.texture_resize import fit_texture
from streaming.render import PinholeCamera, Surface, look_at_pose, shared_renderer

__all__ = ["THUMBNAIL_BACKGROUND", "render_thumbnail", "thumbnail_camera"]

THUMBNAIL_BACKGROUND = (0.94, 0.94, 0.95)  # displayed sRGB
_FOV_DEG = 30.0
_VIEW = np.array([0.45, 0.35, 1.0]) / np.linalg.norm([0.45, 0.35, 1.0])  # from the model towards the camera
_MARGIN = 0.9  # the box fills at most this fraction of the half-frame
_TEXTURE_PX = 1024


def thumbnail_camera(lo, hi, size: int = 512) -> PinholeCamera:
    """A square camera framing the axis-aligned box [lo, hi] (each (3,), metres) from `_VIEW`."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    centre = (lo + hi) / 2
    pose = look_at_pose(centre + _VIEW, centre)
    right, up, back = pose[:3, 0], pose[:3, 1], pose[:3, 2]
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]) - centre
    t = np.tan(np.radians(_FOV_DEG) / 2) * _MARGIN
    # A corner q is in frame when |q.right| and |q.up| <= t * (distance - q.back).
    reach = np.maximum(np.abs(corners @ right), np.abs(corners @ up)) / t + corners @ back
    distance = max(float(reach.max()), 1e-3)
    focal = size / (2 * np.tan(np.radians(_FOV_DEG) / 2))
    return PinholeCamera(size, size, focal).look_at(centre + back * distance, centre)


def render_thumbnail(glb: bytes, size: int = 512) -> bytes:
    """A PNG (size x size, RGB) of the model in `glb` (metres, +Y up).

    Raises FitroomError (`unreadable_model`, `no_triangles`) for a GLB it cannot read.
    """
    from PIL import Image

    parts = load_parts(glb)
    surfaces = []
    textures: dict = {}
    for p in parts:
        m = p.material
        image = m.textures.get("base_color")
        if image is not None and id(image) not in textures:
            textures[id(image)] = np.asarray(fit_texture(image, _TEXTURE_PX))
        surfaces.append(
            Surface(
                vertices=p.vertices,
                faces=p.faces,
                colors=None if p.colors is None else p.colors[:, :3],
                base_color=tuple(m.base_color[:3]),
                normals=p.normals,
                roughness=float(m.roughness),
                uv=p.uv,
                texture=None if image is None else textures[id(image)],
            )
        )
    lo, hi = bounds(parts)
    camera = thumbnail_camera(lo, hi, size)
    rgb = shared_renderer(size, size).render(surfaces, camera, background=THUMBNAIL_BACKGROUND)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()
