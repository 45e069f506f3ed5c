"""An avatar from decoded photos: the capture checks, MediaPipe capture and the body fit, in the
order `fitroom avatar` and `POST /api/v1/avatars` both run them.

Photos come in as `avatar.photo_io.Photo` (decoded in memory by `read_photo`/`decode_photo`) and
never leave memory here: nothing is written and no pixel is logged. Writing the result is the
caller's business (`avatar.avatar_files.write_avatar`).
"""

from __future__ import annotations

import time
from typing import Callable

from avatar.avatar_files import VIEWS
from fitroom.errors import FitroomError


def make_avatar(model, photos: dict, height_cm: float, sex: str | None = None,
                progress: Callable[[float], None] | None = None):
    """Captures the shopper in each photo and fits the body model to them.

    Parameters
    ----------
    model : engine.body_model.BodyModel
    photos : {"front": Photo, "side": Photo (optional)}; the front photo is required.
    height_cm : the shopper's height (checked first: `bad_height`).
    sex : 'female', 'male' or None (fitted).
    progress : called with a fraction in [0, 1] as the stages end (capture, fit).

    Returns
    -------
    avatar.fit.Avatar, `seconds` covering capture and fit.

    Raises
    ------
    FitroomError
        `bad_height`, `bad_sex`, a capture check's code with its plain reason (`no_person`,
        `several_people`, `body_cut_off`, ...), or `fit_failed`.
    """
    from avatar.capture import capture_photo
    from avatar.fit import check_height, fit_avatar

    start = time.perf_counter()
    check_height(height_cm)
    if photos.get("front") is None:
        raise FitroomError("no_photo", "A front photo is needed: full length, facing the camera.")
    unknown = set(photos) - set(VIEWS)
    if unknown:
        raise ValueError(f"photo views are {VIEWS}, not {sorted(unknown)}")
    captures = []
    for view in VIEWS:
        photo = photos.get(view)
        if photo is not None:
            captures.append(capture_photo(photo.rgb, view=view, focal_px=photo.focal_px))
    if progress:
        progress(0.4)
    avatar = fit_avatar(model, captures, height_cm, sex=sex)
    avatar.seconds = time.perf_counter() - start
    if progress:
        progress(0.8)
    return avatar
