"""Where MediaPipe's landmarks sit relative to the body model's keypoints, measured once.

MediaPipe Pose and Anny's COCO keypoint regressor do not mean quite the same points: MediaPipe's
hips sit about 1.3 % of the stature higher, its ankles and heels about 1 % lower, its ears further
out. Left in, such differences bend the fitted shape (longer legs, wider shoulders). They are
measured on synthetic shoppers whose true keypoints are known (`fitroom.samples`): per view and
sex, the mean of (MediaPipe landmark - projected model keypoint), in units of the person's height
in the photo. The fit subtracts them from the detections (`corrected_landmarks`).

The front table is made left-right symmetric (a body's left and right landmarks mean the same
thing; the renders' light is not symmetric). The side table is for a body facing the camera's
right, its right side near; a body facing the other way uses it mirrored.

    .venv/bin/python -m avatar.landmark_offsets --bodies 40 --seed 1   # rewrites the table
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np

from fitroom.files import write_atomic

TABLE_PATH = Path(__file__).with_name("data") / "mediapipe_landmark_offsets.json"
N_LANDMARKS = 33
# MediaPipe Pose's left/right landmark pairs (the face, arms, hands, legs and feet).
MIRROR_PAIRS = ((1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18),
                (19, 20), (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32))


def mirror_index() -> np.ndarray:
    """(33,) the index of each landmark's left/right twin (itself for the nose)."""
    idx = np.arange(N_LANDMARKS)
    for a, b in MIRROR_PAIRS:
        idx[a], idx[b] = b, a
    return idx


def person_height_px(mask: np.ndarray, threshold: float = 0.5) -> float:
    """The person's height in the photo (px): the rows the mask (H, W) covers, top to bottom."""
    rows = np.flatnonzero((np.asarray(mask) > threshold).any(axis=1))
    return float(rows[-1] - rows[0] + 1) if len(rows) else 0.0


def faces_image_left(landmarks_px: np.ndarray) -> bool:
    """In a profile, whether the body faces the image's left (its nose left of its ears)."""
    return bool(landmarks_px[0, 0] < (landmarks_px[7, 0] + landmarks_px[8, 0]) / 2.0)


def mirrored(points: np.ndarray) -> np.ndarray:
    """Per-landmark image vectors (33, 2) of the mirror-image body: left and right swapped, u negated."""
    return np.asarray(points)[mirror_index()] * np.array([-1.0, 1.0])


def symmetric(offsets: np.ndarray) -> np.ndarray:
    """Front-view offsets (33, 2) averaged with their mirror image (u flips, v stays)."""
    return (offsets + mirrored(offsets)) / 2.0


@functools.lru_cache(maxsize=1)
def load_table(path: str = str(TABLE_PATH)) -> dict:
    """{(view, sex): (33, 2) offsets}, sex 'female', 'male' or None (either)."""
    raw = json.loads(Path(path).read_text())
    return {(view, None if sex == "any" else sex): np.asarray(v, np.float64)
            for view, by_sex in raw["offsets"].items() for sex, v in by_sex.items()}


def corrected_landmarks(landmarks_px: np.ndarray, mask: np.ndarray, view: str, sex: str | None = None,
                        table: dict | None = None) -> np.ndarray:
    """MediaPipe's landmarks (33, 2) px moved onto the body model's keypoints' meaning.

    mask : (H, W) person probability, for the person's height in pixels. view : 'front' or 'side'.
    sex : 'female', 'male' or None (the table for either).
    """
    table = load_table() if table is None else table
    offsets = table[(view, sex)]
    if view == "side" and faces_image_left(landmarks_px):
        offsets = mirrored(offsets)
    return np.asarray(landmarks_px, np.float64) - offsets * person_height_px(mask)


def measure_offsets(n_bodies: int = 40, seed: int = 1) -> dict:
    """The offsets table, measured on `n_bodies` synthetic shoppers (half women, half men).

    Each is photographed front and side in its own random standing pose (`fitroom.samples`), and
    captured with the real MediaPipe. Returns the JSON-ready table with its provenance.
    """
    import mediapipe

    from avatar.body import load_body_model
    from avatar.capture import capture_photo
    from avatar.fit import MEDIAPIPE_INDEX  # here: avatar.fit imports this module
    from engine.backend import to_numpy
    from fitroom.samples import natural_standing_pose, placed_body, render_photos, sample_body

    model = load_body_model(device="cpu")
    regressor = to_numpy(model.keypoint_regressor).astype(np.float64)
    keypoint = {label: model.keypoint_labels.index(label) for label in MEDIAPIPE_INDEX}
    rng = np.random.default_rng(seed)
    samples = {(v, s): [] for v in ("front", "side") for s in ("female", "male")}
    for i in range(n_bodies):
        sex = ("female", "male")[i % 2]
        shape = sample_body(model, rng, sex=sex, height_cm=float(rng.uniform(150.0, 195.0)))
        for view in ("front", "side"):
            pose = natural_standing_pose(model, rng=rng)
            rgb, camera = render_photos(model, shape, pose, views=(view,))[view]
            capture = capture_photo(rgb, view=view)
            true_px = camera.project(regressor @ placed_body(model, shape, pose, view))
            d = np.zeros((N_LANDMARKS, 2))
            for label, j in MEDIAPIPE_INDEX.items():
                d[j] = capture.landmarks_px[j] - true_px[keypoint[label]]
            samples[(view, sex)].append(d / person_height_px(capture.mask))
    offsets, spread = {}, {}
    for view in ("front", "side"):
        offsets[view], spread[view] = {}, {}
        for sex in ("female", "male", "any"):
            d = np.array([x for s in ("female", "male") if sex in (s, "any") for x in samples[(view, s)]])
            mean = symmetric(d.mean(0)) if view == "front" else d.mean(0)
            offsets[view][sex] = np.round(mean, 5).tolist()
            spread[view][sex] = np.round(d.std(0), 5).tolist()
    return {
        "what": "mean MediaPipe landmark minus Anny COCO keypoint, in units of the person's height in the photo",
        "mediapipe": mediapipe.__version__,
        "bodies": n_bodies,
        "seed": seed,
        "landmarks": N_LANDMARKS,
        "offsets": offsets,
        "spread": spread,
    }


def write_table(table: dict, path: Path = TABLE_PATH) -> None:
    """Writes the table as JSON, atomically."""
    write_atomic(path, json.dumps(table, indent=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bodies", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1, help="not 0: the accuracy benchmark's bodies")
    ap.add_argument("-o", "--out", type=Path, default=TABLE_PATH)
    args = ap.parse_args(argv)
    write_table(measure_offsets(args.bodies, args.seed), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
