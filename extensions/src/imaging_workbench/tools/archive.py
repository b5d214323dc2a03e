"""Unpacking a bundle archive (.zip, .tar.gz, .tgz) without letting it write outside its folder.

Every member is checked before anything is written: absolute paths, `..`, links and device or
other special files are refused, naming the member. The archive is unpacked into a fresh temporary
folder the caller chooses the parent of, so a refused or broken archive leaves nothing behind.
"""

import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from .card import ToolRefused

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
HINT = "repack the bundle as plain files and folders, every path relative and inside the bundle"


def is_archive(path: Path) -> bool:
    return Path(path).is_file() and str(path).endswith(ARCHIVE_SUFFIXES)


def _checked_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    # A backslash or drive letter is a path on Windows, where a bundle may have been packed.
    if path.is_absolute() or ".." in path.parts or name[1:2] == ":":
        raise ToolRefused(f"tool bundle {archive.name}: member {name!r} points outside the bundle", HINT)


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> None:
    for info in zf.infolist():
        _checked_name(archive, info.filename)
        mode = info.external_attr >> 16
        if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ToolRefused(f"tool bundle {archive.name}: member {info.filename!r} is a link or special file",
                              HINT)


def _tar_members(archive: Path, tf: tarfile.TarFile) -> None:
    for member in tf.getmembers():
        _checked_name(archive, member.name)
        if not (member.isfile() or member.isdir()):
            raise ToolRefused(f"tool bundle {archive.name}: member {member.name!r} is a link or special file", HINT)


def unpack(archive: Path, parent: Path) -> Path:
    """Unpack `archive` into a new temporary folder under `parent`; returns that folder.

    Raises:
        ToolRefused: not a zip or gzipped tar, or a member that is absolute, climbs with `..`, or is
            a link or special file (nothing is written then).
    """
    archive, parent = Path(archive), Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=".unpack-", dir=parent))
    try:
        if str(archive).endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                _zip_members(archive, zf)
                zf.extractall(target)
        else:
            with tarfile.open(archive, "r:gz") as tf:
                _tar_members(archive, tf)
                # The "data" filter refuses the same again, in case a check above ever misses one.
                tf.extractall(target, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as e:
        shutil.rmtree(target, ignore_errors=True)
        raise ToolRefused(f"tool bundle {archive.name}: cannot be unpacked ({e})",
                          f"give a bundle folder or a {', '.join(ARCHIVE_SUFFIXES)} archive") from None
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def bundle_root(unpacked: Path) -> Path:
    """The bundle folder inside an unpacked archive: itself, or its one top folder (MONAI's
    `ModelName.zip` holds `ModelName/configs/...`)."""
    if (unpacked / "configs").is_dir():
        return unpacked
    entries = list(unpacked.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return unpacked
