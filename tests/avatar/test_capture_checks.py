"""Capture checks: the pure decision functions on made-up landmarks, then the whole capture (real
MediaPipe) on the 12 COCO photos in ../shared/data/photos and on renders of Anny bodies."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from avatar import capture_checks as checks
from avatar.capture import Capture, capture_photo, end_squares, group_detections
from fitroom.errors import FitroomError

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"

# What each real photo shows, looked at one by one, and so the reason it must be refused. Where a
# picture fits two reasons the order of the checks decides (no person, several people, cut off,
# too small, orientation); the other reason is noted.
EXPECTED = {
    # Three cadets side by side on a bench.
    "COCO_val2014_000000000328.jpg": "several_people",
    # A man in a cap and a woman in a kitchen, both small in a wide panorama (also too small).
    "COCO_val2014_000000000338.jpg": "several_people",
    # A baseball field from the stands: a dozen players, each a tenth of the frame (also too small).
    "COCO_val2014_000000000357.jpg": "several_people",
    # A snowboarder high in the air against the sky, a third of the frame tall.
    "COCO_val2014_000000000360.jpg": "person_too_small",
    # A man on the phone, cut off at the chest, in front of a crowd in Times Square (also cut off).
    "COCO_val2014_000000000395.jpg": "several_people",
    # A tennis player serving, bent over: the left edge cuts through his back and hip and hides
    # his other leg (also under half the frame, and side-on).
    "COCO_val2014_000000000415.jpg": "body_cut_off",
    # A boy crouching to catch a ball, in profile, whole body in the frame.
    "COCO_val2014_000000000474.jpg": "not_facing_camera",
    # Batter, catcher and umpire at home plate, more players behind (also too small).
    "COCO_val2014_000000000488.jpg": "several_people",
    # Batter, catcher and umpire in front of a full stand (also too small).
    "COCO_val2014_000000000544.jpg": "several_people",
    # A tennis player running toward the camera, whole, 41 % of the frame; a spectator sits at
    # the top right edge, a quarter of his size and cut off by the frame (a bystander).
    "COCO_val2014_000000000564.jpg": "person_too_small",
    # A woman flying kites on a square seen from a high window, back to the camera (also not facing).
    "COCO_val2014_000000000569.jpg": "person_too_small",
    # A woman kneeling to hug a giant teddy bear: the bottom edge cuts her legs and feet.
    "COCO_val2014_000000000623.jpg": "body_cut_off",
}


# ---------------------------------------------------------------------------------------------
# Made-up landmarks for the pure functions: a person standing facing the camera, as fractions of
# the stature from the top of the head (y) and from the body's midline (x, + toward the person's
# left, which is the image's right). MediaPipe Pose's 33 landmarks.
_TEMPLATE = {
    0: (0.0, 0.07), 1: (0.012, 0.058), 2: (0.02, 0.058), 3: (0.028, 0.058), 4: (-0.012, 0.058),
    5: (-0.02, 0.058), 6: (-0.028, 0.058), 7: (0.04, 0.065), 8: (-0.04, 0.065), 9: (0.012, 0.09),
    10: (-0.012, 0.09), 11: (0.11, 0.18), 12: (-0.11, 0.18), 13: (0.14, 0.36), 14: (-0.14, 0.36),
    15: (0.16, 0.5), 16: (-0.16, 0.5), 17: (0.165, 0.55), 18: (-0.165, 0.55), 19: (0.16, 0.56),
    20: (-0.16, 0.56), 21: (0.15, 0.54), 22: (-0.15, 0.54), 23: (0.06, 0.48), 24: (-0.06, 0.48),
    25: (0.06, 0.72), 26: (-0.06, 0.72), 27: (0.06, 0.955), 28: (-0.06, 0.955), 29: (0.06, 0.98),
    30: (-0.06, 0.98), 31: (0.065, 0.995), 32: (-0.065, 0.995),
}  # fmt: skip


def _person(height=800.0, top=100.0, cx=540.0, vis=0.99):
    """(landmarks_px (33, 2), visibility (33,)) of a person `height` px tall, head top at `top`."""
    t = np.array([_TEMPLATE[i] for i in range(33)])
    px = np.stack([cx + t[:, 0] * height, top + t[:, 1] * height], 1)
    return px, np.full(33, vis)


def _world(yaw_deg=0.0):
    """World landmarks (33, 3) metres of the template for a 1.7 m body turned `yaw_deg` from the camera."""
    t = np.array([_TEMPLATE[i] for i in range(33)]) * 1.7
    p = np.stack([t[:, 0], t[:, 1] - 0.48 * 1.7, np.zeros(33)], 1)
    a = np.deg2rad(yaw_deg)
    rot = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    return p @ rot.T


def _raises(code, fn, *args):
    with pytest.raises(FitroomError) as err:
        fn(*args)
    assert err.value.code == code, err.value.message
    assert "\n" not in err.value.message
    return err.value.message


SIZE = (1080, 1920)


def test_person_height_reaches_from_the_crown_to_the_soles():
    px, vis = _person(height=1000.0)
    assert checks.person_height_px(px, vis) == pytest.approx(1000.0 * (0.995 - 0.058) / 0.94, rel=1e-9)
    vis[:11] = 0.0  # face hidden: no crown estimate
    assert checks.person_height_px(px, vis) == pytest.approx(1000.0 * (0.995 - 0.18), rel=1e-9)


def test_no_people_and_poses_too_faint_are_no_person():
    _raises("no_person", checks.check_people, [])
    px, vis = _person()
    vis[: 33 - checks.MIN_VISIBLE_LANDMARKS + 1] = 0.1
    _raises("no_person", checks.check_people, [(px, vis)])


def test_one_person_is_returned_as_the_shopper():
    assert checks.check_people([_person()]) == 0


def test_two_people_of_a_size_are_several_people():
    msg = _raises("several_people", checks.check_people, [_person(cx=300.0), _person(900.0, cx=800.0)])
    assert "several people" in msg


def test_a_small_bystander_does_not_count_and_the_tallest_is_the_shopper():
    shopper = _person(1500.0, top=200.0)
    bystander = _person(1500.0 * 0.3, top=300.0, cx=950.0)  # 0.3 of the shopper: far behind
    assert checks.check_people([bystander, shopper]) == 1
    near = _person(1500.0 * 0.4, top=300.0, cx=950.0)
    _raises("several_people", checks.check_people, [shopper, near])


def test_same_person_seen_whole_and_in_part_but_not_two_neighbours():
    whole = _person(1000.0)
    head_and_shoulders = (whole[0].copy(), whole[1].copy())
    head_and_shoulders[1][13:] = 0.0  # only the face and the shoulders seen, as in a tile
    assert checks.same_person(whole, head_and_shoulders)
    assert checks.same_person(whole, _person(1000.0, cx=560.0))
    # Side by side, shoulders nearly touching: a body's width (0.22 of the height) apart.
    assert not checks.same_person(whole, _person(1000.0, cx=540.0 + 230.0))


def test_a_whole_body_in_the_frame_passes():
    px, vis = _person(1500.0, top=200.0)
    checks.check_whole_body(px, vis, None, SIZE)
    mask = np.zeros(SIZE[::-1], np.float32)
    mask[200:1700, 400:700] = 1.0
    checks.check_whole_body(px, vis, mask, SIZE)


def test_feet_below_the_frame_are_cut_off():
    px, vis = _person(1500.0, top=600.0)  # the soles would be at y = 2092
    assert "the feet" in _raises("body_cut_off", checks.check_whole_body, px, vis, None, SIZE)


def test_hidden_feet_are_cut_off():
    px, vis = _person(1500.0, top=200.0)
    vis[list(checks.FEET)] = 0.2
    assert "the feet" in _raises("body_cut_off", checks.check_whole_body, px, vis, None, SIZE)


def test_a_head_above_the_frame_is_cut_off():
    px, vis = _person(1500.0, top=-150.0)
    assert "the head" in _raises("body_cut_off", checks.check_whole_body, px, vis, None, SIZE)


def test_a_shoulder_outside_the_frame_is_cut_off():
    px, vis = _person(1500.0, top=200.0, cx=120.0)
    assert "side" in _raises("body_cut_off", checks.check_whole_body, px, vis, None, SIZE)


def test_a_mask_on_the_bottom_edge_means_the_toes_are_cut():
    px, vis = _person(1500.0, top=200.0)
    mask = np.zeros(SIZE[::-1], np.float32)
    mask[200:, 450:650] = 1.0  # the body runs off the bottom though the landmarks are inside
    assert "the feet" in _raises("body_cut_off", checks.check_whole_body, px, vis, mask, SIZE)


def test_a_mask_along_a_side_cuts_the_body_but_a_hand_touching_it_does_not():
    px, vis = _person(1500.0, top=200.0, cx=330.0)
    mask = np.zeros(SIZE[::-1], np.float32)
    mask[200:1700, 200:460] = 1.0
    mask[900:960, 0:200] = 1.0  # a hand on the edge: 60 px, 4 % of the height
    checks.check_whole_body(px, vis, mask, SIZE)
    mask[600:1100, 0:200] = 1.0  # a hip and an arm along the edge: 500 px
    assert "side" in _raises("body_cut_off", checks.check_whole_body, px, vis, mask, SIZE)


def test_a_person_under_half_the_frame_is_too_small():
    msg = _raises("person_too_small", checks.check_size, *_person(0.45 * 1920 * 0.94 / 0.937), SIZE)
    assert "45%" in msg
    checks.check_size(*_person(0.6 * 1920), SIZE)


@pytest.mark.parametrize("yaw", [0.0, 10.0, 25.0, 70.0, 90.0, -90.0])
def test_body_yaw_is_read_from_the_world_landmarks(yaw):
    assert checks.body_yaw_deg(_world(yaw)) == pytest.approx(min(abs(yaw), 180 - abs(yaw)), abs=1e-6)


def test_front_view_orientation():
    px, _ = _person(1500.0, top=200.0)
    checks.check_orientation(px, _world(15.0), "front")
    assert "turned" in _raises("not_facing_camera", checks.check_orientation, px, _world(50.0), "front")
    back = px.copy()
    back[:, 0] = 2 * 540.0 - back[:, 0]  # seen from behind, the left shoulder is on the image's left
    assert "back" in _raises("not_facing_camera", checks.check_orientation, back, _world(0.0), "front")


def test_side_view_orientation():
    px, _ = _person(1500.0, top=200.0)
    profile = px.copy()
    profile[:, 0] = 540.0 + (profile[:, 0] - 540.0) * 0.1  # the shoulders overlap in the image
    checks.check_orientation(profile, _world(85.0), "side")
    _raises("not_in_profile", checks.check_orientation, px, _world(5.0), "side")
    with pytest.raises(ValueError):
        checks.check_orientation(px, _world(0.0), "top")


def test_detections_group_by_their_shoulders():
    def det(x, y, diam=800.0):  # mid-hip, radius point, mid-shoulder, upper-body point
        return np.array([[x, y + 300], [x, y + 300 - diam / 2], [x, y], [x, y - 200]], float)

    kps = np.stack([det(500, 600), det(520, 610), det(300, 650), det(900, 600)])
    groups = group_detections(np.array([0.9, 0.95, 0.6, 0.7]), kps)
    assert [round(s, 2) for s, _ in groups] == [0.95, 0.7, 0.6]
    assert np.allclose(groups[0][1], kps[1])


def test_end_squares_cover_the_ends_of_the_longer_side():
    assert end_squares(1080, 1920) == [(0, 0, 1080), (0, 840, 1080)]
    assert end_squares(640, 427) == [(0, 0, 427), (213, 0, 427)]
    assert end_squares(500, 480) == []


# ---------------------------------------------------------------------------------------------
# The 12 real photos: each refused with the reason that fits it.


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"the real photos are not at {PHOTOS} (shared/ beside the checkout)")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_photos_are_refused_with_the_reason_that_fits(name):
    from avatar.photo_io import read_photo

    photo = read_photo(PHOTOS / name)
    with pytest.raises(FitroomError) as err:
        capture_photo(photo.rgb, view="front", focal_px=photo.focal_px)
    assert err.value.code == EXPECTED[name], err.value.message
    assert "\n" not in err.value.message


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"the real photos are not at {PHOTOS} (shared/ beside the checkout)")
def test_every_real_photo_has_an_expected_reason():
    assert sorted(p.name for p in PHOTOS.glob("*.jpg")) == sorted(EXPECTED)


# ---------------------------------------------------------------------------------------------
# Renders: a single full-length shopper passes; the ways a photo goes wrong are refused.

SCENE = ((0, 0.0, 0.0),)  # body 0 (the woman) alone at the origin
MAN = ((1, 0.0, 0.0),)


def _code(rgb, view="front"):
    with pytest.raises(FitroomError) as err:
        capture_photo(np.ascontiguousarray(rgb), view=view)
    assert "\n" not in err.value.message
    return err.value.code


def test_a_full_length_front_photo_passes(studio):
    rgb = studio.photo()
    cap = capture_photo(rgb, view="front", focal_px=1324.0)
    assert isinstance(cap, Capture)
    assert cap.image_size == (1080, 1920) and cap.view == "front" and cap.focal_px == 1324.0
    assert cap.landmarks_px.shape == (33, 2) and cap.landmarks_px.dtype == np.float64
    assert cap.visibility.shape == (33,) and cap.world_landmarks.shape == (33, 3)
    assert cap.presence is None or cap.presence.shape == (33,)
    assert cap.mask.shape == (1920, 1080) and cap.mask.dtype == np.float32
    # The mask is the body: it overlaps the rendered silhouette.
    mask, body = cap.mask > 0.5, studio.silhouette()
    assert (mask & body).sum() / (mask | body).sum() > 0.9
    # The landmarks sit on the body: the nose near the top of the silhouette, the toes (which
    # point at the camera, so reach lowest in the image) near its bottom, the person's left
    # shoulder on the image's right.
    rows = np.nonzero(body.any(1))[0]
    assert rows[0] < cap.landmarks_px[0, 1] < rows[0] + 0.1 * (rows[-1] - rows[0])
    assert abs(cap.landmarks_px[[31, 32], 1].max() - rows[-1]) < 0.02 * (rows[-1] - rows[0])
    assert cap.landmarks_px[11, 0] > cap.landmarks_px[12, 0]
    # World landmarks in metres around the hips, y down.
    assert np.linalg.norm(cap.world_landmarks[[23, 24]].mean(0)) < 0.05
    assert 0.25 < np.linalg.norm(cap.world_landmarks[11] - cap.world_landmarks[12]) < 0.5
    assert cap.world_landmarks[0, 1] < -0.4


def test_a_full_length_profile_passes_as_a_side_photo(studio):
    cap = capture_photo(studio.photo(yaw_deg=90.0), view="side")
    assert cap.view == "side" and checks.body_yaw_deg(cap.world_landmarks) > 60.0


@pytest.mark.parametrize("yaw, view", [(0.0, "front"), (90.0, "side"), (-90.0, "side")])
def test_a_second_shopper_passes(studio, yaw, view):
    capture_photo(studio.photo(yaw_deg=yaw, scene=MAN), view=view)


@pytest.mark.parametrize("yaw", [-20.0, 20.0])
def test_a_slight_turn_still_passes_as_a_front_photo(studio, yaw):
    capture_photo(studio.photo(yaw_deg=yaw), view="front")


def test_views_swapped_are_refused(studio):
    assert _code(studio.photo(yaw_deg=90.0), "front") == "not_facing_camera"
    assert _code(studio.photo(), "side") == "not_in_profile"


@pytest.mark.parametrize("yaw, view, code", [
    (45.0, "front", "not_facing_camera"),
    (180.0, "front", "not_facing_camera"),
    (45.0, "side", "not_in_profile"),
])  # fmt: skip
def test_half_turned_and_back_views_are_refused(studio, yaw, view, code):
    assert _code(studio.photo(yaw_deg=yaw), view) == code


def test_a_photo_cut_off_at_the_feet_the_head_or_a_side_is_refused(studio):
    rgb = studio.photo()
    assert _code(rgb[: int(0.8 * 1920)]) == "body_cut_off"
    assert _code(rgb[300:]) == "body_cut_off"
    assert _code(rgb[:, 420:]) == "body_cut_off"


def test_a_person_far_from_the_camera_is_too_small(studio):
    assert _code(studio.photo(fill=0.38)) == "person_too_small"


def test_a_person_shrunk_into_a_big_canvas_is_too_small(studio):
    import cv2

    rgb = studio.photo()
    small = cv2.resize(rgb, (405, 720), interpolation=cv2.INTER_AREA)
    canvas = np.empty_like(rgb)
    canvas[:] = rgb[5, 5]
    canvas[1050:1770, 340:745] = small
    assert _code(canvas) == "person_too_small"


@pytest.mark.parametrize("yaw, spacing", [(0.0, 0.4), (0.0, 0.8), (90.0, 0.5)], ids=["touching", "apart", "profiles"])
def test_two_people_side_by_side_are_refused(studio, yaw, spacing):
    scene = ((0, -spacing / 2, 0.0), (1, spacing / 2, 0.0))
    assert _code(studio.photo(yaw_deg=yaw, scene=scene, fill=0.6), "side" if yaw else "front") == "several_people"


def test_two_renders_pasted_side_by_side_are_refused(studio):
    import cv2

    half = cv2.resize(studio.photo(), (540, 960), interpolation=cv2.INTER_AREA)
    man = cv2.resize(studio.photo(scene=MAN), (540, 960), interpolation=cv2.INTER_AREA)
    assert _code(np.concatenate([half, man], axis=1)) == "several_people"


def test_someone_just_behind_the_shopper_makes_several_people(studio):
    # The man 1.5 m behind the shopper, beside her: 0.6 of her height in the photo.
    assert _code(studio.photo(scene=((0, 0.0, 0.0), (1, 0.6, -1.5)))) == "several_people"


def test_a_passer_by_far_behind_does_not_spoil_the_photo(studio):
    # The man 5 m behind: under a third of her height in the photo, a bystander.
    capture_photo(studio.photo(scene=((0, 0.0, 0.0), (1, 1.3, -5.0))), view="front")


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_no_person_in_an_empty_photo(kind):
    rgb = np.full((1920, 1080, 3), 235, np.uint8)
    if kind == "noise":
        rgb = np.random.default_rng(0).integers(0, 256, rgb.shape, dtype=np.uint8)
    assert _code(rgb) == "no_person"


def test_arrays_that_are_not_rgb_photos_are_refused():
    assert _code(np.zeros((100, 100), np.uint8)) == "not_an_image"
    assert _code(np.zeros((100, 100, 4), np.uint8)) == "not_an_image"
    assert _code(np.zeros((100, 100, 3), np.float32)) == "not_an_image"
    with pytest.raises(ValueError):
        capture_photo(np.zeros((64, 64, 3), np.uint8), view="top")


def test_captures_from_several_threads_agree(studio):
    rgb = studio.photo()
    expected = capture_photo(rgb).landmarks_px
    results, errors = [], []

    def work():
        try:
            results.append(capture_photo(rgb).landmarks_px)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    for r in results:
        assert np.array_equal(r, expected)


def test_capturing_writes_no_file_and_logs_nothing(studio, tmp_path, monkeypatch, caplog):
    rgb = studio.photo()
    monkeypatch.chdir(tmp_path)
    caplog.set_level("DEBUG")
    capture_photo(rgb)
    with pytest.raises(FitroomError):
        capture_photo(np.full((640, 480, 3), 200, np.uint8))
    assert list(tmp_path.iterdir()) == []
    assert caplog.records == []


def test_the_detector_graph_sees_the_shopper_and_nothing_in_a_blank_photo(studio):
    from avatar.capture import body_diameter, detect_people

    rgb = studio.photo()
    cap = capture_photo(rgb)
    found = detect_people(rgb)
    assert len(found) >= 1
    score, k = found[0]
    assert score > 0.9
    assert np.hypot(*(k[2] - cap.landmarks_px[[11, 12]].mean(0))) < 0.1 * body_diameter(k)
    assert detect_people(np.full((1920, 1080, 3), 235, np.uint8)) == []


def test_a_person_first_seen_in_a_crop_is_recaptured_whole(studio):
    from avatar.capture import _Pose, _recapture

    rgb = studio.photo()
    cap = capture_photo(rgb)
    pose = _recapture(rgb, _Pose(cap.landmarks_px, cap.visibility))
    assert pose.mask.shape == (1920, 1080) and pose.world.shape == (33, 3)
    assert np.median(np.hypot(*(pose.landmarks_px - cap.landmarks_px).T)) < 10.0
    assert ((pose.mask > 0.5) & (cap.mask > 0.5)).sum() / ((pose.mask > 0.5) | (cap.mask > 0.5)).sum() > 0.9
