"""A drape from start to settled: clean the mesh, refit it to the body, step until it rests.

Arrays in, a `DrapeResult` of host arrays out. The garment is stepped until both its kinetic
energy per kilogram and its largest per-step displacement fall below thresholds (converged), or
the step budget runs out (not converged), or the state stops being finite (restored to the last
finite step and reported as unstable: the result never holds NaN).
"""

from __future__ import annotations

import dataclasses
import time
from types import ModuleType

import numpy as np

from engine.backend import to_numpy
from engine.cloth_model import build_cloth_model
from engine.cloth_solver import ClothSolver, SolverSettings
from engine.cloth_topology import clean_mesh
from engine.colliders import MeshCollider
from engine.fabrics import Fabric
from engine.fit_metrics import penetration_mm, pressure_kpa, strain_percent
from engine.garment_refit import refit
from engine.self_collision import self_intersections


@dataclasses.dataclass(frozen=True)
class DrapeSettings:
    """solver : the step settings; max_steps, min_steps : step budget; energy_threshold : J/kg of
    kinetic energy (0.5 v^2: 5e-5 is an r.m.s. speed of 1 cm/s); displacement_threshold : m, the
    largest vertex move in one step; clearance : m, how far outside the body the refit starts; resting_gap : m beyond the
    clearance within which a vertex counts as lying on the body (see `resting_on_top`)."""

    solver: SolverSettings = SolverSettings()
    max_steps: int = 150
    min_steps: int = 15
    energy_threshold: float = 5e-5
    displacement_threshold: float = 5e-4
    clearance: float = 0.004
    resting_gap: float = 0.004


@dataclasses.dataclass
class DrapeResult:
    """A settled garment and how it got there (host arrays).

    positions (N, 3) m, faces (F, 3), start (N, 3) the refitted start, strain_percent (N,),
    pressure_kpa (N,), penetration_mm (N,); steps, converged, stop_reason (`settled`, `budget`,
    `unstable`), seconds, kinetic_energy_per_kg (J/kg), max_displacement_m (last step),
    self_intersections, mesh_report (what cleaning repaired), vertex_map (N0,) input vertex -> row.
    """

    positions: np.ndarray
    faces: np.ndarray
    start: np.ndarray
    strain_percent: np.ndarray
    pressure_kpa: np.ndarray
    penetration_mm: np.ndarray
    steps: int
    converged: bool
    stop_reason: str
    seconds: float
    kinetic_energy_per_kg: float
    max_displacement_m: float
    self_intersections: int
    mesh_report: dict
    vertex_map: np.ndarray


def resting_on_top(collider, x, friction: float, settings: DrapeSettings):
    """(N,) bool: vertices of x lying on a body surface that static friction holds them on.

    A vertex on skin that faces up within the friction angle (tan(angle) <= mu) cannot slide under
    its weight: these points (the tops of the shoulders under a t-shirt) are attached where they
    lie from the first step, before the solver's contact anchors have caught anything.
    """
    _, normal, signed = collider.contacts(x)
    cos_friction_angle = 1.0 / np.sqrt(1.0 + friction**2)
    return (signed < settings.clearance + settings.resting_gap) & (normal[:, 1] >= cos_friction_angle)


def drape(garment_vertices, garment_faces, source_body, target_body, body_faces, fabric: Fabric, attached=None,
          settings: DrapeSettings = DrapeSettings(), xp: ModuleType = np) -> DrapeResult:
    """Drapes a garment authored on `source_body` onto `target_body` (both (V, 3), faces (G, 3)).

    garment_vertices (N0, 3), garment_faces (F0, 3): as authored (welded and cleaned here);
    attached (N0,) bool: vertices held where the refit puts them (a waistband).
    """
    start_time = time.perf_counter()
    mesh = clean_mesh(garment_vertices, garment_faces)
    att = np.zeros(len(mesh.vertices), bool)
    if attached is not None:
        src = mesh.source[np.asarray(attached, bool)]
        att[src[src >= 0]] = True
    rest = xp.asarray(mesh.vertices)
    faces = xp.asarray(mesh.faces)
    body_f = xp.asarray(body_faces)
    target = xp.asarray(target_body, dtype=xp.float64)
    start, _ = refit(rest, faces, xp.asarray(source_body, dtype=xp.float64), target, body_f, settings.clearance)
    collider = MeshCollider(target, body_f)
    att |= to_numpy(resting_on_top(collider, start, fabric.friction, settings))
    model = build_cloth_model(mesh.vertices, mesh.faces, fabric, att, xp=xp)
    model.attach_targets = start.copy()
    solver = ClothSolver(model, settings.solver, collider)
    state = model.initial_state(start)
    mass = model.mass
    total_mass = float(mass.sum())
    reason, steps, energy, moved = "budget", 0, float("inf"), float("inf")
    forces = []
    for steps in range(1, settings.max_steps + 1):
        before = state.copy()
        solver.step(state, state)
        if not bool(xp.isfinite(state.positions).all()):
            state, reason = before, "unstable"
            break
        energy = float(0.5 * (mass * (state.velocities**2).sum(1)).sum()) / total_mass
        moved = float(xp.linalg.norm(state.positions - before.positions, axis=1).max())
        forces = (forces + [solver.last_contact_force])[-5:]
        if steps >= settings.min_steps and energy < settings.energy_threshold and moved < settings.displacement_threshold:
            reason = "settled"
            break
    x = state.positions
    _, _, signed = collider.contacts(x)
    force = sum(forces) / len(forces) if forces else xp.zeros(model.n_vertices)
    return DrapeResult(
        positions=to_numpy(x),
        faces=mesh.faces,
        start=to_numpy(start),
        strain_percent=to_numpy(strain_percent(model, x)),
        pressure_kpa=to_numpy(pressure_kpa(force, model.vertex_area)),
        penetration_mm=to_numpy(penetration_mm(signed)),
        steps=steps,
        converged=reason == "settled",
        stop_reason=reason,
        seconds=time.perf_counter() - start_time,
        kinetic_energy_per_kg=energy,
        max_displacement_m=moved,
        self_intersections=self_intersections(x, faces),
        mesh_report=mesh.report,
        vertex_map=mesh.source,
    )
