"""Synthetic capture photos for the capture tests: Anny bodies rendered like a phone photo.

No real photo shows a single shopper standing full length (see ../shared/data/README.md), so the
positive cases are renders: the project's Anny body model in a relaxed standing pose
(`fitroom.samples`), skin-coloured with dark trunks, on a light wall and floor, drawn by the
process-wide pyrender/EGL renderer (`streaming.render`, which keeps one GL context per size:
pyrender tears down the shared EGL display when a renderer is deleted, so tests make none of their
own). 1080x1920 portrait, the camera at chest height on the +Z side with a 26 mm-equivalent lens.

Renders are made once per session (0.2-0.5 s each on Mesa's llvmpipe), kept in memory read-only
and never written to disk.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

PHOTO_W, PHOTO_H = 1080, 1920
WALL_SRGB = (0.93, 0.92, 0.90)
FLOOR_LINEAR = (0.62, 0.58, 0.54)


def _yaw(vertices: np.ndarray, deg: float) -> np.ndarray:
    """Vertices (n, 3) turned by `deg` degrees about +Y (0: facing +Z, 90: facing +X)."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return vertices @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]).T


def _floor(camera_z: float):
    from streaming.render import Surface

    v = np.array([[-6.0, 0.0, -2.0], [6.0, 0.0, -2.0], [6.0, 0.0, camera_z + 1.0], [-6.0, 0.0, camera_z + 1.0]])
    return Surface(
        vertices=v,
        faces=np.array([[0, 2, 1], [0, 3, 2]]),
        base_color=FLOOR_LINEAR,
        normals=np.tile([0.0, 1.0, 0.0], (4, 1)),
        roughness=0.9,
    )


class Studio:
    """Photographs posed bodies full length, as a phone on a tripod would.

    Parameters
    ----------
    model : engine.body_model.BodyModel (NumPy backend), for its faces.
    people : list of (vertices (V, 3) float64 metres standing on y = 0 and facing +Z,
        colours (V, 3) linear RGB in [0, 1]).

    A scene is a tuple of placements (body index, x, z): each body turned by the photo's yaw, then
    moved by (x, 0, z) metres. The camera, on the +Z side, frames the tallest body standing at the
    origin facing it at `fill` of the image height.
    """

    def __init__(self, model, people):
        self.faces = np.asarray(model.faces)
        self.people = people

    @functools.lru_cache(maxsize=None)  # noqa: B019 - one studio per session
    def camera(self, fill: float):
        from fitroom.samples import photo_camera

        return photo_camera(np.concatenate([v for v, _ in self.people]), PHOTO_W, PHOTO_H, fill=fill)

    def _surfaces(self, scene, yaw_deg, floor, fill):
        from streaming.render import Surface

        surfaces = []
        for i, x, z in scene:
            v, colors = self.people[i]
            v = _yaw(v, yaw_deg) + np.array([x, 0.0, z])
            surfaces.append(Surface(vertices=v, faces=self.faces, colors=colors, roughness=0.7))
        if floor:
            surfaces.append(_floor(float(self.camera(fill).position[2])))
        return surfaces

    @functools.lru_cache(maxsize=None)  # noqa: B019
    def photo(self, yaw_deg: float = 0.0, scene: tuple = ((0, 0.0, 0.0),), fill: float = 0.8) -> np.ndarray:
        """RGB (1920, 1080, 3) uint8, read-only: the `scene`'s bodies turned by `yaw_deg` degrees
        (0 facing the camera, 90 its right side to the camera)."""
        from streaming.render import shared_renderer

        surfaces = self._surfaces(scene, yaw_deg, True, fill)
        rgb = shared_renderer(PHOTO_W, PHOTO_H).render(surfaces, self.camera(fill), background=WALL_SRGB, ambient=0.4)
        rgb.setflags(write=False)
        return rgb

    @functools.lru_cache(maxsize=None)  # noqa: B019
    def silhouette(self, yaw_deg: float = 0.0, scene: tuple = ((0, 0.0, 0.0),), fill: float = 0.8) -> np.ndarray:
        """(1920, 1080) bool, read-only: the pixels the bodies cover in the same `photo`."""
        from streaming.render import shared_renderer

        surfaces = self._surfaces(scene, yaw_deg, False, fill)
        _, depth = shared_renderer(PHOTO_W, PHOTO_H).render_depth(surfaces, self.camera(fill))
        mask = depth > 0
        mask.setflags(write=False)
        return mask


@pytest.fixture(scope="session")
def studio(body_model_cpu):
    """Two shoppers, a woman of 166 cm (body 0) and a man of 181 cm (body 1), ready for photos."""
    from fitroom.samples import SKIN_TONES, clothing_colors, natural_standing_pose, placed_body, sample_body

    try:
        from streaming.render import shared_renderer

        shared_renderer(PHOTO_W, PHOTO_H)
    except Exception as e:  # no EGL (e.g. a CI image without Mesa): the render tests cannot run
        pytest.skip(f"no offscreen OpenGL for pyrender: {type(e).__name__}: {e}")
    model = body_model_cpu
    people = []
    for seed, sex, height, skin, cloth in ((5, "female", 166.0, 1, (30, 46, 84)), (9, "male", 181.0, 3, (38, 38, 44))):
        rng = np.random.default_rng(seed)
        shape = sample_body(model, rng, sex=sex, height_cm=height)
        pose = natural_standing_pose(model, rng=rng)
        colors = clothing_colors(model, shape, SKIN_TONES[skin], cloth, top=sex == "female")
        people.append((placed_body(model, shape, pose, "front"), colors))
    return Studio(model, people)
