"""Budgets and geometry sanity of a 3D product, after the Khronos 3D Commerce asset guidelines.

Arrays in, problems out. A *warning* is a recommendation from the guidelines (the asset still
works, but is heavy or odd on the web and in AR); an *error* is a hard limit fitroom chose, past
which an upload is refused:

==================  ===========================  ============================================
what                recommended (warning)        hard limit (error)
==================  ===========================  ============================================
triangles           ≤ 100,000                    ≤ 1,000,000 (ten times the guideline: past
                                                 that a product is a scan or CAD export that needs
                                                 retopology, not decimation; counted from the
                                                 accessors, so such a file is never loaded)
file size           ≤ 5 MB (model + buffers +    ≤ 50 MB (ten times the guideline)
                    textures)
texture size        power of two, ≤ 2048 px      ≤ 8192 px a side (the largest size most
                                                 WebGL devices accept)
real-world size     largest side 1 cm to 10 m    0.1 mm to 10 km (nothing sold is outside; a
                                                 wrong unit is a warning with a hint, because
                                                 processing can rescale it)
units and axes      metres, +Y up (hints when    -
                    the box looks like cm, mm
                    or Z-up)
==================  ===========================  ============================================

Always errors: NaN or infinite vertices, an empty mesh (no triangles), face indices outside the
vertices, all triangles degenerate. Degenerate triangles among good ones are a warning.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from assets.asset_check import Problem, error, warning
from engine.mesh_queries import face_normals

__all__ = [
    "RECOMMENDED_TRIANGLES", "MAX_TRIANGLES", "RECOMMENDED_FILE_BYTES", "MAX_FILE_BYTES",
    "RECOMMENDED_TEXTURE_PX", "MAX_TEXTURE_PX", "MIN_SIZE_M", "MAX_SIZE_M",
    "check_triangle_count", "check_file_size", "image_size", "check_texture", "check_geometry",
]

RECOMMENDED_TRIANGLES, MAX_TRIANGLES = 100_000, 1_000_000
RECOMMENDED_FILE_BYTES, MAX_FILE_BYTES = 5_000_000, 50_000_000
RECOMMENDED_TEXTURE_PX, MAX_TEXTURE_PX = 2048, 8192
MIN_SIZE_M, MAX_SIZE_M = 0.01, 10.0  # largest side of the bounding box
HARD_MIN_SIZE_M, HARD_MAX_SIZE_M = 1e-4, 1e4
# A triangle is degenerate when its area is below that of a right triangle with legs of a
# millionth of the model's diagonal: float32 noise, not geometry.
DEGENERATE_REL = 1e-6
# Units a mis-scaled file is likely written in, and their size in metres.
UNITS = (("centimetres", 0.01), ("millimetres", 0.001), ("inches", 0.0254))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def check_triangle_count(triangles: int) -> list[Problem]:
    """Triangle budget: warning over RECOMMENDED_TRIANGLES, error over MAX_TRIANGLES."""
    if triangles > MAX_TRIANGLES:
        return [error("too_many_triangles", f"The model has {triangles:,} triangles; the limit is {MAX_TRIANGLES:,}. "
                      "Decimate it.")]
    if triangles > RECOMMENDED_TRIANGLES:
        return [warning("triangle_budget", f"The model has {triangles:,} triangles; up to {RECOMMENDED_TRIANGLES:,} "
                        "are recommended for the web and AR.")]
    return []


def check_file_size(n_bytes: int) -> list[Problem]:
    """File size budget (model plus the files it uses): warning over 5 MB, error over 50 MB."""
    if n_bytes > MAX_FILE_BYTES:
        return [error("file_too_large", f"The model and its files take {_mb(n_bytes)}; the limit is {_mb(MAX_FILE_BYTES)}.")]
    if n_bytes > RECOMMENDED_FILE_BYTES:
        return [warning("file_size_budget", f"The model and its files take {_mb(n_bytes)}; up to "
                        f"{_mb(RECOMMENDED_FILE_BYTES)} is recommended.")]
    return []


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from an image file's header (PNG, JPEG, WebP, ...), None if unreadable.

    Only the header is read, so a huge image costs nothing. Raises PIL's DecompressionBombError for
    more than about 179 million pixels (Pillow refuses to open those).
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns before it refuses
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
    except Image.DecompressionBombError:
        raise
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for a bad image
        return None
    return int(w), int(h)


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def check_texture(data: bytes, where: str = "") -> tuple[tuple[int, int] | None, list[Problem]]:
    """The size of one texture image from its bytes, and its budget problems.

    Returns
    -------
    size : (width, height) pixels, or None when the image cannot be read (an error).
    problems : ``unreadable_texture``, ``texture_too_large`` (error, over MAX_TEXTURE_PX), or
        warnings ``texture_size_budget`` (over 2048 px) and ``texture_not_power_of_two``.
    """
    from PIL import Image

    try:
        size = image_size(data)
    except Image.DecompressionBombError:
        return None, [error("texture_too_large", f"The texture has more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels; "
                            f"the limit is {MAX_TEXTURE_PX} px a side.", where)]
    if size is None:
        return None, [error("unreadable_texture", "The texture is not an image that can be read (PNG or JPEG expected).", where)]
    w, h = size
    problems = []
    if max(w, h) > MAX_TEXTURE_PX:
        problems.append(error("texture_too_large", f"The texture is {w}×{h} px; the limit is {MAX_TEXTURE_PX} px a side.", where))
    elif max(w, h) > RECOMMENDED_TEXTURE_PX:
        problems.append(warning("texture_size_budget", f"The texture is {w}×{h} px; up to {RECOMMENDED_TEXTURE_PX} px a "
                                "side is recommended.", where))
    if not (_power_of_two(w) and _power_of_two(h)):
        problems.append(warning("texture_not_power_of_two", f"The texture is {w}×{h} px; power-of-two sides (512, 1024, "
                                "2048) are recommended for mipmaps.", where))
    return size, problems


def _unit_hint(side: float) -> str:
    """What a largest side `side` (file units) outside 1 cm to 10 m suggests."""
    fits = [(abs(np.log(side * m / 0.5)), unit, side * m) for unit, m in UNITS if MIN_SIZE_M <= side * m <= MAX_SIZE_M]
    if side > MAX_SIZE_M and fits:
        _, unit, metres = min(fits)  # the unit giving a size nearest half a metre, a typical product
        return f" It looks like {unit} ({metres:.3g} m if so); export in metres."
    return " Check the unit or scale it was exported with; glTF is in metres."


def _axis_hint(lo: np.ndarray, hi: np.ndarray) -> Problem | None:
    """A hint when the box stands on z = 0 rather than y = 0, taller in Z than Y: a Z-up export."""
    extent = hi - lo
    tol = 0.01 * float(extent.max())
    on_z_floor = abs(lo[2]) <= tol and hi[2] > tol
    on_y_floor = abs(lo[1]) <= tol
    if on_z_floor and not on_y_floor and extent[2] > extent[1]:
        return warning("looks_z_up", "The model stands on the z = 0 plane with Z its tallest side: it looks Z-up. "
                       "glTF is +Y up; export with Y up.")
    return None


def check_geometry(vertices: np.ndarray, faces: np.ndarray) -> tuple[list[Problem], np.ndarray | None]:
    """Geometry sanity and real-world size of a triangle mesh in metres, +Y up.

    Parameters
    ----------
    vertices : (n, 3) float
        Positions in metres (node transforms applied).
    faces : (m, 3) int
        Triangles indexing `vertices`.

    Returns
    -------
    problems : list of Problem
        Errors ``empty_mesh``, ``face_index_out_of_range``, ``non_finite_vertices``,
        ``all_triangles_degenerate``, ``implausible_size``; warnings ``degenerate_triangles``,
        ``too_small``, ``too_large`` (with a unit hint) and ``looks_z_up``.
    bounds : (2, 3) float64 or None
        Min and max corner of the finite vertices the faces use, metres.
    """
    v = np.asarray(vertices, np.float64).reshape(-1, 3)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    if len(f) == 0 or len(v) == 0:
        return [error("empty_mesh", "The model has no triangles (an empty mesh, or only points and lines).")], None
    if f.min() < 0 or f.max() >= len(v):
        return [error("face_index_out_of_range", f"Faces use vertices {f.min()} to {f.max()}, but there are {len(v)}.")], None
    problems = []
    finite = np.isfinite(v).all(1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        problems.append(error("non_finite_vertices", f"{len(bad):,} {'vertex has' if len(bad) == 1 else 'vertices have'} NaN or infinite coordinates "
                              f"(the first is vertex {bad[0]}).", f"vertex {bad[0]}"))
    good_faces = f[finite[f].all(1)] if not finite.all() else f
    if len(good_faces) == 0:
        return problems, None
    used = np.zeros(len(v), bool)
    used[good_faces.ravel()] = True  # a mask, not np.unique: a million faces in milliseconds
    lo, hi = v[used].min(0), v[used].max(0)
    diagonal = float(np.linalg.norm(hi - lo))
    twice_area = np.linalg.norm(face_normals(v, good_faces, unit=False), axis=1)
    degenerate = int((twice_area <= (DEGENERATE_REL * diagonal) ** 2).sum())
    if degenerate == len(good_faces):
        problems.append(error("all_triangles_degenerate", f"All {degenerate:,} triangles have zero area."))
    elif degenerate:
        problems.append(warning("degenerate_triangles", f"{degenerate:,} of {len(f):,} triangles "
                                f"({100 * degenerate / len(f):.2g} %) have zero area; remove them."))
    side = float((hi - lo).max())
    if side > 0 and not HARD_MIN_SIZE_M <= side <= HARD_MAX_SIZE_M:
        problems.append(error("implausible_size", f"The model is {side:.3g} m across; nothing sold is outside "
                              f"{HARD_MIN_SIZE_M * 1000:g} mm to {HARD_MAX_SIZE_M / 1000:g} km." + _unit_hint(side)))
    elif side > MAX_SIZE_M:
        problems.append(warning("too_large", f"The model is {side:.3g} m across, more than {MAX_SIZE_M:g} m." + _unit_hint(side)))
    elif 0 < side < MIN_SIZE_M:
        problems.append(warning("too_small", f"The model is {side * 100:.3g} cm across, less than 1 cm." + _unit_hint(side)))
    if side > 0:
        hint = _axis_hint(lo, hi)
        if hint is not None:
            problems.append(hint)
    return problems, np.stack([lo, hi])
