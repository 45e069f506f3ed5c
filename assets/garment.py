"""A garment ready to drape: its mesh as authored on a reference body, and what it was made for."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class GarmentMaterial:
    """How a garment looks, per vertex of `Garment.vertices` (as read: seams not welded).

    uv : (N, 2) float32 texture coordinates, origin bottom-left (OpenGL's; trimesh flips glTF's).
    texture : (h, w, 3 or 4) uint8 sRGB base colour image, or None.
    normal_map : (h, w, 3) uint8 tangent-space normal map, or None.
    roughness : float in [0, 1], or (h, w) uint8 roughness map.
    """

    uv: np.ndarray
    texture: np.ndarray | None = None
    normal_map: np.ndarray | None = None
    roughness: object = 0.85


@dataclasses.dataclass
class Garment:
    """A garment mesh around the body it was authored on.

    vertices : (N, 3) float64, metres, fitroom's world frame (+Y up, body facing +Z), as authored
        around `body_vertices`. Its edge lengths are the fabric's rest lengths.
    faces : (F, 3) int64, counter-clockwise seen from outside the garment.
    attached : (N,) bool, vertices held to the body while the rest settles (a waistband), or all False.
    body_vertices : (V, 3) float64, the body the garment was authored on, in Anny's topology.
    kind : `tshirt`, `longsleeve`, `dress`, `skirt`, `trousers`, or `custom` for uploaded meshes.
    size : the letter size (XS..XL) or "" when unknown.
    sex : `female` or `male`: the size chart the garment was graded on.
    girths_cm : the garment's own girths where it has them (`chest`, `waist`, `hip`), cm.
    size_chart : a catalogue garment's size chart {size: {chest_cm, waist_cm, hip_cm, length_cm}} (the
        brand's garment measurements, cm), or None; the size advice ranks its sizes.
    modelled_size : the chart size the mesh was made in, when known (its design ease is read there).
    material : its texture coordinates and PBR maps (a catalogue garment's GLB), or None.
    """

    vertices: np.ndarray
    faces: np.ndarray
    attached: np.ndarray
    body_vertices: np.ndarray
    kind: str = "custom"
    size: str = ""
    sex: str = "female"
    girths_cm: dict = dataclasses.field(default_factory=dict)
    size_chart: dict | None = None
    modelled_size: str | None = None
    material: GarmentMaterial | None = None
