"""Cloth against itself: vertex-triangle repulsion with a thickness, and intersection counting.

Candidate pairs are overlapping bounding boxes (`box_pairs`); the narrow phase is exact closest
points or segment-triangle tests. Repulsion keeps each vertex on the side of a nearby triangle it was
on at the start of the step, so folds that touch slide over each other instead of passing through.
"""

from __future__ import annotations

from engine.backend import array_namespace, rowdot, rownorm, segment_sum, to_numpy
from engine.cloth_topology import unique_edges
from engine.mesh_queries import box_pairs, closest_point_on_triangles, face_normals


def _triangle_boxes(x, faces, pad: float = 0.0):
    """Bounding boxes (lo (F, 3), hi (F, 3)) of triangles, grown by `pad` (m)."""
    p = x[faces]
    return p.min(1) - pad, p.max(1) + pad


def vertex_triangle_pairs(x, faces, radius: float, neighbours=None):
    """Pairs (vertex (k,), triangle (k,)) whose distance may be below `radius` (m): the vertex
    lies in the triangle's bounding box grown by `radius`.

    A vertex is never paired with a triangle it belongs to, nor, given `neighbours` (N, d) (-1
    padded, `mesh_queries.vertex_neighbours`), with one that holds a neighbour of it: those are
    a triangle or two away along the cloth, and a fold too tight for them to touch is the
    bending stiffness's business, not contact's.
    """
    lo, hi = _triangle_boxes(x, faces, radius)
    vi, ti = box_pairs(x, x, lo, hi)
    f = faces[ti]
    keep = (f != vi[:, None]).all(1)
    if neighbours is not None:
        keep &= ~(f[:, :, None] == neighbours[vi][:, None, :]).any((1, 2))
    return vi[keep], ti[keep]


def repel(x, x_start, faces, pairs, thickness: float, passes: int = 2, rest=None):
    """Pushes vertices and triangles of `pairs` apart to at least `thickness` (m); returns new x.

    x, x_start : (N, 3) positions now and at the start of the step; pairs from
    `vertex_triangle_pairs`. Corrections are split half to the vertex, half to the triangle's
    vertices by barycentric weight, and averaged where several pairs touch one vertex (Jacobi).
    rest : (N, 3) the garment as authored, or None. Pairs already within 1.5 thicknesses
    there (under an arm, along a seam allowance) are left alone: pushing them apart would fight
    the fabric's own rest shape at every step and the drape would never settle.
    """
    xp = array_namespace(x)
    vi, ti = pairs
    if len(vi) == 0:
        return x
    n_v = len(x)
    f = faces[ti]
    # Only pairs within twice the thickness, or whose vertex went through the triangle during
    # the step (changed sides of its plane and is no farther from it than it moved), need a push.
    now = rowdot(x[vi] - x[f[:, 0]], face_normals(x, f))
    before = rowdot(x_start[vi] - x_start[f[:, 0]], face_normals(x_start, f))
    moved = rownorm(x[vi] - x_start[vi])
    crossed = now * before < 0
    # The distance to the plane bounds the distance to the triangle from below: a cheap cut first.
    maybe = (xp.abs(now) < 2.0 * thickness) | (crossed & (xp.abs(now) <= moved + thickness))
    vi, f, now, before, moved, crossed = vi[maybe], f[maybe], now[maybe], before[maybe], moved[maybe], crossed[maybe]
    q, _ = closest_point_on_triangles(x[vi], x[f[:, 0]], x[f[:, 1]], x[f[:, 2]])
    dist = rownorm(x[vi] - q)
    keep = (dist < 2.0 * thickness) | (crossed & (dist <= moved + thickness))
    if rest is not None:
        q_rest, _ = closest_point_on_triangles(rest[vi], rest[f[:, 0]], rest[f[:, 1]], rest[f[:, 2]])
        keep &= rownorm(rest[vi] - q_rest) >= 1.5 * thickness
    vi, f = vi[keep], f[keep]
    if len(vi) == 0:
        return x
    # Which side each vertex was on: fixed for the whole step.
    q0, _ = closest_point_on_triangles(x_start[vi], x_start[f[:, 0]], x_start[f[:, 1]], x_start[f[:, 2]])
    n0 = face_normals(x_start, f)
    side = xp.where(rowdot(x_start[vi] - q0, n0) >= 0, 1.0, -1.0)
    for _ in range(passes):
        q, bary = closest_point_on_triangles(x[vi], x[f[:, 0]], x[f[:, 1]], x[f[:, 2]])
        n = face_normals(x, f)
        s = side * rowdot(x[vi] - q, n)
        corr = xp.maximum(thickness - s, 0.0)
        hit = corr > 0
        if not bool(hit.any()):
            break
        push = (0.5 * corr * side)[:, None] * n  # (k, 3), zero where not hit
        w = bary / xp.maximum((bary**2).sum(1, keepdims=True), 1e-12)
        corners = f.reshape(-1)  # pair p's corner c at 3 p + c
        delta = segment_sum(vi, push, n_v) - segment_sum(corners, (w[:, :, None] * push[:, None, :]).reshape(-1, 3), n_v)
        hits = hit.astype(x.dtype)
        count = segment_sum(vi, hits, n_v) + segment_sum(corners, xp.repeat(hits, 3), n_v)
        x = x + delta / xp.maximum(count, 1.0)[:, None]
    return x


def self_intersections(x, faces) -> int:
    """How many (edge, triangle) pairs of the mesh cross, edges and triangles sharing no vertex.

    x : (N, 3); faces : (F, 3). Each place where two sheets pass through each other counts at
    least twice (two edges cross the other sheet), so 0 is the only good answer.
    """
    xp = array_namespace(x)
    edges = xp.asarray(unique_edges(to_numpy(faces))[0])  # once per drape: the host's table serves
    a, b = x[edges[:, 0]], x[edges[:, 1]]
    lo, hi = _triangle_boxes(x, faces)
    ei, ti = box_pairs(xp.minimum(a, b), xp.maximum(a, b), lo, hi)
    f = faces[ti]
    e = edges[ei]
    keep = ~(f[:, :, None] == e[:, None, :]).any((1, 2))
    ei, f = ei[keep], f[keep]
    if len(ei) == 0:
        return 0
    # Moller-Trumbore with the segment parameter restricted to [0, 1].
    p0, p1, p2 = x[f[:, 0]], x[f[:, 1]], x[f[:, 2]]
    o, d = a[ei], b[ei] - a[ei]
    e1, e2 = p1 - p0, p2 - p0
    h = xp.cross(d, e2)
    det = rowdot(e1, h)
    scale = rownorm(d) * rownorm(e1) * rownorm(e2)
    ok = xp.abs(det) > 1e-9 * scale  # coplanar pairs touch, they do not cross
    inv = 1.0 / xp.where(ok, det, 1.0)
    s = o - p0
    u = rowdot(s, h) * inv
    qv = xp.cross(s, e1)
    v = rowdot(d, qv) * inv
    t = rowdot(e2, qv) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t >= 0) & (t <= 1)
    return int(hit.sum())
