"""A try-on: a shopper's avatar, a garment in a size and a fabric -> a look (draped, measured, advised).

This is where the parts meet: the avatar file gives the body, the garment comes from the
procedural catalogue or a brand's file (with the body it was modelled on), the engine drapes it,
and the result is measured (strain, pressure, penetration, ease) and turned into size advice and
files (a vertex-coloured GLB of the look and a fit-map PNG).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from assets.garment import Garment
from assets.garment_chart import EASE_CM, GARMENT_KINDS, garment_measurements
from assets.procedural_garments import garment_girths, procedural_garment, reference_body
from assets.size_advice import REGIONS, rank_sizes
from avatar.size_chart import SIZES
from engine.backend import to_numpy
from engine.body_model import BodyModel
from engine.drape import DrapeResult, DrapeSettings, drape
from engine.fabrics import Fabric
from fitroom.errors import FitroomError

# Strain above this at the 95th percentile: the garment does not go on this body.
TOO_TIGHT_STRAIN = 125.0


@dataclasses.dataclass
class ShopperBody:
    """An avatar in the reference pose: vertices (V, 3) standing on y = 0, its sex and its
    measurements (cm, with the heights of the chest, waist and hip levels)."""

    vertices: np.ndarray
    sex: str
    measurements: dict


@dataclasses.dataclass
class Look:
    garment: Garment
    body: ShopperBody
    result: DrapeResult
    ease_cm: dict
    ranking: list
    fabric: Fabric


def shopper_body(model: BodyModel, avatar_path) -> ShopperBody:
    """The avatar of an `avatar.json` (or its folder) in the reference pose, measured."""
    from avatar.avatar_files import read_avatar
    from avatar.measurements import measure_body
    from avatar.reference_body import rest_body

    doc, shape = read_avatar(Path(avatar_path), model)
    sex = doc.get("sex") if doc.get("sex") in ("female", "male") else "female"
    vertices = rest_body(model, shape)
    return ShopperBody(vertices, sex, measure_body(vertices, model))


def load_garment(model: BodyModel, garment: str, size: str, sex: str, reference: str | None = None,
                 vertices: int = 5000, reference_info: dict | None = None) -> Garment:
    """A procedural garment by kind, or a brand's .glb/.gltf/.obj authored on `reference` (a body
    mesh: in Anny's topology, or any other, registered; see `avatar.mesh_io.read_reference_body`)
    or, without one, on fitroom's reference body of `size`. `reference_info`, when given, is filled
    with how the reference was read (`topology`, and a registration's `residual_mm`)."""
    from assets.garment_io import read_garment_mesh
    from avatar.mesh_io import read_reference_body

    if garment in GARMENT_KINDS:
        return procedural_garment(model, garment, size, sex, target_vertices=vertices)
    if not Path(garment).suffix:
        raise FitroomError("bad_garment", f"A garment is one of {', '.join(GARMENT_KINDS)} or a .glb/.gltf/.obj file, not {garment!r}.")
    vertices, faces = read_garment_mesh(Path(garment))
    if reference:
        body, info = read_reference_body(Path(reference), model)
    else:
        body, info = reference_body(model, size, sex)[1], {"topology": "anny", "size": size.strip().upper()}
    if reference_info is not None:
        reference_info.update(info)
    return Garment(vertices=vertices, faces=faces, attached=np.zeros(len(vertices), bool), body_vertices=body,
                   kind="custom", size=size.strip().upper(), sex=sex)


def _levels(measurements: dict) -> dict:
    return {r: measurements[f"{r}_height_cm"] / 100.0 for r in REGIONS}


def _regions(garment: Garment) -> tuple:
    if garment.kind in EASE_CM:
        return tuple(EASE_CM[garment.kind][garment.sex])
    return REGIONS


def chart_ranking(kind: str, sex: str, body: ShopperBody) -> list[dict]:
    """The sizes XS..XL of a procedural garment kind ranked for the body, from the garment chart
    alone (no mesh is needed)."""
    body_cm = {r: body.measurements[f"{r}_cm"] for r in EASE_CM[kind][sex]}
    chart = {s: garment_measurements(kind, s, sex) for s in SIZES}
    sizes = {s: {r: chart[s][f"{r}_cm"] for r in body_cm} for s in SIZES}
    return rank_sizes(sizes, body_cm, EASE_CM[kind][sex])


def size_ranking(model: BodyModel, garment: Garment, body: ShopperBody) -> list[dict]:
    """The sizes of a procedural garment ranked for the body (a brand file has one size: its own,
    measured on the garment against the body it was modelled on)."""
    if garment.kind in GARMENT_KINDS:
        return chart_ranking(garment.kind, garment.sex, body)
    from avatar.measurements import measure_body

    body_cm = {r: body.measurements[f"{r}_cm"] for r in REGIONS}
    ref = measure_body(garment.body_vertices, model)
    own = garment_girths(garment.vertices, garment.faces, _levels(ref), float(np.median(garment.body_vertices[:, 0])))
    design = {r: own[r] - ref[f"{r}_cm"] for r in body_cm if own.get(r)}
    ranked = _brand_chart_ranking(garment, body_cm, ref, design)
    if ranked:
        return ranked
    sizes = {garment.size or "as modelled": {r: own[r] for r in body_cm if own.get(r)}}
    return rank_sizes(sizes, body_cm, design)


def _brand_chart_ranking(garment: Garment, body_cm: dict, ref: dict, mesh_design: dict) -> list[dict]:
    """Every size of a catalogue garment's chart ranked for the body (empty without a chart with girths).

    The chart gives each size's garment girths; the design ease is the chart's girth at the size the
    mesh was made in minus the reference body's, or, where that size is not in the chart, the
    mesh's own ease on its reference body.
    """
    chart = garment.size_chart or {}
    sizes = {s: {r: row[f"{r}_cm"] for r in body_cm if row.get(f"{r}_cm")} for s, row in chart.items()}
    sizes = {s: g for s, g in sizes.items() if g}
    if not sizes:
        return []
    made = chart.get(garment.modelled_size or "", {})
    design = {r: made[f"{r}_cm"] - ref[f"{r}_cm"] if made.get(f"{r}_cm") else mesh_design.get(r, 0.0) for r in body_cm}
    return rank_sizes(sizes, body_cm, design)


def try_on(model: BodyModel, body: ShopperBody, garment: Garment, fabric: Fabric,
           settings: DrapeSettings = DrapeSettings(), xp=np) -> Look:
    """Drapes `garment` on `body` and measures the look."""
    faces = to_numpy(model.faces)
    result = drape(garment.vertices, garment.faces, garment.body_vertices, body.vertices, faces, fabric,
                   attached=garment.attached, settings=settings, xp=xp)
    centre_x = float(np.median(body.vertices[:, 0]))
    girths = garment_girths(result.positions, result.faces, _levels(body.measurements), centre_x, rest=result.rest_positions)
    ease = {r: round(girths[r] - body.measurements[f"{r}_cm"], 1) for r in _regions(garment) if girths.get(r)}
    return Look(garment, body, result, ease, size_ranking(model, garment, body), fabric)


def garment_surface(look: Look, colour, fitmap: bool = True) -> dict:
    """The draped garment as drawn: the garment's `FrameSource.set_look` / `look_export` keyword
    arguments. garment_vertices (N, 3) float32, garment_faces (M, 3) int32, fitmap_colors (N, 3)
    float32 (the strain colours; left out when `fitmap` is False), garment_colors: `colour` (3,)
    linear RGB (the colourway), or None for a garment with a base colour texture (its texture is
    its colour); and for a garment with a material uv, texture, normal_map, roughness.

    A textured garment is drawn on its own vertices and faces as read, seams not welded (the drape
    welds them: each vertex takes its welded vertex's draped position), so that each side of a UV
    seam keeps its own texture coordinates."""
    from streaming.fitmap import strain_colors

    r, material = look.result, look.garment.material
    row = np.arange(len(r.positions)) if material is None else np.maximum(r.vertex_map, 0)  # -1: unused vertex
    out = {"garment_vertices": np.asarray(r.positions[row], np.float32),
           "garment_faces": np.asarray(r.faces if material is None else look.garment.faces, np.int32),
           "garment_colors": np.asarray(colour, np.float32)}
    if fitmap:
        out["fitmap_colors"] = np.asarray(strain_colors(r.strain_percent)[row], np.float32)
    if material is not None:
        out.update(uv=material.uv, texture=material.texture, normal_map=material.normal_map, roughness=material.roughness)
        if material.texture is not None:
            out["garment_colors"] = None
    return out


def fits(look: Look) -> bool:
    return float(np.percentile(look.result.strain_percent, 95)) <= TOO_TIGHT_STRAIN


def look_summary(look: Look) -> dict:
    """The JSON summary of a look (what `fitroom drape --json` prints)."""
    r = look.result
    strain = r.strain_percent
    return {
        "garment": look.garment.kind,
        "size": look.garment.size,
        "fabric": look.fabric.name,
        "vertices": int(len(r.positions)),
        "seconds": round(r.seconds, 3),
        "substeps": r.steps,
        "relaxed_substeps": r.relax_steps,
        "relaxation": r.relaxation,
        "converged": r.converged,
        "stop_reason": r.stop_reason,
        "max_penetration_mm": round(float(r.penetration_mm.max()), 3),
        "p99_penetration_mm": round(float(np.percentile(r.penetration_mm, 99)), 3),
        "self_intersections": r.self_intersections,
        "strain_p50": round(float(np.percentile(strain, 50)), 1),
        "strain_p95": round(float(np.percentile(strain, 95)), 1),
        "pressure_p95_kpa": round(float(np.percentile(r.pressure_kpa, 95)), 3),
        "ease_cm": look.ease_cm,
        "fits": fits(look),
        "recommended_size": look.ranking[0]["size"] if look.ranking else None,
        "size_advice": [s["reason"] for s in look.ranking],
        "mesh_repairs": {k: v for k, v in r.mesh_report.items() if v and not k.startswith("input")},
    }


def write_look(look: Look, glb_path=None, fitmap_path=None, faces=None) -> None:
    """Writes the look as a GLB (garment in fit-map colours + body) and/or a fit-map PNG."""
    from avatar.glb_export import MeshPart, write_look_glb
    from streaming.fitmap import render_fitmap, strain_colors, write_png

    colors = strain_colors(look.result.strain_percent)
    r = look.result
    if glb_path:
        write_look_glb(Path(glb_path), [
            MeshPart("garment", r.positions, r.faces, colors=colors),
            MeshPart("body", look.body.vertices, faces, base_color=(0.80, 0.55, 0.42, 1.0)),
        ])
    if fitmap_path:
        title = f"{look.garment.kind} {look.garment.size}, {look.fabric.name}: strain"
        write_png(Path(fitmap_path), render_fitmap(look.body.vertices, faces, r.positions, r.faces, colors, title=title))
