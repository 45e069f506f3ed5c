"""Synthetic capture photos for the capture-check tests: Anny bodies rendered like a phone photo.

No real photo shows a single shopper standing full length (see ../shared/data/README.md), so the
positive cases are renders: the project's Anny body model in a relaxed standing pose
(`fitroom.samples`), skin-coloured with dark trunks, on a light wall and floor, drawn by the
process-wide pyrender/EGL renderer (`streaming.render`, which keeps one GL context per size:
pyrender tears down the shared EGL display when a renderer is deleted, so tests do not make their
own). 1080x1920 portrait, the camera at chest height on the +Z side with a 26 mm-equivalent lens.

Renders are made once per session (about 0.2-0.5 s each on Mesa's llvmpipe) and kept in memory;
none is ever written to disk.
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
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return vertices @ rot.T


def _floor(camera_z: float):
    from streaming.render import Surface

    v = np.array([[-5.0, 0.0, -2.0], [5.0, 0.0, -2.0], [5.0, 0.0, camera_z + 1.0], [-5.0, 0.0, camera_z + 1.0]])
    return Surface(
        vertices=v,
        faces=np.array([[0, 2, 1], [0, 3, 2]]),
        base_color=FLOOR_LINEAR,
        normals=np.tile([0.0, 1.0, 0.0], (4, 1)),
        roughness=0.9,
    )


class Studio:
    """Renders posed bodies as full-length phone photos.

    Parameters
    ----------
    model : engine.body_model.BodyModel (NumPy)
    people : list of (vertices (V, 3) float64 metres, standing on y = 0 and facing +Z,
        colours (V, 3) linear RGB)
    """

    def __init__(self, model, people):
        from fitroom.samples import photo_camera

        self.faces = np.asarray(model.faces)
        self.people = people
        # One camera for every photo, framed on the first body facing front at 80 % of the height.
        self.camera = photo_camera(people[0][0], PHOTO_W, PHOTO_H, fill=0.8)

    @functools.lru_cache(maxsize=None)  # noqa: B019 - the studio lives for the whole session
    def photo(self, yaw_deg: float = 0.0, who: tuple = (0,), spacing_m: float = 0.0) -> np.ndarray:
        """RGB (1920, 1080, 3) uint8 of the bodies `who`, each turned by `yaw_deg`, side by side
        `spacing_m` apart along X (centred on the camera axis). Read-only: shared between tests."""
        from streaming.render import Surface, shared_renderer

        surfaces = []
        for k, i in enumerate(who):
            v, colors = self.people[i]
            v = _yaw(v, yaw_deg)
            v[:, 0] += (k - (len(who) - 1) / 2.0) * spacing_m
            surfaces.append(Surface(vertices=v, faces=self.faces, colors=colors, roughness=0.7))
        surfaces.append(_floor(float(self.camera.position[2])))
        rgb = shared_renderer(PHOTO_W, PHOTO_H).render(surfaces, self.camera, background=WALL_SRGB, ambient=0.4)
        rgb.setflags(write=False)
        return rgb


@pytest.fixture(scope="session")
def studio(body_model_cpu):
    """Two shoppers (a woman of 166 cm, a man of 181 cm) ready to be photographed."""
    from fitroom.samples import SKIN_TONES, clothing_colors, natural_standing_pose, placed_body, sample_body

    model = body_model_cpu
    people = []
    for seed, sex, height, skin, cloth in ((5, "female", 166.0, 1, (30, 46, 84)), (9, "male", 181.0, 3, (38, 38, 44))):
        rng = np.random.default_rng(seed)
        shape = sample_body(model, rng, sex=sex, height_cm=height)
        pose = natural_standing_pose(model, rng=rng)
        v = placed_body(model, shape, pose, "front")
        colors = clothing_colors(model, shape, SKIN_TONES[skin], cloth, top=sex == "female")
        people.append((v, colors))
    return Studio(model, people)
