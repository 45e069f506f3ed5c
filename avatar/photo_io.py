"""Reading a shopper's photo into memory: never to disk, never to a log.

The pixel count is read from the header before anything is decoded (PIL opens lazily), so an
image over `MAX_MEGAPIXELS`, or a decompression bomb claiming to be one, is refused without
allocating it. EXIF orientation is applied; transparent images are flattened onto white.

Focal length in pixels from EXIF, the first that applies:

1. ``FocalLengthIn35mmFilm`` (0xA405): ``f_px = f35 / 43.27 * hypot(W, H)``. A 35 mm-equivalent
   focal length is defined against the 36x24 mm frame's diagonal (43.27 mm), the way camera makers
   and ExifTool compute it, and the convention of `avatar.fit.default_focal_px`. For a 3:2 image
   this equals ``f35 / 36 * longer side``; for a 4:3 phone photo it is 4 % longer.
2. ``FocalLength`` (0x920A, mm) times ``FocalPlaneXResolution`` (0xA20E, pixels per unit of
   ``FocalPlaneResolutionUnit``, 0xA210), rescaled from ``PixelXDimension`` (0xA002) to the
   decoded width.

None when EXIF has no focal length (screenshots, most edited images; the fit then assumes a
phone's lens), and when ``PixelXDimension``/``PixelYDimension`` give the original frame another
aspect ratio: the photo was cropped, so the frame the focal length refers to is unknown.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fitroom.errors import FitroomError

MAX_MEGAPIXELS = 40.0
MAX_FILE_BYTES = 60 * 1024 * 1024  # a 40 MP JPEG is 10-25 MB; a PNG of one can be larger
MIN_SIDE_PX = 64  # MediaPipe cannot make out a body in less
# The diagonal of the 36x24 mm frame: a 35 mm-equivalent focal length is defined against it.
FULL_FRAME_DIAGONAL_MM = 43.27
# Focal-plane resolution units (EXIF 0xA210) in millimetres; 4 and 5 are common non-standard ones.
_PLANE_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 1e-3}

_EXIF_IFD = 0x8769
_FOCAL_35MM, _FOCAL_MM = 0xA405, 0x920A
_PLANE_X_RES, _PLANE_UNIT = 0xA20E, 0xA210
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003

# `warnings.catch_warnings` swaps process-wide state, and concurrent uses can leave a filter
# behind; reading a header takes microseconds, so the reads are simply serialised.
_header_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Photo:
    """A decoded photo.

    rgb : (H, W, 3) uint8, C-contiguous, upright (EXIF orientation applied).
    focal_px : focal length in pixels from EXIF, or None.
    """

    rgb: np.ndarray
    focal_px: float | None


def read_photo(source: str | Path | bytes | bytearray | memoryview) -> Photo:
    """Decodes a photo (JPEG, PNG, WebP, ...) from a file path or from its bytes.

    Raises
    ------
    FitroomError
        ``not_an_image`` (unreadable, not an image, under 64 px a side) or ``image_too_large``
        (over 40 megapixels, or a file over 60 MB).
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise FitroomError(
                    "image_too_large",
                    f"The photo file is {size / 2**20:.0f} MB; at most {MAX_FILE_BYTES // 2**20} MB are accepted.",
                )
            data = path.read_bytes()
        except OSError as e:
            raise FitroomError(
                "not_an_image", f"The photo file {path.name} cannot be read ({e.strerror or type(e).__name__})."
            ) from e
        return decode_photo(data)
    return decode_photo(bytes(source))


def decode_photo(data: bytes) -> Photo:
    """Decodes a photo from its bytes; see `read_photo`."""
    if not data:
        raise FitroomError("not_an_image", "The photo is empty.")
    if len(data) > MAX_FILE_BYTES:
        raise FitroomError(
            "image_too_large",
            f"The photo file is {len(data) / 2**20:.0f} MB; at most {MAX_FILE_BYTES // 2**20} MB are accepted.",
        )
    try:
        with _header_lock, warnings.catch_warnings():
            # PIL warns from 89 MP and raises from 179 MP while opening: both over our limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))  # parses the header only
        w, h = im.size
        if w * h > MAX_MEGAPIXELS * 1e6:
            raise FitroomError(
                "image_too_large",
                f"The photo has {w * h / 1e6:.0f} megapixels ({w}x{h}); at most {MAX_MEGAPIXELS:.0f} are accepted.",
            )
        focal_px = _focal_px(im)
        rgb = np.ascontiguousarray(np.asarray(_to_rgb(_upright(im)), dtype=np.uint8))
    except FitroomError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise FitroomError("image_too_large", "The photo claims more pixels than can be decoded safely.") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise FitroomError("not_an_image", "The file is not an image that can be read (JPEG, PNG or WebP).") from e
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < MIN_SIDE_PX:
        raise FitroomError(
            "not_an_image",
            f"The image is too small ({rgb.shape[1]}x{rgb.shape[0]} px); a photo must be at least {MIN_SIDE_PX} px a side.",
        )
    return Photo(rgb=rgb, focal_px=focal_px)


def _upright(im: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; as stored when that tag is unreadable."""
    try:
        return ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, EOFError):
        raise  # the pixels themselves are broken
    except Exception:  # a malformed EXIF block: the pixels are still good
        return im


def _to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB; transparency flattened onto white (a light backdrop is what capture wants)."""
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        flat = Image.new("RGBA", im.size, (255, 255, 255, 255))
        flat.alpha_composite(im)
        return flat.convert("RGB")
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: PIL's RGB conversion clips instead of scaling.
        a = np.asarray(im, np.float64)
        return Image.fromarray(np.clip(a / max(a.max(), 1.0) * 255.0, 0, 255).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")


def _focal_px(im: Image.Image) -> float | None:
    """Focal length in pixels of `im` (as stored: a 90-degree turn keeps it), or None."""
    w, h = im.size
    try:
        exif = im.getexif().get_ifd(_EXIF_IFD)
        orig_w, orig_h = float(exif.get(_PIXEL_X) or 0), float(exif.get(_PIXEL_Y) or 0)
        if orig_w > 0 and orig_h > 0:
            aspect = w / h
            if abs(orig_h / orig_w - aspect) < abs(orig_w / orig_h - aspect):
                orig_w, orig_h = orig_h, orig_w  # recorded for the frame turned upright
            if abs(orig_w / orig_h - aspect) > 0.02 * aspect:
                return None  # cropped: the focal length's frame is unknown
        f35 = float(exif.get(_FOCAL_35MM) or 0)
        if 8.0 <= f35 <= 1200.0:
            return f35 / FULL_FRAME_DIAGONAL_MM * float(np.hypot(w, h))
        f_mm = float(exif.get(_FOCAL_MM) or 0)
        res = float(exif.get(_PLANE_X_RES) or 0)
        unit_mm = _PLANE_UNIT_MM.get(int(exif.get(_PLANE_UNIT) or 2))
        if f_mm > 0 and res > 0 and unit_mm:
            f_px = f_mm * res / unit_mm * (w / orig_w if orig_w > 0 else 1.0)
            # Any real lens: 10 to 120 degrees across the longer side.
            if 0.29 * max(w, h) < f_px < 5.7 * max(w, h):
                return f_px
    except Exception:  # EXIF in the wild is often malformed; a focal length only ever helps
        return None
    return None
