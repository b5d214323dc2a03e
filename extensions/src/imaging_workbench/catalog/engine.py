"""Engine from a URL: SQLite by default, PostgreSQL (or any SQLAlchemy URL) by configuration."""

import importlib
import os
from pathlib import Path

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from ..errors import WorkbenchError
from .migrations import ensure_schema
from .models import Base


# Modules whose tables live in the catalog database; importing one adds its tables to Base.
MODEL_MODULES = ("imaging_workbench.catalog.models", "imaging_workbench.dicom.index_models",
                 "imaging_workbench.federation.hub.job_store", "imaging_workbench.federation.hub.site_reports")


def catalog_metadata() -> MetaData:
    """Every table of the catalog, as the models declare them (the migrations must agree)."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata


def ensure_private_file(path: Path) -> None:
    """Create the SQLite file `path` empty and 0600 when it is missing (SQLite would make it 0644,
    and its -wal and -shm copy its mode); an existing one is never opened here. Closing any
    descriptor of a database file drops every POSIX lock the process holds on it, those of its open
    SQLite connections too: another process then takes the -shm for unused and resets it under
    them ("disk I/O error"), or writes beside a writer (https://sqlite.org/howtocorrupt.html, 2.2)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def sqlite_immediate(engine: Engine) -> None:
    """Take SQLite's write lock at BEGIN, so concurrent writers queue instead of failing mid-way."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_catalog_engine(url: str, audit_key_file: Path | None = None) -> Engine:
    """Connect to the catalog database at `url` and upgrade it to the newest schema revision.

    `audit_key_file` is needed only once: when a catalog of the previous release, with audit
    rows, is upgraded (see migrations.ensure_schema)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise WorkbenchError(f"database_url {url!r} is not a database URL",
                             "use sqlite:////path/file.sqlite or postgresql+psycopg://user@host/db") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            database = Path(parsed.database)
            database.parent.mkdir(parents=True, exist_ok=True)
            ensure_private_file(database)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        sqlite_immediate(engine)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    catalog_metadata()  # every model mapped before the first query, as create_all used to ensure
    try:
        ensure_schema(engine, audit_key_file)
    except OperationalError as e:
        raise WorkbenchError(f"cannot open the catalog database {parsed.render_as_string(hide_password=True)}: "
                             f"{e.orig}",
                             "check database_url in the deployment settings file and that the server runs") from None
    return engine
