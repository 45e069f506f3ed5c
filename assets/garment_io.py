"""Brand garment meshes on disk: read a garment's triangles from .glb, .gltf or .obj.

The mesh is returned as stored, in one vertex/face list: vertices are never merged, split or
reordered (welding seams is the engine's job), so duplicates at UV seams stay.

* glTF (.glb, .gltf): every triangle primitive of every mesh shown by the default scene, moved by
  its node's world transform, in trimesh's scene order. Point and line primitives are skipped
  (they are not cloth). A node mirrored by its transform (negative determinant) has its triangles'
  winding reversed, as glTF specifies, so faces stay counter-clockwise seen from outside.
* OBJ: the `v` and `f` lines. Face entries may be `v`, `v/vt`, `v//vn` or `v/vt/vn`, 1-based or
  negative (relative to the vertices read so far); polygons are split into triangle fans.

Positions must be in metres (glTF's unit; OBJ has none). A mesh whose bounding box diagonal is
outside 5 cm to 5 m is refused with a guess at the unit it was written in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assets.garment import GarmentMaterial
from avatar.mesh_io import checked_mesh_path
from fitroom.errors import FitroomError

__all__ = ["SUPPORTED_SUFFIXES", "MAX_VERTICES", "read_garment_mesh", "read_garment_material"]

SUPPORTED_SUFFIXES = (".glb", ".gltf", ".obj")
MAX_VERTICES = 250_000
# Bounding-box diagonal of anything worn, from a sock to a long gown, in metres.
MIN_DIAGONAL_M, MAX_DIAGONAL_M = 0.05, 5.0
# Units a mis-scaled file is likely in, and their size in metres.
_UNITS = (("centimetres", 0.01), ("millimetres", 0.001))


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    vertices: list[list[float]] = []
    faces: list[list[int]] = []
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                if parts[0] == "v":
                    if len(parts) < 4:
                        raise ValueError("fewer than 3 coordinates")
                    vertices.append([float(x) for x in parts[1:4]])
                elif parts[0] == "f":
                    if len(parts) < 4:
                        raise ValueError("fewer than 3 corners")
                    n, indices = len(vertices), [int(p.split("/")[0]) for p in parts[1:]]
                    # OBJ counts from 1, negative indices count back from the last vertex read so
                    # far, and 0 is invalid (kept as -1, refused with the other bad indices).
                    corners = [k - 1 if k > 0 else n + k if k < 0 else -1 for k in indices]
                    faces.extend([corners[0], corners[i], corners[i + 1]] for i in range(1, len(corners) - 1))  # a fan
            except ValueError as e:
                raise ValueError(f"line {number} ({line.strip()[:40]!r}): {e}") from None
    if not vertices and not faces:
        raise ValueError("no vertex ('v') or face ('f') lines; it is not an OBJ file")
    return np.array(vertices, np.float64).reshape(-1, 3), np.array(faces, np.int64).reshape(-1, 3)


def _gltf_meshes(path: Path):
    """(trimesh.Trimesh, (4, 4) world matrix) of each triangle mesh the default scene shows, in
    trimesh's scene order (the order of `read_garment_mesh`'s vertices)."""
    import trimesh

    scene = trimesh.load(str(path), force="scene", process=False, maintain_order=True)
    for node in scene.graph.nodes_geometry:
        matrix, name = scene.graph[node]
        mesh = scene.geometry[name]
        if isinstance(mesh, trimesh.Trimesh) and len(mesh.faces) > 0:
            yield mesh, np.asarray(matrix, np.float64)


def _read_gltf(path: Path) -> tuple[np.ndarray, np.ndarray]:
    vertices, faces, count = [], [], 0
    for mesh, matrix in _gltf_meshes(path):
        f = np.asarray(mesh.faces, np.int64)
        if np.linalg.det(matrix[:3, :3]) < 0:
            f = f[:, ::-1]
        vertices.append(np.asarray(mesh.vertices, np.float64) @ matrix[:3, :3].T + matrix[:3, 3])
        faces.append(f + count)
        count += len(vertices[-1])
    if not faces:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    return np.concatenate(vertices), np.concatenate(faces)


def _unit_hint(diagonal: float) -> str:
    """What a bounding box `diagonal` (file units) too large or small for metres suggests."""
    if diagonal < MIN_DIAGONAL_M:
        return "far too small for clothing in metres: check the unit or scale it was exported with"
    fits = [(abs(np.log(diagonal * m)), unit) for unit, m in _UNITS if MIN_DIAGONAL_M <= diagonal * m <= MAX_DIAGONAL_M]
    if not fits:
        return "too large for clothing even in millimetres: check the unit or scale it was exported with"
    unit = min(fits)[1]  # the unit giving a size nearest a typical garment's metre
    return f"looks like {unit}; export in metres"


def read_garment_mesh(path) -> tuple[np.ndarray, np.ndarray]:
    """A brand garment's triangle mesh, as stored (see the module docstring).

    Parameters
    ----------
    path : str or Path
        A .glb, .gltf or .obj file, metres.

    Returns
    -------
    vertices : (N, 3) float64
        Positions in metres, in the file's order (glTF: node transforms applied).
    faces : (F, 3) int64
        Triangles indexing `vertices`.

    Raises
    ------
    FitroomError
        `unsupported_mesh_format`, `mesh_not_found`, `unreadable_mesh` (corrupt or not the format
        its extension says), `no_triangles`, `non_finite_vertices`, `face_index_out_of_range`,
        `too_many_vertices` (more than MAX_VERTICES) or `bad_units` (bounding box diagonal outside
        5 cm to 5 m).
    """
    path = checked_mesh_path(path, SUPPORTED_SUFFIXES, "garments")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise FitroomError("unreadable_mesh", f"{path.name} is empty.")
    try:
        vertices, faces = _read_obj(path) if suffix == ".obj" else _read_gltf(path)
    except Exception as e:  # parsers raise many kinds; all mean the same to the brand
        raise FitroomError("unreadable_mesh", f"{path.name} could not be read as {suffix[1:].upper()}: {e}") from e
    if len(faces) == 0:
        raise FitroomError("no_triangles", f"{path.name} holds no triangles or polygons (points and lines are not cloth).")
    if len(vertices) > MAX_VERTICES:
        raise FitroomError(
            "too_many_vertices",
            f"{path.name} has {len(vertices):,} vertices; garments may have at most {MAX_VERTICES:,} (decimate it).",
        )
    if not np.isfinite(vertices).all():
        raise FitroomError("non_finite_vertices", f"{path.name} has NaN or infinite vertex positions.")
    if faces.min() < 0 or faces.max() >= len(vertices):
        base = 1 if suffix == ".obj" else 0  # speak in the file's own counting
        raise FitroomError(
            "face_index_out_of_range",
            f"{path.name} has faces using vertices {faces.min() + base} to {faces.max() + base} "
            f"(counting from {base}), but its {len(vertices)} vertices are {base} to {len(vertices) - 1 + base}.",
        )
    used = vertices[np.unique(faces)]
    diagonal = float(np.linalg.norm(used.max(0) - used.min(0)))
    if not MIN_DIAGONAL_M <= diagonal <= MAX_DIAGONAL_M:
        raise FitroomError(
            "bad_units",
            f"{path.name} is {diagonal:.3g} units across (bounding box diagonal), but clothing in metres is "
            f"{MIN_DIAGONAL_M * 100:.0f} cm to {MAX_DIAGONAL_M:.0f} m: it {_unit_hint(diagonal)}.",
        )
    return vertices, faces


def _image(texture) -> np.ndarray | None:
    """A trimesh material's texture (PIL image or None) as (h, w, 3 or 4) uint8."""
    if texture is None:
        return None
    a = np.asarray(texture.convert("RGBA" if "A" in texture.mode else "RGB"), np.uint8)
    return a if a.ndim == 3 and min(a.shape[:2]) > 0 else None


def read_garment_material(path) -> GarmentMaterial | None:
    """The look of a glTF garment, aligned with `read_garment_mesh`'s vertices: texture coordinates
    and the first mesh's PBR material (base colour texture, normal map, roughness: the green
    channel of the metallic-roughness texture times its factor, or the factor alone). None for an
    OBJ, or where a mesh has no texture coordinates or the first has no base colour texture or
    normal map (the garment is then drawn in its colourway, as before)."""
    path = Path(path)
    if path.suffix.lower() not in (".glb", ".gltf"):
        return None
    uvs, material = [], None
    for mesh, _ in _gltf_meshes(path):
        visual = mesh.visual
        uv = getattr(visual, "uv", None)
        if uv is None or len(uv) != len(mesh.vertices):
            return None
        uvs.append(np.asarray(uv, np.float32))
        material = material or getattr(visual, "material", None)
    if not uvs or material is None:
        return None
    texture = _image(getattr(material, "baseColorTexture", None))
    normal_map = _image(getattr(material, "normalTexture", None))
    if texture is None and normal_map is None:
        return None
    factor = getattr(material, "roughnessFactor", None)
    factor = 1.0 if factor is None else float(factor)
    mr = _image(getattr(material, "metallicRoughnessTexture", None))
    roughness = factor if mr is None else np.clip(mr[..., 1].astype(np.float32) * factor, 0, 255).astype(np.uint8)
    return GarmentMaterial(uv=np.concatenate(uvs), texture=texture, normal_map=None if normal_map is None else normal_map[..., :3],
                           roughness=roughness)
