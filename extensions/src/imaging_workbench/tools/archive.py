"""Unpacking a bundle archive (.zip, .tar.gz, .tgz) without letting it write outside its folder.

Every member is checked before anything is written: absolute paths, `..`, links and device or
other special files are refused, naming the member, and so is an archive whose members add up to
more than a bundle needs (a zip or gzip bomb would fill the state directory's disk). The archive
is unpacked into a fresh temporary folder the caller chooses the parent of, so a refused or broken
archive leaves nothing behind.
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
# The largest MONAI model-zoo bundles hold about 1 GiB of weights and a few hundred files.
MAX_UNPACKED_BYTES = 8 << 30
MAX_MEMBERS = 10_000


def is_archive(path: Path) -> bool:
    return Path(path).is_file() and str(path).endswith(ARCHIVE_SUFFIXES)


def _checked_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    # A backslash or drive letter is a path on Windows, where a bundle may have been packed.
    if path.is_absolute() or ".." in path.parts or name[1:2] == ":":
        raise ToolRefused(f"tool bundle {archive.name}: member {name!r} points outside the bundle", HINT)


def _checked_size(archive: Path, sizes: list[int], max_bytes: int) -> None:
    """Refuse an archive with more members or more bytes than a bundle needs. The sizes are the
    ones each member declares; zipfile and tarfile never write more than that (a zip member
    that inflates past its declared size fails its CRC and is refused as broken)."""
    if len(sizes) > MAX_MEMBERS or sum(sizes) > max_bytes:
        raise ToolRefused(f"tool bundle {archive.name}: unpacks to {len(sizes)} files and {sum(sizes):,} bytes, "
                          f"more than the {MAX_MEMBERS} files and {max_bytes:,} bytes a bundle may hold",
                          "ship only the configs, docs and one weights file the card names")


def _zip_members(archive: Path, zf: zipfile.ZipFile, max_bytes: int) -> None:
    _checked_size(archive, [info.file_size for info in zf.infolist()], max_bytes)
    for info in zf.infolist():
        _checked_name(archive, info.filename)
        # No file type at all is a plain file: Windows tools and Python's writestr store none.
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ToolRefused(f"tool bundle {archive.name}: member {info.filename!r} is a link or special file",
                              HINT)


def _tar_members(archive: Path, tf: tarfile.TarFile, max_bytes: int) -> None:
    _checked_size(archive, [member.size for member in tf.getmembers()], max_bytes)
    for member in tf.getmembers():
        _checked_name(archive, member.name)
        if not (member.isfile() or member.isdir()):
            raise ToolRefused(f"tool bundle {archive.name}: member {member.name!r} is a link or special file", HINT)


def unpack(archive: Path, parent: Path, max_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """Unpack `archive` into a new temporary folder under `parent`; returns that folder.

    Raises:
        ToolRefused: not a zip or gzipped tar, more than MAX_MEMBERS members or `max_bytes` bytes
            unpacked, or a member that is absolute, climbs with `..`, or is a link or special file
            (nothing is written then).
    """
    archive, parent = Path(archive), Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=".unpack-", dir=parent))
    try:
        if str(archive).endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                _zip_members(archive, zf, max_bytes)
                zf.extractall(target)
        else:
            with tarfile.open(archive, "r:gz") as tf:
                _tar_members(archive, tf, max_bytes)
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
