"""Which host folders may be a dataset: the one set of rules that registration, every index run
and every spawn apply, because a dataset folder is bind-mounted into each sandbox granted it.

A folder is judged where it really is: the path is resolved (symlinks followed, strictly) and
refused when it is `/`, a system folder, inside one or above one (`/var` holds `/var/lib/docker`),
a folder the whole host shares (`/home`, `/tmp`), or the deployment's state directory, inside it
or above it; only the `demo-data` folder the workbench writes under the state directory may hold
datasets. It must also be readable by the sandbox user, and hold no socket, FIFO or device node
anywhere inside (a bound-in `docker.sock` is the whole host).

Symlinks inside the folder are allowed and never followed: docker binds the folder as it is,
and a link in it resolves inside the container, against the container's own files, so a link
to `/run` cannot bring the host's `/run` into a sandbox. A link's own type, not its target's,
is what counts as a special file; the index reads only links that end at a regular file.
"""

import os
import stat
from pathlib import Path

from ..errors import WorkbenchError

SANDBOX_UID = 1000
# Folders of the operating system and of the container runtime, the host's sockets first (a message
# names the first that applies): refused, with everything in them and every folder above them.
SYSTEM_FOLDERS = tuple(Path(p) for p in (
    "/run", "/var/run", "/var/lib/docker", "/var/lib/containerd", "/var/lib/kubelet", "/var/lib/workbench/venv",
    "/dev", "/proc", "/sys", "/etc", "/root", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
    "/libx32", "/snap", "/lost+found", "/var/lock", "/var/log", "/var/spool", "/var/mail", "/var/backups"))
# Folders that hold everyone's things: refused themselves, while a folder of its own inside is fine.
SHARED_FOLDERS = tuple(Path(p) for p in ("/home", "/media", "/mnt", "/opt", "/srv", "/tmp", "/var/tmp"))
# The one folder under the state directory that the workbench writes datasets into (`workbench demo-data`).
DEMO_DATA = "demo-data"
OWN_FOLDER = "a dataset must be a folder of its own"
SPECIAL_KINDS = ((stat.S_ISSOCK, "a socket"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISBLK, "a block device"),
                 (stat.S_ISCHR, "a character device"))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _refuse(given: Path, resolved: Path, reason: str, hint: str) -> WorkbenchError:
    where = f"{given} resolves to {resolved}," if given != resolved else f"{given} is"
    return WorkbenchError(f"dataset folder {where} {reason}", hint)


def resolve_folder(path: str | Path) -> Path:
    """The folder `path` really is (every symlink followed); it must exist and be a folder."""
    given = Path(path).absolute()
    try:
        resolved = given.resolve(strict=True)
    except FileNotFoundError:
        raise WorkbenchError(f"dataset folder {given} does not exist",
                             "check the path, or create the data first (e.g. 'workbench demo-data')") from None
    except (OSError, RuntimeError) as e:  # a symlink loop, or a folder on the way we may not enter
        raise WorkbenchError(f"dataset folder {given} cannot be resolved: {e}",
                             "give the folder's real path, readable by this user") from None
    if not resolved.is_dir():
        raise WorkbenchError(f"dataset path {given} is not a folder", "give the folder that holds the dataset's files")
    return resolved


def _place_problem(resolved: Path, state_dir: str | Path | None) -> tuple[str, str] | None:
    """(reason, hint) when a resolved folder sits where no dataset may; None when it may."""
    elsewhere = "give the folder that holds only this dataset's files, e.g. /srv/datasets/<id>"
    if resolved == Path("/"):
        return f"the root of the host's file system: {OWN_FOLDER}", elsewhere
    for system in SYSTEM_FOLDERS:
        if _inside(resolved, system):
            where = "a system folder" if resolved == system else f"inside the system folder {system}"
            return f"{where}: {OWN_FOLDER}", elsewhere + "; copy the data out of the system folder"
    for system in SYSTEM_FOLDERS:
        if resolved in system.parents:
            return f"a folder above the system folder {system}: {OWN_FOLDER}", elsewhere
    if resolved in SHARED_FOLDERS:
        return f"a folder the whole host shares: {OWN_FOLDER}", elsewhere + ", not the shared folder itself"
    if state_dir is not None:
        state = Path(state_dir).absolute().resolve()
        keep_out = (f"keep datasets outside the state directory {state} (its databases and keys must never reach "
                    f"a sandbox); only {state / DEMO_DATA}, where 'workbench demo-data' writes, may hold them")
        if resolved == state:
            return f"the deployment's state directory: {OWN_FOLDER}", keep_out
        if resolved in state.parents:
            return f"a folder above the deployment's state directory {state}: {OWN_FOLDER}", keep_out
        if state in resolved.parents and not _inside(resolved, state / DEMO_DATA):
            return f"inside the deployment's state directory {state}: {OWN_FOLDER}", keep_out
    return None


def _check_readable(given: Path, resolved: Path) -> None:
    if not os.access(resolved, os.R_OK | os.X_OK):
        raise WorkbenchError(f"dataset folder {given} is not readable here",
                             f"fix its permissions: chmod -R a+rX {resolved}")
    mode = resolved.stat()
    if not (mode.st_mode & stat.S_IROTH and mode.st_mode & stat.S_IXOTH) and mode.st_uid != SANDBOX_UID:
        raise WorkbenchError(f"dataset folder {given} is not readable by the sandbox user (uid {SANDBOX_UID})",
                             f"make it world-readable: chmod -R a+rX {resolved}")


def check_place(path: str | Path, state_dir: str | Path | None) -> Path:
    """Resolve `path` and check where it is and that the sandbox may read it; no walk, so cheap.

    `state_dir` is the deployment settings' `state_dir`; None only where a caller has none (the state
    directory rule is then skipped). Returns the resolved folder.

    Raises:
        WorkbenchError: missing, not a folder, in a refused place, or unreadable.
    """
    given = Path(path).absolute()
    resolved = resolve_folder(given)
    problem = _place_problem(resolved, state_dir)
    if problem:
        raise _refuse(given, resolved, *problem)
    _check_readable(given, resolved)
    return resolved


def check_registered(registered: str | Path, state_dir: str | Path | None) -> Path:
    """check_place for a catalogued folder (spawn, index run), which must also still resolve to
    the path registered: a folder on the way swapped for a symlink since is refused."""
    resolved = check_place(registered, state_dir)
    if resolved != Path(registered):
        raise WorkbenchError(f"dataset folder {registered} now resolves to {resolved}, not the folder registered",
                             "a folder on its path was replaced by a symlink: put the folder back, or register "
                             "the dataset again at its real path")
    return resolved


def _special(entry: os.DirEntry) -> str | None:
    """What kind of special file `entry` is itself (a symlink is not one), or None."""
    if entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False) or entry.is_symlink():
        return None
    mode = entry.stat(follow_symlinks=False).st_mode
    return next((kind for test, kind in SPECIAL_KINDS if test(mode)), "a special file")


def walk_files(folder: str | Path, given: str | Path | None = None):
    """Yield (relative path, os.stat_result) of each regular file under `folder`, hidden ones
    excepted, while checking every entry, hidden ones included, for special files.

    A symlink is yielded only when it ends at a regular file (its target's stat); one to a
    folder, a FIFO or nothing is passed over. `given` is how the caller named the folder.

    Raises:
        WorkbenchError: a socket, FIFO or device node inside, or a subfolder that cannot be read.
    """
    top = Path(folder)
    given = Path(given) if given is not None else top
    pending = [(top, "", False)]
    while pending:
        here, rel, hidden = pending.pop()
        try:
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError as e:
            raise WorkbenchError(f"dataset folder {given}: cannot read {here} to check it: {e.strerror}",
                                 f"make it readable: chmod -R a+rX {top}") from None
        for entry in entries:
            name = os.path.join(rel, entry.name) if rel else entry.name
            skip = hidden or entry.name.startswith(".")
            kind = _special(entry)
            if kind:
                raise WorkbenchError(f"dataset folder {given} holds {kind} at {top / name}: it would reach "
                                     f"every sandbox granted the dataset",
                                     "remove it, or register a subfolder that holds only the dataset's files")
            if entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), name, skip))
            elif not skip:
                try:
                    st = entry.stat()
                except OSError:
                    continue  # a dangling link: nothing to index, nothing a sandbox could open
                if stat.S_ISREG(st.st_mode):
                    yield name, st


def check_contents(folder: str | Path, given: str | Path | None = None) -> None:
    """Walk `folder` for special files (see walk_files)."""
    for _ in walk_files(folder, given):
        pass


def check_new_folder(path: str | Path, state_dir: str | Path | None) -> Path:
    """check_place, then the walk for special files: what registering a folder needs.
    Returns the resolved folder, the path to store."""
    resolved = check_place(path, state_dir)
    check_contents(resolved, Path(path).absolute())
    return resolved
