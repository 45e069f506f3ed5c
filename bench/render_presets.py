"""Render time of the live try-on (`streaming.frame_source.FrameSource`) per light preset, with and
without shadow maps: a draped t-shirt (about 1500 vertices) on fitroom's M reference body, the
camera turning a little before every frame so each one is really rendered. Prints JSON.

    .venv/bin/python bench/render_presets.py [--width 1280 --height 720 --frames 40 --out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from engine.body_model import BodyModel
    from fitroom.settings import get_settings
    from streaming.frame_source import FrameSource
    from streaming.lighting import LIGHT_NAMES
    from tests.streaming.look_fixture import small_look

    with np.load(get_settings().body_model_path) as a:
        model = BodyModel.from_arrays({k: a[k] for k in a.files}, xp=np)
    look = small_look(model)
    results = []
    for shadow_maps in (False, True):
        with FrameSource(args.width, args.height, shadow_maps=shadow_maps) as fs:
            fs.set_look(look["body_vertices"], look["body_faces"], look["garment_vertices"], look["garment_faces"],
                        fitmap_colors=look["fitmap_colors"])
            fs.frame()  # shader compilation and uploads
            for name in LIGHT_NAMES:
                fs.set_light(name)
                times = []
                for _ in range(args.frames):
                    fs.camera.orbit(0.02, 0.0)
                    fs.frame()
                    times.append(fs.stats.render_ms)
                results.append({"preset": name, "shadow_maps": shadow_maps,
                                "p50_ms": round(float(np.percentile(times, 50)), 1),
                                "p95_ms": round(float(np.percentile(times, 95)), 1)})
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
            gl = fs._renderer.gl_renderer
            samples = fs._renderer.samples
    report = {"width": args.width, "height": args.height, "frames": args.frames, "gl_renderer": gl,
              "samples": samples, "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
              "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": results}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
