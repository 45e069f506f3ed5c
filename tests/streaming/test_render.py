"""Offscreen rendering: the camera's projection lands on the rendered pixels; images are real."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.render import OffscreenRenderer, PinholeCamera, Surface, look_at_pose, render_mesh, vertex_normals


def _icosphere(radius: float, subdivisions: int = 3):
    """Unit icosahedron subdivided `subdivisions` times, scaled to `radius` (vertices (n, 3), faces (m, 3))."""
    t = (1.0 + 5**0.5) / 2.0
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
         [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
         [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5],
         [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    verts = [np.array(p, float) / np.linalg.norm(p) for p in v]
    faces = f
    for _ in range(subdivisions):
        cache, new = {}, []

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = new
    return np.array(verts) * radius, np.array(faces)


@pytest.fixture(scope="module")
def renderer():
    with OffscreenRenderer(1080, 1920) as r:
        yield r


def test_look_at_pose_is_a_rigid_transform_aimed_at_the_target():
    pose = look_at_pose([0.4, 1.3, 2.5], [0.0, 0.9, 0.0])
    R = pose[:3, :3]
    assert np.allclose(R.T @ R, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0)
    ahead = -R[:, 2]
    to_target = np.array([0.0, 0.9, 0.0]) - [0.4, 1.3, 2.5]
    assert np.allclose(ahead, to_target / np.linalg.norm(to_target))
    assert R[1, 1] > 0 and abs(R[1, 0]) < 1e-12  # camera x stays horizontal, y points up


def test_project_matches_the_pinhole_formula():
    cam = PinholeCamera(1080, 1920, 1300.0).look_at([0.0, 1.0, 3.0], [0.0, 1.0, 0.0])
    uv = cam.project([[0.0, 1.0, 0.0], [0.3, 1.5, 0.0], [0.0, 1.0, 4.0]])
    assert np.allclose(uv[0], [540.0, 960.0])
    assert np.allclose(uv[1], [540.0 + 1300.0 * 0.3 / 3.0, 960.0 - 1300.0 * 0.5 / 3.0])
    assert np.isnan(uv[2]).all()  # behind the camera


@pytest.mark.parametrize(
    "eye, point",
    [
        ([0.0, 1.0, 3.0], [0.0, 1.0, 0.0]),
        ([0.3, 1.2, 2.5], [0.5, 1.6, -0.3]),
        ([0.3, 1.2, 2.5], [-0.4, 0.1, 0.4]),
        ([2.0, 0.5, 1.0], [0.6, 1.7, 0.2]),
    ],
)
def test_sphere_renders_where_project_puts_it(renderer, eye, point):
    cam = PinholeCamera(1080, 1920, 1320.0).look_at(eye, [0.0, 0.9, 0.0])
    v, f = _icosphere(0.03)
    rgb, depth = renderer.render_depth([Surface(v + point, f, base_color=(0.1, 0.2, 0.8))], cam, background=(1, 1, 1))
    rows, cols = np.nonzero(depth > 0)
    assert len(rows) > 100
    # Pixel (row i, column j) covers [j, j + 1) x [i, i + 1): its centre is (j + 0.5, i + 0.5).
    centroid = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
    assert np.linalg.norm(centroid - cam.project([point])[0]) < 1.0
    # The coloured pixels are the same ones.
    blue = (rgb[..., 2].astype(int) - rgb[..., 0]) > 60
    assert np.abs(blue.sum() - len(rows)) < 0.1 * len(rows)
    # Depth is metric along the viewing axis.
    assert depth[depth > 0].min() == pytest.approx(-cam.world_to_camera([point])[0, 2] - 0.03, abs=3e-3)


def test_render_mesh_image_shape_dtype_and_content():
    cam = PinholeCamera(640, 480, 500.0).look_at([0.0, 0.0, 2.0], [0.0, 0.0, 0.0])
    v, f = _icosphere(0.4)
    rgb = render_mesh(v, f, cam, base_color=(0.8, 0.3, 0.2), background=(1.0, 1.0, 1.0))
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8 and rgb.flags["C_CONTIGUOUS"]
    assert (rgb[0, 0] == 255).all()  # background corner
    centre = rgb[240, 320].astype(int)
    assert centre[0] > centre[1] + 30  # lit, reddish sphere: not blank, not white
    assert 0.08 < (np.abs(rgb.astype(int) - 255).sum(2) > 30).mean() < 0.14  # pi (100 px)^2 of the image


def test_vertex_colours_show(renderer):
    cam = PinholeCamera(1080, 1920, 1300.0).look_at([0.0, 1.0, 2.0], [0.0, 1.0, 0.0])
    v, f = _icosphere(0.3)
    colors = np.where(v[:, :1] < 0, [[0.0, 0.9, 0.0]], [[0.9, 0.0, 0.0]])
    rgb = renderer.render([Surface(v + [0.0, 1.0, 0.0], f, colors=colors)], cam)
    left, right = rgb[960, 540 - 150].astype(int), rgb[960, 540 + 150].astype(int)
    assert left[1] > left[0] + 50 and right[0] > right[1] + 50


def test_vertex_normals_point_outward():
    v, f = _icosphere(1.0, 2)
    n = vertex_normals(v, f)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    assert (np.sum(n * v, 1) > 0.99).all()


def test_wrong_camera_size_and_closed_renderer_are_refused():
    r = OffscreenRenderer(64, 48)
    v, f = _icosphere(0.1, 1)
    with pytest.raises(ValueError):
        r.render([Surface(v, f)], PinholeCamera(32, 32, 30.0).look_at([0, 0, 1], [0, 0, 0]))
    r.close()
    r.close()
    with pytest.raises(RuntimeError):
        r.render([Surface(v, f)], PinholeCamera(64, 48, 30.0).look_at([0, 0, 1], [0, 0, 0]))


def test_renderers_survive_each_other_and_work_from_other_threads(renderer):
    from concurrent.futures import ThreadPoolExecutor

    cam = PinholeCamera(1080, 1920, 1300.0).look_at([0.0, 1.0, 2.0], [0.0, 1.0, 0.0])
    v, f = _icosphere(0.2, 2)
    scene = [Surface(v + [0.0, 1.0, 0.0], f)]
    first = renderer.render(scene, cam)
    other = OffscreenRenderer(32, 32)
    other.close()  # must not tear down the display the first renderer uses
    with ThreadPoolExecutor(2) as pool:
        frames = list(pool.map(lambda _: renderer.render(scene, cam), range(4)))
    for frame in frames:
        assert np.array_equal(frame, first)
