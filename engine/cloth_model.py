"""The cloth's static model and its state, in the Model / State shape of NVIDIA Warp and Newton.

`ClothModel` holds everything that does not change during a drape: rest geometry as per-triangle
deformation-gradient operators, masses, stiffness weights, the attachment targets. `ClothState`
is only arrays (positions, velocities). Both live on the backend of the model's `xp`.

The material frame of each triangle: warp is the world's up direction (+Y) projected onto the
triangle (a garment's grain runs down the body), weft is the normal crossed with it. A triangle
lying flat (|normal . up| > 0.97: shoulders, a horizontal test cloth) takes +Z for its warp.
"""

from __future__ import annotations

import dataclasses
import functools
from types import ModuleType

import numpy as np

from engine.backend import to_numpy
from engine.cloth_topology import boundary_vertices, cotangent_laplacian, vertex_areas
from engine.mesh_queries import vertex_neighbours
from engine.fabrics import Fabric


@dataclasses.dataclass
class ClothState:
    """positions (N, 3) m and velocities (N, 3) m/s."""

    positions: object
    velocities: object

    def copy(self) -> "ClothState":
        return ClothState(self.positions.copy(), self.velocities.copy())


@dataclasses.dataclass
class ClothModel:
    """A garment's static simulation data (arrays on `xp`'s device).

    rest_positions : (N, 3) the authored shape (m); its edge lengths are the fabric's rest.
    faces : (F, 3) int.
    grad_warp, grad_weft : (F, 3) the deformation gradient's warp and weft columns as weights of
        the triangle's three vertices: F_warp = sum_k grad_warp[:, k] x[faces[:, k]].
    rest_area : (F,) m^2. vertex_area : (N,) m^2. mass : (N,) kg.
    stretch_warp, stretch_weft, shear : (F,) PD weights (N*m): stiffness times rest area (shear
        twice that, see `cloth_solver`).
    bending_rows, bending_cols, bending_values : COO triplets of the bending matrix
        B L^T diag(1/A) L (N/m) over interior vertices (L: cotangent Laplacian, A: mixed areas): the quadratic
        bending energy of a fabric that is flat at rest (Bergou et al. 2006, Bouaziz et al. 2014).
    attached : (N,) bool; attach_targets : (N, 3) m, where attached vertices are held.
    """

    xp: ModuleType
    fabric: Fabric
    rest_positions: object
    faces: object
    grad_warp: object
    grad_weft: object
    rest_area: object
    vertex_area: object
    mass: object
    stretch_warp: object
    stretch_weft: object
    shear: object
    bending_rows: np.ndarray
    bending_cols: np.ndarray
    bending_values: np.ndarray
    attached: object
    attach_targets: object

    @property
    def n_vertices(self) -> int:
        return int(self.rest_positions.shape[0])

    @functools.cached_property
    def neighbours(self):
        """(N, max degree) int: each vertex's edge neighbours, -1 padded, on the model's device
        (built on first use: self-contact and contact pressure both need it)."""
        return self.xp.asarray(vertex_neighbours(to_numpy(self.faces), self.n_vertices))

    def initial_state(self, positions=None) -> ClothState:
        """A state at rest: the given positions (N, 3) or the rest shape, zero velocity."""
        xp = self.xp
        x = self.rest_positions if positions is None else xp.asarray(positions, dtype=xp.float64)
        return ClothState(x.copy(), xp.zeros_like(x))


def deformation_columns(model: ClothModel, x):
    """The deformation gradient's warp and weft columns (F, 3) each, at positions x (N, 3)."""
    xp = model.xp
    p = x[model.faces]  # (F, 3, 3)
    return xp.einsum("fk,fkd->fd", model.grad_warp, p), xp.einsum("fk,fkd->fd", model.grad_weft, p)


def material_frames(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit warp and weft directions (F, 3) of triangles p (F, 3, 3)."""
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    up = np.where(np.abs(n[:, 1:2]) > 0.97, np.array([[0.0, 0.0, 1.0]]), np.array([[0.0, 1.0, 0.0]]))
    warp = up - (up * n).sum(1, keepdims=True) * n
    warp /= np.maximum(np.linalg.norm(warp, axis=1, keepdims=True), 1e-30)
    return warp, np.cross(n, warp)


def deformation_operators(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grad_warp (F, 3), grad_weft (F, 3), rest area (F,)) of rest triangles p (F, 3, 3).

    With Dm the triangle's edges (b - a, c - a) in its material frame, F = [x_b - x_a, x_c - x_a]
    Dm^-1, so each column of F is a fixed linear combination of the three vertex positions.
    """
    warp, weft = material_frames(p)
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    dm = np.stack([np.stack([(e1 * warp).sum(1), (e2 * warp).sum(1)], 1),
                   np.stack([(e1 * weft).sum(1), (e2 * weft).sum(1)], 1)], 1)  # (F, 2, 2) rows: axes
    det = dm[:, 0, 0] * dm[:, 1, 1] - dm[:, 0, 1] * dm[:, 1, 0]
    det = np.where(np.abs(det) < 1e-20, 1e-20, det)
    inv = np.stack([np.stack([dm[:, 1, 1], -dm[:, 0, 1]], 1), np.stack([-dm[:, 1, 0], dm[:, 0, 0]], 1)], 1) / det[:, None, None]
    grad_warp = np.stack([-inv[:, 0, 0] - inv[:, 1, 0], inv[:, 0, 0], inv[:, 1, 0]], 1)
    grad_weft = np.stack([-inv[:, 0, 1] - inv[:, 1, 1], inv[:, 0, 1], inv[:, 1, 1]], 1)
    return grad_warp, grad_weft, 0.5 * np.abs(det)


def bending_matrix(vertices: np.ndarray, faces: np.ndarray, rigidity: float):
    """COO triplets of rigidity * L^T diag(1/A) L over interior rows (see ClothModel)."""
    import scipy.sparse as sp

    rows, cols, vals, area = cotangent_laplacian(vertices, faces)
    n = len(vertices)
    L = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    interior = ~boundary_vertices(faces, n)
    scale = np.where(interior, 1.0 / np.maximum(area, 1e-12), 0.0)
    K = (L.T @ sp.diags(scale) @ L).tocoo() * rigidity
    return K.row.astype(np.int64), K.col.astype(np.int64), K.data


def build_cloth_model(vertices, faces, fabric: Fabric, attached=None, xp: ModuleType = np) -> ClothModel:
    """The model of a clean garment mesh (see `cloth_topology.clean_mesh`).

    vertices : (N, 3) rest positions (m); faces : (F, 3) int; attached : (N,) bool or None.
    """
    v = np.asarray(to_numpy(vertices), np.float64)  # built on the host: inputs on either backend
    f = np.asarray(to_numpy(faces), np.int64)
    p = v[f]
    grad_warp, grad_weft, area = deformation_operators(p)
    vertex_area = vertex_areas(f, area, len(v))
    att = np.zeros(len(v), bool) if attached is None else np.array(to_numpy(attached), bool)
    br, bc, bv = bending_matrix(v, f, fabric.bending)
    to = xp.asarray
    return ClothModel(
        xp=xp,
        fabric=fabric,
        rest_positions=to(v),
        faces=to(f),
        grad_warp=to(grad_warp),
        grad_weft=to(grad_weft),
        rest_area=to(area),
        vertex_area=to(vertex_area),
        mass=to(fabric.density * np.maximum(vertex_area, 1e-12)),
        stretch_warp=to(fabric.stretch_warp * area),
        stretch_weft=to(fabric.stretch_weft * area),
        shear=to(2.0 * fabric.shear * area),
        bending_rows=br,
        bending_cols=bc,
        bending_values=bv,
        attached=to(att),
        attach_targets=to(v.copy()),
    )
