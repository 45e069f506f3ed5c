"""Processed parts as a USDZ package for AR Quick Look (usd-core).

The stage is in metres (`metersPerUnit` 1), +Y up, with `/Product` as its default prim: a mesh per
part under `/Product/Geom` (points, triangles, vertex normals, `st` texture coordinates) and a
`UsdPreviewSurface` per material under `/Product/Materials` with the base colour factor, metallic,
roughness and opacity, and the base colour texture through `UsdUVTexture` (its factor as the
texture's `scale`). Quick Look reads only these core parts of USD's preview material, so other
glTF textures are not carried. The package is written in a temporary folder (always removed) and
returned as bytes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from assets.model_load import Part
from assets.texture_resize import EncodedTexture

__all__ = ["usdz_bytes"]


def _material(stage, path: str, material, texture_file: str | None, has_alpha: bool):
    from pxr import Gf, Sdf, UsdShade

    mat = UsdShade.Material.Define(stage, path)
    shader = UsdShade.Shader.Define(stage, f"{path}/PreviewSurface")
    shader.CreateIdAttr("UsdPreviewSurface")
    r, g, b, a = (float(x) for x in material.base_color)
    shader.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(float(material.metallic))
    shader.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(float(material.roughness))
    if texture_file is None:
        shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(r, g, b))
        shader.CreateInput("opacity", Sdf.ValueTypeNames.Float).Set(a)
    else:
        reader = UsdShade.Shader.Define(stage, f"{path}/StReader")
        reader.CreateIdAttr("UsdPrimvarReader_float2")
        reader.CreateInput("varname", Sdf.ValueTypeNames.Token).Set("st")
        tex = UsdShade.Shader.Define(stage, f"{path}/BaseColorTexture")
        tex.CreateIdAttr("UsdUVTexture")
        tex.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(texture_file)
        tex.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
        tex.CreateInput("scale", Sdf.ValueTypeNames.Float4).Set(Gf.Vec4f(r, g, b, a))
        tex.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("repeat")
        tex.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("repeat")
        tex.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
        rgb = tex.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
        shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(rgb)
        if has_alpha:
            alpha = tex.CreateOutput("a", Sdf.ValueTypeNames.Float)
            shader.CreateInput("opacity", Sdf.ValueTypeNames.Float).ConnectToSource(alpha)
        else:
            shader.CreateInput("opacity", Sdf.ValueTypeNames.Float).Set(a)
    if material.alpha_mode == "MASK":
        shader.CreateInput("opacityThreshold", Sdf.ValueTypeNames.Float).Set(float(material.alpha_cutoff))
    mat.CreateSurfaceOutput().ConnectToSource(shader.ConnectableAPI(), "surface")
    return mat


def _mesh(stage, path: str, part: Part):
    from pxr import Sdf, UsdGeom, Vt

    mesh = UsdGeom.Mesh.Define(stage, path)
    v = part.vertices.astype(np.float32)
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(v))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(part.faces), 3, np.int32)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(part.faces.astype(np.int32).reshape(-1)))
    mesh.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(np.stack([v.min(0), v.max(0)])))
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)  # triangles as they are, not a subdivision cage
    mesh.CreateDoubleSidedAttr(bool(part.material.double_sided))
    if part.normals is not None:
        mesh.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(part.normals.astype(np.float32)))
        mesh.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
    api = UsdGeom.PrimvarsAPI(mesh)
    if part.uv is not None:  # USD's st has its origin at the bottom-left, as Part.uv
        st = api.CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
        st.Set(Vt.Vec2fArray.FromNumpy(part.uv.astype(np.float32)))
    if part.colors is not None:
        api.CreatePrimvar("displayColor", Sdf.ValueTypeNames.Color3fArray, UsdGeom.Tokens.vertex).Set(
            Vt.Vec3fArray.FromNumpy(part.colors[:, :3].astype(np.float32))
        )
    return mesh


def usdz_bytes(parts: Sequence[Part], encode: Callable[[object], EncodedTexture]) -> bytes:
    """A USDZ package of `parts` (metres, +Y up).

    encode : maps a material's base colour texture (PIL image) to its encoded form (JPEG or PNG).
    """
    from pxr import Sdf, Usd, UsdGeom, UsdShade, UsdUtils

    with tempfile.TemporaryDirectory(prefix="fitroom-usdz-") as tmp:
        tmp = Path(tmp)
        stage = Usd.Stage.CreateNew(str(tmp / "product.usdc"))
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        root = UsdGeom.Xform.Define(stage, "/Product")
        stage.SetDefaultPrim(root.GetPrim())
        UsdGeom.Scope.Define(stage, "/Product/Geom")
        materials, files = {}, {}
        (tmp / "textures").mkdir()
        for i, part in enumerate(parts):
            m = part.material
            if id(m) not in materials:
                image = m.textures.get("base_color") if part.uv is not None else None
                name, has_alpha = None, False
                if image is not None:
                    if id(image) not in files:
                        enc = encode(image)
                        ext = "png" if enc.mime_type == "image/png" else "jpg"
                        files[id(image)] = (f"textures/texture{len(files)}.{ext}", ext == "png")
                        (tmp / files[id(image)][0]).write_bytes(enc.data)
                    name, has_alpha = files[id(image)]
                materials[id(m)] = _material(stage, f"/Product/Materials/material{len(materials)}", m, name, has_alpha)
            mesh = _mesh(stage, f"/Product/Geom/part{i}", part)
            UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(materials[id(m)])
        stage.GetRootLayer().Save()
        del stage
        usdz = tmp / "product.usdz"
        if not UsdUtils.CreateNewUsdzPackage(Sdf.AssetPath(str(tmp / "product.usdc")), str(usdz)):
            raise RuntimeError("usd-core could not write the USDZ package")
        return usdz.read_bytes()
