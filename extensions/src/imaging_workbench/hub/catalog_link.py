"""The hub process's link to the catalog: one engine per URL, blocking work kept off the event loop."""

import asyncio
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ..catalog import audit, audit_key
from ..catalog.engine import create_catalog_engine


def default_key_file(url: str) -> Path | None:
    """The audit key beside a SQLite catalog file: where it is when the deployment settings set neither
    database_url nor audit_key_file (<state_dir>/audit.key). None for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database).parent / audit_key.FILE_NAME


@lru_cache(maxsize=4)
def _engine(url: str, key_file: Path | None):
    return create_catalog_engine(url, key_file)


@contextmanager
def catalog_session(url: str, key_file: str | Path | None = None):
    """One catalog transaction whose audit rows are keyed with `key_file` (the deployment's
    audit_key.key_file(settings)); without it, default_key_file(url), and a session with no key
    file at all can read but not record()."""
    key_file = Path(key_file) if key_file else default_key_file(url)
    with Session(_engine(url, key_file), expire_on_commit=False, info={audit.KEY_FILE: key_file}) as session, \
            session.begin():
        yield session


async def in_catalog(url: str, fn, *args, key_file: str | Path | None = None):
    """Run fn(session, *args) in one catalog transaction on a worker thread."""

    def work():
        with catalog_session(url, key_file) as session:
            return fn(session, *args)

    return await asyncio.to_thread(work)
