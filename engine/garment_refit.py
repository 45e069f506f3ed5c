"""Carrying a garment from the body it was authored on to a shopper's body (same mesh topology).

Each garment vertex is written in body-relative coordinates on the authoring body: its closest
surface point (triangle + barycentric coordinates) and its offset from there, split into a
tangential part and a distance along the surface normal. On the target body the same triangle
and barycentric coordinates give the new anchor, and the offset is re-applied along the target's
normal there. Neighbouring garment vertices can anchor on different limbs (a skirt between the
legs), so the displacement field is smoothed over the garment before a final pass pushes any
vertex closer than `clearance` to the target body out along its normal. Skinning weights are
carried the same way, so the refitted garment follows the body's skeleton into other poses.
"""

from __future__ import annotations

import dataclasses

from engine.backend import array_namespace
from engine.mesh_queries import SurfaceQuery, vertex_neighbours


@dataclasses.dataclass
class Anchors:
    """Body-relative coordinates of points: face (P,), barycentric (P, 3), normal offset (P,) m,
    tangential offset (P, 3) m (in the world frame of the authoring body)."""

    face: object
    bary: object
    distance: object
    tangential: object


def anchor(points, body: SurfaceQuery) -> Anchors:
    """Anchors of points (P, 3) on a body surface."""
    nearest = body.walk(points, body.nearest_vertices(points))
    closest, normal, signed, face, bary = body.closest(points, nearest)
    offset = points - closest
    d = (offset * normal).sum(1)
    return Anchors(face, bary, d, offset - d[:, None] * normal)


def place(anchors: Anchors, body: SurfaceQuery, min_distance: float = 0.0):
    """Points (P, 3) at `anchors` on another pose or shape of the same body mesh."""
    xp = body.xp
    fv = body.faces[anchors.face]
    p = (anchors.bary[:, :, None] * body.vertices[fv]).sum(1)
    n = (anchors.bary[:, :, None] * body.normals[fv]).sum(1)
    n = n / xp.maximum(xp.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    return p + anchors.tangential + xp.maximum(anchors.distance, min_distance)[:, None] * n


def smooth_field(field, neighbours, iterations: int):
    """Uniform Laplacian smoothing of a per-vertex field (N, k) over a -1 padded neighbour table."""
    xp = array_namespace(field)
    valid = neighbours >= 0
    count = xp.maximum(valid.sum(1), 1)[:, None]
    idx = xp.maximum(neighbours, 0)
    for _ in range(iterations):
        total = (field[idx] * valid[:, :, None]).sum(1)
        field = 0.5 * field + 0.5 * total / count
    return field


def push_out(points, body: SurfaceQuery, clearance: float, passes: int = 3):
    """Moves points (P, 3) that are inside the body or closer than `clearance` (m) out along the
    body's normal; returns (points, signed distance (P,) before the last pass)."""
    xp = body.xp
    nearest = body.walk(points, body.nearest_vertices(points))
    signed = None
    for _ in range(passes):
        closest, normal, signed, _, _ = body.closest(points, nearest)
        short = xp.maximum(clearance - signed, 0.0)
        if not bool((short > 0).any()):
            break
        points = points + short[:, None] * normal
        nearest = body.walk(points, nearest)
    return points, signed


def refit(garment_vertices, garment_faces, source_body, target_body, body_faces, clearance: float = 0.004,
          smoothing: int = 10):
    """The garment moved from `source_body` (V, 3) to `target_body` (V, 3), same faces (G, 3).

    garment_vertices : (N, 3), garment_faces : (F, 3). Returns (positions (N, 3), anchors on the
    source body). Every returned vertex is at least `clearance` (m) outside the target body.
    """
    xp = array_namespace(garment_vertices)
    src = SurfaceQuery(source_body, body_faces)
    tgt = SurfaceQuery(target_body, body_faces)
    anchors = anchor(garment_vertices, src)
    moved = place(anchors, tgt, min_distance=clearance)
    if smoothing:
        neighbours = xp.asarray(vertex_neighbours(garment_faces, len(garment_vertices)))
        moved = garment_vertices + smooth_field(moved - garment_vertices, neighbours, smoothing)
    moved, _ = push_out(moved, tgt, clearance)
    return moved, anchors


def transfer_weights(anchors: Anchors, body_faces, bone_weights, bone_indices, n_bones: int, k: int = 4):
    """Skinning weights of the anchored points, blended from their triangle's vertices.

    bone_weights, bone_indices : (V, J) the body's; returns (weights (P, k), indices (P, k)),
    the k largest renormalised to sum to one.
    """
    xp = array_namespace(bone_weights)
    fv = body_faces[anchors.face]  # (P, 3)
    dense = xp.zeros((len(fv), n_bones))
    rows = xp.arange(len(fv))[:, None]
    for c in range(3):
        w = bone_weights[fv[:, c]] * anchors.bary[:, c : c + 1]
        for j in range(w.shape[1]):
            dense[rows[:, 0], bone_indices[fv[:, c], j]] += w[:, j]
    top = xp.argsort(-dense, axis=1, kind="stable")[:, :k]
    weights = xp.take_along_axis(dense, top, axis=1)
    weights = weights / xp.maximum(weights.sum(1, keepdims=True), 1e-12)
    return weights, top
