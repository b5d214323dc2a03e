"""What every command and service needs: the deployment settings and a catalog session."""

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
from .deployment import catalog_url, load_settings


class WorkbenchContext:
    """The deployment settings plus a lazily opened catalog database, for one actor (who acts, for the audit)."""

    def __init__(self, settings: dict | None = None, actor: str | None = None):
        self.settings = settings if settings is not None else load_settings()
        self.actor = actor or os.environ.get("WORKBENCH_ACTOR") or getpass.getuser()

    @property
    def state_dir(self) -> Path:
        return Path(self.settings["state_dir"])

    @property
    def db_url(self) -> str:
        return catalog_url(self.settings)

    @cached_property
    def audit_key_file(self) -> Path:
        """Where the audit trail's key is; the state directory is ours to create, other folders are not."""
        path = key_file(self.settings)
        if path.parent == self.state_dir:
            try:
                ensure_state_dir(self.settings)
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
