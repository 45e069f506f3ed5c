"""Render time of the live try-on (`streaming.frame_source.FrameSource`) per light preset, with and
without shadow maps: a draped t-shirt (about 1500 vertices) on fitroom's M reference body, the
camera turning a little before every frame so each one is really rendered. Prints JSON.

    .venv/bin/python bench/render_presets.py [--width 1280 --height 720 --frames 40 --out FILE]

`--shadow-variants` measures instead what cheaper shadow maps would cost (issue 5, the table in
docs/streaming.md "Shadows"): the studio preset with no shadow maps, with all three rig lights
casting at a shadow texture of 2048 (pyrender's fixed `SHADOW_TEX_SZ`), 1024, 512 and 256 px, and
with the key light alone casting at the same sizes; each frame timed rendered, and rendered + stamped
+ converted to YUV + H.264-encoded as `streaming.video_track.SessionVideoTrack` does. The variants
take turns frame by frame (`--frames` each), so a burst of other work on the machine hits all of
them; the result is merged into `--out` under "shadow_variants", other keys kept; `--png DIR`
saves each variant's last frame. The
pyrender hooks this needs (`_shadow_variant`) are for this measurement only, not used by the product.
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
    ap.add_argument("--shadow-variants", action="store_true", help="shadow texture sizes and casting lights")
    ap.add_argument("--png", type=Path, help="with --shadow-variants: a folder for each variant's last frame")
    args = ap.parse_args()
    if args.shadow_variants:
        shadow_variants(args)
        return

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


def _shadow_variant(fs, casters: str, px: int) -> None:
    """Turns `fs` (a `FrameSource` with a look, one frame rendered) into a shadow-map variant.

    casters : "none", "all" (the three rig lights) or "key" (the key light alone); px : the shadow
    texture's size. Measurement-only hooks on pyrender 0.1.45 (none copies its code):
    - size: each light gets a `pyrender.Texture` of `px` (pyrender makes `SHADOW_TEX_SZ` = 2048 ones
      only for a light without one), and this renderer's shadow pass viewport is set to the light's
      texture (pyrender sets it to `SHADOW_TEX_SZ`);
    - key alone: pyrender's shadow flag is per light type, and with `SHADOWS_DIRECTIONAL` its shader
      looks up a shadow map for every directional light (skipping a light's depth pass saves only
      that pass: 116 against 123 ms p50 at 2048 px in a scratch run), so fill and rim become spot
      lights 50 m away (intensity x 50^2, a 180 degree cone): the same light within about 6 % in
      brightness and 2 degrees in direction over the look (enough to time it), without a shadow map.
    """
    import pyrender
    from OpenGL.GL import GL_FLOAT, glViewport

    from streaming.lighting import rig_lights
    from streaming.render import _light_pose

    if casters == "none":
        fs.shadow_maps = False
        return
    fs.shadow_maps = True
    inner = fs._renderer._renderer._renderer
    configure = inner._configure_shadow_mapping_viewport

    def configure_viewport(light, flags):
        configure(light, flags)
        glViewport(0, 0, light.shadow_texture.width, light.shadow_texture.height)

    inner._configure_shadow_mapping_viewport = configure_viewport
    scene = fs._scene
    for node in scene._lights:
        node.light.shadow_texture = pyrender.Texture(width=px, height=px, source_channels="D", data_format=GL_FLOAT)
    if casters == "all":
        return
    for node in scene._lights[1:]:
        scene.scene.remove_node(node)
    scene._lights = scene._lights[:1]
    spots = [scene.scene.add(pyrender.SpotLight(innerConeAngle=np.pi / 2 - 0.02, outerConeAngle=np.pi / 2))
             for _ in range(2)]
    render, far = scene.render, 50.0

    def render_key_casting(renderer, camera, yaw, shadow_maps=False):
        lo, hi = scene._bounds
        for node, light in zip(spots, rig_lights(scene.preset, yaw)[1:]):
            direction = np.asarray(light.direction, np.float64) / np.linalg.norm(light.direction)
            node.light.color = np.asarray(light.color, np.float64)
            node.light.intensity = float(light.intensity) * far**2
            pose = _light_pose(direction)
            pose[:3, 3] = (lo + hi) / 2.0 - far * direction
            scene.scene.set_pose(node, pose)
        return render(renderer, camera, yaw, shadow_maps)

    scene.render = render_key_casting


def shadow_variants(args) -> None:
    """`--shadow-variants` (see the module docstring)."""
    import av

    from engine.body_model import BodyModel
    from fitroom.settings import get_settings
    from streaming.frame_source import FrameSource
    from streaming.frame_stamp import stamp_counter
    from streaming.video_encoder import TIME_BASE, SharedEncoder
    from tests.streaming.look_fixture import small_look

    with np.load(get_settings().body_model_path) as a:
        model = BodyModel.from_arrays({k: a[k] for k in a.files}, xp=np)
    look = small_look(model)
    variants = [("none", 0)] + [(c, px) for c in ("all", "key") for px in (2048, 1024, 512, 256)]
    sources = {}
    for casters, px in variants:
        fs = FrameSource(args.width, args.height, light="studio")
        fs.set_look(look["body_vertices"], look["body_faces"], look["garment_vertices"], look["garment_faces"])
        fs.frame()  # shader compilation and uploads
        _shadow_variant(fs, casters, px)
        fs.camera.orbit(0.02, 0.0)
        fs.frame()  # the variant's shaders and shadow textures
        sources[casters, px] = fs
    encoders = {v: SharedEncoder("h264", args.width, args.height, 20, 2_000_000) for v in variants}
    times = {v: ([], []) for v in variants}  # render, render + encode (ms)
    loads = []
    for i in range(args.frames):  # one frame of each variant in turn: a burst of other work hits them all
        for v, fs in sources.items():
            fs.camera.orbit(0.02, 0.0)
            t0 = time.perf_counter()
            image = fs.frame().copy()
            t1 = time.perf_counter()
            stamp_counter(image, i)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i * 90_000 // 20, TIME_BASE
            encoders[v].encode(frame, i % 40 == 0)
            t2 = time.perf_counter()
            times[v][0].append((t1 - t0) * 1000.0)
            times[v][1].append((t2 - t0) * 1000.0)
        if i % 10 == 9:
            loads.append(round(os.getloadavg()[0], 2))
            print(json.dumps({"frames": i + 1, "load_avg_1m": loads[-1]}), file=sys.stderr, flush=True)
    gl = next(iter(sources.values()))._renderer.gl_renderer
    if args.png:  # to look at: acne (stripes), the shadows on the floor
        from PIL import Image

        args.png.mkdir(parents=True, exist_ok=True)
        for (casters, px), fs in sources.items():
            Image.fromarray(fs.frame()).save(args.png / f"{casters}_{px}.png")
    for fs in sources.values():
        fs.close()
    results = []
    for (casters, px), (render, total) in times.items():
        results.append({"casters": casters, "shadow_px": px,
                        **{f"{name}_p{q}_ms": round(float(np.percentile(x, q)), 1)
                           for name, x in (("render", render), ("render_encode", total)) for q in (50, 95)}})
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    report = {"width": args.width, "height": args.height, "preset": "studio", "frames": args.frames,
              "gl_renderer": gl, "cpus": os.cpu_count(), "load_avg_1m_every_10_frames": loads,
              "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": results}
    print(json.dumps(report, indent=1))
    if args.out:
        doc = json.loads(args.out.read_text()) if args.out.exists() else {}
        doc["shadow_variants"] = report
        args.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
