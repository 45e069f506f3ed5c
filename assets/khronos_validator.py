"""The Khronos glTF-Validator (npm `gltf-validator`, installed by scripts/setup.sh into `.node/`).

The npm package is the official validator compiled from Dart to JavaScript; it has no command line,
so a few lines of Node call its `validateBytes` for each file (external buffers and images of a
.gltf are read from beside it) and print the reports as one JSON array. Several files go to one
Node process, as starting Node and loading the validator takes about 0.3 s.

`FITROOM_GLTF_VALIDATOR` may point at another `gltf-validator` package folder; `node` is found on
the PATH.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from fitroom.errors import FitroomError

__all__ = ["KhronosReport", "validator_path", "validator_available", "validate", "validate_many"]

_REPO = Path(__file__).resolve().parents[1]
_NODE_SCRIPT = r"""
const fs = require("fs"), path = require("path");
const validator = require(process.argv[2]);
(async () => {
  const out = [];
  for (const file of process.argv.slice(3)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), {
      uri: path.basename(file), maxIssues: 0, writeTimestamp: false,
      externalResourceFunction: (uri) => new Promise((resolve, reject) =>
        fs.readFile(path.resolve(path.dirname(file), decodeURIComponent(uri)),
                    (err, data) => err ? reject(err.toString()) : resolve(new Uint8Array(data)))),
    }).catch((e) => ({ fatal: String(e) }));
    out.push(report);
  }
  process.stdout.write(JSON.stringify(out));
})();
"""


@dataclasses.dataclass(frozen=True)
class KhronosReport:
    """One file's validation result.

    num_errors, num_warnings, num_infos, num_hints : issue counts by severity.
    messages : the issues, each a dict with `code`, `message`, `severity` (0 error, 1 warning,
        2 info, 3 hint) and `pointer` (JSON pointer) or `offset` (byte) where known.
    info : the validator's summary of the asset (version, generator, counts), or {}.
    """

    num_errors: int
    num_warnings: int
    num_infos: int
    num_hints: int
    messages: list
    info: dict

    @property
    def errors(self) -> list:
        return [m for m in self.messages if m.get("severity") == 0]


def validator_path() -> Path:
    """The `gltf-validator` package folder used."""
    return Path(os.environ.get("FITROOM_GLTF_VALIDATOR", _REPO / ".node" / "node_modules" / "gltf-validator"))


def validator_available() -> bool:
    """Whether Node and the validator package are installed."""
    return shutil.which("node") is not None and (validator_path() / "index.js").is_file()


def _report(raw: dict) -> KhronosReport:
    if "fatal" in raw:  # the validator could not even tell glTF from GLB
        msg = {"code": "UNREADABLE", "message": raw["fatal"], "severity": 0}
        return KhronosReport(1, 0, 0, 0, [msg], {})
    issues = raw.get("issues", {})
    return KhronosReport(
        num_errors=int(issues.get("numErrors", 0)),
        num_warnings=int(issues.get("numWarnings", 0)),
        num_infos=int(issues.get("numInfos", 0)),
        num_hints=int(issues.get("numHints", 0)),
        messages=list(issues.get("messages", [])),
        info=dict(raw.get("info", {})),
    )


def validate_many(items: Sequence[bytes | str | Path], timeout_s: float = 120.0) -> list[KhronosReport]:
    """Validates GLB/glTF files given as bytes (a GLB, or a self-contained .gltf) or paths.

    Raises
    ------
    FitroomError
        `validator_missing` (run scripts/setup.sh) or `validator_failed` (Node failed).
    """
    if not validator_available():
        raise FitroomError(
            "validator_missing", f"The Khronos glTF-Validator is not installed at {validator_path()} (run scripts/setup.sh)."
        )
    with tempfile.TemporaryDirectory(prefix="fitroom-gltf-validate-") as tmp:
        files = []
        for i, item in enumerate(items):
            if isinstance(item, (bytes, bytearray, memoryview)):
                p = Path(tmp) / f"item{i}.glb"
                p.write_bytes(bytes(item))
                files.append(str(p))
            else:
                files.append(str(Path(item).resolve()))
        if not files:
            return []
        script = Path(tmp) / "validate.js"
        script.write_text(_NODE_SCRIPT)
        try:
            done = subprocess.run(
                ["node", str(script), str(validator_path().resolve()), *files],
                capture_output=True, timeout=timeout_s, check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise FitroomError("validator_failed", f"The glTF validator took longer than {timeout_s:.0f} s.") from e
        if done.returncode != 0:
            raise FitroomError("validator_failed", f"The glTF validator failed: {done.stderr.decode()[-500:]}")
        return [_report(r) for r in json.loads(done.stdout)]


def validate(item: bytes | str | Path) -> KhronosReport:
    """Validates one GLB (bytes) or glTF/GLB file (path); see `validate_many`."""
    return validate_many([item])[0]
