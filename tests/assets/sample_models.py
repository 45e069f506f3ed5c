"""Generated brand models for the processing tests and timings: textured, in odd units and axes.

Every model is made here (no downloaded assets): a UV-mapped surface of revolution (a vase-like
"product" with a texture seam), boxes for furniture, a tube around the reference body's torso for
a garment. Textures are smooth patterns with sharp stripes, so a blank or mis-mapped render shows.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["texture_image", "revolved_surface", "textured_glb", "write_obj_folder", "box_parts_glb"]


def texture_image(size: int, *, fmt: str = "JPEG") -> Image.Image:
    """A (size, size) RGB pattern, returned re-opened from `fmt` bytes (as a file's texture would be)."""
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)
    u, v = np.meshgrid(t, t)
    rgb = np.stack([u, v, 0.5 + 0.5 * np.sin(12 * np.pi * u) * np.sin(12 * np.pi * v)], -1)
    stripes = (np.floor(u * 16) % 2 == 0)[..., None]
    rgb = np.where(stripes, rgb, rgb * 0.4)
    buf = io.BytesIO()
    Image.fromarray((rgb * 255).astype(np.uint8)).save(buf, format=fmt, quality=90)
    return Image.open(io.BytesIO(buf.getvalue()))


def revolved_surface(n_triangles: int, height: float = 1.0, radius: float = 0.3):
    """A closed-ish vase surface around +Y with a UV seam: (vertices (n, 3), faces (m, 3), uv (n, 2)).

    The seam column is duplicated (u = 0 and u = 1), so the mesh has as stored vertex copies, as
    exported textured meshes do. About `n_triangles` triangles.
    """
    rings = max(int(np.sqrt(n_triangles / 4)), 2)
    segments = max(n_triangles // (2 * rings), 3)
    s = np.linspace(0.0, 1.0, segments + 1)
    h = np.linspace(0.0, 1.0, rings + 1)
    S, H = np.meshgrid(s, h)  # (rings + 1, segments + 1)
    r = radius * (0.6 + 0.4 * np.sin(np.pi * H) + 0.05 * np.cos(6 * np.pi * H))
    theta = 2 * np.pi * S
    vertices = np.stack([r * np.sin(theta), H * height, r * np.cos(theta)], -1).reshape(-1, 3)
    uv = np.stack([S, H], -1).reshape(-1, 2)
    idx = np.arange((rings + 1) * (segments + 1)).reshape(rings + 1, segments + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    # counter-clockwise seen from outside (normals point away from the axis)
    faces = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    return vertices, faces, uv.astype(np.float32)


def textured_glb(path: Path, n_triangles: int = 20_000, texture_px: int = 4096, *, offset=(0.0, 0.0, 0.0),
                 scale: float = 1.0, fmt: str = "JPEG") -> Path:
    """A textured GLB (trimesh's exporter): a revolved surface with a `texture_px` texture."""
    import trimesh
    from trimesh.visual import TextureVisuals
    from trimesh.visual.material import PBRMaterial

    v, f, uv = revolved_surface(n_triangles)
    material = PBRMaterial(baseColorTexture=texture_image(texture_px, fmt=fmt), metallicFactor=0.0, roughnessFactor=0.7)
    mesh = trimesh.Trimesh(v * scale + np.asarray(offset), f, visual=TextureVisuals(uv=uv, material=material), process=False)
    path.write_bytes(mesh.export(file_type="glb"))
    return path


def write_obj_folder(folder: Path, n_triangles: int = 4000, *, scale: float = 100.0, z_up: bool = True,
                     shape=(0.5, 0.7, 0.25), offset=(0.0, 1.05, 0.0)) -> Path:
    """A garment-like OBJ with .mtl and a PNG texture in `folder`; the .obj path.

    An elliptic tube `shape` (width, height, depth) metres around the reference body's torso
    (`offset`, +Y up, metres), written in units of 1 / `scale` metres (100: centimetres), Z-up
    (body facing -Y) when `z_up`. No normals in the file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    v, f, uv = revolved_surface(n_triangles, height=1.0, radius=0.5)
    v = v * np.asarray(shape) * np.array([2.0, 1.0, 2.0]) + np.asarray(offset) - [0, shape[1] / 2, 0]
    if z_up:
        v = np.stack([v[:, 0], -v[:, 2], v[:, 1]], 1)  # Y-up facing +Z -> Z-up facing -Y
    v = v * scale
    texture_image(512, fmt="PNG").save(folder / "cloth.png")
    (folder / "shirt.mtl").write_text("newmtl cloth\nKd 0.8 0.8 0.8\nNs 50\nmap_Kd cloth.png\n")
    lines = ["# generated test garment", "mtllib shirt.mtl", "o shirt"]
    lines += [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in v]
    lines += [f"vt {a:.6f} {b:.6f}" for a, b in uv]
    lines.append("usemtl cloth")
    lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in f + 1]
    path = folder / "shirt.obj"
    path.write_text("\n".join(lines) + "\n")
    return path


def box_parts_glb(path: Path, *, lift: float = 0.5, scale: float = 1.0) -> Path:
    """An untextured table (top + four legs, coloured) floating `lift` metres above the floor, Y-up."""
    import trimesh

    top = trimesh.creation.box((1.2, 0.05, 0.7))
    top.apply_translation((0.3, 0.725 + lift, -0.2))
    legs = []
    for x in (-0.25, 0.85):
        for z in (-0.5, 0.1):
            leg = trimesh.creation.box((0.05, 0.7, 0.05))
            leg.apply_translation((x, 0.35 + lift, z))
            legs.append(leg)
    scene = trimesh.Scene()
    top.visual.face_colors = (150, 100, 60, 255)
    scene.add_geometry(top, geom_name="top")
    for i, leg in enumerate(legs):
        leg.visual.face_colors = (60, 60, 60, 255)
        scene.add_geometry(leg, geom_name=f"leg{i}")
    if scale != 1.0:
        scene.apply_scale(scale)
    path.write_bytes(scene.export(file_type="glb"))
    return path
