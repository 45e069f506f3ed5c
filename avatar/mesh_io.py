"""Body meshes on disk: read a body in Anny's topology from .obj or .glb, write .obj.

Measuring needs the vertices in Anny's order, so readers never merge, split or reorder them:

* OBJ: the `v` lines, in file order (what any exporter writes; a loader that splits vertices at
  texture seams would change the count). Faces are not read: the topology is the model's.
* GLB: the POSITION accessor of the file's first mesh (its first primitive), read by trimesh with
  `process=False`, moved by the world transform of the first node that shows it (glTF ignores
  the node transform of a skinned mesh, and fitroom's skinned avatars put that node at the root
  untransformed, so the rule is the same for them).

Frames. fitroom's world frame is metres, +Y up, facing +Z (glTF's); bodies exported by the `anny`
package itself are Z up, facing -Y. `frame="auto"` (the default) recognises the frame from the
body itself: since the vertex order is Anny's, the rotation that best aligns the body with the
model's template (Kabsch, after centring) tells where up and front are; it is snapped to the
nearest axis permutation (any of the 24 right-handed ones, Anny's frame included), so a body that
leans or twists a little is not straightened. `frame="world"` or `"anny"` forces a frame.
Positions must be in metres (glTF's unit; OBJ has none, and Anny writes metres): a body outside
0.3 to 3 m tall is refused rather than guessed at.

Reference bodies in any topology (`read_reference_body`): a garment's reference body from a brand
(CLO, Marvelous Designer, a scan) is almost never in Anny's topology. Such a mesh (vertices and
triangles, the first mesh of a GLB) is registered: Anny is fitted to its surface
(`engine.body_registration`) and the fitted Anny body stands in for it. Its frame cannot come from
the vertex order: `auto` takes +Z as up when the mesh is longer along Z than along Y (the `anny`
package's frame), +Y otherwise; it may face +Z or -Z. A mesh the fitted body stays far from (a
chair, a half body) is refused as `not_a_body` (see `REGISTRATION_MAX_P95_MM`).
"""

from __future__ import annotations

import io
import itertools
import warnings
from pathlib import Path

import numpy as np

from engine.backend import to_numpy
from engine.body_model import BodyModel
from fitroom.errors import FitroomError
from fitroom.files import write_atomic

__all__ = [
    "FRAMES",
    "SUPPORTED_SUFFIXES",
    "read_mesh_vertices",
    "read_body_mesh",
    "read_reference_body",
    "REGISTRATION_MAX_P95_MM",
    "frame_rotation",
    "write_obj",
]

SUPPORTED_SUFFIXES = (".obj", ".glb")
FRAMES = ("auto", "world", "anny")

# A registered reference body is refused when the worse of its two 95th-percentile surface
# distances (target -> fitted Anny, fitted Anny -> target) is above this. Measured (docs/cloth.md):
# bodies 1.4-3.4 mm (Anny bodies remeshed, reposed, turned, 8 % wider, with 2 mm noise; the
# `anny` package's SOMA wrap) and 7.7 mm (its toe-less template); non-bodies 47-740 mm (a body's
# left or top half, a box, a cylinder, a sphere). 20 mm is 2.6 times the worst body and under half
# the closest non-body.
REGISTRATION_MAX_P95_MM = 20.0

# Anny frame -> world frame, (x, y, z) -> (x, z, -y); the same as avatar.body_model_data.ANNY_TO_WORLD
# (repeated here so that reading a mesh never imports the converter).
ANNY_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def _axis_rotations() -> np.ndarray:
    """The 24 signed permutation matrices with determinant +1, (24, 3, 3)."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            R = np.zeros((3, 3))
            R[np.arange(3), perm] = signs
            if np.linalg.det(R) > 0:
                out.append(R)
    return np.array(out)


_AXIS_ROTATIONS = _axis_rotations()


def _read_obj_vertices(data: bytes) -> np.ndarray:
    """The `v` lines of an OBJ file's bytes (UTF-8, undecodable bytes replaced), in file order."""
    rows = []
    with io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace") as f:  # lines as open(path) splits them
        for line in f:
            if line.startswith("v ") or line.startswith("v\t"):
                parts = line.split()
                if len(parts) < 4:
                    raise ValueError(f"vertex line with fewer than 3 coordinates: {line.strip()[:60]!r}")
                rows.append(parts[1:4])
    if not rows:
        raise ValueError("no vertex ('v') lines")
    return np.array(rows, dtype=np.float64)


def _load_trimesh(path: Path, data: bytes):
    """trimesh's reading (`process=False`, order kept) of the bytes of the mesh file `path`, as
    `trimesh.load(path)` would read the file itself (same file type and resolver). OBJ: without
    its materials, and without trimesh's warnings over texture coordinates (unused here)."""
    import trimesh

    suffix = path.suffix.lower()
    args = dict(file_type=suffix[1:], resolver=trimesh.resolvers.FilePathResolver(str(path)))
    if suffix != ".obj":
        return trimesh.load(io.BytesIO(data), process=False, maintain_order=True, **args)
    with warnings.catch_warnings():  # textures play no part
        warnings.simplefilter("ignore", RuntimeWarning)
        return trimesh.load(io.BytesIO(data), process=False, maintain_order=True, skip_materials=True, **args)


def _first_mesh(loaded):
    """(mesh, (4, 4) world transform of its node) of a loaded file: a scene's first mesh in file
    order (its first primitive), or the loaded mesh itself with the identity. ValueError: no mesh."""
    import trimesh

    if not isinstance(loaded, trimesh.Scene):
        return loaded, np.eye(4)
    if not loaded.geometry:
        raise ValueError("no mesh in the file")
    name = next(iter(loaded.geometry))
    nodes = loaded.graph.geometry_nodes.get(name, [])
    matrix = np.asarray(loaded.graph.get(nodes[0])[0], dtype=np.float64) if nodes else np.eye(4)
    return loaded.geometry[name], matrix


def _glb_vertices(scene) -> np.ndarray:
    """The first mesh's vertices of a loaded GLB, moved by its node's world transform."""
    mesh, matrix = _first_mesh(scene)
    return np.asarray(mesh.vertices, dtype=np.float64) @ matrix[:3, :3].T + matrix[:3, 3]


def checked_mesh_path(path, suffixes, what: str) -> Path:
    """`path` as a Path, once it has one of `suffixes` and exists; FitroomError otherwise
    (`unsupported_mesh_format`, `mesh_not_found`). `what` names the files in the message."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        listed = ", ".join(sorted(suffixes))
        raise FitroomError(
            "unsupported_mesh_format",
            f"{path.name}: {what} are read from {listed} files, not {suffix or 'files without an extension'}.",
        )
    if not path.is_file():
        raise FitroomError("mesh_not_found", f"There is no file {path}.")
    return path


def _read_mesh_file(path):
    """`read_mesh_vertices`, with what the file's single read leaves for `_read_triangles`:
    (vertices (n, 3), source), source the OBJ's bytes or the GLB as trimesh loaded it."""
    path = checked_mesh_path(path, SUPPORTED_SUFFIXES, "body meshes")
    suffix = path.suffix.lower()
    try:
        data = path.read_bytes()
        if suffix == ".obj":
            source = data
            vertices = _read_obj_vertices(data)
        else:
            source = _load_trimesh(path, data)
            vertices = _glb_vertices(source)
    except FitroomError:
        raise
    except Exception as e:  # parsers raise many kinds; all mean the same to the user
        raise FitroomError("unreadable_mesh", f"{path.name} could not be read as {suffix[1:].upper()}: {e}") from e
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        raise FitroomError("unreadable_mesh", f"{path.name} holds no 3D vertex positions.")
    if not np.all(np.isfinite(vertices)):
        raise FitroomError("unreadable_mesh", f"{path.name} has NaN or infinite vertex positions.")
    return vertices, source


def read_mesh_vertices(path) -> np.ndarray:
    """The vertices of a mesh file in their stored order and the file's own frame.

    Parameters
    ----------
    path : str or Path
        An .obj or .glb file.

    Returns
    -------
    vertices : (n, 3) float64
        OBJ: the `v` lines; GLB: the first mesh's POSITION accessor with its node's transform.

    Raises
    ------
    FitroomError
        `unsupported_mesh_format` for another extension, `mesh_not_found`, `unreadable_mesh`.
    """
    return _read_mesh_file(path)[0]


def _kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation R (3, 3) minimising |a R^T - b| for centred point sets a, b (n, 3)."""
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    return (u @ np.diag([1.0, 1.0, d]) @ vt).T


def frame_rotation(vertices, model: BodyModel) -> np.ndarray:
    """The axis rotation that takes a body in Anny's topology into the world frame.

    Parameters
    ----------
    vertices : (V, 3) float
        A body in Anny's vertex order, in any axis-aligned frame (metres).
    model : BodyModel
        The model; its template (world frame) is the reference.

    Returns
    -------
    R : (3, 3) float64
        A signed permutation matrix (det +1) with `vertices @ R.T` in the world frame: the
        identity for world-frame bodies, `ANNY_TO_WORLD` for bodies in Anny's own frame.
    """
    v = np.asarray(to_numpy(vertices), dtype=np.float64)
    t = to_numpy(model.template_vertices).astype(np.float64)
    a, b = v - v.mean(axis=0), t - t.mean(axis=0)
    R = _kabsch(a, b)
    # The axis rotation nearest to the best fit (largest trace of R_axis^T R).
    return _AXIS_ROTATIONS[int(np.argmax(np.einsum("kij,ij->k", _AXIS_ROTATIONS, R)))].copy()


def _check_anny_body(v: np.ndarray, model: BodyModel, name: str) -> None:
    """Refuses bodies whose size or vertex order is not an Anny body's (after rotation to world).

    The order is checked through the mesh's edges: in Anny's order each edge of the model's
    triangles joins neighbouring points, a centimetre or so apart in any pose and shape; the same
    number of vertices in another order makes most "edges" span the body.
    """
    height = float(v[:, 1].max() - v[:, 1].min())
    if not 0.3 <= height <= 3.0:
        raise FitroomError(
            "bad_units",
            f"{name}: the body is {height:.3g} units tall; positions must be in metres (a body 0.3 to 3 m tall).",
        )
    faces = to_numpy(model.faces).astype(np.int64)
    t = to_numpy(model.template_vertices).astype(np.float64)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    length = np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1)
    reference = np.linalg.norm(t[edges[:, 0]] - t[edges[:, 1]], axis=1)
    t_height = float(t[:, 1].max() - t[:, 1].min())
    ratio = np.median(length / np.maximum(reference, 1e-9)) * t_height / height
    if not 0.5 < ratio < 2.0:
        raise FitroomError(
            "wrong_topology",
            f"{name} has Anny's vertex count but not its vertex order (its edges join far-apart "
            "points); export the body without merging, splitting or reordering vertices.",
        )


def read_body_mesh(path, model: BodyModel, frame: str = "auto") -> np.ndarray:
    """A body in Anny's topology from an .obj or .glb file, in the world frame.

    Parameters
    ----------
    path : str or Path
        The mesh file (metres).
    model : BodyModel
        The body model; its vertex count and template define the topology.
    frame : {"auto", "world", "anny"}
        The file's frame: `world` (+Y up, facing +Z), `anny` (+Z up, facing -Y, as the `anny`
        package outputs), or `auto` to recognise it (see the module docstring).

    Returns
    -------
    vertices : (V, 3) float64
        World-frame vertices (metres), in Anny's order; not moved otherwise (the floor need not be
        at y = 0; `avatar.measurements.measure_body` takes them as they are).

    Raises
    ------
    FitroomError
        As `read_mesh_vertices`, plus `bad_frame`, `wrong_topology` (another vertex count or
        order) and `bad_units`.
    """
    if frame not in FRAMES:
        raise FitroomError("bad_frame", f"The frame must be one of {', '.join(FRAMES)}, not {frame!r}.")
    path = Path(path)
    return _anny_body(read_mesh_vertices(path), model, frame, path.name)


def _anny_body(v: np.ndarray, model: BodyModel, frame: str, name: str) -> np.ndarray:
    """`read_body_mesh` on the vertices `v` (n, 3) read from the file `name`."""
    if len(v) != model.n_vertices:
        raise FitroomError(
            "wrong_topology",
            f"{name} has {len(v)} vertices; a body in Anny's topology has {model.n_vertices}. "
            "Export the whole body as one mesh without merging, splitting or reordering vertices "
            "(for GLB, the body must be the file's first mesh, in one primitive).",
        )
    detected = frame_rotation(v, model)
    if frame == "auto":
        R = detected
    else:
        R = np.eye(3) if frame == "world" else ANNY_TO_WORLD
        if not np.array_equal(R, detected):
            row = detected[1]  # world up in the file's axes
            axis = int(np.argmax(np.abs(row)))
            up = ("+" if row[axis] > 0 else "-") + "XYZ"[axis]
            raise FitroomError(
                "bad_frame",
                f"{name} was given as in the {frame} frame, but the body in it stands along the "
                f"file's {up} axis; use frame 'auto' to recognise its frame.",
            )
    v = v @ R.T
    _check_anny_body(v, model, name)
    return v


def _read_triangles(path: Path, source):
    """Vertices (n, 3) float64 and triangles (m, 3) int64 of a mesh file's first mesh (trimesh,
    `process=False`; GLB: moved by its node's world transform). (n, 0) faces when it has none.
    source : from `_read_mesh_file` (the OBJ's bytes, loaded here; the GLB already loaded)."""
    suffix = path.suffix.lower()
    try:
        mesh, matrix = _first_mesh(_load_trimesh(path, source) if isinstance(source, bytes) else source)
        v = np.asarray(getattr(mesh, "vertices", np.zeros((0, 3))), dtype=np.float64)
        f = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
    except Exception as e:  # parsers raise many kinds; all mean the same to the user
        raise FitroomError("unreadable_mesh", f"{path.name} could not be read as {suffix[1:].upper()}: {e}") from e
    v = v @ matrix[:3, :3].T + matrix[:3, 3]
    if len(v) and len(f):  # weld the copies a loader makes at texture seams
        v, inv = np.unique(v, axis=0, return_inverse=True)
        f = inv.reshape(-1)[f]
    return v, f


def read_reference_body(path, model: BodyModel, frame: str = "auto", sex_hint: str | None = None):
    """A garment's reference body from an .obj or .glb file in any topology, as an Anny body.

    Parameters
    ----------
    path : str or Path
        The mesh file (metres). In Anny's topology it is read as `read_body_mesh` reads it; in any
        other it is registered (see the module docstring).
    model : BodyModel
    frame : {"auto", "world", "anny"}
    sex_hint : "female", "male" or None (fitted), for a registration.

    Returns
    -------
    vertices : (V, 3) float64, world frame, Anny's topology.
    info : dict, `{"topology": "anny"}` or `{"topology": "registered", "vertices": n, "faces": m,
        "residual_mm": {"target_to_model": {"mean", "p95"}, "model_to_target": {...}}, "seconds": s,
        "gender": Anny's fitted gender, 0 male to 1 female}`.

    Raises
    ------
    FitroomError
        As `read_body_mesh` (`wrong_topology` only for a mesh with no triangles), and `not_a_body`
        when the registered body stays more than `REGISTRATION_MAX_P95_MM` from the mesh.
    """
    if frame not in FRAMES:
        raise FitroomError("bad_frame", f"The frame must be one of {', '.join(FRAMES)}, not {frame!r}.")
    path = Path(path)
    v, source = _read_mesh_file(path)  # the file's only read
    if len(v) == model.n_vertices:
        try:
            return _anny_body(v, model, frame, path.name), {"topology": "anny"}
        except FitroomError as e:
            if e.code != "wrong_topology":
                raise
    from engine.body_registration import register_body

    v, f = _read_triangles(path, source)
    if len(f) == 0 or len(v) < 4:
        raise FitroomError(
            "wrong_topology",
            f"{path.name} has {len(v)} vertices and no triangles: a body in Anny's topology has "
            f"{model.n_vertices} vertices, and a body in any other needs its triangles.",
        )
    if not np.all(np.isfinite(v)):
        raise FitroomError("unreadable_mesh", f"{path.name} has NaN or infinite vertex positions.")
    ext = np.ptp(v, axis=0)
    anny = frame == "anny" or (frame == "auto" and ext[2] > ext[1])
    if anny:
        v = v @ ANNY_TO_WORLD.T
    height = float(np.ptp(v[:, 1]))
    if not 0.3 <= height <= 3.0:
        raise FitroomError(
            "bad_units",
            f"{path.name}: the body is {height:.3g} units tall; positions must be in metres (a body 0.3 to 3 m tall).",
        )
    reg = register_body(model, v, f, sex_hint=sex_hint)
    info = {"topology": "registered", "vertices": int(len(v)), "faces": int(len(f)),
            "residual_mm": reg.residual_mm, "seconds": round(reg.seconds, 2),
            "gender": round(float(reg.shape[model.phenotype_labels.index("gender")]), 3)}  # 0 male, 1 female
    if reg.p95_mm > REGISTRATION_MAX_P95_MM:
        tm, mt = reg.residual_mm["target_to_model"], reg.residual_mm["model_to_target"]
        raise FitroomError(
            "not_a_body",
            f"{path.name} does not look like a whole human body: fitted to it, the body model leaves "
            f"its surface {tm['p95']:.0f} mm away and is {mt['p95']:.0f} mm from it (95th percentiles, "
            f"mean {tm['mean']:.0f} and {mt['mean']:.0f} mm; a body is within {REGISTRATION_MAX_P95_MM:.0f} mm). "
            "Give the whole body, standing, as the file's first mesh, in metres.",
        )
    return reg.vertices, info


def write_obj(path, vertices, faces) -> None:
    """Writes a triangle mesh as Wavefront OBJ, atomically (temporary file, then rename).

    Parameters
    ----------
    path : str or Path
        Output file.
    vertices : (n, 3) float
        Positions (metres, world frame), written in order with 6 decimals (a micrometre).
    faces : (m, 3) int
        Triangles, 0-based (written 1-based, as OBJ counts).
    """
    path = Path(path)
    v = np.asarray(to_numpy(vertices), dtype=np.float64)
    f = np.asarray(to_numpy(faces), dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
        raise ValueError("write_obj needs vertices (n, 3) and triangles (m, 3)")
    text = "".join(
        [
            "# fitroom body mesh: metres, +Y up, facing +Z\n",
            "".join(f"v {x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in v.tolist()),
            "".join(f"f {a} {b} {c}\n" for a, b, c in (f + 1).tolist()),
        ]
    )
    write_atomic(path, text)
