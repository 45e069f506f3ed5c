"""Drape quality (issue 3): the five procedural garments on three avatars, and classic cloth scenes.

1. Garments: t-shirt, long-sleeve shirt, dress, skirt and trousers in the size fitroom recommends,
   draped on a small, a medium and a large avatar (fitroom's female reference bodies XS, M, XL).
   Per drape: seconds, steps, converged, max and p99 penetration (mm), self-intersections, NaN,
   strain p50/p95. Targets: penetration <= 2 mm, no self-intersections, no NaN, converged. On the
   M body also unrelaxed and at converged steps (`relaxation_check`): ease, hem, strain.
2. A square cloth (1 m, 32 x 32) pinned at two adjacent corners: its sag, with NVIDIA Newton's
   solvers on the identical mesh and fabric (bench/newton_peer.py) when Newton imports.
3. A cloth (0.8 m) dropped onto a sphere (r = 0.3 m): penetration, self-intersections.
4. Cusick drape test: a 30 cm disc clamped on an 18 cm support, the drape coefficient
   DC = (shadow area - support area) / (disc area - support area) per fabric preset; it should
   rise with bending rigidity. Through the drapes' own loop (relaxed, then stiffened, until it
   rests; `engine.drape.settle`), the same loop unrelaxed, the default steps for a fixed 4 s, Newton
   global steps at the default 1/60 s (`NEWTON`) and converged steps (1/600 s, 20 iterations),
   with two controls (`cusick_controls`).

    .venv/bin/python bench/drape_quality.py [--vertices 3000] [--quick]

Prints JSON and writes bench/results/drape_quality.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import platform
import time
from pathlib import Path

import numpy as np

# The repository's packages first: bench/assets.py (the upload benchmark) would hide `assets`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GARMENTS = ("tshirt", "longsleeve", "dress", "skirt", "trousers")
AVATARS = {"small": "XS", "medium": "M", "large": "XL"}
CONVERGED = {"dt": 1.0 / 600.0, "iterations": 20, "seconds": 3.0}
NEWTON = {"global_step": "newton", "iterations": 4, "newton_cg": 12}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def garments_on_avatars(model, vertices: int, max_steps: int, kinds=GARMENTS, avatars=AVATARS) -> list[dict]:
    from assets.procedural_garments import procedural_garment, reference_body
    from assets.try_on import ShopperBody, chart_ranking, look_summary, try_on
    from avatar.measurements import measure_body
    from engine.drape import DrapeSettings
    from engine.fabrics import fabric_preset

    rows = []
    for label, chart_size in avatars.items():
        body_v = reference_body(model, chart_size, "female")[1]
        body = ShopperBody(body_v, "female", measure_body(body_v, model))
        for kind in kinds:
            size = chart_ranking(kind, "female", body)[0]["size"]
            garment = procedural_garment(model, kind, size, "female", target_vertices=vertices)
            look = try_on(model, body, garment, fabric_preset("cotton_jersey"), DrapeSettings(max_steps=max_steps))
            s = look_summary(look)
            row = {"avatar": label, "garment": kind, "size": size, "nan": bool(not np.isfinite(look.result.positions).all())}
            row.update({k: s[k] for k in ("vertices", "seconds", "substeps", "converged", "stop_reason",
                                          "max_penetration_mm", "p99_penetration_mm", "self_intersections",
                                          "strain_p50", "strain_p95", "ease_cm")})
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _fitroom_scene(vertices, faces, fabric, attached=None, collider=None, steps=180, settings=None):
    from engine.cloth_model import build_cloth_model
    from engine.cloth_solver import ClothSolver, SolverSettings
    from engine.self_collision import self_intersections

    model = build_cloth_model(vertices, faces, fabric, attached)
    solver = ClothSolver(model, settings or SolverSettings(), collider)
    state = model.initial_state()
    start = time.perf_counter()
    for _ in range(steps):
        solver.step(state, state)
    return state.positions, time.perf_counter() - start, self_intersections(state.positions, faces)


# Converged reference for garments: 1/300 s steps of 20 passes (6000 passes per simulated second,
# as 1/120 s x 50, which drapes the Cusick discs as converged), the step's motion capped at 2 mm,
# run until it rests at a tenth of the default thresholds.
GARMENT_REFERENCE = {"solver": {"dt": 1.0 / 300.0, "iterations": 20, "max_step": 0.002}, "relax_stiffness": 0.0,
                     "max_steps": 900, "min_steps": 75, "energy_threshold": 5e-6, "displacement_threshold": 1e-4}


def relaxation_check(model, vertices: int, kinds=GARMENTS, chart_size: str = "M") -> dict:
    """Each garment on one body three ways: the drape loop unrelaxed, the default (relaxed, then
    stiffened) and the converged reference: ease (cm), the hem's height (the garment's 1st
    percentile of height, m), strain p95, steps and seconds."""
    import dataclasses

    from assets.procedural_garments import procedural_garment, reference_body
    from assets.try_on import ShopperBody, chart_ranking, look_summary, try_on
    from avatar.measurements import measure_body
    from engine.cloth_solver import SolverSettings
    from engine.drape import DrapeSettings
    from engine.fabrics import fabric_preset

    reference = dict(GARMENT_REFERENCE, solver=SolverSettings(**GARMENT_REFERENCE["solver"]))
    ways = {"unrelaxed": DrapeSettings(relax_stiffness=0.0), "default": DrapeSettings(),
            "converged": dataclasses.replace(DrapeSettings(), **reference)}
    body_v = reference_body(model, chart_size, "female")[1]
    body = ShopperBody(body_v, "female", measure_body(body_v, model))
    out = {}
    for kind in kinds:
        size = chart_ranking(kind, "female", body)[0]["size"]
        garment = procedural_garment(model, kind, size, "female", target_vertices=vertices)
        row = {"size": size}
        for way, settings in ways.items():
            look = try_on(model, body, garment, fabric_preset("cotton_jersey"), settings)
            s = look_summary(look)
            row[way] = {"ease_cm": s["ease_cm"], "hem_m": round(float(np.percentile(look.result.positions[:, 1], 1)), 4),
                        "strain_p95": s["strain_p95"], "pressure_p95_kpa": s["pressure_p95_kpa"],
                        "substeps": s["substeps"], "seconds": s["seconds"]}
        out[kind] = row
        print(json.dumps({kind: row}), flush=True)
    return {"body": f"female {chart_size}", "fabric": "cotton_jersey", "converged_settings": GARMENT_REFERENCE,
            "garments": out}


def pinned_square(newton) -> dict:
    from engine.cloth_scenes import square_cloth
    from engine.fabrics import fabric_preset

    out = {}
    for name in ("cotton_jersey", "denim"):
        fabric = fabric_preset(name)
        v, f = square_cloth(32, 1.0)
        pinned = np.zeros(len(v), bool)
        pinned[[0, 31 * 32]] = True  # the two corners of the z = -0.5 edge, as bench/newton_peer.py pins
        x, seconds, _ = _fitroom_scene(v, f, fabric, pinned, steps=300)
        row = {"fitroom_sag_m": round(float(x[pinned, 1].mean() - x[:, 1].min()), 4), "fitroom_seconds": round(seconds, 2)}
        if newton is not None:
            for solver in ("xpbd", "vbd"):
                try:
                    r = newton.pinned_square_sag(fabric, n=32, size_m=1.0, solver=solver, frames=300)
                    row[f"newton_{solver}_sag_m"] = round(r["sag_m"], 4)
                except Exception as e:  # a peer that cannot run this scene is reported, not fatal
                    row[f"newton_{solver}_error"] = f"{type(e).__name__}: {e}"[:200]
        out[name] = row
    return out


def sphere_drop() -> dict:
    from engine.cloth_scenes import square_cloth
    from engine.colliders import SphereCollider
    from engine.fabrics import fabric_preset

    v, f = square_cloth(40, 0.8, height=0.34)
    x, seconds, crossings = _fitroom_scene(v, f, fabric_preset("cotton_jersey"), collider=SphereCollider(np.zeros(3), 0.3))
    depth = 0.3 - np.linalg.norm(x, axis=1)
    return {"vertices": len(v), "seconds": round(seconds, 2), "max_penetration_mm": round(float(max(depth.max(), 0.0) * 1000), 3),
            "self_intersections": crossings, "nan": bool(not np.isfinite(x).all())}


def cusick(seconds: float = 4.0, fabrics=None, rings: int = 20, settle_loop: bool = False, relax: float = 50.0,
           **solver) -> dict:
    """Drape coefficient per fabric (30 cm specimen on an 18 cm support, as BS 5058 / ISO 9073-9),
    with `SolverSettings(**solver)`; fabrics: name -> Fabric (default: the presets); rings: the
    disc mesh's rings (20: 7.5 mm edges). settle_loop False: `seconds` of simulated time (the
    reference runs); True: the drapes' own loop (`engine.drape.settle`, relaxing at `relax` m,
    0: not) until it rests, `seconds` its step budget."""
    from engine.cloth_model import build_cloth_model
    from engine.cloth_scenes import disc_cloth, drape_coefficient
    from engine.cloth_solver import ClothSolver, SolverSettings
    from engine.drape import DrapeSettings, settle
    from engine.fabrics import PRESETS
    from engine.fit_metrics import strain_percent

    r_spec, r_disc = 0.15, 0.09
    out = {}
    for name, fabric in (fabrics or PRESETS).items():
        v, f, ring = disc_cloth(r_spec, rings)
        clamped = np.linalg.norm(v[:, [0, 2]], axis=1) <= r_disc + 1e-9
        settings = SolverSettings(**solver)
        steps = int(round(seconds / settings.dt))
        row = {}
        if settle_loop:
            model = build_cloth_model(v, f, fabric, clamped)
            run = settle(ClothSolver(model, settings), model.initial_state(),
                         DrapeSettings(solver=settings, max_steps=steps, relax_stiffness=relax))
            x = run.state.positions
            row = {"steps": run.steps, "relax_steps": run.relax_steps, "stop_reason": run.reason,
                   "strain_p95": round(float(np.percentile(strain_percent(model, x), 95)), 1)}
        else:
            x, _, _ = _fitroom_scene(v, f, fabric, clamped, steps=steps, settings=settings)
        dc = drape_coefficient(x, ring, r_spec, r_disc)
        weight = fabric.density * 9.81  # N/m^2
        out[name] = {"bending_Nm": fabric.bending, "bending_length_cm": round(100 * (fabric.bending / weight) ** (1 / 3), 2),
                     "membrane_over_weight_m": round(0.5 * (fabric.stretch_warp + fabric.stretch_weft) / weight),
                     "drape_coefficient": round(float(dc), 3), **row}
    order = sorted(out, key=lambda k: out[k]["bending_Nm"])
    dcs = [out[k]["drape_coefficient"] for k in order]
    loop = {"settle_loop": True, "relax_stiffness_m": relax, "relax_shear_m": DrapeSettings().relax_shear} if settle_loop else {}
    return {"solver": solver, **loop, "seconds": seconds, "rings": rings, "fabrics": out,
            "rises_with_bending": bool(all(a <= b + 1e-3 for a, b in zip(dcs, dcs[1:])))}


def cusick_controls(**solver) -> dict:
    """Two controls at the converged steps. Silk charmeuse with cotton jersey's membrane stiffness:
    how much of silk's drape coefficient its stiff membrane (per unit weight) explains. Cotton
    jersey with its bending rigidity times 1/4, 4 and 16: whether the coefficient rises with
    bending when nothing else changes."""
    import dataclasses

    from engine.fabrics import fabric_preset

    silk, jersey = fabric_preset("silk_charmeuse"), fabric_preset("cotton_jersey")
    fabrics = {"silk_with_jersey_membrane": dataclasses.replace(
        silk, name="silk_with_jersey_membrane", stretch_warp=jersey.stretch_warp, stretch_weft=jersey.stretch_weft)}
    for factor in (0.25, 4.0, 16.0):
        name = f"cotton_jersey_bending_x{factor:g}"
        fabrics[name] = dataclasses.replace(jersey, name=name, bending=jersey.bending * factor)
    return cusick(fabrics=fabrics, **solver)["fabrics"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vertices", type=int, default=3000, help="garment resolution")
    ap.add_argument("--max-steps", type=int, default=150)
    ap.add_argument("--quick", action="store_true", help="one avatar, two garments")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "drape_quality.json"))
    args = ap.parse_args()

    from avatar.body import load_body_model

    try:
        import newton_peer as newton  # bench/ is on the path when this runs as a script
    except Exception:  # Newton absent or broken: the fitroom side still runs
        newton = None
    model = load_body_model("cpu")
    kinds, avatars = (("tshirt", "skirt"), {"medium": "M"}) if args.quick else (GARMENTS, AVATARS)
    rows = garments_on_avatars(model, args.vertices, args.max_steps, kinds, avatars)
    result = {
        "device": f"CPU: {_cpu_name()} (NumPy)",
        "garment_vertices": args.vertices,
        "garments": rows,
        "garments_summary": {
            "max_penetration_mm": max(r["max_penetration_mm"] for r in rows),
            "with_self_intersections": sum(r["self_intersections"] > 0 for r in rows),
            "with_nan": sum(r["nan"] for r in rows),
            "converged": sum(r["converged"] for r in rows),
            "drapes": len(rows),
            "median_seconds": float(np.median([r["seconds"] for r in rows])),
        },
        "relaxation": relaxation_check(model, args.vertices, kinds),
        "pinned_square": pinned_square(newton),
        "sphere_drop": sphere_drop(),
        # The drapes' loop: relaxed, then stiffened, until it rests (engine.drape.settle), 6 s budget.
        "cusick": cusick(seconds=6.0, settle_loop=True),
        # The same loop without relaxing: its convergence test takes the slow drift for rest.
        "cusick_unrelaxed": cusick(seconds=6.0, settle_loop=True, relax=0.0),
        # The default steps for a fixed 4 s, without relaxing or a convergence test.
        "cusick_fixed_4s": cusick(),
        # The default steps leave large rotations under-converged (see docs/cloth.md): the same
        # test with 10x smaller steps and 20 iterations (silk: the same coefficient, 0.31, at 1/1200 s).
        "cusick_converged": cusick(**CONVERGED),
        # The default 1/60 s steps, each 4 Newton steps of 12 preconditioned CG iterations.
        "cusick_newton": cusick(**NEWTON),
        "cusick_controls": cusick_controls(**CONVERGED),
        "targets": {"max_penetration_mm": 2.0, "self_intersections": 0, "nan": 0, "converged": "all"},
    }
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
