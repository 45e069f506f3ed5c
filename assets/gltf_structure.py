"""Structure checks of glTF 2.0 files (binary .glb or JSON .gltf) before any loader touches them.

The checks follow the glTF 2.0 specification and the Khronos glTF-Validator's order: the GLB
container (header, chunks), the JSON, then the document: asset version, buffers and buffer views
against the bytes really there, accessors (types, byte ranges and strides, POSITION bounds against
the data, index values against the vertex count), images, textures, materials, meshes, nodes and
scenes. Every problem says what was wrong and where: a JSON pointer (``/accessors/3``) or a byte
offset in the file (``byte 1024``).

Nothing here raises on any input bytes: each value is type-checked before it is used, byte ranges
are checked before arrays are read, and arrays are never allocated from counts in the JSON alone.
Should a check still fail, it is reported as ``check_failed`` (the fuzz test asserts it never is).

Codes (errors unless marked *warning*):

=============================  ===============================================================
GLB container                  ``empty_file``, ``glb_truncated_header``, ``glb_bad_magic``,
                               ``glb_bad_version``, ``glb_length_too_small``,
                               ``glb_length_mismatch`` (file shorter than its header says),
                               ``glb_extra_data`` (*warning*: bytes after the end),
                               ``glb_truncated_chunk_header``, ``glb_truncated_chunk``,
                               ``glb_chunk_too_big`` (past the declared length),
                               ``glb_unaligned_chunk``, ``glb_missing_json_chunk``,
                               ``glb_first_chunk_not_json``, ``glb_duplicate_json_chunk``,
                               ``glb_misplaced_bin_chunk``, ``glb_duplicate_bin_chunk``,
                               ``glb_unknown_chunk`` (*warning*)
JSON                           ``json_empty``, ``json_bom``, ``json_invalid``, ``gltf_not_object``
document                       ``gltf_missing_asset``, ``gltf_unsupported_version``,
                               ``unsupported_extension``, ``missing_property``,
                               ``invalid_value``, ``invalid_reference``
files and URIs                 ``missing_file``, ``unsafe_uri``, ``external_uri``,
                               ``invalid_data_uri``
buffers                        ``buffer_too_short``, ``buffer_length_mismatch`` (*warning*),
                               ``unused_bin_chunk`` (*warning*), ``buffer_view_out_of_range``
accessors                      ``accessor_out_of_range``, ``accessor_misaligned``,
                               ``accessor_missing_bounds``, ``accessor_bounds_mismatch``,
                               ``index_out_of_range``
meshes and nodes               ``primitive_missing_position``, ``attribute_count_mismatch``,
                               ``mesh_without_triangles`` (*warning*), ``node_cycle``
images                         ``image_mime_mismatch`` (*warning*)
=============================  ===============================================================
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import re
import struct
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from assets.asset_check import Problem, error, warning

__all__ = [
    "GltfContents",
    "check_glb_bytes",
    "check_gltf_bytes",
    "check_gltf_file",
    "check_model_bytes",
    "accessor_array",
    "image_bytes",
    "triangle_count",
    "safe_relative_file",
]

GLB_MAGIC = b"glTF"
CHUNK_JSON, CHUNK_BIN = 0x4E4F534A, 0x004E4942
HEADER_BYTES, CHUNK_HEADER_BYTES = 12, 8
COMPONENT_DTYPES = {5120: "i1", 5121: "u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
TYPE_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
INDEX_COMPONENTS = (5121, 5123, 5125)
POINTS, LINES, LINE_LOOP, LINE_STRIP, TRIANGLES, TRIANGLE_STRIP, TRIANGLE_FAN = range(7)
# Extensions that change how geometry is stored: without a decoder the data cannot be checked.
UNREADABLE_EXTENSIONS = ("KHR_draco_mesh_compression", "EXT_meshopt_compression")
# External files (buffers, images) are read whole; uploads are far smaller (see upload_archive).
MAX_EXTERNAL_BYTES = 512 * 1024 * 1024
# Declared POSITION bounds may be rounded by an exporter; beyond this (relative to the largest
# coordinate) they are wrong.
BOUNDS_RTOL = 1e-4
IMAGE_SIGNATURES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/webp": b"RIFF"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclasses.dataclass
class GltfContents:
    """What the structure check read.

    gltf : the parsed JSON document, or None when there is none to use.
    buffers : bytes of each buffer (GLB BIN chunk, data URI or external file), None if unavailable.
    images : bytes of each image (buffer view, data URI or external file), None if unavailable.
    external_bytes : total size of the external files read (buffers and images).
    problems : what was wrong.
    """

    gltf: dict | None = None
    buffers: list = dataclasses.field(default_factory=list)
    images: list = dataclasses.field(default_factory=list)
    external_bytes: int = 0
    problems: list[Problem] = dataclasses.field(default_factory=list)
    _layouts: list = dataclasses.field(default_factory=list, repr=False)  # range-checked accessors
    _arrays: dict = dataclasses.field(default_factory=dict, repr=False)  # decoded ones, by index


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _pointer(*parts) -> str:
    """A JSON pointer (RFC 6901) from keys and indices."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _bytes(n: int) -> str:
    return f"{n:,} byte" + ("" if n == 1 else "s")


def _chunk_name(ctype: int) -> str:
    raw = struct.pack("<I", ctype)
    text = raw.rstrip(b"\0")
    return text.decode("ascii") if text and all(32 <= c < 127 for c in text) else f"0x{ctype:08X}"


def safe_relative_file(base_dir: Path, uri: str, where: str) -> tuple[Path | None, Problem | None]:
    """The existing file a relative `uri` names inside `base_dir`, or the problem why not.

    Refuses URIs with a scheme (``external_uri``), absolute paths and ``..`` (``unsafe_uri``), and
    files that are missing or resolve outside `base_dir` through a link (``missing_file``,
    ``unsafe_uri``). Backslashes count as separators (Windows exporters write them).
    """
    if _SCHEME.match(uri) and not _DRIVE.match(uri):
        return None, error("external_uri", f"{uri[:80]!r} points outside the upload; every file must be inside it.", where)
    rel = unquote(uri).replace("\\", "/")
    parts = rel.split("/")
    if rel.startswith("/") or _DRIVE.match(rel) or ".." in parts or "\0" in rel:
        return None, error("unsafe_uri", f"{uri[:80]!r} is an absolute path or climbs out of the upload's folder.", where)
    base = Path(base_dir).resolve()
    path = base.joinpath(*[p for p in parts if p not in ("", ".")])
    try:
        real = path.resolve()
        inside = real == base or base in real.parents
        found = real.is_file()
    except (OSError, RuntimeError):  # a link loop, a name too long
        inside, found = True, False
    if not inside:
        return None, error("unsafe_uri", f"{uri[:80]!r} leads outside the upload's folder.", where)
    if not found:
        return None, error("missing_file", f"{uri[:80]!r} is not in the upload.", where)
    return real, None


class _Checker:
    """Walks one document; collects problems in `out.problems` and bytes in `out`."""

    def __init__(self, base_dir: Path | None):
        self.base_dir = base_dir
        self.out = GltfContents()

    def error(self, code, message, where=""):
        self.out.problems.append(error(code, message, where))

    def warning(self, code, message, where=""):
        self.out.problems.append(warning(code, message, where))

    # -- GLB container -------------------------------------------------------------------------

    def glb(self, data: bytes) -> tuple[bytes | None, bytes | None, int]:
        """JSON chunk, BIN chunk and the JSON's byte offset, after checking the container."""
        n = len(data)
        if n == 0:
            self.error("empty_file", "The file is empty.", "byte 0")
            return None, None, 0
        if n < HEADER_BYTES:
            self.error("glb_truncated_header", f"The file has {_bytes(n)}, fewer than the 12-byte GLB header.", "byte 0")
            return None, None, 0
        magic, version, length = struct.unpack_from("<4sII", data)
        if magic != GLB_MAGIC:
            self.error("glb_bad_magic", f"The file starts with {magic!r}, not the GLB magic b'glTF'.", "byte 0")
            return None, None, 0
        if version != 2:
            self.error("glb_bad_version", f"GLB version {version}; only version 2 (glTF 2.0) is supported.", "byte 4")
            return None, None, 0
        if length < HEADER_BYTES:
            self.error("glb_length_too_small", f"The header declares a total length of {length} bytes, "
                       "less than the header itself.", "byte 8")
            return None, None, 0
        if length > n:
            self.error("glb_length_mismatch", f"The header declares {length} bytes but the file has {n} "
                       "(truncated?).", "byte 8")
        chunks, pos, end = [], HEADER_BYTES, min(length, n)
        while pos < end:
            if pos + CHUNK_HEADER_BYTES > n:
                self.error("glb_truncated_chunk_header", f"Chunk {len(chunks)} header needs 8 bytes; only "
                           f"{_bytes(n - pos)} remain.", f"byte {pos}")
                break
            clen, ctype = struct.unpack_from("<II", data, pos)
            start, name = pos + CHUNK_HEADER_BYTES, _chunk_name(ctype)
            if start + clen > n:
                self.error("glb_truncated_chunk", f"Chunk {len(chunks)} ({name}) declares {_bytes(clen)}; only "
                           f"{_bytes(n - start)} remain in the file.", f"byte {pos}")
            elif start + clen > length:
                self.error("glb_chunk_too_big", f"Chunk {len(chunks)} ({name}) of {clen} bytes ends at byte "
                           f"{start + clen}, past the {length} bytes the header declares.", f"byte {pos}")
            if clen % 4:
                self.error("glb_unaligned_chunk", f"Chunk {len(chunks)} ({name}) is {clen} bytes long, not a "
                           "multiple of 4.", f"byte {pos}")
            chunks.append((ctype, data[start:start + clen], start, pos))
            pos = min(start + clen, n)
        if pos < n and pos >= length:
            # Loaders stop at the declared end; the Khronos validator warns too.
            self.warning("glb_extra_data", f"{_bytes(n - pos)} follow the {_bytes(length)} the header declares.", f"byte {pos}")
        return self._chunk_layout(chunks)

    def _chunk_layout(self, chunks) -> tuple[bytes | None, bytes | None, int]:
        if not chunks:
            if not self.out.problems:  # a truncated chunk header has said it already
                self.error("glb_missing_json_chunk", "The GLB has a header but no chunks; the JSON chunk is missing.",
                           f"byte {HEADER_BYTES}")
            return None, None, 0
        first_is_json = chunks[0][0] == CHUNK_JSON
        if not first_is_json:
            self.error("glb_first_chunk_not_json", f"The first chunk is {_chunk_name(chunks[0][0])}, not JSON.",
                       f"byte {HEADER_BYTES}")
        json_chunk = bin_chunk = None
        offset = 0
        for i, (ctype, payload, start, pos) in enumerate(chunks):
            where = f"byte {pos}"
            if ctype == CHUNK_JSON:
                if i == 0:
                    json_chunk, offset = payload, start
                else:
                    self.error("glb_duplicate_json_chunk", f"Chunk {i} is a second JSON chunk; a GLB has exactly one, "
                               "first.", where)
            elif ctype == CHUNK_BIN:
                if bin_chunk is not None:
                    self.error("glb_duplicate_bin_chunk", f"Chunk {i} is a second BIN chunk; a GLB has at most one.", where)
                    continue
                if i != 1 and first_is_json:
                    self.error("glb_misplaced_bin_chunk", f"The BIN chunk is chunk {i}; it must follow the JSON chunk "
                               "directly (chunk 1).", where)
                bin_chunk = payload
            else:
                self.warning("glb_unknown_chunk", f"Chunk {i} has the unknown type {_chunk_name(ctype)} and is "
                             "ignored.", where)
        if not first_is_json:
            return None, None, 0
        return json_chunk, bin_chunk, offset

    # -- JSON ------------------------------------------------------------------------------------

    def parse_json(self, raw: bytes, offset: int) -> dict | None:
        where = f"byte {offset}"
        if raw.startswith(b"\xef\xbb\xbf"):
            self.error("json_bom", "The JSON starts with a byte order mark, which glTF forbids.", where)
            raw = raw[3:]
        if not raw.strip(b" \t\r\n\0"):
            self.error("json_empty", "The JSON is empty.", where)
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self.error("json_invalid", f"The JSON is not UTF-8 text (byte {e.start}).", f"byte {offset + e.start}")
            return None

        def no_constants(name):
            raise ValueError(f"{name} is not allowed in JSON")

        try:
            doc = json.loads(text, parse_constant=no_constants)
        except json.JSONDecodeError as e:
            self.error("json_invalid", f"The JSON is invalid: {e.msg} at line {e.lineno}, column {e.colno}.",
                       f"byte {offset + e.pos}")
            return None
        except (ValueError, RecursionError) as e:
            self.error("json_invalid", f"The JSON is invalid: {e}.", where)
            return None
        if not isinstance(doc, dict):
            self.error("gltf_not_object", f"The JSON is a {type(doc).__name__}, not an object.", where)
            return None
        return doc

    # -- helpers ---------------------------------------------------------------------------------

    def array(self, doc: dict, key: str, where: str = "") -> list:
        """The array `doc[key]` with non-objects replaced by None (reported)."""
        value = doc.get(key, [])
        if not isinstance(value, list):
            self.error("invalid_value", f"{key} must be an array.", where + _pointer(key))
            return []
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                self.error("invalid_value", f"{key} {i} must be an object.", where + _pointer(key, i))
            items.append(item if isinstance(item, dict) else None)
        return items

    def integer(self, obj: dict, key: str, where: str, default=None, minimum: int = 0, required=False):
        if key not in obj:
            if required:
                self.error("missing_property", f"{key} is required.", where)
            return default
        v = obj[key]
        if not _is_int(v) or v < minimum:
            self.error("invalid_value", f"{key} must be an integer ≥ {minimum}, not {str(v)[:40]!r}.", where + _pointer(key))
            return None
        return v

    def ref(self, obj: dict, key: str, targets: list, name: str, where: str, required=False) -> int | None:
        """The index `obj[key]` into `targets` when valid, else None (reported)."""
        if key not in obj:
            if required:
                self.error("missing_property", f"{key} is required.", where)
            return None
        return self.index(obj[key], targets, name, where + _pointer(key), key)

    def index(self, v, targets: list, name: str, where: str, what: str = "It") -> int | None:
        """`v` when it is a valid index into `targets`, else None (reported)."""
        if not _is_int(v) or not 0 <= v < len(targets):
            self.error("invalid_reference", f"{what} refers to {name} {str(v)[:40]}, but there are {len(targets)}.", where)
            return None
        return v

    def load_uri(self, uri, where: str) -> bytes | None:
        """Bytes of a data URI or of a file beside the model; None (reported) if unavailable."""
        if not isinstance(uri, str):
            self.error("invalid_value", "uri must be a string.", where)
            return None
        if uri.startswith("data:"):
            head, sep, payload = uri.partition(",")
            try:
                if not sep:
                    raise ValueError("no comma")
                return base64.b64decode(payload, validate=True) if head.endswith(";base64") else unquote(payload).encode("latin-1")
            except (ValueError, binascii.Error, UnicodeEncodeError):
                self.error("invalid_data_uri", "The data URI is malformed.", where)
                return None
        if self.base_dir is None:
            self.error("missing_file", f"{uri[:80]!r} is an external file that was not given.", where)
            return None
        path, problem = safe_relative_file(self.base_dir, uri, where)
        if problem is not None:
            self.out.problems.append(problem)
            return None
        size = path.stat().st_size
        if size > MAX_EXTERNAL_BYTES:
            self.error("missing_file", f"{uri[:80]!r} is {size:,} bytes, over the {MAX_EXTERNAL_BYTES:,} that are read.", where)
            return None
        self.out.external_bytes += size
        return path.read_bytes()

    # -- document --------------------------------------------------------------------------------

    def document(self, doc: dict, bin_chunk: bytes | None, is_glb: bool) -> None:
        self.out.gltf = doc
        self.asset(doc)
        used = doc.get("extensionsRequired", [])
        if isinstance(used, list):
            for name in used:
                if name in UNREADABLE_EXTENSIONS:
                    self.error("unsupported_extension", f"The file requires {name}, which fitroom cannot decode; "
                               "export it without compression.", "/extensionsRequired")
        self.buffers(doc, bin_chunk, is_glb)
        views = self.buffer_views(doc)
        accessors = self.accessors(doc, views)
        self.images(doc, views)
        self.textures_and_materials(doc)
        self.meshes(doc, accessors)
        self.nodes_and_scenes(doc)

    def asset(self, doc: dict) -> None:
        asset = doc.get("asset")
        if not isinstance(asset, dict):
            self.error("gltf_missing_asset", "The asset object (with its glTF version) is missing.", "/asset")
            return
        version = asset.get("version")
        if not isinstance(version, str) or not re.fullmatch(r"2\.\d+", version):
            self.error("gltf_unsupported_version", f"asset.version is {str(version)[:20]!r}; only glTF 2.x is "
                       "supported.", "/asset/version")

    def buffers(self, doc: dict, bin_chunk: bytes | None, is_glb: bool) -> None:
        buffers = self.array(doc, "buffers")
        self.out.buffers = [None] * len(buffers)
        bin_used = False
        for i, buf in enumerate(buffers):
            where = _pointer("buffers", i)
            if buf is None:
                continue
            length = self.integer(buf, "byteLength", where, minimum=1, required=True)
            if "uri" in buf:
                data = self.load_uri(buf["uri"], where + "/uri")
            elif is_glb and i == 0:
                bin_used = True
                data = bin_chunk
                if data is None:
                    self.error("missing_file", "Buffer 0 has no uri and the GLB has no BIN chunk.", where)
                elif length is not None and len(data) > length + 3:
                    self.warning("buffer_length_mismatch", f"The BIN chunk holds {len(data)} bytes; buffer 0 "
                                 f"declares {length} (more than 3 bytes of padding).", where)
            else:
                self.error("missing_property", "uri is required (only a GLB's first buffer may use the BIN chunk).", where)
                data = None
            if data is not None and length is not None and len(data) < length:
                self.error("buffer_too_short", f"Buffer {i} declares {length} bytes but holds {len(data)}.", where)
                data = None
            if length is None:
                data = None  # without a valid length no view into it can be range-checked
            self.out.buffers[i] = None if data is None else bytes(data[:length])
        if bin_chunk is not None and not bin_used:
            self.warning("unused_bin_chunk", "The GLB has a BIN chunk that no buffer uses.", "/buffers")

    def buffer_views(self, doc: dict) -> list:
        """Per view: (buffer bytes or None, offset, length, stride or None), or None when invalid."""
        views = self.array(doc, "bufferViews")
        out = []
        for i, view in enumerate(views):
            where = _pointer("bufferViews", i)
            if view is None:
                out.append(None)
                continue
            b = self.ref(view, "buffer", self.out.buffers, "buffer", where, required=True)
            offset = self.integer(view, "byteOffset", where, default=0)
            length = self.integer(view, "byteLength", where, minimum=1, required=True)
            stride = self.integer(view, "byteStride", where, minimum=4)
            if stride is not None and (stride > 252 or stride % 4):
                self.error("invalid_value", f"byteStride {stride} must be a multiple of 4 from 4 to 252.", where + "/byteStride")
                stride = None
            if None in (b, offset, length):
                out.append(None)
                continue
            declared = doc["buffers"][b].get("byteLength")
            if _is_int(declared) and offset + length > declared:
                self.error("buffer_view_out_of_range", f"Bytes {offset} to {offset + length} are past the end of "
                           f"buffer {b} ({declared} bytes).", where)
                out.append(None)
                continue
            out.append((self.out.buffers[b], offset, length, stride))
        return out

    def accessors(self, doc: dict, views: list) -> list:
        """Per accessor: (dtype, components, count, view entry or None, byteOffset) or None."""
        accessors = self.array(doc, "accessors")
        out = []
        for i, acc in enumerate(accessors):
            out.append(self.accessor(acc, _pointer("accessors", i), views) if acc is not None else None)
        self.out._layouts = out
        return out

    def accessor(self, acc: dict, where: str, views: list):
        ctype, atype = acc.get("componentType"), acc.get("type")
        count = self.integer(acc, "count", where, minimum=1, required=True)
        offset = self.integer(acc, "byteOffset", where, default=0)
        v = self.ref(acc, "bufferView", views, "buffer view", where)
        if ctype not in COMPONENT_DTYPES or isinstance(ctype, bool):
            self.error("invalid_value", f"componentType {str(ctype)[:20]} is not a glTF component type.", where + "/componentType")
            return None
        if atype not in TYPE_COMPONENTS:
            self.error("invalid_value", f"type {str(atype)[:20]!r} is not a glTF accessor type.", where + "/type")
            return None
        if count is None or offset is None:
            return None
        dtype, ncomp = np.dtype(COMPONENT_DTYPES[ctype]), TYPE_COMPONENTS[atype]
        for key in ("min", "max"):
            bound = acc.get(key)
            if bound is not None and (not isinstance(bound, list) or len(bound) != ncomp
                                      or not all(_is_number(x) for x in bound)):
                self.error("invalid_value", f"{key} must hold {ncomp} numbers for a {atype}.", where + "/" + key)
        if v is None:
            if "bufferView" in acc:
                return None
            return (dtype, ncomp, count, None, 0)  # all zeros (or sparse), as the spec allows
        view = views[v]
        if view is None:
            return None
        elem = dtype.itemsize * ncomp
        stride = view[3] or elem
        if stride < elem:
            self.error("accessor_out_of_range", f"The view's byteStride {stride} is smaller than one {atype} "
                       f"element ({elem} bytes).", where)
            return None
        if offset % dtype.itemsize or (view[1] + offset) % dtype.itemsize:
            self.error("accessor_misaligned", f"Its data starts at a byte not a multiple of its component size "
                       f"({dtype.itemsize}).", where + "/byteOffset")
        need = offset + stride * (count - 1) + elem
        if need > view[2]:
            self.error("accessor_out_of_range", f"{count} {atype} elements from byte {offset} need {need} bytes; "
                       f"buffer view {v} has {view[2]}.", where)
            return None
        return (dtype, ncomp, count, view, offset)

    def images(self, doc: dict, views: list) -> None:
        images = self.array(doc, "images")
        self.out.images = [None] * len(images)
        for i, img in enumerate(images):
            where = _pointer("images", i)
            if img is None:
                continue
            mime = img.get("mimeType")
            if "uri" in img:
                data = self.load_uri(img["uri"], where + "/uri")
            elif "bufferView" in img:
                v = self.ref(img, "bufferView", views, "buffer view", where)
                if mime is None:
                    self.error("missing_property", "mimeType is required for an image in a buffer view.", where)
                data = None
                if v is not None and views[v] is not None and views[v][0] is not None:
                    buf, offset, length, _ = views[v]
                    data = buf[offset:offset + length]
            else:
                self.error("missing_property", "An image needs a uri or a bufferView.", where)
                continue
            if data is not None and isinstance(mime, str) and mime in IMAGE_SIGNATURES:
                if not data.startswith(IMAGE_SIGNATURES[mime]):
                    self.warning("image_mime_mismatch", f"The image data is not {mime} as declared.", where)
            self.out.images[i] = data

    def textures_and_materials(self, doc: dict) -> None:
        images, samplers = self.out.images, self.array(doc, "samplers")
        textures = self.array(doc, "textures")
        for i, tex in enumerate(textures):
            if tex is not None:
                self.ref(tex, "source", images, "image", _pointer("textures", i))
                self.ref(tex, "sampler", samplers, "sampler", _pointer("textures", i))
        for i, mat in enumerate(self.array(doc, "materials")):
            if mat is None:
                continue
            pbr = mat.get("pbrMetallicRoughness", {})
            slots = [(pbr, ("pbrMetallicRoughness", k)) for k in ("baseColorTexture", "metallicRoughnessTexture")]
            slots += [(mat, (k,)) for k in ("normalTexture", "occlusionTexture", "emissiveTexture")]
            for parent, keys in slots:
                info = parent.get(keys[-1]) if isinstance(parent, dict) else None
                if isinstance(info, dict):
                    self.ref(info, "index", textures, "texture", _pointer("materials", i, *keys), required=True)

    def meshes(self, doc: dict, accessors: list) -> None:
        materials = doc.get("materials") if isinstance(doc.get("materials"), list) else []
        used = doc.get("extensionsUsed")
        quantized = isinstance(used, list) and "KHR_mesh_quantization" in used
        for m, mesh in enumerate(self.array(doc, "meshes")):
            if mesh is None:
                continue
            where = _pointer("meshes", m)
            prims = self.array(mesh, "primitives", where)
            if not prims:
                self.error("missing_property", "A mesh needs at least one primitive.", where + "/primitives")
            triangles = False
            for p, prim in enumerate(prims):
                if prim is not None:
                    triangles |= self.primitive(prim, f"{where}/primitives/{p}", accessors, materials, quantized)
            if prims and not triangles:
                self.warning("mesh_without_triangles", "This mesh has only points or lines, no triangles.", where)

    def primitive(self, prim: dict, where: str, accessors: list, materials: list, quantized: bool) -> bool:
        """Checks one primitive; whether it draws triangles."""
        mode = self.integer(prim, "mode", where, default=TRIANGLES)
        if mode is not None and mode > TRIANGLE_FAN:
            self.error("invalid_value", f"mode {mode} is not a glTF primitive mode (0 to 6).", where + "/mode")
        self.ref(prim, "material", materials, "material", where)
        attrs = prim.get("attributes")
        if not isinstance(attrs, dict):
            self.error("missing_property", "attributes must be an object.", where + "/attributes")
            return False
        counts = {}
        for name in attrs:
            a = self.ref(attrs, name, accessors, "accessor", where + "/attributes")
            if a is not None and accessors[a] is not None:
                counts[name] = accessors[a][2]
        if len(set(counts.values())) > 1:
            self.error("attribute_count_mismatch", "Its attributes have different counts: " +
                       ", ".join(f"{k} {v}" for k, v in counts.items()) + ".", where + "/attributes")
        if "POSITION" not in attrs:
            self.error("primitive_missing_position", "The primitive has no POSITION attribute.", where + "/attributes")
            return False
        pos = attrs["POSITION"]  # its reference was checked with the other attributes
        vertex_count = None
        if _is_int(pos) and 0 <= pos < len(accessors) and accessors[pos] is not None:
            vertex_count = accessors[pos][2]
            self.position_bounds(pos, accessors[pos], quantized)
        idx = self.ref(prim, "indices", accessors, "accessor", where)
        if idx is not None and accessors[idx] is not None:
            self.indices(idx, accessors[idx], vertex_count)
        return mode in (TRIANGLES, TRIANGLE_STRIP, TRIANGLE_FAN)

    def position_bounds(self, a: int, layout, quantized: bool) -> None:
        where = _pointer("accessors", a)
        acc = self.out.gltf["accessors"][a]
        dtype, ncomp = layout[0], layout[1]
        if ncomp != 3 or (dtype.kind != "f" and not quantized):
            self.error("invalid_value", "A POSITION accessor must be a VEC3 of floats.", where)
            return
        bounds = [acc.get("min"), acc.get("max")]
        if not all(isinstance(b, list) and len(b) == 3 and all(_is_number(x) for x in b) for b in bounds):
            self.error("accessor_missing_bounds", "A POSITION accessor must declare valid min and max.", where)
            return
        data = accessor_array(self.out, a)
        if data is None or data.size == 0 or not np.isfinite(data).all():
            return  # NaN and infinite positions are reported by the geometry checks
        real = np.stack([data.min(0), data.max(0)]).astype(np.float64)
        declared = np.asarray(bounds, np.float64)
        scale = max(1e-6, float(np.abs(real).max()))
        if np.abs(real - declared).max() > BOUNDS_RTOL * scale:
            fmt = lambda v: "[" + ", ".join(f"{x:.6g}" for x in v) + "]"  # noqa: E731
            self.error("accessor_bounds_mismatch", f"min/max declared {fmt(declared[0])}/{fmt(declared[1])} but "
                       f"the data spans {fmt(real[0])}/{fmt(real[1])}.", where)

    def indices(self, a: int, layout, vertex_count: int | None) -> None:
        where = _pointer("accessors", a)
        dtype, ncomp = layout[0], layout[1]
        if ncomp != 1 or dtype.kind != "u":
            self.error("invalid_value", "An indices accessor must be a SCALAR of unsigned integers.", where)
            return
        data = accessor_array(self.out, a)
        if data is None or vertex_count is None or data.size == 0:
            return
        top = int(data.max())
        if top >= vertex_count:
            bad = int((data >= vertex_count).sum())
            self.error("index_out_of_range", f"{bad:,} {'index reaches' if bad == 1 else 'indices reach'} vertex "
                       f"{top}, but the primitive has {vertex_count:,} vertices.", where)

    def nodes_and_scenes(self, doc: dict) -> None:
        nodes = self.array(doc, "nodes")
        meshes = doc.get("meshes") if isinstance(doc.get("meshes"), list) else []
        for key in ("cameras", "skins"):
            if not isinstance(doc.get(key, []), list):
                self.error("invalid_value", f"{key} must be an array.", _pointer(key))
        parent = {}
        for i, node in enumerate(nodes):
            if node is None:
                continue
            where = _pointer("nodes", i)
            self.ref(node, "mesh", meshes, "mesh", where)
            for key, name in (("camera", "cameras"), ("skin", "skins")):
                targets = doc.get(name) if isinstance(doc.get(name), list) else []
                self.ref(node, key, targets, name[:-1], where)
            matrix = node.get("matrix")
            if matrix is not None and not (isinstance(matrix, list) and len(matrix) == 16 and all(map(_is_number, matrix))):
                self.error("invalid_value", "matrix must hold 16 numbers.", where + "/matrix")
            for key, n in (("translation", 3), ("rotation", 4), ("scale", 3)):
                v = node.get(key)
                if v is not None and not (isinstance(v, list) and len(v) == n and all(map(_is_number, v))):
                    self.error("invalid_value", f"{key} must hold {n} numbers.", where + "/" + key)
            children = node.get("children", [])
            if not isinstance(children, list):
                self.error("invalid_value", "children must be an array.", where + "/children")
                continue
            for c in range(len(children)):
                child = self.index(children[c], nodes, "node", f"{where}/children/{c}", "A child")
                if child is None:
                    continue
                if child in parent or child == i:
                    self.error("node_cycle", f"Node {child} has more than one parent or is its own child.", where + "/children")
                else:
                    parent[child] = i
        for i in parent:  # a cycle is a chain of parents that comes back
            seen, j = set(), i
            while j in parent and j not in seen:
                seen.add(j)
                j = parent[j]
            if j in seen:
                self.error("node_cycle", f"Node {i} is its own ancestor.", _pointer("nodes", i))
                break
        scenes = self.array(doc, "scenes")
        for s, scene in enumerate(scenes):
            if scene is None:
                continue
            roots = scene.get("nodes", [])
            if not isinstance(roots, list):
                self.error("invalid_value", "nodes must be an array.", _pointer("scenes", s, "nodes"))
                continue
            for r in range(len(roots)):
                self.index(roots[r], nodes, "node", _pointer("scenes", s, "nodes", r), "A root")
        self.ref(doc, "scene", scenes, "scene", "")


def accessor_array(contents: GltfContents, index: int) -> np.ndarray | None:
    """The data of accessor `index` as (count, components), or None when it cannot be read.

    Only accessors whose byte range was checked are read; sparse accessors and matrices of bytes or
    shorts (column-padded) are not decoded. Arrays are cached.
    """
    cache, layouts = contents._arrays, contents._layouts
    if index in cache:
        return cache[index]
    layout = layouts[index] if _is_int(index) and 0 <= index < len(layouts) else None
    acc = contents.gltf["accessors"][index] if layout is not None else None
    out = None
    if layout is not None and "sparse" not in acc:
        dtype, ncomp, count, view, offset = layout
        if view is None:
            out = np.zeros((count, ncomp), dtype.newbyteorder("="))
        elif view[0] is not None and not (ncomp in (4, 9, 16) and acc.get("type", "").startswith("MAT") and dtype.itemsize < 4):
            buf, view_offset, _, stride = view
            stride = stride or dtype.itemsize * ncomp
            raw = np.ndarray((count, ncomp), dtype, buffer=buf, offset=view_offset + offset, strides=(stride, dtype.itemsize))
            out = raw.astype(dtype.newbyteorder("="))
    cache[index] = out
    return out


def image_bytes(contents: GltfContents, index: int) -> bytes | None:
    """The bytes of image `index` (from its buffer view, data URI or file), or None."""
    images = contents.images
    return images[index] if 0 <= index < len(images) else None


def triangle_count(gltf: dict) -> int:
    """Triangles the default scene draws (a mesh instanced by several nodes counts each time),
    computed from the accessors' counts alone; every mesh once when there is no scene."""
    try:
        return _triangle_count(gltf)
    except Exception:  # noqa: BLE001 - an odd document counts as drawing nothing
        return 0


def _triangle_count(gltf: dict) -> int:
    accessors = gltf.get("accessors") if isinstance(gltf.get("accessors"), list) else []

    def count_of(i):
        a = accessors[i] if _is_int(i) and 0 <= i < len(accessors) else None
        c = a.get("count") if isinstance(a, dict) else None
        return c if _is_int(c) and c > 0 else 0

    per_mesh = []
    for mesh in gltf.get("meshes") or []:
        total = 0
        for prim in (mesh.get("primitives") or []) if isinstance(mesh, dict) else []:
            if not isinstance(prim, dict) or not isinstance(prim.get("attributes"), dict):
                continue
            mode = prim.get("mode", TRIANGLES)
            n = count_of(prim["indices"]) if "indices" in prim else count_of(prim["attributes"].get("POSITION"))
            total += n // 3 if mode == TRIANGLES else max(n - 2, 0) if mode in (TRIANGLE_STRIP, TRIANGLE_FAN) else 0
        per_mesh.append(total)
    nodes, scenes = gltf.get("nodes") or [], gltf.get("scenes") or []
    scene = gltf.get("scene", 0)
    if not (isinstance(scenes, list) and _is_int(scene) and 0 <= scene < len(scenes) and isinstance(scenes[scene], dict)):
        return sum(per_mesh)
    total, stack, seen = 0, list(scenes[scene].get("nodes") or []), set()
    while stack:
        n = stack.pop()
        if not (_is_int(n) and 0 <= n < len(nodes)) or n in seen or not isinstance(nodes[n], dict):
            continue
        seen.add(n)  # a node reached twice is a broken hierarchy, reported by the structure check
        m = nodes[n].get("mesh")
        if _is_int(m) and 0 <= m < len(per_mesh):
            total += per_mesh[m]
        children = nodes[n].get("children")
        stack.extend(children if isinstance(children, list) else [])
    return total


def _run(data: bytes, base_dir: Path | None, is_glb: bool) -> GltfContents:
    checker = _Checker(base_dir)
    try:
        if is_glb:
            raw, bin_chunk, offset = checker.glb(data)
        else:
            raw, bin_chunk, offset = data, None, 0
            if not data:
                checker.error("empty_file", "The file is empty.", "byte 0")
                raw = None
        doc = checker.parse_json(raw, offset) if raw is not None else None
        if doc is not None:
            checker.document(doc, bin_chunk, is_glb)
    except Exception as e:  # noqa: BLE001 - a gap in the checks must not crash an upload
        checker.error("check_failed", f"The structure check stopped early ({type(e).__name__}: {e}).")
    return checker.out


def check_glb_bytes(data: bytes, base_dir: Path | None = None) -> GltfContents:
    """Checks a binary glTF (GLB) file's bytes; `base_dir` holds the files its URIs name, if any."""
    return _run(bytes(data), base_dir, is_glb=True)


def check_gltf_bytes(data: bytes, base_dir: Path | None = None) -> GltfContents:
    """Checks a JSON glTF (.gltf) file's bytes; `base_dir` holds its buffers and images."""
    return _run(bytes(data), base_dir, is_glb=False)


def check_gltf_file(path: Path) -> GltfContents:
    """Checks a .glb or .gltf file (told apart by its first bytes, not its name)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        return GltfContents(problems=[error("unreadable_file", f"{path.name} could not be read: {e.strerror or e}.")])
    return check_model_bytes(data, path.parent)


def check_model_bytes(data: bytes, base_dir: Path | None = None) -> GltfContents:
    """Checks a .glb or .gltf file's bytes: JSON when its first character is ``{`` (after white space
    or a byte order mark), GLB otherwise, so that any other content is refused as a GLB."""
    head = bytes(data[:64]).lstrip(b" \t\r\n")
    is_json = head.startswith((b"{", b"\xef\xbb\xbf{"))
    return (check_gltf_bytes if is_json else check_glb_bytes)(data, base_dir)
