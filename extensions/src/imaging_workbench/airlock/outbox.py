"""Reading a sandbox's ~/outbox from the host, once, when a release is filed.

The outbox is the researcher's to shape: a name may hold `..`, and any entry may be a symlink
to a host path (`/etc/shadow` resolves on the host, not in the sandbox) or to another user's
home. So names are checked word by word, and every folder and file is opened relative to the
one before it with O_NOFOLLOW: a symlink anywhere on the way is refused, never followed.
"""

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..catalog.access_requests import BadField
from ..errors import WorkbenchError

OUTBOX = "outbox"
MAX_NAME = 1024
MAX_DEPTH = 8
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO must not hang us


def home_volume_name(template: str, user: str) -> str:
    """The docker volume of `user`'s home, named as DockerSpawner names it (its escaping)."""
    from dockerspawner import DockerSpawner

    return template.format(username=DockerSpawner._escape(user))


def home_folder(client, template: str, user: str) -> Path:
    """Where `user`'s home volume is on this host (docker's mount point).

    Raises:
        WorkbenchError: the user has no home volume yet.
    """
    from docker.errors import NotFound

    name = home_volume_name(template, user)
    try:
        return Path(client.volumes.get(name).attrs["Mountpoint"])
    except NotFound:
        raise WorkbenchError(f"{user} has no home yet (no docker volume '{name}')",
                             "start your server, put the files in ~/outbox, and file the release again") from None


def checked_name(name) -> list[str]:
    """The words of a file name relative to the outbox.

    Raises:
        BadField: not a plain relative path inside the outbox (field "files").
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or "\0" in name or "\\" in name:
        raise BadField("files", f"{name!r} is not a file name", "name files relative to ~/outbox, e.g. tables/age.csv")
    words = name.split("/")
    if name.startswith("/") or any(w in ("", ".", "..") for w in words) or len(words) > MAX_DEPTH:
        raise BadField("files", f"{name!r} is not a path inside ~/outbox (no '..', no leading '/', "
                                f"at most {MAX_DEPTH} levels)", "name files relative to ~/outbox, e.g. tables/age.csv")
    return words


@contextmanager
def open_outbox(home: Path) -> Iterator[int]:
    """A descriptor of `home`/outbox, opened without following symlinks.

    Raises:
        WorkbenchError: there is no outbox folder (or it is a symlink).
    """
    try:
        home_fd = os.open(home, _DIR_FLAGS)
    except OSError as e:
        raise WorkbenchError(f"your home cannot be read ({os.strerror(e.errno)})",
                             "start your server, put the files in ~/outbox, and file the release again") from None
    try:
        try:
            fd = os.open(OUTBOX, _DIR_FLAGS, dir_fd=home_fd)
        except OSError as e:
            raise WorkbenchError(f"~/{OUTBOX} is missing or is not a folder ({os.strerror(e.errno)})",
                                 f"create ~/{OUTBOX} in your server and put the files to release in it") from None
    finally:
        os.close(home_fd)
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def open_file(outbox_fd: int, name: str) -> Iterator[tuple[int, int]]:
    """(descriptor, size) of the regular file `name` in the outbox; nothing on the way followed.

    Raises:
        BadField: a bad name, a symlink on the way, a missing file or not a regular file.
    """
    words = checked_name(name)
    fds = []
    try:
        parent = outbox_fd
        for word in words[:-1]:
            parent = _open_word(parent, word, _DIR_FLAGS, name)
            fds.append(parent)
        fd = _open_word(parent, words[-1], _FILE_FLAGS, name)
        fds.append(fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadField("files", f"{name} is not a regular file", "release files, not folders or devices")
        yield fd, info.st_size
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _open_word(parent: int, word: str, flags: int, name: str) -> int:
    try:
        return os.open(word, flags, dir_fd=parent)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink(parent, word):
            raise BadField("files", f"{name}: '{word}' is a symbolic link, which the airlock never follows",
                           "copy the file itself into ~/outbox") from None
        if e.errno == errno.ENOENT:
            raise BadField("files", f"{name} is not in ~/{OUTBOX}", f"put it in ~/{OUTBOX} first") from None
        raise BadField("files", f"{name} cannot be read ({os.strerror(e.errno)})") from None


def _is_symlink(parent: int, word: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(word, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def list_files(outbox_fd: int, limit: int = 500) -> list[dict]:
    """The regular files under the outbox ({name, size}), symlinks skipped, at most `limit`."""
    found: list[dict] = []

    def walk(fd: int, prefix: str, depth: int) -> None:
        for entry in sorted(os.listdir(fd)):
            if len(found) >= limit:
                return
            info = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                found.append({"name": prefix + entry, "size": info.st_size})
            elif stat.S_ISDIR(info.st_mode) and depth < MAX_DEPTH - 1:
                child = os.open(entry, _DIR_FLAGS, dir_fd=fd)
                try:
                    walk(child, f"{prefix}{entry}/", depth + 1)
                finally:
                    os.close(child)

    walk(outbox_fd, "", 0)
    return found
