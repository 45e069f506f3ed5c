"""`fitroom asset check FILE [--json]`: the validation report, exit 0 without errors and 2 with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from avatar.glb_export import body_glb_bytes
from fitroom.cli import main

REPO = Path(__file__).resolve().parents[2]
# A 1 m triangle standing on the floor.
GOOD_GLB = body_glb_bytes(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]]))


def test_json_report_and_exit_codes_through_the_real_command(tmp_path):
    good = tmp_path / "good.glb"
    good.write_bytes(GOOD_GLB)
    bad = tmp_path / "bad.glb"
    bad.write_bytes(GOOD_GLB[:-8])  # truncated
    for path, rc in ((good, 0), (bad, 2)):
        r = subprocess.run([sys.executable, "-m", "fitroom.cli", "asset", "check", str(path), "--json"],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
        assert r.returncode == rc, r.stderr
        report = json.loads(r.stdout)
        assert report["ok"] is (rc == 0)
        assert report["stats"]["file_bytes"] == path.stat().st_size
    assert report["problems"][0] == {
        "severity": "error", "code": "glb_length_mismatch", "where": "byte 8",
        "message": f"The header declares {len(GOOD_GLB)} bytes but the file has {len(GOOD_GLB) - 8} (truncated?)."}
    # The cut also shortens the BIN chunk and so the buffer it holds.
    assert [p["code"] for p in report["problems"]] == ["glb_length_mismatch", "glb_truncated_chunk", "buffer_too_short"]
    assert r.stderr.strip() == "fitroom: bad.glb has 3 errors."


def test_plain_output(tmp_path, capsys):
    good = tmp_path / "good.glb"
    good.write_bytes(GOOD_GLB)
    assert main(["asset", "check", str(good)]) == 0
    assert capsys.readouterr().out == "ok: 1 triangles, 1,016 bytes, 0 textures\n".replace("1,016", f"{len(GOOD_GLB):,}")
    text = tmp_path / "sofa.glb"
    text.write_text("not a model\n")
    assert main(["asset", "check", str(text)]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == ("  error unsupported_file sofa.glb: sofa.glb is not a GLB file (a GLB starts with "
                                   "'glTF'): its content is plain text that is not glTF JSON or OBJ.")
    assert err == "fitroom: sofa.glb has 1 error.\n"
    assert main(["asset", "check", str(tmp_path / "missing.zip")]) == 2
    assert "file_not_found" in capsys.readouterr().out
