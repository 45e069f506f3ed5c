"""Alembic environment of the catalogue.

`assets.catalog_db.migrate` passes an open connection in `config.attributes["connection"]`; run by
hand (`alembic -c assets/migrations/alembic.ini ...`) it connects to `FITROOM_DATABASE_URL`, or to
SQLite in the data directory.
"""

from alembic import context

from assets.catalog_models import Base
import streaming.room_models  # noqa: F401  (the shared rooms' tables, on the same Base)

target_metadata = Base.metadata


def _configure_and_run(connection) -> None:
    # render_as_batch: SQLite alters tables by copying them; Alembic's batch mode does that for it.
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _configure_and_run(connection)
else:
    from assets.catalog_db import database_url, make_engine
    from fitroom.settings import get_settings

    settings = get_settings()
    engine = make_engine(database_url(settings.data_dir, settings.database_url))
    with engine.begin() as conn:
        _configure_and_run(conn)
    engine.dispose()
