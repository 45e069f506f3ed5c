"""Units, axes, origin and normals of a brand's model, brought to fitroom's frame.

fitroom's frame is glTF's: metres, +Y up, the front facing +Z. Reference bodies stand in it with
their feet on y = 0. The rules, in the order applied:

Units. A model whose largest extent is plausible in metres for its kind (`KIND_SIZES`) is in
metres. Otherwise it is read as centimetres, then millimetres, whichever is plausible, the one
nearest the kind's typical size when both are (a 900-unit chair: 0.9 m, not 9 m). A model
plausible in no unit is left as it is, with a note (the validator reports sizes).

Axes. `up_axis="y"` or `"z"` says it; `"auto"` decides: glTF is +Y up by its specification, so
a .glb/.gltf is never turned. An OBJ has no convention (most exporters write +Y up, CAD tools +Z
up), and only a garment has a shape that tells: its front-to-back depth is its smallest extent, so
a garment whose Y extent is the smallest, and clearly smaller than its Z extent, is Z-up (height
along Z, front facing -Y, as in Blender or Anny) and is turned by -90 degrees about X, which maps
Z-up/front -Y onto Y-up/front +Z. Furniture and the rest cannot be told apart lying or standing,
so they keep +Y unless `up_axis` says otherwise.

Origin. A garment keeps its place: it was modelled around a reference body and that placement is
what fits it onto the shopper's body later, so only units and axes change. Everything else
(footwear, furniture, accessories, other products) is moved to stand on the floor (lowest point at
y = 0) centred over the origin in x and z, where AR viewers place it.

Normals. A part without normals gets crease-aware smooth ones (`mesh_normals.crease_normals`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from assets.mesh_normals import crease_normals
from assets.model_load import Part
from fitroom.errors import FitroomError

__all__ = ["KINDS", "KIND_SIZES", "Z_UP_TO_Y_UP", "normalise_parts", "bounds"]

KINDS = ("garment", "footwear", "accessory", "furniture", "other")
# Largest extent in metres: (smallest plausible, largest plausible, typical).
KIND_SIZES = {
    "garment": (0.05, 3.0, 0.7),
    "footwear": (0.05, 1.0, 0.3),
    "accessory": (0.01, 2.0, 0.25),
    "furniture": (0.1, 10.0, 1.0),
    "other": (0.01, 10.0, 0.5),
}
_UNITS = (("cm", 0.01), ("mm", 0.001))
# Rotation (3, 3) by -90 degrees about X: (x, y, z) -> (x, z, -y), Z-up onto Y-up, front -Y onto +Z.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def bounds(parts) -> np.ndarray:
    """Axis-aligned bounds (2, 3) [min, max] of all parts' vertices."""
    v = np.concatenate([p.vertices for p in parts])
    return np.stack([v.min(0), v.max(0)])


def _unit_scale(extent: float, kind: str) -> tuple[float, str | None]:
    lo, hi, typical = KIND_SIZES[kind]
    if lo <= extent <= hi:
        return 1.0, None
    fits = [(abs(np.log(extent * s / typical)), unit, s) for unit, s in _UNITS if lo <= extent * s <= hi]
    if not fits:
        return 1.0, f"size {extent:.3g} is unusual for {kind} in any unit; left unscaled"
    _, unit, s = min(fits)
    return s, f"scaled {unit} -> m (largest extent {extent:.4g} {unit} = {extent * s:.3g} m)"


def _looks_z_up(parts, kind: str) -> bool:
    ext = np.ptp(bounds(parts), axis=0)
    return kind == "garment" and ext[1] <= ext.min() and ext[1] < 0.8 * ext[2]


def _transform(part: Part, rotation: np.ndarray, scale: float, offset: np.ndarray) -> Part:
    """Part with vertices -> (R v) * scale + offset and normals rotated."""
    normals = None if part.normals is None else (part.normals.astype(np.float64) @ rotation.T).astype(np.float32)
    return dataclasses.replace(part, vertices=(part.vertices @ rotation.T) * scale + offset, normals=normals)


def _with_normals(part: Part) -> Part:
    source, faces, normals = crease_normals(part.vertices, part.faces)
    take = lambda a: None if a is None else a[source]  # noqa: E731
    return dataclasses.replace(
        part, vertices=part.vertices[source], faces=faces, normals=normals, uv=take(part.uv), colors=take(part.colors)
    )


def normalise_parts(parts, kind: str, *, suffix: str, up_axis: str = "auto") -> tuple[list[Part], list[str]]:
    """Parts in fitroom's frame (see the module docstring) and notes of what was changed.

    Parameters
    ----------
    parts : Part list from `model_load.load_parts`.
    kind : one of KINDS. suffix : the source file's suffix (".glb", ".gltf", ".obj").
    up_axis : "auto", "y" or "z": the file's up axis.
    """
    if kind not in KINDS:
        raise FitroomError("bad_kind", f"kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    if up_axis not in ("auto", "y", "z"):
        raise FitroomError("bad_up_axis", f"up_axis must be auto, y or z, not {up_axis!r}.")
    notes = []
    extent = float(np.ptp(bounds(parts), axis=0).max())
    if extent <= 0:
        raise FitroomError("degenerate_model", "The model has no extent: all its vertices are at one point.")
    scale, note = _unit_scale(extent, kind)
    if note:
        notes.append(note)
    z_up = up_axis == "z" or (up_axis == "auto" and suffix.lower() == ".obj" and _looks_z_up(parts, kind))
    rotation = Z_UP_TO_Y_UP if z_up else np.eye(3)
    if z_up:
        notes.append("rotated Z-up -> Y-up" + (" (garment shape: depth along Y)" if up_axis == "auto" else ""))
    parts = [_transform(p, rotation, scale, np.zeros(3)) for p in parts]
    if kind == "garment":
        notes.append("garment kept in its reference body's frame (metres, +Y up, feet at y = 0)")
    else:
        lo, hi = bounds(parts)
        offset = -np.array([(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2])
        if np.abs(offset).max() > 1e-4:
            parts = [_transform(p, np.eye(3), 1.0, offset) for p in parts]
            notes.append("moved to stand on the floor, centred in x and z (by {:.3f}, {:.3f}, {:.3f} m)".format(*offset))
    missing = [i for i, p in enumerate(parts) if p.normals is None]
    if missing:
        parts = [_with_normals(p) if p.normals is None else p for p in parts]
        notes.append(f"computed normals for {len(missing)} of {len(parts)} parts")
    return parts, notes
