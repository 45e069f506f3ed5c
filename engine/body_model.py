"""The Anny body model evaluated on NumPy or CuPy: shape blendshapes, forward kinematics, skinning.

Arrays come from `avatar.body_model_data` (already in the world frame: metres, +Y up, facing +Z).
Shape is a vector of phenotypes (gender, age, muscle, weight, height, proportions, each in [0, 1])
and local changes (the MakeHuman `measure-*` and torso targets, each in [-1, 1]). Pose is one
rotation per bone in Anny's `local-ref` parameterisation: for a bone c of parent p the posed,
world-aligned orientation is G_c = G_p D_c, so D_c is the bone's rotation relative to its parent,
in world axes at the reference pose (identity D: Anny's reference A-pose).
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Mapping

import numpy as np

from engine.rotations import special_procrustes


@dataclasses.dataclass(frozen=True)
class BodyModel:
    """Static arrays of the body model on one backend `xp` (built once, never changed).

    V vertices, F triangles, B bones, K blendshapes, J bone influences per vertex.
    """

    xp: ModuleType
    template_vertices: object  # (V, 3) float32, metres
    faces: object  # (F, 3) int32
    blendshapes: object  # (K, V, 3) float32
    template_heads: object  # (B, 3) float64
    head_blendshapes: object  # (K, B, 3)
    template_orientation: object  # (B, 3, 3) cross-covariances whose nearest rotation is the rest orientation
    orientation_blendshapes: object  # (K, B, 3, 3)
    reference_orientations: object  # (B, 3, 3) U_c
    bone_weights: object  # (V, J) float32, rows sum to 1
    bone_indices: object  # (V, J) int32
    keypoint_regressor: object  # (P, V) float32, rows sum to 1
    parents: np.ndarray  # (B,) int, root -1 (host)
    levels: tuple  # bone ids by depth, each an (n,) int array (host), root level first
    bone_labels: tuple
    keypoint_labels: tuple
    phenotype_labels: tuple
    local_change_labels: tuple
    phenotype: dict  # host arrays: mask (S, G), projection (S, C), groups (G,), anchors per group

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], xp: ModuleType = np) -> "BodyModel":
        a = {k: np.asarray(arrays[k]) for k in arrays.keys()}
        parents = a["bone_parents"].astype(np.int64)
        depth = np.zeros(len(parents), np.int64)
        for b in range(1, len(parents)):  # Anny orders parents before children
            depth[b] = depth[parents[b]] + 1
        levels = tuple(np.nonzero(depth == d)[0] for d in range(depth.max() + 1))
        groups = a["phenotype_variation_groups"].tolist()
        anchors = {g: a[f"anchors_{g}"] for g in set(groups) if f"anchors_{g}" in a}
        dev = lambda name, dtype=None: xp.asarray(a[name] if dtype is None else a[name].astype(dtype))  # noqa: E731
        return cls(
            xp=xp,
            template_vertices=dev("template_vertices"),
            faces=dev("faces", np.int32),
            blendshapes=dev("blendshapes"),
            template_heads=dev("template_bone_heads"),
            head_blendshapes=dev("bone_heads_blendshapes"),
            template_orientation=dev("bone_template_orientation_matrices"),
            orientation_blendshapes=dev("bone_orientation_blendshapes"),
            reference_orientations=dev("reference_bone_orientations"),
            bone_weights=dev("vertex_bone_weights"),
            bone_indices=dev("vertex_bone_indices", np.int32),
            keypoint_regressor=dev("keypoint_regressor"),
            parents=parents,
            levels=levels,
            bone_labels=tuple(a["bone_labels"].tolist()),
            keypoint_labels=tuple(a["keypoint_labels"].tolist()),
            phenotype_labels=tuple(a["phenotype_labels"].tolist()),
            local_change_labels=tuple(a["local_change_labels"].tolist()),
            phenotype=dict(
                mask=a["phenotype_mask"],
                projection=a["phenotype_projection"],
                groups=np.array(groups),
                variations=a["phenotype_variations"],
                anchors=anchors,
            ),
        )

    @property
    def n_vertices(self) -> int:
        return int(self.template_vertices.shape[0])

    @property
    def n_bones(self) -> int:
        return len(self.bone_labels)

    @property
    def n_shape(self) -> int:
        return len(self.phenotype_labels) + len(self.local_change_labels)

    def bone(self, label: str) -> int:
        return self.bone_labels.index(label)


def _interpolation(value: float, anchors: np.ndarray):
    """Anny's piecewise-linear weights over `anchors` (clamped) and their slope d weights / d value."""
    n = len(anchors)
    v = float(np.clip(value, anchors[0], anchors[-1]))
    i = int(np.clip(np.searchsorted(anchors, v, side="left"), 1, n - 1))
    gap = anchors[i] - anchors[i - 1]
    w = np.zeros(n)
    dw = np.zeros(n)
    alpha = (v - anchors[i - 1]) / gap
    w[i - 1], w[i] = 1.0 - alpha, alpha
    dw[i - 1], dw[i] = -1.0 / gap, 1.0 / gap
    return w, dw


def shape_coefficients(model: BodyModel, shape: np.ndarray, jacobian: bool = False):
    """Blendshape coefficients of a shape vector.

    Parameters
    ----------
    shape : (S,) float, host array
        Phenotypes (in `model.phenotype_labels` order) then local changes.
    jacobian : bool
        Also return d coefficients / d shape.

    Returns
    -------
    coeffs : (K,) float64 on `model.xp`
    dcoeffs : (K, S) float64 on `model.xp`, only with `jacobian=True`
    """
    ph = model.phenotype
    shape = np.asarray(shape, np.float64)
    n_ph = len(model.phenotype_labels)
    groups = ph["groups"]
    variation_values = np.empty(len(groups))
    variation_slopes = np.zeros((len(groups), n_ph))
    for g in dict.fromkeys(groups.tolist()):
        cols = np.nonzero(groups == g)[0]
        if g == "race":  # not a fitted phenotype: equal mix, as Anny's default
            variation_values[cols] = 1.0 / len(cols)
            continue
        if g in model.phenotype_labels:
            k = model.phenotype_labels.index(g)
            w, dw = _interpolation(shape[k], ph["anchors"][g])
            variation_slopes[cols, k] = dw
        else:
            w, _ = _interpolation(0.5, ph["anchors"][g])
        variation_values[cols] = w
    mask = ph["mask"]
    # Each phenotype blendshape weight is the product of one variation per group it involves.
    factors = variation_values[None, :] * mask + (1.0 - mask)  # (Sv, G)
    weights = np.prod(factors, axis=1)
    coeff_ph = weights @ ph["projection"]
    local = shape[n_ph:]
    coeff_local = np.stack([np.maximum(local, 0.0), np.maximum(-local, 0.0)], 1).reshape(-1)
    xp = model.xp
    coeffs = xp.asarray(np.concatenate([coeff_ph, coeff_local]))
    if not jacobian:
        return coeffs
    dweights = np.zeros((len(weights), n_ph))
    for k, label in enumerate(model.phenotype_labels):
        cols = np.nonzero(groups == label)[0]
        others = factors.copy()
        others[:, cols] = 1.0
        dweights[:, k] = np.prod(others, axis=1) * (mask[:, cols] @ variation_slopes[cols, k])
    dlocal = np.zeros((2 * len(local), len(local)))
    idx = np.arange(len(local))
    dlocal[2 * idx, idx] = (local >= 0).astype(float)
    dlocal[2 * idx + 1, idx] = -(local < 0).astype(float)
    dcoeffs = np.zeros((len(coeff_ph) + len(coeff_local), len(shape)))
    dcoeffs[: len(coeff_ph), :n_ph] = ph["projection"].T @ dweights
    dcoeffs[len(coeff_ph) :, n_ph:] = dlocal
    return coeffs, xp.asarray(dcoeffs)


@dataclasses.dataclass(frozen=True)
class RestShape:
    """A body's shape at rest: vertices (n, 3), bone heads (B, 3), rest orientations (B, 3, 3)."""

    vertices: object
    heads: object
    orientations: object


def rest_shape(model: BodyModel, coeffs, vertex_ids=None) -> RestShape:
    """Rest vertices (all, or `vertex_ids` (n,)), bone heads and rest bone orientations for `coeffs` (K,)."""
    xp = model.xp
    bs = model.blendshapes if vertex_ids is None else model.blendshapes[:, vertex_ids]
    base = model.template_vertices if vertex_ids is None else model.template_vertices[vertex_ids]
    c = coeffs.astype(bs.dtype)
    vertices = base + xp.tensordot(c, bs, axes=(0, 0))
    heads = model.template_heads + xp.tensordot(coeffs, model.head_blendshapes, axes=(0, 0))
    M = model.template_orientation + xp.tensordot(coeffs, model.orientation_blendshapes, axes=(0, 0))
    return RestShape(vertices=vertices, heads=heads, orientations=special_procrustes(M))


@dataclasses.dataclass(frozen=True)
class Posed:
    """Forward kinematics of one body.

    rotations : (B, 3, 3) skinning rotations S_c (rest -> posed)
    translations : (B, 3) skinning translations t_c, so that a rest point x moves to S_c x + t_c
    aligned : (B, 3, 3) posed world-aligned orientations G_c (G_c = G_p D_c)
    heads : (B, 3) posed bone heads w_c
    """

    rotations: object
    translations: object
    aligned: object
    heads: object


def forward_kinematics(model: BodyModel, rest: RestShape, pose, root_translation) -> Posed:
    """Poses the skeleton (Anny's `local-ref` forward kinematics).

    pose : (B, 3, 3) delta rotations D_c; root_translation : (3,) d_0.
    """
    xp = model.xp
    R, h, U = rest.orientations, rest.heads, model.reference_orientations
    parents = model.parents
    par = np.where(parents < 0, 0, parents)
    # A_c = U_c R_c^T takes a bone from its rest to its reference orientation; the root's is taken as I.
    A = U @ xp.swapaxes(R, -1, -2)
    A[0] = xp.eye(3)
    offsets = xp.einsum("bij,bj->bi", A[par], h - h[par])
    G = xp.empty_like(R)
    w = xp.empty_like(h)
    # The root's reference orientation is the identity (checked at conversion), so its delta is
    # its world pose: G_0 = D_0, w_0 = d_0.
    G[0] = pose[0]
    w[0] = root_translation
    for ids in model.levels[1:]:
        p = par[ids]
        G[ids] = G[p] @ pose[ids]
        w[ids] = w[p] + xp.einsum("bij,bj->bi", G[p], offsets[ids])
    S = G @ U @ xp.swapaxes(R, -1, -2)
    t = w - xp.einsum("bij,bj->bi", S, h)
    return Posed(rotations=S, translations=t, aligned=G, heads=w)


def skin(model: BodyModel, rest_vertices, posed: Posed, vertex_ids=None):
    """Linear blend skinning: rest vertices (n, 3) of `vertex_ids` (or all) -> posed (n, 3)."""
    xp = model.xp
    wts = model.bone_weights if vertex_ids is None else model.bone_weights[vertex_ids]
    idx = model.bone_indices if vertex_ids is None else model.bone_indices[vertex_ids]
    wts = wts.astype(rest_vertices.dtype)
    S = posed.rotations.astype(rest_vertices.dtype)
    t = posed.translations.astype(rest_vertices.dtype)
    M = xp.einsum("nj,njab->nab", wts, S[idx])
    m = xp.einsum("nj,nja->na", wts, t[idx])
    return xp.einsum("nab,nb->na", M, rest_vertices) + m


def identity_pose(model: BodyModel):
    """(B, 3, 3) identity deltas: Anny's reference pose."""
    xp = model.xp
    return xp.broadcast_to(xp.eye(3), (model.n_bones, 3, 3)).copy()


def body_vertices(model: BodyModel, shape, pose=None, root_translation=None):
    """Posed vertices (V, 3) for a shape (S,), pose (B, 3, 3) and root translation (3,)."""
    xp = model.xp
    rest = rest_shape(model, shape_coefficients(model, shape))
    pose = identity_pose(model) if pose is None else pose
    root_translation = xp.zeros(3) if root_translation is None else xp.asarray(root_translation)
    return skin(model, rest.vertices, forward_kinematics(model, rest, pose, root_translation))
