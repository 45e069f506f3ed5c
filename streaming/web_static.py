"""Serves the browser storefront: `web_client/` at `/` and model-viewer's module at `/vendor/`.

Every file is an exact route (`/`, `/app.js`, `/style.css`, ...) made from what `web_client/` holds
when the app is created, never a catch-all mount, so the order in which routers are included does
not matter and no path outside the folder can be asked for. `@google/model-viewer` comes from the
npm package that `scripts/setup.sh` installs into the project's ignored `.node/` folder (no CDN);
without it `/vendor/model-viewer.min.js` answers a JSON 404 that says to run the set-up.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse

REPO = Path(__file__).resolve().parents[1]
WEB_CLIENT = REPO / "web_client"
MODEL_VIEWER = REPO / ".node" / "node_modules" / "@google" / "model-viewer" / "dist" / "model-viewer.min.js"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
# The page is small and changes with the code: browsers revalidate (ETag / Last-Modified) each load.
HEADERS = {"Cache-Control": "no-cache"}


def _file_route(path: Path):
    media_type = MEDIA_TYPES[path.suffix]

    async def serve() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers=HEADERS)

    return serve


async def _model_viewer():
    if not MODEL_VIEWER.is_file():
        return JSONResponse({"error": "not_found",
                             "detail": "@google/model-viewer is not installed: run scripts/setup.sh."},
                            status_code=404)
    return FileResponse(MODEL_VIEWER, media_type=MEDIA_TYPES[".js"], headers=HEADERS)


def include_web_client(app: FastAPI, folder: Path = WEB_CLIENT) -> None:
    """Adds a GET route for `/` (index.html) and for each servable file in `folder` (not recursive)."""
    if (folder / "index.html").is_file():
        app.add_api_route("/", _file_route(folder / "index.html"), methods=["GET"], include_in_schema=False)
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.is_file() and path.suffix in MEDIA_TYPES and not path.name.startswith("."):
            app.add_api_route(f"/{path.name}", _file_route(path), methods=["GET"], include_in_schema=False)
    app.add_api_route("/vendor/model-viewer.min.js", _model_viewer, methods=["GET"], include_in_schema=False)
