"""The upload job: open, check, process, render a thumbnail, then store blobs and rows at once.

What a failed upload leaves behind, precisely:

- No `Asset` or `AssetFile` row: they are written only after every output exists, in the same
  transaction that marks the job `ready` (`stored_asset`).
- No blob: blobs are written only in that last step; if it fails, each blob this job created that
  no row names is deleted. The uploaded file waits outside the blob store (`uploads/<job id>/`),
  and that folder is removed whatever the outcome.
- The product row is untouched. A product made by `POST /api/v1/products` is the brand's own
  record from an earlier, successful call (a draft until the brand publishes it); a failed upload
  neither deletes nor changes it. Where the product is made *for* the upload (`fitroom asset add
  --meta` with a new SKU), it is created in the same transaction as the asset, so a failed first
  upload leaves no product row either.
- The `UploadJob` row stays, with status `failed` and its reasons: it is the answer of the status
  URL the brand was given, not a catalogue entry (it names no blob, and it goes with its product).

A server stopped mid-job leaves its jobs `queued`/`processing`; `fail_interrupted` marks them
`failed` when the next server starts (one app process per catalogue runs the jobs).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import shutil
import threading
from pathlib import Path
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from assets.blob_store import BlobStore
from assets.catalog import delete_unreferenced
from assets.catalog_db import CatalogDB
from assets.catalog_models import Asset, AssetFile, Product, UploadJob, utcnow
from fitroom.errors import FitroomError

log = logging.getLogger(__name__)

GLB, PNG, USDZ = "model/gltf-binary", "image/png", "model/vnd.usdz+zip"
THUMBNAIL_PX = 512
# Fractions of the job's progress at which each stage starts.
STAGES = {"queued": 0.0, "opening": 0.02, "checking": 0.1, "processing": 0.2, "thumbnail": 0.85, "storing": 0.95,
          "ready": 1.0}
INTERRUPTED = {"code": "interrupted", "message": "The server stopped while this upload was processed; upload it again.",
               "where": ""}


def processing_kind(role: str | None, kind: str) -> str:
    """How an upload is normalised: a reference body keeps its place, as the garments modelled on it
    do (their placement around it is what carries them onto a shopper), whatever the product's kind."""
    return "garment" if role == "reference_body" else kind


class UploadRejected(FitroomError):
    """The upload failed its checks; `reasons` are the report's errors, `warnings` its warnings."""

    def __init__(self, reasons: list[dict], warnings: list[dict]):
        first = reasons[0]["message"] if reasons else "The upload failed its checks."
        super().__init__("upload_rejected", first)
        self.reasons, self.warnings = reasons, warnings


@dataclasses.dataclass
class BuiltFile:
    """One output: `name` (lod0.glb, thumbnail.png, model.usdz), bytes and its HTTP content type."""

    name: str
    data: bytes
    content_type: str
    triangles: int | None = None
    ratio: float | None = None


@dataclasses.dataclass
class BuiltAsset:
    files: list[BuiltFile]
    report: dict
    warnings: list[dict]
    bounds_m: list | None
    notes: list[str]


def _reason(e: FitroomError) -> dict:
    return {"code": e.code, "message": e.message, "where": ""}


def build_asset(upload: Path, workdir: Path, kind: str, progress: Callable[[str, float], None] = lambda s, f: None) -> BuiltAsset:
    """Runs the pipeline on one uploaded file; nothing is stored.

    Parameters
    ----------
    upload : the uploaded file (any name; its content is sniffed).
    workdir : a folder for the extracted archive, made when missing (the caller removes it).
    kind : the product kind (`processing` normalises garments, furniture, ... differently).
    progress : called with (stage, fraction of the whole job in [0, 1]).

    Raises
    ------
    UploadRejected : the checks found errors (all of them are in `reasons`).
    FitroomError : the archive was refused or processing failed.
    """
    from assets.asset_check import check_model
    from assets.upload_archive import open_upload

    progress("opening", STAGES["opening"])
    Path(workdir).mkdir(parents=True, exist_ok=True)
    main = open_upload(Path(upload), Path(workdir))
    progress("checking", STAGES["checking"])
    report = check_model(main)
    warnings = [p.to_dict() for p in report.warnings]
    if not report.ok:
        raise UploadRejected([p.to_dict() for p in report.errors], warnings)
    progress("processing", STAGES["processing"])
    span = STAGES["thumbnail"] - STAGES["processing"]

    def processing_progress(fraction: float, stage: str = "processing"):
        # process_model reports (fraction of processing, the stage it starts, e.g. "decimating").
        progress(str(stage)[:32], STAGES["processing"] + span * min(max(float(fraction), 0.0), 1.0))

    from assets.asset_processing import process_model
    from streaming.thumbnail import render_thumbnail

    processed = process_model(main, kind=kind, progress=processing_progress)
    progress("thumbnail", STAGES["thumbnail"])
    files = [BuiltFile(f"lod{i}.glb", lod.glb, GLB, int(lod.triangles), float(lod.ratio)) for i, lod in enumerate(processed.lods)]
    files.append(BuiltFile("thumbnail.png", render_thumbnail(processed.lods[0].glb, size=THUMBNAIL_PX), PNG))
    if processed.usdz:
        files.append(BuiltFile("model.usdz", processed.usdz, USDZ))
    bounds = processed.bounds_m
    bounds = None if bounds is None else [[float(x) for x in row] for row in bounds]
    return BuiltAsset(files, report.to_dict(), warnings, bounds, list(processed.notes or []))


@contextlib.contextmanager
def stored_asset(session: Session, blobs: BlobStore, product: Product, built: BuiltAsset, upload: Path, *,
                 source_name: str, role: str = "model", size: str | None = None, colourway: str | None = None):
    """Writes the blobs and adds the asset rows; commits when the `with` block ends without error.

    Yields the (flushed) `Asset`, so the caller can change more rows in the same transaction. On
    any error the transaction is rolled back and the blobs this call created are deleted.
    """
    created: set[str] = set()  # blobs that were in the store before belong to other assets: never deleted here
    stored: dict[str, bytes | Path] = {}

    def put(data: bytes | Path) -> str:
        digest, new = blobs.store(data)
        stored.setdefault(digest, data)
        if new:
            created.add(digest)
        return digest

    try:
        source = put(Path(upload))
        digests = {f.name: put(f.data) for f in built.files}
        asset = Asset(product=product, role=role, size=size, colourway=colourway, source_name=source_name,
                      source_digest=source, report=built.report, bounds_m=built.bounds_m, notes=built.notes)
        asset.files = [AssetFile(name=f.name, digest=digests[f.name], content_type=f.content_type, size_bytes=len(f.data),
                                 triangles=f.triangles, ratio=f.ratio) for f in built.files]
        session.add(asset)
        session.flush()
        yield asset
        session.commit()
    except BaseException:
        session.rollback()
        delete_unreferenced(session, blobs, created)
        raise
    # A product deleted at the same moment may have taken a shared blob with it: put it back.
    for digest, data in stored.items():
        if not blobs.exists(digest):
            blobs.store(data)


def _failure(e: BaseException) -> tuple[list[dict], list[dict]]:
    """(reasons, warnings) of a failed job; an unexpected exception is logged, not shown."""
    if isinstance(e, UploadRejected):
        return e.reasons, e.warnings
    if isinstance(e, FitroomError):
        return [_reason(e)], []
    log.exception("upload processing failed unexpectedly")
    return [{"code": "processing_error", "message": "The model could not be processed (an internal error was logged).",
             "where": ""}], []


class JobRunner:
    """Runs upload jobs on a small pool of threads, one after another by default.

    Processing is CPU-bound and renders with OpenGL: a dedicated pool keeps it off the threads that
    answer requests and bounds how many run at once. Each job uses its own sessions.

    Parameters
    ----------
    db, blobs : the catalogue and its blob store.
    workers : jobs run at once.
    """

    def __init__(self, db: CatalogDB, blobs: BlobStore, workers: int = 1):
        self.db, self.blobs = db, blobs
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fitroom-upload")
        self._futures: set[concurrent.futures.Future] = set()
        self._lock = threading.Lock()

    def submit(self, job_id: str, upload: Path) -> concurrent.futures.Future:
        """Queues `run(job_id, upload)`; `upload` lies alone in a folder the job removes."""
        future = self._pool.submit(self.run, job_id, Path(upload))
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future) -> None:
        with self._lock:
            self._futures.discard(future)

    def wait(self, timeout: float | None = None) -> None:
        """Blocks until every job submitted so far has finished (tests, benchmarks, shutdown)."""
        with self._lock:
            pending = list(self._futures)
        concurrent.futures.wait(pending, timeout=timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _set(self, job_id: str, **values) -> bool:
        with self.db.session() as s:
            done = s.execute(update(UploadJob).where(UploadJob.id == job_id).values(**values)).rowcount
            s.commit()
            return bool(done)

    def _progress(self, job_id: str) -> Callable[[str, float], None]:
        last = {"stage": None, "progress": -1.0}

        def report(stage: str, fraction: float) -> None:
            # One small write per stage and per 5 %: enough for a progress bar, cheap for the database.
            if stage != last["stage"] or fraction - last["progress"] >= 0.05:
                last.update(stage=stage, progress=fraction)
                self._set(job_id, stage=stage, progress=round(fraction, 3))

        return report

    def run(self, job_id: str, upload: Path) -> str:
        """Processes one queued job; its final status ("ready", "failed", or "gone" when its product was deleted)."""
        folder = Path(upload).parent
        try:
            with self.db.session() as s:
                job = s.get(UploadJob, job_id)
                if job is None:
                    return "gone"
                kind = processing_kind(job.role, job.product.kind)
            self._set(job_id, status="processing")
            try:
                built = build_asset(upload, folder / ".work", kind, self._progress(job_id))  # no upload name starts with a dot
                self._set(job_id, stage="storing", progress=STAGES["storing"])
                with self.db.session() as s:
                    job = s.get(UploadJob, job_id)
                    if job is None:
                        return "gone"
                    with stored_asset(s, self.blobs, job.product, built, upload, source_name=job.source_name,
                                      role=job.role, size=job.size, colourway=job.colourway) as asset:
                        job.status, job.stage, job.progress = "ready", "ready", 1.0
                        job.asset_id, job.warnings, job.finished_at = asset.id, built.warnings, utcnow()
                return "ready"
            except Exception as e:
                reasons, warnings = _failure(e)
                self._set(job_id, status="failed", reasons=reasons, warnings=warnings, finished_at=utcnow())
                return "failed"
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def fail_interrupted(db: CatalogDB, upload_dir: Path) -> int:
    """Marks jobs a stopped server left `queued` or `processing` as failed and removes their uploads; how many."""
    with db.session() as s:
        ids = s.scalars(select(UploadJob.id).where(UploadJob.status.in_(("queued", "processing")))).all()
        if ids:
            s.execute(update(UploadJob).where(UploadJob.id.in_(ids)).values(
                status="failed", reasons=[INTERRUPTED], finished_at=utcnow()))
            s.commit()
    upload_dir = Path(upload_dir)
    if upload_dir.is_dir():
        for folder in upload_dir.iterdir():
            shutil.rmtree(folder, ignore_errors=True)
    return len(ids)


def add_asset(db: CatalogDB, blobs: BlobStore, brand, upload: Path, meta: dict) -> dict:
    """`fitroom asset add`: one upload through the same pipeline and store step, run here and now.

    `meta` is a product (`ProductCreate` fields) plus optional `size`, `colourway` and `role`. A SKU
    the brand already has gets the asset added (its other fields are left as they are); a new SKU
    makes the product in the same transaction as the asset, so nothing is written if the upload
    fails. Returns a summary: product and asset ids, whether the product is new, files, warnings.
    """
    import tempfile

    from pydantic import ValidationError

    from assets.catalog import asset_variant, create_product
    from assets.catalog_models import ASSET_ROLES
    from assets.catalog_schemas import ProductCreate

    meta = dict(meta)
    extra = {k: meta.pop(k, None) for k in ("size", "colourway", "role")}
    role = extra["role"] or "model"
    if role not in ASSET_ROLES:
        raise FitroomError("bad_meta", f"role must be one of {', '.join(ASSET_ROLES)}, not {role!r}.")
    with db.session() as s:
        existing = s.scalar(select(Product).where(Product.brand_id == brand.id, Product.sku == str(meta.get("sku", "")).strip()))
        data = None
        if existing is None:
            try:
                data = ProductCreate.model_validate(meta)
            except ValidationError as e:
                raise FitroomError("bad_meta", "The metadata is not valid: " + "; ".join(
                    f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()[:5])) from None
        if existing:
            chart, colours = existing.size_chart, existing.colourways
        else:
            dumped = data.model_dump(mode="json")
            chart, colours = dumped["size_chart"], dumped["colourways"]
        size, colourway = asset_variant(chart, colours, extra["size"], extra["colourway"])
        kind = existing.kind if existing else data.kind
    with tempfile.TemporaryDirectory(prefix="fitroom-add-") as work:
        built = build_asset(Path(upload), Path(work), processing_kind(role, kind))
    with db.session() as s:
        product = s.get(Product, existing.id) if existing else create_product(s, s.merge(brand), data, commit=False)
        with stored_asset(s, blobs, product, built, Path(upload), source_name=Path(upload).name, role=role, size=size,
                          colourway=colourway) as asset:
            pass
        return {"product_id": product.id, "sku": product.sku, "new_product": existing is None, "asset_id": asset.id,
                "files": {f.name: f.size_bytes for f in asset.files}, "warnings": built.warnings}
