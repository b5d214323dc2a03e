"""A tool's result as a DICOM SEG (highdicom) in the user's home, written whole or not at all.

The SEG references the instances the series was loaded from (`Volume.meta["files"]`, in slice
order, as the labels are) and says what made it: the tool's id and version in the series
description, and in the algorithm identification of every segment with the weights' SHA-256 as its
parameter. It is written to a hidden temporary file in the results folder and renamed, so a failure
(a full disk, a bad header) leaves nothing behind, and a reader never sees half a file.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import WorkbenchError

RESULTS_DIR = "tool-results"  # under the user's home
TUMOUR_WORDS = ("tumour", "tumor", "lesion", "neoplasm", "cancer", "metasta")


def default_path(result) -> Path:
    """~/tool-results/<tool id>/<series uid>.dcm, the home read when called."""
    return Path.home() / RESULTS_DIR / result.tool["id"] / f"{result.volume.series_uid}.dcm"


def source_datasets(volume) -> list:
    """The headers of the instances `volume` was loaded from, in its slice order.

    Raises:
        WorkbenchError: the volume was not loaded from single-frame files, or has missing slices.
    """
    import pydicom

    files = volume.meta.get("files") or []
    if len(files) != volume.array.shape[0] or any(f is None for f in files):
        raise WorkbenchError(f"series {volume.series_uid}: a SEG must reference one file per slice; this volume "
                             f"was loaded from {len(files)} file(s) for {volume.array.shape[0]} slices "
                             "(a multi-frame file, a series with missing slices, or an array made in memory)",
                             "load the series from its folder with load_series and run the tool on that")
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]


def _description(segment: dict, tool: dict):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    tumour = any(word in segment["label"].lower() for word in TUMOUR_WORDS)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=tool["id"], version=tool["version"], family=codes.cid7162.ArtificialIntelligence,
        parameters={"weights_sha256": tool["weights_sha256"]})
    return hd.seg.SegmentDescription(
        segment_number=segment["number"], segment_label=segment["label"][:64],
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure if tumour else codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Neoplasm if tumour else codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algorithm)


def build_seg(result, sources: list):
    """The highdicom Segmentation of `result` over its series' `sources` (slice order)."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    from .. import __version__

    tool = result.tool
    # A label map with segment numbers as values; BINARY keeps one frame per slice and segment,
    # which every viewer (and dicom.load_segmentation) reads.
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=result.labels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_description(s, tool) for s in result.segments],
        series_instance_uid=generate_uid(), series_number=900, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer="Imaging Workbench", manufacturer_model_name=tool["id"][:64], software_versions=__version__,
        device_serial_number="workbench", content_label="TOOL",
        content_description=f"{tool['id']} {tool['version']}"[:64], content_creator_name="Workbench^Tool",
        series_description=f"{tool['id']} {tool['version']}"[:64])


def write_whole(dataset, path: Path) -> Path:
    """Save `dataset` at `path` through a temporary file in the same folder, renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        dataset.save_as(tmp)
        os.replace(tmp, path)  # atomic within one file system: the old result or the new, never half
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def save_seg(result, folder: str | Path | None = None) -> Path:
    """Write `result` (a ToolResult) as a DICOM SEG; returns its path.

    Args:
        result: the tool's result on a series loaded from files.
        folder: where to write `<series uid>.dcm` (default: ~/tool-results/<tool id>/).

    Raises:
        WorkbenchError: the series' files are not known (see source_datasets); OSError when the
            folder cannot be written (nothing is left there).
    """
    path = default_path(result) if folder is None else Path(folder).expanduser() / f"{result.volume.series_uid}.dcm"
    labels = result.labels
    known = {s["number"] for s in result.segments}
    stray = sorted(set(np.unique(labels).tolist()) - known - {0})
    if stray:
        raise ValueError(f"labels {stray} are not among the tool's segments {sorted(known)}")
    return write_whole(build_seg(result, source_datasets(result.volume)), path)
