import numpy as np
import pytest

from engine.backend import array_namespace, gpu_available, rowdot, rownorm, scatter_add, select_backend, to_numpy


def test_cpu_is_numpy():
    assert select_backend("cpu") is np


def test_auto_falls_back_to_numpy_without_gpu():
    xp = select_backend("auto")
    assert (xp is np) == (not gpu_available())


def test_gpu_without_device_raises():
    if gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        select_backend("gpu")


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="auto, cpu or gpu"):
        select_backend("tpu")


def test_scatter_add_sums_repeated_indices(xp):
    target = xp.zeros((4, 3))
    idx = xp.asarray([0, 2, 2, 2, 3])
    vals = xp.ones((5, 3)) * xp.asarray([1.0, 2.0, 3.0])
    scatter_add(target, idx, vals)
    expected = np.array([[1, 2, 3], [0, 0, 0], [3, 6, 9], [1, 2, 3]], float)
    np.testing.assert_array_equal(to_numpy(target), expected)
    assert array_namespace(target) is xp


def test_rowdot_and_rownorm_over_the_last_axis(xp):
    a = xp.asarray(np.arange(24, dtype=float).reshape(2, 4, 3))
    b = xp.asarray(np.ones((2, 4, 3)))
    np.testing.assert_allclose(to_numpy(rowdot(a, b)), np.arange(24, dtype=float).reshape(2, 4, 3).sum(-1))
    np.testing.assert_allclose(to_numpy(rownorm(xp.asarray([[3.0, 4.0, 0.0], [0.0, 0.0, -2.0]]))), [5.0, 2.0])
