"""A validated brand model made ready for the web and AR: normalised, decimated, textured, packaged.

`process_model` runs the stages below on an extracted .glb, .gltf (buffers and textures beside it)
or .obj (.mtl and textures beside it), reporting `progress(fraction, stage)` between them:

1. load: trimesh, into flat parts (`model_load`);
2. normalise: units, axes, origin, missing normals (`model_normalise`, which documents the rules:
   a garment keeps its place around its reference body, everything else stands on the floor);
3. levels of detail: about 100 %, 25 % and 5 % of the triangles by quadric decimation, textures
   exact (`mesh_lod`);
4. textures: power of two, at most 2048 px for the full level and 1024 and 512 px for the 25 % and
   5 % levels, which are seen from further away (`texture_resize`);
5. a GLB per level (`glb_write`) and a USDZ of the full level for AR Quick Look (`usdz_export`).

The thumbnail is rendered by `streaming.thumbnail` from one of the GLBs (assets/ does no GL).
Nothing is written outside temporary folders, which are always removed.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np

from assets.glb_write import parts_glb_bytes
from assets.mesh_lod import decimate_levels
from assets.model_load import load_parts
from assets.model_normalise import bounds, normalise_parts
from assets.texture_resize import MAX_TEXTURE_PX, EncodedTexture, encode_texture, fit_texture
from assets.usdz_export import usdz_bytes
from fitroom.errors import FitroomError

__all__ = ["LOD_RATIOS", "LOD_TEXTURE_PX", "LevelOfDetail", "ProcessedAsset", "process_model"]

LOD_RATIOS = (1.0, 0.25, 0.05)
LOD_TEXTURE_PX = (MAX_TEXTURE_PX, 1024, 512)


@dataclasses.dataclass(frozen=True)
class LevelOfDetail:
    """One level: ratio (target fraction of the triangles), triangles (count), glb (bytes),
    texture_px (largest texture side allowed at this level)."""

    ratio: float
    triangles: int
    glb: bytes
    texture_px: int


@dataclasses.dataclass(frozen=True)
class ProcessedAsset:
    """The processing result.

    lods : levels of detail, full first. usdz : the AR Quick Look package (bytes).
    bounds_m : (2, 3) [min, max] corners of the normalised model, metres, +Y up.
    notes : what normalisation did, in words (e.g. "scaled cm -> m", "rotated Z-up -> Y-up").
    seconds : wall time per stage (for benchmarks and logs).
    """

    lods: list
    usdz: bytes
    bounds_m: tuple
    notes: list
    seconds: dict


class _Textures:
    """Each source image fitted and encoded once per size cap, smaller ones from the full one."""

    def __init__(self):
        self._fitted: dict = {}
        self._encoded: dict = {}

    def fitted(self, img, cap: int):
        key = (id(img), cap)
        if key not in self._fitted:
            base = img if cap == MAX_TEXTURE_PX else self.fitted(img, MAX_TEXTURE_PX)
            self._fitted[key] = (img, fit_texture(base, cap))  # keep img alive: its id is the key
        return self._fitted[key][1]

    def encoder(self, cap: int) -> Callable[[object], EncodedTexture]:
        def encode(img) -> EncodedTexture:
            key = (id(img), cap)
            if key not in self._encoded:
                self._encoded[key] = encode_texture(self.fitted(img, cap))
            return self._encoded[key]

        return encode


def process_model(main_file: Path, *, kind: str, progress=None, up_axis: str = "auto") -> ProcessedAsset:
    """Normalises a brand model and writes its web and AR files (see the module docstring).

    Parameters
    ----------
    main_file : Path
        The extracted .glb, .gltf or .obj (its resources beside it).
    kind : str
        "garment", "footwear", "accessory", "furniture" or "other".
    progress : callable(fraction: float, stage: str), optional
        Called between stages with the fraction done in [0, 1].
    up_axis : "auto", "y" or "z"
        The file's up axis when the brand knows it; "auto" applies `model_normalise`'s rule.

    Raises
    ------
    FitroomError
        `unreadable_model`, `no_triangles`, `non_finite_vertices`, `face_index_out_of_range`,
        `bad_kind`, `degenerate_model` or `processing_failed`, each with a plain message.
    """
    report = progress or (lambda fraction, stage: None)
    seconds: dict = {}
    clock = time.perf_counter()

    def stage_done(name: str, fraction: float, next_stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = now - clock
        clock = now
        report(fraction, next_stage)

    main_file = Path(main_file)
    report(0.0, "loading")
    parts = load_parts(main_file)
    stage_done("load", 0.1, "normalising")
    parts, notes = normalise_parts(parts, kind, suffix=main_file.suffix, up_axis=up_axis)
    stage_done("normalise", 0.25, "decimating")
    try:
        per_part = [decimate_levels(p, LOD_RATIOS) for p in parts]
        levels = [[lv[i] for lv in per_part] for i in range(len(LOD_RATIOS))]
        stage_done("decimate", 0.45, "writing GLB")
        textures = _Textures()
        lods = []
        for ratio, cap, level in zip(LOD_RATIOS, LOD_TEXTURE_PX, levels):
            glb = parts_glb_bytes(level, textures.encoder(cap), name=main_file.stem)
            lods.append(LevelOfDetail(ratio, int(sum(len(p.faces) for p in level)), glb, cap))
        stage_done("glb", 0.75, "writing USDZ")
        usdz = usdz_bytes(levels[0], textures.encoder(LOD_TEXTURE_PX[0]))
        stage_done("usdz", 1.0, "done")
    except FitroomError:
        raise
    except Exception as e:  # a library failing on odd but valid input: say so plainly, keep the cause
        raise FitroomError("processing_failed", f"{main_file.name} could not be processed: {e}") from e
    b = bounds(parts)
    return ProcessedAsset(
        lods=lods, usdz=usdz, bounds_m=tuple(map(tuple, np.round(b, 6).tolist())), notes=notes, seconds=seconds
    )
