"""The catalogue database: Alembic migrations to head on SQLite and PostgreSQL, SQLite pragmas."""

from __future__ import annotations

from sqlalchemy import inspect, text

from assets.catalog_db import current_revision, database_url, downgrade, head_revision, migrate, open_catalog
from tests.catalog_fixtures import catalog, catalog_url, settings  # noqa: F401 (fixtures)

TABLES = {"alembic_version", "brands", "products", "assets", "asset_files", "upload_jobs"}


def test_open_migrates_to_head_and_again_is_a_no_op(catalog, settings):
    assert current_revision(catalog.engine) == head_revision()
    assert TABLES <= set(inspect(catalog.engine).get_table_names())
    again = open_catalog(settings.data_dir, settings.database_url)
    assert current_revision(again.engine) == head_revision()
    again.close()


def test_downgrade_to_base_and_up_again(catalog):
    downgrade(catalog.engine, "base")
    assert set(inspect(catalog.engine).get_table_names()) <= {"alembic_version"}
    migrate(catalog.engine)
    assert TABLES <= set(inspect(catalog.engine).get_table_names())


def test_models_match_the_migrations(catalog):
    """What autogenerate would write for the models against the migrated schema: nothing."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from assets.catalog_models import Base

    with catalog.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    db = open_catalog(tmp_path)
    assert (tmp_path / "catalog.sqlite3").is_file()
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.close()


def test_postgres_urls_get_the_psycopg_driver(tmp_path):
    assert database_url(tmp_path, "postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert database_url(tmp_path, "postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url(tmp_path, None).endswith("catalog.sqlite3")


def test_an_unreachable_server_is_a_plain_error(tmp_path):
    import pytest

    from fitroom.errors import FitroomError

    with pytest.raises(FitroomError) as e:
        open_catalog(tmp_path, "postgresql://nobody:secret@127.0.0.1:1/none")
    assert e.value.code == "database_unavailable" and "secret" not in e.value.message
