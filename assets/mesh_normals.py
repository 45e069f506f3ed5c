"""Welding by position and vertex normals for meshes that come without them.

glTF asks viewers to shade a primitive without normals flat; a smooth product (cloth, a vase)
then looks faceted and a hard one (a table) is right. Normals are computed the way modelling
tools' "auto smooth" does: each corner averages the area-weighted normals of the faces around its
vertex that bend less than `crease_deg` from its own face, with vertices welded by position first
so a texture seam does not show as a shading seam. Corners of one vertex that end up with
different normals (a hard edge) become separate vertices.
"""

from __future__ import annotations

import numpy as np

from engine.cloth_topology import weld
from engine.mesh_queries import face_normals, vertex_normals

__all__ = ["weld_positions", "crease_normals"]


def weld_positions(vertices, tolerance: float = 1e-6) -> tuple[np.ndarray, int]:
    """Ids of vertices at the same position (within `tolerance` of the bounding-box diagonal).

    vertices : (n, 3) float. Returns ids (n,) int64 in [0, k) and k, the number of distinct positions.
    """
    v = np.asarray(vertices, np.float64)
    if len(v) == 0:
        return np.zeros(0, np.int64), 0
    lo = v.min(0)
    unique, ids = weld(v - lo, max(float(np.linalg.norm(v.max(0) - lo)), 1e-12) * tolerance)
    return ids.astype(np.int64), len(unique)


def crease_normals(vertices, faces, crease_deg: float = 60.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth-within-creases vertex normals of a triangle mesh.

    Parameters
    ----------
    vertices : (n, 3) float. faces : (m, 3) int, counter-clockwise.
    crease_deg : faces meeting at a larger angle do not share a normal.

    Returns
    -------
    source : (k,) int64
        For each output vertex the input vertex it copies (positions and other attributes).
    faces : (m, 3) int64
        The triangles on the output vertices.
    normals : (k, 3) float32
        Unit normals.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    weighted = face_normals(v, f, unit=False)
    unit = weighted / np.maximum(np.linalg.norm(weighted, axis=1, keepdims=True), 1e-30)
    weld, n_weld = weld_positions(v)
    corner_w = weld[f].reshape(-1)
    corner_f = np.repeat(np.arange(len(f)), 3)
    smooth = vertex_normals(np.zeros((n_weld, 3)), weld[f], weighted_face_normals=weighted, fallback=(0.0, 1.0, 0.0))
    # Where every face around a vertex is within half the crease angle of the smooth normal, no
    # two of them can be a crease apart: the smooth normal is the answer (nearly all vertices).
    order = np.argsort(corner_w, kind="stable")
    counts = np.bincount(corner_w, minlength=n_weld)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    dots = np.einsum("ij,ij->i", unit[corner_f], smooth[corner_w])
    lowest = np.ones(n_weld)
    used = counts > 0
    lowest[used] = np.minimum.reduceat(dots[order], start[used])
    sharp = lowest < np.cos(np.radians(crease_deg / 2))
    if not sharp.any():
        normals = smooth[weld].astype(np.float32)
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)  # unit at float32 (glTF validator)
        return np.arange(len(v)), f, normals
    corner_n = smooth[corner_w]
    # At sharp vertices, every (corner, face around the corner's vertex) pair: the sum of valence
    # squared, small even at a pole of a hundred faces (a padded table would be corners x max valence).
    at = order[sharp[corner_w[order]]]
    reps = counts[corner_w[at]]
    left = np.repeat(at, reps)  # the corner
    offset = np.arange(len(left)) - np.repeat(np.cumsum(reps) - reps, reps)
    right = order[np.repeat(start[corner_w[at]], reps) + offset] // 3  # a face around it
    own = left // 3
    close = np.einsum("ij,ij->i", unit[own], unit[right]) >= np.cos(np.radians(crease_deg)) - 1e-9
    summed = np.stack(
        [np.bincount(left[close], weights=weighted[right[close], c], minlength=3 * len(f)) for c in range(3)], 1
    )
    length = np.linalg.norm(summed, axis=1, keepdims=True)
    at_sharp = sharp[corner_w]
    corner_n[at_sharp] = np.where(length > 1e-30, summed / np.maximum(length, 1e-30), (0.0, 1.0, 0.0))[at_sharp]
    # A new vertex per (input vertex, distinct normal); normals equal to 1e-4 are one.
    quant = np.round(corner_n * 1e4).astype(np.int64) + 10_001
    if len(v) < 1_000_000:  # one int64 key while it cannot overflow
        key = ((f.reshape(-1) * 20_003 + quant[:, 0]) * 20_003 + quant[:, 1]) * 20_003 + quant[:, 2]
    else:
        key = np.concatenate([f.reshape(-1, 1), quant], 1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True, axis=0 if key.ndim == 2 else None)
    normals = corner_n[first].astype(np.float32)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)  # unit at float32 precision (glTF validator)
    return f.reshape(-1)[first], inverse.reshape(-1, 3).astype(np.int64), normals
