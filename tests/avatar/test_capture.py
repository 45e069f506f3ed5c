"""Capture checks on the real photos in ../shared/data/photos and on photos made from renders."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from avatar.capture import capture_photo
from avatar.photo_io import decode_photo, read_photo
from fitroom.errors import FitroomError

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"

# What each real photo shows, and so why it must be refused (the checks' order decides ties:
# no person, several people, cut off, too small, orientation).
EXPECTED = {
    "COCO_val2014_000000000328.jpg": "several_people",  # three men on a bench
    "COCO_val2014_000000000338.jpg": "several_people",  # two people in a kitchen
    "COCO_val2014_000000000357.jpg": "several_people",  # a baseball field seen from the stands
    "COCO_val2014_000000000360.jpg": "person_too_small",  # a snowboarder high in the air, far away
    "COCO_val2014_000000000395.jpg": "several_people",  # a man on the phone in front of a crowd
    "COCO_val2014_000000000415.jpg": "person_too_small",  # a tennis player serving, under half the frame
    "COCO_val2014_000000000474.jpg": "not_facing_camera",  # a boy crouching in profile
    "COCO_val2014_000000000488.jpg": "several_people",  # batter, catcher and umpire
    "COCO_val2014_000000000544.jpg": "several_people",  # batter, catcher, umpire and a crowd
    "COCO_val2014_000000000564.jpg": "person_too_small",  # a tennis player running, far from the camera
    "COCO_val2014_000000000569.jpg": "person_too_small",  # a woman in a square seen from high above
    "COCO_val2014_000000000623.jpg": "body_cut_off",  # a woman with a teddy bear, half a body
}


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/data/photos is not beside the checkout")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_photos_are_refused_with_the_reason_that_fits(name):
    photo = read_photo(PHOTOS / name)
    with pytest.raises(FitroomError) as err:
        capture_photo(photo.rgb, view="front", focal_px=photo.focal_px)
    assert err.value.code == EXPECTED[name], err.value.message
    assert "\n" not in err.value.message


def test_every_real_photo_is_listed():
    if not PHOTOS.is_dir():
        pytest.skip("../shared/data/photos is not beside the checkout")
    assert sorted(p.name for p in PHOTOS.glob("*.jpg")) == sorted(EXPECTED)


def _png(width: int, height: int, pixels: bytes | None = None) -> bytes:
    """A PNG of the given header size; with no pixels, an IDAT that decodes to nothing useful."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(pixels if pixels is not None else b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_over_40_megapixels_is_refused_before_decoding():
    with pytest.raises(FitroomError) as err:
        decode_photo(_png(10000, 5000))
    assert err.value.code == "image_too_large"
    assert "50 megapixels" in err.value.message


@pytest.mark.parametrize("data", [b"", b"hello, I am a text file\n", b"\xff\xd8\xff\xe0 truncated jpeg"])
def test_not_an_image_is_refused(data):
    with pytest.raises(FitroomError) as err:
        decode_photo(data)
    assert err.value.code == "not_an_image"


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(FitroomError) as err:
        read_photo(tmp_path / "nope.jpg")
    assert err.value.code == "not_an_image"


def test_exif_orientation_and_focal_length_are_read():
    from PIL import Image

    im = Image.new("RGB", (200, 100), (10, 20, 30))
    im.putpixel((0, 0), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif.get_ifd(0x8769)[0xA405] = 26
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif, quality=95)
    photo = decode_photo(buf.getvalue())
    assert photo.rgb.shape == (200, 100, 3)
    assert photo.rgb.flags["C_CONTIGUOUS"] and photo.rgb.dtype == np.uint8
    assert photo.focal_px == pytest.approx(26 / 43.27 * np.hypot(200, 100), rel=1e-6)


def test_blank_photo_has_no_person():
    with pytest.raises(FitroomError) as err:
        capture_photo(np.full((960, 540, 3), 235, np.uint8))
    assert err.value.code == "no_person"


def test_wrong_view_name_is_a_programming_error():
    with pytest.raises(ValueError):
        capture_photo(np.zeros((64, 64, 3), np.uint8), view="top")


@pytest.fixture(scope="module")
def renders():
    """A synthetic shopper photographed from the front and the side (1080x1920)."""
    from avatar.body import load_body_model
    from fitroom.samples import natural_standing_pose, render_photos, sample_body

    model = load_body_model(device="cpu")
    rng = np.random.default_rng(21)
    shape = sample_body(model, rng, sex="female", height_cm=166.0)
    photos = render_photos(model, shape, natural_standing_pose(model, rng=rng), views=("front", "side"))
    return {view: rgb for view, (rgb, _) in photos.items()}


def test_full_length_front_and_side_views_pass(renders):
    front = capture_photo(renders["front"], view="front")
    side = capture_photo(renders["side"], view="side")
    for cap in (front, side):
        assert cap.landmarks_px.shape == (33, 2) and cap.world_landmarks.shape == (33, 3)
        assert cap.mask.shape == renders["front"].shape[:2] and cap.mask.dtype == np.float32
        assert 0.05 < float((cap.mask > 0.5).mean()) < 0.5
    # The left shoulder is on the image's right in a front view.
    assert front.landmarks_px[11, 0] > front.landmarks_px[12, 0]


def _code(rgb, view="front"):
    with pytest.raises(FitroomError) as err:
        capture_photo(np.ascontiguousarray(rgb), view=view)
    return err.value.code


def test_views_swapped_are_refused(renders):
    assert _code(renders["side"], "front") == "not_facing_camera"
    assert _code(renders["front"], "side") == "not_in_profile"


def test_feet_cut_off_is_refused(renders):
    rgb = renders["front"]
    assert _code(rgb[: int(rgb.shape[0] * 0.8)]) == "body_cut_off"


def test_person_far_away_is_refused(renders):
    import cv2

    small = cv2.resize(renders["front"], (405, 720), interpolation=cv2.INTER_AREA)  # 3/8 of the size
    canvas = np.full_like(renders["front"], small[5, 5])
    canvas[1000:1720, 300:705] = small
    assert _code(canvas) == "person_too_small"


def test_two_people_are_refused(renders):
    import cv2

    half = cv2.resize(renders["front"], (540, 960), interpolation=cv2.INTER_AREA)
    pair = np.concatenate([half, half], axis=1)
    assert _code(pair) == "several_people"
