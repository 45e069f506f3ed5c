import numpy as np

from engine.cloth_scenes import square_cloth
from engine.self_collision import repel, self_intersections, vertex_triangle_pairs


def _two_sheets(gap: float, tilt: float = 0.0):
    a, f = square_cloth(6, 0.2, height=0.0)
    b = a.copy()
    b[:, 1] = gap + tilt * b[:, 0]
    return np.concatenate([a, b]), np.concatenate([f, f + len(a)])


def test_counts_crossing_sheets_and_not_parallel_ones():
    v, f = _two_sheets(0.01)
    assert self_intersections(v, f) == 0
    v, f = _two_sheets(0.0, tilt=0.5)  # the second sheet cuts through the first along x = 0
    assert self_intersections(v, f) > 0
    flat, ff = square_cloth(10, 1.0)
    assert self_intersections(flat, ff) == 0  # coplanar neighbours touch, they do not cross


def test_repel_restores_the_thickness_on_the_starting_side():
    start, f = _two_sheets(0.01)
    now = start.copy()
    now[36:, 1] = -0.001  # the upper sheet has fallen just through the lower one
    pairs = vertex_triangle_pairs(now, f, 0.02)
    out = repel(now, start, f, pairs, thickness=0.002, passes=20)
    gap = out[36:, 1].mean() - out[:36, 1].mean()
    assert gap > 0.0015  # back above, about the thickness apart
    assert self_intersections(out, f) == 0
