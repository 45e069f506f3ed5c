"""An avatar on disk: `avatar.json` (parameters, poses, measurements) and `avatar.glb` (skinned mesh).

Only parameters and measurements are kept: no photo, no pixel of one, ever reaches the disk.
Both files are written to temporary names first and renamed once both are complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from engine.backend import to_numpy
from engine.body_model import BodyModel, forward_kinematics, rest_shape, shape_coefficients, skin
from engine.rotations import matrix_to_rotvec
from fitroom.errors import FitroomError

FORMAT = "fitroom.avatar/1"
VIEWS = ("front", "side")


def avatar_document(avatar, model: BodyModel) -> dict:
    """The JSON document of a fitted avatar (see `avatar.fit.Avatar`)."""
    n_ph = len(model.phenotype_labels)
    shape = np.asarray(avatar.shape, np.float64)
    poses = []
    for view, pose, (R, t) in zip(VIEWS, avatar.fit.poses, avatar.fit.placements):
        rv = to_numpy(matrix_to_rotvec(np.asarray(pose)))
        moved = np.nonzero(np.linalg.norm(rv, axis=1) > 1e-6)[0]
        poses.append(
            {
                "view": view,
                # Anny's local-ref deltas in fitroom's world frame, as rotation vectors (radians).
                "bones": {model.bone_labels[b]: rv[b].round(5).tolist() for b in moved},
                "camera_from_body": {"rotation": np.asarray(R).round(6).tolist(), "translation_m": np.asarray(t).round(5).tolist()},
            }
        )
    return {
        "format": FORMAT,
        "height_cm": avatar.height_cm,
        "sex": avatar.sex,
        "body_model": "anny",
        "shape": {
            "phenotypes": {k: round(float(v), 5) for k, v in zip(model.phenotype_labels, shape[:n_ph])},
            "local_changes": {
                k: round(float(v), 5) for k, v in zip(model.local_change_labels, shape[n_ph:]) if abs(v) > 1e-6
            },
        },
        "poses": poses,
        "measurements": {k: round(float(v), 2) for k, v in avatar.measurements.items()},
        "fit": avatar.summary(),
    }


def shape_from_document(doc: dict, model: BodyModel) -> np.ndarray:
    """The shape vector (S,) of an avatar document."""
    if doc.get("format") != FORMAT:
        raise FitroomError("bad_avatar", f"Not a fitroom avatar file (format {doc.get('format')!r}).")
    n_ph = len(model.phenotype_labels)
    shape = np.zeros(model.n_shape)
    try:
        for k, v in doc["shape"]["phenotypes"].items():
            shape[model.phenotype_labels.index(k)] = float(v)
        for k, v in doc["shape"].get("local_changes", {}).items():
            shape[n_ph + model.local_change_labels.index(k)] = float(v)
    except (KeyError, ValueError, TypeError) as e:
        raise FitroomError("bad_avatar", f"The avatar file's shape is malformed ({e}).") from e
    if not np.all(np.isfinite(shape)):
        raise FitroomError("bad_avatar", "The avatar file's shape has non-finite values.")
    return shape


def read_avatar(path: Path, model: BodyModel) -> tuple[dict, np.ndarray]:
    """(document, shape vector) from an avatar.json file or the folder holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / "avatar.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FitroomError("bad_avatar", f"Cannot read the avatar file {path}: {e}.") from e
    if not isinstance(doc, dict):
        raise FitroomError("bad_avatar", f"{path} is not a fitroom avatar file.")
    return doc, shape_from_document(doc, model)


def write_avatar(out_dir: Path, avatar, model: BodyModel) -> None:
    """Writes OUT_DIR/avatar.json and OUT_DIR/avatar.glb (skinned, in the reference pose)."""
    from avatar.glb_export import write_skinned_glb

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    coeffs = shape_coefficients(model, avatar.shape)
    rest = rest_shape(model, coeffs)
    identity = model.xp.broadcast_to(model.xp.eye(3), (model.n_bones, 3, 3)).copy()
    posed = forward_kinematics(model, rest, identity, model.xp.zeros(3))
    # avatar.vertices stand on the floor: the skeleton moves up with them.
    lift = np.array([0.0, float(-to_numpy(skin(model, rest.vertices, posed))[:, 1].min()), 0.0])
    doc = avatar_document(avatar, model)
    tmp_json = _temp_path(out_dir, ".json")
    tmp_glb = _temp_path(out_dir, ".glb")
    try:
        tmp_json.write_text(json.dumps(doc, indent=1))
        write_skinned_glb(
            tmp_glb,
            vertices=np.asarray(avatar.vertices),
            faces=to_numpy(model.faces),
            bone_heads=to_numpy(posed.heads) + lift,
            bone_orientations=to_numpy(posed.rotations @ rest.orientations),
            parents=model.parents,
            bone_labels=model.bone_labels,
            bone_weights=to_numpy(model.bone_weights),
            bone_indices=to_numpy(model.bone_indices),
        )
        os.replace(tmp_glb, out_dir / "avatar.glb")
        os.replace(tmp_json, out_dir / "avatar.json")
    finally:
        tmp_json.unlink(missing_ok=True)
        tmp_glb.unlink(missing_ok=True)


def _temp_path(folder: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(dir=folder, prefix=".avatar-", suffix=suffix + ".tmp")
    os.close(fd)
    return Path(name)
