"""Settings from `FITROOM_*` environment variables, read in one place."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from fitroom.errors import FitroomError

DEVICES = ("auto", "cpu", "gpu")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Process settings.

    data_dir : where converted models and catalogue data live (`FITROOM_DATA_DIR`).
    device : `auto` (CuPy when a CUDA device is usable), `cpu` or `gpu` (`FITROOM_DEVICE`).
    database_url : the catalogue database (`FITROOM_DATABASE_URL`, e.g. `postgresql://u:p@host/db`);
        None for SQLite in the data directory.
    max_upload_bytes : the largest accepted upload (`FITROOM_MAX_UPLOAD_MB`, default 100 MB).
    brand_key : the API key the command line acts with (`FITROOM_BRAND_KEY`).
    """

    data_dir: Path = Path(".fitroom-data")
    device: str = "auto"
    database_url: str | None = dataclasses.field(default=None, repr=False)  # may hold a password
    max_upload_bytes: int = 100 * 1024 * 1024
    brand_key: str | None = dataclasses.field(default=None, repr=False)

    @property
    def body_model_path(self) -> Path:
        return self.data_dir / "body_model.npz"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        device = env.get("FITROOM_DEVICE", "auto").strip().lower()
        if device not in DEVICES:
            raise FitroomError(
                "bad_setting", f"FITROOM_DEVICE must be one of {', '.join(DEVICES)}, not {device!r}."
            )
        try:
            max_upload_mb = float(env.get("FITROOM_MAX_UPLOAD_MB", "100"))
        except ValueError:
            max_upload_mb = -1.0
        if not 0 < max_upload_mb <= 10_000:
            raise FitroomError("bad_setting", "FITROOM_MAX_UPLOAD_MB must be a number of megabytes between 0 and 10000.")
        return cls(
            data_dir=Path(env.get("FITROOM_DATA_DIR", ".fitroom-data")),
            device=device,
            database_url=env.get("FITROOM_DATABASE_URL") or None,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            brand_key=env.get("FITROOM_BRAND_KEY") or None,
        )


def get_settings() -> Settings:
    return Settings.from_env()
