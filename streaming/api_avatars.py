"""A shopper's avatar from photos over HTTP, the same pipeline as `fitroom avatar`.

    POST /api/v1/avatars        multipart: front (photo), side (photo, optional), height_cm, sex (optional)
                                -> 202 {id, status: "queued", ...}; the fit runs in the background
    GET  /api/v1/avatars/{id}   queued | fitting | ready (with the measurements summary) | failed (with
                                the capture check's code in `error` and its plain reason)

A ready avatar's id goes into a try-on: `POST /api/v1/tryon {"avatar": {"id": ...}}`.

The photos stay in memory: the multipart body is parsed with a spool larger than the largest body
this route accepts, so Starlette never rolls a photo over into a temporary file (its default spools
anything over 1 MB to disk). Bad height, a file that is not an image or one over the limits is
refused at once with a 4xx `{"error", "detail"}`; the capture checks run in the background.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from avatar.photo_io import MAX_FILE_BYTES
from fitroom.errors import FitroomError
from streaming.api_schemas import API
from streaming.avatar_jobs import AvatarJobs

router = APIRouter(prefix=f"{API}/avatars", tags=["avatars"])
FORM_SLACK = 64 * 1024
MAX_BODY = 2 * MAX_FILE_BYTES + FORM_SLACK  # two photos at most
FIELDS = {"front", "side", "height_cm", "sex"}


class _InMemoryMultiPart(MultiPartParser):
    spool_max_size = MAX_BODY + 1  # larger than any body accepted: no file part ever goes to disk


async def get_avatar_jobs(request: Request) -> AvatarJobs:
    return request.app.state.avatars


AvatarJobsDep = Annotated[AvatarJobs, Depends(get_avatar_jobs)]


def install(app, settings) -> None:
    """Puts the avatar jobs on `app.state.avatars` (sharing the try-on registry's body model)."""
    app.state.avatars = AvatarJobs(settings, body_model=app.state.tryon.registry.body_model)
    app.include_router(router)


async def _form(request: Request, limit: int):
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise FitroomError("invalid_request", "Send the photos as multipart/form-data: front, optional side, "
                           "height_cm and optional sex.")
    seen = 0

    async def body():
        nonlocal seen
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise FitroomError("too_large", f"The photos are larger than the limit of {limit / 2**20:.0f} MB.")
            yield chunk

    try:
        return await _InMemoryMultiPart(request.headers, body(), max_files=2, max_fields=4).parse()
    except MultiPartException as e:
        raise FitroomError("invalid_request", f"The form could not be read: {e.message}") from None


async def _photo(form, name: str, required: bool):
    from avatar.photo_io import decode_photo

    part = form.get(name)
    if part is None or (isinstance(part, UploadFile) and not part.filename and part.size == 0):
        if required:
            raise FitroomError("no_photo", "A front photo is needed: full length, facing the camera.")
        return None
    if not isinstance(part, UploadFile):
        raise FitroomError("not_an_image", f"{name} must be a photo file, not a text field.")
    data = await part.read()
    await part.close()
    try:
        return await asyncio.to_thread(decode_photo, data)
    except FitroomError as e:
        raise FitroomError(e.code, f"The {name} photo: {e.message[0].lower()}{e.message[1:]}") from None


@router.post("", status_code=202, openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["front", "height_cm"], "properties": {
        "front": {"type": "string", "format": "binary", "description": "full length, facing the camera"},
        "side": {"type": "string", "format": "binary", "description": "optional profile photo"},
        "height_cm": {"type": "number", "minimum": 120, "maximum": 220},
        "sex": {"type": "string", "enum": ["female", "male"], "description": "fitted when left out"}}}}}}},
    responses={413: {"description": "a photo over the limits"}, 415: {"description": "not an image"}})
async def create_avatar(request: Request, jobs: AvatarJobsDep, response: Response) -> dict:
    """Starts making an avatar from photos; poll `GET /api/v1/avatars/{id}`."""
    from avatar.fit import check_height

    limit = min(MAX_BODY, request.app.state.settings.max_upload_bytes + FORM_SLACK)
    form = await _form(request, limit)
    try:
        unknown = set(form.keys()) - FIELDS
        if unknown:
            raise FitroomError("invalid_request", f"Unknown form fields {sorted(unknown)}; the fields are "
                               "front, side, height_cm and sex.")
        try:
            height_cm = float(str(form.get("height_cm", "")).strip())
        except ValueError:
            raise FitroomError("bad_height", "height_cm must be the shopper's height in cm, e.g. 172.") from None
        check_height(height_cm)
        sex = str(form.get("sex") or "").strip().lower() or None
        if sex not in (None, "female", "male"):
            raise FitroomError("bad_sex", f"sex is female or male (or left out), not {sex[:20]!r}.")
        photos = {"front": await _photo(form, "front", True), "side": await _photo(form, "side", False)}
    finally:
        await form.close()
    status = jobs.submit({k: v for k, v in photos.items() if v is not None}, height_cm, sex)
    response.headers["Location"] = f"{API}/avatars/{status['id']}"
    return status


@router.get("/{avatar_id}")
async def get_avatar(avatar_id: str, jobs: AvatarJobsDep) -> dict:
    return jobs.status(avatar_id)
