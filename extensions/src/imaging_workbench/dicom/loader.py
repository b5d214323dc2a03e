"""Loading a series into a Volume, and one slice without the series.

The fast path: headers come from the index (or one header scan of the files), are checked for
one regular geometry and sorted along the slice normal, then each file's pixels go straight into
a preallocated (z, y, x) array and are rescaled in place (int16 HU for CT).
"""

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .decode import read_frames, stored_dtype
from .errors import MultipleSeries, NoPixelData, NotDicomFile
from .geometry import check_and_sort, slice_geometry
from .headers import SEG_CLASS, InstanceHeader, read_header
from .multiframe import load_multiframe
from .volume import Volume

NON_IMAGE = {"SEG", "SR", "RTSTRUCT", "PR", "KO", "RTPLAN", "RTDOSE"}


def _is_session_source(source) -> bool:
    return isinstance(source, tuple) and len(source) == 2 and hasattr(source[0], "execute")


def _files_of(source) -> tuple[list[Path], bool]:
    """(files, explicit): a folder's visible files (recursively), or the given list."""
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if folder.is_file():
            return [folder], True
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} does not exist")
        files = []
        for dirpath, dirnames, names in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            files += [Path(dirpath) / n for n in names if not n.startswith(".")]
        return sorted(files), False
    return [Path(p) for p in source], True


def _scan(source, series_uid: str | None) -> list[InstanceHeader]:
    files, explicit = _files_of(source)
    headers = []
    for path in files:
        try:
            headers.append(read_header(path))
        except NotDicomFile:
            if explicit:
                raise
            warnings.warn(f"skipping {path}: not a DICOM file", stacklevel=3)
    images = [h for h in headers if h.modality not in NON_IMAGE and h.sop_class != SEG_CLASS]
    if not images:
        if len(headers) == 1 and not headers[0].has_pixels:
            raise NoPixelData(f"{headers[0].path} has no pixel data", "give an image file", headers[0].path)
        raise NoPixelData(f"no image files with pixel data in {source}", "give a folder or files of one image series")
    uids = sorted({h.series_uid for h in images})
    if series_uid is not None:
        images = [h for h in images if h.series_uid == series_uid]
        if not images:
            raise MultipleSeries(f"series {series_uid} is not among the files given (found: {', '.join(uids)})",
                                 "pass one of the series UIDs found")
    elif len(uids) > 1:
        raise MultipleSeries(f"{len(uids)} series found in {source}: {', '.join(uids)}",
                             "pass series_uid=... to choose one, or give that series' folder")
    for h in images:
        if not h.has_pixels:
            raise NoPixelData(f"{h.path} has no pixel data", "remove it from the series", h.path)
    return images


def _fresh(headers: list[InstanceHeader]) -> list[InstanceHeader]:
    """Index rows whose file changed since indexing are re-read from the file."""
    out = []
    for h in headers:
        try:
            st = os.stat(h.path)
        except OSError:
            out.append(read_header(h.path, require_pixels=True))  # raises DamagedFile naming it
            continue
        out.append(h if (st.st_size, st.st_mtime_ns) == (h.size, h.mtime_ns) else read_header(h.path, True))
    return out


def _headers(source, series_uid=None, dataset_id=None, root=None) -> list[InstanceHeader]:
    if _is_session_source(source):
        from .index import series_headers
        session, uid = source
        return _fresh(series_headers(session, uid, dataset_id, root))
    return _scan(source, series_uid)


def _rescale(stored: np.ndarray, headers: list[InstanceHeader], modality: str) -> np.ndarray:
    """HU (int16) for CT; stored values for others unless a non-identity rescale is present (then float32)."""
    slopes = {h.slope for h in headers}
    intercepts = {h.intercept for h in headers}
    identity = slopes == {1.0} and intercepts == {0.0}
    if modality != "CT":
        return stored if identity else _float_rescale(stored, headers)
    h = headers[0]
    if len(slopes) == 1 and len(intercepts) == 1 and h.slope == 1.0 and float(h.intercept).is_integer():
        b = int(h.intercept)
        # Adding b can only overflow at one end, so one scan of the volume decides (not two).
        if stored.dtype == np.int16 and (b == 0 or (stored.min() >= -32768 - b if b < 0 else stored.max() <= 32767 - b)):
            stored += np.int16(b)
            return stored
        if stored.dtype == np.uint16 and 0 < h.bits_stored <= 15 and (1 << h.bits_stored) - 1 + b <= 32767 and b >= -32768:
            out = stored.view(np.int16)
            out += np.int16(b)
            return out
    hu = _float_rescale(stored, headers)
    if hu.min() >= -32768 and hu.max() <= 32767:
        return np.rint(hu).astype(np.int16)
    return hu


def _float_rescale(stored: np.ndarray, headers: list[InstanceHeader]) -> np.ndarray:
    out = stored.astype(np.float32)
    if len(headers) == out.shape[0]:
        for k, h in enumerate(headers):
            if (h.slope, h.intercept) != (1.0, 0.0):
                out[k] = out[k] * np.float32(h.slope) + np.float32(h.intercept)
    else:
        out = out * np.float32(headers[0].slope) + np.float32(headers[0].intercept)
    return out


def _read_all(headers: list[InstanceHeader | None], out: np.ndarray, workers: int | None) -> None:
    todo = [(k, h) for k, h in enumerate(headers) if h is not None]
    # The decoders hold the GIL: threads measured slower (RLE 0.13 vs 0.10 s), so one by default.
    workers = workers if workers is not None else 1
    if workers <= 1 or len(todo) < 4:
        for k, h in todo:
            read_frames(h, out[k:k + 1])
        return
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda kh: read_frames(kh[1], out[kh[0]:kh[0] + 1]), todo))


def load_series(source, series_uid: str | None = None, *, dataset_id: str | None = None,
                root: str | Path | None = None, workers: int | None = None) -> Volume:
    """Load one series as a Volume (z, y, x): int16 HU for CT, stored values for MR and others.

    Args:
        source: a series folder, a list of files, one multi-frame file, or (session, series_uid)
            to use the dataset index (no header scan). `root` replaces the indexed folder.
        series_uid: picks one series when the folder holds several.
        workers: decoding threads (default 1: the decoders hold the GIL, threads measured slower).
    Raises:
        NotDicomFile, DamagedFile, NoPixelData, UnsupportedTransferSyntax, MixedOrientation,
        MixedGeometry, DuplicatePosition, MultipleSeries, SeriesNotFound (see errors.py).
    Warns:
        SliceGapWarning: slices are missing; blank slices (lowest value) fill the gap.
    """
    headers = _headers(source, series_uid, dataset_id, root)
    if len(headers) == 1 and headers[0].n_frames > 1:
        return load_multiframe(headers[0])
    slots, spacing_z = check_and_sort(headers)
    first = headers[0]
    real = [h for h in slots if h is not None]
    stored = np.empty((len(slots), first.rows, first.cols), stored_dtype(first))
    if len(real) != len(slots):
        stored[:] = 0 if first.pixel_representation == 0 else np.iinfo(stored.dtype).min
    _read_all(slots, stored, workers)
    array = _rescale(stored, real if len(real) == len(slots) else [first], first.modality)
    origin, direction, pixel = slice_geometry(real[0])
    return Volume(array=np.ascontiguousarray(array), spacing=(spacing_z, pixel[0], pixel[1]), origin=origin,
                  direction=direction, modality=first.modality, series_uid=first.series_uid,
                  description=first.description, patient_id=first.patient_id,
                  meta={"files": [h.path if h else None for h in slots], "transfer_syntaxes":
                        sorted({h.transfer_syntax for h in real}), "study_uid": first.study_uid,
                        "frame_of_reference": first.frame_of_reference,
                        "sop_uids": [h.sop_uid if h else None for h in slots]})


def read_slice(source, index: int | None = None, *, dataset_id: str | None = None,
               root: str | Path | None = None) -> np.ndarray:
    """One slice (y, x), rescaled as load_series would, without reading the other slices' pixels.

    `source` is one file, a series folder, a list of files or (session, series_uid); `index`
    counts along the slice normal (default: the middle slice). For a single multi-frame file,
    `index` is the frame (sorted by position as well).
    """
    headers = _headers(source, dataset_id=dataset_id, root=root)
    if len(headers) == 1 and headers[0].n_frames > 1:
        vol = load_multiframe(headers[0])
        return vol.array[vol.array.shape[0] // 2 if index is None else index]
    if _is_session_source(source):
        slots = headers  # the index already sorted them
    else:
        slots = sorted(headers, key=lambda h: (h.slice_position, h.instance_number))
    if index is None:
        index = len(slots) // 2
    if not -len(slots) <= index < len(slots):
        raise IndexError(f"slice index {index} is outside the series' {len(slots)} slices")
    h = slots[index]
    if _is_session_source(source):
        h = _fresh([h])[0]
    stored = np.empty((1, h.rows, h.cols), stored_dtype(h))
    read_frames(h, stored)
    return _rescale(stored, [h], h.modality)[0]
