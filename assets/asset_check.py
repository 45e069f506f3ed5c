"""The validation report of a brand's 3D upload: structure, then geometry and budgets.

`check_asset` takes any upload (a .glb, a .gltf or .obj, or a .zip holding one with its buffers,
materials and textures) and `check_model` an already extracted model file. Both return an
`AssetReport` and never raise for what is in the file: a refused archive, a corrupt GLB or a mesh
that a loader cannot read become error problems in the report.

The checks, in order:

1. `assets.upload_archive.open_upload`: content sniffed, archives extracted safely.
2. `assets.gltf_structure` (glTF only): container, JSON, references and byte ranges. Geometry is
   loaded only when the structure has no errors, so a loader never sees a broken file.
3. The triangle count is read from the accessors first: a file over the hard limit is refused
   without loading a million triangles.
4. Geometry (glTF through trimesh, OBJ through the plain reader, both in `assets.garment_io`) and
   `assets.asset_budgets`: triangles, file size, textures, real-world size, units, axes, NaN,
   empty meshes, degenerate triangles.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["Problem", "AssetReport", "check_model", "check_asset"]

@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth fixing) in an upload.

    severity : "error" (the asset is refused) or "warning" (recommended, e.g. a 3D Commerce budget).
    code : short machine-readable code, e.g. ``"glb_bad_magic"``.
    message : one plain sentence saying what was wrong.
    where : a JSON pointer (``/accessors/3``), a byte offset (``byte 1024``), a file name, or "".
    """

    severity: str
    code: str
    message: str
    where: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def error(code: str, message: str, where: str = "") -> Problem:
    return Problem("error", code, message, where)


def warning(code: str, message: str, where: str = "") -> Problem:
    return Problem("warning", code, message, where)


@dataclasses.dataclass
class AssetReport:
    """All problems found in one upload and what was measured.

    stats : ``triangles`` (int, as instanced by the scene), ``vertices`` (int), ``file_bytes`` (int,
        the model file plus the buffers, materials and textures it uses), ``textures`` (list of
        (width, height) pixels), ``bounds_m`` ((2, 3) list: min and max corner in metres, or None).
    """

    problems: list[Problem] = dataclasses.field(default_factory=list)
    stats: dict = dataclasses.field(default_factory=lambda: {
        "triangles": 0, "vertices": 0, "file_bytes": 0, "textures": [], "bounds_m": None})

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    @property
    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def to_dict(self) -> dict:
        """JSON-ready: ``ok``, counts, ``problems`` (list of dicts) and ``stats``."""
        stats = dict(self.stats)
        stats["textures"] = [list(map(int, t)) for t in stats.get("textures", [])]
        return {
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [p.to_dict() for p in self.problems],
            "stats": stats,
        }


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _gltf_parts(path: Path, report: AssetReport) -> None:
    """Structure problems, textures, file bytes and the accessor triangle count of a .glb/.gltf."""
    from assets.asset_budgets import check_texture
    from assets.gltf_structure import check_gltf_file, triangle_count

    contents = check_gltf_file(path)
    report.problems += contents.problems
    report.stats["file_bytes"] = _file_size(path) + contents.external_bytes
    for i, data in enumerate(contents.images):
        if data is not None:
            _texture(report, *check_texture(data, where=f"/images/{i}"))
    if contents.gltf is not None:
        report.stats["triangles"] = triangle_count(contents.gltf)


def _texture(report: AssetReport, size, problems) -> None:
    report.problems += problems
    if size is not None:
        report.stats["textures"].append(size)


def _obj_file(base: Path, name: str, where: str, report: AssetReport) -> Path | None:
    """A file an OBJ or MTL names, inside the upload. A missing one is a warning (the mesh still shows,
    untextured); one outside the upload is an error."""
    from assets.gltf_structure import safe_relative_file

    path, problem = safe_relative_file(base, name, where=where)
    if problem is not None and problem.code == "missing_file":
        problem = warning("missing_file", problem.message[:-1] + "; the model will show without it.", where)
    if problem is not None:
        report.problems.append(problem)
    return path


def _obj_parts(path: Path, report: AssetReport) -> None:
    """Textures (through the .mtl files), file bytes and a lower bound of the triangles of an .obj."""
    from assets.asset_budgets import check_texture

    data = path.read_bytes()
    # Every face line draws at least one triangle: enough to refuse a huge file before parsing it.
    report.stats["triangles"] = data.count(b"\nf ") + data.startswith(b"f ")
    total, seen = _file_size(path), set()
    for line in data.decode("utf-8", errors="replace").splitlines():
        words = line.split()
        for name in words[1:] if words and words[0] == "mtllib" else []:
            mtl = _obj_file(path.parent, name, path.name, report)
            if mtl is None:
                continue
            total += _file_size(mtl)
            for mline in mtl.read_text("utf-8", errors="replace").splitlines():
                mwords = mline.split()
                # map_Kd, map_Bump, bump, norm, disp ...; options such as "-s 1 1 1" come before the name
                if len(mwords) > 1 and mwords[0].lower().startswith(("map_", "bump", "disp", "norm")):
                    tex = _obj_file(path.parent, mwords[-1], mtl.name, report)
                    if tex is not None and tex not in seen:
                        seen.add(tex)
                        total += _file_size(tex)
                        _texture(report, *check_texture(tex.read_bytes(), where=mwords[-1]))
    report.stats["file_bytes"] = total


def check_model(main_file: Path) -> AssetReport:
    """Validates one extracted model file (.glb, .gltf or .obj) and the files it refers to.

    Parameters
    ----------
    main_file : Path
        The model, told apart by its content; a .gltf's buffers and images and an .obj's materials
        and textures are looked up beside it (never outside its folder).

    Returns
    -------
    AssetReport
        Never raises for the file's content.
    """
    from assets.asset_budgets import check_file_size, check_geometry, check_triangle_count, MAX_TRIANGLES
    from assets.garment_io import _read_gltf, _read_obj
    from assets.upload_archive import sniff_kind

    main_file = Path(main_file)
    report = AssetReport()
    try:
        kind = sniff_kind(main_file)
        if kind in ("glb", "gltf"):
            _gltf_parts(main_file, report)
        elif kind == "obj":
            _obj_parts(main_file, report)
        else:
            report.problems.append(error("unsupported_file", f"{main_file.name} is not a GLB, glTF or OBJ file.", main_file.name))
            return report
    except OSError as e:
        report.problems.append(error("unreadable_file", f"{main_file.name} could not be read: {e.strerror or e}.", main_file.name))
        return report
    report.problems += check_file_size(report.stats["file_bytes"])
    if kind != "obj" or report.stats["triangles"] > MAX_TRIANGLES:
        report.problems += check_triangle_count(report.stats["triangles"])
    # A loader sees only a sound file, and a file over a hard limit is not loaded at all.
    if report.errors:
        return report
    try:
        if kind != "obj" and report.stats["triangles"] == 0:
            vertices, faces = np.zeros((0, 3)), np.zeros((0, 3), np.int64)  # nothing to load: an empty mesh
        else:
            vertices, faces = _read_obj(main_file) if kind == "obj" else _read_gltf(main_file)
    except Exception as e:  # noqa: BLE001 - loaders raise many kinds; all mean the same to the brand
        report.problems.append(error("unreadable_geometry", f"The geometry of {main_file.name} could not be read: {e}",
                                     main_file.name))
        return report
    report.stats["triangles"], report.stats["vertices"] = int(len(faces)), int(len(vertices))
    if kind == "obj":  # now the exact count
        report.problems += check_triangle_count(len(faces))
    problems, bounds = check_geometry(vertices, faces)
    report.problems += problems
    report.stats["bounds_m"] = None if bounds is None else bounds.round(6).tolist()
    return report


def check_asset(path: Path) -> AssetReport:
    """Validates any upload: a model file or a .zip with one model and its files.

    The upload is opened by `assets.upload_archive.open_upload` into a temporary folder that is
    always removed; a refused upload becomes an error problem, never an exception.

    Parameters
    ----------
    path : Path
        The uploaded file, whatever its name says.

    Returns
    -------
    AssetReport
    """
    from assets.upload_archive import open_upload
    from fitroom.errors import FitroomError

    path = Path(path)
    if not path.is_file():
        return AssetReport([error("file_not_found", f"There is no file {path}.", path.name)])
    workdir = Path(tempfile.mkdtemp(prefix="fitroom-check-"))
    try:
        try:
            main = open_upload(path, workdir)
        except FitroomError as e:
            report = AssetReport([error(e.code, e.message, path.name)])
            report.stats["file_bytes"] = _file_size(path)
            return report
        return check_model(main)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
