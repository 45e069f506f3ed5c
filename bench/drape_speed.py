"""Drape speed (issue 3): fitroom's cloth solver against NVIDIA Newton's, side by side, one run.

The same procedural t-shirt (size M, about 10k and 40k vertices) on the body it was made for
(fitroom's female reference body M), the same fabric (cotton jersey), started at rest from the same
positions. fitroom drapes with its defaults (`engine.drape.drape`: 1/60 s projective-dynamics
steps, relaxed, then stiffened, until its convergence test passes); Newton's VBD, XPBD and Style3D
(bench/newton_peer.py) step 1/60 s frames of `--substeps` substeps and `--iterations` iterations
until the cloth's fastest free vertex is slower than 1 cm/s. Reported per solver: time per substep (one fitroom step is one
substep), time to the settled drape, penetration (mm) and strain p50/p95 (%, measured by fitroom on
each result), and fitroom's ratio to each. Per substep also at the same substeps and iterations:
fitroom stepping Newton's substep (1/600 s by default) with Newton's iterations as local/global
passes (`fitroom_at_newton_settings`, `fitroom_speedup_per_substep_same_settings`). At 40k only the
per-substep time is measured (a few steps each) unless --settle-40k.

    .venv/bin/python bench/drape_speed.py [--device cpu|cuda:0] [--repeats 3]

Prints JSON and writes bench/results/drape_speed_<cpu|gpu>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# The repository's packages first: bench/assets.py (the upload benchmark) would hide `assets`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drape_quality import _cpu_name  # bench/ is on the path when this runs as a script


def _strain(vertices, faces, positions, fabric) -> tuple[float, float]:
    from engine.cloth_model import build_cloth_model
    from engine.fit_metrics import strain_percent

    s = strain_percent(build_cloth_model(vertices, faces, fabric), positions)
    return round(float(np.percentile(s, 50)), 1), round(float(np.percentile(s, 95)), 1)


def fitroom_run(garment, faces, fabric, xp, max_steps: int) -> dict:
    from engine.drape import DrapeSettings, drape

    r = drape(garment.vertices, garment.faces, garment.body_vertices, garment.body_vertices, faces, fabric,
              attached=garment.attached, settings=DrapeSettings(max_steps=max_steps, min_steps=min(15, max_steps)), xp=xp)
    p50, p95 = np.percentile(r.strain_percent, [50, 95])
    return {"seconds": round(r.seconds, 3), "substeps": r.steps, "seconds_per_substep": round(r.seconds / r.steps, 4),
            "settled": r.converged, "max_penetration_mm": round(float(r.penetration_mm.max()), 3),
            "strain_p50": round(float(p50), 1), "strain_p95": round(float(p95), 1),
            "self_intersections": r.self_intersections}


def fitroom_equal_substep(garment, faces, fabric, xp, dt: float, iterations: int, steps=(10, 40)) -> dict:
    """fitroom's time per substep at Newton's substep and iterations (dt s, `iterations` passes),
    from the difference of two runs of `steps` steps (the set-up they share cancels), unrelaxed and
    not stopped early."""
    from engine.cloth_solver import SolverSettings
    from engine.drape import DrapeSettings, drape

    seconds = []
    for n in steps:
        settings = DrapeSettings(solver=SolverSettings(dt=dt, iterations=iterations), max_steps=n, min_steps=n,
                                 relax_stiffness=0.0)
        seconds.append(drape(garment.vertices, garment.faces, garment.body_vertices, garment.body_vertices, faces, fabric,
                             attached=garment.attached, settings=settings, xp=xp).seconds)
    return {"dt": dt, "iterations": iterations, "steps": list(steps), "seconds": [round(t, 3) for t in seconds],
            "seconds_per_substep": round((seconds[1] - seconds[0]) / (steps[1] - steps[0]), 4)}


def newton_run(newton, solver, garment, faces, fabric, device, substeps, iterations, max_frames) -> dict:
    try:
        r = newton.drape(garment.vertices, garment.faces, garment.body_vertices, faces, fabric, solver=solver,
                         attached=garment.attached, substeps=substeps, iterations=iterations,
                         max_frames=max_frames, device=device)
    except Exception as e:  # a peer that fails is reported, not fatal
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    out = {k: r[k] for k in ("seconds", "substeps_total", "seconds_per_substep", "settled", "max_penetration_mm", "nan")}
    if not r["nan"]:
        out["strain_p50"], out["strain_p95"] = _strain(garment.vertices, garment.faces, r["positions"], fabric)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", help="cpu, or cuda:0 for both fitroom (CuPy) and Newton")
    ap.add_argument("--repeats", type=int, default=3, help="fitroom runs per size (median reported)")
    ap.add_argument("--substeps", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--max-frames", type=int, default=150)
    ap.add_argument("--settle-40k", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()

    try:
        import newton_peer as newton
    except ImportError as e:  # the GPU machines' image has no Warp/Newton (392 MB: too big to carry)
        newton, missing = None, f"Newton not importable here: {e}"[:200]
    from assets.procedural_garments import procedural_garment
    from avatar.body import load_body_model
    from engine.backend import select_backend
    from engine.fabrics import fabric_preset

    xp = select_backend("cpu" if args.device == "cpu" else "gpu")
    model = load_body_model("cpu")
    faces = np.asarray(model.faces)
    fabric = fabric_preset("cotton_jersey")
    device = f"CPU: {_cpu_name()}" if xp is np else f"GPU: {xp.cuda.runtime.getDeviceProperties(0)['name'].decode()}"
    result = {"device": device, "fabric": fabric.name,
              "newton_settings": {"frame_dt": 1 / 60, "substeps": args.substeps, "iterations": args.iterations},
              "sizes": {}}
    for target in (10_000, 40_000):
        garment = procedural_garment(model, "tshirt", "M", "female", target_vertices=target)
        settle = target == 10_000 or args.settle_40k
        steps = 150 if settle else 8
        runs = [fitroom_run(garment, faces, fabric, xp, steps) for _ in range(args.repeats if settle else 1)]
        mine = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
        mine["seconds_runs"] = [r["seconds"] for r in runs]
        equal = fitroom_equal_substep(garment, faces, fabric, xp, 1 / 60 / args.substeps, args.iterations,
                                      (10, 40) if settle else (4, 12))
        row = {"vertices": len(garment.vertices), "fitroom": mine, "fitroom_at_newton_settings": equal}
        if newton is None:
            row["newton"] = {"error": missing}
        for solver in newton.SOLVERS if newton is not None else ():
            peer = newton_run(newton, solver, garment, faces, fabric, args.device, args.substeps, args.iterations,
                              args.max_frames if settle else 1)
            if "error" not in peer:
                peer["fitroom_speedup_per_substep"] = round(peer["seconds_per_substep"] / mine["seconds_per_substep"], 3)
                peer["fitroom_speedup_per_substep_same_settings"] = round(peer["seconds_per_substep"] / equal["seconds_per_substep"], 3)
                if settle:
                    peer["fitroom_speedup_to_settle"] = round(peer["seconds"] / mine["seconds"], 3)
            row[f"newton_{solver}"] = peer
            print(json.dumps({"vertices": row["vertices"], solver: peer}), flush=True)
        result["sizes"][str(target)] = row
    result["targets"] = {"cpu_settled_tshirt_10k_s": 5.0, "gpu_settled_tshirt_10k_s": 0.25, "gpu_speedup_per_substep": 2.0}
    print(json.dumps(result, indent=1))
    out = Path(args.out or Path(__file__).parent / "results" / f"drape_speed_{'cpu' if args.device == 'cpu' else 'gpu'}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
