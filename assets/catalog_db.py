"""The catalogue database: an engine and session factory from a URL, migrated to head on opening.

SQLite in the data directory is the embedded default; PostgreSQL is chosen with
`FITROOM_DATABASE_URL` (``postgresql://user:password@host/db``; psycopg 3 is the driver). SQLite
connections run in WAL mode (readers do not block the upload job's writer) with foreign keys on
(SQLite leaves them off per connection, and the cascades depend on them) and a busy timeout, so a
write that meets another waits instead of failing at once.

Nothing is opened at import time: `open_catalog` is called by the app factory and the CLI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from fitroom.errors import FitroomError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_NAME = "catalog.sqlite3"
_MIGRATION_LOCK = 0x66697472  # pg_advisory_lock key ("fitr"): one migrator at a time per server


def database_url(data_dir, url: str | None = None) -> str:
    """`url` with the psycopg 3 driver named, or SQLite in `data_dir` when None."""
    if not url:
        return f"sqlite:///{Path(data_dir).resolve() / SQLITE_NAME}"
    # `postgresql://` alone would make SQLAlchemy look for psycopg2, which is not installed.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; safe from corruption in WAL mode
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for `url` (see `database_url`); SQLite files get the pragmas above."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        # The upload job writes from its own thread: sessions are per thread, connections pooled.
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialises migrations of one database between processes (a server and a CLI started together)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with open(f"{engine.url.database}.migrate-lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        yield


def _alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Brings the schema to `revision` with Alembic (a no-op when it is there)."""
    from alembic import command

    with _migration_lock(engine), engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Takes the schema back to `revision` ("base": no tables), for operators and the migration tests."""
    from alembic import command

    with _migration_lock(engine), engine.begin() as conn:
        command.downgrade(_alembic_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


@dataclasses.dataclass
class CatalogDB:
    """The catalogue's engine and session factory."""

    engine: Engine
    sessions: sessionmaker

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        self.engine.dispose()


def open_catalog(data_dir, url: str | None = None, *, upgrade: bool = True) -> CatalogDB:
    """Opens (and by default migrates to head) the catalogue of `data_dir`, or the database at `url`.

    Raises FitroomError `database_unavailable` when the server cannot be reached.
    """
    from sqlalchemy.exc import OperationalError

    engine = make_engine(database_url(data_dir, url))
    try:
        if upgrade:
            migrate(engine)
        else:
            with engine.connect():
                pass
    except OperationalError as e:
        engine.dispose()
        where = engine.url.render_as_string(hide_password=True)
        raise FitroomError("database_unavailable", f"Cannot open the catalogue database {where}: {e.orig}") from None
    # expire_on_commit=False: rows returned by repository functions stay readable after their commit.
    return CatalogDB(engine, sessionmaker(engine, expire_on_commit=False))
