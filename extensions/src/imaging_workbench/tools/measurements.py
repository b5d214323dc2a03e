"""Measurements of a tool's segments on its series: size and intensity, one row per segment."""

import numpy as np

from ..dicom.volume import Volume

COLUMNS = ["number", "label", "voxels", "volume_ml", "mean", "min", "max", "unit"]


def measure(labels: np.ndarray, segments: list[dict], volume: Volume, features: bool = False):
    """Per segment: voxels, volume in ml (voxels x the voxel's mm^3 / 1000), and the mean, min and
    max of `volume.array` inside (HU for CT); NaN intensities for a segment with no voxels.

    `features=True` adds the IBSI radiomics features of `radiomics.FEATURES` computed by mirp
    (seconds per segment, so off by default); NaN for a segment with no voxels.

    Raises:
        ValueError: `labels` is not on the volume's grid (shape differs).
    """
    import pandas as pd

    if labels.shape != volume.array.shape:
        raise ValueError(f"labels shape {labels.shape} differs from the series' {volume.array.shape}")
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    unit = "HU" if volume.modality == "CT" else ""
    rows = []
    for segment in segments:
        inside = volume.array[labels == segment["number"]]
        stats = (float(inside.mean()), float(inside.min()), float(inside.max())) if inside.size else (np.nan,) * 3
        rows.append({"number": segment["number"], "label": segment["label"], "voxels": int(inside.size),
                     "volume_ml": inside.size * voxel_ml, "mean": stats[0], "min": stats[1], "max": stats[2],
                     "unit": unit})
    table = pd.DataFrame(rows, columns=COLUMNS)
    if not features:
        return table
    from .radiomics import FEATURES, radiomics_features

    present = [segment for segment, row in zip(segments, rows) if row["voxels"]]
    if not present:
        return table.reindex(columns=[*COLUMNS, *FEATURES])
    values = radiomics_features(volume, labels, present).drop(columns="label")
    return table.merge(values, on="number", how="left")
