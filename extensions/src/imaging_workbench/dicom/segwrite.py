"""Writing a DICOM SEG (highdicom) for a generated series: one segment per key organ and per tumour."""

from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from . import phantom

ORGAN_CODES = {1: codes.SCT.Lung, 2: codes.SCT.Liver, 3: codes.SCT.Kidney, 4: codes.SCT.Spleen,
               5: codes.SCT.Brain, 6: codes.SCT.Heart}
ORGAN_COLOURS = {1: "#80aeff", 2: "#dd8065", 3: "#b9664a", 4: "#9d6cb0", 5: "#f2d6b6", 6: "#cc3333"}
UID_PREFIX = "1.2.826.0.1.3680043.10.1487."  # pydicom's example root + a workbench branch
TUMOUR_COLOURS = ["#ffd700", "#00e5a0", "#ff4fd8"]


def _description(number: int, label: str, category, prop, colour: str, organ=None):
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=label, segmented_property_category=category,
        segmented_property_type=prop, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        tracking_id=label, tracking_uid=generate_uid(UID_PREFIX),
        anatomic_regions=[organ] if organ is not None else None,
        display_color=hd.color.CIELabColor.from_string(colour))


def write_seg(headers: list, labels: np.ndarray, organs, n_tumours: int, tumour_organ: str, folder: Path) -> Path:
    """Write the SEG of one series from its slice headers (slice order) and label volume.

    Organ segments include the tumours inside them (segments may overlap, as BINARY SEG allows).
    Returns the SEG file's path: folder/<SEG series UID>/<SOP UID>.dcm.
    """
    masks, descriptions = [], []
    for code in organs:
        if not (labels == code).any():
            continue
        inside = labels == code
        if code == phantom.TUMOUR_ORGAN.get(tumour_organ):
            inside |= labels >= phantom.TUMOUR_BASE
        masks.append(inside)
        descriptions.append(_description(len(masks), phantom.LABELS[code], codes.SCT.Organ, ORGAN_CODES[code],
                                         ORGAN_COLOURS[code]))
    host = ORGAN_CODES[phantom.TUMOUR_ORGAN[tumour_organ]]
    for i in range(n_tumours):
        inside = labels == phantom.TUMOUR_BASE + i
        if not inside.any():
            continue
        masks.append(inside)
        descriptions.append(_description(len(masks), f"Tumour {i + 1}", codes.SCT.MorphologicallyAbnormalStructure,
                                         codes.SCT.Neoplasm, TUMOUR_COLOURS[i % 3], organ=host))
    if not masks:
        raise ValueError("nothing to segment: the label volume is empty")
    seg_series = generate_uid(UID_PREFIX)
    ref = headers[0]
    seg = hd.seg.Segmentation(
        source_images=headers, pixel_array=np.stack(masks, axis=-1).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=seg_series, series_number=300, sop_instance_uid=generate_uid(UID_PREFIX), instance_number=1,
        manufacturer="Imaging Workbench", manufacturer_model_name="phantom", software_versions=ref.SoftwareVersions,
        device_serial_number="WB0001", content_label="PHANTOM", content_description="Organs and tumours",
        content_creator_name="Workbench^Generator", series_description=f"SEG {ref.SeriesDescription}")
    out = folder / seg_series
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{seg.SOPInstanceUID}.dcm"
    seg.save_as(path)
    return path
