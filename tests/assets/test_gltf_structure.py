"""glTF structure checks: the Khronos glTF-Validator's GLB corpus, hand-made broken documents with
the code and JSON pointer each must get, and a fuzz of a valid GLB that must never crash."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from assets.gltf_structure import (
    accessor_array,
    check_glb_bytes,
    check_gltf_bytes,
    check_gltf_file,
    image_bytes,
    triangle_count,
)
from avatar.glb_export import ARRAY_BUFFER, _Builder

BAD_GLB = Path(__file__).resolve().parents[3] / "shared" / "data" / "bad_glb"

# The corpus file -> the error codes the structure check must give (all of them, in order).
CORPUS = {
    "bom.glb": ["json_bom"],
    "chunk_too_big.glb": ["glb_chunk_too_big"],
    "empty_file.glb": ["empty_file"],
    "empty_json_chunk.glb": ["json_empty"],
    "empty_json_object.glb": ["gltf_missing_asset"],
    "extra_data.glb": [],  # a warning, glb_extra_data
    "invalid_json_chunk.glb": ["json_invalid"],
    "invalid_magic.glb": ["glb_bad_magic"],
    "invalid_version.glb": ["glb_bad_version"],
    "json_and_two_buffers.glb": ["glb_duplicate_bin_chunk"],
    "length_mismatch.glb": ["glb_length_mismatch"],
    "misplaced_bin_chunk.glb": ["glb_misplaced_bin_chunk"],
    "no_header.glb": ["glb_truncated_header"],
    "only_bin_chunk.glb": ["glb_first_chunk_not_json"],
    "only_header.glb": ["glb_missing_json_chunk"],
    "truncated_chunk_data.glb": ["glb_length_mismatch", "glb_truncated_chunk"],
    "truncated_chunk_header.glb": ["glb_truncated_chunk_header"],
    "two_bin_chunks.glb": ["glb_first_chunk_not_json", "glb_duplicate_bin_chunk"],
    "two_empty_bin_chunks.glb": ["glb_first_chunk_not_json", "glb_duplicate_bin_chunk"],
    "two_empty_json_chunks.glb": ["glb_duplicate_json_chunk", "json_empty"],
    "two_images.glb": [],
    "two_valid_json_chunks.glb": ["glb_duplicate_json_chunk"],
    "unaligned_chunk.glb": ["glb_unaligned_chunk"],
    "unknown_chunk.glb": ["glb_first_chunk_not_json"],
    "valid.glb": [],
    "valid_buffer.glb": [],
    "zero_chunk_header.glb": ["glb_first_chunk_not_json"],
    "zero_length.glb": ["glb_length_too_small"],
}
needs_corpus = pytest.mark.skipif(not BAD_GLB.is_dir(), reason=f"{BAD_GLB} is not there")

# A unit square in the XY plane, two triangles (metres).
SQUARE = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
SQUARE_FACES = np.array([[0, 1, 2], [0, 2, 3]], np.uint16)


def glb(doc: dict, blob: bytes = b"") -> bytes:
    """A GLB of exactly `doc` and `blob` (nothing added), padded as the spec says."""
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    blob += b"\0" * (-len(blob) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text
    if blob:
        chunks += struct.pack("<II", len(blob), 0x004E4942) + blob
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def square_doc(vertices=SQUARE, faces=SQUARE_FACES, bounds=True) -> tuple[dict, bytes]:
    """A one-mesh document (scene, node, mesh, POSITION and indices) and its buffer."""
    b = _Builder()
    pos = b.add(np.asarray(vertices, np.float32), "VEC3", ARRAY_BUFFER, min_max=bounds)
    idx = b.add(np.asarray(faces).reshape(-1), "SCALAR")
    blob = bytes(b.blob)
    doc = {
        "asset": {"version": "2.0"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": pos}, "indices": idx}]}],
        "accessors": b.accessors, "bufferViews": b.views, "buffers": [{"byteLength": len(blob)}],
    }
    return doc, blob


def codes(contents, severity="error") -> list[str]:
    return [p.code for p in contents.problems if p.severity == severity]


def where(contents, code) -> list[str]:
    return [p.where for p in contents.problems if p.code == code]


@needs_corpus
def test_the_corpus_is_the_one_expected():
    assert sorted(p.name for p in BAD_GLB.glob("*.glb")) == sorted(CORPUS)


@needs_corpus
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file_gets_its_codes(name):
    contents = check_gltf_file(BAD_GLB / name)
    assert codes(contents) == CORPUS[name]
    for p in contents.problems:
        assert p.message.endswith(".") and len(p.message) > 15
        assert p.where.startswith(("byte ", "/"))


@needs_corpus
def test_corpus_details_say_where_and_what():
    c = check_gltf_file(BAD_GLB / "chunk_too_big.glb")
    assert c.problems[0].message == "Chunk 0 (JSON) of 28 bytes ends at byte 48, past the 13 bytes the header declares."
    assert where(check_gltf_file(BAD_GLB / "two_valid_json_chunks.glb"), "glb_duplicate_json_chunk") == ["byte 48"]
    assert where(check_gltf_file(BAD_GLB / "json_and_two_buffers.glb"), "glb_duplicate_bin_chunk") == ["byte 88"]
    assert codes(check_gltf_file(BAD_GLB / "extra_data.glb"), "warning") == ["glb_extra_data"]
    c = check_gltf_file(BAD_GLB / "misplaced_bin_chunk.glb")
    assert codes(c, "warning") == ["glb_unknown_chunk"] and "UNK" in c.problems[0].message
    # The JSON is read without its byte order mark, so the rest is still checked.
    bom = check_gltf_file(BAD_GLB / "bom.glb")
    assert bom.gltf == {"asset": {"version": "2.0"}}
    # The two images: a 1x1 PNG and a 2x2 JPEG in one BIN chunk, read back from their views.
    two = check_gltf_file(BAD_GLB / "two_images.glb")
    assert image_bytes(two, 0).startswith(b"\x89PNG") and len(image_bytes(two, 0)) == 69
    assert image_bytes(two, 1).startswith(b"\xff\xd8\xff") and len(image_bytes(two, 1)) == 520
    assert check_gltf_file(BAD_GLB / "valid_buffer.glb").buffers == [b"\xff\xff\xff\xff"]


@needs_corpus
def test_errors_agree_with_the_khronos_validator():
    """Our verdict, errors or none, is the official validator's for every corpus file."""
    try:
        from assets.khronos_validator import validate_many, validator_available
    except ImportError:
        pytest.skip("assets.khronos_validator is not there")
    if not validator_available():
        pytest.skip("the Khronos glTF-Validator (npm gltf-validator) is not installed")
    files = sorted(BAD_GLB.glob("*.glb"))
    # And on documents broken here: bounds, indices, ranges, references (the valid one first).
    made = []
    for change in (lambda d: None, lambda d: d["accessors"][0].update(max=[1.0, 2.0, 0.0]),
                   lambda d: d["accessors"][0].pop("max"), lambda d: d["accessors"][0].update(count=5),
                   lambda d: d["bufferViews"][1].update(byteLength=100), lambda d: d["nodes"][0].update(mesh=3),
                   lambda d: d["nodes"].append({"children": [1]})):
        doc, blob = square_doc(faces=np.array([[0, 1, 2], [0, 2, 3]], np.uint16))
        change(doc)
        made.append(glb(doc, blob))
    doc, blob = square_doc(faces=np.array([[0, 1, 2], [0, 2, 7]], np.uint16))
    made.append(glb(doc, blob))
    reports = validate_many([*files, *made])
    ours = [bool(codes(check_gltf_file(f))) for f in files] + [bool(codes(check_glb_bytes(m))) for m in made]
    assert ours == [r.num_errors > 0 for r in reports]
    assert ours[len(files):] == [False] + [True] * (len(made) - 1)


def test_valid_mesh_has_no_problems_and_reads_back():
    doc, blob = square_doc()
    c = check_glb_bytes(glb(doc, blob))
    assert c.problems == []
    np.testing.assert_array_equal(accessor_array(c, 0), SQUARE)
    np.testing.assert_array_equal(accessor_array(c, 1).ravel(), [0, 1, 2, 0, 2, 3])
    assert triangle_count(c.gltf) == 2


def test_triangle_count_counts_instances_and_strips():
    doc, blob = square_doc()
    doc["nodes"] = [{"mesh": 0, "children": [1]}, {"mesh": 0, "translation": [2, 0, 0]}]
    assert triangle_count(doc) == 4  # the mesh drawn twice
    doc["meshes"][0]["primitives"][0]["mode"] = 5  # a strip of 6 indices draws 4 triangles
    assert triangle_count(doc) == 8
    doc["meshes"][0]["primitives"][0]["mode"] = 1  # lines draw none
    assert triangle_count(doc) == 0
    assert triangle_count({"meshes": "nonsense"}) == 0


def test_position_bounds_missing_or_wrong():
    doc, blob = square_doc(bounds=False)
    c = check_glb_bytes(glb(doc, blob))
    assert codes(c) == ["accessor_missing_bounds"] and where(c, "accessor_missing_bounds") == ["/accessors/0"]
    doc, blob = square_doc()
    doc["accessors"][0]["max"] = [1.0, 2.0, 0.0]  # the square is 1 m tall, not 2
    c = check_glb_bytes(glb(doc, blob))
    assert codes(c) == ["accessor_bounds_mismatch"]
    assert "declared [0, 0, 0]/[1, 2, 0] but the data spans [0, 0, 0]/[1, 1, 0]" in c.problems[0].message
    doc["accessors"][0]["max"] = [1.00001, 1.0, 0.0]  # rounding by an exporter is fine
    assert check_glb_bytes(glb(doc, blob)).problems == []


def test_index_beyond_the_vertices():
    doc, blob = square_doc(faces=np.array([[0, 1, 2], [0, 2, 7]], np.uint16))
    c = check_glb_bytes(glb(doc, blob))
    assert codes(c) == ["index_out_of_range"]
    assert where(c, "index_out_of_range") == ["/accessors/1"]
    assert c.problems[0].message == "1 index reaches vertex 7, but the primitive has 4 vertices."


def test_byte_ranges_of_accessors_views_and_buffers():
    doc, blob = square_doc()
    doc["accessors"][0]["count"] = 5  # 5 VEC3 floats need 60 bytes, the view has 48
    c = check_glb_bytes(glb(doc, blob))
    assert "accessor_out_of_range" in codes(c) and where(c, "accessor_out_of_range") == ["/accessors/0"]
    assert "need 60 bytes; buffer view 0 has 48" in c.problems[0].message

    doc, blob = square_doc()
    doc["bufferViews"][1]["byteLength"] = 100
    c = check_glb_bytes(glb(doc, blob))
    assert codes(c) == ["buffer_view_out_of_range"] and where(c, "buffer_view_out_of_range") == ["/bufferViews/1"]

    doc, blob = square_doc()
    doc["buffers"][0]["byteLength"] = 200  # more than the BIN chunk holds
    c = check_glb_bytes(glb(doc, blob))
    assert codes(c)[0] == "buffer_too_short" and "declares 200 bytes but holds 60" in c.problems[0].message

    doc, blob = square_doc()
    doc["accessors"][0]["byteOffset"] = 2  # floats must start on a multiple of 4
    doc["accessors"][0]["count"] = 3
    c = check_glb_bytes(glb(doc, blob))
    assert "accessor_misaligned" in codes(c)

    doc, blob = square_doc()
    doc["bufferViews"][0]["byteStride"] = 6
    assert where(check_glb_bytes(glb(doc, blob)), "invalid_value") == ["/bufferViews/0/byteStride"]


def test_references_types_and_hierarchy():
    doc, blob = square_doc()
    doc["nodes"] = [{"mesh": 3}]
    doc["scenes"] = [{"nodes": [0, 4]}]
    doc["meshes"][0]["primitives"][0]["material"] = 0
    doc["accessors"][1].update(componentType=5126, count=3)  # float indices (3 fit in the view)
    c = check_glb_bytes(glb(doc, blob))
    assert sorted(where(c, "invalid_reference")) == ["/meshes/0/primitives/0/material", "/nodes/0/mesh", "/scenes/0/nodes/1"]
    assert "mesh refers to mesh 3, but there are 1." in [p.message for p in c.problems]
    assert where(c, "invalid_value") == ["/accessors/1"]

    doc, blob = square_doc()
    doc["nodes"] = [{"children": [1]}, {"children": [0], "mesh": 0}]
    assert "node_cycle" in codes(check_glb_bytes(glb(doc, blob)))

    doc, blob = square_doc()
    doc["meshes"][0]["primitives"][0]["mode"] = 0
    c = check_glb_bytes(glb(doc, blob))
    assert codes(c) == [] and codes(c, "warning") == ["mesh_without_triangles"]

    doc, blob = square_doc()
    doc["asset"]["version"] = "1.0"
    doc["extensionsRequired"] = ["KHR_draco_mesh_compression"]
    doc["accessors"][0]["type"] = "VEC7"
    doc["accessors"][1]["count"] = True  # a bool is not a count
    assert codes(check_glb_bytes(glb(doc, blob))) == [
        "gltf_unsupported_version", "unsupported_extension", "invalid_value", "invalid_value"]


def test_gltf_json_with_external_files(tmp_path):
    doc, blob = square_doc()
    (tmp_path / "geo.bin").write_bytes(blob)
    doc["buffers"][0]["uri"] = "geo.bin"
    text = json.dumps(doc).encode()
    c = check_gltf_bytes(text, tmp_path)
    assert c.problems == [] and c.buffers == [blob] and c.external_bytes == len(blob)
    assert check_gltf_file((tmp_path / "m.gltf")).problems[0].code == "unreadable_file"

    doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(blob).decode()
    assert check_gltf_bytes(json.dumps(doc).encode()).problems == []

    (tmp_path / "secret.bin").write_bytes(blob)
    (tmp_path / "model").mkdir()
    for uri, code in [("../secret.bin", "unsafe_uri"), ("/etc/passwd", "unsafe_uri"), ("..%2Fsecret.bin", "unsafe_uri"),
                      ("C:\\geo.bin", "unsafe_uri"), ("https://example.com/geo.bin", "external_uri"),
                      ("missing.bin", "missing_file"), ("data:;base64,@@@", "invalid_data_uri")]:
        doc["buffers"][0]["uri"] = uri
        c = check_gltf_bytes(json.dumps(doc).encode(), tmp_path / "model")
        assert codes(c)[0] == code, uri
        assert where(c, code) == ["/buffers/0/uri"]
    # Without a folder, an external file cannot be read (and is not looked for).
    doc["buffers"][0]["uri"] = "geo.bin"
    assert codes(check_gltf_bytes(json.dumps(doc).encode()))[0] == "missing_file"


def test_images_in_views_and_mime_types():
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
    doc = {"asset": {"version": "2.0"}, "images": [{"bufferView": 0, "mimeType": "image/jpeg"}, {"bufferView": 0}],
           "textures": [{"source": 2}], "bufferViews": [{"buffer": 0, "byteLength": 32}], "buffers": [{"byteLength": 32}]}
    c = check_glb_bytes(glb(doc, png))
    assert codes(c) == ["missing_property", "invalid_reference"]
    assert where(c, "invalid_reference") == ["/textures/0/source"]
    assert codes(c, "warning") == ["image_mime_mismatch"]
    assert image_bytes(c, 0) == png


def test_json_problems():
    assert codes(check_gltf_bytes(b"[1, 2]")) == ["gltf_not_object"]
    assert codes(check_gltf_bytes(b'{"asset": {"version": NaN}}')) == ["json_invalid"]
    c = check_gltf_bytes(b'{"asset":\n {"version": "2.0",}}')
    assert codes(c) == ["json_invalid"] and "line 2" in c.problems[0].message
    assert codes(check_gltf_bytes(b"\xff\xfe{}")) == ["json_invalid"]
    assert codes(check_gltf_bytes(b"[" * 100_000)) == ["json_invalid"]  # nesting too deep for the parser
    assert codes(check_gltf_bytes(b"")) == ["empty_file"]


def test_fuzzed_glb_never_crashes():
    """Truncations and bit flips of a valid GLB: always a result, never an exception or a gap."""
    doc, blob = square_doc()
    doc["images"] = [{"uri": "data:image/png;base64,iVBORw0KGgo="}]
    doc["textures"] = [{"source": 0}]
    doc["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}]
    doc["meshes"][0]["primitives"][0]["material"] = 0
    data = glb(doc, blob)
    assert check_glb_bytes(data).problems == []
    rng = np.random.default_rng(4)
    cases = [data[:n] for n in range(len(data))]
    for _ in range(1500):
        flipped = bytearray(data)
        for pos in rng.integers(0, len(data), rng.integers(1, 4)):
            flipped[pos] ^= 1 << int(rng.integers(0, 8))
        cases.append(bytes(flipped))
    for _ in range(300):  # digits in the JSON replaced: huge counts, offsets and indices
        text = bytearray(data)
        digits = [i for i in range(20, 20 + struct.unpack_from("<I", data, 12)[0]) if chr(text[i]).isdigit()]
        for pos in rng.choice(digits, 3):
            text[pos] = ord(str(rng.integers(0, 10)))
        cases.append(bytes(text))
    errors = 0
    for case in cases:
        c = check_glb_bytes(case)
        assert "check_failed" not in codes(c), c.problems
        errors += bool(codes(c))
    assert errors > len(data)  # every truncation is an error, and many flips are
