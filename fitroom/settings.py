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
    """

    data_dir: Path = Path(".fitroom-data")
    device: str = "auto"

    @property
    def body_model_path(self) -> Path:
        return self.data_dir / "body_model.npz"

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        device = env.get("FITROOM_DEVICE", "auto").strip().lower()
        if device not in DEVICES:
            raise FitroomError(
                "bad_setting", f"FITROOM_DEVICE must be one of {', '.join(DEVICES)}, not {device!r}."
            )
        return cls(data_dir=Path(env.get("FITROOM_DATA_DIR", ".fitroom-data")), device=device)


def get_settings() -> Settings:
    return Settings.from_env()
