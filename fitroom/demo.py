"""`make demo`: an avatar from generated sample photos, then a t-shirt draped on it.

The sample shopper is an Anny body of known shape, rendered full length from the front and the
side the way a phone would see it; the photos then go through the same path as real ones
(capture checks, MediaPipe, fitting, measurements) and the avatar is written to
`.fitroom-data/demo/`. Then fitroom's size advice picks the t-shirt size for the avatar, the
cloth solver drapes it in cotton jersey, and the look (look.glb) and its fit map (fitmap.png)
are written next to the avatar.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def main() -> int:
    from avatar.avatar_files import write_avatar
    from avatar.body import load_body_model
    from avatar.capture import capture_photo
    from avatar.fit import fit_avatar
    from avatar.measurements import measure_body
    from avatar.reference_body import rest_body
    from fitroom.samples import natural_standing_pose, render_photos, sample_body
    from fitroom.settings import get_settings

    model = load_body_model(device="cpu")
    rng = np.random.default_rng(7)
    height_cm, sex = 172.0, "female"
    shape = sample_body(model, rng, sex=sex, height_cm=height_cm)
    pose = natural_standing_pose(model, rng=rng)
    photos = {view: rgb for view, (rgb, _camera) in render_photos(model, shape, pose).items()}
    h, w = photos["front"].shape[:2]
    print(f"sample photos: front and side, {w}x{h} px, a {sex} shopper of {height_cm:.0f} cm")

    times = []
    for _ in range(2):  # the first run also loads MediaPipe and builds the fit's keypoint tables
        start = time.perf_counter()
        captures = [capture_photo(photos[view], view=view) for view in ("front", "side")]
        avatar = fit_avatar(model, captures, height_cm, sex=sex)
        times.append(time.perf_counter() - start)
    out = get_settings().data_dir / "demo"
    write_avatar(out, avatar, model)

    truth = measure_body(rest_body(model, shape), model)
    print(f"avatar in {times[1]:.2f} s for two photos (capture + fit; {times[0]:.2f} s on the first, cold run)")
    print(f"written to {out}/avatar.glb and {out}/avatar.json")
    print(f"{'measurement':>20} {'avatar':>8} {'truth':>8} {'error':>7}")
    for key in ("stature_cm", "chest_cm", "waist_cm", "hip_cm", "inseam_cm", "shoulder_width_cm"):
        a, t = avatar.measurements[key], truth[key]
        print(f"{key:>20} {a:8.1f} {t:8.1f} {a - t:+7.1f}")
    print(f"keypoint residual {avatar.summary()['fit_residual_px']} px, silhouette residual {avatar.summary()['silhouette_residual_px']} px")
    drape_tshirt(model, out)
    print("see it live: .venv/bin/python -m fitroom.cli serve, then open http://127.0.0.1:8000 "
          "(the storefront page: garments, sizes, lights, fit map, AR); brands: fitroom brand create NAME")
    return 0


def drape_tshirt(model, out) -> None:
    """Drapes the recommended t-shirt size on the avatar in `out` and writes the look there."""
    from assets.procedural_garments import procedural_garment
    from assets.try_on import chart_ranking, look_summary, shopper_body, try_on, write_look
    from engine.fabrics import fabric_preset

    body = shopper_body(model, out / "avatar.json")
    ranking = chart_ranking("tshirt", body.sex, body)
    size = ranking[0]["size"]
    garment = procedural_garment(model, "tshirt", size, body.sex, target_vertices=5000)
    look = try_on(model, body, garment, fabric_preset("cotton_jersey"))
    write_look(look, out / "look.glb", out / "fitmap.png", faces=np.asarray(model.faces))
    s = look_summary(look)
    print(f"size advice: {'; '.join(r['reason'] for r in ranking[:3])}")
    print(f"draped a {size} t-shirt ({s['vertices']} vertices, cotton jersey) in {s['seconds']:.1f} s, {s['substeps']} steps, "
          f"{'settled' if s['converged'] else 'not settled'}; strain p50 {s['strain_p50']} %, p95 {s['strain_p95']} %, "
          f"max penetration {s['max_penetration_mm']} mm, {s['self_intersections']} self-intersections, ease {s['ease_cm']} cm")
    print(f"written to {out}/look.glb and {out}/fitmap.png")


if __name__ == "__main__":
    sys.exit(main())
