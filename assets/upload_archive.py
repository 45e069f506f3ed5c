"""Opening a brand's upload safely: the content is sniffed, never trusted by its name, and archives
are extracted with limits.

An upload is one of:

* a GLB (starts with ``glTF``), a glTF JSON file (starts with ``{``) or an OBJ text file;
* a ZIP (starts with ``PK\\x03\\x04``) holding exactly one .glb, .gltf or .obj file with the
  buffers, materials and textures it uses.

Archives are refused (`FitroomError`) when an entry's name is absolute or climbs out with ``..``
(``unsafe_archive``), is a link or a device (``unsafe_archive``), repeats another's, when entries
overlap in the archive (a known zip-bomb construction), and when they expand past the limits
(``archive_too_large``): more than MAX_ENTRIES entries, more than MAX_EXPANDED_BYTES in all, or an
entry expanding more than MAX_RATIO times its compressed size. The limits are enforced on the bytes
really written while streaming, not on the sizes the archive's headers claim. macOS and Windows
clutter (``__MACOSX/``, ``.DS_Store``, ``Thumbs.db``) is skipped.

The upload lands in a fresh folder under `workdir` that is removed again when anything fails, so
nothing half-extracted stays behind.
"""

from __future__ import annotations

import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

from fitroom.errors import FitroomError

__all__ = ["MAX_EXPANDED_BYTES", "MAX_ENTRIES", "MAX_RATIO", "MODEL_SUFFIXES", "sniff_bytes", "sniff_kind", "open_upload"]

MAX_EXPANDED_BYTES = 200 * 1024 * 1024  # four times the 50 MB model limit: room for textures
MAX_ENTRIES = 1000
# Meshes and textures compress 2 to 10 times; zeros compress about 1000 times. The ratio is only
# judged past RATIO_GRACE_BYTES so that a small, very regular file (an .mtl) passes.
MAX_RATIO = 100
RATIO_GRACE_BYTES = 1024 * 1024
MODEL_SUFFIXES = {".glb": "glb", ".gltf": "gltf", ".obj": "obj"}
SNIFF_BYTES = 64 * 1024
_COPY_CHUNK = 256 * 1024
_JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_OBJ_KEYWORDS = {"v", "vt", "vn", "vp", "f", "l", "p", "o", "g", "s", "usemtl", "mtllib", "cstype", "deg", "curv",
                 "curv2", "surf", "parm", "trim", "hole", "end", "bmat", "step", "mg", "lod", "shadow_obj", "trace_obj"}


def _looks_like_obj(text: str, complete: bool) -> bool:
    lines = [ln.strip() for ln in text.splitlines()]
    if not complete and lines:
        lines = lines[:-1]  # the sniffed head may end mid-line
    words = [ln.split(None, 1)[0] for ln in lines if ln and not ln.startswith("#")]
    known = sum(w in _OBJ_KEYWORDS for w in words)
    return bool(words) and "v" in words and known >= 0.9 * len(words)


def sniff_bytes(head: bytes, complete: bool = False) -> str:
    """The kind of file whose first bytes are `head`: "glb", "gltf", "obj", "zip" or "unknown".

    `complete` says `head` is the whole file (so its last line is whole).
    """
    if head.startswith(b"glTF"):
        return "glb"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a ZIP, or an empty one
        return "zip"
    if b"\0" in head:
        return "unknown"
    text = head.decode("utf-8", errors="ignore" if not complete else "replace").lstrip("\ufeff \t\r\n")
    if text.startswith("{"):
        return "gltf"
    if _looks_like_obj(text, complete):
        return "obj"
    return "unknown"


def sniff_kind(path: Path) -> str:
    """`sniff_bytes` of a file's first 64 KiB."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES + 1)
    return sniff_bytes(head[:SNIFF_BYTES], complete=len(head) <= SNIFF_BYTES)


def _safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._")
    return stem[:64] or "model"


def _not_supported(path: Path, size: int) -> FitroomError:
    """The refusal of a file whose content is none of the kinds accepted, naming what it claimed to be."""
    if size == 0:
        return FitroomError("unsupported_file", f"{path.name} is empty.")
    with open(path, "rb") as f:
        head = f.read(4096)
    is_text = b"\0" not in head and head.decode("utf-8", errors="replace").count("\ufffd") <= len(head) // 100
    content = "plain text that is not glTF JSON or OBJ" if is_text else "none of GLB, glTF JSON, OBJ or ZIP"
    claims = {".glb": "a GLB file (a GLB starts with 'glTF')", ".gltf": "a glTF file", ".obj": "an OBJ file",
              ".zip": "a ZIP archive"}
    claimed = claims.get(path.suffix.lower())
    if claimed:
        return FitroomError("unsupported_file", f"{path.name} is not {claimed}: its content is {content}.")
    return FitroomError("unsupported_file", f"{path.name} is {content}; upload a .glb, or a .gltf or .obj with its "
                        "files in a .zip.")


def _entry_parts(info: zipfile.ZipInfo) -> list[str] | None:
    """The path parts of a regular file entry, None for folders and clutter; refuses unsafe ones."""
    name = info.filename
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        raise FitroomError("unsafe_archive", f"The archive entry {name[:80]!r} is a symbolic link; links are refused.")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise FitroomError("unsafe_archive", f"The archive entry {name[:80]!r} is not a regular file.")
    norm = name.replace("\\", "/")
    if "\0" in norm or norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise FitroomError("unsafe_archive", f"The archive entry {name[:80]!r} has an absolute path.")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FitroomError("unsafe_archive", f"The archive entry {name[:80]!r} climbs out of the archive with '..'.")
    if info.is_dir() or kind == stat.S_IFDIR or not parts:
        return None
    if parts[0] == "__MACOSX" or parts[-1].lower() in _JUNK_NAMES or parts[-1].startswith("._"):
        return None
    return parts


def _check_declared_size(plan, max_expanded_bytes: int) -> None:
    """An early refusal from the sizes the headers claim; they can lie, so `_extract` counts again."""
    declared = sum(info.file_size for info, _ in plan)
    if declared > max_expanded_bytes:
        raise FitroomError("archive_too_large", f"The archive expands to {declared:,} bytes; at most "
                           f"{max_expanded_bytes:,} are accepted.")


def _plan(zf: zipfile.ZipFile, max_entries: int, max_expanded_bytes: int) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """The entries to extract, after the checks that need no decompression."""
    infos = zf.infolist()
    if len(infos) > max_entries:
        raise FitroomError("archive_too_large", f"The archive has {len(infos):,} entries; at most {max_entries:,} are accepted.")
    plan, seen = [], set()
    for info in infos:
        parts = _entry_parts(info)
        if parts is None:
            continue
        if info.flag_bits & 0x1:
            raise FitroomError("unsupported_file", "The archive is password-protected; upload it without a password.")
        key = "/".join(parts)
        if key in seen:
            raise FitroomError("unsafe_archive", f"The archive holds {key[:80]!r} twice.")
        seen.add(key)
        plan.append((info, parts))
    _check_declared_size(plan, max_expanded_bytes)
    spans = sorted((info.header_offset, info.header_offset + info.compress_size) for info in infos)
    for (start, end), (next_start, _) in zip(spans, spans[1:]):
        if next_start < end:  # entries sharing compressed data: the overlapping zip bomb
            raise FitroomError("unsafe_archive", "The archive's entries overlap one another; it is refused as a zip bomb.")
    return plan


def _extract(zf, plan, dest: Path, max_expanded_bytes: int, max_ratio: float) -> list[Path]:
    """Streams each planned entry into `dest`, counting the bytes really written."""
    total, files = 0, []
    for info, parts in plan:
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with zf.open(info) as src, open(target, "xb") as out:
            while chunk := src.read(_COPY_CHUNK):
                written += len(chunk)
                total += len(chunk)
                if total > max_expanded_bytes:
                    raise FitroomError("archive_too_large", f"The archive expands past {max_expanded_bytes:,} bytes; "
                                       "that is the limit.")
                if written > RATIO_GRACE_BYTES and written > max_ratio * max(info.compress_size, 1):
                    raise FitroomError("archive_too_large", f"{'/'.join(parts)[:80]!r} expands more than {max_ratio:g} "
                                       "times its compressed size; it is refused as a zip bomb.")
                out.write(chunk)
        files.append(target)
    return files


def _main_model(dest: Path, files: list[Path]) -> Path:
    models = [f for f in files if f.suffix.lower() in MODEL_SUFFIXES]
    names = sorted(str(f.relative_to(dest)) for f in models)
    if not models:
        listed = ", ".join(sorted(str(f.relative_to(dest)) for f in files)[:6]) or "nothing"
        raise FitroomError("no_model_file", f"The archive holds no .glb, .gltf or .obj file (it holds {listed}).")
    if len(models) > 1:
        raise FitroomError("several_model_files", f"The archive holds {len(models)} model files ({', '.join(names[:6])}); "
                           "upload one model per archive.")
    main = models[0]
    kind = sniff_kind(main)
    if kind != MODEL_SUFFIXES[main.suffix.lower()]:
        raise _not_supported(main, main.stat().st_size)
    return main


def _open_zip(path: Path, dest: Path, max_entries: int, max_expanded_bytes: int, max_ratio: float) -> Path:
    try:
        with zipfile.ZipFile(path) as zf:
            plan = _plan(zf, max_entries, max_expanded_bytes)
            files = _extract(zf, plan, dest, max_expanded_bytes, max_ratio)
    except FitroomError:
        raise
    except NotImplementedError as e:  # e.g. a compression method zipfile lacks
        raise FitroomError("unsupported_file", f"{path.name} uses a ZIP feature that is not supported ({e}).") from e
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, RuntimeError, ValueError, OSError) as e:
        raise FitroomError("unreadable_archive", f"{path.name} is a damaged or unreadable ZIP archive ({e}).") from e
    return _main_model(dest, files)


def _copy(path: Path, dest: Path, kind: str, max_bytes: int) -> Path:
    target = dest / f"{_safe_stem(path.name)}.{kind}"
    copied = 0
    with open(path, "rb") as src, open(target, "xb") as out:
        while chunk := src.read(_COPY_CHUNK):
            copied += len(chunk)
            if copied > max_bytes:  # the size is counted, not taken from stat: the file may grow
                raise FitroomError("file_too_large", f"{path.name} is over {max_bytes:,} bytes; that is the limit.")
            out.write(chunk)
    return target


def open_upload(path: Path, workdir: Path, *, max_expanded_bytes: int = MAX_EXPANDED_BYTES,
                max_entries: int = MAX_ENTRIES, max_ratio: float = MAX_RATIO) -> Path:
    """Sniffs an upload and puts its model (and the model's files) into a new folder in `workdir`.

    Parameters
    ----------
    path : Path
        The uploaded file, whatever its name says.
    workdir : Path
        An existing folder; a fresh subfolder is made in it for this upload.
    max_expanded_bytes, max_entries, max_ratio
        Archive limits (see the module docstring); `max_expanded_bytes` also caps a single file.

    Returns
    -------
    Path
        The main model file: ``<stem>.glb|.gltf|.obj`` (named by its content) for a single file, the
        one model file of an archive beside its extracted files.

    Raises
    ------
    FitroomError
        ``file_not_found``, ``unsupported_file`` (not a GLB, glTF, OBJ or ZIP, whatever its name),
        ``file_too_large``, ``unreadable_archive``, ``unsafe_archive``, ``archive_too_large``,
        ``no_model_file`` or ``several_model_files``.
    """
    path = Path(path)
    if not path.is_file():
        raise FitroomError("file_not_found", f"There is no file {path}.")
    try:
        size = path.stat().st_size
        kind = sniff_kind(path)
    except OSError as e:
        raise FitroomError("file_not_found", f"{path.name} could not be read: {e.strerror or e}.") from e
    if kind == "unknown":
        raise _not_supported(path, size)
    dest = Path(tempfile.mkdtemp(prefix="upload-", dir=workdir))
    try:
        if kind == "zip":
            return _open_zip(path, dest, max_entries, max_expanded_bytes, max_ratio)
        return _copy(path, dest, kind, max_expanded_bytes)
    except OSError as e:
        shutil.rmtree(dest, ignore_errors=True)
        raise FitroomError("unreadable_file", f"{path.name} could not be read or extracted: {e.strerror or e}.") from e
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # nothing half-extracted stays behind
        raise
