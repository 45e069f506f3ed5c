"""Uploads opened safely: content sniffed (not the name), archives extracted within limits, every
unsafe archive refused with its code and nothing left behind."""

from __future__ import annotations

import io
import shutil
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from assets.upload_archive import open_upload, sniff_bytes, sniff_kind
from avatar.glb_export import body_glb_bytes
from fitroom.errors import FitroomError

TRIANGLE_GLB = body_glb_bytes(np.array([[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0]]), np.array([[0, 1, 2]]))
OBJ_TEXT = "# a triangle\nmtllib t.mtl\nv 0 0 0\nv 0.5 0 0\nv 0 0.5 0\nvt 0 0\nusemtl m\nf 1 2 3\n"


def make_zip(path: Path, entries: dict, compression=zipfile.ZIP_DEFLATED) -> Path:
    """A zip of name -> bytes (or a ZipInfo-ready (bytes, unix mode) pair)."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            if isinstance(data, tuple):
                data, mode = data
                info.external_attr = mode << 16
            z.writestr(info, data)
    return path


def refused(path: Path, workdir: Path, code: str, **limits) -> str:
    """Asserts `open_upload` refuses with `code` and leaves `workdir` empty; the message."""
    with pytest.raises(FitroomError) as e:
        open_upload(path, workdir, **limits)
    assert e.value.code == code, e.value.message
    assert list(workdir.iterdir()) == []  # nothing half-extracted stays
    return e.value.message


@pytest.fixture
def workdir(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


def test_sniffing_reads_content():
    assert sniff_bytes(TRIANGLE_GLB) == "glb"
    assert sniff_bytes(b'\xef\xbb\xbf \n{"asset": {"version": "2.0"}}') == "gltf"
    assert sniff_bytes(OBJ_TEXT.encode(), complete=True) == "obj"
    assert sniff_bytes(b"PK\x03\x04rest") == "zip"
    assert sniff_bytes(b"PK\x05\x06" + b"\0" * 18) == "zip"  # an empty zip
    for junk in (b"", b"hello, this is not a model\n", b"\x00\x01binary", b"v 1 2 3\x00", b"<html>\nv 1 2 3\n</html>"):
        assert sniff_bytes(junk, complete=True) == "unknown", junk


def test_a_text_file_named_glb_is_refused(tmp_path, workdir):
    path = tmp_path / "chair.glb"
    path.write_text("This is my chair, please add it to the shop.\n")
    message = refused(path, workdir, "unsupported_file")
    assert message == ("chair.glb is not a GLB file (a GLB starts with 'glTF'): its content is plain text that is "
                       "not glTF JSON or OBJ.")
    path.write_bytes(b"")
    assert refused(path, workdir, "unsupported_file") == "chair.glb is empty."
    path = tmp_path / "chair.zip"
    path.write_bytes(bytes(range(256)))
    assert "is not a ZIP archive" in refused(path, workdir, "unsupported_file")
    assert refused(tmp_path / "missing.glb", workdir, "file_not_found")


def test_single_files_are_named_by_content(tmp_path, workdir):
    path = tmp_path / "Chair (final).obj"  # a GLB with the wrong extension
    path.write_bytes(TRIANGLE_GLB)
    main = open_upload(path, workdir)
    assert main.name == "Chair_final.glb" and main.parent.parent == workdir
    assert main.read_bytes() == TRIANGLE_GLB
    obj = tmp_path / "t.obj"
    obj.write_text(OBJ_TEXT)
    assert open_upload(obj, workdir).read_text() == OBJ_TEXT
    big = tmp_path / "big.glb"
    big.write_bytes(TRIANGLE_GLB + b"\0" * 5000)
    before = set(workdir.iterdir())
    with pytest.raises(FitroomError) as e:
        open_upload(big, workdir, max_expanded_bytes=4096)
    assert e.value.code == "file_too_large" and set(workdir.iterdir()) == before


def test_gltf_and_obj_archives_extract_with_their_files(tmp_path, workdir):
    z = make_zip(tmp_path / "shoe.zip", {
        "shoe/shoe.gltf": b'{"asset": {"version": "2.0"}, "buffers": [{"uri": "shoe.bin", "byteLength": 4}]}',
        "shoe/shoe.bin": b"\0\0\0\0",
        "shoe/textures/leather.png": b"\x89PNG...",
        "shoe/": b"",  # a folder entry
        "__MACOSX/shoe/._shoe.gltf": b"mac clutter",
        "shoe/.DS_Store": b"mac clutter",
    })
    main = open_upload(z, workdir)
    assert main.name == "shoe.gltf" and main.parent.name == "shoe"
    root = main.parent.parent
    extracted = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert extracted == ["shoe/shoe.bin", "shoe/shoe.gltf", "shoe/textures/leather.png"]
    z = make_zip(tmp_path / "shirt.zip", {"shirt.obj": OBJ_TEXT, "t.mtl": "newmtl m\nmap_Kd t.png\n", "t.png": b"x"})
    assert open_upload(z, workdir).read_text() == OBJ_TEXT


@pytest.mark.parametrize("name, words", [
    ("../evil.glb", "climbs out"),
    ("models/../../evil.glb", "climbs out"),
    ("..\\evil.glb", "climbs out"),
    ("/tmp/evil.glb", "absolute path"),
    ("C:/evil.glb", "absolute path"),
])
def test_traversal_and_absolute_paths_are_refused(tmp_path, workdir, name, words):
    z = make_zip(tmp_path / "bad.zip", {"model.glb": TRIANGLE_GLB, name: TRIANGLE_GLB})
    assert words in refused(z, workdir, "unsafe_archive")
    assert not (tmp_path / "evil.glb").exists()


def test_links_and_special_files_are_refused(tmp_path, workdir):
    z = make_zip(tmp_path / "link.zip", {"model.glb": TRIANGLE_GLB, "texture.png": (b"/etc/passwd", stat.S_IFLNK | 0o777)})
    assert refused(z, workdir, "unsafe_archive") == "The archive entry 'texture.png' is a symbolic link; links are refused."
    z = make_zip(tmp_path / "fifo.zip", {"model.glb": TRIANGLE_GLB, "pipe": (b"", stat.S_IFIFO | 0o644)})
    assert "not a regular file" in refused(z, workdir, "unsafe_archive")
    # A regular file with unix permissions is fine.
    z = make_zip(tmp_path / "ok.zip", {"model.glb": (TRIANGLE_GLB, stat.S_IFREG | 0o644)})
    assert open_upload(z, workdir).name == "model.glb"


def test_zip_bomb_is_refused_while_streaming(tmp_path, workdir):
    z = make_zip(tmp_path / "bomb.zip", {"model.glb": TRIANGLE_GLB, "texture.png": b"\0" * (20 * 1024 * 1024)})
    assert z.stat().st_size < 100_000  # 20 MB of zeros in a few dozen kB
    message = refused(z, workdir, "archive_too_large")
    assert message == "'texture.png' expands more than 100 times its compressed size; it is refused as a zip bomb."


def test_total_size_and_entry_count_limits(tmp_path, workdir, monkeypatch):
    rng = np.random.default_rng(0)
    entries = {"model.glb": TRIANGLE_GLB, **{f"t{i}.png": rng.bytes(400_000) for i in range(3)}}
    z = make_zip(tmp_path / "big.zip", entries)
    total = 1_200_000 + len(TRIANGLE_GLB)
    assert f"expands to {total:,} bytes" in refused(z, workdir, "archive_too_large", max_expanded_bytes=1_000_000)
    assert refused(z, workdir, "archive_too_large", max_entries=3) == "The archive has 4 entries; at most 3 are accepted."
    assert open_upload(z, workdir).name == "model.glb"  # within the default limits
    for p in workdir.iterdir():
        shutil.rmtree(p)
    # Without the early refusal from the headers, the bytes counted while writing still stop it.
    monkeypatch.setattr("assets.upload_archive._check_declared_size", lambda plan, limit: None)
    assert refused(z, workdir, "archive_too_large", max_expanded_bytes=1_000_000) == (
        "The archive expands past 1,000,000 bytes; that is the limit.")


def test_sizes_in_headers_are_not_trusted(tmp_path, workdir):
    """An entry whose headers claim 10 bytes but that inflates to 5 MB: only the counted bytes count."""
    z = make_zip(tmp_path / "liar.zip", {"model.glb": TRIANGLE_GLB, "t.png": b"\0" * (5 * 1024 * 1024)})
    data = bytearray(z.read_bytes())
    true_size = struct.pack("<I", 5 * 1024 * 1024)
    assert data.count(true_size) == 2  # the local header and the central directory
    z.write_bytes(bytes(data).replace(true_size, struct.pack("<I", 10)))
    # Python's zipfile stops at the claimed size and then finds the checksum wrong.
    assert "damaged" in refused(z, workdir, "unreadable_archive")
    # The other way round, a claimed size over the limit is refused before anything is inflated.
    z.write_bytes(bytes(data).replace(true_size, struct.pack("<I", 300 * 1024 * 1024)))
    assert "expands to" in refused(z, workdir, "archive_too_large")


def test_overlapping_entries_are_refused(tmp_path, workdir):
    """Two directory entries sharing one compressed stream (the overlapping zip bomb)."""
    z = make_zip(tmp_path / "overlap.zip", {"a.png": b"\0" * 1000, "model.glb": TRIANGLE_GLB})
    data = z.read_bytes()
    end = data.rindex(b"PK\x05\x06")
    _, _, _, _, n, size, offset, _ = struct.unpack_from("<IHHHHIIH", data, end)
    directory = data[offset:offset + size]
    copy = directory[:directory.index(b"PK\x01\x02", 4)].replace(b"a.png", b"b.png")
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n + 1, n + 1, size + len(copy), offset, 0)
    z.write_bytes(data[:offset] + directory + copy + eocd)
    assert "overlap" in refused(z, workdir, "unsafe_archive")


def test_model_files_in_an_archive(tmp_path, workdir):
    z = make_zip(tmp_path / "none.zip", {"readme.txt": b"hello", "t.png": b"x"})
    assert refused(z, workdir, "no_model_file") == "The archive holds no .glb, .gltf or .obj file (it holds readme.txt, t.png)."
    z = make_zip(tmp_path / "two.zip", {"a.glb": TRIANGLE_GLB, "b/b.obj": OBJ_TEXT})
    assert "2 model files (a.glb, b/b.obj)" in refused(z, workdir, "several_model_files")
    z = make_zip(tmp_path / "fake.zip", {"model.glb": b"not a glb at all\n"})
    assert "model.glb is not a GLB file" in refused(z, workdir, "unsupported_file")
    with zipfile.ZipFile(tmp_path / "dup.zip", "w") as zf, pytest.warns(UserWarning):
        zf.writestr("model.glb", TRIANGLE_GLB)
        zf.writestr("model.glb", TRIANGLE_GLB)
    assert "twice" in refused(tmp_path / "dup.zip", workdir, "unsafe_archive")
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(b"PK\x03\x04" + b"\x17" * 200)
    assert refused(damaged, workdir, "unreadable_archive")
    (tmp_path / "empty.zip").write_bytes(io.BytesIO(b"PK\x05\x06" + b"\0" * 18).getvalue())
    assert sniff_kind(tmp_path / "empty.zip") == "zip"
    assert refused(tmp_path / "empty.zip", workdir, "no_model_file")
