"""The engine's CuPy code paths, run on the CPU through an emulation of CuPy's semantics
(tests/engine/cupy_semantics.py): host conversions refused, NumPy operands refused, stable sorts,
0-d results, CuPy's ufunc.at dtypes. The same NumPy runs underneath both backends, so a drape
must come out the same on both; a difference is a branch on the backend (or on CuPy's rules) in
the engine. The one known difference: CuPy's `x ** 2` is its `power` kernel, NumPy's is `square`
(1 ulp apart on some values), which reaches the strain map (1e-14 %).
"""

import sys

import numpy as np
import pytest

from engine.backend import array_namespace, gpu_available, scatter_add, scatter_max, to_numpy
from engine.cloth_model import build_cloth_model
from engine.cloth_scenes import disc_cloth, square_cloth
from engine.cloth_solver import ClothSolver
from engine.drape import DrapeSettings, drape, settle
from engine.fabrics import fabric_preset
from engine.self_collision import repel, self_intersections, vertex_triangle_pairs
from tests.engine.cupy_semantics import CALLS, STATS, installed

EXACT = 1e-12


@pytest.fixture
def cupy():
    """The emulated CuPy as `cupy`/`cupyx`, removed again afterwards (gpu_available() back to
    what it was)."""
    before = gpu_available(), sys.modules.get("cupy")
    with installed() as cp:
        assert gpu_available()
        CALLS.clear()
        STATS.clear()
        yield cp
    assert (gpu_available(), sys.modules.get("cupy")) == before


def test_installing_the_emulator_leaves_no_trace():
    had_cupy = "cupy" in sys.modules
    before = gpu_available()
    with installed() as cp:
        import cupy  # noqa: F401  (what engine.backend imports)

        assert cupy is cp and gpu_available()
        assert cp.cuda.runtime.getDeviceCount() == 1 and cp.cuda.runtime.getDeviceProperties(0)["name"]
        cp.cuda.Device().synchronize()
    assert gpu_available() == before
    assert ("cupy" in sys.modules) == had_cupy and ("cupyx" in sys.modules) == had_cupy


def test_the_emulator_refuses_host_arrays_as_cupy_does(cupy):
    a = cupy.arange(6.0).reshape(2, 3)
    assert array_namespace(a) is cupy and type(a).__module__.startswith("cupy")
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        a + np.ones(3)
    with pytest.raises(TypeError, match="Unsupported type"):
        np.ones(3) * a
    with pytest.raises(TypeError, match="Unsupported type"):
        cupy.where(np.ones(3, bool), a, 0.0)
    with pytest.raises(TypeError):
        np.add.at(a, [0], 1.0)  # NumPy's ufunc methods on a device array
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
        a[:, 0] = np.ones(2)  # a basic index fills: CuPy takes no host array there
    # What CuPy does take: Python and NumPy scalars, host index arrays, asarray of host data.
    b = a + 1.0
    assert type(b) is type(a) and to_numpy(b)[1, 2] == 6.0 and type(to_numpy(b)) is np.ndarray
    assert to_numpy(np.float64(2.0) * a)[1, 2] == 10.0 and to_numpy(a - np.int64(1))[0, 0] == -1.0
    assert to_numpy(a[np.array([1, 0])])[0, 0] == 3.0 and a[cupy.asarray([False, True])].shape == (1, 3)
    assert to_numpy(cupy.asarray(np.ones(3)) + a[0]).tolist() == [1.0, 2.0, 3.0]
    assert cupy.asarray(a) is a and cupy.array(a) is not a


def test_the_emulator_returns_device_values_and_syncs_on_demand(cupy):
    a = cupy.arange(6.0).reshape(2, 3)
    s = a.sum()
    assert type(s) is type(a) and s.shape == ()  # a 0-d device array, not a NumPy scalar
    assert float(s) == 15.0 and int(a.max()) == 5 and bool((a > 4).any()) and a[1, 2].item() == 5.0
    assert len(a) == 2 and [r.shape for r in a] == [(3,), (3,)] and a.T.shape == (3, 2)
    assert STATS["sync"] >= 4
    assert type(np.sqrt(a)) is type(a) and type(np.linalg.norm(a, axis=1)) is type(a)  # NumPy dispatches
    assert np.ndim(a) == 2
    with pytest.raises(AttributeError):
        cupy.errstate  # noqa: B018  (a NumPy name CuPy lacks)


def test_the_emulator_scatters_and_sorts_as_cupy_does(cupy):
    t = cupy.zeros(4)
    scatter_add(t, cupy.asarray([0, 2, 2]), cupy.ones(3))
    assert to_numpy(t).tolist() == [1.0, 0.0, 2.0, 0.0]
    owner = cupy.full(3, -1, cupy.int32)
    scatter_max(owner, cupy.asarray([0, 0, 2]), cupy.arange(3, dtype=cupy.int32))
    assert to_numpy(owner).tolist() == [1, -1, 2]
    with pytest.raises(TypeError, match="maximum.at only supports"):
        cupy.maximum.at(cupy.zeros(3, cupy.int64), cupy.asarray([0]), cupy.asarray([1]))
    with pytest.raises(ValueError, match="stably"):
        cupy.argsort(cupy.arange(3), kind="quicksort")
    keys = cupy.asarray([1, 0, 1, 0])
    assert to_numpy(cupy.argsort(keys)).tolist() == [1, 3, 0, 2]  # stable, as CuPy's Thrust sort
    z = cupy.zeros(2)
    z[cupy.asarray([1, 1])] = cupy.asarray([5.0, 7.0])
    assert to_numpy(z)[1] == 5.0  # repeated indices: not NumPy's last-wins (CuPy: any of them)


def _compare(host, device, names):
    for name in names:
        h, d = getattr(host, name), getattr(device, name)
        assert isinstance(d, np.ndarray), name
        np.testing.assert_allclose(d, h, rtol=0, atol=EXACT, err_msg=name)


def test_a_drape_on_cupy_semantics_equals_the_numpy_drape(cupy, small_skirt, reference_bodies, body_model_cpu):
    """The whole drape on the emulated device: clean, refit (grid search, lookup through cupyx's
    distance transform, walk), collider, relaxed then stiffened membrane, contact holds, Anderson,
    self-contact search, metrics. Exact: fails on an engine whose sorts break ties by the
    backend's default (NumPy's argsort is not stable, CuPy's always is): see the report."""
    g = small_skirt
    runs = [drape(g.vertices, g.faces, g.body_vertices, reference_bodies["L"], np.asarray(body_model_cpu.faces),
                  fabric_preset("cotton_jersey"), attached=g.attached, settings=DrapeSettings(max_steps=12, min_steps=2),
                  xp=xp) for xp in (np, cupy)]
    host, device = runs
    for name in ("cupyx.scipy.ndimage.distance_transform_edt", "sparse.__matmul__", "maximum.at", "linalg.lstsq", "add.at"):
        assert CALLS[name] > 0, name  # it ran the device path
    assert (device.steps, device.relax_steps, device.relaxation, device.stop_reason, device.self_intersections) == \
        (host.steps, host.relax_steps, host.relaxation, host.stop_reason, host.self_intersections)
    assert device.relax_steps > 0
    _compare(host, device, ("start", "positions", "pressure_kpa", "penetration_mm", "strain_percent"))
    np.testing.assert_array_equal(device.faces, host.faces)
    assert device.kinetic_energy_per_kg == pytest.approx(host.kinetic_energy_per_kg, rel=1e-12)
    assert device.max_displacement_m == pytest.approx(host.max_displacement_m, rel=1e-12)


def test_a_cusick_disc_settles_on_cupy_semantics_as_on_numpy(cupy):
    """`settle` without a collider and with scalar relax scales (no supported mask): a 6-ring
    disc on its support, relaxed and stiffened."""
    v, f, _ = disc_cloth(0.15, 6)
    support = np.linalg.norm(v[:, [0, 2]], axis=1) <= 0.09 + 1e-9
    runs = []
    for xp in (np, cupy):
        model = build_cloth_model(v, f, fabric_preset("cotton_jersey"), support, xp=xp)
        runs.append(settle(ClothSolver(model), model.initial_state(), DrapeSettings(max_steps=20, min_steps=2)))
    host, device = runs
    assert (device.steps, device.relax_steps, device.relaxation, device.reason) == \
        (host.steps, host.relax_steps, host.relaxation, host.reason)
    assert host.relaxation == "kept" and 0 < host.relax_steps < host.steps
    assert device.energy == pytest.approx(host.energy, rel=1e-12) and device.moved == pytest.approx(host.moved, rel=1e-12)
    np.testing.assert_allclose(to_numpy(device.state.positions), host.state.positions, rtol=0, atol=EXACT)


def test_self_contact_on_cupy_semantics_repels_as_on_numpy(cupy):
    """Two sheets 1.5 mm apart, one pushed through the other: `repel`'s scatter sums (bincount on
    NumPy, add.at on CuPy) and the solver's self-contact, which the short drape does not reach."""
    v1, f1 = square_cloth(10, 0.2, height=0.3)
    v2, f2 = square_cloth(10, 0.2, height=0.3015)
    v2 = v2 + np.random.default_rng(1).normal(scale=0.0005, size=v2.shape) + [0.003, 0.0, 0.002]
    v, f = np.concatenate([v1, v2]), np.concatenate([f1, f2 + len(v1)])
    x = v.copy()
    x[len(v1):, 1] -= 0.0025
    out = []
    for xp in (np, cupy):
        model = build_cloth_model(v, f, fabric_preset("silk_charmeuse"), xp=xp)
        pairs = vertex_triangle_pairs(xp.asarray(x), model.faces, 0.007, model.neighbours)
        pushed = repel(xp.asarray(x), xp.asarray(v), model.faces, pairs, 0.002, rest=model.rest_positions)
        solver = ClothSolver(model)
        state = model.initial_state(xp.asarray(x))
        for _ in range(3):
            solver.step(state, state)
        out.append((len(pairs[0]), to_numpy(pushed), to_numpy(state.positions), int(to_numpy(solver.held_apart).sum()),
                    self_intersections(state.positions, model.faces)))
    (n_h, pushed_h, x_h, held_h, cross_h), (n_d, pushed_d, x_d, held_d, cross_d) = out
    assert n_h == n_d > 0 and held_h == held_d > 0 and cross_h == cross_d
    assert np.abs(pushed_h - x).max() > 1e-3  # it did push
    np.testing.assert_allclose(pushed_d, pushed_h, rtol=0, atol=EXACT)
    np.testing.assert_allclose(x_d, x_h, rtol=0, atol=EXACT)
    assert CALLS["add.at"] > 0


def test_the_audits_latent_crashes_stay_fixed(cupy):
    """cupy_audit F2, F3: a NumPy per-triangle membrane scale on a device model, and a cloth model
    built from device arrays."""
    v, f = square_cloth(6, 0.2)
    model = build_cloth_model(cupy.asarray(v), cupy.asarray(f), fabric_preset("denim"), cupy.zeros(len(v), bool), xp=cupy)
    assert array_namespace(model.rest_positions) is cupy
    solver = ClothSolver(model)
    solver.set_membrane_scale(np.where(np.arange(len(f)) % 2 == 0, 0.5, 1.0), 0.5)
    assert array_namespace(solver.model.stretch_warp) is cupy
    solver.set_membrane_scale(cupy.full(len(f), 0.25))
    solver.set_membrane_scale(1.0)
    assert solver.model is solver.base_model
