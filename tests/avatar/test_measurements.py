"""ISO 8559-1 measurements on real Anny bodies, and body meshes read back from OBJ and GLB."""

from __future__ import annotations

import numpy as np
import pytest

from avatar import measurements as meas
from avatar.measurements import measure_body
from avatar.mesh_io import ANNY_TO_WORLD, frame_rotation, read_body_mesh, read_mesh_vertices, write_obj
from engine.backend import to_numpy
from engine.body_fit import mean_shape
from engine.body_model import body_vertices
from fitroom.errors import FitroomError

GIRTHS = ("chest_cm", "bust_cm", "waist_cm", "hip_cm", "thigh_cm", "upper_arm_cm", "neck_cm")


@pytest.fixture(scope="module")
def model():
    from avatar.body import load_body_model

    return load_body_model(device="cpu")


def make_shape(model, gender=0.5, **values):
    """The mean adult of `gender` with some phenotypes or local changes (by label) set."""
    s = mean_shape(model, gender)
    labels = list(model.phenotype_labels) + list(model.local_change_labels)
    for key, value in values.items():
        s[labels.index(key)] = value
    return s


def vertices(model, shape):
    return to_numpy(body_vertices(model, shape)).astype(np.float64)


@pytest.fixture(scope="module")
def adults(model):
    """Measurements of the mean male and female adults (lean, average and heavy)."""
    out = {}
    for sex, g in (("male", 0.0), ("female", 1.0)):
        for build, w in (("lean", 0.15), ("average", 0.5), ("heavy", 0.95)):
            v = vertices(model, make_shape(model, g, weight=w))
            out[sex, build] = (v, measure_body(v, model))
    return out


def test_keys_units_and_stature(model, adults):
    for (sex, build), (v, m) in adults.items():
        assert set(m) == set(meas.MEASUREMENT_KEYS)
        assert all(isinstance(x, float) and np.isfinite(x) for x in m.values())
        assert m["stature_cm"] == pytest.approx((v[:, 1].max() - v[:, 1].min()) * 100, abs=1e-9)


def test_default_adults_are_in_human_ranges(adults):
    # Anny's mean adults are tall (about 190 cm and 176 cm); ranges are wide adult ones (cm).
    ranges = {
        "chest_cm": (80, 125),
        "bust_cm": (78, 120),
        "waist_cm": (60, 110),
        "hip_cm": (85, 120),
        "inseam_cm": (70, 100),
        "shoulder_width_cm": (32, 46),
        "neck_cm": (28, 46),
        "upper_arm_cm": (20, 40),
        "thigh_cm": (45, 70),
    }
    for sex in ("male", "female"):
        m = adults[sex, "average"][1]
        for key, (lo, hi) in ranges.items():
            assert lo < m[key] < hi, (sex, key, m[key])
        assert 0.42 < m["inseam_cm"] / m["stature_cm"] < 0.52
        assert m["waist_cm"] < m["hip_cm"] and m["waist_cm"] < m["chest_cm"]
    male, female = adults["male", "average"][1], adults["female", "average"][1]
    assert male["shoulder_width_cm"] > female["shoulder_width_cm"]
    assert male["chest_cm"] - male["waist_cm"] > 10
    assert female["hip_cm"] - female["waist_cm"] > 20  # the female waist-to-hip drop


def test_heavier_bodies_have_larger_girths(adults):
    for sex in ("male", "female"):
        lean, average, heavy = (adults[sex, b][1] for b in ("lean", "average", "heavy"))
        for key in GIRTHS:
            assert lean[key] < average[key] < heavy[key], (sex, key)
        assert heavy["stature_cm"] == pytest.approx(lean["stature_cm"], abs=1.0)


def test_levels_are_in_anatomical_order(model, adults):
    lm = meas.body_landmarks(model)
    for (sex, build), (v, m) in adults.items():
        floor = v[:, 1].min()
        navel = (v[lm.navel, 1].mean() - floor) * 100
        underbust = (v[lm.underbust, 1].mean() - floor) * 100
        assert m["inseam_cm"] < m["hip_height_cm"] < navel < m["waist_height_cm"] < underbust, (sex, build)
        assert m["waist_height_cm"] < m["bust_height_cm"] < m["chest_height_cm"], (sex, build)
        # The natural waist: above the navel, well below the fold, on lean and heavy bodies alike.
        t = (m["waist_height_cm"] - navel) / (underbust - navel)
        assert 0.1 < t < 0.6, (sex, build, t)


def test_waist_circumference_change_widens_the_waist(model):
    for g in (0.0, 1.0):
        base = measure_body(vertices(model, make_shape(model, g)), model)
        wider = measure_body(vertices(model, make_shape(model, g, **{"measure-waist-circ-incr": 1.0})), model)
        assert wider["waist_cm"] > base["waist_cm"] + 2.0
        assert abs(wider["chest_cm"] - base["chest_cm"]) < abs(wider["waist_cm"] - base["waist_cm"])


def test_position_does_not_matter(model, adults):
    v, m = adults["female", "average"]
    moved = measure_body(v + [0.3, 1.2, -0.7], model)
    for key in m:
        assert moved[key] == pytest.approx(m[key], abs=1e-6)


def test_bad_input_is_refused(model, adults):
    v = adults["male", "average"][0]
    with pytest.raises(FitroomError) as e:
        measure_body(v[:-1], model)
    assert e.value.code == "wrong_topology" and "13718" in e.value.message
    bad = v.copy()
    bad[100, 1] = np.nan
    with pytest.raises(FitroomError) as e:
        measure_body(bad, model)
    assert e.value.code == "bad_vertices"
    with pytest.raises(FitroomError) as e:
        measure_body(v[:, :2], model)
    assert e.value.code == "bad_vertices"
    with pytest.raises(FitroomError) as e:  # lying down: Anny's own frame, Z up
        measure_body(v @ ANNY_TO_WORLD, model)
    assert e.value.code == "not_standing"


def test_obj_round_trip_measures_the_same(model, adults, tmp_path):
    v, m = adults["male", "heavy"]
    path = tmp_path / "body.obj"
    write_obj(path, v, to_numpy(model.faces))
    assert not list(tmp_path.glob("*.tmp"))
    back = read_body_mesh(path, model)
    assert np.abs(back - v).max() < 1e-6
    got = measure_body(back, model)
    for key in m:
        assert got[key] == pytest.approx(m[key], abs=0.01), key


def test_glb_round_trip_measures_the_same(model, adults, tmp_path):
    from avatar.glb_export import write_body_glb

    v, m = adults["female", "lean"]
    path = tmp_path / "body.glb"
    write_body_glb(path, v, to_numpy(model.faces))
    back = read_body_mesh(path, model)
    assert np.abs(back - v).max() < 1e-6  # float32 positions
    got = measure_body(back, model)
    for key in m:
        assert got[key] == pytest.approx(m[key], abs=0.01), key


def test_mesh_files_that_are_not_anny_bodies_are_refused(model, adults, tmp_path):
    v = adults["female", "average"][0]
    faces = to_numpy(model.faces)
    cases = {}
    write_obj(tmp_path / "short.obj", v[:-10], faces[:100])
    cases["short.obj"] = "wrong_topology"
    write_obj(tmp_path / "shuffled.obj", v[np.random.default_rng(0).permutation(len(v))], faces)
    cases["shuffled.obj"] = "wrong_topology"
    write_obj(tmp_path / "centimetres.obj", v * 100, faces)
    cases["centimetres.obj"] = "bad_units"
    (tmp_path / "broken.glb").write_bytes(b"glTF not really")
    cases["broken.glb"] = "unreadable_mesh"
    (tmp_path / "empty.obj").write_text("# nothing\n")
    cases["empty.obj"] = "unreadable_mesh"
    (tmp_path / "body.ply").write_text("ply\n")
    cases["body.ply"] = "unsupported_mesh_format"
    cases["missing.obj"] = "mesh_not_found"
    for name, code in cases.items():
        with pytest.raises(FitroomError) as e:
            read_body_mesh(tmp_path / name, model)
        assert e.value.code == code, name
        assert e.value.message
    with pytest.raises(FitroomError) as e:
        read_body_mesh(tmp_path / "short.obj", model, frame="sideways")
    assert e.value.code == "bad_frame"


def test_frames_are_recognised(model, adults, tmp_path):
    v = adults["male", "lean"][0]
    faces = to_numpy(model.faces)
    assert np.array_equal(frame_rotation(v, model), np.eye(3))
    in_anny = v @ ANNY_TO_WORLD  # world -> Anny: the inverse (transpose) of ANNY_TO_WORLD
    assert np.array_equal(frame_rotation(in_anny, model), ANNY_TO_WORLD)
    write_obj(tmp_path / "anny.obj", in_anny, faces)
    for frame in ("auto", "anny"):
        assert np.abs(read_body_mesh(tmp_path / "anny.obj", model, frame=frame) - v).max() < 1e-6
    with pytest.raises(FitroomError) as e:
        read_body_mesh(tmp_path / "anny.obj", model, frame="world")
    assert e.value.code == "bad_frame" and "+Z" in e.value.message
    # Any axis-aligned frame, and a body posed with its arms down.
    from fitroom.samples import natural_standing_pose

    pose = natural_standing_pose(model, arm_abduction_deg=8.0)
    posed = to_numpy(body_vertices(model, make_shape(model, 0.0), pose)).astype(np.float64)
    turned = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # world -> file axes
    assert np.array_equal(frame_rotation(posed @ turned.T, model), turned.T)
    m = measure_body(posed, model)  # arms down: still told apart from the torso
    assert 80 < m["chest_cm"] < 125


# --- Anny itself -----------------------------------------------------------------------------

# MakeHuman 1.1's measuring tape (plugins/0_modeling_a_measurement.py, `Ruler`), hm08 indices.
HM08_RULERS = {
    "BUST_LOOP": [8439, 8455, 8462, 8446, 8478, 8494, 8557, 8510, 8526, 8542, 10720, 10601, 10603, 10602,
                  10612, 10611, 10610, 10613, 10604, 10605, 10606, 3942, 3941, 3940, 3950, 3947, 3948, 3949,
                  3938, 3939, 3937, 4065, 1870, 1854, 1838, 1885, 1822, 1806, 1774, 1790, 1783, 1767, 1799, 8471],
    "UNDERBUST_LOOP": [10750, 10744, 10724, 10725, 10748, 10722, 10640, 10642, 10641, 10651, 10650, 10649,
                       10652, 10643, 10644, 10645, 10646, 10647, 10648, 3988, 3987, 3986, 3985, 3984, 3983,
                       3982, 3992, 3989, 3990, 3991, 3980, 3981, 3979, 4067, 4098, 4073, 4072, 4094, 4100,
                       4082, 4088],
    "NECK_LOOP": [7514, 10358, 7631, 7496, 7488, 7489, 7474, 7475, 7531, 7537, 7543, 7549, 7555, 7561, 7743,
                  7722, 856, 1030, 1051, 850, 844, 838, 832, 826, 820, 756, 755, 770, 769, 777, 929, 3690, 804,
                  800, 808, 801, 799, 803, 7513, 7515, 7521],
    "UPPER_ARM_LOOP_LEFT": [8383, 8393, 8392, 8391, 8390, 8394, 8395, 8399, 10455, 10516, 8396, 8397, 8398,
                            8388, 8387, 8386, 10431, 8385, 8384, 8389],
    "ACROMION_LEFT": [8274],
}


@pytest.fixture(scope="module")
def anny_model():
    pytest.importorskip("anny", reason="the anny package (torch) is not installed here")
    from avatar.body_model_data import build_anny_model

    return build_anny_model()


def test_landmark_constants_derive_from_makehuman_and_anny(anny_model):
    from anny.anthropometry import BASE_MESH_WAIST_VERTICES

    base = anny_model.base_mesh_vertex_indices.detach().cpu().numpy()

    def to_anny(hm08):
        hm08 = np.asarray(hm08)
        i = np.searchsorted(base, hm08)
        kept = base[np.minimum(i, len(base) - 1)] == hm08
        return i[kept].tolist()

    assert tuple(to_anny(BASE_MESH_WAIST_VERTICES)) == meas.NAVEL_LOOP
    for name, hm08 in HM08_RULERS.items():
        expected = getattr(meas, name)
        assert to_anny(hm08) == (list(expected) if isinstance(expected, tuple) else [expected]), name


def test_body_from_anny_in_its_own_frame_measures_the_same(model, anny_model, tmp_path):
    rng = np.random.default_rng(5)
    for gender in (0.0, 1.0):
        shape = make_shape(model, gender, weight=rng.uniform(0.2, 0.8), muscle=rng.uniform(0.2, 0.8))
        n_ph = len(model.phenotype_labels)
        local = rng.uniform(-0.5, 0.5, len(model.local_change_labels))
        shape[n_ph:] = local
        out = anny_model(
            phenotype_kwargs={k: float(x) for k, x in zip(anny_model.phenotype_labels, shape[:n_ph])},
            local_changes_kwargs={k: float(x) for k, x in zip(model.local_change_labels, local)},
        )
        anny_vertices = out["vertices"][0].detach().cpu().numpy().astype(np.float64)  # Z up, facing -Y
        path = tmp_path / f"anny_{gender:.0f}.obj"
        write_obj(path, anny_vertices, anny_model.get_triangular_faces().cpu().numpy())
        assert read_mesh_vertices(path).shape == (model.n_vertices, 3)
        from_anny = measure_body(read_body_mesh(path, model), model)
        expected = measure_body(vertices(model, shape), model)
        for key in expected:
            assert from_anny[key] == pytest.approx(expected[key], abs=0.1), key  # 1 mm
