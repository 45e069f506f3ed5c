"""The FastAPI app: `create_app(settings)` opens the catalogue, the blob store and the upload job
runner (at call time, never at import) and maps every error to `{"error": code, "detail": message}`.

Statuses: 401 no or bad API key (or room member token), 403 another brand's product (or a wrong
invite), 404 nothing there (or not visible), 409 a duplicate (or a full room), 410 an expired invite
or an ended room, 413 an upload over the limit, 415 not a 3D model, 423 a locked room, 422 anything
else the caller sent wrong. OpenAPI docs at `/docs`.

The shared rooms' hub (`streaming/room_hub.py`, on `app.state.rooms`) starts with the app and, on
shutdown, closes its sockets and stores every pending room event before anything else closes.
"""

from __future__ import annotations

import contextlib
import gc

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assets.blob_store import BlobStore
from assets.catalog_db import open_catalog
from fitroom.errors import FitroomError
from fitroom.settings import Settings, get_settings
from streaming.api_schemas import too_large_detail
from streaming.room_protocol import HTTP_STATUS
from streaming.asset_jobs import JobRunner, fail_interrupted

STATUS = {
    "unauthorized": 401,
    "forbidden": 403,
    "no_product": 404, "no_asset": 404, "no_upload": 404, "no_file": 404, "no_blob": 404, "not_found": 404,
    "duplicate_sku": 409, "duplicate_brand": 409, "no_tryon_model": 409,
    "no_session": 404, "no_avatar": 404, "not_ready": 409, "session_failed": 409, "too_many_sessions": 503,
    "encoder_unavailable": 503,
    "too_large": 413, "image_too_large": 413, "too_many_avatars": 503,
    "unsupported_media_type": 415, "not_an_image": 415,
    **HTTP_STATUS,  # shared rooms (docs/rooms.md)
}
_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
               415: "unsupported_media_type"}
MULTIPART_SLACK = 64 * 1024  # room for the multipart boundaries and form fields around the file


def _error(status: int, code: str, detail: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _fitroom_error(request: Request, e: FitroomError) -> JSONResponse:
    return _error(STATUS.get(e.code, 422), e.code, e.message)


def _validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
    parts = []
    for err in e.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "form"))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return _error(422, "invalid_request", "; ".join(parts) or "The request is not valid.")


def _http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
    if e.status_code == 413:
        return _error(413, "too_large", too_large_detail(request.app.state.settings.max_upload_bytes))
    return _error(e.status_code, _HTTP_CODES.get(e.status_code, "http_error"), str(e.detail))


class _BodyTooLarge(StarletteHTTPException):
    def __init__(self):
        super().__init__(413, "Content Too Large")


class BodyLimit:
    """Refuses request bodies over `limit` bytes with a JSON 413: at once from Content-Length, or as
    soon as a streamed body passes it (FastAPI re-raises HTTP errors from body parsing, so the
    error reaches `_http_error`). Starlette's own limiter answers in plain text, hence this one.
    """

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await _error(413, "too_large", too_large_detail(self.limit))(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _BodyTooLarge()
            return message

        await self.app(scope, limited, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over the catalogue of `settings` (the environment's when None), migrated to head."""
    settings = settings or get_settings()
    if settings.stream_encoder != "auto":
        # An encoder asked for by name opens once before anything starts: a server that cannot use it
        # stops here (FitroomError `encoder_unavailable`) instead of failing every viewer.
        from streaming.video_encoder import SharedEncoder

        SharedEncoder("h264", settings.stream_width, settings.stream_height, settings.stream_fps,
                      settings.stream_bitrate, settings.stream_encoder)
    db = open_catalog(settings.data_dir, settings.database_url)
    blobs = BlobStore(settings.blob_dir)
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    fail_interrupted(db, settings.upload_dir)
    jobs = JobRunner(db, blobs)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await app.state.rooms.start()
        # What is alive now (modules, the app, routes: about 150k objects) stays alive: out of the
        # collector's sight, a full collection no longer stops every room socket for ~100 ms.
        gc.collect()
        gc.freeze()
        yield
        await app.state.rooms.stop()  # closes the room sockets, stores every pending room event
        await app.state.tryon.shutdown()  # closes every peer connection, stream and session
        app.state.avatars.shutdown()
        jobs.shutdown()
        db.close()

    app = FastAPI(title="fitroom", version="1", lifespan=lifespan,
                  description="Brands upload 3D products; shoppers browse the catalogue.")
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + MULTIPART_SLACK)
    app.state.settings, app.state.db, app.state.blobs, app.state.jobs = settings, db, blobs, jobs
    app.add_exception_handler(FitroomError, _fitroom_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    from streaming import api_assets, api_products

    app.include_router(api_products.router)
    app.include_router(api_assets.router)
    from streaming import api_tryon

    api_tryon.install(app, settings)
    from streaming import api_avatars

    api_avatars.install(app, settings)
    from streaming import api_rooms

    api_rooms.install(app, settings)
    @app.get("/api/v1/rtc", tags=["webrtc"])
    def rtc_config() -> dict:
        """The STUN/TURN servers for the page's peer connections (try-on video, room voice)."""
        return {"ice_servers": [dict(server) for server in settings.ice_servers]}

    from streaming.web_static import include_web_client  # the storefront page at / (exact routes)

    include_web_client(app)
    return app
