"""Checking that a series' slices form one regular volume, and sorting them along the normal."""

import warnings
from collections import Counter

import numpy as np

from .errors import DuplicatePosition, MixedGeometry, MixedOrientation
from .headers import InstanceHeader

ORIENTATION_TOL = 1e-4  # direction cosines
SPACING_TOL = 1e-3  # mm, in-plane pixel spacing
GAP_TOL = 0.1  # a step may differ from the series' spacing by 10% before it counts as a gap


def slice_geometry(h: InstanceHeader) -> tuple[tuple, np.ndarray, tuple]:
    """(origin xyz, 3x3 direction with columns x=row dir, y=column dir, z=normal, (row, col) spacing)."""
    o = np.asarray(h.orientation if h.orientation else [1, 0, 0, 0, 1, 0], float)
    direction = np.stack([o[:3], o[3:], np.cross(o[:3], o[3:])], axis=1)
    origin = tuple(h.position) if h.position else (0.0, 0.0, 0.0)
    pixel = tuple(h.pixel_spacing) if h.pixel_spacing else (1.0, 1.0)
    return origin, direction, pixel


def _majority(headers: list[InstanceHeader], key) -> InstanceHeader:
    """A header holding the most common value of `key`, so the odd file out is the one blamed."""
    counts = Counter(key(h) for h in headers)
    common = counts.most_common(1)[0][0]
    return next(h for h in headers if key(h) == common)


def _rounded(values, digits: int):
    return tuple(round(v, digits) for v in values) if values else None


def _check_same(headers: list[InstanceHeader]) -> None:
    for name in ("rows", "cols", "bits_allocated", "pixel_representation", "samples"):
        ref = _majority(headers, lambda h: getattr(h, name))
        for h in headers:
            if getattr(h, name) != getattr(ref, name):
                raise MixedGeometry(f"{h.path}: {name} is {getattr(h, name)}, but {ref.path} has "
                                    f"{getattr(ref, name)}; one series must share one pixel grid and format",
                                    "split the series or remove the odd file", h.path)
    ref = _majority(headers, lambda h: _rounded(h.orientation, 4))
    for h in headers:
        if (h.orientation is None) != (ref.orientation is None) or (
                h.orientation and np.abs(np.subtract(h.orientation, ref.orientation)).max() > ORIENTATION_TOL):
            raise MixedOrientation(f"{h.path}: ImageOrientationPatient {h.orientation} differs from "
                                   f"{ref.orientation} in {ref.path}",
                                   "load each orientation as its own series (split by orientation)", h.path)
    ref = _majority(headers, lambda h: _rounded(h.pixel_spacing, 3))
    for h in headers:
        if h.pixel_spacing and ref.pixel_spacing and np.abs(
                np.subtract(h.pixel_spacing, ref.pixel_spacing)).max() > SPACING_TOL:
            raise MixedGeometry(f"{h.path}: PixelSpacing {h.pixel_spacing} differs from {ref.pixel_spacing} in "
                                f"{ref.path}", "split the series or resample the odd slices", h.path)


def check_and_sort(headers: list[InstanceHeader]) -> tuple[list[InstanceHeader | None], float]:
    """Sort slices along the normal and return (slots, slice spacing); None marks a missing slice.

    Raises MixedGeometry/MixedOrientation/DuplicatePosition; warns SliceGapWarning for gaps.
    """
    from .errors import SliceGapWarning

    _check_same(headers)
    if len(headers) == 1 or headers[0].position is None:
        ordered = sorted(headers, key=lambda h: h.instance_number)
        return ordered, float(headers[0].slice_thickness or 1.0)
    o = np.asarray(headers[0].orientation or [1, 0, 0, 0, 1, 0], float)
    normal = np.cross(o[:3], o[3:])  # one normal for all: _check_same made sure they agree
    along = np.array([h.position or (0.0, 0.0, 0.0) for h in headers], float) @ normal
    order = sorted(range(len(headers)), key=lambda k: (along[k], headers[k].instance_number))
    ordered = [headers[k] for k in order]
    pos = along[order]
    steps = np.diff(pos)
    for k in np.nonzero(steps < 1e-3)[0]:
        raise DuplicatePosition(f"{ordered[k].path} and {ordered[k + 1].path} are both at {pos[k]:.3f} mm along "
                                f"the slice normal", "remove the duplicate (or split repeated acquisitions "
                                "into their own series)", ordered[k + 1].path)
    spacing = float(np.median(steps))
    multiples = steps / spacing
    rounded = np.rint(multiples)
    if np.any(np.abs(multiples - rounded) > GAP_TOL * np.maximum(rounded, 1)) or np.any(rounded < 1):
        k = int(np.argmax(np.abs(multiples - rounded)))
        raise MixedGeometry(f"{ordered[k + 1].path}: slice spacing is irregular ({steps[k]:.3f} mm here, "
                            f"{spacing:.3f} mm typical); cannot place it on one grid",
                            "resample the series to a regular spacing or split it", ordered[k + 1].path)
    slots: list[InstanceHeader | None] = [ordered[0]]
    missing = []
    for k, m in enumerate(rounded.astype(int)):
        if m > 1:
            missing.append((ordered[k].path, m - 1))
            slots.extend([None] * (m - 1))
        slots.append(ordered[k + 1])
    if missing:
        where = "; ".join(f"{n} after {p}" for p, n in missing)
        warnings.warn(SliceGapWarning(f"series {ordered[0].series_uid} has missing slices ({where}); the gap is "
                                      f"filled with blank slices so the geometry stays right"), stacklevel=3)
    return slots, spacing
