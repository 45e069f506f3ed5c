"""API answers about assets and uploads (the product schemas live in `assets.catalog_schemas`)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from assets.catalog_models import Asset, UploadJob

API = "/api/v1"


def too_large_detail(limit: int) -> str:
    return f"The upload is larger than the limit of {limit / 2**20:.0f} MB."


class AssetFilePublic(BaseModel):
    name: str
    url: str
    content_type: str
    size_bytes: int
    triangles: int | None = None
    ratio: float | None = None


class AssetPublic(BaseModel):
    id: int
    product_id: int
    role: str
    size: str | None
    colourway: str | None
    source_name: str
    bounds_m: list | None
    warnings: list[dict]
    notes: list
    files: list[AssetFilePublic]
    created_at: dt.datetime

    @classmethod
    def of(cls, asset: Asset) -> "AssetPublic":
        files = [AssetFilePublic(name=f.name, url=f"{API}/assets/{asset.id}/files/{f.name}", content_type=f.content_type,
                                 size_bytes=f.size_bytes, triangles=f.triangles, ratio=f.ratio) for f in asset.files]
        warnings = [p for p in (asset.report or {}).get("problems", []) if p.get("severity") == "warning"]
        return cls(id=asset.id, product_id=asset.product_id, role=asset.role, size=asset.size, colourway=asset.colourway,
                   source_name=asset.source_name, bounds_m=asset.bounds_m, warnings=warnings, notes=asset.notes or [],
                   files=files, created_at=asset.created_at)


class UploadStatus(BaseModel):
    """An upload's processing: `queued`, `processing`, `ready` (with the asset) or `failed` (with reasons)."""

    id: str
    product_id: int
    status: str
    stage: str
    progress: float
    reasons: list[dict]
    warnings: list[dict]
    status_url: str
    asset: AssetPublic | None = None
    created_at: dt.datetime
    finished_at: dt.datetime | None = None

    @classmethod
    def of(cls, job: UploadJob, asset: Asset | None = None) -> "UploadStatus":
        return cls(id=job.id, product_id=job.product_id, status=job.status, stage=job.stage, progress=job.progress,
                   reasons=job.reasons or [], warnings=job.warnings or [], status_url=f"{API}/uploads/{job.id}",
                   asset=None if asset is None else AssetPublic.of(asset), created_at=job.created_at,
                   finished_at=job.finished_at)
