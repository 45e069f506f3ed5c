"""NVIDIA Newton as a peer for fitroom's cloth benchmarks: the same meshes and fabric, run by Newton's
cloth solvers (VBD, XPBD, Style3D), so fitroom's own solver can be compared against them.

Frame and units: metres, seconds, kilograms; +Y up, gravity (0, -9.81, 0); the body faces +Z.
Fabric constants come from `engine.fabrics.Fabric` (membrane stiffnesses in N/m, bending rigidity in
N*m, areal density in kg/m^2). How they become Newton's per-triangle / per-edge parameters is written
out in `newton_cloth_parameters` below; the short version:

    solver    membrane (stretch, shear)                          bending (per interior edge)
    style3d   anisotropic Baraff-Witkin: (weft, warp, shear) exact   isometric (Bergou): k = B/3
    vbd       isotropic Neo-Hookean: mu = shear, lambda fitted      dihedral: ke = B|e|/(A1+A2)
    xpbd      springs on mesh edges (Van Gelder), isotropic         dihedral: ke = B|e|^2/(A1+A2)^2

All three collide the cloth's vertices (spheres of radius max(thickness, 1 mm)) with a static
triangle mesh or sphere through Newton's CollisionPipeline, with Coulomb friction = fabric.friction,
and hold pinned vertices (mass 0). What each cannot do is listed in CAPABILITIES. Checks made while
writing this: a 1 m cotton-jersey strip hanging from one edge stretches 6.55 / 13.1 mm in Style3D
with the warp / weft vertical (analytic 6.5 / 13); a clamped 6x3-vertex cantilever (B = 0.01 N*m)
tips down 21.8 mm in VBD (100 iterations) and Style3D, 22.3 mm in XPBD (80 substeps), so the three
bending mappings agree; with 10 iterations VBD sags 1.4x (that mesh) to 4x (11x5 mesh) more, being
under-converged, not softer.
Newton's XPBD diverged on curved cloth at 10 substeps (see _check_xpbd_stiffness).

Timings cover the stepping only (collision detection + solve), warp-synchronised, after a warm-up
substep on throwaway states that compiles the kernels (reported as `compile_seconds`; model
building, including coloring and Style3D's matrix precompute, is `build_seconds`).

    python bench/newton_peer.py            # runs each benchmark once per solver on CPU, prints JSON
    python bench/newton_peer.py --device cuda:0
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import time

import numpy as np

import warp as wp

# Warp logs every module load at INFO level; compile time is reported in the results instead.
wp.config.quiet = True
wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)

import newton  # noqa: E402
from newton.solvers import style3d as newton_style3d  # noqa: E402

from engine.cloth_scenes import square_cloth as engine_square_cloth  # noqa: E402
from engine.fabrics import Fabric, fabric_preset  # noqa: E402
from engine.mesh_queries import closest_point_on_triangles  # noqa: E402

SOLVERS = ("vbd", "xpbd", "style3d")

# What each Newton solver does with this benchmark's scenes (also printed by the demo).
CAPABILITIES = {
    "vbd": {
        "membrane": "isotropic stable Neo-Hookean triangles (anisotropy not representable)",
        "bending": "dihedral angle per edge", "damping": "Rayleigh on triangles and edges",
        "body_mesh_collision": "yes: vertex vs static triangle mesh (penalty)", "friction": "yes, Coulomb",
        "pins": "yes, mass 0", "self_contact": "optional (vertex-triangle, edge-edge)",
        "caveat": "10 iterations leave bending-dominated statics under-converged (looks softer)",
    },
    "xpbd": {
        "membrane": "none from triangles (XPBD ignores them): springs on mesh edges, isotropic nu=1/3",
        "bending": "dihedral constraint per edge (approximate gradients)",
        "damping": "none (constraint damping made the Jacobi solve unstable)",
        "body_mesh_collision": "yes: vertex vs static triangle mesh (hard constraint)",
        "friction": "yes, Coulomb", "pins": "yes, mass 0", "self_contact": "vertex-vertex spheres only",
        "caveat": "Jacobi spring sums diverge on curved cloth when k dt^2 (1/mi+1/mj) > ~1: more substeps",
    },
    "style3d": {
        "membrane": "anisotropic Baraff-Witkin: warp, weft, shear exactly",
        "bending": "isometric quadratic (Bergou), constant matrix", "damping": "none (implicit Euler only)",
        "body_mesh_collision": "yes: vertex vs static triangle mesh (penalty)", "friction": "yes, Coulomb",
        "pins": "yes, mass 0 (solver deactivates the particle)",
        "self_contact": "built in; switched off here unless self_contact=True",
        "caveat": "needs a 2D pattern: each triangle is flattened on its own, grain from warp_axis",
    },
}
GRAVITY = (0.0, -9.81, 0.0)

# Numerical choices that are not fabric constants (fitroom's Fabric has no damping field).
RAYLEIGH_BETA_S = 1.0e-2  # s, stiffness-proportional damping: kd = beta * ke (VBD triangles and edges)
CONTACT_KE = 1.0e4  # N/m per contact, penalty stiffness (VBD, Style3D); XPBD contacts are hard constraints
CONTACT_KD = 1.0e-2  # N*s/m per contact, normal damping of approaching vertices (VBD, Style3D)
CONTACT_GAP = 1.0e-2  # m, extra detection distance beyond the contact radius (CollisionPipeline)
MIN_CONTACT_RADIUS = 1.0e-3  # m, floor on the vertex contact radius (thin silks are 0.2 mm thick)
DIVERGED_SPEED = 100.0  # m/s: no draping cloth moves this fast; the run has blown up
MAX_POISSON = 0.9  # cap on the fitted isotropic Poisson ratio (2D membranes allow < 1)


# ----------------------------------------------------------------------------------------------------
# Meshes
# ----------------------------------------------------------------------------------------------------


def square_cloth(n: int = 32, size_m: float = 1.0, height_m: float = 1.0):
    """`engine.cloth_scenes.square_cloth` (the mesh fitroom's own scenes use) with the pinned
    corners of this benchmark: (vertices (n*n, 3), faces, pinned (n*n,) bool, the two corners
    of the z = -size/2 edge)."""
    vertices, faces = engine_square_cloth(n, size_m, height_m)
    pinned = np.zeros(n * n, dtype=bool)
    pinned[[0, (n - 1) * n]] = True  # (x, z) = (-s/2, -s/2) and (+s/2, -s/2)
    return vertices, faces, pinned


def capsule_mesh(radius=0.12, y0=0.5, y1=1.3, n_around=32, n_cap=8, n_side=16):
    """A closed, outward-wound capsule along +Y (cylinder from y0 to y1 plus hemispherical caps).

    Returns (vertices (V, 3), faces (G, 3)). A stand-in body for the drape demo.
    """
    rings = []  # (y, r) from bottom pole to top pole, poles excluded
    for k in range(1, n_cap + 1):  # bottom hemisphere
        a = -0.5 * math.pi + 0.5 * math.pi * k / n_cap
        rings.append((y0 + radius * math.sin(a), radius * math.cos(a)))
    for k in range(1, n_side):
        rings.append((y0 + (y1 - y0) * k / n_side, radius))
    for k in range(0, n_cap):  # top hemisphere
        a = 0.5 * math.pi * k / n_cap
        rings.append((y1 + radius * math.sin(a), radius * math.cos(a)))
    return _surface_of_revolution(rings, (y0 - radius), (y1 + radius), n_around)


def _surface_of_revolution(rings, y_bottom, y_top, n_around):
    """Closed mesh from rings (y, r) plus a bottom and a top pole; faces wound outward."""
    t = np.linspace(0.0, 2.0 * math.pi, n_around, endpoint=False)
    verts = [(0.0, y_bottom, 0.0)]
    for y, r in rings:
        verts += [(r * math.sin(a), y, r * math.cos(a)) for a in t]
    verts.append((0.0, y_top, 0.0))
    faces = []
    top = len(verts) - 1

    def ring(k, i):
        return 1 + k * n_around + (i % n_around)

    for i in range(n_around):
        faces.append((0, ring(0, i + 1), ring(0, i)))
    for k in range(len(rings) - 1):
        for i in range(n_around):
            a, b, c, d = ring(k, i), ring(k, i + 1), ring(k + 1, i), ring(k + 1, i + 1)
            faces += [(a, b, d), (a, d, c)]
    k = len(rings) - 1
    for i in range(n_around):
        faces.append((top, ring(k, i), ring(k, i + 1)))
    v, f = np.asarray(verts, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    # Wind outward whatever the angle convention: flip if the signed volume is negative.
    if _signed_volume(v, f) < 0:
        f = f[:, [0, 2, 1]]
    return v, f


def _signed_volume(v, f):
    return float(np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6.0)


def sack_garment(radius=0.15, y_top=1.46, length=0.45, n_around=32, n_rings=12):
    """An open-bottomed tube with a flat closed top (a sack), to drape over `capsule_mesh`.

    The top disc is made of rings of 8, 16, 32 ... vertices (doubling outward) so that no vertex has
    more than 8 neighbours: a single fan centre with n_around triangles makes XPBD's Jacobi
    constraint sums overshoot and diverge. `n_around` must be 8 * 2^k.
    Returns (vertices (N, 3), faces (F, 3)), normals outward (+Y on the top disc).
    """
    counts = [8]
    while counts[-1] < n_around:
        counts.append(2 * counts[-1])
    if counts[-1] != n_around:
        raise ValueError("sack_garment needs n_around = 8 * 2^k")
    rings = [(radius * (k + 1) / len(counts), y_top, m) for k, m in enumerate(counts)]  # (r, y, count)
    rings += [(radius, y_top - length * k / n_rings, n_around) for k in range(1, n_rings + 1)]
    verts, starts = [(0.0, y_top, 0.0)], []
    for r, y, m in rings:
        starts.append(len(verts))
        verts += [(r * math.sin(2 * math.pi * i / m), y, r * math.cos(2 * math.pi * i / m)) for i in range(m)]
    faces = [(0, starts[0] + i, starts[0] + (i + 1) % 8) for i in range(8)]
    for k in range(len(rings) - 1):
        a0, m0, b0, m1 = starts[k], rings[k][2], starts[k + 1], rings[k + 1][2]
        for i in range(m0):
            if m1 == m0:  # quad strip
                a, b, c, d = a0 + i, a0 + (i + 1) % m0, b0 + i, b0 + (i + 1) % m1
                faces += [(a, c, d), (a, d, b)]
            else:  # inner vertex i faces outer vertices 2i, 2i+1, 2i+2
                a, b = a0 + i, a0 + (i + 1) % m0
                c, d, e = b0 + 2 * i, b0 + 2 * i + 1, b0 + (2 * i + 2) % m1
                faces += [(a, c, d), (a, d, b), (b, d, e)]
    v, f = np.asarray(verts, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    n0 = np.cross(v[f[0, 1]] - v[f[0, 0]], v[f[0, 2]] - v[f[0, 0]])
    if n0[1] < 0:  # orient the top disc up, hence the tube outward
        f = f[:, [0, 2, 1]]
    return v, f


# ----------------------------------------------------------------------------------------------------
# Fabric -> Newton parameters
# ----------------------------------------------------------------------------------------------------


def _triangle_areas(v, f):
    return 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)


def isotropic_membrane(fabric: Fabric, fit: str = "shear"):
    """Lamé parameters (mu, lambda) in N/m of the isotropic 2D membrane that stands in for `fabric`.

    Newton's VBD triangles (and XPBD's spring network) are isotropic, fabrics are not: a woven's
    stretch stiffness is 10-20x its shear stiffness, which no isotropic material can have (its
    Young's modulus is E = 2 mu (1 + nu) < 4 mu). fit="shear" (default) keeps the in-plane shear
    exact, mu = fabric.shear (shear is what lets cloth fold around a doubly-curved body), and picks
    nu so E comes as close as possible to the mean of warp and weft stretch (nu capped at 0.9, so
    E <= 3.8 mu: every preset but jersey ends up softer in stretch than the real fabric; gravity
    strains stay ~1 % for the presets). fit="stretch" matches E = mean stretch with nu = 0.3 and
    lets shear come out too stiff (mu = E / 2.6). Returns (mu, lam, E_effective, nu).
    """
    e_target = 0.5 * (fabric.stretch_warp + fabric.stretch_weft)
    if fit == "shear" and fabric.shear <= 0.0:
        fit = "stretch"  # a fabric without shear stiffness would leave VBD without a membrane
    if fit == "shear":
        mu = fabric.shear
        nu = min(max(e_target / (2.0 * mu) - 1.0, 0.0), MAX_POISSON)
    elif fit == "stretch":
        nu = 0.3
        mu = e_target / (2.0 * (1.0 + nu))
    else:
        raise ValueError(f"membrane fit must be 'shear' or 'stretch', not {fit!r}")
    # Plane-stress 2D Lamé lambda: E nu / (1 - nu^2) = 2 mu nu / (1 - nu).
    lam = 2.0 * mu * nu / (1.0 - nu)
    return mu, lam, 2.0 * mu * (1.0 + nu), nu


def _interior_edges(builder, start_edge, end_edge, positions):
    """(edge ids, |e|, A1 + A2) of the builder's bending edges in [start, end) that have two faces."""
    idx = np.asarray(builder.edge_indices[start_edge:end_edge], dtype=np.int64).reshape(-1, 4)
    interior = (idx[:, 0] >= 0) & (idx[:, 1] >= 0)
    e = idx[interior]
    x0, x1, x2, x3 = (positions[e[:, k]] for k in range(4))
    length = np.linalg.norm(x3 - x2, axis=1)
    a1 = 0.5 * np.linalg.norm(np.cross(x2 - x0, x3 - x0), axis=1)
    a2 = 0.5 * np.linalg.norm(np.cross(x2 - x1, x3 - x1), axis=1)
    return start_edge + np.nonzero(interior)[0], length, a1 + a2


def newton_cloth_parameters(fabric: Fabric, solver: str, membrane_fit: str = "shear") -> dict:
    """The scalar part of the mapping, for the record (per-edge values depend on the mesh).

    Membrane:
      style3d  tri_aniso_ke = (weft, warp, shear) N/m. Style3D's Baraff-Witkin energy per rest area
               is 1/2 ku (|Fu|-1)^2 + 1/2 kv (|Fv|-1)^2 + 1/2 ks (Fu.Fv)^2 with u, v the panel axes:
               ku, kv are exactly membrane stiffnesses (stress per strain, N/m) and Fu.Fv ~ shear angle,
               so ks is the shear stiffness in N/m per rad. Panel axes: v = warp (see _panel_frames).
      vbd      tri_ke = mu, tri_ka = lambda (N/m). VBD's stable Neo-Hookean membrane is
               psi = mu/2 (I_C - 2) + (lambda+mu)/2 (J - alpha)^2 per rest area, which linearises to
               plane-stress elasticity with Lamé (mu, lambda); mu is the shear modulus x thickness.
      xpbd     XPBD ignores triangle elements; the membrane is a spring on every mesh edge with the
               Van Gelder (1998) stiffness k_e = E * (sum of the adjacent rest triangle areas) / |e|^2
               (N/m), which reproduces a 2D Young's modulus E with nu = 1/3 on regular meshes. Shear
               is then fixed at 3E/8, so E = min(mean stretch, 8/3 shear) keeps shear exact (shear fit).
    Bending (B = fabric.bending, N*m), calibrated so that a cylinder of curvature k stores
    1/2 B k^2 per unit area (checked numerically on regular and equilateral meshes):
      vbd      edge_ke_e = B |e| / (A1 + A2) [N]: VBD's edge energy is 1/2 edge_ke |e| (theta - theta0)^2.
      xpbd     edge_ke_e = B |e|^2 / (A1 + A2)^2 [N/m]: XPBD's constraint is C = theta with compliance
               1/edge_ke but uses gradients 2A * dtheta/dx, so its effective stiffness is 2A edge_ke.
      style3d  edge_ke = B / 3: Style3D's isometric energy 1/2 k x^T (3/(A1+A2)) w w^T x integrates to
               3 x 1/2 k k^2 per area on a cylinder.
    Damping: VBD kd = RAYLEIGH_BETA_S * ke on triangles and edges. XPBD none: its constraint damping
    (gamma = kd / (ke dt)) drove the Jacobi-summed springs unstable at beta = 1e-2 s (gamma = 6 at
    600 Hz); XPBD damps numerically through its finite iterations. Style3D has no damping term
    (implicit Euler dissipates). Optional `air_damping` (1/s, all solvers) scales every velocity by
    exp(-air_damping dt) each substep, a linear air drag so that swinging cloth can come to rest.
    Mass: density x one third of each adjacent rest triangle area, lumped on vertices (Newton's own
    add_cloth_mesh rule). Contact: vertex radius = max(thickness, 1 mm) so the cloth's mid-surface sits
    half a thickness plus a half-thickness gap off the skin; friction mu on both the cloth and the
    collider, so every solver's mixing rule (mean, geometric mean) gives exactly fabric.friction.
    """
    out = {"solver": solver, "density_kg_m2": fabric.density, "friction": fabric.friction,
           "contact_radius_m": max(fabric.thickness, MIN_CONTACT_RADIUS)}
    e_mean = 0.5 * (fabric.stretch_warp + fabric.stretch_weft)
    if solver == "style3d":
        out.update(tri_aniso_ke=[fabric.stretch_weft, fabric.stretch_warp, fabric.shear],
                   edge_ke=fabric.bending / 3.0)
    elif solver == "vbd":
        mu, lam, e_eff, nu = isotropic_membrane(fabric, membrane_fit)
        out.update(tri_ke=mu, tri_ka=lam, tri_kd=RAYLEIGH_BETA_S * mu, effective_E=e_eff, effective_nu=nu,
                   target_E=e_mean, edge_ke="B*|e|/(A1+A2)")
    elif solver == "xpbd":
        shear_fit = membrane_fit == "shear" and fabric.shear > 0.0
        e_spring = min(e_mean, 8.0 / 3.0 * fabric.shear) if shear_fit else e_mean
        out.update(spring_E=e_spring, effective_shear=3.0 * e_spring / 8.0, target_E=e_mean,
                   spring_ke="E*(A1+A2)/|e|^2", edge_ke="B*|e|^2/(A1+A2)^2")
    else:
        raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
    return out


def _panel_frames(v, f, warp_axis):
    """Per-triangle isometric 2D rest coordinates (3F, 2) with v = warp, u = weft, det > 0.

    Style3D needs a 2D pattern ("panel") to know the grain. Each triangle is flattened on its own
    (panel indices 3t, 3t+1, 3t+2), so the rest shape is exactly the given 3D triangle. The warp is
    `warp_axis` projected into the triangle's plane; where the triangle is nearly perpendicular to it
    (e.g. a shoulder top when the warp is vertical) the warp falls back to the +Z (front-back) axis.
    u = v x n, so u x v = n and the counter-clockwise winding survives (Newton drops det <= 0).
    """
    p0, p1, p2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = np.cross(p1 - p0, p2 - p0)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    ref = np.broadcast_to(np.asarray(warp_axis, dtype=np.float64), n.shape).copy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    alt = np.array([0.0, 0.0, 1.0]) if abs(ref[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    parallel = np.abs(np.einsum("ij,ij->i", ref, n)) > 0.95
    ref[parallel] = alt
    warp = ref - np.einsum("ij,ij->i", ref, n)[:, None] * n
    warp /= np.linalg.norm(warp, axis=1, keepdims=True)
    weft = np.cross(warp, n)
    panel = np.empty((len(f), 3, 2))
    for k, p in enumerate((p0, p1, p2)):
        d = p - p0
        panel[:, k, 0] = np.einsum("ij,ij->i", d, weft)
        panel[:, k, 1] = np.einsum("ij,ij->i", d, warp)
    return panel.reshape(-1, 2)


# ----------------------------------------------------------------------------------------------------
# Scene assembly
# ----------------------------------------------------------------------------------------------------


def _add_cloth(builder, solver, vertices, faces, fabric, pinned, warp_axis, membrane_fit):
    """Add the cloth to `builder` with the fabric mapped per `newton_cloth_parameters`.

    Returns the particle index range (start, end)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    params = newton_cloth_parameters(fabric, solver, membrane_fit)
    radius = params["contact_radius_m"]
    p_start, e_start = builder.particle_count, len(builder.edge_indices)
    common = dict(pos=wp.vec3(0.0, 0.0, 0.0), rot=wp.quat_identity(), vel=wp.vec3(0.0, 0.0, 0.0),
                  vertices=v.tolist(), indices=f.ravel().tolist(), density=fabric.density,
                  particle_radius=radius)
    if solver == "style3d":
        panel = _panel_frames(v, f, warp_axis)
        newton_style3d.add_cloth_mesh(builder, **common, scale=1.0, panel_verts=panel.tolist(),
                                      panel_indices=np.arange(3 * len(f)).tolist(),
                                      tri_aniso_ke=wp.vec3(*params["tri_aniso_ke"]), edge_kd=0.0)
    else:
        tri_ke, tri_ka = (params["tri_ke"], params["tri_ka"]) if solver == "vbd" else (0.0, 0.0)
        builder.add_cloth_mesh(**common, scale=1.0, tri_ke=tri_ke, tri_ka=tri_ka,
                               tri_kd=RAYLEIGH_BETA_S * tri_ke, edge_ke=0.0, edge_kd=0.0)
    p_end, e_end = builder.particle_count, len(builder.edge_indices)
    if p_end - p_start != len(v):
        raise RuntimeError("Newton did not take every cloth vertex")

    # Per-edge bending stiffness (Newton's helpers take one scalar; the right value depends on |e|, A).
    rest = np.asarray(builder.particle_q, dtype=np.float64)
    ids, length, area2 = _interior_edges(builder, e_start, e_end, rest)
    b = fabric.bending
    if solver == "vbd":
        ke = b * length / area2
    elif solver == "xpbd":
        ke = b * length**2 / area2**2
    else:
        ke = np.full(len(ids), b / 3.0)
    for e in range(e_start, e_end):
        builder.edge_bending_properties[e] = (0.0, 0.0)
    beta = RAYLEIGH_BETA_S if solver == "vbd" else 0.0
    for e, k in zip(ids.tolist(), ke.tolist()):
        builder.edge_bending_properties[e] = (k, beta * k)

    if solver == "xpbd":
        # Van Gelder springs on the unique mesh edges: k = E * (sum of adjacent areas) / |e|^2.
        e_spring = params["spring_E"]
        areas = _triangle_areas(v, f)
        pairs = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        key, inv = np.unique(pairs, axis=0, return_inverse=True)
        adj_area = np.bincount(inv.ravel(), weights=np.tile(areas, 3), minlength=len(key))
        lengths = np.linalg.norm(v[key[:, 0]] - v[key[:, 1]], axis=1)
        k_spring = e_spring * adj_area / lengths**2
        for (i, j), k in zip(key.tolist(), k_spring.tolist()):
            builder.add_spring(p_start + i, p_start + j, k, 0.0, control=0.0)

    if pinned is not None:
        for i in np.nonzero(np.asarray(pinned, dtype=bool))[0].tolist():
            builder.particle_mass[p_start + i] = 0.0  # mass 0 = kinematic: held at its rest position
    return p_start, p_end


@wp.kernel
def _scale_velocities(qd: wp.array(dtype=wp.vec3), factor: float):
    i = wp.tid()
    qd[i] = qd[i] * factor


class _Scene:
    """A built Newton model + solver + collision pipeline that steps frame by frame."""

    def __init__(self, solver, vertices, faces, fabric, *, pinned=None, body=None, sphere=None,
                 frame_dt=1.0 / 60.0, substeps=10, iterations=10, device="cpu", self_contact=False,
                 warp_axis=(0.0, 1.0, 0.0), membrane_fit="shear", use_graph=True, air_damping=0.0):
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
        t0 = time.perf_counter()
        self.solver_name, self.device = solver, str(device)
        self.frame_dt, self.substeps = float(frame_dt), int(substeps)
        self.dt = self.frame_dt / self.substeps
        self.velocity_factor = math.exp(-float(air_damping) * self.dt)
        self.notes = []
        builder = newton.ModelBuilder(up_axis=newton.Axis.Y, gravity=GRAVITY)
        if solver == "style3d":
            newton.solvers.SolverStyle3D.register_custom_attributes(builder)
        self.p0, self.p1 = _add_cloth(builder, solver, vertices, faces, fabric, pinned, warp_axis, membrane_fit)

        shape_cfg = newton.ModelBuilder.ShapeConfig(mu=fabric.friction, ke=CONTACT_KE, kd=CONTACT_KD)
        shape_cfg.has_shape_collision = False  # static collider: only cloth-vs-shape contacts matter
        if body is not None:
            bv, bf = body
            mesh = newton.Mesh(np.asarray(bv, dtype=np.float32), np.asarray(bf, dtype=np.int32).ravel())
            builder.add_shape_mesh(-1, mesh=mesh, cfg=shape_cfg)  # body -1: static, world-fixed
        if sphere is not None:
            center, radius = sphere
            builder.add_shape_sphere(-1, xform=wp.transform(wp.vec3(*center), wp.quat_identity()),
                                     radius=float(radius), cfg=shape_cfg)
        if solver == "vbd":
            builder.color(include_bending=True)  # VBD solves one colour (independent vertices) at a time

        self.model = builder.finalize(device=device)
        m = self.model
        m.soft_contact_ke, m.soft_contact_kd, m.soft_contact_mu = CONTACT_KE, CONTACT_KD, fabric.friction
        if solver == "vbd":
            kw = {}
            if self_contact:
                r = max(fabric.thickness, MIN_CONTACT_RADIUS)
                kw = dict(particle_enable_self_contact=True, particle_self_contact_margin=2.0 * r,
                          particle_self_contact_gap=r)
            self.solver = newton.solvers.SolverVBD(m, iterations=iterations, **kw)
        elif solver == "xpbd":
            if not self_contact:
                # XPBD's only self contact is vertex-sphere vs vertex-sphere (hash grid); switch it off.
                m.particle_max_radius, m.particle_grid = 0.0, None
            else:
                self.notes.append("xpbd self contact is vertex-vertex only (particle spheres)")
            self.solver = newton.solvers.SolverXPBD(m, iterations=iterations)
            self._check_xpbd_stiffness()
        else:
            with contextlib.redirect_stdout(io.StringIO()):  # its precompute prints a timer line
                self.solver = newton.solvers.SolverStyle3D(m, config=newton.solvers.SolverStyle3D.Config(
                    iterations=iterations))
            if not self_contact and self.solver.collision is not None:
                # Keep body contact (it lives in the same Collision object), drop cloth-cloth terms.
                self.solver.collision.stiff_vf = self.solver.collision.stiff_ee = 0.0
                self.solver.collision.stiff_ef = 0.0
        self.pipeline = newton.CollisionPipeline(m, soft_contact_gap=CONTACT_GAP)
        self.contacts = self.pipeline.contacts()
        self.control = m.control()
        self.state_0, self.state_1 = m.state(), m.state()
        self.build_seconds = time.perf_counter() - t0

        # Warm-up: one substep on throwaway states compiles every kernel the loop will launch.
        t0 = time.perf_counter()
        w0, w1 = m.state(), m.state()
        self._substep(w0, w1)
        wp.synchronize_device(m.device)
        self.compile_seconds = time.perf_counter() - t0

        self.graph = None
        is_cuda = wp.get_device(device).is_cuda
        if use_graph and is_cuda and self.substeps % 2 == 0:
            # A captured frame replays fixed buffers, so the state swaps must come back to the start:
            # even substep counts only (as in Newton's examples).
            try:
                with wp.ScopedCapture(device=m.device) as capture:
                    self._frame_eager()
                self.graph = capture.graph  # recording launches nothing: the states are still initial
            except Exception as exc:  # noqa: BLE001 - fall back to eager stepping, and say so
                self.notes.append(f"CUDA graph capture failed, eager stepping: {type(exc).__name__}: {exc}")
                self.graph = None
        elif use_graph and is_cuda:
            self.notes.append("odd substep count: no CUDA graph")

    def _check_xpbd_stiffness(self):
        """Note when XPBD's springs are too stiff for the substep (seen to diverge here).

        Newton's XPBD sums the corrections of all springs on a vertex (Jacobi). Each spring alone
        removes the fraction s / (1 + s) of its error, s = k dt^2 (1/m_i + 1/m_j); on curved cloth
        (tubes, cloth wrapping a sphere) the summed corrections blew up when s > ~1, while flat
        cloth survived s ~ 10. s falls with substeps^2, so the note gives the substeps for s = 1.
        """
        m = self.model
        if m.spring_count == 0:
            return
        k = m.spring_stiffness.numpy()
        ij = m.spring_indices.numpy().reshape(-1, 2)
        w = m.particle_inv_mass.numpy()
        s = float((k * self.dt**2 * (w[ij[:, 0]] + w[ij[:, 1]])).max())
        self.xpbd_stiffness_number = s
        if s > 1.0:
            need = int(math.ceil(self.substeps * math.sqrt(s)))
            self.notes.append(f"xpbd spring stiffness number k*dt^2*(1/mi+1/mj) = {s:.2f} > 1: Newton's "
                              f"Jacobi XPBD may diverge on curved cloth; ~{need} substeps/frame brings it to 1")

    def _substep(self, s0, s1):
        s0.clear_forces()
        self.pipeline.collide(s0, self.contacts)
        self.solver.step(s0, s1, self.control, self.contacts, self.dt)
        if self.velocity_factor < 1.0:
            wp.launch(_scale_velocities, dim=self.model.particle_count, inputs=[s1.particle_qd, self.velocity_factor],
                      device=self.model.device)

    def _frame_eager(self):
        for _ in range(self.substeps):
            self._substep(self.state_0, self.state_1)
            self.state_0, self.state_1 = self.state_1, self.state_0

    def frame(self) -> float:
        """Advance one frame; returns its wall time in seconds (device-synchronised)."""
        t0 = time.perf_counter()
        if self.graph is not None:
            wp.capture_launch(self.graph)
        else:
            self._frame_eager()
        wp.synchronize_device(self.model.device)
        return time.perf_counter() - t0

    def positions(self):
        return self.state_0.particle_q.numpy()[self.p0:self.p1].astype(np.float64)

    def velocities(self):
        return self.state_0.particle_qd.numpy()[self.p0:self.p1].astype(np.float64)

    def run(self, max_frames, settle_speed, free_mask=None):
        """Step until the max speed of the free vertices < settle_speed or max_frames; summary dict."""
        seconds, frames, settled, nan, diverged = 0.0, 0, False, False, False
        max_speed = float("nan")
        for _ in range(int(max_frames)):
            seconds += self.frame()
            frames += 1
            vel = self.velocities()
            if not np.all(np.isfinite(vel)) or not np.all(np.isfinite(self.positions())):
                nan = True
                break
            speed = np.linalg.norm(vel if free_mask is None else vel[free_mask], axis=1)
            max_speed = float(speed.max()) if len(speed) else 0.0
            if max_speed > DIVERGED_SPEED:  # e.g. XPBD's velocity clamp (1e5 m/s) holding a blow-up
                diverged = True
                break
            if max_speed < settle_speed:
                settled = True
                break
        substeps_total = frames * self.substeps
        return {
            "solver": self.solver_name, "device": self.device, "vertices": self.p1 - self.p0,
            "frames": frames, "substeps_total": substeps_total, "seconds": seconds,
            "seconds_per_substep": seconds / max(substeps_total, 1),
            "compile_seconds": self.compile_seconds, "build_seconds": self.build_seconds,
            "cuda_graph": self.graph is not None, "settled": settled, "final_max_speed": max_speed,
            "nan": nan, "diverged": diverged, "notes": list(self.notes),
        }


# ----------------------------------------------------------------------------------------------------
# Penetration
# ----------------------------------------------------------------------------------------------------


def signed_distance_to_mesh(points, mesh_vertices, mesh_faces, k=16):
    """Signed distance (m, negative inside) of points (P, 3) to a closed outward-wound triangle mesh.

    Candidates are the k triangles with the nearest centroids (cKDTree); the exact point-triangle
    distance picks the closest. The sign is that of sum_t n_t . (p - q_t) over the candidate
    triangles that share the closest distance, which is right at faces, edges and vertices of
    convex and concave regions alike (a cheap stand-in for the angle-weighted pseudo-normal).
    """
    from scipy.spatial import cKDTree

    p = np.asarray(points, dtype=np.float64)
    v = np.asarray(mesh_vertices, dtype=np.float64)
    f = np.asarray(mesh_faces, dtype=np.int64)
    k = min(k, len(f))
    tree = cKDTree(v[f].mean(axis=1))
    _, cand = tree.query(p, k=k)
    cand = cand.reshape(len(p), k)
    a, b, c = (v[f[cand.ravel(), j]] for j in range(3))
    pp = np.repeat(p, k, axis=0)
    q, _ = closest_point_on_triangles(pp, a, b, c)
    d = np.linalg.norm(pp - q, axis=1).reshape(len(p), k)
    normals = np.cross(b - a, c - a)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)
    side = np.einsum("ij,ij->i", normals, pp - q).reshape(len(p), k)
    dmin = d.min(axis=1)
    tie = d <= dmin[:, None] + 1e-9
    sign = np.where((side * tie).sum(axis=1) < 0.0, -1.0, 1.0)
    return sign * dmin


def max_penetration_mm(points, mesh_vertices, mesh_faces) -> float:
    """Deepest point inside the closed mesh, in mm (0 when none is inside)."""
    sd = signed_distance_to_mesh(points, mesh_vertices, mesh_faces)
    return float(max(0.0, -sd.min()) * 1000.0) if len(sd) else 0.0


# ----------------------------------------------------------------------------------------------------
# Benchmarks
# ----------------------------------------------------------------------------------------------------


def drape(garment_vertices, garment_faces, body_vertices, body_faces, fabric: Fabric, *, solver="vbd",
          attached=None, frame_dt=1.0 / 60.0, substeps=10, iterations=10, max_frames=120,
          settle_speed=0.01, device="cpu", self_contact=False, membrane_fit="shear",
          warp_axis=(0.0, 1.0, 0.0), air_damping=0.0, use_graph=True) -> dict:
    """Drape a garment on a static body with Newton's `solver` ("vbd", "xpbd" or "style3d").

    garment_vertices (N, 3) m: the rest shape and start pose. garment_faces (F, 3) int, CCW outward.
    body_vertices (V, 3), body_faces (G, 3): a closed, outward-wound static collider.
    attached (N,) bool: vertices held in place (mass 0). warp_axis: garment grain (Style3D only).
    Steps frame by frame until the free vertices' max speed < settle_speed (m/s) or max_frames.
    Returns {"solver", "device", "vertices", "frames", "substeps_total", "seconds" (stepping only,
    warp-synchronised), "seconds_per_substep", "compile_seconds" (warm-up substep), "build_seconds",
    "settled", "positions" (N, 3) m, "max_penetration_mm" (deepest garment vertex inside the body
    mesh), "nan", "notes"}. Every solver collides the garment's vertices (not its edges/faces) with
    the body triangles; self contact is off unless self_contact=True.
    """
    gv = np.asarray(garment_vertices, dtype=np.float64)
    attached = np.zeros(len(gv), dtype=bool) if attached is None else np.asarray(attached, dtype=bool)
    scene = _Scene(solver, gv, garment_faces, fabric, pinned=attached, body=(body_vertices, body_faces),
                   frame_dt=frame_dt, substeps=substeps, iterations=iterations, device=device,
                   self_contact=self_contact, warp_axis=warp_axis, membrane_fit=membrane_fit,
                   use_graph=use_graph, air_damping=air_damping)
    out = scene.run(max_frames, settle_speed, free_mask=~attached)
    pos = scene.positions()
    out["positions"] = pos
    out["max_penetration_mm"] = (max_penetration_mm(pos, body_vertices, body_faces)
                                 if np.all(np.isfinite(pos)) else float("nan"))
    return out


def pinned_square_sag(fabric: Fabric, *, n=32, size_m=1.0, solver="vbd", frame_dt=1.0 / 60.0, substeps=10,
                      iterations=10, frames=180, settle_speed=0.01, device="cpu", membrane_fit="shear",
                      air_damping=0.0, use_graph=True) -> dict:
    """A horizontal n x n square (`square_cloth`, at y = 1 m) pinned at two adjacent corners, hanging
    under gravity for up to `frames` frames (stops early once settled).

    Returns the `drape` summary keys plus "sag_m" (pinned corners' height - lowest vertex height),
    "positions" (n*n, 3), and "rest_vertices", "faces", "pinned" (the exact mesh used).
    """
    v, f, pinned = square_cloth(n, size_m)
    # Warp along z (the hanging direction, away from the pinned edge), weft along x.
    scene = _Scene(solver, v, f, fabric, pinned=pinned, frame_dt=frame_dt, substeps=substeps,
                   iterations=iterations, device=device, warp_axis=(0.0, 0.0, 1.0),
                   membrane_fit=membrane_fit, use_graph=use_graph, air_damping=air_damping)
    out = scene.run(frames, settle_speed, free_mask=~pinned)
    pos = scene.positions()
    out.update(positions=pos, rest_vertices=v, faces=f, pinned=pinned,
               sag_m=float(pos[pinned, 1].mean() - pos[:, 1].min()))
    return out


def sphere_drop(fabric: Fabric, *, n=40, size_m=1.0, sphere_radius=0.3, drop_height=0.05, solver="vbd",
                frame_dt=1.0 / 60.0, substeps=10, iterations=10, max_frames=180, settle_speed=0.01,
                device="cpu", membrane_fit="shear", air_damping=0.0, use_graph=True) -> dict:
    """A horizontal n x n square centred `drop_height` m above the top of a static sphere (centre
    (0, 1, 0), radius `sphere_radius` m), falling onto it under gravity.

    Returns the `drape` summary keys plus "positions", "rest_vertices", "faces", "sphere_center",
    "sphere_radius" and "max_penetration_mm" (deepest vertex inside the sphere, analytic).
    """
    center = np.array([0.0, 1.0, 0.0])
    v, f, _ = square_cloth(n, size_m, height_m=center[1] + sphere_radius + drop_height)
    scene = _Scene(solver, v, f, fabric, sphere=(center, sphere_radius), frame_dt=frame_dt,
                   substeps=substeps, iterations=iterations, device=device, warp_axis=(0.0, 0.0, 1.0),
                   membrane_fit=membrane_fit, use_graph=use_graph, air_damping=air_damping)
    out = scene.run(max_frames, settle_speed)
    pos = scene.positions()
    depth = sphere_radius - np.linalg.norm(pos - center, axis=1)
    out.update(positions=pos, rest_vertices=v, faces=f, sphere_center=center, sphere_radius=sphere_radius,
               max_penetration_mm=float(max(0.0, np.nanmax(depth)) * 1000.0))
    return out


# ----------------------------------------------------------------------------------------------------
# Demo
# ----------------------------------------------------------------------------------------------------


def _summary(result: dict) -> dict:
    return {k: v for k, v in result.items() if not isinstance(v, np.ndarray)}


def main(argv=None):
    """Each benchmark once per solver on small meshes; one JSON line per run (no arrays)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fabric", default="cotton_jersey")
    parser.add_argument("--solvers", default=",".join(SOLVERS))
    parser.add_argument("--n", type=int, default=20, help="square cloth resolution (n x n vertices)")
    args = parser.parse_args(argv)
    fabric = fabric_preset(args.fabric)
    body_v, body_f = capsule_mesh()
    garment_v, garment_f = sack_garment()
    dev = args.device
    for solver in args.solvers.split(","):
        t0 = time.perf_counter()
        runs = [
            # Air damping 2/s so the hanging square comes to rest: sag at equilibrium, not mid-swing.
            ("pinned_square_sag", lambda sub, solver=solver: pinned_square_sag(
                fabric, n=args.n, solver=solver, frames=240, substeps=sub, air_damping=2.0, device=dev)),
            ("sphere_drop", lambda sub, solver=solver: sphere_drop(
                fabric, n=args.n, solver=solver, max_frames=120, substeps=sub, device=dev)),
            ("drape", lambda sub, solver=solver: drape(
                garment_v, garment_f, body_v, body_f, fabric, solver=solver, max_frames=120, substeps=sub,
                device=dev)),
        ]
        for name, run in runs:
            substeps = 10
            while True:
                res = run(substeps)
                print(json.dumps({"test": name, "fabric": fabric.name, "substeps": substeps, **_summary(res)}),
                      flush=True)
                if not (res["diverged"] or res["nan"]) or substeps >= 40:
                    break
                substeps *= 2  # say it diverged, then show the substep count at which it does not
        print(json.dumps({"solver": solver, "wall_seconds_incl_build_and_compile": time.perf_counter() - t0,
                          "parameters": newton_cloth_parameters(fabric, solver),
                          "capabilities": CAPABILITIES[solver]}), flush=True)


if __name__ == "__main__":
    main()
