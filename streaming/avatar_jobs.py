"""Shoppers' avatars made from photos in the background: `queued -> fitting -> ready` (or `failed`
with the capture check's plain reason).

A ready avatar is `avatars/<id>/avatar.json` and `avatar.glb` in the data directory. Both files are
written into a hidden folder `avatars/.<id>.tmp` that is renamed to `avatars/<id>` once complete,
so a reader sees the whole avatar or none; a failed fit removes that folder. The photos are held in
memory only (decoded arrays, dropped when the job ends): no photo or pixel reaches the disk or a log.

Ready avatars are found again after a restart (their status is read from avatar.json); queued,
fitting and failed ones live in memory.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

from fitroom.errors import FitroomError

log = logging.getLogger(__name__)

AVATAR_ID = re.compile(r"^[0-9a-f]{24}$")


def avatar_folder(data_dir, avatar_id: str) -> Path:
    """The folder of the ready avatar `avatar_id` in `data_dir` (`no_avatar` when there is none)."""
    if not AVATAR_ID.match(str(avatar_id)):
        raise FitroomError("no_avatar", f"There is no avatar {str(avatar_id)[:40]!r}.")
    path = Path(data_dir) / "avatars" / avatar_id
    if not (path / "avatar.json").is_file():
        raise FitroomError("no_avatar", f"There is no ready avatar {avatar_id!r}: make one with POST /api/v1/avatars "
                           "and wait until its status is ready.")
    return path


@dataclasses.dataclass
class AvatarJob:
    id: str
    height_cm: float
    sex: str | None
    views: list
    status: str = "queued"
    progress: float = 0.0
    error: str | None = None  # the FitroomError code of a failure
    reason: str | None = None
    summary: dict | None = None
    created: float = dataclasses.field(default_factory=time.time)

    def to_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "progress": round(self.progress, 2), "error": self.error,
                "reason": self.reason, "height_cm": self.height_cm, "sex": self.sex, "views": self.views,
                "summary": self.summary}


class AvatarJobs:
    """The avatar jobs of one app; thread-safe.

    settings : the app settings (data directory).
    body_model : `() -> BodyModel` (the try-on registry's, loaded once on first use).
    max_pending : queued or fitting jobs at most (their photos are in memory).
    keep_failed : failed jobs remembered for their status.
    """

    def __init__(self, settings, body_model: Callable[[], object], workers: int = 1, max_pending: int = 4,
                 keep_failed: int = 100):
        self.root = Path(settings.data_dir) / "avatars"
        self.body_model = body_model
        self.max_pending = max_pending
        self.keep_failed = keep_failed
        self._jobs: dict[str, AvatarJob] = {}
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="avatar-fit")
        self._clean_leftovers()

    def _clean_leftovers(self) -> None:
        """Removes the temporary folders of fits a stopped server left half-written."""
        if self.root.is_dir():
            for p in self.root.glob(".*.tmp"):
                shutil.rmtree(p, ignore_errors=True)

    def folder(self, avatar_id: str) -> Path:
        return avatar_folder(self.root.parent, avatar_id)

    def submit(self, photos: dict, height_cm: float, sex: str | None) -> dict:
        """Queues a fit of decoded photos ({"front": Photo, "side": Photo?}); returns the status."""
        from avatar.fit import check_height

        check_height(height_cm)
        with self._lock:
            pending = sum(1 for j in self._jobs.values() if j.status in ("queued", "fitting"))
            if pending >= self.max_pending:
                raise FitroomError("too_many_avatars", "The server is busy making other avatars; try again in a minute.")
            job = AvatarJob(secrets.token_hex(12), float(height_cm), sex, [v for v in ("front", "side") if photos.get(v)])
            self._jobs[job.id] = job
            self._forget_old_failures()
        self._pool.submit(self._run, job, photos)
        return job.to_dict()

    def status(self, avatar_id: str) -> dict:
        with self._lock:
            job = self._jobs.get(avatar_id)
            if job is not None:
                return job.to_dict()
        folder = self.folder(avatar_id)  # a ready avatar from an earlier run of the server
        try:
            doc = json.loads((folder / "avatar.json").read_text())
        except (OSError, ValueError) as e:
            raise FitroomError("no_avatar", f"The avatar {avatar_id!r} cannot be read ({type(e).__name__}).") from None
        views = [p.get("view") for p in doc.get("poses", [])]
        return AvatarJob(avatar_id, doc.get("height_cm"), doc.get("sex"), views, "ready", 1.0,
                         summary=doc.get("fit")).to_dict()

    def _set(self, job: AvatarJob, **fields) -> None:
        with self._lock:
            for k, v in fields.items():
                setattr(job, k, v)

    def _run(self, job: AvatarJob, photos: dict) -> None:
        from avatar.avatar_files import write_avatar
        from avatar.from_photos import make_avatar

        tmp = self.root / f".{job.id}.tmp"
        try:
            self._set(job, status="fitting", progress=0.1)
            model = self.body_model()
            avatar = make_avatar(model, photos, job.height_cm, sex=job.sex,
                                 progress=lambda p: self._set(job, progress=p))
            photos = None  # the pixels are not needed any more
            write_avatar(tmp, avatar, model)
            os.replace(tmp, self.root / job.id)
            self._set(job, status="ready", progress=1.0, summary=avatar.summary())
            log.info("avatar %s ready in %.1f s", job.id, avatar.seconds)
        except FitroomError as e:
            self._set(job, status="failed", progress=1.0, error=e.code, reason=e.message)
            log.info("avatar %s refused: %s", job.id, e.code)
        except Exception as e:  # a fit must not take the server down; the reason goes to the shopper
            log.error("avatar %s failed: %s", job.id, type(e).__name__)
            self._set(job, status="failed", progress=1.0, error="fit_failed",
                      reason=f"The avatar could not be made ({type(e).__name__}); try another photo.")
        finally:
            photos = None
            shutil.rmtree(tmp, ignore_errors=True)

    def _forget_old_failures(self) -> None:
        failed = [j for j in self._jobs.values() if j.status in ("failed", "ready")]
        for j in sorted(failed, key=lambda j: j.created)[:max(0, len(failed) - self.keep_failed)]:
            del self._jobs[j.id]  # a ready one is still found on disk

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
