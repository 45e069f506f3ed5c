"""Catalogue fixtures for the storage and API tests: every test runs on SQLite and on PostgreSQL.

PostgreSQL is the server `.ci/run` starts (`scripts/start_postgres.sh`) and names in
`FITROOM_TEST_POSTGRES_URL`; each test gets a fresh database made from that server and dropped
afterwards. Without the variable the PostgreSQL cases are skipped, saying why.

Import the fixtures into a test module: `from tests.catalog_fixtures import catalog_url, settings, ...`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from fitroom.settings import Settings

PG_ENV = "FITROOM_TEST_POSTGRES_URL"
PG_SKIP = (f"{PG_ENV} is not set: run `export {PG_ENV}=$(bash scripts/start_postgres.sh)` "
           "(as .ci/run does) to test the catalogue on PostgreSQL too")

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.skipif(not os.environ.get(PG_ENV), reason=PG_SKIP)),
]


def _admin_engine(url: str):
    from sqlalchemy import create_engine

    from assets.catalog_db import database_url

    # CREATE/DROP DATABASE cannot run inside a transaction.
    return create_engine(database_url(None, url), isolation_level="AUTOCOMMIT")


def drop_test_database(admin, name: str, tries: int = 50) -> None:
    """DROP DATABASE name WITH (FORCE) through `admin` (an AUTOCOMMIT engine), tried again for up
    to 10 s while PostgreSQL refuses it: FORCE terminates the database's other sessions, which the
    `fitroom` role may not do to an autovacuum worker (the superuser's) that happens to be on the
    fresh database ("must be a member of the role whose process is being terminated": one CI run
    in ~1000 tests)."""
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    for attempt in range(tries):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == tries - 1:
                raise
            time.sleep(0.2)


def blob_files(root: Path) -> list[Path]:
    """Every file under a blob store's folder, temporary files included."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture(params=DATABASES)
def catalog_url(request, tmp_path):
    """None (SQLite in the data directory) or the URL of a new, empty PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    base = os.environ[PG_ENV]
    name = f"fitroom_t_{secrets.token_hex(6)}"
    admin = _admin_engine(base)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        drop_test_database(admin, name)
        admin.dispose()


@pytest.fixture
def settings(tmp_path, catalog_url) -> Settings:
    """Settings over a fresh data directory and catalogue (upload limit 8 MB)."""
    return Settings(data_dir=tmp_path / "data", database_url=catalog_url, max_upload_bytes=8 * 1024 * 1024)


@pytest.fixture
def catalog(settings):
    from assets.catalog_db import open_catalog

    db = open_catalog(settings.data_dir, settings.database_url)
    yield db
    db.close()
