"""Enhanced (multi-frame) CT/MR: one file, geometry per frame in the functional groups."""

import dataclasses

import numpy as np
import pydicom

from .decode import read_frames, stored_dtype
from .errors import DamagedFile
from .geometry import check_and_sort, slice_geometry
from .headers import InstanceHeader
from .volume import Volume


def _frame_headers(ds, h: InstanceHeader) -> list[InstanceHeader]:
    """One pseudo-header per frame, carrying that frame's position, orientation and rescale."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared = shared[0] if shared else None
    per = ds.get("PerFrameFunctionalGroupsSequence") or [None] * h.n_frames
    out = []
    for k, group in enumerate(per):
        f = dataclasses.replace(h, instance_number=k + 1, n_frames=1)
        for g in (shared, group):
            if g is None:
                continue
            if "PlanePositionSequence" in g:
                f.position = [float(v) for v in g.PlanePositionSequence[0].ImagePositionPatient]
            if "PlaneOrientationSequence" in g:
                f.orientation = [float(v) for v in g.PlaneOrientationSequence[0].ImageOrientationPatient]
            if "PixelMeasuresSequence" in g and "PixelSpacing" in g.PixelMeasuresSequence[0]:
                f.pixel_spacing = [float(v) for v in g.PixelMeasuresSequence[0].PixelSpacing]
            if "PixelValueTransformationSequence" in g:
                pv = g.PixelValueTransformationSequence[0]
                f.slope, f.intercept = float(pv.get("RescaleSlope", 1)), float(pv.get("RescaleIntercept", 0))
        out.append(f)
    return out


def load_multiframe(h: InstanceHeader) -> Volume:
    """Load every frame of one multi-frame file as a Volume, frames sorted along the normal."""
    from .loader import _rescale

    try:
        ds = pydicom.dcmread(h.path, stop_before_pixels=True)
    except Exception as e:  # already parsed once by read_header: this is a damaged file
        raise DamagedFile(f"{h.path} cannot be re-read: {e}", "replace the file", h.path) from None
    frames = _frame_headers(ds, h)
    stored = np.empty((h.n_frames, h.rows, h.cols), stored_dtype(h))
    read_frames(h, stored)
    slots, dz = check_and_sort(frames)
    index_of = {id(f): k for k, f in enumerate(frames)}
    order = [index_of[id(f)] if f is not None else None for f in slots]
    if None in order:
        blank = np.full((1, h.rows, h.cols), np.iinfo(stored.dtype).min if h.pixel_representation else 0,
                        stored.dtype)
        stored = np.concatenate([stored[k:k + 1] if k is not None else blank for k in order])
    else:
        stored = stored[order]
    real = [f for f in slots if f is not None]
    array = _rescale(stored, real if len(real) == len(slots) else [real[0]], h.modality)
    origin, direction, pixel = slice_geometry(real[0])
    return Volume(array=np.ascontiguousarray(array), spacing=(dz, pixel[0], pixel[1]), origin=origin,
                  direction=direction, modality=h.modality, series_uid=h.series_uid, description=h.description,
                  patient_id=h.patient_id, meta={"files": [h.path], "frames": order,
                                                 "transfer_syntaxes": [h.transfer_syntax],
                                                 "frame_of_reference": h.frame_of_reference,
                                                 "study_uid": h.study_uid})
