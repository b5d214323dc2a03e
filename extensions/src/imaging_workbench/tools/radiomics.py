"""IBSI radiomics features per segment, computed by mirp (default) or pyradiomics under one configuration.

The configuration, the same for both libraries so either can check the other: the series' own grid
(no resampling), the segment as both morphological and intensity mask, a fixed bin size (`bin_width`,
25 HU by default) whose bin edges are multiples of the bin width (pyradiomics' rule; mirp is given the
re-segmentation range [lower edge, no upper bound], which drops no voxel and puts its edges at the
same place), or no discretisation (`bin_width=None`, intensities that already are grey levels, like
the IBSI digital phantom's). Texture matrices are 3D, distance 1, features per direction averaged
(IBSI "3D, averaged"). Only features both libraries compute to the IBSI definitions are offered:
`FEATURES`, one column each, named as the IBSI reference manual abbreviates them.
"""

import math
import re
import tempfile
from pathlib import Path

import numpy as np

from ..dicom.volume import Volume
from ..errors import WorkbenchError

LIBRARIES = ("mirp", "pyradiomics")
BIN_WIDTH = 25.0  # HU for CT: IBSI's configurations use it, and it gives tens of bins in a tumour

# column -> (mirp's name, pyradiomics' name); pyradiomics' kurtosis is not the excess one (see _pyradiomics).
FEATURES = {
    # morphology (mm, mm^2, mm^3)
    "morph_volume": ("morph_volume", "shape_MeshVolume"),
    "morph_vol_approx": ("morph_vol_approx", "shape_VoxelVolume"),
    "morph_area_mesh": ("morph_area_mesh", "shape_SurfaceArea"),
    "morph_sphericity": ("morph_sphericity", "shape_Sphericity"),
    "morph_diam": ("morph_diam", "shape_Maximum3DDiameter"),
    "morph_pca_elongation": ("morph_pca_elongation", "shape_Elongation"),
    "morph_pca_flatness": ("morph_pca_flatness", "shape_Flatness"),
    # intensity statistics, on the intensities themselves
    "stat_mean": ("stat_mean", "firstorder_Mean"),
    "stat_var": ("stat_var", "firstorder_Variance"),
    "stat_skew": ("stat_skew", "firstorder_Skewness"),
    "stat_kurt": ("stat_kurt", "firstorder_Kurtosis"),
    "stat_median": ("stat_median", "firstorder_Median"),
    "stat_min": ("stat_min", "firstorder_Minimum"),
    "stat_max": ("stat_max", "firstorder_Maximum"),
    "stat_range": ("stat_range", "firstorder_Range"),
    "stat_mad": ("stat_mad", "firstorder_MeanAbsoluteDeviation"),
    "stat_energy": ("stat_energy", "firstorder_Energy"),
    "stat_rms": ("stat_rms", "firstorder_RootMeanSquared"),
    # intensity histogram, on the discretised intensities
    "ih_entropy": ("ih_entropy", "firstorder_Entropy"),
    "ih_uniformity": ("ih_uniformity", "firstorder_Uniformity"),
    # grey level co-occurrence matrix
    "cm_joint_max": ("cm_joint_max_d1_3d_avg", "glcm_MaximumProbability"),
    "cm_joint_avg": ("cm_joint_avg_d1_3d_avg", "glcm_JointAverage"),
    "cm_joint_entr": ("cm_joint_entr_d1_3d_avg", "glcm_JointEntropy"),
    "cm_energy": ("cm_energy_d1_3d_avg", "glcm_JointEnergy"),
    "cm_contrast": ("cm_contrast_d1_3d_avg", "glcm_Contrast"),
    "cm_dissimilarity": ("cm_dissimilarity_d1_3d_avg", "glcm_DifferenceAverage"),
    "cm_inv_diff": ("cm_inv_diff_d1_3d_avg", "glcm_Id"),
    "cm_inv_diff_mom": ("cm_inv_diff_mom_d1_3d_avg", "glcm_Idm"),
    "cm_corr": ("cm_corr_d1_3d_avg", "glcm_Correlation"),
    # grey level run length matrix
    "rlm_sre": ("rlm_sre_3d_avg", "glrlm_ShortRunEmphasis"),
    "rlm_lre": ("rlm_lre_3d_avg", "glrlm_LongRunEmphasis"),
    "rlm_glnu": ("rlm_glnu_3d_avg", "glrlm_GrayLevelNonUniformity"),
    "rlm_rlnu": ("rlm_rlnu_3d_avg", "glrlm_RunLengthNonUniformity"),
    "rlm_r_perc": ("rlm_r_perc_3d_avg", "glrlm_RunPercentage"),
}


def radiomics_features(volume: Volume, labels: np.ndarray, segments: list[dict], library: str = "mirp",
                       bin_width: float | None = BIN_WIDTH):
    """The `FEATURES` of each segment of `labels` on `volume`: a pandas DataFrame, one row per segment
    ("number", "label", then the features).

    Args:
        volume: the series; its spacing sets the morphology's millimetres.
        labels: (z, y, x) on the volume's grid, a segment's voxels hold its number.
        segments: [{"number", "label"}], as a ToolResult has them.
        library: "mirp" or "pyradiomics".
        bin_width: the fixed bin size in the volume's unit (HU for CT); None: no discretisation, the
            intensities must be whole numbers (grey levels already).

    Raises:
        ValueError: an unknown library, labels off the volume's grid, a segment with no voxels, a
            bin width that is not positive, or no bin width for intensities that are not whole numbers.
        WorkbenchError: the library is not installed.
    """
    import pandas as pd

    if library not in LIBRARIES:
        raise ValueError(f"unknown radiomics library {library!r}: use one of {', '.join(LIBRARIES)}")
    if labels.shape != volume.array.shape:
        raise ValueError(f"labels shape {labels.shape} differs from the series' {volume.array.shape}: "
                         "features need the labels on the series' own grid (a ToolResult's labels are)")
    if bin_width is not None and not bin_width > 0:
        raise ValueError(f"bin_width must be a positive number of {volume.modality or 'intensity'} units, "
                         f"got {bin_width!r}")
    if bin_width is None and not np.array_equal(volume.array, np.round(volume.array)):
        raise ValueError("bin_width=None needs whole-number intensities (grey levels); this series has fractions: "
                         "give a bin width")
    compute = _mirp if library == "mirp" else _pyradiomics
    rows = []
    for segment in segments:
        mask = labels == segment["number"]
        if not mask.any():
            raise ValueError(f"segment {segment['number']} ({segment['label']!r}) has no voxels in the labels: "
                             "leave it out of `segments`; features of an empty region are undefined")
        rows.append({"number": segment["number"], "label": segment["label"],
                     **compute(volume.array, mask, volume.spacing, bin_width)})
    return pd.DataFrame(rows, columns=["number", "label", *FEATURES])


def _lower_edge(values: np.ndarray, width: float) -> float:
    """The lowest bin edge, pyradiomics' rule: the multiple of `width` at or below the smallest intensity."""
    return width * math.floor(float(values.min()) / width)


def _mirp(array: np.ndarray, mask: np.ndarray, spacing: tuple, bin_width: float | None) -> dict:
    """The features by mirp, from NIfTI files: mirp takes spacing from files only."""
    mirp = _import("mirp")
    import nibabel as nib

    sz, sy, sx = spacing
    affine = np.diag([sx, sy, sz, 1.0])
    width = bin_width or 1.0
    with tempfile.TemporaryDirectory() as tmp:
        image, roi = Path(tmp, "image.nii.gz"), Path(tmp, "mask.nii.gz")
        nib.save(nib.Nifti1Image(array.transpose(2, 1, 0).astype(np.float32), affine), image)
        nib.save(nib.Nifti1Image(mask.transpose(2, 1, 0).astype(np.uint8), affine), roi)
        table = mirp.extract_features(
            image=str(image), mask=str(roi), export_features=True, write_features=False,
            base_feature_families=["morphology", "statistics", "intensity_histogram", "glcm", "glrlm"],
            glcm_spatial_method="3d_average", glrlm_spatial_method="3d_average",
            base_discretisation_method="fixed_bin_size", base_discretisation_bin_width=width,
            resegmentation_method="range", resegmentation_intensity_range=[_lower_edge(array[mask], width), np.nan])[0]
    # mirp names discretised features with their bins: "ih_entropy_fbs_w25.0".
    values = {re.sub(r"_fbs_w[0-9.]+$", "", name): value for name, value in table.iloc[0].items()}
    return {column: float(values[name]) for column, (name, _) in FEATURES.items()}


def _pyradiomics(array: np.ndarray, mask: np.ndarray, spacing: tuple, bin_width: float | None) -> dict:
    """The features by pyradiomics on SimpleITK images; bin width 1 on whole numbers is no discretisation."""
    radiomics = _import("radiomics")
    import SimpleITK as sitk
    from radiomics import featureextractor

    radiomics.setVerbosity(40)  # errors only: it logs every feature class at INFO
    image, roi = sitk.GetImageFromArray(array.astype(np.float64)), sitk.GetImageFromArray(mask.astype(np.uint8))
    for item in (image, roi):
        item.SetSpacing(tuple(float(s) for s in spacing[::-1]))  # SimpleITK's order is (x, y, z)
    extractor = featureextractor.RadiomicsFeatureExtractor(
        binWidth=bin_width or 1.0, voxelArrayShift=0, symmetricalGLCM=True, distances=[1], force2D=False,
        label=1, additionalInfo=False)
    extractor.disableAllFeatures()
    wanted = {}
    for _, name in FEATURES.values():
        family, feature = name.split("_", 1)
        wanted.setdefault(family, []).append(feature)
    extractor.enableFeaturesByName(**wanted)
    result = extractor.execute(image, roi)
    out = {column: float(result[f"original_{name}"]) for column, (_, name) in FEATURES.items()}
    out["stat_kurt"] -= 3.0  # pyradiomics reports kurtosis, IBSI the excess kurtosis
    return out


def _import(name: str):
    """The radiomics library `name`, or a WorkbenchError saying how to get it."""
    try:
        return __import__(name)
    except ImportError:
        package = "pyradiomics" if name == "radiomics" else name
        raise WorkbenchError(f"the radiomics library {package} is not installed here",
                             "it is in the sandbox image; elsewhere install the workbench's `imaging` extra "
                             "(scripts/ensure_venv.sh does)") from None
