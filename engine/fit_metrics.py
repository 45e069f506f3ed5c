"""How a draped garment fits: strain, contact pressure, penetration and ease.

Strain follows CLO's strain map: 100 % is the fabric at rest, 110 % stretched by a tenth. It is
the larger principal stretch of each triangle's deformation gradient, averaged onto vertices by
area. Pressure is the contact force the solver applied to keep each vertex on the skin, over the
vertex's area. (Ease, a girth difference, is measured on the garment's sections: see
`assets.procedural_garments.garment_girths`.)
"""

from __future__ import annotations

from engine.backend import array_namespace
from engine.cloth_model import deformation_columns


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
    num = xp.zeros(n_vertices)
    den = xp.zeros(n_vertices)
    for k in range(3):
        num += xp.bincount(faces[:, k], weights=values * weights, minlength=n_vertices)
        den += xp.bincount(faces[:, k], weights=weights, minlength=n_vertices)
    return num / xp.maximum(den, 1e-30)


def strain_percent(model, x):
    """Per-vertex strain (N,) in percent (100 = at rest) of a `ClothModel` at positions x."""
    principal, _ = triangle_stretch(model, x)
    return 100.0 * vertex_average(principal[:, 0], model.faces, model.rest_area, model.n_vertices)


def pressure_kpa(contact_force, vertex_area):
    """Contact pressure (N,) kPa from per-vertex contact force magnitudes (N,) N and areas (N,) m^2."""
    xp = array_namespace(contact_force)
    return contact_force / xp.maximum(vertex_area, 1e-12) / 1000.0


def penetration_mm(signed_distance):
    """Depth (N,) in mm of points inside a body, from signed distances (N,) m (positive outside)."""
    xp = array_namespace(signed_distance)
    return 1000.0 * xp.maximum(-signed_distance, 0.0)
