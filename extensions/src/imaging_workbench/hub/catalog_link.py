"""The hub process's link to the catalog: one engine per URL, blocking work kept off the event loop."""

import asyncio
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy.orm import Session

from ..catalog.engine import create_catalog_engine


@lru_cache(maxsize=4)
def _engine(url: str):
    return create_catalog_engine(url)


@contextmanager
def catalog_session(url: str):
    with Session(_engine(url), expire_on_commit=False) as session, session.begin():
        yield session


async def in_catalog(url: str, fn, *args):
    """Run fn(session, *args) in one catalog transaction on a worker thread."""

    def work():
        with catalog_session(url) as session:
            return fn(session, *args)

    return await asyncio.to_thread(work)
