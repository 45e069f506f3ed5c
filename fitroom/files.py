"""Writing files all at once: a reader sees the old file or the whole new one, never half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomic(path, data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Writes `path` through a temporary file in the same folder, flushed to disk and renamed over
    `path`; on any failure the temporary file is removed and `path` is left as it was.

    data : bytes, str (written as UTF-8), or a function that writes into the open binary file
        (e.g. ``lambda f: np.savez(f, **arrays)``). The folder is created if missing; the file
        gets the ordinary 0644 mode (mkstemp's would be private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
