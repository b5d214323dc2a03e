"""The airlock's own files, on the hub host under <state_dir>/airlock (root only):

    files/<sha256>                 every file filed, named by its content (what checkers review)
    released/<request id>/<name>   what a release let out, with SHA256SUMS (what authors download)

Files are written under a temporary name and renamed into place, so a reader never sees half a
file; the store is read by hash and the release area checked against its hashes on every read.
"""

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import WorkbenchError

CHUNK = 1 << 20
SUMS = "SHA256SUMS"


class TooLarge(WorkbenchError):
    """A file is larger than the airlock takes."""


class AirlockStore:
    """Content-addressed copies of filed files and the release area, under `root`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.files = self.root / "files"
        self.released = self.root / "released"
        for folder in (self.root, self.files, self.released):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def put(self, fd: int, max_size: int, name: str) -> tuple[str, int]:
        """Copy what `fd` reads into the store; (sha256, size).

        Raises:
            TooLarge: more than `max_size` bytes.
        """
        digest, size = hashlib.sha256(), 0
        with tempfile.NamedTemporaryFile(dir=self.files, prefix=".filing-", delete=False) as out:
            try:
                while chunk := os.read(fd, CHUNK):
                    size += len(chunk)
                    if size > max_size:
                        raise TooLarge(f"{name} is larger than the airlock's limit of {max_size} bytes",
                                       "release a summary of it, or ask an operator about airlock.max_file_size")
                    digest.update(chunk)
                    out.write(chunk)
            except BaseException:
                os.unlink(out.name)
                raise
        sha = digest.hexdigest()
        os.replace(out.name, self.files / sha)
        return sha, size

    def path(self, sha256: str) -> Path:
        path = self.files / sha256
        if len(sha256) != 64 or not path.is_file():
            raise WorkbenchError(f"the airlock's store has no file {sha256}", "file the release again")
        return path

    def release(self, request_id: int, files: dict[str, str]) -> dict[str, str]:
        """Copy `files` (name -> sha256) from the store to released/<request_id>, checking each
        copy's hash, with a SHA256SUMS; the folder appears whole or not at all. Returns the manifest."""
        final = self.released / str(request_id)
        if final.exists():  # copied by an earlier try whose catalog step failed: the same files, or refuse
            for name, sha in files.items():
                self.released_file(request_id, name, sha)
            return dict(files)
        work = Path(tempfile.mkdtemp(dir=self.released, prefix=f".{request_id}-"))
        try:
            for name, sha in files.items():
                target = work / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.path(sha), target)
                if file_sha256(target) != sha:
                    raise WorkbenchError(f"the store's copy of {name} no longer matches its hash {sha}",
                                         "the airlock's store was changed on disk: tell an operator")
            (work / SUMS).write_text("".join(f"{sha}  {name}\n" for name, sha in sorted(files.items())))
            os.rename(work, final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return dict(files)

    def released_file(self, request_id: int, name: str, sha256: str) -> Path:
        """The released copy of `name`, after checking it still has its recorded hash.

        Raises:
            WorkbenchError: missing, or changed since its release.
        """
        path = self.released / str(request_id) / name
        if not path.is_file() or file_sha256(path) != sha256:
            raise WorkbenchError(f"the released copy of {name} is missing or was changed after its release",
                                 "tell an operator: the release area must only change through the airlock")
        return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
