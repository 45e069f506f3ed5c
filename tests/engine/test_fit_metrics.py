import numpy as np
import pytest

from engine.backend import to_numpy
from engine.cloth_model import build_cloth_model
from engine.cloth_scenes import square_cloth
from engine.cloth_solver import membrane_spread, membrane_targets, system_matrix
from engine.cloth_topology import triangle_areas, vertex_areas
from engine.fabrics import fabric_preset
from engine.fit_metrics import contact_force, contact_pressure_kpa, elastic_force

AROUND, ROWS, LENGTH = 64, 21, 0.3  # tube: vertices round, rows along the axis, m long
SKIN = 0.0025  # the solver's skin offset, m


def tube(radius: float):
    """An open cloth tube round the +Y axis: vertices (ROWS * AROUND, 3) (row j, column i at
    j * AROUND + i), faces (F, 3), outward unit normals (N, 3). Its triangles stand vertical, so
    `cloth_model` makes warp the axis (+Y) and weft the circumference."""
    angle = 2.0 * np.pi * np.arange(AROUND) / AROUND
    y = np.linspace(0.0, LENGTH, ROWS)
    ring = np.stack([np.cos(angle), np.zeros(AROUND), np.sin(angle)], 1)
    v = (radius * ring[None] + y[:, None, None] * np.array([0.0, 1.0, 0.0])).reshape(-1, 3)
    j, i = np.meshgrid(np.arange(ROWS - 1), np.arange(AROUND), indexing="ij")
    a, b = j * AROUND + i, j * AROUND + (i + 1) % AROUND  # b: next round
    c, d = a + AROUND, b + AROUND  # one row up
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    return v, faces, np.tile(ring, (ROWS, 1))


def tube_on_cylinder(fabric: str, strain: float, xp=np):
    """A tube whose rest circumference is 1 / (1 + strain) of where it lies: on a rigid cylinder of
    radius 0.15 m, the skin offset out. Returns (model, x, normal, placed radius) on xp."""
    placed = 0.15 + SKIN
    rest, faces, _ = tube(placed / (1.0 + strain))
    x, _, normal = tube(placed)
    return build_cloth_model(rest, faces, fabric_preset(fabric), xp=xp), xp.asarray(x), xp.asarray(normal), placed


def middle_rows(values):
    return values.reshape(ROWS, AROUND)[3:-3]


@pytest.mark.parametrize("fabric, strain", [("cotton_jersey", 0.10), ("cotton_jersey", 0.21), ("denim", 0.02)])
def test_stretched_tube_on_cylinder_obeys_laplace(xp, fabric, strain):
    """A stretched tube presses on a cylinder with p = T / r, T = k_weft x strain (the weft runs
    round the tube): 0.656 kPa for jersey at 110 %, 1.38 kPa at 121 %, 2.10 kPa for denim at 102 %."""
    model, x, normal, r = tube_on_cylinder(fabric, strain, xp)
    touching = xp.ones(model.n_vertices, bool)
    kpa = to_numpy(contact_pressure_kpa(model, x, normal, touching, gravity=(0.0, 0.0, 0.0)))
    expected = fabric_preset(fabric).stretch_weft * strain / r / 1000.0
    np.testing.assert_allclose(middle_rows(kpa), expected, rtol=0.01)
    # The end rows carry half the area and half the push: the same pressure.
    np.testing.assert_allclose(kpa, expected, rtol=0.01)


def test_relaxed_tube_presses_nothing():
    model, x, normal, r = tube_on_cylinder("cotton_jersey", 0.0)
    kpa = contact_pressure_kpa(model, x, normal, np.ones(model.n_vertices, bool), gravity=(0.0, 0.0, 0.0))
    # Only the bending of a fabric flat at rest pushes the curved tube out: B / r^3 = 5.5e-7 kPa
    # (the rows next to the open ends, whose bending rows are dropped, read 5.8e-5 kPa).
    np.testing.assert_allclose(middle_rows(kpa), fabric_preset("cotton_jersey").bending / r**3 / 1000.0, rtol=0.01)
    assert kpa.max() < 1e-4


def test_weight_on_a_floor_and_only_touching_vertices():
    """A relaxed flat jersey square lying on a floor presses with its weight: 0.160 kg/m^2 x 9.81
    = 1.57 Pa; vertices not touching read 0, and a floor below cannot pull a cloth hanging from it."""
    v, f = square_cloth(9, 0.4)
    model = build_cloth_model(v, f, fabric_preset("cotton_jersey"))
    up = np.tile([0.0, 1.0, 0.0], (model.n_vertices, 1))
    touching = np.arange(model.n_vertices) % 2 == 0
    kpa = contact_pressure_kpa(model, v, up, touching)
    np.testing.assert_allclose(kpa[touching], 0.160 * 9.81 / 1000.0, rtol=1e-6)
    assert np.all(kpa[~touching] == 0.0)
    assert np.all(contact_pressure_kpa(model, v, -up, touching) == 0.0)


def test_elastic_force_is_the_global_steps_residual():
    """elastic_force = S [tu; tv] - K x with K the global step's matrix without mass and attachments."""
    model, x, _, _ = tube_on_cylinder("cotton_jersey", 0.1)
    x = x + np.random.default_rng(0).normal(scale=0.002, size=x.shape)
    k = system_matrix(model, np.inf, np.zeros(model.n_vertices))
    tu, tv = membrane_targets(model, x, 0.05)
    expected = membrane_spread(model) @ np.concatenate([tu, tv]) - k @ x
    np.testing.assert_allclose(elastic_force(model, x), expected, atol=1e-9 * np.abs(expected).max())


def test_contact_pressure_is_finite_and_non_negative(xp):
    """A crumpled, partly stretched tube under gravity, with arbitrary normals: finite, >= 0."""
    rng = np.random.default_rng(1)
    model, x, normal, _ = tube_on_cylinder("silk_charmeuse", 0.05, xp)
    n = model.n_vertices
    x = x * xp.asarray(rng.uniform(0.9, 1.2, size=(n, 1))) + xp.asarray(rng.normal(scale=0.003, size=(n, 3)))
    normal = rng.normal(size=(n, 3))
    normal = xp.asarray(normal / np.linalg.norm(normal, axis=1, keepdims=True))
    touching = xp.asarray(rng.random(n) < 0.7)
    force = to_numpy(contact_force(model, x, normal, touching))
    kpa = to_numpy(contact_pressure_kpa(model, x, normal, touching))
    assert np.all(np.isfinite(kpa)) and kpa.min() >= 0.0 and kpa.max() > 0.0
    assert np.all(kpa[~to_numpy(touching)] == 0.0)
    # The ring mean is an area-weighted mean of the ring's per-vertex pressures: never above the largest.
    assert kpa.max() <= (force / to_numpy(vertex_areas(model.faces, triangle_areas(x, model.faces), model.n_vertices))).max() / 1000.0 * (1 + 1e-9)
