"""The automatic checks of a release request, run when it is filed; their findings are shown to
the output checkers.

Each file is checked by what it is (file_kinds): a table on its declared count columns, an ACRO
output folder by ACRO and a re-check of its frequency tables, model weights under the weights
policy, an image or archive fails (they are refused at filing already; this is the backstop).
Images wrapped in something else are looked for: in a text or table (a notebook's base64 plot, a
data: URI in a cell), in a model or office document saved as a zip. Anything else gets a finding
that no automatic check applies, so a checker never mistakes silence for a pass.
"""

import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import file_kinds
from .acro_checks import check_acro_folder
from .findings import Finding
from .table_checks import check_counts

CHUNK = 1 << 20
# What a model saved as a zip holds: torch.save's <name>/ entries, NumPy's arrays, a Keras model's
# three files. Anything else (a DICOM file beside a data.pkl, or named data/0) is no part of a model.
MODEL_ZIP_ENTRY = re.compile(r"[^/]+/(data\.pkl|byteorder|version|\.format_version|\.storage_alignment|"
                             r"\.data/version|\.data/serialization_id|data/\d+)|[^/]+\.npy|metadata\.json|"
                             r"config\.json|model\.weights\.h5")
# Base64 or data-URI starts of images that a notebook, HTML page or Markdown file can carry:
# a notebook's plot of a CT slice is an image however it is wrapped.
EMBEDDED_IMAGES = {b"data:image/": "a data: URI image", b"iVBORw0KGgo": "a base64 PNG",
                   b"/9j/4": "a base64 JPEG", b"R0lGOD": "a base64 GIF", b"SUkqA": "a base64 TIFF"}


@dataclass
class CheckPolicy:
    """What the checks hold a release to: the strictest of its datasets' terms."""

    min_count: int
    weights: str  # one of file_kinds.WEIGHTS_POLICIES
    acro_python: str

    def __post_init__(self):
        if not isinstance(self.min_count, int) or isinstance(self.min_count, bool) or self.min_count < 1:
            raise ValueError(f"CheckPolicy.min_count must be a whole number of at least 1, not {self.min_count!r}")
        if self.weights not in file_kinds.WEIGHTS_POLICIES:
            raise ValueError(f"CheckPolicy.weights must be one of {', '.join(file_kinds.WEIGHTS_POLICIES)}, "
                             f"not {self.weights!r}")


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(file_kinds.HEAD_BYTES)


def _is_zip(path: Path) -> bool:
    return _head(path)[:4] == b"PK\x03\x04"


def embedded_image(path: Path) -> str | None:
    """What image a text file carries (`a base64 PNG`), or None; read in chunks."""
    overlap = max(map(len, EMBEDDED_IMAGES))
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            window = tail + chunk
            for marker, what in EMBEDDED_IMAGES.items():
                if marker in window:
                    return what
            tail = window[-overlap:]
    return None


def _acro_folder_of(name: str, acro_folders: set[PurePosixPath]) -> PurePosixPath | None:
    """The ACRO folder `name` belongs to: its own folder, or the one above its checksums/."""
    parent = PurePosixPath(name).parent
    if parent in acro_folders:
        return parent
    if parent.name == "checksums" and parent.parent in acro_folders:
        return parent.parent
    return None


def _check_acro(folder: PurePosixPath, files: dict[str, Path], policy: CheckPolicy) -> list[Finding]:
    # The store keeps files by content, so the folder ACRO wrote is laid out again, holding only
    # this release's files of it: a file the researcher added to it is one ACRO never listed.
    prefix = "" if folder == PurePosixPath(".") else f"{folder}/"
    with tempfile.TemporaryDirectory(prefix="workbench-acro-") as scratch:
        for name, path in files.items():
            if _acro_folder_of(name, {folder}) == folder:
                target = Path(scratch, PurePosixPath(name).relative_to(folder))
                target.parent.mkdir(exist_ok=True)
                shutil.copyfile(path, target)
        return check_acro_folder(Path(scratch), prefix, policy.acro_python, policy.min_count)


def zip_entries(path: Path) -> list[tuple[str, str, str]] | None:
    """(name, kind, what) of each file in the zip at `path`, by its first bytes; None when the
    zip cannot be read (damaged, encrypted, an unknown compression)."""
    try:
        with zipfile.ZipFile(path) as z:
            entries = []
            for info in z.infolist():
                if not info.is_dir():
                    with z.open(info) as f:
                        entries.append((info.filename, *file_kinds.describe(info.filename,
                                                                              f.read(file_kinds.HEAD_BYTES))))
            return entries
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError):
        return None


def _zip_finding(name: str, path: Path, kind: str, what: str) -> Finding | None:
    """What a model or office document saved as a zip holds that it should not (None: nothing)."""
    entries = zip_entries(path)
    if entries is None:
        return Finding(name, kind, "fail", f"{what} whose contents cannot be read (damaged or encrypted), "
                       "so nobody can check what it holds")
    if kind == "weights":
        foreign = [n for n, k, _ in entries if k == "image" or not MODEL_ZIP_ENTRY.fullmatch(n)]
        if foreign:
            return Finding(name, "weights", "fail", f"{what} that also holds {_some(foreign)}: "
                           "release the model alone", {"entries": foreign})
        return None
    scans = [f"{n} ({w})" for n, k, w in entries if k == "image" and w not in file_kinds.PICTURES]
    if scans:
        return Finding(name, "embedded-image", "fail", f"holds {_some(scans)}: scans and volumes never leave "
                       "the workbench, however they are wrapped", {"entries": scans})
    pictures = [n for n, k, _ in entries if k == "image"]
    if pictures:
        return Finding(name, "embedded-image", "review", f"embeds {len(pictures)} picture(s), {_some(pictures)}: "
                       "checkers look at each, also any the document does not show", {"entries": pictures})
    return None


def _some(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _weights(name: str, what: str, policy: CheckPolicy) -> Finding:
    if policy.weights == "refuse":
        return Finding(name, "weights", "fail", f"model weights ({what}): this workbench refuses model weights "
                       "in releases (airlock.weights); release the model's evaluation as a table")
    if policy.weights == "no-weights":
        return Finding(name, "weights", "fail", f"model weights ({what}): a condition of the grant forbids "
                       "releasing them; release the model's evaluation as a table")
    return Finding(name, "weights", "review",
                   f"model weights ({what}): checkers confirm the dataset's weights policy allows releasing "
                   "them and that the model cannot reproduce any person's data (trained on enough cases; "
                   "the author's statement says how)")


def _by_kind(name: str, path: Path, kind: str, what: str, count_columns: list[str], policy: CheckPolicy,
             in_acro_folder: bool) -> list[Finding]:
    if kind in ("image", "archive"):
        return [Finding(name, kind, "fail", file_kinds.refusal(name, _head(path), policy.weights))]
    zipped = _zip_finding(name, path, kind, what) if kind in ("weights", "document") and _is_zip(path) else None
    if kind == "weights":
        return [zipped or _weights(name, what, policy)]
    if kind in ("text", "table") and (image := embedded_image(path)):
        return [Finding(name, "embedded-image", "fail",
                        f"carries {image}: images never leave the workbench, however they are wrapped; "
                        "clear the notebook's outputs or remove the image, and release its measurements as a table")]
    if in_acro_folder or kind == "acro-results":
        return [zipped] if zipped else []  # ACRO's check names every file of its folder
    if kind == "table":
        return check_counts(path, name, count_columns, policy.min_count)
    if kind == "document":
        review = Finding(name, "no-automatic-check", "review", f"no automatic check applies to {what}, and it "
                         "can embed images (scans, slices, photos): checkers open it and look at every page")
        return [zipped, review] if zipped else [review]
    return [Finding(name, "no-automatic-check", "review",
                    f"no automatic check applies to {what}: checkers read all of it "
                    "(and reject what they cannot read)")]


def check_release(files: dict[str, Path], count_columns: dict[str, list[str]],
                  policy: CheckPolicy) -> list[Finding]:
    """The findings of a release's files, in the order of `files`.

    Args:
        files: each file's name in the release (its path in the outbox, such as
            "tables/age.csv") -> its copy in the airlock's store.
        count_columns: table name -> the columns its author declares as counts.
        policy: the minimum count, weights policy and ACRO environment to check with.

    Raises:
        WorkbenchError: ACRO's environment is missing, or ACRO timed out or crashed.
    """
    described = {name: file_kinds.describe(name, _head(path)) for name, path in files.items()}
    acro_folders = {PurePosixPath(name).parent for name, (kind, _) in described.items() if kind == "acro-results"}
    findings = []
    for folder in sorted(acro_folders):
        findings += _check_acro(folder, files, policy)
    for name, path in files.items():
        kind, what = described[name]
        findings += _by_kind(name, path, kind, what, count_columns.get(name, []), policy,
                             _acro_folder_of(name, acro_folders) is not None)
    position = {name: i for i, name in enumerate(files)}
    return sorted(findings, key=lambda f: position.get(f.file, len(position)))
