"""A drape from start to settled: clean the mesh, refit it to the body, step until it rests.

Arrays in, a `DrapeResult` of host arrays out. The garment is stepped until both its kinetic
energy per kilogram and its largest per-step displacement fall below thresholds (converged), or
the step budget runs out (not converged), or the state stops being finite (restored to the last
finite step and reported as unstable: the result never holds NaN). Free cloth is first relaxed
with a soft membrane, then stiffened, and draped again unrelaxed if that left it stretched or
tangled (`settle`).
"""

from __future__ import annotations

import dataclasses
import time
from types import ModuleType

import numpy as np

from engine.backend import to_numpy
from engine.cloth_model import ClothState, build_cloth_model
from engine.cloth_solver import ClothSolver, SolverSettings
from engine.cloth_topology import clean_mesh
from engine.colliders import MeshCollider
from engine.fabrics import Fabric
from engine.fit_metrics import contact_pressure_kpa, penetration_mm, strain_percent
from engine.garment_refit import refit
from engine.self_collision import self_intersections


@dataclasses.dataclass(frozen=True)
class DrapeSettings:
    """solver : the step settings; max_steps, min_steps : step budget (of each attempt: see
    `settle`); energy_threshold : J/kg of kinetic energy (0.5 v^2: 5e-5 is an r.m.s. speed of
    1 cm/s); displacement_threshold : m, the largest vertex move in one step; clearance : m, how
    far outside the body the refit starts; resting_gap : m beyond the clearance within which a
    vertex counts as lying on the body (see `resting_on_top`).
    relax_stiffness : m, the membrane's stiffness per unit of the fabric's weight (N/m per N/m^2)
    while the drape relaxes, 0 for no relaxation (see `settle`); relax_shear : m, the same cap on
    its shear stiffness (N/m per radian); relax_support : m, triangles with
    a vertex this close to the body at the start keep their true membrane while relaxing;
    relax_max_stretch : percentage points of strain p95 above the start's beyond which a relaxed
    state is discarded (see `settle`); stiffen_min_steps : the fewest steps at the fabric's true
    stiffness after relaxing."""

    solver: SolverSettings = SolverSettings()
    max_steps: int = 150
    min_steps: int = 15
    relax_stiffness: float = 50.0
    relax_shear: float = 10.0
    relax_support: float = 0.015
    relax_max_stretch: float = 3.0
    stiffen_min_steps: int = 5
    energy_threshold: float = 5e-5
    displacement_threshold: float = 5e-4
    clearance: float = 0.004
    resting_gap: float = 0.004


@dataclasses.dataclass
class DrapeResult:
    """A settled garment and how it got there (host arrays).

    positions (N, 3) m, faces (F, 3), rest_positions (N, 3) the garment as authored (its rest
    shape), start (N, 3) the refitted start, strain_percent (N,),
    pressure_kpa (N,), penetration_mm (N,); steps, converged, stop_reason (`settled`, `budget`,
    `unstable`), relax_steps (of steps, those with the relaxed membrane), relaxation (`off`,
    `kept`, `discarded`, `unchecked`: see `settle`), seconds,
    kinetic_energy_per_kg (J/kg), max_displacement_m (last step),
    self_intersections, mesh_report (what cleaning repaired), vertex_map (N0,) input vertex -> row.
    """

    positions: np.ndarray
    faces: np.ndarray
    rest_positions: np.ndarray
    start: np.ndarray
    strain_percent: np.ndarray
    pressure_kpa: np.ndarray
    penetration_mm: np.ndarray
    steps: int
    relax_steps: int
    relaxation: str
    converged: bool
    stop_reason: str
    seconds: float
    kinetic_energy_per_kg: float
    max_displacement_m: float
    self_intersections: int
    mesh_report: dict
    vertex_map: np.ndarray


@dataclasses.dataclass
class Settling:
    """How `settle` ended: state (ClothState), steps, relax_steps, relaxation (`off`, `kept`,
    `discarded` or `unchecked`), reason (`settled`, `budget`, `unstable`), energy (J/kg), moved (m, the largest
    step, last step), self_intersections (of the final state where the relaxation check counted
    them, else None)."""

    state: ClothState
    steps: int
    relax_steps: int
    relaxation: str
    reason: str
    energy: float
    moved: float
    self_intersections: int | None = None


def relax_scales(fabric: Fabric, settings: "DrapeSettings", gravity: float = 9.81) -> tuple[float, float]:
    """(stretch, shear) membrane scales (<= 1) that cap the fabric's stiffer stretch direction at
    `settings.relax_stiffness` (m) times its weight per area and its shear at `settings.relax_shear`
    times it; (1, 1) when relax_stiffness is 0 (no relaxation), 1 for shear when relax_shear is 0,
    1 where the fabric is that soft."""
    weight = fabric.density * gravity
    if settings.relax_stiffness <= 0 or weight <= 0:
        return 1.0, 1.0

    def cap(stiffness, length):  # a cap of 0 or less: not relaxed
        return 1.0 if stiffness <= 0 or length <= 0 else min(1.0, length * weight / stiffness)

    return (cap(max(fabric.stretch_warp, fabric.stretch_weft), settings.relax_stiffness),
            cap(fabric.shear, settings.relax_shear))


def settle(solver: ClothSolver, state: ClothState, settings: DrapeSettings, supported=None) -> Settling:
    """Steps `state` in place until the cloth rests, in two phases; supported : (F,) bool or None,
    triangles that keep their true membrane while relaxing (those lying on the body).

    Relax: the membrane's stretch stiffness is capped at `relax_stiffness` times the fabric's
    weight (50 m: 100-200 times softer than the woven presets', 18-26 times the knits') and its
    shear stiffness at `relax_shear` times it (10 m: 0.24-0.79 of the presets'). Fabric barely
    stretches under its own weight either way (a 50 cm skirt 1 % at 50 m), but projective
    dynamics' passes rotate a soft membrane freely where the true one locks free-hanging cloth,
    and its convergence test takes the slow drift for rest: with the default steps a Cusick disc
    "settles" flat (drape coefficients 0.86-0.997) and drapes (0.10-0.43, converged 0.11-0.47)
    once relaxed (docs/cloth.md). Shear has its own, lower cap: softened as much as stretch, the
    XL tops kept 3-6 degrees of shear that the true shear stiffness (14-170 N/m per radian) did not
    take back against friction (strain p95 103.8 %, 100.4 converged); not softened, the denim disc
    locks again (0.823, 0.468 converged). Cloth lying on the body keeps its true membrane: relaxed
    there, friction holds the stretch its weight gave it (the M dress's bodice kept 1-3 % strain;
    its chest ease fell to 0.6 cm, 1.6 converged). Stiffen: the true membrane from there until it
    rests again, at least `stiffen_min_steps`, which takes back the relaxed stretch and gives the
    true strain and pressure. Relaxing takes at most half the step budget.

    Stiffening does not always take the relaxed deformation back: on the XL body the dress's
    bodice ends stiffened at strain p95 103.7 % (its sides between waist and underarm, hanging
    off the bust; the start: 100.0 %). So a stiffened drape whose strain p95 is over
    `relax_max_stretch` points above the start's, or with more self-intersections than the start,
    is discarded once it rests: the run
    starts again from the start, unrelaxed, with a fresh step budget, so a discarded drape can take
    up to about twice `max_steps` (`relaxation`: `kept`, `discarded`; `unchecked` when the run
    ended before the check: budget, unstable; `off` when nothing was relaxed: relax_stiffness 0,
    no gravity, a fabric already that soft, every triangle supported). A run whose budget ends
    while stiffening stops there (`budget`).

    A phase rests when the kinetic energy per kg and the largest step fall below their thresholds
    after its minimum steps; a step that is not finite is undone and stops the run (`unstable`).
    """
    xp, model = solver.model.xp, solver.base_model
    mass, total_mass = model.mass, float(model.mass.sum())
    scales = relax_scales(model.fabric, settings, float(np.linalg.norm(solver.settings.gravity)))
    if supported is not None:
        scales = tuple(xp.where(xp.asarray(supported), 1.0, a) for a in scales)
    phase = "relax" if any(bool((xp.asarray(a) < 1.0).any()) for a in scales) else "plain"
    if phase == "relax":
        solver.set_membrane_scale(*scales)
        start, start_strain = state.copy(), _strain_p95(model, state.positions)
    relaxation = "unchecked" if phase == "relax" else "off"
    tangles = None

    def worse_than_start(x) -> bool:
        """Strain p95 over the allowance above the start's, or more self-intersections."""
        nonlocal tangles
        if _strain_p95(model, x) > start_strain + settings.relax_max_stretch:
            return True
        tangles = self_intersections(x, model.faces)
        return tangles > 0 and tangles > self_intersections(start.positions, model.faces)

    reason, steps, relax_steps, energy, moved = "budget", 0, 0, float("inf"), float("inf")
    phase_start, end = 0, settings.max_steps
    try:
        while steps < end:
            steps += 1
            before = state.copy()
            solver.step(state, state)
            relax_steps += phase == "relax"
            if not bool(xp.isfinite(state.positions).all()):
                state.positions, state.velocities, reason = before.positions, before.velocities, "unstable"
                solver.reset_contacts()  # its anchors and search positions hold NaN now
                break
            energy = float(0.5 * (mass * (state.velocities**2).sum(1)).sum()) / total_mass
            # Self-contact holds a vertex apart from the fold it touches by moving it after the
            # solve, which pulls it back: a few such vertices go back and forth 0.6-1.2 mm a step
            # for good (the 10k t-shirt: 1-5 of 10k, p99 of all moves 0.1-0.4 mm). Contact, not motion.
            step_moves = xp.linalg.norm(state.positions - before.positions, axis=1)
            moved = float(xp.where(solver.held_apart, 0.0, step_moves).max())
            rested = energy < settings.energy_threshold and moved < settings.displacement_threshold
            done = rested and steps - phase_start >= (settings.stiffen_min_steps if phase == "stiffen" else settings.min_steps)
            if phase == "relax":
                if done or steps - phase_start >= settings.max_steps // 2:
                    solver.set_membrane_scale(1.0)
                    phase, phase_start = "stiffen", steps
            elif phase == "stiffen" and done and worse_than_start(state.positions):
                state.positions, state.velocities = start.positions.copy(), start.velocities.copy()
                solver.reset_contacts()
                phase, phase_start, end, relaxation, tangles = "plain", steps, steps + settings.max_steps, "discarded", None
            elif done:
                relaxation = "kept" if phase == "stiffen" else relaxation
                reason = "settled"
                break
    finally:
        solver.set_membrane_scale(1.0)  # the solver steps on with the true membrane, whatever ended the run
    return Settling(state, steps, relax_steps, relaxation, reason, energy, moved, tangles)


def _strain_p95(model, x) -> float:
    return float(np.percentile(to_numpy(strain_percent(model, x)), 95))


def resting_on_top(normal, signed, friction: float, settings: DrapeSettings):
    """(N,) bool: vertices lying on a body surface that static friction holds them on, given the
    body's normals (N, 3) and signed distances (N,) m at each vertex.

    A vertex on skin that faces up within the friction angle (tan(angle) <= mu) cannot slide under
    its weight: these points (the tops of the shoulders under a t-shirt) are attached where they
    lie from the first step, before the solver's contact anchors have caught anything.
    """
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
    _, normal, signed = collider.contacts(start)
    att |= to_numpy(resting_on_top(normal, signed, fabric.friction, settings))
    model = build_cloth_model(mesh.vertices, mesh.faces, fabric, att, xp=xp)
    model.attach_targets = start.copy()
    solver = ClothSolver(model, settings.solver, collider)
    run = settle(solver, model.initial_state(start), settings, (signed < settings.relax_support)[faces].any(1))
    x = run.state.positions
    _, normal, signed = collider.contacts(x)
    st = settings.solver
    touching = signed < st.skin_offset + st.contact_gap  # as the solver takes a vertex to touch
    return DrapeResult(
        positions=to_numpy(x),
        faces=mesh.faces,
        rest_positions=mesh.vertices,
        start=to_numpy(start),
        strain_percent=to_numpy(strain_percent(model, x)),
        pressure_kpa=to_numpy(contact_pressure_kpa(model, x, normal, touching, st.gravity, st.compression_slack)),
        penetration_mm=to_numpy(penetration_mm(signed)),
        steps=run.steps,
        relax_steps=run.relax_steps,
        relaxation=run.relaxation,
        converged=run.reason == "settled",
        stop_reason=run.reason,
        seconds=time.perf_counter() - start_time,
        kinetic_energy_per_kg=run.energy,
        max_displacement_m=run.moved,
        self_intersections=run.self_intersections if run.self_intersections is not None else self_intersections(x, faces),
        mesh_report=mesh.report,
        vertex_map=mesh.source,
    )
