"""Secrets and state readable by their owner only: the state directory's layout and modes.

What lives under `state_dir` (default /var/lib/workbench/state), and the most it allows:

    path (under state_dir)                  mode                 read by
    .                                       0711                 others pass through to demo-data/, never list
    demo-data/                              left as made (a+rX)  the sandbox user (uid 1000), through docker binds
    dashboards/, tools/                     left as made (a+rX)  the sandbox user: a dashboard's pinned notebook,
                                                                 the AI tools (hub/mount_plan.py), through binds
    workbench.sqlite(-wal,-shm), audit.key, 0600                 the workbench's account (root under make up)
      demo-logins.json, jupyterhub.sqlite,
      jupyterhub_cookie_secret, *.pid
    federation/ (kits/, storage/, logs/,    folders 0700,        the workbench's account: the kits hold private
      run/, results/), also a workdir       files 0600 (*)       keys, results/ the jobs' outputs
      set elsewhere by federation.workdir
    anything else                           0700 / 0600 (*)      the workbench's account
    (*) an executable keeps its owner's x bit: the kits' start scripts are 0700.

Why 0711 and not 0700: demo-data/ is the one folder there that may hold datasets
(catalog/dataset_paths.py). Docker binds a dataset's folder itself, so a sandbox needs nothing of
the folders above it; but whatever reads the demo data by its path as another account does (a
steward's own account, a dockerd with user namespaces). Passing through without listing keeps that
working while each secret beside it is 0600 on its own. 0700 would need the demo data moved out of
the state directory (the default --out of `workbench demo-data`).

`ensure_private_state` only removes group and other bits, so a stricter mode an admin set stays.
It leaves alone what is not here: PostgreSQL's data, and an audit key file set elsewhere by
audit_key_file (audit_key.load_key refuses a loose one).
"""

import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .catalog.dataset_paths import DEMO_DATA
from .errors import WorkbenchError
from .federation.settings import federation_settings

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
PRIVATE_UMASK = 0o077
STATE_DIR = 0o711
TRAVERSE = STATE_DIR & 0o077  # group and others may pass through the state directory to the demo data


@dataclass(frozen=True)
class Change:
    """One path whose mode was tightened."""

    path: Path
    was: int
    now: int


@contextmanager
def private_umask():
    """Inside the block, new files are 0600 and new folders 0700 (the umask is per process: CLI use)."""
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def ensure_state_dir(settings: dict) -> Path:
    """The state directory, created 0711 when missing (the layout above says why)."""
    state = Path(settings["state_dir"])
    state.mkdir(mode=STATE_DIR, parents=True, exist_ok=True)
    return state


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_TRUNC) -> int:
    """os.open a file for writing, created 0600; an older file's mode is tightened to 0600 too."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return fd


def _tighten(path: Path, allowed: int = 0) -> list[Change]:
    """Clear the group and other bits of `path` that `allowed` does not keep; a symlink is left
    alone (chmod would follow it out of the tree)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:  # a running FLARE site removed it meanwhile
        return []
    was = stat.S_IMODE(mode)
    now = was & ~(0o077 & ~allowed)
    if stat.S_ISLNK(mode) or now == was:
        return []
    try:
        os.chmod(path, now)
    except PermissionError:
        hint = "run 'workbench private-state' as the state directory's owner (root for make up)"
        raise WorkbenchError(f"cannot make {path} private (mode {was:03o}): not its owner", hint) from None
    return [Change(path, was, now)]


def _tighten_tree(root: Path, root_allowed: int = 0, public: frozenset = frozenset()) -> list[Change]:
    """Everything under `root` private, except the `public` folders: those stay as they are."""
    changes = []
    for dirpath, dirnames, filenames in os.walk(root):  # top-down; symlinked folders are listed, never entered
        here = Path(dirpath)
        changes += _tighten(here, root_allowed if here == root else 0)
        dirnames[:] = [d for d in dirnames if here / d not in public]
        for name in filenames:
            changes += _tighten(here / name)
    return changes


def ensure_private_tree(root: Path) -> list[Change]:
    """Everything under `root` readable by its owner only (a startup kit: its keys and scripts)."""
    root = Path(root)
    return _tighten_tree(root.resolve()) if root.is_dir() else []


def public_folders(settings: dict) -> frozenset[Path]:
    """The folders under the state directory that the sandbox user reads: the demo data, the
    published dashboards' pinned notebooks and the AI tools."""
    from .catalog.dashboards import FOLDER as DASHBOARDS
    from .hub.mount_plan import TOOLS_FOLDER

    state = Path(settings["state_dir"]).resolve()
    return frozenset({state / DEMO_DATA, state / DASHBOARDS, state / TOOLS_FOLDER})


def ensure_private_state(settings: dict) -> list[Change]:
    """Tighten the state directory, and a federation workdir outside it, to the layout above.

    Returns each change made; none when everything was private already.
    """
    state = Path(settings["state_dir"])
    if not state.is_dir():
        return []
    state = state.resolve()
    changes = _tighten_tree(state, TRAVERSE, public_folders(settings))
    workdir = federation_settings(settings).workdir.resolve()
    if workdir.is_dir() and workdir != state and state not in workdir.parents:
        changes += _tighten_tree(workdir, 0, public_folders(settings) | {state})  # a workdir above it: state as above
    return changes
