"""What every command and service needs: the site settings and a catalog session."""

import getpass
import os
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from sqlalchemy.orm import Session

from .catalog import audit
from .catalog.audit_key import key_file
from .catalog.engine import create_catalog_engine
from .private_state import ensure_state_dir
from .site import catalog_url, load_site


class WorkbenchContext:
    """Site settings plus a lazily opened catalog database, for one actor (who acts, for the audit)."""

    def __init__(self, site: dict | None = None, actor: str | None = None):
        self.site = site if site is not None else load_site()
        self.actor = actor or os.environ.get("WORKBENCH_ACTOR") or getpass.getuser()

    @property
    def state_dir(self) -> Path:
        return Path(self.site["state_dir"])

    @property
    def db_url(self) -> str:
        return catalog_url(self.site)

    @cached_property
    def audit_key_file(self) -> Path:
        """Where the audit trail's key is; the state directory is ours to create, other folders are not."""
        path = key_file(self.site)
        if path.parent == self.state_dir:
            try:
                ensure_state_dir(self.site)
            except OSError:
                pass  # audit_key.ensure_key names the missing folder if a key must be made there
        return path

    @cached_property
    def engine(self):
        return create_catalog_engine(self.db_url, self.audit_key_file)

    @contextmanager
    def session(self):
        """One transaction: committed when the block ends, rolled back (database unchanged) on error.

        The session carries the audit key file, so audit.record() needs no key from its callers."""
        with Session(self.engine, expire_on_commit=False, info={audit.KEY_FILE: self.audit_key_file}) as session:
            with session.begin():
                yield session
