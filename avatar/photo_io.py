"""Reading a shopper's photo into memory: never to disk, never to a log.

The pixel count is read from the header before anything is decoded, so a 40+ megapixel image (or a
decompression bomb claiming to be one) is refused without allocating it. EXIF orientation is
applied, and the EXIF 35 mm-equivalent focal length, when present, gives the focal length in pixels.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fitroom.errors import FitroomError

MAX_MEGAPIXELS = 40.0
MAX_FILE_BYTES = 60 * 1024 * 1024
# The diagonal of the 35 mm frame: an equivalent focal length is defined against it.
FULL_FRAME_DIAGONAL_MM = 43.27


@dataclasses.dataclass(frozen=True)
class Photo:
    """rgb : (H, W, 3) uint8, C-contiguous; focal_px : focal length in pixels from EXIF, or None."""

    rgb: np.ndarray
    focal_px: float | None


def read_photo(source: Path | bytes) -> Photo:
    """Decodes a JPEG/PNG/WebP/... photo from a path or bytes. Raises FitroomError on bad input."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise FitroomError("image_too_large", f"The photo file is {size / 2**20:.0f} MB; at most {MAX_FILE_BYTES // 2**20} MB.")
            data = path.read_bytes()
        except FitroomError:
            raise
        except OSError as e:
            raise FitroomError("not_an_image", f"Cannot read {path.name}: {e.strerror or e}.") from e
    else:
        data = bytes(source)
    return decode_photo(data)


def decode_photo(data: bytes) -> Photo:
    """See `read_photo`."""
    if not data:
        raise FitroomError("not_an_image", "The photo is empty.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))  # reads the header only
            w, h = im.size
            if w * h > MAX_MEGAPIXELS * 1e6:
                raise FitroomError(
                    "image_too_large",
                    f"The photo has {w * h / 1e6:.0f} megapixels ({w}x{h}); at most {MAX_MEGAPIXELS:.0f} are accepted.",
                )
            focal_px = _focal_px(im, w, h)
            im = ImageOps.exif_transpose(im)
            rgb = np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
        except FitroomError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
            raise FitroomError("image_too_large", f"The photo is too large to decode safely ({e}).") from e
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise FitroomError("not_an_image", "The file is not an image that can be read (JPEG, PNG or WebP).") from e
    if rgb.ndim != 3 or rgb.shape[0] < 64 or rgb.shape[1] < 64:
        raise FitroomError("not_an_image", f"The image is too small ({rgb.shape[1]}x{rgb.shape[0]} px).")
    return Photo(rgb=rgb, focal_px=focal_px)


def _focal_px(im: Image.Image, w: int, h: int) -> float | None:
    """Focal length in pixels from EXIF FocalLengthIn35mmFilm (tag 0xA405), else None."""
    try:
        exif = im.getexif().get_ifd(0x8769)  # the Exif sub-IFD
        f35 = float(exif.get(0xA405) or 0)
    except Exception:  # EXIF in the wild is often malformed: it only ever helps
        return None
    if not 8.0 <= f35 <= 300.0:
        return None
    return f35 / FULL_FRAME_DIAGONAL_MM * float(np.hypot(w, h))
