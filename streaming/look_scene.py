"""The pyrender scene of a look, kept between frames: body, garment, floor, lights and camera.

Meshes and textures are uploaded to the GL context once per look; a frame only moves the camera
and the lights (which turn with the camera's yaw, see `streaming.lighting`). The garment is held
twice, in its fabric and in its fit-map colours, and the fit map is switched by visibility.

The floor is a disc under the body whose texture carries a soft contact shadow: the body and
garment seen from above, darker where they come near the floor, blurred. It is baked on the CPU
once per look and light (a few ms for a 14k-vertex body) because shadow maps do not fit the CPU's
frame budget on llvmpipe, at any shadow texture size or with the key light alone casting
(docs/streaming.md, "Shadows"); with `shadow_maps` the directional lights cast real shadows too
(GPU machines). Frames read back colour only (no depth).

Not thread-safe: `streaming.frame_source.FrameSource` serialises access.
"""

from __future__ import annotations

import numpy as np

from streaming.lighting import LightPreset, rig_lights
from streaming.render import OffscreenRenderer, PinholeCamera, Surface, _light_pose, _pyrender_mesh

__all__ = ["LookScene", "floor_disc", "contact_shadow"]

_SHADOW_PX = 128


def floor_disc(centre, radius: float, segments: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A horizontal disc facing +Y: vertices (segments + 1, 3), faces (segments, 3), uv
    (segments + 1, 2) mapping the disc's square [-radius, radius]^2 onto [0, 1]^2 (u along +X,
    v along -Z). `centre` (3,) is its middle, metres."""
    a = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    ring = np.stack([np.cos(a), np.zeros_like(a), np.sin(a)], 1)
    vertices = np.concatenate([[np.zeros(3)], ring]) * radius + np.asarray(centre, np.float64)
    k = np.arange(segments)
    faces = np.stack([np.zeros_like(k), (k + 1) % segments + 1, k + 1], 1)  # counter-clockwise from above
    local = (vertices - np.asarray(centre, np.float64))[:, [0, 2]] / (2.0 * radius)
    uv = np.stack([local[:, 0] + 0.5, 0.5 - local[:, 1]], 1)
    return vertices, faces, uv


def _blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Separable Gaussian blur of a (h, w) float image (edges padded with zeros)."""
    r = max(1, int(3 * sigma_px))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_px) ** 2)
    k /= k.sum()
    out = np.apply_along_axis(np.convolve, 0, image, k, mode="same")
    return np.apply_along_axis(np.convolve, 1, out, k, mode="same")


def contact_shadow(points, centre, radius: float, size: int = _SHADOW_PX) -> np.ndarray:
    """Occlusion (size, size) float in [0, 1] of the floor disc (see `floor_disc`) by `points`
    (n, 3), metres: 1 under a point touching the floor, fading with height (half at 0.35 m), soft
    edges (3 cm blur). Rows run along -Z, columns along +X, as the disc's uv."""
    p = np.asarray(points, np.float64).reshape(-1, 3)
    c = np.asarray(centre, np.float64)
    col = ((p[:, 0] - c[0]) / (2 * radius) + 0.5) * size
    row = ((c[2] - p[:, 2]) / (2 * radius) + 0.5) * size
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    weight = 0.5 ** (np.maximum(p[:, 1] - c[1], 0.0) / 0.35)
    grid = np.zeros((size, size))
    np.maximum.at(grid, (row[inside].astype(np.int64), col[inside].astype(np.int64)), weight[inside])
    return np.clip(_blur(grid, 0.03 / (2 * radius) * size) * 1.6, 0.0, 1.0)


def _srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear [0, 1] -> sRGB uint8 (textures are sampled as sRGB by pyrender's shader)."""
    x = np.clip(linear, 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    return np.round(srgb * 255.0).astype(np.uint8)


class LookScene:
    """A pyrender scene of one look (see the module docstring)."""

    def __init__(self):
        import pyrender

        self.scene = pyrender.Scene()
        self._camera = self.scene.add(pyrender.IntrinsicsCamera(fx=1.0, fy=1.0, cx=0.5, cy=0.5, znear=0.05, zfar=20.0))
        self._lights = [self.scene.add(pyrender.DirectionalLight()) for _ in range(3)]
        self._body = self._garment = self._fitmap = self._floor = None
        self._occlusion = None
        self._floor_geometry = None  # (centre, radius)
        self._bounds = (np.zeros(3), np.ones(3))
        self.fitmap_on = False

    @property
    def has_look(self) -> bool:
        return self._body is not None

    def set_surfaces(self, body: Surface, garment: Surface, fitmap: Surface | None) -> None:
        """Replaces the look: the body, the garment in its material and, optionally, in fit-map colours."""
        for node in (self._body, self._garment, self._fitmap):
            if node is not None:
                self.scene.remove_node(node)
        self._body = self.scene.add(_pyrender_mesh(body))
        self._garment = self.scene.add(_pyrender_mesh(garment))
        self._fitmap = None if fitmap is None else self.scene.add(_pyrender_mesh(fitmap))
        points = np.concatenate([np.asarray(body.vertices, np.float64), np.asarray(garment.vertices, np.float64)])
        lo, hi = points.min(0), points.max(0)
        self._bounds = (lo, hi)
        centre = np.array([(lo[0] + hi[0]) / 2.0, lo[1] - 0.002, (lo[2] + hi[2]) / 2.0])  # 2 mm under the feet: no z-fighting
        radius = max(0.6, 0.5 * float(hi[1] - lo[1]))
        self._floor_geometry = (centre, radius)
        self._occlusion = contact_shadow(points, centre, radius)
        self.show_fitmap(self.fitmap_on)

    def show_fitmap(self, on: bool) -> None:
        """Shows the garment in fit-map colours (when it has them) or in its material."""
        self.fitmap_on = bool(on)
        if self._garment is not None:
            overlay = self.fitmap_on and self._fitmap is not None
            self._garment.mesh.is_visible = not overlay
            if self._fitmap is not None:
                self._fitmap.mesh.is_visible = overlay

    def set_light(self, preset: LightPreset) -> None:
        """Background, ambient light and the floor (its colour and contact shadow) of `preset`;
        the lights themselves are placed per frame in `render`."""
        self.preset = preset
        self.scene.bg_color = np.array([*preset.background, 1.0])
        self.scene.ambient_light = np.asarray(preset.ambient, np.float64)
        if self._floor is not None:
            self.scene.remove_node(self._floor)
            self._floor = None
        if self._floor_geometry is not None:
            centre, radius = self._floor_geometry
            v, f, uv = floor_disc(centre, radius)
            # The texture is the shadow only (white = unshadowed); the floor colour is its factor.
            shade = _srgb8(1.0 - preset.shadow * self._occlusion)
            texture = np.repeat(shade[..., None], 3, axis=2)
            surface = Surface(v, f, base_color=tuple(preset.floor), roughness=0.95, uv=uv, texture=texture)
            self._floor = self.scene.add(_pyrender_mesh(surface))

    def render(self, renderer: OffscreenRenderer, camera: PinholeCamera, yaw: float, shadow_maps: bool = False) -> np.ndarray:
        """One frame (height, width, 3) uint8 seen by `camera`, the lights turned by `yaw` radians."""
        import pyrender

        for node, light in zip(self._lights, rig_lights(self.preset, yaw)):
            node.light.color = np.asarray(light.color, np.float64)
            node.light.intensity = float(light.intensity)
            self.scene.set_pose(node, _light_pose(light.direction))
        # Clip planes bracket the look's bounding sphere so depth precision is not wasted.
        lo, hi = self._bounds
        centre_distance = float(np.linalg.norm((lo + hi) / 2.0 - camera.position))
        reach = float(np.linalg.norm(hi - lo)) / 2.0 + (self._floor_geometry[1] if self._floor_geometry else 0.0)
        cam = self._camera.camera
        cam.fx = cam.fy = camera.focal_px
        cam.cx, cam.cy = camera.width / 2.0, camera.height / 2.0
        cam.znear = max(0.02, centre_distance - reach - 0.1)
        cam.zfar = centre_distance + reach + 0.5
        self.scene.set_pose(self._camera, np.asarray(camera.pose, np.float64))
        flags = pyrender.RenderFlags.SHADOWS_DIRECTIONAL if shadow_maps else pyrender.RenderFlags.NONE
        color, _ = renderer.render_scene(self.scene, flags, depth=False)
        return np.ascontiguousarray(color[..., :3])
