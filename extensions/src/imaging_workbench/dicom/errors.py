"""Exceptions for bad DICOM input: each names the file (or series) and what is wrong with it.

All are WorkbenchError subclasses, so the CLI prints them as a message with a hint, never a
traceback. Where reading can go on (a gap in slice positions), a warning is issued instead.
"""

from pathlib import Path

from ..errors import NotFound, WorkbenchError


class DicomError(WorkbenchError):
    """Base class: a DICOM file or series cannot be read as asked. `path` names the file, if one."""

    def __init__(self, message: str, hint: str | None = None, path: str | Path | None = None):
        super().__init__(message, hint)
        self.path = Path(path) if path is not None else None


class NotDicomFile(DicomError):
    """The file is not DICOM (no preamble/DICM prefix and no parseable data set)."""


class DamagedFile(DicomError):
    """The file starts as DICOM but cannot be parsed: truncated header or pixel data, bad lengths."""


class NoPixelData(DicomError):
    """The file is DICOM but holds no Pixel Data (7FE0,0010), e.g. a structured report or a header-only file."""


class UnsupportedTransferSyntax(DicomError):
    """No installed decoder handles the file's transfer syntax (`uid` holds it)."""

    def __init__(self, message: str, hint: str | None = None, path=None, uid: str = ""):
        super().__init__(message, hint, path)
        self.uid = uid


class InconsistentSeries(DicomError):
    """The files of one series do not form one regular volume (base of the three below)."""


class MixedOrientation(InconsistentSeries):
    """Slices of one series have different ImageOrientationPatient."""


class MixedGeometry(InconsistentSeries):
    """Slices differ in Rows/Columns, PixelSpacing or pixel format, or slice spacing is irregular."""


class DuplicatePosition(InconsistentSeries):
    """Two slices sit at the same position along the slice normal."""


class MultipleSeries(DicomError):
    """A folder or file list holds more than one series and none was chosen."""


class SegReferenceMismatch(DicomError):
    """A SEG references a different series (or frame of reference, or grid) than the volume given."""


class SeriesNotFound(NotFound):
    """No series with this UID is in the index."""


class SliceGapWarning(UserWarning):
    """Slice positions have a gap (missing slices): the volume is filled with blank slices there."""


class NotASegmentation(DicomError):
    """load_segmentation was given a file that is not a DICOM SEG."""
