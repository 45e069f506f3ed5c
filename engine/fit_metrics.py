"""How a draped garment fits: strain, contact pressure, penetration and ease.

Strain follows CLO's strain map: 100 % is the fabric at rest, 110 % stretched by a tenth. It is
the larger principal stretch of each triangle's deformation gradient, averaged onto vertices by
area. Pressure is the body's push on each vertex over the vertex's area: `contact_pressure_kpa`
finds it from the settled garment's static equilibrium (the solver's own record of its
projections, `ClothSolver.last_contact_force`, misses the contact hold springs that carry most of
the load and read ~1000 times low). (Ease, a girth difference, is measured on the garment's
sections: see `assets.procedural_garments.garment_girths`.)
"""

from __future__ import annotations

from engine.backend import array_namespace, rowdot, scatter_add
from engine.cloth_model import deformation_columns
from engine.cloth_solver import GRAVITY, membrane_spread, membrane_targets
from engine.cloth_topology import triangle_areas, vertex_areas
from engine.mesh_queries import face_sums_on_vertices


def triangle_stretch(model, x):
    """Principal stretches (F, 2) (largest first) and the warp and weft stretches (F, 2)."""
    xp = array_namespace(x)
    fu, fv = deformation_columns(model, x)
    a, b, c = (fu * fu).sum(1), (fu * fv).sum(1), (fv * fv).sum(1)
    # Eigenvalues of the 2x2 right Cauchy-Green tensor [[a, b], [b, c]].
    mean, dev = 0.5 * (a + c), xp.sqrt(0.25 * (a - c) ** 2 + b * b)
    principal = xp.sqrt(xp.maximum(xp.stack([mean + dev, mean - dev], 1), 0.0))
    return principal, xp.sqrt(xp.stack([a, c], 1))


def vertex_average(values, faces, weights, n_vertices: int):
    """Per-vertex weighted mean (N,) of per-triangle values (F,)."""
    xp = array_namespace(values)
    num = face_sums_on_vertices(faces, values * weights, n_vertices)
    den = face_sums_on_vertices(faces, weights, n_vertices)
    return num / xp.maximum(den, 1e-30)


def strain_percent(model, x):
    """Per-vertex strain (N,) in percent (100 = at rest) of a `ClothModel` at positions x."""
    principal, _ = triangle_stretch(model, x)
    return 100.0 * vertex_average(principal[:, 0], model.faces, model.rest_area, model.n_vertices)


def penetration_mm(signed_distance):
    """Depth (N,) in mm of points inside a body, from signed distances (N,) m (positive outside)."""
    xp = array_namespace(signed_distance)
    return 1000.0 * xp.maximum(-signed_distance, 0.0)


def elastic_force(model, x, slack: float = 0.05):
    """The fabric's internal force (N, 3) N on each vertex at positions x (N, 3) m: membrane
    (stretch, shear) and bending, as the solver's global step sees them.

    The membrane energy is sum over columns of w/2 |S^T x - p(x)|^2 (S: `membrane_spread`, S^T x
    the deformation columns, p the local step's projection, w the column's stretch plus shear
    weight), so its force is S (targets - w S^T x) = S [tu; tv] - S diag(w) S^T x: the membrane
    part of `system_matrix` applied without assembling it (and on the model's device; a test
    checks the two agree). Bending adds -B x (B: model.bending_rows/cols/values). At a fixed
    point of the local/global passes this force plus the weight is what the contacts and
    attachments balance. `slack` must be the solver's compression_slack.
    """
    xp = model.xp
    tu, tv = membrane_targets(model, x, slack)
    fu, fv = deformation_columns(model, x)
    ru = tu - (model.stretch_warp + model.shear)[:, None] * fu
    rv = tv - (model.stretch_weft + model.shear)[:, None] * fv
    force = membrane_spread(model) @ xp.concatenate([ru, rv])
    rows, cols = xp.asarray(model.bending_rows), xp.asarray(model.bending_cols)
    scatter_add(force, rows, -xp.asarray(model.bending_values)[:, None] * x[cols])
    return force


def normal_support(model, x, normal, gravity=GRAVITY, slack: float = 0.05):
    """The support (N,) N each vertex of a garment at rest at positions x (N, 3) m needs along the
    body's outward unit normal (N, 3): positive where the body must push, negative where it would
    have to pull. gravity : m/s^2; slack : the solver's compression_slack.

    At rest every vertex is in equilibrium: internal force f + weight m g + support = 0, so the
    support is -(f + m g). The solver carries most of it with the contact hold springs inside the
    global step, which `ClothSolver.last_contact_force` (the projections) does not see. Only the
    normal part is the body's push; the tangential rest is friction.
    """
    xp = model.xp
    support = -(elastic_force(model, x, slack) + model.mass[:, None] * xp.asarray(gravity, dtype=xp.float64))
    return rowdot(support, xp.asarray(normal, dtype=xp.float64))


def contact_force(model, x, normal, touching, gravity=GRAVITY, slack: float = 0.05):
    """The body's push (N,) N on each vertex: `normal_support` (same arguments) clipped at 0 (a
    body only pushes) on the `touching` (N,) bool vertices, 0 elsewhere.

    Attached vertices count like any other: in a drape they are the vertices lying on the tops of
    the shoulders (or a waistband on the waist), whose attachment springs stand in for the body
    holding them; only the normal part of their support is taken, so a waistband's hanging load
    (along the skin) is not read as pressure. Mask them out of `touching` for attachments that are
    not on the body. Exact at equilibrium (a stretched tube on a cylinder gives Laplace's T/r).
    """
    xp = model.xp
    return xp.where(xp.asarray(touching, dtype=bool), xp.maximum(normal_support(model, x, normal, gravity, slack), 0.0), 0.0)


def contact_pressure_kpa(model, x, normal, touching, gravity=GRAVITY, slack: float = 0.05):
    """Contact pressure (N,) kPa of a garment at rest at positions x (N, 3) m on a body, on its
    `touching` (N,) bool vertices (0 elsewhere): the normal support (`normal_support`) of each
    touching vertex and its touching edge neighbours over their deformed area, clipped at 0.

    Deformed area, not rest area: the push of a stretched tube on a cylinder is T/r per unit of
    the area it covers now (Laplace's law); over rest area it would read (1 + strain) times high.
    Over a ring of neighbours, because a drape stopped by the settle thresholds is not quite at
    rest: the global step's residual, which the equilibrium reads as force, is left over where the
    passes have not converged (a tight neckline), and alternates in sign between neighbours. An
    XS t-shirt on an L body: per vertex p95 3.6 kPa at 10k vertices; over rings 2.1-2.2 kPa at 10k
    and 1.65 kPa at 3k (docs/cloth.md), against about 1.4 kPa from Laplace's law with the chest's
    strain. A uniform pressure is unchanged.
    """
    xp = model.xp
    touching = xp.asarray(touching, dtype=bool)
    push = xp.where(touching, normal_support(model, x, normal, gravity, slack), 0.0)
    area = xp.where(touching, vertex_areas(model.faces, triangle_areas(x, model.faces), model.n_vertices), 0.0)
    ring = xp.concatenate([xp.arange(model.n_vertices)[:, None], model.neighbours], 1)  # each vertex and its neighbours
    valid = ring >= 0
    ring = xp.where(valid, ring, 0)
    total_push, total_area = (push[ring] * valid).sum(1), (area[ring] * valid).sum(1)
    mean = xp.where(touching, total_push / xp.maximum(total_area, 1e-30), 0.0)
    return xp.maximum(mean, 0.0) / 1000.0
