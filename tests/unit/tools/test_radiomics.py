"""Radiomics features (tools/radiomics.py, measurements(features=True)).

Both libraries against the IBSI digital phantom's reference values (tests/data/ibsi/README.md), at
tolerances fixed here before running: the manual's tolerance where it gives one, else half a unit
of the last digit it reports. Then mirp against pyradiomics on a real synthetic CT tumour, with
the default 25 HU bins: relative difference at most 1e-5 for every feature (they implement the same
definitions on the same bins; a difference means the configurations diverged). 1e-5, not the 1e-6
first fixed: mirp keeps intensities as float32, and its kurtosis differs from pyradiomics' (float64)
by 1.7e-6 relative.
"""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from imaging_workbench.dicom.loader import load_series
from imaging_workbench.dicom.synth import generate_ct_series
from imaging_workbench.dicom.volume import Volume
from imaging_workbench.tools.inference import ToolResult
from imaging_workbench.tools.radiomics import FEATURES, radiomics_features

IBSI = Path(__file__).parents[2] / "data" / "ibsi"
CROSS_CHECK_RTOL = 1e-5


def reference_tolerance(value, tol) -> float:
    """The manual's tolerance, else half a unit of the last digit of the value as reported."""
    if tol is not None:
        return tol
    text = repr(value)
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10.0 ** -decimals


@pytest.fixture(scope="module")
def phantom():
    """The IBSI digital phantom as a Volume (2 mm voxels) and its mask as segment 1."""
    image, mask = (nib.load(IBSI / name) for name in ("phantom.nii.gz", "mask.nii.gz"))
    array = np.ascontiguousarray(np.asarray(image.dataobj).transpose(2, 1, 0))  # (x, y, z) -> (z, y, x)
    labels = np.ascontiguousarray(np.asarray(mask.dataobj).transpose(2, 1, 0)).astype(np.uint8)
    spacing = tuple(float(s) for s in image.header.get_zooms()[::-1])
    volume = Volume(array=array, spacing=spacing, origin=(0.0, 0.0, 0.0), direction=np.eye(3), modality="OT",
                    series_uid="1.2.3")
    return volume, labels


@pytest.fixture(scope="module")
def references():
    return json.loads((IBSI / "reference_values.json").read_text())["features"]


@pytest.fixture(scope="module")
def ct_tumour(tmp_path_factory):
    """A synthetic chest CT with one lung tumour: its Volume and labels (1 = tumour)."""
    made = generate_ct_series(tmp_path_factory.mktemp("ct"), shape=(16, 48, 48), region="chest",
                              tumour_organ="lung", seed=3, seg=False, keep_labels=True)
    volume = load_series(made.folder)
    tumour = made.labels >= made.labels.max()  # the tumour's label is the highest (TUMOUR_BASE + 0)
    return volume, tumour.astype(np.uint8), made


@pytest.mark.parametrize("library", ["mirp", "pyradiomics"])
def test_features_match_the_ibsi_digital_phantom_references(phantom, references, library):
    volume, labels = phantom
    row = radiomics_features(volume, labels, [{"number": 1, "label": "phantom"}], library=library,
                             bin_width=None).iloc[0]
    assert set(references) == set(FEATURES)
    off = {name: (float(row[name]), ref["value"]) for name, ref in references.items()
           if not abs(row[name] - ref["value"]) <= reference_tolerance(ref["value"], ref["tol"])}
    assert not off, f"{library} differs from the IBSI references (computed, reference): {off}"


def test_mirp_and_pyradiomics_agree_on_a_ct_tumour_with_25_hu_bins(ct_tumour):
    volume, tumour, _ = ct_tumour
    segments = [{"number": 1, "label": "tumour"}]
    by_mirp = radiomics_features(volume, tumour, segments, library="mirp").iloc[0]
    by_pyradiomics = radiomics_features(volume, tumour, segments, library="pyradiomics").iloc[0]
    off = {name: (by_mirp[name], by_pyradiomics[name]) for name in FEATURES
           if not np.isclose(by_mirp[name], by_pyradiomics[name], rtol=CROSS_CHECK_RTOL, atol=1e-9)}
    assert not off, f"mirp and pyradiomics differ (mirp, pyradiomics): {off}"
    assert by_mirp["stat_mean"] == pytest.approx(volume.array[tumour == 1].mean(), rel=1e-5)


def test_measurements_with_features_have_a_row_per_segment_and_the_feature_columns(ct_tumour):
    volume, tumour, made = ct_tumour
    result = ToolResult(labels=tumour, volume=volume, tool={"id": "t", "version": "1", "weights_sha256": "0"},
                        segments=[{"number": 1, "label": "tumour"}, {"number": 2, "label": "node"}])
    table = result.measurements(features=True)
    assert list(table["label"]) == ["tumour", "node"]
    assert set(FEATURES) <= set(table.columns)
    tumour_row, empty_row = table.iloc[0], table.iloc[1]
    assert tumour_row["morph_vol_approx"] / 1000 == pytest.approx(tumour_row["volume_ml"], rel=1e-6)
    assert tumour_row["volume_ml"] == pytest.approx(made.tumour_volumes_ml[0], rel=1e-6)
    assert tumour_row["stat_mean"] == pytest.approx(tumour_row["mean"], rel=1e-5)
    assert empty_row["voxels"] == 0 and np.isnan(empty_row["morph_volume"])
    assert list(result.measurements().columns) == ["number", "label", "voxels", "volume_ml", "mean", "min", "max",
                                                   "unit"]


def test_a_segment_without_voxels_is_refused_with_its_number(phantom):
    volume, labels = phantom
    with pytest.raises(ValueError, match=r"segment 7 \('node'\) has no voxels"):
        radiomics_features(volume, labels, [{"number": 7, "label": "node"}])


def test_labels_off_the_grid_are_refused(phantom):
    volume, labels = phantom
    with pytest.raises(ValueError, match=r"labels shape \(4, 4, 4\) differs from the series' \(4, 4, 5\)"):
        radiomics_features(volume, labels[:, :, :4], [{"number": 1, "label": "phantom"}])


def test_an_unknown_library_is_refused_naming_the_known_ones(phantom):
    volume, labels = phantom
    with pytest.raises(ValueError, match="unknown radiomics library 'pyrad': use one of mirp, pyradiomics"):
        radiomics_features(volume, labels, [{"number": 1, "label": "phantom"}], library="pyrad")


def test_no_bin_width_is_refused_for_fractional_intensities(phantom):
    volume, labels = phantom
    fractional = Volume(array=volume.array + 0.5, spacing=volume.spacing, origin=volume.origin,
                        direction=volume.direction, modality="MR", series_uid="1.2.4")
    with pytest.raises(ValueError, match="bin_width=None needs whole-number intensities"):
        radiomics_features(fractional, labels, [{"number": 1, "label": "phantom"}], bin_width=None)
