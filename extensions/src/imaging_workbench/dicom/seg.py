"""Reading a DICOM SEG as a label volume on the grid of the series it segments."""

from pathlib import Path

import numpy as np
import pydicom

from .errors import DamagedFile, NotASegmentation, SegReferenceMismatch, SeriesNotFound
from .headers import SEG_CLASS
from .volume import Volume

DEFAULT_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]


def _seg_path(seg, session, dataset_id) -> Path:
    if isinstance(seg, Path) or (isinstance(seg, str) and ("/" in seg or seg.endswith(".dcm"))):
        return Path(seg)
    if session is None:
        raise ValueError(f"{seg!r} looks like a UID: pass session=... to find it in the index, or give a path")
    from sqlalchemy import or_, select

    from .index_models import IndexedInstance, IndexRoot

    q = select(IndexedInstance).where(IndexedInstance.sop_class == SEG_CLASS,
                                      or_(IndexedInstance.series_uid == seg, IndexedInstance.sop_uid == seg))
    if dataset_id is not None:
        q = q.where(IndexedInstance.dataset_id == dataset_id)
    row = session.scalars(q.limit(1)).first()
    if row is None:
        raise SeriesNotFound(f"no SEG with series or instance UID {seg} in the index",
                             "list a series' seg_uids with list_series(...)")
    return Path(session.get(IndexRoot, row.dataset_id).folder) / row.path


def _colour(desc, number: int) -> tuple[int, int, int]:
    lab = desc.get("RecommendedDisplayCIELabValue")
    if lab is not None:
        try:
            import highdicom as hd
            return tuple(int(c) for c in hd.color.CIELabColor.from_dicom_value(list(lab)).to_rgb())
        except Exception:  # a malformed colour is not worth failing the read
            pass
    return DEFAULT_COLOURS[(number - 1) % len(DEFAULT_COLOURS)]


def _segments(ds) -> list[dict]:
    out = []
    for desc in ds.SegmentSequence:
        number = int(desc.SegmentNumber)
        prop = desc.get("SegmentedPropertyTypeCodeSequence")
        out.append({"number": number, "label": str(desc.get("SegmentLabel", f"Segment {number}")),
                    "color": _colour(desc, number),
                    "property": str(prop[0].CodeMeaning) if prop else "",
                    "tracking_id": str(desc.get("TrackingID", ""))})
    return sorted(out, key=lambda s: s["number"])


def _check_reference(ds, reference: Volume, path: Path) -> None:
    refs = ds.get("ReferencedSeriesSequence")
    ref_uid = str(refs[0].SeriesInstanceUID) if refs else ""
    if ref_uid and ref_uid != reference.series_uid:
        raise SegReferenceMismatch(f"{path} segments series {ref_uid}, not the volume's series "
                                   f"{reference.series_uid}", "load the series the SEG references", path)
    frame = reference.meta.get("frame_of_reference")
    if frame and ds.get("FrameOfReferenceUID") and str(ds.FrameOfReferenceUID) != frame:
        raise SegReferenceMismatch(f"{path} is in frame of reference {ds.FrameOfReferenceUID}, the volume in "
                                   f"{frame}", "load the series the SEG references", path)
    if (int(ds.Rows), int(ds.Columns)) != reference.array.shape[1:]:
        raise SegReferenceMismatch(f"{path} frames are {ds.Rows}x{ds.Columns}, the volume's slices "
                                   f"{reference.array.shape[1]}x{reference.array.shape[2]}",
                                   "load the series the SEG references (or resample the SEG)", path)


def _segment_number(group, shared) -> int:
    """A frame's segment: in its own functional groups, or in the shared ones when every frame has the
    same (a one-segment SEG, as highdicom writes it)."""
    ident = group.get("SegmentIdentificationSequence") or (shared[0].get("SegmentIdentificationSequence")
                                                           if shared else None)
    return int(ident[0].ReferencedSegmentNumber)


def load_segmentation(seg, reference: Volume, session=None, dataset_id: str | None = None
                      ) -> tuple[np.ndarray, list[dict]]:
    """Label volume (same shape as reference.array) and the segments [{number, label, color, ...}].

    `seg` is a SEG file path, or a SEG series/instance UID looked up in the index (`session`).
    Each voxel holds the number of the segment covering it (0: none); where segments overlap
    (an organ around its tumour) the higher segment number wins.

    Raises:
        NotASegmentation, SegReferenceMismatch (other series, frame of reference or grid),
        DamagedFile, SeriesNotFound.
    """
    path = _seg_path(seg, session, dataset_id)
    try:
        ds = pydicom.dcmread(path)
    except Exception as e:
        raise DamagedFile(f"{path} cannot be read as DICOM: {e}", "check the path and the file", path) from None
    if str(ds.get("SOPClassUID", "")) != SEG_CLASS:
        raise NotASegmentation(f"{path} is not a DICOM SEG (SOP class {ds.get('SOPClassUID', 'missing')})",
                               "give the SEG file; load images with load_series", path)
    _check_reference(ds, reference, path)
    try:
        pixels = ds.pixel_array
    except Exception as e:
        raise DamagedFile(f"{path}: SEG pixel data cannot be decoded: {e}", "replace the file", path) from None
    pixels = pixels.reshape(-1, int(ds.Rows), int(ds.Columns))
    kind = str(ds.get("SegmentationType", "BINARY"))
    segments = _segments(ds)
    labels = np.zeros(reference.array.shape, np.uint8 if len(segments) < 256 else np.uint16)
    direction = np.asarray(reference.direction)
    origin, (dz, dy, dx) = np.asarray(reference.origin), reference.spacing
    frames = []
    shared = ds.get("SharedFunctionalGroupsSequence")
    for k, group in enumerate(ds.PerFrameFunctionalGroupsSequence):
        pos = np.asarray(group.PlanePositionSequence[0].ImagePositionPatient, float) - origin
        i, j, z = (direction.T @ pos) / np.array([dx, dy, dz])
        slice_index = int(round(z))
        if abs(i) > 0.01 or abs(j) > 0.01 or abs(z - slice_index) > 0.05 or not 0 <= slice_index < labels.shape[0]:
            raise SegReferenceMismatch(f"{path}: frame {k + 1} at {list(pos + origin)} does not lie on a slice of "
                                       f"the volume's grid", "load the series the SEG references", path)
        number = _segment_number(group, shared) if kind != "LABELMAP" else 0
        frames.append((number, slice_index, k))
    for number, slice_index, k in sorted(frames):
        frame = pixels[k]
        if kind == "LABELMAP":
            np.copyto(labels[slice_index], frame, where=frame > 0)
            continue
        inside = frame > (int(ds.get("MaximumFractionalValue", 1)) / 2 if kind == "FRACTIONAL" else 0)
        labels[slice_index][inside] = number
    return labels, segments
