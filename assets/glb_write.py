"""Processed parts as one binary glTF 2.0 file (GLB), written with `struct` and `json` only.

One node, one mesh, a primitive per part; a material per distinct `Material`; each texture image
stored once (already encoded, see `texture_resize`). Positions in metres, +Y up. The output is
meant to pass the Khronos glTF-Validator with no errors: accessor bounds are taken from the
float32 data written, normals are renormalised in float32, every buffer view is 4-byte aligned.
"""

from __future__ import annotations

import json
import struct
from typing import Callable, Sequence

import numpy as np

from assets.model_load import Part
from assets.texture_resize import EncodedTexture

__all__ = ["parts_glb_bytes"]

_FLOAT, _UINT16, _UINT32 = 5126, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _REPEAT = 9729, 9987, 10497


class _Blob:
    """The BIN chunk being built, with its buffer views and accessors."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.size = 0
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, data: bytes, target: int | None = None) -> int:
        pad = -self.size % 4  # every view starts 4-byte aligned
        if pad:
            self.chunks.append(b"\0" * pad)
            self.size += pad
        v = {"buffer": 0, "byteOffset": self.size, "byteLength": len(data)}
        if target is not None:
            v["target"] = target
        self.chunks.append(data)
        self.size += len(data)
        self.views.append(v)
        return len(self.views) - 1

    def accessor(self, a: np.ndarray, kind: str, target: int, bounds: bool = False) -> int:
        a = np.ascontiguousarray(a)
        component = {np.dtype(np.float32): _FLOAT, np.dtype(np.uint16): _UINT16, np.dtype(np.uint32): _UINT32}[a.dtype]
        acc = {"bufferView": self.view(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(), target),
               "componentType": component, "count": int(a.shape[0]), "type": kind}
        if bounds:
            acc["min"] = [float(x) for x in a.min(0)]
            acc["max"] = [float(x) for x in a.max(0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1


def _material_json(material, texture_index: Callable[[object], int]) -> dict:
    pbr = {
        "baseColorFactor": [float(x) for x in material.base_color],
        "metallicFactor": float(material.metallic),
        "roughnessFactor": float(material.roughness),
    }
    out = {"name": material.name, "pbrMetallicRoughness": pbr}
    tex = material.textures
    if "base_color" in tex:
        pbr["baseColorTexture"] = {"index": texture_index(tex["base_color"])}
    if "metallic_roughness" in tex:
        pbr["metallicRoughnessTexture"] = {"index": texture_index(tex["metallic_roughness"])}
    for slot, key in (("normal", "normalTexture"), ("occlusion", "occlusionTexture"), ("emissive", "emissiveTexture")):
        if slot in tex:
            out[key] = {"index": texture_index(tex[slot])}
    if any(material.emissive) or "emissive" in tex:
        out["emissiveFactor"] = [float(x) for x in material.emissive] if any(material.emissive) else [1.0, 1.0, 1.0]
    if material.alpha_mode in ("MASK", "BLEND"):
        out["alphaMode"] = material.alpha_mode
        if material.alpha_mode == "MASK":
            out["alphaCutoff"] = float(material.alpha_cutoff)
    if material.double_sided:
        out["doubleSided"] = True
    return out


def parts_glb_bytes(parts: Sequence[Part], encode: Callable[[object], EncodedTexture], name: str = "product") -> bytes:
    """A GLB of `parts`.

    Parameters
    ----------
    parts : Part list, metres, +Y up, counter-clockwise triangles.
    encode : maps a material's texture (the PIL image in `Material.textures`) to its encoded form
        at this level's size; called once per distinct image.
    name : the node's and mesh's name.
    """
    b = _Blob()
    images: list[dict] = []
    textures: list[dict] = []
    image_of: dict[int, int] = {}
    materials: list[dict] = []
    material_of: dict[int, int] = {}

    def texture_index(img) -> int:
        if id(img) not in image_of:
            enc = encode(img)
            images.append({"bufferView": b.view(enc.data), "mimeType": enc.mime_type})
            textures.append({"sampler": 0, "source": len(images) - 1})
            image_of[id(img)] = len(textures) - 1
        return image_of[id(img)]

    primitives = []
    for part in parts:
        m = part.material
        if id(m) not in material_of:
            materials.append(_material_json(m, texture_index))
            material_of[id(m)] = len(materials) - 1
        attributes = {"POSITION": b.accessor(part.vertices.astype(np.float32), "VEC3", _ARRAY_BUFFER, bounds=True)}
        if part.normals is not None:
            n = part.normals.astype(np.float32)
            n /= np.linalg.norm(n, axis=1, keepdims=True)  # unit at float32 precision (the validator checks)
            attributes["NORMAL"] = b.accessor(n, "VEC3", _ARRAY_BUFFER)
        if part.uv is not None:
            uv = part.uv.astype(np.float32).copy()
            uv[:, 1] = 1.0 - uv[:, 1]  # glTF's texture origin is the top-left corner
            attributes["TEXCOORD_0"] = b.accessor(uv, "VEC2", _ARRAY_BUFFER)
        if part.colors is not None:
            attributes["COLOR_0"] = b.accessor(part.colors.astype(np.float32), "VEC4", _ARRAY_BUFFER)
        index_type = np.uint16 if len(part.vertices) < 65535 else np.uint32
        indices = b.accessor(part.faces.astype(index_type).reshape(-1), "SCALAR", _ELEMENT_ARRAY_BUFFER)
        primitives.append({"attributes": attributes, "indices": indices, "material": material_of[id(m)], "mode": 4})

    doc = {
        "asset": {"version": "2.0", "generator": "fitroom"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": name, "mesh": 0}],
        "meshes": [{"name": name, "primitives": primitives}],
        "materials": materials,
        "accessors": b.accessors,
        "bufferViews": b.views,
        "buffers": [{"byteLength": b.size + (-b.size % 4)}],
    }
    if images:
        doc.update(
            images=images,
            textures=textures,
            samplers=[{"magFilter": _LINEAR, "minFilter": _LINEAR_MIPMAP_LINEAR, "wrapS": _REPEAT, "wrapT": _REPEAT}],
        )
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    binary = b"".join(b.chunks) + b"\0" * (-b.size % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return b"".join([
        struct.pack("<III", 0x46546C67, 2, total),  # "glTF", version 2
        struct.pack("<II", len(js), 0x4E4F534A), js,  # JSON chunk
        struct.pack("<II", len(binary), 0x004E4942), binary,  # BIN chunk
    ])
