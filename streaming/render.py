"""Offscreen rendering of triangle meshes with pyrender (EGL), and the pinhole camera it uses.

Camera conventions (the same as `engine.body_fit`): `PinholeCamera.pose` is camera-to-world in the
OpenGL convention (the camera looks along its -Z axis, +Y up, +X right). Pixel coordinates are
continuous: x to the right, y down, (0, 0) the top-left corner of the image, so the centre of the
pixel in row i and column j is (j + 0.5, i + 0.5) and the principal point is (width / 2, height / 2):

    u = width / 2 + focal_px * x_c / (-z_c),    v = height / 2 - focal_px * y_c / (-z_c)

for a point (x_c, y_c, z_c) in the camera frame. The renderer rasterises with exactly this
projection, so `PinholeCamera.project` lands on the rendered pixels (tested: a small sphere's
pixel centroid is within a pixel of its projected centre).

A process's first pyrender context takes about 0.6 s and its first frame compiles shaders (about
0.8 s more), so `OffscreenRenderer` keeps one context for many frames. On a machine without a
GPU, EGL runs on Mesa's llvmpipe: a frame of a 27k-triangle body and a floor takes about 0.17 s at
1080x1920 and 0.08 s at 1280x720 on 2 AMD EPYC cores (nearly all of it rasterising, 4x MSAA).

Colours: mesh colours (`base_color`, vertex `colors`) are linear RGB, as glTF's base colour, and
are lit then gamma-encoded by pyrender's shader; `background` is the displayed (sRGB) colour.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import warnings
from typing import Sequence

# pyrender picks its GL platform at import time; EGL is the one that works headless here.
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np  # noqa: E402

from engine.mesh_queries import vertex_normals as mesh_vertex_normals  # noqa: E402

__all__ = [
    "PinholeCamera",
    "DirectionalLight",
    "Surface",
    "OffscreenRenderer",
    "DEFAULT_LIGHTS",
    "look_at_pose",
    "vertex_normals",
    "render_mesh",
    "shared_renderer",
]


def look_at_pose(eye, target, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Camera-to-world pose (4, 4) of a camera at `eye` (3,) looking at `target` (3,), metres.

    The camera's -Z axis points at the target and its +Y axis is as close to `up` as possible.
    """
    eye = np.asarray(eye, np.float64)
    forward = np.asarray(target, np.float64) - eye
    norm = np.linalg.norm(forward)
    if norm < 1e-12:
        raise ValueError("look_at: eye and target coincide")
    back = -forward / norm
    right = np.cross(np.asarray(up, np.float64), back)
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to up")
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, np.cross(back, right), back, eye
    return pose


@dataclasses.dataclass(frozen=True)
class PinholeCamera:
    """A pinhole camera with square pixels and the principal point at the image centre.

    width, height : image size in pixels.
    focal_px : focal length in pixels (vertical field of view 2 atan(height / (2 focal_px))).
    pose : (4, 4) camera-to-world, OpenGL convention (looks along -Z, +Y up).
    """

    width: int
    height: int
    focal_px: float
    pose: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(4))

    def look_at(self, eye, target, up=(0.0, 1.0, 0.0)) -> "PinholeCamera":
        """The same camera moved to `eye` (3,) and aimed at `target` (3,), metres."""
        return dataclasses.replace(self, pose=look_at_pose(eye, target, up))

    @property
    def vertical_fov_deg(self) -> float:
        return float(np.degrees(2.0 * np.arctan(self.height / (2.0 * self.focal_px))))

    @property
    def position(self) -> np.ndarray:
        """Camera centre (3,) in the world, metres."""
        return np.asarray(self.pose, np.float64)[:3, 3].copy()

    def world_to_camera(self, points) -> np.ndarray:
        """World points (n, 3) -> camera-frame points (n, 3), metres (in front of the camera: z < 0)."""
        pose = np.asarray(self.pose, np.float64)
        p = np.asarray(points, np.float64).reshape(-1, 3)
        return (p - pose[:3, 3]) @ pose[:3, :3]

    def project(self, points) -> np.ndarray:
        """World points (n, 3) in metres -> pixel coordinates (n, 2) float64 (x right, y down).

        Points behind the camera (z_c >= 0) give NaN.
        """
        pc = self.world_to_camera(points)
        depth = -pc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(depth > 0, 1.0 / depth, np.nan)
        u = self.width / 2.0 + self.focal_px * pc[:, 0] * inv
        v = self.height / 2.0 - self.focal_px * pc[:, 1] * inv
        return np.stack([u, v], 1)


@dataclasses.dataclass(frozen=True)
class DirectionalLight:
    """A light from infinitely far away.

    direction : (3,) world direction the light travels in (from the light towards the scene).
    color : (3,) linear RGB in [0, 1]. intensity : pyrender's units (lux-like; about 1-5 looks right).
    """

    direction: tuple
    intensity: float = 3.0
    color: tuple = (1.0, 1.0, 1.0)


# A soft three-point setup for a body facing +Z in front of a camera on the +Z side: a key light from
# the camera's upper left, a weaker fill from its right and a rim from behind the body, so the
# body's outline stays readable against a light background.
DEFAULT_LIGHTS = (
    DirectionalLight(direction=(0.35, -0.45, -1.0), intensity=2.6),
    DirectionalLight(direction=(-0.6, -0.2, -1.0), intensity=1.3),
    DirectionalLight(direction=(0.0, -0.5, 1.0), intensity=1.2),
)


@dataclasses.dataclass(frozen=True)
class Surface:
    """One mesh to draw.

    vertices : (n, 3) float, world metres. faces : (m, 3) int.
    colors : (n, 3) float linear RGB in [0, 1] per vertex, or None for `base_color` everywhere.
    base_color : (3,) linear RGB in [0, 1], multiplied with the vertex colours when both are given.
    normals : (n, 3) unit vertex normals, or None to compute area-weighted ones.
    roughness : PBR roughness in [0, 1].
    uv : (n, 2) float texture coordinates, origin at the image's bottom-left (OpenGL's), or None.
    texture : (h, w, 3 or 4) uint8 sRGB base colour image, multiplied with the colours above; drawn
        only with `uv`.
    normal_map : (h, w, 3) uint8 tangent-space normal map (glTF's: +Y up in the image), or None;
        drawn only with `uv`. Without tangents pyrender's shader builds the tangent frame per pixel
        from screen-space derivatives of the position and `uv`, so none are computed here.
    roughness_map : (h, w) uint8 roughness (255 = 1), multiplied with `roughness`, or None; only with `uv`.
    double_sided : draw back faces too (a garment seen through its neck or sleeve openings).
    """

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None
    base_color: tuple = (1.0, 1.0, 1.0)
    normals: np.ndarray | None = None
    roughness: float = 0.8
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None
    normal_map: np.ndarray | None = None
    roughness_map: np.ndarray | None = None
    double_sided: bool = False


def vertex_normals(vertices, faces) -> np.ndarray:
    """Area-weighted unit vertex normals (n, 3) float32 of a triangle mesh (counter-clockwise faces)."""
    n = mesh_vertex_normals(np.asarray(vertices, np.float64), np.asarray(faces, np.int64), fallback=(0.0, 1.0, 0.0))
    return n.astype(np.float32)


class OffscreenRenderer:
    """An offscreen GL context of a fixed size, reused for many frames.

    Use as a context manager or call `close()`; the context is released then. Thread-safe: frames
    are rendered one at a time (a GL context is current in one thread at a time).

    Parameters
    ----------
    width, height : int
        Image size in pixels.
    samples : int
        Multisampling (anti-aliasing) samples per pixel: pyrender's 4, or 0 for none, which halves
        the frame time on Mesa's llvmpipe (edges then show stair steps). May be changed before the
        first frame, when pyrender builds its framebuffer.

    Attributes
    ----------
    gl_renderer : str
        The GL device, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" without a GPU.
    """

    def __init__(self, width: int, height: int, samples: int = 4):
        import pyrender

        self.width, self.height = int(width), int(height)
        self.samples = int(samples)
        _install_samples_hook()
        self._lock = threading.Lock()
        self._renderer = pyrender.OffscreenRenderer(self.width, self.height)
        from OpenGL.GL import GL_RENDERER, glGetString

        self.gl_renderer = (glGetString(GL_RENDERER) or b"").decode(errors="replace")
        _share_egl_display(self._renderer._platform)
        self._renderer._platform.make_uncurrent()

    def __enter__(self) -> "OffscreenRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Releases the GL context (idempotent)."""
        with self._lock:
            if self._renderer is not None:
                self._renderer.delete()
                self._renderer = None

    def render(
        self,
        surfaces: Sequence[Surface],
        camera: PinholeCamera,
        background=(1.0, 1.0, 1.0),
        lights: Sequence[DirectionalLight] = DEFAULT_LIGHTS,
        ambient: float = 0.35,
    ) -> np.ndarray:
        """Renders `surfaces` seen by `camera` -> RGB image (height, width, 3) uint8, C-contiguous."""
        return self._draw(surfaces, camera, background, lights, ambient)[0]

    def render_depth(
        self,
        surfaces: Sequence[Surface],
        camera: PinholeCamera,
        background=(1.0, 1.0, 1.0),
        lights: Sequence[DirectionalLight] = DEFAULT_LIGHTS,
        ambient: float = 0.35,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like `render`, also returning the depth image (height, width) float32 in metres along the
        viewing axis (0 where nothing was drawn)."""
        return self._draw(surfaces, camera, background, lights, ambient)

    def _draw(self, surfaces, camera, background, lights, ambient):
        import pyrender

        if (camera.width, camera.height) != (self.width, self.height):
            raise ValueError(
                f"camera is {camera.width}x{camera.height} but the renderer is {self.width}x{self.height}"
            )
        bg = np.concatenate([np.asarray(background, np.float64).reshape(3), [1.0]])
        scene = pyrender.Scene(bg_color=bg, ambient_light=np.full(3, float(ambient)))
        for s in surfaces:
            scene.add(_pyrender_mesh(s))
        # Clip planes bracket the scene so depth precision is not wasted.
        depths = [-camera.world_to_camera(np.asarray(s.vertices))[:, 2] for s in surfaces]
        far = max([float(d.max()) for d in depths if d.size] + [1.0]) * 1.5 + 1.0
        near = min(0.05, far * 1e-3)
        cam = pyrender.IntrinsicsCamera(
            fx=camera.focal_px, fy=camera.focal_px, cx=camera.width / 2.0, cy=camera.height / 2.0, znear=near, zfar=far
        )
        scene.add(cam, pose=np.asarray(camera.pose, np.float64))
        for light in lights:
            scene.add(
                pyrender.DirectionalLight(color=np.asarray(light.color, np.float64), intensity=float(light.intensity)),
                pose=_light_pose(light.direction),
            )
        color, depth = self.render_scene(scene)
        return np.ascontiguousarray(color[..., :3]), depth

    def render_scene(self, scene, flags: int = 0, depth: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Renders a prepared `pyrender.Scene` (with its camera) with pyrender `RenderFlags` ->
        colour (height, width, 3) uint8 and depth (height, width) float32 in metres, or None
        without `depth` (which saves reading and converting it: about 8 ms at 1280x720 on the CPU).

        A scene kept between frames keeps its meshes and textures on the GPU (uploaded once).
        """
        with self._lock:
            if self._renderer is None:
                raise RuntimeError("the renderer is closed")
            inner = self._renderer._renderer
            _samples.value = self.samples
            if not depth:
                inner._read_main_framebuffer = lambda scene, flags: (_read_colour(inner), None)
            try:
                with warnings.catch_warnings():
                    # PyOpenGL 3.1.0 reads the frame with numpy's deprecated tostring().
                    warnings.simplefilter("ignore", DeprecationWarning)
                    return self._renderer.render(scene, flags)
            finally:
                _samples.value = None
                inner.__dict__.pop("_read_main_framebuffer", None)


_samples = threading.local()


def _read_colour(inner) -> np.ndarray:
    """The colour half of pyrender's `Renderer._read_main_framebuffer`: resolve the multisampled
    framebuffer and read it -> (height, width, 3) uint8, top row first."""
    from OpenGL.GL import (GL_COLOR_BUFFER_BIT, GL_DRAW_FRAMEBUFFER, GL_LINEAR, GL_READ_FRAMEBUFFER, GL_RGB,
                           GL_UNSIGNED_BYTE, glBindFramebuffer, glBlitFramebuffer, glReadPixels)

    width, height = inner._main_fb_dims
    glBindFramebuffer(GL_READ_FRAMEBUFFER, inner._main_fb_ms)
    glBindFramebuffer(GL_DRAW_FRAMEBUFFER, inner._main_fb)
    glBlitFramebuffer(0, 0, width, height, 0, 0, width, height, GL_COLOR_BUFFER_BIT, GL_LINEAR)
    glBindFramebuffer(GL_READ_FRAMEBUFFER, inner._main_fb)
    buffer = glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE)
    return np.frombuffer(buffer, np.uint8).reshape(height, width, 3)[::-1]


def _install_samples_hook() -> None:
    """Lets each renderer choose its multisample count: pyrender hard-codes 4 when it builds its
    framebuffer (on the first frame), so its GL call takes the count of the renderer rendering in
    this thread (`_samples.value`), or pyrender's own elsewhere."""
    import pyrender.renderer as pr

    original = pr.glRenderbufferStorageMultisample
    if getattr(original, "_fitroom", False):
        return

    def storage(target, samples, *rest):
        chosen = getattr(_samples, "value", None)
        return original(target, samples if chosen is None else chosen, *rest)

    storage._fitroom = True
    pr.glRenderbufferStorageMultisample = storage


def _share_egl_display(platform) -> None:
    """Makes pyrender's EGL platform safe for several renderers and threads.

    pyrender 0.1.45 terminates the EGL display when one renderer is deleted, which kills every other
    context on that (per-device, shared) display, and it never releases a context, so a renderer
    built in one thread cannot render in another. Here deleting destroys only the renderer's own
    context, and each frame releases the context when done.
    """
    if type(platform).__name__ != "EGLPlatform":
        return
    from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglDestroyContext, eglMakeCurrent

    def make_uncurrent():
        if platform._egl_display is not None:
            eglMakeCurrent(platform._egl_display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)

    def delete_context():
        if platform._egl_display is not None and platform._egl_context is not None:
            make_uncurrent()
            eglDestroyContext(platform._egl_display, platform._egl_context)
        platform._egl_context = None
        platform._egl_display = None

    platform.make_uncurrent = make_uncurrent
    platform.delete_context = delete_context


def _light_pose(direction) -> np.ndarray:
    """A pose (4, 4) whose -Z axis is `direction` (pyrender's directional lights shine along -Z)."""
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    up = np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.99 else np.array([1.0, 0.0, 0.0])
    return look_at_pose(np.zeros(3), d, up)


def _pyrender_mesh(s: Surface):
    import pyrender

    v = np.ascontiguousarray(s.vertices, np.float32)
    f = np.ascontiguousarray(s.faces, np.uint32)
    normals = vertex_normals(v, f) if s.normals is None else np.ascontiguousarray(s.normals, np.float32)
    colors = None
    if s.colors is not None:
        c = np.asarray(s.colors, np.float32)
        colors = np.concatenate([c[:, :3], np.ones((len(c), 1), np.float32)], 1)
    texture = normal_texture = mr_texture = texcoords = None
    if s.uv is not None:
        texcoords = np.ascontiguousarray(s.uv, np.float32)
        if s.texture is not None:
            image = np.ascontiguousarray(s.texture, np.uint8)
            texture = pyrender.Texture(source=image, source_channels="RGBA"[: image.shape[2]])
        if s.normal_map is not None:
            normal_texture = pyrender.Texture(source=np.ascontiguousarray(s.normal_map[..., :3], np.uint8), source_channels="RGB")
        if s.roughness_map is not None:
            # glTF's metallic-roughness texture: roughness in G, metallic in B (0 here).
            rough = np.asarray(s.roughness_map, np.uint8)
            mr = np.stack([np.zeros_like(rough), rough, np.zeros_like(rough)], -1)
            mr_texture = pyrender.Texture(source=mr, source_channels="RGB")
    material = pyrender.MetallicRoughnessMaterial(
        baseColorFactor=np.concatenate([np.asarray(s.base_color, np.float64).reshape(3), [1.0]]),
        metallicFactor=0.0,
        roughnessFactor=float(s.roughness),
        baseColorTexture=texture,
        normalTexture=normal_texture,
        metallicRoughnessTexture=mr_texture,
        doubleSided=bool(s.double_sided),
    )
    primitive = pyrender.Primitive(
        positions=v, normals=normals, indices=f, color_0=colors, texcoord_0=texcoords, material=material,
        mode=pyrender.constants.GLTF.TRIANGLES,
    )
    return pyrender.Mesh([primitive])


_shared: dict = {}
_shared_lock = threading.Lock()


def render_mesh(
    vertices,
    faces,
    camera: PinholeCamera,
    colors=None,
    base_color=(0.8, 0.62, 0.52),
    background=(1.0, 1.0, 1.0),
    lights: Sequence[DirectionalLight] = DEFAULT_LIGHTS,
    ambient: float = 0.35,
) -> np.ndarray:
    """Renders one mesh -> RGB image (camera.height, camera.width, 3) uint8.

    Uses a process-wide renderer of the camera's size (created on first use, kept for later frames).

    Parameters
    ----------
    vertices : (n, 3) float, world metres.
    faces : (m, 3) int, counter-clockwise seen from outside.
    camera : PinholeCamera
    colors : (n, 3) float linear RGB in [0, 1] per vertex, or None for `base_color`.
    base_color : (3,) linear RGB in [0, 1].
    background : (3,) displayed RGB in [0, 1].
    lights : directional lights; `ambient` : ambient light level in [0, 1].
    """
    surface = Surface(vertices=np.asarray(vertices), faces=np.asarray(faces), colors=colors, base_color=tuple(base_color))
    return shared_renderer(camera.width, camera.height).render([surface], camera, background, lights, ambient)


def shared_renderer(width: int, height: int) -> OffscreenRenderer:
    """The process-wide renderer of this size (one GL context per size, created once)."""
    key = (int(width), int(height))
    with _shared_lock:
        r = _shared.get(key)
        if r is None or r._renderer is None:
            r = _shared[key] = OffscreenRenderer(*key)
        return r
