"""Plane sections of triangle meshes and 2D convex hulls: the geometry of a tape measure.

A girth is measured like a tape pulled around the body: the perimeter of the convex hull of one
closed loop of the body's cross-section (the tape bridges concavities such as the small of the
back or the cleft between the breasts). Loops are told apart by the mesh's connectivity, not by
distance, so an arm that touches the torso is still a loop of its own. Arrays in, arrays out.

The cuts run on NumPy or CuPy (`xp` from the inputs). Loop labelling and the hull are small
sequential or scatter-heavy steps on a few hundred segments and run on the host (NumPy); they
accept either kind of array.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.backend import array_namespace, to_numpy

__all__ = [
    "Sections",
    "plane_section",
    "horizontal_section",
    "horizontal_sections",
    "plane_sections",
    "connected_labels",
    "convex_hull_2d",
    "polygon_area",
    "polygon_perimeter",
    "hull_perimeter",
    "support_perimeters",
    "section_girth",
]


class Sections(NamedTuple):
    """Segments of one or more plane sections of a mesh, with their connectivity.

    segments : (s, 2, k) float
        End points of the segments, one segment per cut triangle; k = 2 for horizontal sections
        (the two horizontal axes), 3 for sections by an arbitrary plane. Each segment runs in the
        same rotational sense around its loop when the mesh is consistently wound.
    level : (s,) int
        Index of the plane (level) each segment belongs to.
    loop : (s,) int
        Connected piece of the section each segment belongs to: segments of one closed loop (or,
        where `face_ids` leaves holes in the mesh, one open chain) share a label, which is the
        smallest segment index in the piece. Host array.
    values : (s, 2, c) float or None
        Per-vertex values (`horizontal_sections`' `values`, e.g. a garment's rest positions)
        interpolated linearly along the cut edges to each segment's end points.
    """

    segments: object
    level: object
    loop: np.ndarray
    values: object = None


def _cut_triangles(tri, d, tri_ids=None):
    """Segments where the signed distances `d` (m, 3) of triangles `tri` (m, 3, k) change sign.

    A vertex with d >= 0 counts as above, so a plane through a vertex never yields a degenerate
    or doubled segment: every triangle with vertices on both sides has exactly two crossing edges,
    and each crossing edge has end distances of strictly different sign (no division by zero).

    Returns (s, 2, k) end points, the (s,) indices of the cut triangles and, when the triangles'
    vertex ids `tri_ids` (m, 3) are given, the (s, 2) mesh edges (as `lo * n + hi` keys, n above
    every vertex id) the two end points lie on; else None.
    """
    xp = array_namespace(tri, d)
    # Reductions over the axis of length 3 are spelled out: NumPy's axis reductions are slow there.
    above = d >= 0
    n_above = above[:, 0].astype(xp.int8) + above[:, 1] + above[:, 2]
    cut = xp.nonzero((n_above == 1) | (n_above == 2))[0]
    tri, d, above = tri[cut], d[cut], above[cut]
    lone_is_above = n_above[cut] == 1
    # The lone vertex is alone on its side of the plane; both crossing edges start there.
    lone = xp.where(above[:, 0] == lone_is_above, 0, xp.where(above[:, 1] == lone_is_above, 1, 2))
    j = (lone + 1) % 3
    k = (lone + 2) % 3
    rows = xp.arange(cut.shape[0])
    d_i, d_j, d_k = d[rows, lone], d[rows, j], d[rows, k]
    p_i, p_j, p_k = tri[rows, lone], tri[rows, j], tri[rows, k]
    a = p_i + (d_i / (d_i - d_j))[:, None] * (p_j - p_i)
    b = p_i + (d_i / (d_i - d_k))[:, None] * (p_k - p_i)
    flip = lone_is_above[:, None]
    segments = xp.stack([xp.where(flip, a, b), xp.where(flip, b, a)], axis=1)
    if tri_ids is None:
        return segments, cut, None
    ids = tri_ids[cut].astype(xp.int64)
    n = int(tri_ids.max()) + 1 if tri_ids.size else 1
    v_i, v_j, v_k = ids[rows, lone], ids[rows, j], ids[rows, k]
    edge_a = xp.minimum(v_i, v_j) * n + xp.maximum(v_i, v_j)
    edge_b = xp.minimum(v_i, v_k) * n + xp.maximum(v_i, v_k)
    edges = xp.stack([xp.where(lone_is_above, edge_a, edge_b), xp.where(lone_is_above, edge_b, edge_a)], axis=1)
    return segments, cut, edges


def connected_labels(n: int, u, v) -> np.ndarray:
    """Connected components of a graph of `n` nodes with edges `u` (e,) - `v` (e,) (host arrays).

    Vectorised union-find: hook each larger root onto the smaller, then jump pointers until every
    node points at its root. Returns (n,) labels, each the smallest node index of its component.
    """
    lab = np.arange(n)
    u = np.asarray(u, np.int64)
    v = np.asarray(v, np.int64)
    while True:
        lu, lv = lab[u], lab[v]
        differ = lu != lv
        if not differ.any():
            return lab
        lo, hi = np.minimum(lu[differ], lv[differ]), np.maximum(lu[differ], lv[differ])
        np.minimum.at(lab, hi, lo)
        while True:
            jumped = lab[lab]
            if np.array_equal(jumped, lab):
                break
            lab = jumped


def _loops(edges, level) -> np.ndarray:
    """Piece labels (s,) of segments whose end points lie on mesh `edges` (s, 2), per `level` (s,)."""
    edges = np.asarray(to_numpy(edges), np.int64)
    level = np.asarray(to_numpy(level), np.int64)
    s = len(edges)
    if s == 0:
        return np.zeros(0, np.int64)
    # Two segments of one level that cross the same mesh edge are neighbours on a loop.
    keys = np.stack([level, level], axis=1) * (int(edges.max()) + 1) + edges
    keys = keys.reshape(-1)
    order = np.argsort(keys, kind="stable")
    same = keys[order[1:]] == keys[order[:-1]]
    return connected_labels(s, order[:-1][same] // 2, order[1:][same] // 2)


def plane_section(vertices, faces, point, normal, face_ids=None):
    """Intersects a triangle mesh with a plane of any orientation.

    Parameters
    ----------
    vertices : (n, 3) float
        Mesh vertices (any length unit; the result is in the same unit).
    faces : (m, 3) int
        Triangles, indices into `vertices`.
    point : (3,) float
        A point on the plane.
    normal : (3,) float
        The plane's normal (any non-zero length).
    face_ids : (f,) int or (m,) bool, optional
        Only these faces are cut (e.g. the torso without the arms).

    Returns
    -------
    segments : (s, 2, 3) float
        End points of the section's segments in 3D, one segment per cut triangle.
    """
    return plane_sections(vertices, faces, point, normal, face_ids=face_ids, loops=False).segments


def plane_sections(vertices, faces, point, normal, face_ids=None, loops: bool = True) -> Sections:
    """The section of a mesh by one plane of any orientation, with its loops.

    Parameters as `plane_section`; `loops=False` skips labelling (`loop` is then all zeros).

    Returns
    -------
    Sections
        3D segments (s, 2, 3), `level` all 0 and the `loop` labels (s,).
    """
    xp = array_namespace(vertices, faces)
    vertices = xp.asarray(vertices)
    tri_ids = faces if face_ids is None else faces[face_ids]
    tri = vertices[tri_ids]  # (m, 3, 3)
    normal = xp.asarray(normal, dtype=tri.dtype)
    d = (tri - xp.asarray(point, dtype=tri.dtype)) @ normal
    segments, _, edges = _cut_triangles(tri, d, tri_ids if loops else None)
    level = xp.zeros(segments.shape[0], dtype=xp.int64)
    loop = _loops(edges, level) if loops else np.zeros(segments.shape[0], np.int64)
    return Sections(segments, level, loop)


def _plane_axes(up_axis: int) -> list[int]:
    if up_axis not in (0, 1, 2):
        raise ValueError(f"up_axis must be 0, 1 or 2, not {up_axis}")
    return [a for a in range(3) if a != up_axis]


def horizontal_section(vertices, faces, height: float, face_ids=None, up_axis: int = 1):
    """Intersects a mesh with the horizontal plane `vertices[:, up_axis] == height`.

    Parameters
    ----------
    vertices : (n, 3) float
        Mesh vertices, metres (or any length unit).
    faces : (m, 3) int
        Triangles.
    height : float
        Level of the plane along `up_axis`, in the unit of `vertices`.
    face_ids : (f,) int or (m,) bool, optional
        Only these faces are cut.
    up_axis : int
        The vertical axis (1 for fitroom's world frame, +Y up).

    Returns
    -------
    segments : (s, 2, 2) float
        End points of the section's segments in the horizontal plane, as the two other axes in
        order ((x, z) for Y up). `segments.reshape(-1, 2)` are the section's points.
    """
    xp = array_namespace(vertices, faces)
    vertices = xp.asarray(vertices)
    tri = vertices[faces if face_ids is None else faces[face_ids]]
    return _cut_triangles(tri[:, :, _plane_axes(up_axis)], tri[:, :, up_axis] - height)[0]


def horizontal_sections(vertices, faces, heights, face_ids=None, up_axis: int = 1, values=None) -> Sections:
    """Sections of a mesh at several horizontal levels in one vectorised pass, with their loops.

    Parameters
    ----------
    vertices : (n, 3) float
        Mesh vertices.
    faces : (m, 3) int
        Triangles.
    heights : (L,) float
        Levels along `up_axis`.
    face_ids : (f,) int or (m,) bool, optional
        Only these faces are cut.
    up_axis : int
        The vertical axis.
    values : (n, c) float, optional
        Per-vertex values to interpolate to the segments' end points (`Sections.values`).

    Returns
    -------
    Sections
        Segments (s, 2, 2) in the horizontal plane (as `horizontal_section`), all levels
        together; `level` (s,) indexes `heights`; `loop` (s,) labels the loops.
    """
    xp = array_namespace(vertices, faces)
    vertices = xp.asarray(vertices)
    heights = xp.asarray(heights, dtype=vertices.dtype).reshape(-1)
    tri_ids = faces if face_ids is None else faces[face_ids]
    y = vertices[:, up_axis][tri_ids]  # (m, 3)
    lo = xp.minimum(xp.minimum(y[:, 0], y[:, 1]), y[:, 2])
    hi = xp.maximum(xp.maximum(y[:, 0], y[:, 1]), y[:, 2])
    # A triangle crosses the levels h with lo < h <= hi (the d >= 0 convention): a run of the
    # sorted levels, so (level, triangle) pairs cost O(m log L + pairs), not O(m L).
    order = xp.argsort(heights)
    sorted_h = heights[order]
    first = xp.searchsorted(sorted_h, lo, side="right")
    runs = xp.searchsorted(sorted_h, hi, side="right") - first
    # Expand the runs without `repeat` (CuPy's takes no array of counts): pair p belongs to the
    # triangle whose run end is the first one past p.
    ends = xp.cumsum(runs)
    pair = xp.arange(int(ends[-1]) if ends.shape[0] else 0)
    t = xp.searchsorted(ends, pair, side="right")
    lvl = order[first[t] + pair - (ends - runs)[t]]
    d = y[t] - heights[lvl][:, None]
    ids = tri_ids[t]
    coords = vertices[:, _plane_axes(up_axis)]
    if values is not None:  # cut once: the values ride along as extra coordinates
        coords = xp.concatenate([coords, xp.asarray(values, dtype=vertices.dtype).reshape(len(vertices), -1)], axis=1)
    segments, cut, edges = _cut_triangles(coords[ids], d, ids)
    level = lvl[cut]
    return Sections(segments[..., :2], level, _loops(edges, level), None if values is None else segments[..., 2:])


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _outside_octagon(p: np.ndarray) -> np.ndarray:
    """Mask (n,) of points not strictly inside the octagon of 8 extreme points (Akl-Toussaint).

    Points strictly inside a convex polygon of input points cannot be hull vertices; dropping
    them first leaves the sequential monotone chain only a small fraction of a section's points.
    """
    x, y = p[:, 0], p[:, 1]
    ids = [np.argmax(x), np.argmax(x + y), np.argmax(y), np.argmax(y - x),
           np.argmin(x), np.argmin(x + y), np.argmin(y), np.argmax(x - y)]  # counter-clockwise
    a = p[ids]
    edge = np.roll(a, -1, axis=0) - a  # (8, 2)
    rel = p[:, None, :] - a[None, :, :]  # (n, 8, 2)
    cross = edge[None, :, 0] * rel[:, :, 1] - edge[None, :, 1] * rel[:, :, 0]
    scale = np.abs(p).max() + 1e-300
    # Repeated extreme points give zero-length edges, which exclude nothing.
    degenerate = np.abs(edge).max(axis=1) <= 1e-12 * scale
    inside = np.all((cross > 1e-12 * scale * scale) | degenerate[None, :], axis=1)
    return ~inside


def convex_hull_2d(points) -> np.ndarray:
    """Convex hull of 2D points by Andrew's monotone chain.

    Parameters
    ----------
    points : (n, 2) float
        Points (NumPy or CuPy; computed on the host). Non-finite points are ignored.

    Returns
    -------
    hull : (h, 2) float64, NumPy
        Hull vertices in counter-clockwise order (x right, second axis up), the first not
        repeated; points on the hull's edges are left out. Fewer than 3 distinct points, or all
        collinear, give the extreme points (h <= 2); an empty input gives (0, 2).
    """
    p = np.asarray(to_numpy(points), dtype=np.float64).reshape(-1, 2)
    p = p[np.all(np.isfinite(p), axis=1)]
    if len(p) > 16:
        p = p[_outside_octagon(p)]
    p = np.unique(p, axis=0)  # sorted by the first coordinate, then the second
    if len(p) < 3:
        return p
    pts = p.tolist()
    lower: list = []
    for q in pts:
        while len(lower) >= 2 and _cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    upper: list = []
    for q in reversed(pts):
        while len(upper) >= 2 and _cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return np.array(lower[:-1] + upper[:-1], dtype=np.float64)


def polygon_perimeter(polygon) -> float:
    """Perimeter of a closed polygon (h, 2) or (h, 3); the last vertex joins the first.

    Two points give twice their distance (a tape around a flat strip); fewer give 0.
    """
    xp = array_namespace(polygon)
    poly = xp.asarray(polygon)
    if poly.shape[0] < 2:
        return 0.0
    edges = xp.roll(poly, -1, axis=0) - poly
    return float(xp.sqrt((edges**2).sum(axis=1)).sum())


def polygon_area(polygon) -> float:
    """Signed area of a closed 2D polygon (h, 2) by the shoelace formula (> 0 counter-clockwise)."""
    xp = array_namespace(polygon)
    p = xp.asarray(polygon)
    if p.shape[0] < 3:
        return 0.0
    q = xp.roll(p, -1, axis=0)
    return float(0.5 * (p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]).sum())


def hull_perimeter(points) -> float:
    """Perimeter of the convex hull of 2D points (n, 2): a tape pulled taut around them."""
    return polygon_perimeter(convex_hull_2d(points))


def support_perimeters(points, groups, n_groups: int, n_directions: int = 256) -> np.ndarray:
    """Convex-hull perimeters of many groups of 2D points at once, by Cauchy's formula.

    The perimeter of a convex set is the integral of its support function over the directions,
    P = integral of h(theta) dtheta with h(theta) = max_i p_i . (cos theta, sin theta); the
    midpoint rule over `n_directions` directions is vectorised over all groups. On body sections
    (smooth, dense polygons) the relative error is about 2e-5 with 256 directions and 6e-5 with
    128; it shrinks as the square of the direction step.

    Parameters
    ----------
    points : (n, 2) float
        Points (host; NumPy or CuPy accepted).
    groups : (n,) int
        Group of each point, in [0, n_groups).
    n_groups : int
        Number of groups.
    n_directions : int
        Directions sampled on the circle.

    Returns
    -------
    perimeters : (n_groups,) float64
        Perimeter of each group's convex hull, in the unit of `points` (0 for an empty group).
    """
    p = np.asarray(to_numpy(points), dtype=np.float64).reshape(-1, 2)
    g = np.asarray(to_numpy(groups), dtype=np.int64).reshape(-1)
    out = np.zeros(n_groups)
    if len(p) == 0:
        return out
    order = np.argsort(g, kind="stable")
    p, g = p[order], g[order]
    present, starts = np.unique(g, return_index=True)
    theta = (np.arange(n_directions) + 0.5) * (2.0 * np.pi / n_directions)
    # Centre each group first so that the support values do not lose digits to a far origin.
    centre = np.add.reduceat(p, starts, axis=0) / np.diff(np.r_[starts, len(p)])[:, None]
    p = p - np.repeat(centre, np.diff(np.r_[starts, len(p)]), axis=0)
    support = np.maximum.reduceat(p @ np.stack([np.cos(theta), np.sin(theta)]), starts, axis=0)
    out[present] = support.sum(axis=1) * (2.0 * np.pi / n_directions)
    return out


def section_girth(vertices, faces, height: float, face_ids=None, up_axis: int = 1) -> float:
    """Tape-measure girth around a whole horizontal section: the perimeter of its convex hull.

    Parameters as `horizontal_section`. Returns the girth in the unit of `vertices` (0 when the
    plane misses the selected faces). To measure one loop only (one leg, the torso without the
    arms), use `horizontal_sections` and pass that loop's points to `hull_perimeter`.
    """
    segments = horizontal_section(vertices, faces, height, face_ids=face_ids, up_axis=up_axis)
    return hull_perimeter(segments.reshape(-1, 2))
