"""The catalog's schema history (Alembic revisions under versions/) and `ensure_schema`, which
brings a database to the newest revision. README.md says how to add a revision."""

from functools import lru_cache
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from ...errors import WorkbenchError

HERE = Path(__file__).parent
BASELINE = "0001"     # the schema of the release before migrations
KEYED_AUDIT = "0002"  # audit rows keyed from here on; older trails are sealed when upgraded
PREVIOUS_RELEASE = "previous release"  # tables made by create_all, no alembic_version table
# What the previous release's create_all made; a database holding only some of it is not ours.
BASELINE_TABLES = frozenset({"datasets", "accounts", "grants", "server_mounts", "audit_events", "dicom_roots",
                             "dicom_instances", "dicom_series", "federated_jobs"})
_LOCK = 7202612  # PostgreSQL advisory lock: one process upgrades at a time
_at_head: set[str] = set()  # URLs this process has already seen at the newest revision


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest revision, from the file names (a revision's id is its file's number prefix),
    so the everyday check needs no Alembic import (half a second of every CLI command)."""
    return max(p.name.split("_")[0] for p in (HERE / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def alembic_config(connection: Connection | None = None):
    """Alembic's configuration for these revisions, running on `connection` (no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def current_revision(conn: Connection) -> str | None:
    """The database's revision; None for an empty database, PREVIOUS_RELEASE for one made by
    the release before migrations."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        return conn.scalar(text("SELECT version_num FROM alembic_version"))
    ours = tables & BASELINE_TABLES
    if not ours:
        return None
    if ours != BASELINE_TABLES:
        raise WorkbenchError(f"the catalog database has some of the workbench's tables but lacks "
                             f"{', '.join(sorted(BASELINE_TABLES - ours))}",
                             "point database_url at the workbench's catalog, or at an empty database")
    return PREVIOUS_RELEASE


def ensure_schema(engine: Engine, audit_key_file: Path | None = None) -> None:
    """Upgrade the catalog at `engine` to the newest revision, all in one transaction.

    An empty database gets every revision; one made by the previous release is stamped at the
    baseline first. Crossing KEYED_AUDIT with audit rows present appends the keyed row that seals
    them, so the upgrade then needs `audit_key_file` (WorkbenchError without it, nothing changed).
    Checked once per URL and process; at the newest revision it costs one or two queries."""
    url = engine.url.render_as_string(hide_password=False)
    if url in _at_head:
        return
    with engine.begin() as conn:
        if current_revision(conn) != head_revision():
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK})"))
            _upgrade(conn, current_revision(conn), audit_key_file)  # again: another process may have won
    _at_head.add(url)


def _upgrade(conn: Connection, current: str | None, audit_key_file: Path | None) -> None:
    from alembic import command

    from .. import audit

    if current not in (None, PREVIOUS_RELEASE) and current > head_revision():
        raise WorkbenchError(f"the catalog database is at schema revision {current}, newer than this "
                             f"workbench knows ({head_revision()})", "upgrade the imaging-workbench package")
    config = alembic_config(conn)
    if current == PREVIOUS_RELEASE:
        command.stamp(config, BASELINE)
        current = BASELINE
    command.upgrade(config, "head")
    if current is not None and current < KEYED_AUDIT:
        with Session(bind=conn, info={audit.KEY_FILE: audit_key_file}) as session:
            audit.seal_legacy(session)
            session.flush()
