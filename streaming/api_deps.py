"""Dependencies of the API routes: the session, the blob store, the job runner and the calling brand.

The app factory puts the catalogue, blob store, job runner and settings on `app.state`; nothing here
opens anything at import time.
"""

from __future__ import annotations

from typing import Annotated, AsyncIterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from assets.blob_store import BlobStore
from assets.catalog import authenticate
from assets.catalog_models import Brand
from fitroom.errors import FitroomError
from fitroom.settings import Settings
from streaming.asset_jobs import JobRunner

_bearer = HTTPBearer(auto_error=False, description="A brand's API key: `Authorization: Bearer fr_...`")


# The dependencies that do no I/O are `async def`: FastAPI runs sync ones on the thread pool, and
# each hop there cost about a millisecond of a catalogue page. Opening a Session touches no database.
async def get_session(request: Request) -> AsyncIterator[Session]:
    with request.app.state.db.session() as session:
        yield session


async def get_blobs(request: Request) -> BlobStore:
    return request.app.state.blobs


async def get_jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[Session, Depends(get_session)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_optional_brand(session: SessionDep, credentials: Credentials) -> Brand | None:
    """The calling brand, or None for an anonymous shopper; a key that is given must be valid."""
    if credentials is None:
        return None
    brand = authenticate(session, credentials.credentials)
    if brand is None:
        raise FitroomError("unauthorized", "The API key is not valid.")
    return brand


async def get_current_brand(brand: Annotated[Brand | None, Depends(get_optional_brand)]) -> Brand:
    if brand is None:
        raise FitroomError("unauthorized", "This call needs a brand's API key: Authorization: Bearer KEY.")
    return brand


OptionalBrand = Annotated[Brand | None, Depends(get_optional_brand)]
CurrentBrand = Annotated[Brand, Depends(get_current_brand)]
