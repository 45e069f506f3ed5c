"""A content-addressed blob store on the filesystem.

A blob is named by the sha256 of its bytes (64 lowercase hex digits) and lies at
``root/ab/cd/abcd...``: two levels of 256 shards keep folders small at millions of blobs. Writes go
to a temporary file under ``root/tmp`` (same filesystem), are fsynced, then renamed into place, so
a reader never sees a half-written blob and a crash leaves at most a stray temporary file.

Equal content is stored once. The store keeps no reference counts: the catalogue knows which rows
name a digest and deletes a blob only when none does (see `assets.catalog.delete_unreferenced`).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from fitroom.errors import FitroomError

_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


def _check_digest(digest: str) -> str:
    # Digests reach the store from URLs and rows: never let one name a path outside the store.
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise FitroomError("bad_digest", f"{digest!r} is not a sha256 digest.")
    return digest


class BlobStore:
    """Blobs named by their sha256 under `root`.

    Parameters
    ----------
    root : folder of the store; created when missing.
    """

    def __init__(self, root):
        self.root = Path(root)
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        """Where the blob `digest` lies (whether or not it exists)."""
        d = _check_digest(digest)
        return self.root / d[:2] / d[2:4] / d

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        """The blob for reading (binary); FitroomError `no_blob` when it is not stored."""
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise FitroomError("no_blob", f"No blob {digest}.") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as fh:
            return fh.read()

    def put(self, data: bytes) -> str:
        """Stores `data`; its digest. Storing content that is already there writes nothing."""
        return self.store(data)[0]

    def put_file(self, source) -> str:
        """Stores the file at `source`; its digest."""
        return self.store(Path(source))[0]

    def store(self, data: bytes | Path) -> tuple[str, bool]:
        """Stores bytes, or a file (hashed while copied, never read whole); (digest, whether this call added it)."""
        if not isinstance(data, Path):
            digest = hashlib.sha256(data).hexdigest()
            if self.exists(digest):
                return digest, False
            return self._write(lambda fh: fh.write(data), digest)
        h = hashlib.sha256()

        def copy(out):
            with open(data, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)

        return self._write(copy, None, h)

    def _write(self, write, digest: str | None, h=None) -> tuple[str, bool]:
        """Writes a temporary file with `write(fh)`, then renames it to its digest (given, or `h`'s)."""
        fd, tmp = tempfile.mkstemp(dir=self._tmp, suffix=".tmp")
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            digest = digest or h.hexdigest()
            target = self.path(digest)
            if target.is_file():
                Path(tmp).unlink()
                return digest, False
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)  # atomic; a concurrent writer of the same digest wrote the same bytes
            return digest, True
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, digest: str) -> bool:
        """Removes the blob; whether it was there."""
        try:
            self.path(digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def digests(self) -> Iterator[str]:
        """Every stored digest (walks the shards; for checks and clean-ups, not hot paths)."""
        for a in sorted(self.root.iterdir()):
            if a.is_dir() and len(a.name) == 2:
                for b in sorted(a.iterdir()):
                    for f in sorted(b.iterdir()):
                        if _DIGEST.fullmatch(f.name):
                            yield f.name
