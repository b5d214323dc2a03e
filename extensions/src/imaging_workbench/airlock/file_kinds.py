"""What a file in a release is (a table, ACRO's results, model weights, an image, ...), and
whether it may never leave.

The content decides before the name: a DICOM file renamed `table.csv` is an image, a torch
checkpoint renamed `notes.txt` is weights. The name decides only when the content has no
signature (ONNX, a CSV, a text). Callers pass the file's first HEAD_BYTES bytes.
"""

import zlib
from pathlib import PurePosixPath

# Enough for every signature read here: DICOM's at 128, NIfTI-1's at 344, and a gzip'd NIfTI's
# header after decompressing what the first compressed bytes hold.
HEAD_BYTES = 64 * 1024

KINDS = ("table", "acro-results", "weights", "image", "archive", "document", "text", "other")
# Picture formats a report or office document may show; every other image format is a scan or volume.
PICTURES = {"PNG", "JPEG", "GIF", "TIFF", "BigTIFF", "BMP", "WebP", "SVG", "HEIC/AVIF", "JPEG 2000", "JPEG XL"}
# "review": output checkers decide; "refuse": the site's airlock.weights refuses them;
# "no-weights": a condition of the researcher's grant forbids them.
WEIGHTS_POLICIES = ("review", "refuse", "no-weights")

_IMAGE_EXTENSIONS = {
    ".dcm": "DICOM", ".dicom": "DICOM", ".ima": "DICOM", ".nii": "NIfTI", ".nii.gz": "NIfTI",
    ".hdr": "Analyze", ".img": "Analyze", ".mgh": "FreeSurfer", ".mgz": "FreeSurfer", ".mnc": "MINC",
    ".nrrd": "NRRD", ".nhdr": "NRRD", ".mha": "MetaImage", ".mhd": "MetaImage", ".png": "PNG",
    ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
    ".webp": "WebP", ".svg": "SVG", ".jp2": "JPEG 2000", ".j2k": "JPEG 2000", ".heic": "HEIC",
    ".avif": "AVIF", ".npy": "NumPy array",
}
_WEIGHTS_EXTENSIONS = {".pt", ".pth", ".ckpt", ".safetensors", ".onnx", ".h5", ".hdf5", ".keras", ".pkl",
                       ".pickle", ".joblib", ".npz"}
_ARCHIVE_EXTENSIONS = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar"}
_DOCUMENT_EXTENSIONS = {".pdf", ".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp", ".doc", ".xls", ".ppt"}
_TABLE_EXTENSIONS = {".csv", ".tsv"}
_TEXT_EXTENSIONS = {".txt", ".md", ".json", ".html", ".htm", ".ipynb", ".log", ".yaml", ".yml", ".xml",
                    ".tex", ".rst", ".py", ".r"}

# (signature, offset, what): fixed bytes at a fixed place.
_IMAGE_MAGIC = [
    (b"DICM", 128, "DICOM"), (b"\x89PNG\r\n\x1a\n", 0, "PNG"), (b"\xff\xd8\xff", 0, "JPEG"),
    (b"GIF87a", 0, "GIF"), (b"GIF89a", 0, "GIF"), (b"II*\x00", 0, "TIFF"), (b"MM\x00*", 0, "TIFF"),
    (b"II+\x00", 0, "BigTIFF"), (b"MM\x00+", 0, "BigTIFF"), (b"NRRD000", 0, "NRRD"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG 2000"), (b"\xff\x4f\xff\x51", 0, "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "JPEG XL"),
    (b"\x93NUMPY", 0, "NumPy array"), (b"ObjectType", 0, "MetaImage"),
]
_ARCHIVE_MAGIC = [
    (b"ustar", 257, "tar"), (b"7z\xbc\xaf\x27\x1c", 0, "7-Zip"), (b"Rar!\x1a\x07", 0, "RAR"),
    (b"\xfd7zXZ\x00", 0, "xz"), (b"\x28\xb5\x2f\xfd", 0, "zstd"),
]
_DICOM_VRS = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB", b"OD",
              b"OF", b"OL", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"TM", b"UC", b"UI", b"UL",
              b"UN", b"UR", b"US", b"UT"}


def _extension(name: str) -> str:
    lower = PurePosixPath(name).name.lower()
    return ".nii.gz" if lower.endswith(".nii.gz") else PurePosixPath(lower).suffix


def _nifti(head: bytes) -> str | None:
    for order in ("little", "big"):
        size = int.from_bytes(head[:4], order)
        if size == 348 and len(head) >= 348:
            return "NIfTI-1" if head[344:348] in (b"n+1\x00", b"ni1\x00") else "Analyze"
        if size == 540 and head[4:8] in (b"n+2\x00", b"ni2\x00"):
            return "NIfTI-2"
    return None


def _dicom_without_preamble(head: bytes) -> bool:
    # Some writers drop the 128-byte preamble: the file starts with a little-endian tag of group
    # 0002 or 0008, then an explicit VR or an implicit 32-bit length. No text starts with 0x02/0x08.
    if len(head) < 8 or head[:2] not in (b"\x02\x00", b"\x08\x00"):
        return False
    return head[4:6] in _DICOM_VRS or int.from_bytes(head[4:8], "little") < 0x10000


def _bmp(head: bytes) -> bool:
    # "BM" alone would catch a CSV whose header starts with BMI; a BMP also has zero reserved bytes
    # and a known DIB header size.
    return (len(head) >= 18 and head[:2] == b"BM" and head[6:10] == b"\x00" * 4
            and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124))


def _svg(head: bytes) -> bool:
    start = head[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<?xml", b"<svg", b"<!doctype svg")) and b"<svg" in start


def _safetensors(head: bytes) -> bool:
    size = int.from_bytes(head[:8], "little")
    return len(head) > 10 and 2 <= size < 100_000_000 and head[8:9] == b"{" and b'"data_offsets"' in head[8:8 + size]


def _zip_kind(name: str, head: bytes) -> tuple[str, str]:
    first = head[30:30 + int.from_bytes(head[26:28], "little")]
    extension = _extension(name)
    if first.endswith(b"data.pkl") or b"/data.pkl" in head or b".data/version" in head:
        return "weights", "a PyTorch checkpoint"
    if extension in (".npz", ".keras") or first.endswith(b".npy") or b"model.weights.h5" in head:
        return "weights", "NumPy arrays or a Keras model"
    if first in (b"[Content_Types].xml", b"mimetype") or extension in _DOCUMENT_EXTENSIONS:
        return "document", "an office document"
    return "archive", "a zip archive"


def _gzip_kind(name: str, head: bytes) -> tuple[str, str]:
    try:
        inner = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, HEAD_BYTES)
    except zlib.error:
        inner = b""
    if inner[:2] == b"\x1f\x8b":  # gzip in gzip: an archive, and no recursion an attacker could nest deep
        return "archive", "a gzip'd file"
    found = _content(PurePosixPath(name).stem, inner)
    if found and found[0] == "image":
        return "image", f"gzip'd {found[1]}"
    return "archive", "a gzip'd file"


def _content(name: str, head: bytes) -> tuple[str, str] | None:
    """(kind, what) from the bytes alone, or None when they carry no signature."""
    for magic, offset, what in _IMAGE_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return "image", what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "WebP"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypavif", b"ftypmif1"):
        return "image", "HEIC/AVIF"
    if _safetensors(head):
        return "weights", "safetensors"
    nifti = _nifti(head)
    if nifti:
        return "image", nifti
    if _dicom_without_preamble(head):
        return "image", "DICOM"
    if _bmp(head):
        return "image", "BMP"
    if _svg(head):
        return "image", "SVG"
    if head[:4] == b"PK\x03\x04":
        return _zip_kind(name, head)
    if head[:2] == b"\x1f\x8b":
        return _gzip_kind(name, head)
    for magic, offset, what in _ARCHIVE_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return "archive", what
    if head[:3] == b"BZh" and head[4:10] == b"\x31\x41\x59\x26\x53\x59":
        return "archive", "bzip2"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "weights", "a Python pickle"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "weights", "HDF5"
    if head[:5] == b"%PDF-":
        return "document", "PDF"
    if head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "document", "an old Office document"
    return None


def describe(name: str, head: bytes) -> tuple[str, str]:
    """(kind, what it is in words) of the file `name` whose first bytes are `head`."""
    found = _content(name, head)
    if found:
        return found
    extension = _extension(name)
    if extension in _IMAGE_EXTENSIONS:
        return "image", _IMAGE_EXTENSIONS[extension]
    if extension in _WEIGHTS_EXTENSIONS:
        return "weights", f"a {extension} model file"
    if extension in _ARCHIVE_EXTENSIONS:
        return "archive", f"a {extension} archive"
    if extension in _DOCUMENT_EXTENSIONS:
        return "document", extension[1:].upper()
    if extension in _TABLE_EXTENSIONS:
        return "table", extension[1:].upper()
    if PurePosixPath(name).name == "results.json":
        return "acro-results", "ACRO's results"
    if extension in _TEXT_EXTENSIONS or (b"\x00" not in head and _utf8(head)):
        return "text", "text"
    return "other", "an unrecognised binary file"


def _utf8(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3  # a character cut by the end of the head
    return True


def kind_of(name: str, head: bytes) -> str:
    """One of KINDS for the file `name` whose first bytes (HEAD_BYTES of them) are `head`."""
    return describe(name, head)[0]


def refusal(name: str, head: bytes, weights_policy: str) -> str | None:
    """Why the file `name` may never leave, or None when the checks and checkers may decide.

    Images (DICOM, NIfTI, photos, plots) always; archives and compressed files, since the airlock
    checks files one by one and an archive would carry anything past it; model weights when
    `weights_policy` is "refuse" or "no-weights".

    Raises:
        ValueError: `weights_policy` is not one of WEIGHTS_POLICIES.
    """
    if weights_policy not in WEIGHTS_POLICIES:
        raise ValueError(f"weights_policy must be one of {', '.join(WEIGHTS_POLICIES)}, not {weights_policy!r}")
    kind, what = describe(name, head)
    if kind == "image":
        return (f"{name} is an image ({what}): images, DICOM and NIfTI never leave the workbench; "
                "release the measurements you made from it as a table instead")
    if kind == "archive":
        return (f"{name} is {what}: the airlock checks each file on its own; "
                "put the files themselves, uncompressed, in ~/outbox")
    if kind == "weights" and weights_policy == "refuse":
        return (f"{name} is model weights ({what}), and this workbench refuses model weights in releases "
                "(airlock.weights); release the model's evaluation as a table, or ask an operator")
    if kind == "weights" and weights_policy == "no-weights":
        return (f"{name} is model weights ({what}), and a condition of your access to the dataset forbids "
                "releasing them; release the model's evaluation as a table instead")
    return None
