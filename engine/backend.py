"""The array backend: one code path for NumPy and CuPy.

Public engine functions pick `xp` from their inputs once (`array_namespace`) and pass it on.
`select_backend` decides where new arrays live: CuPy when a CUDA device is usable, NumPy otherwise.
"""

from __future__ import annotations

import functools
from types import ModuleType

import numpy as np


@functools.lru_cache(maxsize=1)
def _cupy_or_none() -> ModuleType | None:
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        cupy.zeros(1).sum()  # a driver that imports but cannot run fails here, not later
        return cupy
    except Exception:  # no CuPy, no driver, no device: all mean "no GPU"
        return None


def gpu_available() -> bool:
    """True when CuPy imports and a CUDA device runs a kernel."""
    return _cupy_or_none() is not None


def select_backend(device: str = "auto") -> ModuleType:
    """The array module for `device`: `auto`, `cpu` or `gpu`.

    `gpu` raises RuntimeError when no CUDA device is usable; `auto` falls back to NumPy.
    """
    if device == "cpu":
        return np
    if device not in ("auto", "gpu"):
        raise ValueError(f"device must be auto, cpu or gpu, not {device!r}")
    cp = _cupy_or_none()
    if cp is None:
        if device == "gpu":
            raise RuntimeError("device 'gpu' asked for, but no CUDA device is usable through CuPy")
        return np
    return cp


def array_namespace(*arrays) -> ModuleType:
    """NumPy or CuPy, from the arrays given (NumPy when none is a CuPy array)."""
    for a in arrays:
        module = type(a).__module__
        if module.startswith("cupy"):
            return _cupy_or_none() or __import__("cupy")
    return np


def to_numpy(a) -> np.ndarray:
    """A NumPy copy (or view) of a NumPy or CuPy array."""
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def scatter_add(target, indices, values) -> None:
    """target[indices] += values in place, summing repeated indices (unlike `target[i] += v`).

    target : (n, ...) array; indices : (k,) int array; values : (k, ...) array.
    """
    xp = array_namespace(target)
    if xp is np or hasattr(xp.add, "at"):  # CuPy 13+ has ufunc.at; cupyx.scatter_add is deprecated there
        xp.add.at(target, indices, values)
    else:
        import cupyx

        cupyx.scatter_add(target, indices, values)


def scatter_max(target, indices, values) -> None:
    """target[indices] = max(target[indices], values) in place, over repeated indices too.

    target : (n,) int32 or float array (CuPy has no int64 scatter max); indices, values : (k,).
    """
    xp = array_namespace(target)
    if xp is np or hasattr(xp.maximum, "at"):
        xp.maximum.at(target, indices, values)
    else:
        import cupyx

        cupyx.scatter_max(target, indices, values)


def segment_sum(indices, values, n: int):
    """(n, ...) sums of values (k, ...) grouped by indices (k,) int in [0, n), in values' dtype.

    NumPy: bincount, column by column (faster than add.at); CuPy: `scatter_add`, atomics with no
    host synchronisation (cupy.bincount checks its input on the host twice a call).
    """
    xp = array_namespace(values)
    if xp is np:
        if values.ndim == 1:
            return np.bincount(indices, weights=values, minlength=n).astype(values.dtype, copy=False)
        columns = [np.bincount(indices, weights=values[:, c], minlength=n) for c in range(values.shape[1])]
        return np.stack(columns, 1).astype(values.dtype, copy=False)
    out = xp.zeros((n,) + values.shape[1:], values.dtype)
    scatter_add(out, indices, values)
    return out


def rowdot(a, b):
    """Dot products over the last axis: (..., k) and (..., k) -> (...).

    einsum, because NumPy's `(a * b).sum(-1)` over a short last axis is 6x slower (k = 3).
    """
    return array_namespace(a, b).einsum("...i,...i->...", a, b)


def rownorm(a):
    """Euclidean norms over the last axis: (..., k) -> (...)."""
    return array_namespace(a).sqrt(rowdot(a, a))
