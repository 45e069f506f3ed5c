"""Try-on sessions: an avatar, a garment in a size, colourway and fabric, draped in the background.

A session moves `queued -> draping -> ready` (or `failed` with a reason); changing the size or the
fabric drapes again (`draping` with the old look still shown, then `ready` with the new one), and
every viewer sees the new look because a session holds exactly one `FrameSource`. Colourway, light,
fit map and camera changes are applied to the frame source without draping.

All `FrameSource` calls go through the session's one render thread: the GL context the renderer
makes is current in the thread that made it, and one thread also orders the look, light and camera
changes against the frames. Drapes run on a small shared pool so that many sessions cannot starve
the render threads of the CPU. Sessions not touched for `ttl_s` expire and free their renderer.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from fitroom.errors import FitroomError
from streaming.lighting import light_preset

log = logging.getLogger(__name__)

SEXES = ("female", "male")
# The named colourways of the demo garments (sRGB hex, as the page shows them).
COLOURWAYS = {"white": "#f0efe9", "navy": "#1f2a44", "red": "#b3282d", "sage": "#8fa88a", "black": "#1d1d1f",
              "sand": "#c8ad7f"}


def colourway_rgb(name: str, hex: str | None = None) -> tuple:
    """The linear RGB (glTF base colour) of a named colourway, else of `hex` or a `name` that is
    `#rrggbb` (sRGB)."""
    key = str(name).strip().lower()
    key = COLOURWAYS.get(key) or (hex or key).lower()
    if len(key) == 7 and key[0] == "#":
        try:
            srgb = np.array([int(key[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
        except ValueError:
            srgb = None
        if srgb is not None:
            return tuple(float(c) for c in np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4))
    raise FitroomError("bad_colourway", f"A colourway is one of {', '.join(COLOURWAYS)} or #rrggbb, not {name!r}.")


def garment_rgb(request, name: str, hex: str | None = None) -> tuple:
    """`colourway_rgb` of the request's garment: a catalogue garment's own colourway is its brand's hex."""
    own = request.product.colourway_hex(name) if request.product is not None else None
    return colourway_rgb(own) if own else colourway_rgb(name, hex)


def request_fabric(request):
    """The fabric a request drapes in: a catalogue garment's own when the request names it, else a preset."""
    from engine.fabrics import fabric_preset

    product = request.product
    if product is not None and product.fabric and request.fabric == product.fabric_name:
        return product.fabric_model()
    return fabric_preset(request.fabric)


@dataclasses.dataclass
class TryOnRequest:
    """What a session shows. avatar : {"sex", "size"} for a reference body, {"id"} of an avatar made
    from photos (POST /api/v1/avatars) or {"path"} of an avatar.json inside the data directory;
    garment : a demo garment kind."""

    avatar: dict
    garment: str = "tshirt"
    size: str = "M"
    colourway: str = "navy"
    fabric: str = "cotton_jersey"
    hex: str | None = None  # the colour of a colourway the server does not name
    # A catalogue garment (assets.catalog_tryon.CatalogGarment) when `garment` is "product:<id>".
    product: object | None = None


class TryOnSession:
    """One try-on: its request, drape status and look, and the one frame source all viewers watch.

    Attributes read by other threads (`status`, `progress`, `reason`, `summary`) are replaced whole
    under `lock`; `snapshot()` reads them consistently.
    """

    def __init__(self, session_id: str, request: TryOnRequest, frame_source, render_thread):
        self.id = session_id
        self.request = request
        self.frame_source = frame_source
        self.render_thread = render_thread  # a one-thread executor: every FrameSource call goes here
        self.lock = threading.Lock()
        self.status, self.progress, self.reason = "queued", 0.0, None
        self.summary: dict | None = None
        self.look = None
        self.body_faces = None
        self.drapes = 0  # completed drapes: a viewer sees a new look when this moves
        self.touched = time.monotonic()
        self.colour = garment_rgb(request, request.colourway, request.hex)  # linear RGB of the garment
        self.closed = False
        self._generation = 0  # the newest drape request; older drapes are discarded when they end
        self.listeners: list[Callable[[dict], None]] = []  # called (from any thread) on status changes

    def snapshot(self) -> dict:
        """The JSON status of the session."""
        with self.lock:
            r = self.request
            out = {"id": self.id, "status": self.status, "progress": round(self.progress, 2), "reason": self.reason,
                   "garment": r.garment, "size": r.size, "colourway": r.colourway, "fabric": r.fabric,
                   "avatar": r.avatar, "drapes": self.drapes}
            s = self.summary
        if r.product is not None:
            out["product"] = r.product.public()
            out["note"] = r.product.note(r.size)
        if s:
            out["fit"] = {k: s[k] for k in ("fits", "strain_p95", "max_penetration_mm", "ease_cm", "vertices", "seconds")}
            out["recommended_size"] = s["recommended_size"]
            out["size_advice"] = s["size_advice"]
        return out

    def call_render(self, fn, *args, **kwargs) -> concurrent.futures.Future:
        """Runs `fn(frame_source, ...)` on the render thread."""
        return self.render_thread.submit(fn, self.frame_source, *args, **kwargs)

    def _set(self, **fields) -> None:
        with self.lock:
            for k, v in fields.items():
                setattr(self, k, v)
        event = {"type": "status", **self.snapshot()}
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a viewer that went away must not stop the drape
                log.exception("try-on %s: status listener failed", self.id)


class SessionRegistry:
    """The try-on sessions of one app: create, find, change, expire, close; thread-safe.

    settings : the app settings (stream size, data directory).
    frame_source_factory : `(width, height) -> FrameSource` (the real one by default).
    vertices : the target vertex count of the demo garments (drape time grows with it).
    ttl_s : idle seconds before a session expires; max_sessions : live sessions at most.
    """

    def __init__(self, settings, frame_source_factory=None, vertices: int = 1500, ttl_s: float = 900.0,
                 max_sessions: int = 16, drape_workers: int = 1):
        self.settings = settings
        self.vertices = vertices
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self._factory = frame_source_factory
        self._sessions: dict[str, TryOnSession] = {}
        self._lock = threading.Lock()
        self._drapes = concurrent.futures.ThreadPoolExecutor(drape_workers, thread_name_prefix="tryon-drape")
        self.model = None  # the body model, loaded on the first drape (tests may set it)
        self._model_lock = threading.Lock()
        self.on_expire: list[Callable[[TryOnSession], None]] = []

    # -- the body model and avatars -------------------------------------------------------------
    def body_model(self):
        with self._model_lock:
            if self.model is None:
                from avatar.body import load_body_model

                self.model = load_body_model(device="cpu", path=self.settings.body_model_path)
            return self.model

    def _body(self, model, avatar: dict):
        from assets.procedural_garments import reference_body
        from assets.try_on import ShopperBody, shopper_body
        from avatar.measurements import measure_body

        if avatar.get("id"):
            return shopper_body(model, self.avatar_folder(avatar["id"]))
        if avatar.get("path"):
            return shopper_body(model, self.avatar_path(avatar["path"]))
        _, vertices = reference_body(model, avatar.get("size", "M"), avatar.get("sex", "female"))
        return ShopperBody(vertices, avatar.get("sex", "female"), measure_body(vertices, model))

    def avatar_folder(self, avatar_id: str) -> Path:
        """The folder of the ready photo avatar `avatar_id` (avatars/<id>/ in the data directory)."""
        from streaming.avatar_jobs import avatar_folder

        try:
            return avatar_folder(self.settings.data_dir, avatar_id)
        except FitroomError as e:
            raise FitroomError("bad_avatar", e.message) from None

    def avatar_path(self, name: str) -> Path:
        """The avatar file `name` (relative to the data directory, never outside it)."""
        root = self.settings.data_dir.resolve()
        path = (root / str(name)).resolve()
        if root not in path.parents or not path.exists():
            raise FitroomError("bad_avatar", f"There is no avatar {name!r} in the data directory.")
        return path

    def check(self, request: TryOnRequest) -> None:
        """Refuses a request that cannot drape, before a session is made for it."""
        from assets.garment_chart import GARMENT_KINDS
        from avatar.size_chart import SIZES

        product = request.product
        if product is not None:  # a catalogue garment: its own sizes, fabric and colourways
            request.size = product.size_label(request.size)
        elif request.garment not in GARMENT_KINDS:
            raise FitroomError("bad_garment", f"A garment is one of {', '.join(GARMENT_KINDS)}, not {request.garment!r}.")
        sizes = ([] if product else [request.size]) + ([request.avatar["size"]] if "size" in request.avatar else [])
        for size in sizes:
            if str(size).strip().upper() not in SIZES:
                raise FitroomError("bad_size", f"A size is one of {', '.join(SIZES)}, not {size!r}.")
        if request.avatar.get("sex", "female") not in SEXES:
            raise FitroomError("bad_avatar", f"An avatar's sex is female or male, not {request.avatar.get('sex')!r}.")
        if request.avatar.get("id"):
            self.avatar_folder(request.avatar["id"])
        elif request.avatar.get("path"):
            self.avatar_path(request.avatar["path"])
        elif not set(request.avatar) <= {"sex", "size"}:
            raise FitroomError("bad_avatar", 'An avatar is {"sex", "size"} (a reference body), {"id"} of an avatar made '
                               'from photos or {"path"} of an avatar file.')
        request_fabric(request)
        garment_rgb(request, request.colourway, request.hex)

    # -- sessions -------------------------------------------------------------------------------
    def create(self, request: TryOnRequest) -> TryOnSession:
        """A new session whose first drape is queued."""
        request.size = request.size.strip().upper()
        self.check(request)
        self.expire()
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                raise FitroomError("too_many_sessions", f"The server holds {self.max_sessions} try-on sessions; try again later.")
            session_id = secrets.token_urlsafe(9)
            render_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"tryon-render-{session_id}")
            factory = self._factory or _default_factory
            # The frame source is made on the render thread so that its GL context lives there.
            source = render_thread.submit(factory, self.settings.stream_width, self.settings.stream_height).result()
            session = TryOnSession(session_id, request, source, render_thread)
            self._sessions[session_id] = session
        self._redrape(session)
        return session

    def get(self, session_id: str) -> TryOnSession:
        """The live session `session_id` (touched: it will not expire for another ttl_s)."""
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None or session.closed:
            raise FitroomError("no_session", f"There is no try-on session {session_id!r} (it may have expired).")
        session.touched = time.monotonic()
        return session

    def sessions(self) -> list[TryOnSession]:
        with self._lock:
            return list(self._sessions.values())

    def change(self, session: TryOnSession, *, size=None, colourway=None, hex=None, fabric=None, light=None,
               fitmap=None) -> None:
        """Applies a viewer's change: size and fabric drape again, the rest only restyle."""
        if colourway is not None:
            rgb = garment_rgb(session.request, colourway, hex)
            with session.lock:
                session.request.colourway = colourway
                session.colour = rgb
                look = session.look
            if look is not None:
                session.call_render(_show_look, look, session.body_faces, rgb)
            session._set()
        if light is not None:
            light_preset(light)  # refuses an unknown name before it reaches the render thread
            session.call_render(lambda fs: fs.set_light(light))
        if fitmap is not None:
            session.call_render(lambda fs: fs.set_fitmap(bool(fitmap)))
        if size is not None or fabric is not None:
            new = dataclasses.replace(session.request, size=(size or session.request.size).strip().upper(),
                                      fabric=fabric or session.request.fabric)
            self.check(new)
            with session.lock:
                session.request = new
            self._redrape(session)

    def _redrape(self, session: TryOnSession) -> None:
        with session.lock:
            session._generation += 1
            generation = session._generation
        session._set(status="queued" if session.look is None else "draping", progress=0.0, reason=None)
        self._drapes.submit(self._drape, session, generation)

    def _drape(self, session: TryOnSession, generation: int) -> None:
        from assets.try_on import load_garment, look_summary, try_on
        from engine.backend import to_numpy

        def stale() -> bool:
            return session.closed or generation != session._generation

        if stale():
            return
        try:
            request = session.request
            session._set(status="draping", progress=0.1)
            model = self.body_model()
            body = self._body(model, request.avatar)
            session._set(progress=0.3)
            if request.product is not None:
                from assets.blob_store import BlobStore
                from assets.catalog_tryon import garment_mesh

                garment = garment_mesh(model, request.product, request.size, BlobStore(self.settings.blob_dir))
            else:
                garment = load_garment(model, request.garment, request.size, body.sex, vertices=self.vertices)
            session._set(progress=0.5)
            look = try_on(model, body, garment, request_fabric(request))
            if stale():
                return
            faces = to_numpy(model.faces).astype(np.int32)
            session.call_render(_show_look, look, faces, session.colour).result()
            summary = look_summary(look)
        except FitroomError as e:
            if not stale():
                session._set(status="failed", reason=e.message, progress=1.0)
            return
        except Exception as e:  # a drape must not take the server down; the reason goes to the viewer
            log.exception("try-on %s: drape failed", session.id)
            if not stale():
                session._set(status="failed", reason=f"The drape failed: {type(e).__name__}: {e}", progress=1.0)
            return
        if stale():
            return
        session._set(status="ready", progress=1.0, look=look, body_faces=faces, summary=summary, drapes=session.drapes + 1)

    def close(self, session: TryOnSession) -> None:
        """Ends a session: removes it and frees its frame source."""
        with self._lock:
            self._sessions.pop(session.id, None)
        if session.closed:
            return
        session.closed = True
        for callback in list(self.on_expire):
            callback(session)

        def release(fs):
            close = getattr(fs, "close", None)
            if close:
                close()

        session.render_thread.submit(release, session.frame_source)
        session.render_thread.shutdown(wait=False)

    def expire(self) -> int:
        """Closes sessions idle for more than ttl_s; returns how many."""
        now = time.monotonic()
        old = [s for s in self.sessions() if now - s.touched > self.ttl_s]
        for session in old:
            log.info("try-on %s expired", session.id)
            self.close(session)
        return len(old)

    def shutdown(self) -> None:
        for session in self.sessions():
            self.close(session)
        self._drapes.shutdown(wait=False, cancel_futures=True)


def _default_factory(width: int, height: int):
    from streaming.frame_source import FrameSource

    return FrameSource(width, height)


def _show_look(fs, look, body_faces, garment_rgb) -> None:
    """Puts a look into a frame source (on the render thread): a textured garment with its maps,
    any other in the colourway `garment_rgb`."""
    from assets.try_on import garment_surface

    fs.set_look(np.asarray(look.body.vertices, np.float32), body_faces, **garment_surface(look, garment_rgb))
