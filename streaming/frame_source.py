"""Frames of a live try-on, rendered on demand.

A `FrameSource` holds a look (body, garment and its material, fit-map colours), an orbit camera,
a light preset and the fit-map switch, and renders a frame only when one of them changed since
the last rendered frame; otherwise `frame()` returns the last frame again (the same read-only
array), so a video track can ask at its frame rate and pay for rendering only after a change.

Thread-safe: one lock serialises `frame()` and the setters, so an event loop may mutate the state
while an executor thread renders. Each source has its own GL context (about 1.5 s to create and
compile shaders on the CPU, on the first frame) and keeps its meshes and textures uploaded.

Defaults follow the GL device: on Mesa's llvmpipe (no GPU) no multisampling and no shadow maps
(the floor's contact shadow is baked, see `streaming.look_scene`), which keeps a 1280x720 frame
at about 31 ms p50 and 48-60 ms p95 on 2 busy cores (shadow maps would at least double it, even
with a small shadow texture and the key light alone casting: docs/streaming.md, "Shadows"); on a
GPU 4x multisampling and shadow maps.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time

import numpy as np

from avatar.glb_export import SKIN_COLOUR
from streaming.lighting import LightPreset, light_preset
from streaming.look_scene import LookScene
from streaming.orbit_camera import OrbitCamera
from streaming.render import OffscreenRenderer, Surface

__all__ = ["FrameSource", "FrameStats", "DEFAULT_FABRIC_COLOUR"]

DEFAULT_FABRIC_COLOUR = (0.18, 0.26, 0.50)  # linear RGB: a mid denim blue, readable on every preset


@dataclasses.dataclass(frozen=True)
class FrameStats:
    """rendered, reused : frames rendered and frames served again unchanged. render_ms : the last
    real render's wall time, ms. version : the state's version (bumped by every change)."""

    rendered: int = 0
    reused: int = 0
    render_ms: float = 0.0
    version: int = 0


class FrameSource:
    """On-demand frames of a look (see the module docstring).

    Parameters
    ----------
    width, height : int
        Frame size in pixels.
    light : str
        The initial light preset (`streaming.lighting.LIGHT_NAMES`).
    samples : int or None
        Multisampling per pixel (0 or 4); None: 0 on a software GL device, 4 on a GPU.
    shadow_maps : bool or None
        Directional shadow maps; None: only on a GPU.

    Attributes
    ----------
    camera : OrbitCamera
        The camera, mutable in place (`orbit`, `zoom`, `pan`); the next frame sees the change.
    """

    def __init__(self, width: int = 1280, height: int = 720, *, light: str = "studio",
                 samples: int | None = None, shadow_maps: bool | None = None):
        self.width, self.height = int(width), int(height)
        self.camera = OrbitCamera()
        self._lock = threading.RLock()
        self._preset: LightPreset = light_preset(light)
        self._fitmap = False
        self._version = 0
        self._pending_look = None
        self._renderer = OffscreenRenderer(self.width, self.height)
        software = "llvmpipe" in self._renderer.gl_renderer.lower() or "softpipe" in self._renderer.gl_renderer.lower()
        # The framebuffer is built on the first frame, so the count can still be chosen here.
        self._renderer.samples = (0 if software else 4) if samples is None else int(samples)
        self.shadow_maps = (not software) if shadow_maps is None else bool(shadow_maps)
        self._scene = LookScene()
        self._scene.set_light(self._preset)
        self._key = None  # (version, camera key) of the cached frame
        self._frame: np.ndarray | None = None
        self._stats = FrameStats()

    # -- state -------------------------------------------------------------------------------

    def set_look(self, body_vertices, body_faces, garment_vertices, garment_faces, *, garment_colors=None,
                 fitmap_colors=None, uv=None, texture=None, normal_map=None, roughness=None,
                 frame_camera: bool | None = None) -> None:
        """Sets the look to show.

        Parameters
        ----------
        body_vertices : (V, 3) float, body_faces : (F, 3) int
            The avatar, metres, +Y up, facing +Z.
        garment_vertices : (N, 3) float, garment_faces : (M, 3) int
            The draped garment.
        garment_colors : (3,) or (N, 3) float, optional
            Linear RGB fabric colour, one or per vertex (a colourway); default `DEFAULT_FABRIC_COLOUR`
            (white with a texture).
        fitmap_colors : (N, 3) float, optional
            Linear RGB fit-map colours (`streaming.fitmap.strain_colors`), shown by `set_fitmap(True)`.
        uv : (N, 2) float, optional
            Texture coordinates (origin bottom-left) for the maps below.
        texture : (h, w, 3 or 4) uint8 sRGB base colour image, optional.
        normal_map : (h, w, 3) uint8 tangent-space normal map, optional (tangents: see `Surface`).
        roughness : float in [0, 1] or (h, w) uint8 roughness map, optional (default 0.85).
        frame_camera : aim the camera at the look; default only for the first look.
        """
        gv = np.asarray(garment_vertices, np.float64)
        if gv.ndim != 2 or gv.shape[1] != 3:
            raise ValueError(f"garment vertices must be (N, 3), not {gv.shape}")
        colors, base = None, DEFAULT_FABRIC_COLOUR if texture is None else (1.0, 1.0, 1.0)
        if garment_colors is not None:
            c = np.asarray(garment_colors, np.float64)
            if c.shape == (3,):
                base = tuple(c)
            elif c.shape == gv.shape:
                colors, base = c, (1.0, 1.0, 1.0)
            else:
                raise ValueError(f"garment colours must be (3,) or {gv.shape}, not {c.shape}")
        if fitmap_colors is not None and np.shape(fitmap_colors) != gv.shape:
            raise ValueError(f"fit-map colours must be {gv.shape}, not {np.shape(fitmap_colors)}")
        rough_map = None
        rough = 0.85
        if roughness is not None and np.ndim(roughness) == 0:
            rough = float(roughness)
        elif roughness is not None:
            rough, rough_map = 1.0, np.asarray(roughness, np.uint8)
        body = Surface(np.asarray(body_vertices, np.float64), np.asarray(body_faces), base_color=tuple(SKIN_COLOUR[:3]),
                       roughness=0.6)
        garment = Surface(gv, np.asarray(garment_faces), colors=colors, base_color=base, roughness=rough, uv=uv,
                          texture=texture, normal_map=normal_map, roughness_map=rough_map, double_sided=True)
        fitmap = None
        if fitmap_colors is not None:
            # The overlay keeps the fabric's normal map so folds still read under the colours.
            fitmap = dataclasses.replace(garment, colors=np.asarray(fitmap_colors, np.float64), base_color=(1.0, 1.0, 1.0),
                                         texture=None, roughness=0.9, roughness_map=None)
        with self._lock:
            first = not self._scene.has_look and self._pending_look is None
            # Built in `frame()`, the thread that owns the GL work.
            self._pending_look = (body, garment, fitmap)
            if frame_camera or (frame_camera is None and first):
                self.camera.frame(np.concatenate([body.vertices, gv]), self.width, self.height)
            self._version += 1

    def set_light(self, name: str) -> None:
        """Switches to the light preset `name` (a `FitroomError` `bad_light` for an unknown one)."""
        preset = light_preset(name)
        with self._lock:
            if preset is not self._preset:
                self._preset = preset
                self._version += 1

    def set_fitmap(self, on: bool) -> None:
        """Shows the fit-map colours on the garment (when the look has them) or its material."""
        with self._lock:
            if bool(on) != self._fitmap:
                self._fitmap = bool(on)
                self._version += 1

    @property
    def light(self) -> str:
        return self._preset.name

    @property
    def fitmap(self) -> bool:
        return self._fitmap

    @property
    def stats(self) -> FrameStats:
        return self._stats

    # -- frames ------------------------------------------------------------------------------

    def frame(self) -> np.ndarray:
        """The current picture (height, width, 3) uint8 sRGB, read-only; rendered only when the
        camera, look, light or fit map changed since the last rendered frame."""
        with self._lock:
            camera = copy.copy(self.camera)  # one consistent snapshot even if mutated meanwhile
            key = (self._version, camera.key())
            if key == self._key and self._frame is not None:
                self._stats = dataclasses.replace(self._stats, reused=self._stats.reused + 1)
                return self._frame
            start = time.perf_counter()
            if self._pending_look is not None:
                self._scene.set_surfaces(*self._pending_look)
                self._pending_look = None
                self._scene.set_light(self._preset)  # the floor follows the new look
            elif self._scene.preset is not self._preset:
                self._scene.set_light(self._preset)
            self._scene.show_fitmap(self._fitmap)
            if self._scene.has_look:
                image = self._scene.render(self._renderer, camera.camera(self.width, self.height), camera.yaw, self.shadow_maps)
            else:  # nothing to show yet: the background alone, without the GL round trip
                srgb = np.round(np.asarray(self._preset.background) * 255).astype(np.uint8)
                image = np.broadcast_to(srgb, (self.height, self.width, 3)).copy()
            image.setflags(write=False)
            self._frame, self._key = image, key
            self._stats = FrameStats(self._stats.rendered + 1, self._stats.reused,
                                     (time.perf_counter() - start) * 1000.0, self._version)
            return image

    def close(self) -> None:
        """Releases the GL context (idempotent)."""
        self._renderer.close()

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
