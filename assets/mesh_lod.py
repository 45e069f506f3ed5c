"""Levels of detail by quadric edge collapse (fast_simplification), keeping textures exact.

A textured mesh is decimated as stored first, with its borders held fixed: texture seams and hard
edges (where a file stores copies of a vertex) are borders there, so they neither move nor open
into cracks. Where that cannot reach a level (many seams, few triangles), the mesh is welded by
position and decimated again, seams and all. One decimation run to the smallest level records its
collapses in order; a prefix of them is each larger level, so all levels cost one or two runs.

In the welded run, collapses are replayed as vertex-subset ("half-edge") collapses: every output vertex is an input
vertex, at its input position, so its texture coordinates, normal and colour are copied, not
interpolated. A corner whose vertex collapsed into another takes the copy of that vertex with the
nearest attributes in the same connected piece of the stored mesh (the same UV island: on a
cylinder's seam, the copy at u = 1 rather than u = 0 for a corner near u = 1). Where the surviving
vertex has no such copy (the collapse crossed a seam), the corner keeps its own normal and colour
and takes the texture coordinates its own triangle's UV map gives the new position, extended past
the triangle's edges (u slightly above 1 on a sleeve, which the repeating sampler wraps).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from assets.mesh_normals import weld_positions
from assets.model_load import Part

__all__ = ["decimate_levels", "MAX_COPIES"]

MAX_COPIES = 16  # copies of one position considered when picking a corner's attributes
_OTHER_ISLAND = 1e6  # distance penalty of a copy in another connected piece
_UV_SLACK = 8.0  # how much further than the corner moved (in UV per metre) its UV may jump


def _representatives(collapses: np.ndarray, count: int, n: int) -> np.ndarray:
    """The vertex (n,) each vertex has collapsed into after the first `count` collapses.

    collapses : (c, 2) int, [kept, removed] in order; a removed vertex is never collapsed again,
    so the collapses form a forest and pointer jumping finds each root.
    """
    rep = np.arange(n)
    rep[collapses[:count, 1]] = collapses[:count, 0]
    while True:
        nxt = rep[rep]
        if np.array_equal(nxt, rep):
            return rep
        rep = nxt


def _kept(faces_w: np.ndarray, rep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Faces (k, 3) on the representatives, and the mask (m,) of input faces that survive."""
    F = rep[faces_w]
    keep = (F[:, 0] != F[:, 1]) & (F[:, 1] != F[:, 2]) & (F[:, 0] != F[:, 2])
    return F, keep


def _prefix_for(target: int, faces_w, collapses, n_w) -> np.ndarray:
    """Representatives after the shortest prefix of `collapses` leaving at most `target` faces."""
    lo, hi = 0, len(collapses)
    while hi - lo > 1:  # face count falls monotonically with the prefix length
        mid = (lo + hi) // 2
        if _kept(faces_w, _representatives(collapses, mid, n_w))[1].sum() > target:
            lo = mid
        else:
            hi = mid
    return _representatives(collapses, hi, n_w)


def _islands(faces: np.ndarray, n: int) -> np.ndarray:
    """Connected piece (n,) of each stored vertex, joined through shared stored vertices."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(e), np.int8), (e[:, 0], e[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _features(part: Part) -> np.ndarray | None:
    """Per-vertex attributes (n, d) compared when choosing a copy: UVs, then normals, colours."""
    cols = [part.uv] if part.uv is not None else []
    if part.normals is not None:
        cols.append(0.1 * part.normals)  # a UV match matters more than a normal's
    if part.colors is not None:
        cols.append(part.colors)
    return np.concatenate(cols, 1).astype(np.float64) if cols else None


def _uv_per_metre(part: Part) -> float:
    """Median texture-coordinate length per metre of the stored mesh's edges."""
    e = part.faces[:, [0, 1]]
    length = np.linalg.norm(part.vertices[e[:, 0]] - part.vertices[e[:, 1]], axis=1)
    ok = length > 0
    if not ok.any():
        return 0.0
    return float(np.median(np.linalg.norm(part.uv[e[ok, 0]] - part.uv[e[ok, 1]], axis=1) / length[ok]))


def _extrapolated_uv(part: Part, faces: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """Texture coordinates (k, 2) of `points` (k, 3) under the affine UV map of each stored face
    in `faces` (k,), extended past its edges; None rows where a face is degenerate or far away."""
    tri = part.vertices[part.faces[faces]]  # (k, 3, 3)
    e0, e1, d = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], points - tri[:, 0]
    d00, d01, d11 = (e0 * e0).sum(1), (e0 * e1).sum(1), (e1 * e1).sum(1)
    d20, d21 = (d * e0).sum(1), (d * e1).sum(1)
    den = d00 * d11 - d01**2
    with np.errstate(divide="ignore", invalid="ignore"):
        b1 = (d11 * d20 - d01 * d21) / den
        b2 = (d00 * d21 - d01 * d20) / den
    b = np.stack([1 - b1 - b2, b1, b2], 1)
    uv = (b[:, :, None] * part.uv[part.faces[faces]]).sum(1)
    bad = ~np.isfinite(b).all(1) | (np.abs(b).max(1) > 8)  # a neighbour, not across the model
    return uv, bad


def _rebuild(part: Part, weld, faces_w, rep, copies, features, islands, uv_per_m: float) -> Part:
    """The decimated part: surviving faces on (representative position, attribute source) vertices."""
    F, keep = _kept(faces_w, rep)
    kept_faces = np.flatnonzero(keep)
    r = F[keep].reshape(-1)  # welded representative per corner
    source = part.faces[keep].reshape(-1).copy()  # stored vertex whose attributes a corner takes
    pos_welded = np.zeros((int(weld.max()) + 1, 3))
    pos_welded[weld] = part.vertices
    moved = np.flatnonzero(weld[source] != r)
    own_uv = np.zeros(0, np.int64)  # corners given their own face's UV map at the new position
    if features is not None and len(moved):
        u = source[moved]
        cand = copies[r[moved]]  # (c, MAX_COPIES), -1 padded
        safe = np.maximum(cand, 0)
        dist = ((features[safe] - features[u][:, None]) ** 2).sum(-1)
        dist += _OTHER_ISLAND * (islands[safe] != islands[u][:, None])
        dist[cand < 0] = np.inf
        best = dist.argmin(1)
        chosen = cand[np.arange(len(moved)), best]
        ok = dist[np.arange(len(moved)), best] < _OTHER_ISLAND
        if part.uv is not None:
            # A collapse across a texture seam inside one island (around a sleeve) finds only the
            # far side's coordinates: a corner's UV may move about as far as the corner moved
            # (times the mesh's UV-per-metre); otherwise its own face's UV map, extended to the
            # new position, gives it (past u = 1 on a sleeve, which a repeating sampler wraps).
            moved_by = np.linalg.norm(pos_welded[r[moved]] - part.vertices[u], axis=1)
            uv_jump = np.linalg.norm(part.uv[np.maximum(chosen, 0)] - part.uv[u], axis=1)
            ok &= uv_jump <= _UV_SLACK * uv_per_m * moved_by + 1e-6
            own_uv = moved[~ok]
        source[moved[ok]] = chosen[ok]
    corner_uv = None if part.uv is None else part.uv[source]
    key = r * len(part.vertices) + source
    if len(own_uv):
        uv, bad = _extrapolated_uv(part, kept_faces[own_uv // 3], pos_welded[r[own_uv]])
        own_uv, uv = own_uv[~bad], uv[~bad]
        corner_uv[own_uv] = uv
        key[own_uv] = (int(r.max()) + 1) * len(part.vertices) + own_uv  # a vertex of its own
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    src = source[first]
    return dataclasses.replace(
        part,
        vertices=pos_welded[r[first]],
        faces=inverse.reshape(-1, 3).astype(np.int64),
        normals=None if part.normals is None else part.normals[src],
        uv=None if corner_uv is None else corner_uv[first].astype(np.float32),
        colors=None if part.colors is None else part.colors[src],
    )


class _Run:
    """One decimation run: the topology it ran on (`weld` maps stored vertices to its vertices),
    its collapses in order, and what choosing corner attributes needs."""

    def __init__(self, part: Part, weld: np.ndarray, n_w: int, target: int, preserve_border: bool):
        import fast_simplification

        from engine.mesh_queries import padded_table

        self.weld, self.n_w = weld, n_w
        self.faces_w = weld[part.faces]
        pos_w = np.zeros((n_w, 3))
        pos_w[weld] = part.vertices
        _, _, collapses = fast_simplification.simplify(
            pos_w.astype(np.float32), self.faces_w.astype(np.int32), target_count=target,
            return_collapses=True, preserve_border=preserve_border,
        )
        self.collapses = np.asarray(collapses, np.int64).reshape(-1, 2)
        self.reached = int(_kept(self.faces_w, _representatives(self.collapses, len(self.collapses), n_w))[1].sum())
        self.copies = padded_table(weld, np.arange(len(weld)), n_w)[:, :MAX_COPIES]

    def level(self, part: Part, target: int, features, islands, uv_per_m: float) -> Part:
        rep = _prefix_for(target, self.faces_w, self.collapses, self.n_w)
        return _rebuild(part, self.weld, self.faces_w, rep, self.copies, features, islands, uv_per_m)


def decimate_levels(part: Part, ratios) -> list[Part]:
    """The part decimated to about each of `ratios` (fractions of its triangles, in (0, 1]).

    A textured (or otherwise attributed) part is first decimated as stored with its open edges,
    texture seams and hard edges held fixed, which keeps every texture coordinate exact and the
    seams straight; the levels this cannot reach within 10 % (too many seams for so few triangles)
    come from a second run on the mesh welded by position. A ratio of 1 returns the part itself;
    a part too small to reduce is returned as is. Returns one Part per ratio, in the given order.
    """
    m = len(part.faces)
    targets = [max(int(round(r * m)), 4) for r in ratios]
    if min(targets) >= m:
        return [part for _ in ratios]
    features = _features(part)
    uv_per_m = _uv_per_metre(part) if part.uv is not None else 0.0
    islands = None if features is None else _islands(part.faces, len(part.vertices))
    runs = []
    if features is not None:
        runs.append(_Run(part, np.arange(len(part.vertices)), len(part.vertices), min(targets), preserve_border=True))
    out = []
    for target in targets:
        if target >= m:
            out.append(part)
            continue
        run = next((r for r in runs if r.reached <= 1.1 * target), None)
        if run is None:
            weld, n_w = weld_positions(part.vertices)
            runs.append(run := _Run(part, weld, n_w, min(targets), preserve_border=False))
        out.append(run.level(part, target, features, islands, uv_per_m))
    return out
