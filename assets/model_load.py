"""Brand 3D products read into flat triangle parts with their materials, ready for processing.

A `Part` is one triangle primitive in the world frame of the file: positions, triangles and the
per-vertex attributes the web and AR outputs keep (normals, texture coordinates, colours), and one
`Material` (glTF's metallic-roughness model with its textures as PIL images). Vertices are kept as
stored, so copies at UV seams and hard edges stay (the LOD step welds by position itself).

* glTF (.glb, .gltf): every triangle primitive shown by the default scene, moved by its node's
  world transform (normals by its inverse transpose); a mirroring node reverses the winding, as
  glTF specifies.
* OBJ (+ .mtl + textures beside it): one part per material. MTL's diffuse colour becomes the base
  colour; a texture (`map_Kd`) replaces it (obj2gltf's rule: exporters write Kd 0.8 beside a
  texture, which would only darken it) and the material is a dielectric (metallic 0, glTF's
  default of 1 would make it a mirror).

Texture coordinates are trimesh's: origin at the image's bottom-left (OpenGL/OBJ), so glTF's
`v` is `1 - v` here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from fitroom.errors import FitroomError

__all__ = ["TEXTURE_SLOTS", "Material", "Part", "load_parts"]

# Texture slots of glTF's core material model, in the order they are written.
TEXTURE_SLOTS = ("base_color", "metallic_roughness", "normal", "occlusion", "emissive")
_TRIMESH_SLOTS = {
    "base_color": "baseColorTexture",
    "metallic_roughness": "metallicRoughnessTexture",
    "normal": "normalTexture",
    "occlusion": "occlusionTexture",
    "emissive": "emissiveTexture",
}


@dataclasses.dataclass
class Material:
    """A glTF metallic-roughness material.

    base_color : (4,) linear RGBA in [0, 1]. metallic, roughness : factors in [0, 1].
    emissive : (3,) linear RGB factor. textures : slot name (`TEXTURE_SLOTS`) -> PIL image.
    alpha_mode : "OPAQUE", "MASK" or "BLEND"; alpha_cutoff used by MASK.
    """

    name: str = "material"
    base_color: tuple = (1.0, 1.0, 1.0, 1.0)
    metallic: float = 0.0
    roughness: float = 1.0
    emissive: tuple = (0.0, 0.0, 0.0)
    textures: dict = dataclasses.field(default_factory=dict)
    alpha_mode: str = "OPAQUE"
    alpha_cutoff: float = 0.5
    double_sided: bool = False


@dataclasses.dataclass
class Part:
    """One triangle primitive in the file's (later the normalised) frame.

    vertices : (n, 3) float64 positions. faces : (m, 3) int64 counter-clockwise triangles.
    normals : (n, 3) float32 unit normals or None. uv : (n, 2) float32 (origin bottom-left) or None.
    colors : (n, 4) float32 linear RGBA in [0, 1] or None. material : Material.
    """

    vertices: np.ndarray
    faces: np.ndarray
    material: Material
    normals: np.ndarray | None = None
    uv: np.ndarray | None = None
    colors: np.ndarray | None = None

    @property
    def attributes(self) -> dict:
        """The per-vertex attributes present: name -> (n, k) array."""
        return {k: a for k, a in (("normals", self.normals), ("uv", self.uv), ("colors", self.colors)) if a is not None}


def _unit_factor(values, n: int, default) -> tuple:
    """trimesh keeps colour factors as uint8 (0-255) or float; -> n floats in [0, 1]."""
    if values is None:
        return tuple(default)
    a = np.asarray(values).reshape(-1)[:n]
    a = a / 255.0 if a.dtype.kind in "ui" else a.astype(np.float64)
    return tuple(float(x) for x in np.clip(np.concatenate([a, np.asarray(default)[len(a):]]), 0.0, 1.0))


def _material(tm_material, from_obj: bool) -> Material:
    from trimesh.visual.material import PBRMaterial, SimpleMaterial

    if isinstance(tm_material, SimpleMaterial):
        textured = tm_material.image is not None
        base = _unit_factor(tm_material.diffuse, 4, (1.0, 1.0, 1.0, 1.0))
        roughness = float((2.0 / (float(tm_material.glossiness or 0.0) + 2.0)) ** 0.25)
        return Material(
            name=str(tm_material.name or "material"),
            base_color=(1.0, 1.0, 1.0, base[3]) if textured else base,
            metallic=0.0,
            roughness=roughness,
            textures={"base_color": tm_material.image} if textured else {},
            alpha_mode="BLEND" if base[3] < 1.0 else "OPAQUE",
        )
    if not isinstance(tm_material, PBRMaterial):
        return Material()
    m = tm_material
    textures = {slot: getattr(m, attr) for slot, attr in _TRIMESH_SLOTS.items() if getattr(m, attr, None) is not None}
    return Material(
        name=str(m.name or "material"),
        base_color=_unit_factor(m.baseColorFactor, 4, (1.0, 1.0, 1.0, 1.0)),
        # glTF's defaults where the file says nothing; an OBJ's material is never metallic.
        metallic=0.0 if from_obj else float(1.0 if m.metallicFactor is None else m.metallicFactor),
        roughness=float(1.0 if m.roughnessFactor is None else m.roughnessFactor),
        emissive=_unit_factor(m.emissiveFactor, 3, (0.0, 0.0, 0.0)),
        textures=textures,
        alpha_mode=str(m.alphaMode or "OPAQUE").upper(),
        alpha_cutoff=float(0.5 if m.alphaCutoff is None else m.alphaCutoff),
        double_sided=bool(m.doubleSided),
    )


def _part(mesh, matrix: np.ndarray, from_obj: bool) -> Part | None:
    from trimesh.visual import ColorVisuals, TextureVisuals

    faces = np.asarray(mesh.faces, np.int64).reshape(-1, 3)
    if len(faces) == 0:
        return None
    vertices = np.asarray(mesh.vertices, np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
    if np.linalg.det(matrix[:3, :3]) < 0:
        faces = faces[:, ::-1].copy()
    normals = None
    # Only the file's own normals: trimesh computes missing ones lazily, which would hide that they
    # were missing (the processing step computes them its own way, welded across seams).
    stored = mesh._cache.cache.get("vertex_normals")
    if stored is not None and len(stored) == len(vertices):
        n = np.asarray(stored, np.float64) @ np.linalg.inv(matrix[:3, :3])  # inverse transpose, row vectors
        normals = (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)).astype(np.float32)
    uv, colors, material = None, None, Material()
    visual = mesh.visual
    if isinstance(visual, TextureVisuals):
        material = _material(visual.material, from_obj)
        if visual.uv is not None and len(visual.uv) == len(vertices):
            uv = np.asarray(visual.uv, np.float32)[:, :2].copy()
        if visual.vertex_attributes.get("color") is not None:
            colors = np.asarray(visual.vertex_attributes["color"], np.float64)
    elif isinstance(visual, ColorVisuals) and visual.kind == "vertex":
        colors = np.asarray(visual.vertex_colors, np.float64)
    if colors is not None:
        colors = colors / 255.0 if colors.max(initial=0.0) > 1.0 else colors
        colors = np.clip(colors[:, :4], 0, 1).astype(np.float32) if len(colors) == len(vertices) else None
        if colors is not None and colors.shape[1] == 3:
            colors = np.concatenate([colors, np.ones((len(colors), 1), np.float32)], 1)
    if uv is None:
        material.textures = {}  # a texture without coordinates cannot be shown
    return Part(vertices=vertices, faces=faces, material=material, normals=normals, uv=uv, colors=colors)


def load_parts(source: Path | bytes) -> list[Part]:
    """The triangle parts of a .glb, .gltf or .obj file, or of GLB bytes (see the module docstring).

    Raises
    ------
    FitroomError
        `unsupported_model_format`, `unreadable_model` (a parser failed), `no_triangles`,
        `non_finite_vertices`, `face_index_out_of_range`.
    """
    import io

    import trimesh

    if isinstance(source, (bytes, bytearray, memoryview)):
        path, suffix, load_args = Path("model.glb"), ".glb", {"file_obj": io.BytesIO(bytes(source)), "file_type": "glb"}
    else:
        path = Path(source)
        suffix, load_args = path.suffix.lower(), {"file_obj": str(path)}
    if suffix not in (".glb", ".gltf", ".obj"):
        raise FitroomError("unsupported_model_format", f"{path.name}: only .glb, .gltf and .obj models are processed.")
    try:
        # process=False: no merging or reordering, the file's vertices as stored.
        scene = trimesh.load(**load_args, force="scene", process=False)
        parts = []
        for node in scene.graph.nodes_geometry:
            matrix, name = scene.graph[node]
            mesh = scene.geometry[name]
            if isinstance(mesh, trimesh.Trimesh):
                part = _part(mesh, np.asarray(matrix, np.float64), suffix == ".obj")
                if part is not None:
                    parts.append(part)
    except FitroomError:
        raise
    except Exception as e:  # parsers raise many kinds; all mean the same to the brand
        raise FitroomError("unreadable_model", f"{path.name} could not be read as {suffix[1:].upper()}: {e}") from e
    if not parts:
        raise FitroomError("no_triangles", f"{path.name} holds no triangles to show.")
    for p in parts:
        if not np.isfinite(p.vertices).all():
            raise FitroomError("non_finite_vertices", f"{path.name} has NaN or infinite vertex positions.")
        if p.faces.min() < 0 or p.faces.max() >= len(p.vertices):
            raise FitroomError("face_index_out_of_range", f"{path.name} has triangles indexing missing vertices.")
    return parts
