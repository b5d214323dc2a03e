"""The service's FLARE identity: Session API calls, each in a session that is always closed.

An unclosed FLARE session once hung a process for ten minutes, so every call here goes
through `session()`, which closes in `finally`; `Follower`-style loops hold one session for
many calls through `open_session()` and close it themselves.
"""

import json
import shutil
import threading
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from ...errors import WorkbenchError
from ..settings import FederationSettings

FINISHED_PREFIX = "FINISHED"


class FlareAdmin:
    """Session API calls with the admin kit in `settings.admin_kit`."""

    def __init__(self, settings: FederationSettings):
        self.settings = settings

    def open_session(self, timeout: float = 10):
        from nvflare.fuel.flare_api.flare_api import new_secure_session

        if not self.settings.admin_kit.is_dir():
            raise WorkbenchError(f"no FLARE admin kit at {self.settings.admin_kit}",
                                 "start the federation first: 'workbench federation up'")
        try:
            return new_secure_session(self.settings.admin_user, str(self.settings.admin_kit), timeout=timeout)
        except Exception as e:  # noqa: BLE001 - FLARE raises many kinds; all mean "cannot reach the server"
            raise WorkbenchError(f"cannot reach the FLARE server at {self.settings.host}:{self.settings.admin_port}: "
                                 f"{type(e).__name__}: {e}", "start it with 'workbench federation up'") from None

    @contextmanager
    def session(self, timeout: float = 10):
        sess = self.open_session(timeout)
        try:
            yield sess
        finally:
            sess.close()

    def connected_sites(self, timeout: float = 10) -> list[str]:
        with self.session(timeout) as s:
            return sorted(c.name for c in s.get_connected_client_list())

    def submit(self, job_folder: Path) -> str:
        with self.session() as s:
            return s.submit_job(str(job_folder))

    def abort(self, flare_job_id: str) -> None:
        with self.session() as s:
            try:
                s.abort_job(flare_job_id)
            except Exception as e:  # noqa: BLE001 - a job that already ended cannot be aborted
                if "not running" not in str(e).lower():
                    raise


class SharedSession:
    """One FLARE session shared by the service's threads (a lock around each use), opened on first
    use, reopened once after an error, and closed by `close()` (the service calls it on exit).

    Reusing the session saves a TLS login (about a second) per submission and per job followed.
    """

    def __init__(self, admin: FlareAdmin):
        self.admin = admin
        self._sess = None
        self._lock = threading.RLock()

    def call(self, fn):
        """Return fn(session); on a failure, reconnect and try once more."""
        with self._lock:
            for attempt in (1, 2):
                if self._sess is None:
                    self._sess = self.admin.open_session()
                try:
                    return fn(self._sess)
                except WorkbenchError:
                    raise
                except Exception:  # noqa: BLE001 - a dropped connection: reconnect once
                    self.close()
                    if attempt == 2:
                        raise

    def close(self, wait: float = -1) -> bool:
        """Close the session; with `wait` >= 0, give up after that many seconds if another thread
        is inside a call (the service's shutdown does not wait for a server that is down).
        Returns whether it was closed."""
        if not self._lock.acquire(timeout=wait):
            return False
        try:
            if self._sess is not None:
                try:
                    self._sess.close()
                except Exception:  # noqa: BLE001
                    pass
                self._sess = None
            return True
        finally:
            self._lock.release()


def job_state(sess, flare_job_id: str) -> dict:
    """{'status': FLARE status, 'progress': controller progress or {}} for one job."""
    meta = sess.get_job_meta(flare_job_id)
    status = str(meta.get("status", "UNKNOWN"))
    progress = {}
    if status == "RUNNING":
        try:
            stats = sess.show_stats(flare_job_id, "server")
            progress = (stats.get("server") or {}).get("workbench") or {}
        except Exception:  # noqa: BLE001 - stats are best effort while the job starts or ends
            progress = {}
    return {"status": status, "progress": progress}


def download_result(sess, flare_job_id: str, dest: Path) -> Path:
    """Fetch the job's workspace and copy its workbench result folder to `dest`; returns dest."""
    from ..protocol.messages import RESULT_DIR, RESULT_FILE

    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        location = Path(sess.download_job_result(flare_job_id, destination=tmp)
                        if _accepts_destination(sess) else sess.download_job_result(flare_job_id))
        found = next((p for p in location.rglob(RESULT_FILE) if p.parent.name == RESULT_DIR), None)
        if found is None:
            for archive in location.rglob("*.zip"):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(archive.parent / archive.stem)
            found = next((p for p in location.rglob(RESULT_FILE) if p.parent.name == RESULT_DIR), None)
        if found is None:
            raise WorkbenchError(f"FLARE job {flare_job_id} left no workbench result",
                                 "see the server log in the federation workdir")
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(found.parent, dest)
    return dest


def _accepts_destination(sess) -> bool:
    import inspect

    return "destination" in inspect.signature(sess.download_job_result).parameters


def read_result(folder: Path) -> dict:
    from ..protocol.messages import RESULT_FILE

    return json.loads((Path(folder) / RESULT_FILE).read_text())
