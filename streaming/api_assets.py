"""Brand uploads and the served files: `POST /api/v1/products/{id}/assets` (202 + status URL),
`GET /api/v1/uploads/{id}` (status, progress, reasons), `/api/v1/assets/{id}` and its files.

The upload is streamed to `uploads/<job id>/` in the data directory, its content sniffed (415 when
it is no GLB, glTF, OBJ or zip, whatever its name says), then processed in the background by
`streaming.asset_jobs.JobRunner`. Bodies over the limit are refused with 413 before they are read
whole (`streaming.api_app.BodyLimit`; the file's own size is checked again while it is copied).
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from fastapi.responses import FileResponse

from assets import catalog
from assets.catalog_models import ASSET_ROLES, UploadJob
from fitroom.errors import FitroomError
from streaming.api_deps import BlobsDep, CurrentBrand, JobsDep, OptionalBrand, SessionDep, SettingsDep
from streaming.api_schemas import API, AssetPublic, UploadStatus, too_large_detail

router = APIRouter(prefix=API, tags=["assets"])

UPLOAD_KINDS = ("glb", "gltf", "obj", "zip")
_CHUNK = 1 << 20


def _source_name(filename: str | None) -> str:
    """The upload's own name, as shown back to the brand (no folders, no control characters)."""
    name = re.sub(r"[\x00-\x1f]", "", Path(str(filename or "").replace("\\", "/")).name).strip()
    return name[-255:] or "upload"


def _save(upload: UploadFile, folder: Path, limit: int) -> Path:
    """Copies the upload into `folder` (never more than `limit` bytes) under a safe form of its name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", _source_name(upload.filename)).lstrip(".")[-100:] or "upload"
    path = folder / name
    written = 0
    with open(path, "wb") as out:
        while chunk := upload.file.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise FitroomError("too_large", too_large_detail(limit))
            out.write(chunk)
    if written == 0:
        raise FitroomError("empty_upload", "The uploaded file is empty.")
    return path


@router.post("/products/{product_id}/assets", status_code=status.HTTP_202_ACCEPTED, response_model=UploadStatus,
             responses={413: {"description": "upload too large"}, 415: {"description": "not a 3D model"}})
def upload_asset(
    product_id: int,
    file: Annotated[UploadFile, File(description=".glb, or a .zip of a .gltf or .obj with its files")],
    session: SessionDep,
    brand: CurrentBrand,
    settings: SettingsDep,
    jobs: JobsDep,
    response: Response,
    size: Annotated[str | None, Form(max_length=16)] = None,
    colourway: Annotated[str | None, Form(max_length=64)] = None,
    role: Annotated[Literal[ASSET_ROLES], Form()] = "model",  # type: ignore[valid-type]
):
    from assets.upload_archive import sniff_kind

    product = catalog.owned_product(session, brand, product_id)
    size, colourway = catalog.asset_variant(product.size_chart, product.colourways, size, colourway)
    job_id = secrets.token_hex(16)
    folder = settings.upload_dir / job_id
    folder.mkdir(parents=True)
    try:
        path = _save(file, folder, settings.max_upload_bytes)
        if sniff_kind(path) not in UPLOAD_KINDS:
            raise FitroomError("unsupported_media_type", f"{_source_name(file.filename)} is not a GLB, glTF, OBJ or "
                               "zip file (its content was read, not its name).")
        job = UploadJob(id=job_id, product_id=product.id, role=role, size=size, colourway=colourway,
                        source_name=_source_name(file.filename))
        session.add(job)
        session.commit()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    jobs.submit(job_id, path)
    answer = UploadStatus.of(job)
    response.headers["Location"] = answer.status_url
    return answer


@router.get("/uploads/{job_id}", response_model=UploadStatus)
def upload_status(job_id: str, session: SessionDep, brand: CurrentBrand):
    job = catalog.get_job(session, brand, job_id)
    asset = None if job.asset_id is None else catalog.get_asset(session, brand, job.asset_id)
    return UploadStatus.of(job, asset)


@router.get("/products/{product_id}/assets", response_model=list[AssetPublic])
def list_assets(product_id: int, session: SessionDep, viewer: OptionalBrand):
    return [AssetPublic.of(a) for a in catalog.list_assets(session, viewer, product_id)]


@router.get("/assets/{asset_id}", response_model=AssetPublic)
def read_asset(asset_id: int, session: SessionDep, viewer: OptionalBrand):
    return AssetPublic.of(catalog.get_asset(session, viewer, asset_id))


@router.delete("/assets/{asset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_asset(asset_id: int, session: SessionDep, blobs: BlobsDep, brand: CurrentBrand) -> None:
    catalog.delete_asset(session, blobs, brand, asset_id)


@router.get("/assets/{asset_id}/files/{name}", response_class=FileResponse,
            responses={200: {"content": {"model/gltf-binary": {}, "image/png": {}, "model/vnd.usdz+zip": {}}}})
def asset_file(asset_id: int, name: str, session: SessionDep, blobs: BlobsDep, viewer: OptionalBrand):
    """An optimised GLB per level of detail (`lod0.glb` full, `lod1.glb`, `lod2.glb`), `thumbnail.png`, `model.usdz`."""
    asset = catalog.get_asset(session, viewer, asset_id)
    file = next((f for f in asset.files if f.name == name), None)
    if file is None:
        raise FitroomError("no_file", f"Asset {asset_id} has no file {name!r}; it has {', '.join(f.name for f in asset.files)}.")
    path = blobs.path(file.digest)
    if not path.is_file():
        raise FitroomError("no_file", f"The file {name} of asset {asset_id} is missing from the store.")
    # Drafts are their brand's business: only published products' files may sit in shared caches.
    cache = "public, max-age=3600" if asset.product.status == "published" else "private, max-age=0"
    return FileResponse(path, media_type=file.content_type, filename=f"{asset_id}-{name}", content_disposition_type="inline",
                        headers={"ETag": f'"{file.digest}"', "Cache-Control": cache})
