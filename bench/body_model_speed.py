"""Body model forward pass and body fit, NumPy against CuPy (when a GPU is usable), same machine.

Forward: shape blendshapes + rest orientations + forward kinematics + skinning of all 13,718
vertices. Fit: `engine.body_fit.fit_body` on keypoints and a silhouette made from the model itself
(no MediaPipe, so it runs where only NumPy/CuPy are). Medians over repeated runs.
Prints JSON and writes bench/results/body_model_speed[_<device>].json.

    python bench/body_model_speed.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np


def _median_seconds(fn, repeats: int, sync) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _synthetic_view(model, shape, pose, size=(540, 960), f=660.0):
    """Keypoints and a disc-free silhouette SDF of the model itself, seen from 2.4 m."""
    import cv2

    from engine.backend import to_numpy
    from engine.body_fit import ViewObservation
    from engine.body_model import body_vertices

    X = to_numpy(body_vertices(model, shape, model.xp.asarray(pose))).astype(np.float64) + [0.0, -0.1, -2.4]
    W, H = size
    uv = np.stack([W / 2 + f * X[:, 0] / -X[:, 2], H / 2 - f * X[:, 1] / -X[:, 2]], 1)
    K = to_numpy(model.keypoint_regressor).astype(np.float64) @ X
    kp = np.stack([W / 2 + f * K[:, 0] / -K[:, 2], H / 2 - f * K[:, 1] / -K[:, 2]], 1)
    mask = np.zeros((H, W), np.uint8)
    tris = np.round(uv[to_numpy(model.faces)]).astype(np.int32)
    cv2.fillPoly(mask, list(tris), 1)
    sdf = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 5) - cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    mid = (K[11] + K[12]) / 2
    return ViewObservation(kp, np.ones(len(kp)), K - mid, sdf.astype(np.float32), f, (W, H)), float(
        X[:, 1].max() - X[:, 1].min()
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--data", default=".fitroom-data/body_model.npz")
    args = ap.parse_args()

    from engine.backend import gpu_available, to_numpy
    from engine.body_fit import fit_body, mean_shape, standing_pose
    from engine.body_model import BodyModel, body_vertices

    with np.load(args.data) as f:
        arrays = {k: f[k] for k in f.files}
    backends = [("numpy", np, lambda: None)]
    device = platform.processor() or platform.machine()
    if gpu_available():
        import cupy

        backends.append(("cupy", cupy, cupy.cuda.Device().synchronize))
        device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    results = {}
    cpu_model = BodyModel.from_arrays(arrays, xp=np)
    shape = mean_shape(cpu_model, 1.0)
    pose = to_numpy(standing_pose(cpu_model, shape=shape))
    view, stature = _synthetic_view(cpu_model, shape, pose)
    for name, xp, sync in backends:
        model = BodyModel.from_arrays(arrays, xp=xp)
        pose_xp = xp.asarray(pose)
        forward = _median_seconds(lambda: body_vertices(model, shape, pose_xp), args.repeats, sync)
        fit = _median_seconds(lambda: fit_body(model, [view], stature, gender=1.0), max(3, args.repeats // 5), sync)
        results[name] = {"forward_ms": round(forward * 1e3, 2), "fit_one_view_s": round(fit, 3)}
    out = {
        "benchmark": "body_model_speed",
        "device": device,
        "numpy": np.__version__,
        "vertices": int(cpu_model.n_vertices),
        "results": results,
    }
    if "cupy" in results:
        out["cupy_speedup"] = {
            "forward": round(results["numpy"]["forward_ms"] / results["cupy"]["forward_ms"], 2),
            "fit": round(results["numpy"]["fit_one_view_s"] / results["cupy"]["fit_one_view_s"], 2),
        }
    tag = "gpu" if "cupy" in results else "cpu"
    path = Path(__file__).parent / "results" / f"body_model_speed_{tag}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
