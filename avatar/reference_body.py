"""Reference bodies: the body of each chart size that brands model garments on.

The shape is solved so that the body's ISO measurements equal the chart's (chest, waist, hip,
stature) by Gauss-Newton on a few shape parameters, with finite differences of the measurement
(the tape-measure girths are piecewise smooth in the vertices; each solve takes seconds, once).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatar.size_chart import size_measurements
from engine.backend import to_numpy
from engine.body_fit import mean_shape
from engine.body_model import BodyModel, body_vertices
from fitroom.errors import FitroomError

TARGETS = ("chest_cm", "waist_cm", "hip_cm", "stature_cm")
# The shape parameters that move those measurements most independently of each other.
SOLVED = (
    "weight",
    "height",
    "measure-bust-circ-incr",
    "measure-waist-circ-incr",
    "measure-hips-circ-incr",
)


def rest_body(model: BodyModel, shape: np.ndarray) -> np.ndarray:
    """Reference-pose vertices (V, 3) standing on the floor (min y = 0), host float64."""
    v = to_numpy(body_vertices(model, shape)).astype(np.float64)
    v[:, 1] -= v[:, 1].min()
    return v


def solve_shape(model: BodyModel, targets: dict, gender: float, iterations: int = 8) -> tuple[np.ndarray, dict]:
    """A shape vector (S,) whose measurements match `targets` (cm), and those measurements."""
    from avatar.measurements import measure_body

    n_ph = len(model.phenotype_labels)
    idx = [
        model.phenotype_labels.index(p) if p in model.phenotype_labels else n_ph + model.local_change_labels.index(p)
        for p in SOLVED
    ]
    lo = np.array([0.0 if i < n_ph else -1.0 for i in idx])
    hi = np.ones(len(idx))
    goal = np.array([targets[k] for k in TARGETS])
    shape = mean_shape(model, gender)

    def measure(s):
        m = measure_body(rest_body(model, s), model)
        return np.array([m[k] for k in TARGETS]), m

    values, meas = measure(shape)
    for _ in range(iterations):
        r = values - goal
        if np.abs(r).max() < 0.2:
            break
        J = np.zeros((len(goal), len(idx)))
        for j, i in enumerate(idx):
            d = np.zeros_like(shape)
            d[i] = 0.02 if shape[i] + 0.02 <= hi[j] else -0.02
            J[:, j] = (measure(shape + d)[0] - values) / d[i]
        step = -np.linalg.lstsq(J.T @ J + 1e-3 * np.eye(len(idx)), J.T @ r, rcond=None)[0]
        new = shape.copy()
        new[idx] = np.clip(shape[idx] + step, lo, hi)
        new_values, new_meas = measure(new)
        if np.abs(new_values - goal).sum() >= np.abs(r).sum():
            break
        shape, values, meas = new, new_values, new_meas
    return shape, meas


def write_reference_body(model: BodyModel, size: str, sex: str, path: Path) -> dict:
    """Solves and writes the reference body of a chart size as .glb or .obj. Returns a summary."""
    from avatar.glb_export import write_body_glb
    from avatar.mesh_io import write_obj

    targets = size_measurements(size, sex)
    suffix = Path(path).suffix.lower()
    if suffix not in (".glb", ".obj"):
        raise FitroomError("bad_output", f"The reference body is written as .glb or .obj, not {suffix or 'no extension'}.")
    shape, meas = solve_shape(model, targets, gender=1.0 if sex == "female" else 0.0)
    vertices = rest_body(model, shape)
    if suffix == ".glb":
        write_body_glb(Path(path), vertices, to_numpy(model.faces))
    else:
        write_obj(Path(path), vertices, to_numpy(model.faces))
    return {
        "size": size.strip().upper(),
        "sex": sex,
        "chart": targets,
        "measurements": {k: round(float(meas[k]), 1) for k in TARGETS},
        "shape": {"labels": list(model.phenotype_labels) + list(model.local_change_labels), "values": shape.round(5).tolist()},
    }
