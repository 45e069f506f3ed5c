"""The Khronos glTF-Validator wrapper (the npm package installed by scripts/setup.sh)."""

from __future__ import annotations

import trimesh

from assets.khronos_validator import validate, validate_many, validator_available


def test_installed():
    assert validator_available(), "run scripts/setup.sh: it installs gltf-validator into .node/"


def test_valid_and_broken_files():
    good = trimesh.creation.box().export(file_type="glb")
    ok, text, truncated = validate_many([good, b"not a gltf at all", good[: len(good) // 2]])
    assert ok.num_errors == 0 and ok.info["totalTriangleCount"] == 12
    assert text.num_errors >= 1 and text.errors
    assert truncated.num_errors >= 1
    assert all({"code", "message", "severity"} <= set(m) for m in truncated.messages)


def test_gltf_with_external_buffer(tmp_path):
    files = trimesh.creation.box().export(file_type="gltf")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    report = validate(tmp_path / "model.gltf")
    assert report.num_errors == 0, report.errors
