"""Turn what a user hands a viewer (a Volume, an array, a path, a SEG) into arrays it can send."""

from pathlib import Path

import numpy as np

from ..dicom.volume import Volume

#: Colours for segments that do not bring their own (tab10-like, readable on grey).
PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
           "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000"]


def as_volume(series) -> Volume:
    """A Volume from a Volume, a 3-D array (unit spacing, identity geometry) or a loader source.

    A loader source (a folder, a file list, or a (session, series_uid) pair) goes through
    `imaging_workbench.dicom.load_series`; its WorkbenchError subclasses propagate unchanged.

    Raises:
        ValueError: a non-3-D array.
        TypeError: anything else.
    """
    if isinstance(series, Volume):
        return series
    if isinstance(series, np.ndarray):
        if series.ndim != 3:
            raise ValueError(f"a volume array must be 3-D (z, y, x), got shape {series.shape}")
        modality = "CT" if series.dtype == np.int16 else "OT"
        return Volume(np.ascontiguousarray(series), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3), modality, "")
    if isinstance(series, (str, Path, list, tuple)):
        from ..dicom import load_series

        return load_series(series)
    raise TypeError(f"CaseViewer needs a Volume, a 3-D numpy array, a folder, a list of files or "
                    f"(session, series_uid); got {type(series).__name__}")


def display_array(array: np.ndarray) -> np.ndarray:
    """The array as the browser reads it: little-endian int16 when the values fit, else float32."""
    if array.dtype == np.int16 and array.dtype.byteorder in "=<|":
        return np.ascontiguousarray(array)
    if np.issubdtype(array.dtype, np.integer) and array.size:
        lo, hi = int(array.min()), int(array.max())
        if -32768 <= lo and hi <= 32767:
            return np.ascontiguousarray(array, dtype="<i2")
    return np.ascontiguousarray(array, dtype="<f4")


def as_labels(mask, shape: tuple[int, int, int], segments=None) -> tuple[np.ndarray, list[dict]]:
    """Validate a label mask against the volume shape; returns (uint8 labels, segment list).

    A boolean mask becomes label 1. Segments missing from `segments` get a default name and colour.

    Raises:
        ValueError: wrong shape, negative labels, or more than 255 labels.
    """
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"mask shape {mask.shape} does not match the volume's (z, y, x) shape {tuple(shape)}; "
                         "resample the mask onto the series' grid first")
    if mask.dtype == bool:
        labels = mask.astype(np.uint8)
    else:
        if not np.issubdtype(mask.dtype, np.integer):
            if not np.all(np.equal(np.mod(mask, 1), 0)):
                raise ValueError(f"mask values must be integer labels, got dtype {mask.dtype} with fractions")
        lo, hi = (int(mask.min()), int(mask.max())) if mask.size else (0, 0)
        if lo < 0 or hi > 255:
            raise ValueError(f"mask labels must lie in 0..255, got {lo}..{hi}")
        labels = mask.astype(np.uint8)
    labels = np.ascontiguousarray(labels)
    known = {int(s["number"]): s for s in (segments or [])}
    present = sorted(known) or [int(v) for v in np.unique(labels) if v]
    out = []
    for i, number in enumerate(present):
        seg = known.get(number, {})
        out.append({"number": number, "label": str(seg.get("label") or f"segment {number}"),
                    "color": _hex(seg.get("color")) or PALETTE[i % len(PALETTE)]})
    return labels, out


def _hex(color) -> str | None:
    """'#rrggbb' from a hex string or an (r, g, b) of 0..255 ints or 0..1 floats."""
    if color is None:
        return None
    if isinstance(color, str):
        return color if color.startswith("#") and len(color) == 7 else None
    rgb = [float(c) for c in list(color)[:3]]
    if all(c <= 1.0 for c in rgb):
        rgb = [c * 255 for c in rgb]
    return "#" + "".join(f"{int(round(min(max(c, 0), 255))):02x}" for c in rgb)


def axis_letters(direction: np.ndarray) -> list[str]:
    """Patient direction (L/R, P/A, S/I) in which the x, y and z voxel indices increase."""
    letters = []
    for axis in range(3):
        col = np.asarray(direction, dtype=float)[:, axis]
        k = int(np.argmax(np.abs(col)))
        letters.append(("L", "P", "S")[k] if col[k] >= 0 else ("R", "A", "I")[k])
    return letters
