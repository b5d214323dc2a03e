"""One file's header, read once: identity, geometry, pixel format and where its pixel bytes start.

`read_header` parses a file up to (not into) its Pixel Data and records the byte offset of
the pixel value, so the loader and the index can later read pixels with one seek and one read.
"""

import os
import struct
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError

from .errors import DamagedFile, NoPixelData, NotDicomFile

PIXEL_DATA = 0x7FE00010
SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


@dataclass
class InstanceHeader:
    """What the index keeps per file; the loader needs nothing else to read the pixels."""

    path: str
    size: int = 0
    mtime_ns: int = 0
    sop_uid: str = ""
    sop_class: str = ""
    series_uid: str = ""
    study_uid: str = ""
    patient_id: str = ""
    modality: str = ""
    body_part: str = ""
    description: str = ""
    study_date: str = ""
    patient_sex: str = ""
    patient_age: str = ""
    manufacturer: str = ""
    frame_of_reference: str = ""
    transfer_syntax: str = ""
    rows: int = 0
    cols: int = 0
    n_frames: int = 1
    bits_allocated: int = 0
    bits_stored: int = 0
    pixel_representation: int = 0
    samples: int = 1
    photometric: str = ""
    slope: float = 1.0
    intercept: float = 0.0
    position: list | None = None
    orientation: list | None = None
    pixel_spacing: list | None = None
    slice_thickness: float = 0.0
    instance_number: int = 0
    pixel_offset: int = -1
    pixel_length: int = 0
    referenced_series: str = ""

    @property
    def has_pixels(self) -> bool:
        return self.pixel_offset >= 0

    @property
    def normal(self) -> np.ndarray | None:
        if not self.orientation:
            return None
        o = np.asarray(self.orientation, float)
        return np.cross(o[:3], o[3:])

    @property
    def slice_position(self) -> float:
        """Position along the slice normal (mm); 0 when the file has no plane geometry."""
        n = self.normal
        return float(np.dot(n, self.position)) if n is not None and self.position else 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> "InstanceHeader":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


def _floats(value, n: int) -> list | None:
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _enhanced_geometry(ds, h: InstanceHeader) -> None:
    """Enhanced (multi-frame) images keep geometry in functional groups: take frame 1's."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    per = ds.get("PerFrameFunctionalGroupsSequence")
    groups = [g for g in ((shared[0] if shared else None), (per[0] if per else None)) if g is not None]
    for g in groups:
        if "PlaneOrientationSequence" in g and h.orientation is None:
            h.orientation = _floats(g.PlaneOrientationSequence[0].get("ImageOrientationPatient"), 6)
        if "PlanePositionSequence" in g and h.position is None:
            h.position = _floats(g.PlanePositionSequence[0].get("ImagePositionPatient"), 3)
        if "PixelMeasuresSequence" in g and h.pixel_spacing is None:
            pm = g.PixelMeasuresSequence[0]
            h.pixel_spacing = _floats(pm.get("PixelSpacing"), 2)
            h.slice_thickness = float(pm.get("SliceThickness") or 0)
        if "PixelValueTransformationSequence" in g:
            pv = g.PixelValueTransformationSequence[0]
            h.slope, h.intercept = float(pv.get("RescaleSlope", 1) or 1), float(pv.get("RescaleIntercept", 0) or 0)


TEXT = {"sop_uid": "SOPInstanceUID", "sop_class": "SOPClassUID", "series_uid": "SeriesInstanceUID",
        "study_uid": "StudyInstanceUID", "patient_id": "PatientID", "modality": "Modality",
        "body_part": "BodyPartExamined", "description": "SeriesDescription", "study_date": "StudyDate",
        "patient_sex": "PatientSex", "patient_age": "PatientAge", "manufacturer": "Manufacturer",
        "frame_of_reference": "FrameOfReferenceUID", "photometric": "PhotometricInterpretation"}
INTS = {"rows": "Rows", "cols": "Columns", "bits_allocated": "BitsAllocated", "bits_stored": "BitsStored",
        "pixel_representation": "PixelRepresentation", "samples": "SamplesPerPixel",
        "instance_number": "InstanceNumber", "n_frames": "NumberOfFrames"}
NUMBERS = ("RescaleSlope", "RescaleIntercept", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
           "SliceThickness")
# keyword -> (tag, VR from the data dictionary: implicit VR files carry none)
_TAGS = {k: (tag_for_keyword(k), dictionary_VR(k)) for k in (*TEXT.values(), *INTS.values(), *NUMBERS)}
# Everything header_from_dataset reads: dcmread skips the values of all other top-level elements,
# which took about 15 % of a header read.
_READ_TAGS = sorted({t for t, _ in _TAGS.values()} | {tag_for_keyword(k) for k in (
    "ReferencedSeriesSequence", "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence")}
    | {PIXEL_DATA})
_BINARY = {"US": "H", "SS": "h", "UL": "I", "SL": "i"}
_STRIPPED = {"DS", "IS"}  # numbers may carry spaces on either side; other text only trailing padding


def _value(ds, keyword: str):
    """A plain element's value read straight from its raw bytes: a str, a list of str (several
    values), an int, or None when absent. pydicom converts everything else (non-ASCII text, values
    it read already, other VRs): its conversion of each value was two thirds of a header read."""
    tag, vr = _TAGS[keyword]
    raw = ds._dict.get(tag)
    if raw is None:
        return None
    if isinstance(raw, RawDataElement) and raw.value is not None:
        vr = raw.VR or vr
        data = raw.value
        if vr in _BINARY and len(data) >= 2:
            fmt = ("<" if raw.is_little_endian else ">") + _BINARY[vr]
            if len(data) == struct.calcsize(fmt):
                return struct.unpack(fmt, data)[0]
        elif vr not in _BINARY and data.isascii():
            text = data.decode("ascii")
            values = [v.strip(" \0") if vr in _STRIPPED else v.rstrip(" \0") for v in text.split("\\")]
            return values[0] if len(values) == 1 else values
    value = ds.get(keyword)
    return None if value is None else (list(value) if isinstance(value, pydicom.multival.MultiValue) else value)


def header_from_dataset(ds, path: str, size: int = 0, mtime_ns: int = 0) -> InstanceHeader:
    """Fill an InstanceHeader from a dataset read with deferred (unread) pixel data."""
    h = InstanceHeader(path=str(path), size=size, mtime_ns=mtime_ns)
    meta = getattr(ds, "file_meta", None)
    h.transfer_syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not h.transfer_syntax:
        h.transfer_syntax = "1.2.840.10008.1.2"  # no meta header: DICOM's default, implicit VR little endian
    for attr, keyword in TEXT.items():
        value = _value(ds, keyword)
        setattr(h, attr, str(value if value is not None else "") if not isinstance(value, list) else str(value))
    for attr, keyword in INTS.items():
        value = _value(ds, keyword)
        if value not in (None, ""):
            setattr(h, attr, value if isinstance(value, int) else int(float(value)))  # IS may read "12.0"
    h.slope = float(_value(ds, "RescaleSlope") or 1)
    h.intercept = float(_value(ds, "RescaleIntercept") or 0)
    h.position = _floats(_value(ds, "ImagePositionPatient"), 3)
    h.orientation = _floats(_value(ds, "ImageOrientationPatient"), 6)
    h.pixel_spacing = _floats(_value(ds, "PixelSpacing"), 2)
    h.slice_thickness = float(_value(ds, "SliceThickness") or 0)
    if h.n_frames > 1 or "PerFrameFunctionalGroupsSequence" in ds:
        _enhanced_geometry(ds, h)
    refs = ds.get("ReferencedSeriesSequence")
    if refs:
        h.referenced_series = str(refs[0].get("SeriesInstanceUID", ""))
    raw = ds._dict.get(PIXEL_DATA)
    if raw is not None:
        h.pixel_offset = int(getattr(raw, "value_tell", -1) if getattr(raw, "value_tell", None) is not None else -1)
        h.pixel_length = int(raw.length) if raw.length != 0xFFFFFFFF else max(0, size - h.pixel_offset)
    return h


def read_header(path: str | Path, require_pixels: bool = False) -> InstanceHeader:
    """Parse one file's header and locate its pixel bytes.

    Raises:
        NotDicomFile: not DICOM at all.
        DamagedFile: truncated or unparseable (including pixel data shorter than its header says).
        NoPixelData: only when `require_pixels` and the file holds no Pixel Data.
    """
    path = Path(path)
    try:
        st = os.stat(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, defer_size=256, specific_tags=_READ_TAGS)
            h = header_from_dataset(ds, str(path), st.st_size, st.st_mtime_ns)
        ends = [str(w.message) for w in caught if "end of file" in str(w.message).lower()
                or "fewer bytes" in str(w.message).lower()]
        if ends:
            raise EOFError(ends[0])
    except InvalidDicomError as e:
        raise NotDicomFile(f"{path} is not a DICOM file ({e})", "remove it from the dataset folder or ignore it",
                           path) from None
    except (EOFError, OSError, ValueError, KeyError, TypeError, NotImplementedError) as e:
        if isinstance(e, FileNotFoundError):
            raise DamagedFile(f"{path} does not exist", "re-index the dataset", path) from None
        raise DamagedFile(f"{path} is damaged or truncated: {type(e).__name__}: {e}",
                          "replace the file with an intact copy", path) from None
    if not h.sop_class and not h.sop_uid and not h.rows:
        raise NotDicomFile(f"{path} is not a DICOM file (no SOP Class, SOP Instance or image attributes)",
                           "remove it from the dataset folder or ignore it", path)
    if h.has_pixels and h.pixel_length != 0 and h.pixel_offset + h.pixel_length > h.size:
        raise DamagedFile(f"{path} is truncated: pixel data needs {h.pixel_length} bytes at offset "
                          f"{h.pixel_offset}, the file has {h.size}", "replace the file with an intact copy", path)
    if require_pixels and not h.has_pixels:
        raise NoPixelData(f"{path} has no pixel data ({h.modality or 'unknown modality'}, SOP class {h.sop_class})",
                          "load image series only; SEG/SR/RT files are read by their own functions", path)
    return h
