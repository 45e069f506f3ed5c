"""Cleaning a garment mesh for simulation: welding, dropping broken triangles, edges and stencils.

Host (NumPy) code run once per garment; the solver moves the results to its device.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.backend import array_namespace, rownorm, segment_sum
from engine.mesh_queries import face_sums_on_vertices
from fitroom.errors import FitroomError


class CleanMesh(NamedTuple):
    """A welded triangle mesh and what was repaired.

    vertices : (N, 3) float64; faces : (F, 3) int64; source : (N0,) int, the welded vertex each
    input vertex became (-1 for an unused one); report : counts of what was repaired.
    """

    vertices: np.ndarray
    faces: np.ndarray
    source: np.ndarray
    report: dict


def weld(vertices, tolerance: float = 1e-5):
    """Merges vertices closer than `tolerance` (m): (unique (N, 3), index (N0,) into them).

    Positions are snapped to a grid of the tolerance and merged when equal, so two vertices a
    hair apart across a grid line stay apart: harmless, they are only not merged.
    """
    v = np.asarray(vertices, np.float64)
    keys = np.round(v / tolerance).astype(np.int64)
    keys -= keys.min(0) if len(keys) else 0
    if len(keys) and keys.max() < 2**21:
        # One int64 key per cell (lexicographic like the rows): unique sorts a flat array, several
        # times faster than rows.
        keys = (keys[:, 0] << 42) | (keys[:, 1] << 21) | keys[:, 2]
        _, first, index = np.unique(keys, return_index=True, return_inverse=True)
    else:
        _, first, index = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return v[first], index.reshape(-1)


def clean_mesh(vertices, faces, tolerance: float = 1e-5, min_area: float = 1e-12) -> CleanMesh:
    """Welds duplicate vertices, drops degenerate and repeated triangles and unused vertices.

    Non-manifold edges (three or more triangles) are kept: the solver treats them like any other
    edge, and only bending across them is left out (see `bending_edges`).

    Raises FitroomError `bad_garment` when nothing simulatable is left or the input is malformed.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 3:
        raise FitroomError("bad_garment", "The garment needs at least three 3D vertices.")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise FitroomError("bad_garment", "The garment needs triangles (an (F, 3) face list).")
    if not np.all(np.isfinite(v)):
        raise FitroomError("bad_garment", "The garment has NaN or infinite vertex positions.")
    f = f.astype(np.int64)
    if f.min() < 0 or f.max() >= len(v):
        raise FitroomError("bad_garment", f"The garment's faces index vertices outside 0..{len(v) - 1}.")
    n_in, f_in = len(v), len(f)
    welded, index = weld(v, tolerance)
    f = index[f]
    collapsed = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])
    keep = ~collapsed & (triangle_areas(welded, f) > min_area)
    degenerate = int((~keep).sum())
    f = f[keep]
    _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    repeated = len(f) - len(first)
    f = f[np.sort(first)]
    if len(f) == 0:
        raise FitroomError("bad_garment", "Every triangle of the garment is degenerate (zero area).")
    used = np.unique(f)
    remap = np.full(len(welded), -1, np.int64)
    remap[used] = np.arange(len(used))
    out_faces = remap[f]
    source = remap[index]
    report = {
        "input_vertices": n_in,
        "input_faces": f_in,
        "welded_vertices": n_in - len(welded),
        "degenerate_faces": degenerate,
        "repeated_faces": int(repeated),
        "unused_vertices": int(len(welded) - len(used)),
        "non_manifold_edges": int(non_manifold_edge_count(out_faces)),
    }
    return CleanMesh(welded[used], out_faces, source, report)


def unique_edges(faces):
    """Edges (E, 2) sorted per row, and for each the faces using it: (E, 2) int with -1 where an
    edge has one face; edges with three or more faces list two of them and are flagged in
    `manifold` (E,) bool. Returns (edges, edge_faces, manifold)."""
    f = np.asarray(faces, np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e.sort(axis=1)
    owner = np.tile(np.arange(len(f)), 3)
    order = np.lexsort((e[:, 1], e[:, 0]))
    e, owner = e[order], owner[order]
    start = np.flatnonzero(np.r_[True, (e[1:] != e[:-1]).any(1)])
    count = np.diff(np.r_[start, len(e)])
    edge_faces = np.full((len(start), 2), -1, np.int64)
    edge_faces[:, 0] = owner[start]
    two = count >= 2
    edge_faces[two, 1] = owner[start[two] + 1]
    return e[start], edge_faces, count <= 2


def non_manifold_edge_count(faces) -> int:
    return int((~unique_edges(faces)[2]).sum())


def boundary_vertices(faces, n_vertices: int) -> np.ndarray:
    """(N,) bool: vertices on an edge that has only one triangle."""
    edges, edge_faces, _ = unique_edges(faces)
    out = np.zeros(n_vertices, bool)
    out[edges[edge_faces[:, 1] < 0].reshape(-1)] = True
    return out


def cotangent_laplacian(vertices, faces):
    """The cotangent Laplacian as COO triplets (rows, cols, values) and vertex areas (N,).

    L x at vertex i = sum_j (cot a_ij + cot b_ij) / 2 (x_j - x_i): zero at interior vertices of a
    flat mesh, 2 H n A_i on a curved one, A_i the vertex's Voronoi area; so the areas returned are
    `mixed_areas`. Cotangents are clamped to +-10 so that slivers cannot produce huge weights.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    cot = _corner_cotangents(v, f)
    rows, cols, vals = [], [], []
    for k in range(3):
        i, j = f[:, (k + 1) % 3], f[:, (k + 2) % 3]
        w = 0.5 * np.clip(cot[:, k], -10.0, 10.0)
        rows += [i, j, i, j]
        cols += [j, i, i, j]
        vals += [w, w, -w, -w]
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), mixed_areas(v, f, cot)


def _corner_cotangents(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(F, 3): the cotangent of each triangle's angle at corner k (between its edges to corners
    k + 1 and k + 2)."""
    p = v[f]
    a, b = np.roll(p, -1, axis=1) - p, np.roll(p, -2, axis=1) - p
    return (a * b).sum(2) / np.maximum(np.linalg.norm(np.cross(a, b), axis=2), 1e-20)


def mixed_areas(vertices, faces, cot=None) -> np.ndarray:
    """(N,) m^2: each vertex's mixed Voronoi area (Meyer et al. 2003). A triangle without an obtuse
    angle gives each corner its Voronoi region, |e|^2 cot(opposite angle) / 8 for each of the two
    edges there; an obtuse one gives half its area to the obtuse corner, a quarter to the others.
    cot : (F, 3) the corners' cotangents when the caller has them (`_corner_cotangents`).

    The area that turns L x = 2 H n A into a curvature: with a third of each triangle instead, a
    sheet rolled into a cylinder on a square grid (corners of 4 and 8 triangles) stored 12.5 % more
    bending energy than 1/2 k A / R^2."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    cot = _corner_cotangents(v, f) if cot is None else cot
    p = v[f]
    facing = ((np.roll(p, -1, axis=1) - np.roll(p, -2, axis=1)) ** 2).sum(2)  # |edge facing corner k|^2
    weighted = facing * cot
    # Corner k's two edges face corners k + 1 and k + 2.
    voronoi = (np.roll(weighted, -1, axis=1) + np.roll(weighted, -2, axis=1)) / 8.0
    obtuse = cot < 0  # (F, 3) corners over 90 degrees
    part = np.where(obtuse.any(1, keepdims=True), np.where(obtuse, 0.5, 0.25) * triangle_areas(v, f)[:, None], voronoi)
    return segment_sum(f.reshape(-1), part.reshape(-1), len(v))


def triangle_areas(x, faces):
    """(F,) m^2: the areas of triangles faces (F, 3) at positions x (N, 3) m (NumPy or CuPy)."""
    xp = array_namespace(x)
    p = x[faces]
    return 0.5 * rownorm(xp.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]))


def vertex_areas(faces, triangle_area, n_vertices: int):
    """(N,) m^2: each vertex's third of the areas (F,) of its triangles faces (F, 3)."""
    return face_sums_on_vertices(faces, triangle_area / 3.0, n_vertices)


def collapse_needles(vertices, faces, ratio: float = 0.3, passes: int = 8):
    """Merges the short edge of each needle triangle (shortest edge under `ratio` times the next)
    into one vertex, where that keeps the mesh a manifold with its openings and turns no face over.

    A needle (a 1.5 mm edge beside 15 mm ones, where a structured grid meets a boundary at a
    grazing angle) stays a needle under edge flips and is stiff and ill-conditioned in the solver;
    merging its ends removes it. The merged vertex is the edge's midpoint, or the end on an
    opening (so openings keep their shape); an interior edge joining two openings is kept.

    vertices (N, 3), faces (F, 3) int -> (vertices (N', 3), faces (F', 3), source (N,) int: the
    new vertex each old one became). Host NumPy."""
    V = np.array(vertices, np.float64)
    F = np.array(faces, np.int64)
    target = np.arange(len(V))
    for _ in range(passes):
        t = V[F]
        length = np.linalg.norm(t[:, [1, 2, 0]] - t, axis=2)  # edge k runs from corner k to k + 1
        order = np.sort(length, axis=1)
        needles = np.flatnonzero(order[:, 0] < ratio * order[:, 1])
        if len(needles) == 0:
            break
        on_boundary = boundary_vertices(F, len(V))
        faces_of = [[] for _ in range(len(V))]
        for f, tri in enumerate(F.tolist()):
            for v in tri:
                faces_of[v].append(f)
        alive = np.ones(len(F), bool)
        touched = np.zeros(len(V), bool)
        for f in needles[np.argsort(order[needles, 0] / order[needles, 1])].tolist():
            k = int(np.argmin(length[f]))
            a, b = int(F[f, k]), int(F[f, (k + 1) % 3])
            if not alive[f] or touched[a] or touched[b]:
                continue
            around = [g for g in set(faces_of[a]) | set(faces_of[b]) if alive[g]]
            shared = [g for g in around if a in F[g] and b in F[g]]
            ring_a, ring_b = (_ring(F[around], v) - {a, b} for v in (a, b))
            opposite = _ring(F[shared], a) - {a, b}
            if ring_a & ring_b != opposite or (len(shared) == 2 and on_boundary[a] and on_boundary[b]):
                continue  # merging would pinch the surface or join two openings
            if on_boundary[a] != on_boundary[b]:
                places = [V[a] if on_boundary[a] else V[b]]
            else:
                places = [0.5 * (V[a] + V[b]), V[a], V[b]]
            kept = [g for g in around if g not in shared]
            before = np.cross(V[F[kept, 1]] - V[F[kept, 0]], V[F[kept, 2]] - V[F[kept, 0]])
            p = next((p for p in places if not _turns_over(V[F[kept]], np.isin(F[kept], (a, b)), p, before)), None)
            if p is None:
                continue  # a face would turn over or fold sharply
            V[a] = p
            F[kept] = np.where(F[kept] == b, a, F[kept])
            alive[shared] = False
            target[target == b] = a
            touched[list(ring_a | ring_b | {a, b})] = True
        F = F[alive]
        used = np.zeros(len(V), bool)
        used[F.ravel()] = True
        new_id = np.cumsum(used) - 1
        V, F, target = V[used], new_id[F], new_id[target]
    return V, F, target


def _ring(faces, v: int) -> set:
    """The vertices of those `faces` (K, 3) that hold vertex v, v included."""
    return {int(u) for tri in faces.tolist() if v in tri for u in tri}


def _turns_over(corners, moving, p, normals) -> bool:
    """Whether moving the corners `moving` (K, 3) bool of triangles `corners` (K, 3, 3) to p (3,)
    turns any of them more than 78 degrees from its normal `normals` (K, 3)."""
    moved = corners.copy()
    moved[moving] = p
    after = np.cross(moved[:, 1] - moved[:, 0], moved[:, 2] - moved[:, 0])
    return bool(np.any((normals * after).sum(1) <= 0.2 * np.linalg.norm(normals, axis=1) * np.linalg.norm(after, axis=1)))
