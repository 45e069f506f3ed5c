"""Reading photos: formats, EXIF orientation and focal length, refusals, limits checked before decoding."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from avatar.photo_io import FULL_FRAME_DIAGONAL_MM, MAX_FILE_BYTES, Photo, decode_photo, read_photo
from fitroom.errors import FitroomError

EXIF_IFD = 0x8769


def _quadrants(w: int = 200, h: int = 100) -> Image.Image:
    """An image whose four quadrants are red, green, blue and white (clockwise from top-left)."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = (255, 0, 0)
    a[: h // 2, w // 2 :] = (0, 255, 0)
    a[h // 2 :, w // 2 :] = (0, 0, 255)
    a[h // 2 :, : w // 2] = (255, 255, 255)
    return Image.fromarray(a)


def _jpeg(im: Image.Image, exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=95, **({"exif": exif} if exif is not None else {}))
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` RGB pixels but whose data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG with its frame header (SOF0) rewritten to claim `width` x `height`."""
    data = bytearray(_jpeg(_quadrants(64, 64)))
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _code(fn, *args) -> str:
    with pytest.raises(FitroomError) as err:
        fn(*args)
    assert "\n" not in err.value.message
    return err.value.code


def test_a_jpeg_decodes_to_contiguous_uint8_rgb():
    photo = decode_photo(_jpeg(_quadrants()))
    assert isinstance(photo, Photo)
    assert photo.rgb.shape == (100, 200, 3) and photo.rgb.dtype == np.uint8
    assert photo.rgb.flags["C_CONTIGUOUS"]
    assert np.allclose(photo.rgb[25, 50], (255, 0, 0), atol=8) and np.allclose(photo.rgb[75, 150], (0, 0, 255), atol=8)
    assert photo.focal_px is None  # no EXIF


def test_paths_strings_and_bytes_read_the_same(tmp_path):
    data = _jpeg(_quadrants())
    (tmp_path / "p.jpg").write_bytes(data)
    a = read_photo(tmp_path / "p.jpg").rgb
    assert np.array_equal(a, read_photo(str(tmp_path / "p.jpg")).rgb)
    assert np.array_equal(a, read_photo(data).rgb)
    assert np.array_equal(a, read_photo(bytearray(data)).rgb)


@pytest.mark.parametrize(
    "orientation, top_left, shape",
    [
        (1, (255, 0, 0), (100, 200)),  # as stored
        (3, (0, 0, 255), (100, 200)),  # turned 180 degrees
        (6, (255, 255, 255), (200, 100)),  # displayed turned 90 degrees clockwise
        (8, (0, 255, 0), (200, 100)),  # displayed turned 90 degrees counter-clockwise
    ],
)
def test_exif_orientation_is_applied(orientation, top_left, shape):
    exif = Image.Exif()
    exif[0x0112] = orientation
    rgb = decode_photo(_jpeg(_quadrants(), exif)).rgb
    assert rgb.shape[:2] == shape
    assert np.allclose(rgb[5, 5], top_left, atol=10)


def test_focal_length_from_the_35mm_equivalent():
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(EXIF_IFD)[0xA405] = 26
    photo = decode_photo(_jpeg(_quadrants(400, 300), exif))
    assert photo.rgb.shape[:2] == (400, 300)
    assert photo.focal_px == pytest.approx(26 / FULL_FRAME_DIAGONAL_MM * 500.0, rel=1e-9)


def test_focal_length_equals_f35_over_36_times_the_long_side_for_a_3_2_frame():
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[0xA405] = 50
    photo = decode_photo(_jpeg(_quadrants(300, 200), exif))
    assert photo.focal_px == pytest.approx(50 / 36 * 300, rel=2e-3)


def test_focal_length_from_the_lens_and_the_sensor_resolution():
    # A 4.25 mm lens on a sensor of 1000 px per cm, the photo saved at half the original width.
    exif = Image.Exif()
    ifd = exif.get_ifd(EXIF_IFD)
    ifd[0x920A] = 4.25
    ifd[0xA20E] = 1000.0
    ifd[0xA210] = 3  # centimetres
    ifd[0xA002], ifd[0xA003] = 800, 600
    photo = decode_photo(_jpeg(_quadrants(400, 300), exif))
    assert photo.focal_px == pytest.approx(4.25 * 100.0 * 0.5, rel=1e-9)


def test_no_focal_length_for_a_cropped_photo():
    exif = Image.Exif()
    ifd = exif.get_ifd(EXIF_IFD)
    ifd[0xA405] = 26
    ifd[0xA002], ifd[0xA003] = 4032, 3024  # 4:3, but the photo is 2:1
    assert decode_photo(_jpeg(_quadrants(200, 100), exif)).focal_px is None


def test_transparency_is_flattened_onto_white():
    im = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    im.paste((200, 30, 30, 255), (0, 0, 40, 80))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    rgb = decode_photo(buf.getvalue()).rgb
    assert tuple(rgb[10, 60]) == (255, 255, 255) and tuple(rgb[10, 10]) == (200, 30, 30)


def test_16_bit_greyscale_is_scaled_not_clipped():
    a = np.linspace(0, 65535, 100 * 100).reshape(100, 100).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    rgb = decode_photo(buf.getvalue()).rgb
    assert rgb.shape == (100, 100, 3) and rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255 and 100 < rgb[50, 0, 0] < 155


def test_webp_is_read():
    buf = io.BytesIO()
    _quadrants().save(buf, format="WEBP", quality=90)
    assert decode_photo(buf.getvalue()).rgb.shape == (100, 200, 3)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, I am a text file\n" * 10,
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
        b"\xff\xd8\xff\xe0 a truncated jpeg",
    ],
    ids=["empty", "text", "pdf", "truncated-jpeg"],
)
def test_what_is_not_an_image_is_refused(data):
    assert _code(decode_photo, data) == "not_an_image"


def test_a_jpeg_cut_short_is_refused():
    data = _jpeg(_quadrants(400, 300))
    assert _code(decode_photo, data[: len(data) // 2]) == "not_an_image"


def test_a_text_file_a_folder_and_a_missing_file_are_refused(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a photo")
    assert _code(read_photo, tmp_path / "notes.jpg") == "not_an_image"
    assert _code(read_photo, tmp_path) == "not_an_image"
    assert _code(read_photo, tmp_path / "missing.jpg") == "not_an_image"


def test_a_tiny_image_is_refused():
    assert _code(decode_photo, _jpeg(_quadrants(40, 30))) == "not_an_image"


def test_over_40_megapixels_is_refused_from_the_header_without_decoding():
    data = _png_header(10000, 5000)  # 50 MP claimed in 60 bytes
    tracemalloc.start()
    try:
        with pytest.raises(FitroomError) as err:
            decode_photo(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.code == "image_too_large"
    assert "50 megapixels" in err.value.message
    assert peak < 5 * 2**20  # decoding would take 150 MB


@pytest.mark.parametrize(
    "width, height",
    [(8000, 6000), (12000, 10000), (30000, 30000)],
    ids=["48MP", "120MP-pil-warns", "900MP-pil-refuses"],
)
def test_huge_jpeg_headers_are_refused(width, height):
    assert _code(decode_photo, _jpeg_claiming(width, height)) == "image_too_large"


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "huge.jpg"
    with open(path, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written
    assert _code(read_photo, path) == "image_too_large"


def test_reading_writes_no_file_and_logs_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    caplog.set_level("DEBUG")
    decode_photo(_jpeg(_quadrants()))
    with pytest.raises(FitroomError):
        decode_photo(b"junk")
    assert list(tmp_path.iterdir()) == []
    assert caplog.records == []
