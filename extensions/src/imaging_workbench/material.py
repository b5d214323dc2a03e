"""Material (shipped examples, a course's notebooks) delivered into a home without overwriting the user's changes.

As nbgitpuller does for a course's repository: each delivery records, in `MANIFEST` at the
destination, the hash of every file it delivered. At the next delivery, for each file of the source:
- missing at the destination: copied;
- as delivered last time (the user did not change it): replaced by the new version;
- changed by the user: kept; a new version (one the user's file did not start from) lands
  beside it as `name (updated).ext`, itself replaced by a later version until the user takes it
  over by changing it;
- already equal to the new version: left alone.
Files the user added, and files the material no longer has, are never touched.

It runs inside the sandbox as the sandbox's user, when their server starts (material_extension.py),
so whatever the user put in the destination (a symlink included) can only make it write where the
user could write anyway; a symlink or a folder where a file is due counts as the user's change.
"""

import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = ".workbench-material.json"
UPDATED = " (updated)"


@dataclass
class Delivery:
    """What one delivery did, each list holding paths relative to the destination."""

    copied: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    beside: list[str] = field(default_factory=list)  # new versions written next to a user's changed file
    kept: list[str] = field(default_factory=list)  # the user's versions left as they are


def _sha256(path: Path) -> str | None:
    """The file's hash, or None when `path` is not a regular file (missing, a folder, a symlink)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_manifest(dest: Path) -> dict[str, str]:
    try:
        manifest = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}  # none yet, or spoiled by hand: every differing file then counts as the user's
    if not isinstance(manifest, dict):
        return {}
    return {k: v for k, v in manifest.items() if isinstance(k, str) and isinstance(v, str)}


def beside_name(relative: str) -> str:
    """Where the new version of a file the user changed goes: `a/b (updated).ipynb` for `a/b.ipynb`."""
    path = Path(relative)
    return str(path.with_name(f"{path.stem}{UPDATED}{path.suffix}"))


def _write(source: Path, target: Path) -> None:
    """Copy `source` to `target` through a temporary file in its folder, so nothing is half-written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _place(source: Path, new: str, dest: Path, relative: str, delivered: dict) -> str | None:
    """Put `source` at `relative` if the user has not changed what is there: "copied", "updated",
    "equal", or None (the user's version is there)."""
    target = dest / relative
    mine = _sha256(target)
    if mine == new:
        outcome = "equal"
    elif not os.path.lexists(target):
        outcome = "copied"
    elif mine is not None and mine == delivered.get(relative):
        outcome = "updated"
    else:
        return None
    if outcome != "equal":
        _write(source, target)
    delivered[relative] = new
    return outcome


def deliver(source: Path, dest: Path) -> Delivery:
    """Deliver every file under `source` into `dest` by the rules above; returns what was done.

    Raises:
        FileNotFoundError: `source` is not a folder.
    """
    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        raise FileNotFoundError(f"material folder {source} does not exist")
    dest.mkdir(parents=True, exist_ok=True)
    delivered, done = _read_manifest(dest), Delivery()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = str(path.relative_to(source))
        if any(part.startswith(".") for part in Path(relative).parts):
            continue  # checkpoints and other hidden files are not material
        new = _sha256(path)
        outcome = _place(path, new, dest, relative, delivered)
        if outcome in ("copied", "updated"):
            getattr(done, outcome).append(relative)
        elif outcome is None:  # the user's version stays; a new one goes beside it, on the same terms
            done.kept.append(relative)
            if new != delivered.get(relative) and _place(path, new, dest, beside_name(relative),
                                                         delivered) in ("copied", "updated"):
                done.beside.append(beside_name(relative))
    tmp = dest / f".{MANIFEST}.partial"
    tmp.write_text(json.dumps(delivered, indent=1, sort_keys=True))
    os.replace(tmp, dest / MANIFEST)
    return done
