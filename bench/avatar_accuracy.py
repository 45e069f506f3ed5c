"""Avatar accuracy and speed on synthetic shoppers of known shape (issue 2).

For N Anny bodies (both sexes, 150-195 cm, lean to heavy) in a natural standing pose, renders a
front and a side photo (1080x1920, pyrender), runs the real capture (MediaPipe) and fit with the
true height and sex, front only and front + side, and compares the avatar's measurements with
`fitroom measure` on the true body. Prints JSON and writes bench/results/avatar_accuracy.json.

    .venv/bin/python bench/avatar_accuracy.py [--bodies 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

KEYS = ("chest_cm", "waist_cm", "hip_cm", "inseam_cm", "shoulder_width_cm", "stature_cm")
TARGETS = {
    "front_side_mean_girth_cm": 1.5,
    "front_side_p90_girth_cm": 3.0,
    "front_only_mean_girth_cm": 2.5,
    "inseam_mean_cm": 1.5,
    "median_seconds_per_photo": 0.5,
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bodies", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "avatar_accuracy.json"))
    args = ap.parse_args()

    from avatar.body import load_body_model
    from avatar.capture import capture_photo
    from avatar.fit import fit_avatar
    from avatar.measurements import measure_body
    from avatar.reference_body import rest_body
    from fitroom.errors import FitroomError
    from fitroom.samples import natural_standing_pose, render_photos, sample_body

    model = load_body_model(device="cpu")
    rng = np.random.default_rng(args.seed)
    rows, refused = [], []
    per_photo_seconds = []
    for i in range(args.bodies):
        sex = ("female", "male")[i % 2]
        height_cm = float(rng.uniform(150.0, 195.0))
        shape = sample_body(model, rng, sex=sex, height_cm=height_cm)
        truth = measure_body(rest_body(model, shape), model)
        photos = {
            view: render_photos(model, shape, natural_standing_pose(model, rng=rng), views=(view,))[view][0]
            for view in ("front", "side")
        }
        row = {"body": i, "sex": sex, "height_cm": round(height_cm, 1), "truth": {k: round(truth[k], 2) for k in KEYS}}
        try:
            for name, views in (("front", ("front",)), ("front_side", ("front", "side"))):
                start = time.perf_counter()
                captures = [capture_photo(photos[v], view=v) for v in views]
                avatar = fit_avatar(model, captures, height_cm, sex=sex)
                seconds = time.perf_counter() - start
                per_photo_seconds.append(seconds / len(views))
                row[name] = {
                    "measured": {k: round(avatar.measurements[k], 2) for k in KEYS},
                    "error": {k: round(avatar.measurements[k] - truth[k], 2) for k in KEYS},
                    "seconds": round(seconds, 3),
                    "keypoint_residual_px": [round(x, 2) for x in avatar.fit.keypoint_residual_px],
                    "silhouette_residual_px": [round(x, 2) for x in avatar.fit.silhouette_residual_px],
                }
        except FitroomError as e:
            refused.append({"body": i, "error": e.code, "detail": e.message})
            continue
        rows.append(row)
        f, fs = row["front"]["error"], row["front_side"]["error"]
        print(
            f"body {i:2d} {sex:6s} {height_cm:5.1f} cm  front chest {f['chest_cm']:+5.1f} waist {f['waist_cm']:+5.1f} "
            f"hip {f['hip_cm']:+5.1f} inseam {f['inseam_cm']:+5.1f} | front+side chest {fs['chest_cm']:+5.1f} "
            f"waist {fs['waist_cm']:+5.1f} hip {fs['hip_cm']:+5.1f} inseam {fs['inseam_cm']:+5.1f}",
            flush=True,
        )

    def stats(name):
        errs = {k: np.abs([r[name]["error"][k] for r in rows]) for k in KEYS}
        girth = np.concatenate([errs[k] for k in ("chest_cm", "waist_cm", "hip_cm")])
        return {
            "mean_abs_cm": {k: round(float(v.mean()), 2) for k, v in errs.items()},
            "p90_abs_cm": {k: round(float(np.percentile(v, 90)), 2) for k, v in errs.items()},
            "mean_girth_cm": round(float(girth.mean()), 2),
            "p90_girth_cm": round(float(np.percentile(girth, 90)), 2),
        }

    front, front_side = stats("front"), stats("front_side")
    summary = {
        "front_side_mean_girth_cm": front_side["mean_girth_cm"],
        "front_side_p90_girth_cm": front_side["p90_girth_cm"],
        "front_only_mean_girth_cm": front["mean_girth_cm"],
        "inseam_mean_cm": front_side["mean_abs_cm"]["inseam_cm"],
        "median_seconds_per_photo": round(float(np.median(per_photo_seconds)), 3),
    }
    result = {
        "benchmark": "avatar_accuracy",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": __import__("os").cpu_count()},
        "bodies": len(rows),
        "refused": refused,
        "photo": {"width": 1080, "height": 1920, "renderer": "pyrender (EGL)"},
        "summary": summary,
        "targets": TARGETS,
        "targets_met": {k: summary[k] <= v for k, v in TARGETS.items()},
        "front_only": front,
        "front_side": front_side,
        "per_body": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("bodies", "summary", "targets_met")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
