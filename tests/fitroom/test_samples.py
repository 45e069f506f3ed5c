"""Synthetic shoppers: stature solved, a relaxed standing pose, photos MediaPipe reads."""

from __future__ import annotations

import numpy as np
import pytest

from engine.backend import to_numpy
from fitroom.samples import (
    demo_photo,
    natural_standing_pose,
    placed_body,
    render_photos,
    sample_body,
    solve_height,
    stature_cm,
)

# MediaPipe Pose landmark ids of the joints compared with the body model's keypoints.
MP_JOINTS = {
    "nose": 0, "left_shoulder": 11, "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14,
    "left_wrist": 15, "right_wrist": 16, "left_hip": 23, "right_hip": 24, "left_knee": 25,
    "right_knee": 26, "left_ankle": 27, "right_ankle": 28,
}


@pytest.fixture(scope="module")
def model(body_model_cpu):
    return body_model_cpu


@pytest.fixture(scope="module")
def pose_detector():
    mp = pytest.importorskip("mediapipe")
    # model_complexity=2 (heavy) is downloaded at run time, which fails offline; 1 ships in the wheel.
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True) as pose:
        yield pose


@pytest.mark.parametrize("sex", ["female", "male"])
@pytest.mark.parametrize("height_cm", [150.0, 195.0])
def test_stature_is_solved(model, sex, height_cm):
    shape = sample_body(model, np.random.default_rng(int(height_cm)), sex=sex, height_cm=height_cm)
    assert abs(stature_cm(model, shape) - height_cm) < 0.5
    ph = model.phenotype_labels
    assert shape[ph.index("gender")] == (1.0 if sex == "female" else 0.0)
    assert 0.6 <= shape[ph.index("age")] <= 0.9 and 0.0 <= shape[ph.index("height")] <= 1.0
    assert np.all(shape[len(ph):] == 0.0)  # phenotypes reached it, no local changes needed


def test_heights_beyond_the_phenotype_use_leg_lengths(model):
    shape = sample_body(model, np.random.default_rng(0), sex="male", height_cm=170.0)
    tall = solve_height(model, shape, 250.0)
    assert abs(stature_cm(model, tall) - 250.0) < 0.5
    legs = [len(model.phenotype_labels) + model.local_change_labels.index(k)
            for k in ("measure-upperleg-height-incr", "measure-lowerleg-height-incr")]
    assert tall[model.phenotype_labels.index("height")] == 1.0 and tall[legs[0]] > 0
    with pytest.raises(ValueError):
        solve_height(model, shape, 60.0)


def test_samples_are_reproducible_and_varied(model):
    a = sample_body(model, np.random.default_rng(5), "female", 165.0)
    b = sample_body(model, np.random.default_rng(5), "female", 165.0)
    c = sample_body(model, np.random.default_rng(6), "female", 165.0)
    assert np.array_equal(a, b) and not np.allclose(a, c)
    pa = natural_standing_pose(model, rng=np.random.default_rng(5))
    assert np.array_equal(pa, natural_standing_pose(model, rng=np.random.default_rng(5)))
    assert not np.allclose(pa, natural_standing_pose(model, rng=np.random.default_rng(6)))


def _bone_mask(model, vertices_of: tuple[str, ...]) -> np.ndarray:
    w, idx = to_numpy(model.bone_weights), to_numpy(model.bone_indices)
    sel = np.array([any(k in b for k in vertices_of) for b in model.bone_labels])
    return (w * sel[idx]).sum(1) > 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_standing_pose_arms_down_with_a_gap_feet_flat(model, seed):
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    shape = sample_body(model, rng, sex=("female", "male")[seed % 2], height_cm=170.0)
    shape[model.phenotype_labels.index("weight")] = 0.9  # the heaviest sampled: the hardest gap
    pose = natural_standing_pose(model, rng=rng)
    v = placed_body(model, shape, pose, "front")
    kp = to_numpy(model.keypoint_regressor) @ v
    k = model.keypoint_labels.index
    for side, sign in (("left", 1.0), ("right", -1.0)):
        arm = kp[k(f"{side}_wrist")] - kp[k(f"{side}_shoulder")]
        angle = np.degrees(np.arctan2(sign * arm[0], -arm[1]))
        assert 5.0 < angle < 30.0  # out from vertical, away from the body
        elbow = kp[k(f"{side}_elbow")]
        assert kp[k(f"{side}_wrist")][1] < elbow[1] < kp[k(f"{side}_shoulder")][1]
    # A gap between arms and trunk: no forearm or hand vertex within 1 cm of the torso or thighs.
    arm = _bone_mask(model, ("lowerarm", "wrist", "finger", "metacarpal"))
    trunk = _bone_mask(model, ("spine", "pelvis", "root", "upperleg"))
    gap = cKDTree(v[trunk]).query(v[arm])[0].min()
    assert gap > 0.01
    # Both soles on the floor.
    for side in ("L", "R"):
        foot = _bone_mask(model, (f"foot.{side}", f"toe1-1.{side}"))
        assert v[foot, 1].min() < 0.01


@pytest.fixture(scope="module")
def photos(model):
    rng = np.random.default_rng(11)
    shape = sample_body(model, rng, sex="male", height_cm=183.0)
    pose = natural_standing_pose(model, rng=rng)
    return shape, pose, render_photos(model, shape, pose, views=("front", "side"), rng=rng)


def test_photos_are_full_length_portraits(model, photos):
    shape, pose, shots = photos
    assert set(shots) == {"front", "side"}
    cam_front, cam_side = shots["front"][1], shots["side"][1]
    assert np.array_equal(cam_front.pose, cam_side.pose)
    eye = cam_front.position
    assert 1.3 < eye[2] < 3.5 and 0.6 * 1.83 < eye[1] < 0.85 * 1.83  # chest height, a few steps away
    assert 60.0 < cam_front.vertical_fov_deg < 75.0
    for view, (rgb, cam) in shots.items():
        assert rgb.shape == (1920, 1080, 3) and rgb.dtype == np.uint8 and rgb.flags["C_CONTIGUOUS"]
        uv = cam.project(placed_body(model, shape, pose, view))
        span = (uv[:, 1].max() - uv[:, 1].min()) / 1920
        assert 0.7 <= span <= 0.85 if view == "front" else 0.65 <= span <= 0.85
        assert uv[:, 0].min() > 0 and uv[:, 0].max() < 1080 and uv[:, 1].min() > 0 and uv[:, 1].max() < 1920
        # The projected body lies on the rendered body: its pixels differ from the plain wall.
        wall = rgb[5, 5].astype(int)
        inner = np.round(uv[::7]).astype(int)
        inner = inner[inner[:, 1] < uv[:, 1].max() - 30]  # feet touch the (also non-wall) floor
        px = rgb[inner[:, 1], inner[:, 0]].astype(int)
        assert (np.abs(px - wall).sum(1) > 20).mean() > 0.97


def test_mediapipe_finds_the_person_where_the_body_is(model, photos, pose_detector):
    shape, pose, shots = photos
    reg = to_numpy(model.keypoint_regressor)
    for view, (rgb, cam) in shots.items():
        result = pose_detector.process(rgb)
        assert result.pose_landmarks is not None, view
        lm = np.array([[p.x * rgb.shape[1], p.y * rgb.shape[0]] for p in result.pose_landmarks.landmark])
        truth = cam.project(reg @ placed_body(model, shape, pose, view))
        names = [n for n in MP_JOINTS if view == "front" or not n.startswith("left")]  # the near side in profile
        err = np.array([np.linalg.norm(lm[MP_JOINTS[n]] - truth[model.keypoint_labels.index(n)]) for n in names])
        # MediaPipe's joint centres are not the body model's: tens of pixels of a 1500-px body.
        assert np.median(err) < 25 and err.max() < 60, (view, dict(zip(names, err.round(1))))
        mask = result.segmentation_mask > 0.5
        assert 0.08 < mask.mean() < 0.3


def test_demo_photo(model, pose_detector):
    photo = demo_photo(model)
    assert photo.rgb.shape == (1920, 1080, 3) and photo.sex == "female"
    assert abs(stature_cm(model, photo.shape) - photo.height_cm) < 0.5
    assert pose_detector.process(photo.rgb).pose_landmarks is not None
