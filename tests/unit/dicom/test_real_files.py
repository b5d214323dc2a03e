"""The real files pydicom and pydicom-data ship: our pixels equal pydicom's own decoding."""

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_rescale

from imaging_workbench.dicom import load_segmentation, load_series, read_slice
from imaging_workbench.dicom.volume import Volume

SINGLE = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm",
          "MR_small_jp2klossless.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_expb.dcm",
          "693_UNCR.dcm", "693_UNCI.dcm", "693_J2KR.dcm", "693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm",
          "MR2_UNCR.dcm", "MR2_J2KR.dcm", "bad_sequence.dcm"]
MULTIFRAME = ["emri_small.dcm", "emri_small_RLE.dcm", "emri_small_jpeg_ls_lossless.dcm",
              "emri_small_jpeg_2k_lossless.dcm", "emri_small_big_endian.dcm", "eCT_Supplemental.dcm"]


def _path(name):
    path = get_testdata_file(name)
    if path is None:
        pytest.fail(f"pydicom test file {name} is missing (install pydicom-data)")
    return path


@pytest.mark.parametrize("name", SINGLE)
def test_single_slice_files_match_pydicom(name):
    path = _path(name)
    ds = pydicom.dcmread(path)
    expected = apply_rescale(ds.pixel_array, ds)
    volume = load_series([path])
    np.testing.assert_allclose(volume.array[0], expected, rtol=1e-6)
    if ds.Modality == "CT":
        assert volume.array.dtype == np.int16
    np.testing.assert_allclose(read_slice(path, 0), expected, rtol=1e-6)


@pytest.mark.parametrize("name", MULTIFRAME)
def test_enhanced_multiframe_files_match_pydicom(name):
    path = _path(name)
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array
    volume = load_series(path)
    order = volume.meta["frames"]
    if "PerFrameFunctionalGroupsSequence" not in ds:  # the test copies of emri_small are stripped of geometry
        np.testing.assert_array_equal(volume.array, frames)
        return
    for k, frame_index in enumerate(order):
        group = ds.PerFrameFunctionalGroupsSequence[frame_index]
        shared = ds.SharedFunctionalGroupsSequence[0]
        pv = group.get("PixelValueTransformationSequence") or shared.get("PixelValueTransformationSequence")
        slope, intercept = (float(pv[0].RescaleSlope), float(pv[0].RescaleIntercept)) if pv else (1.0, 0.0)
        np.testing.assert_allclose(volume.array[k], frames[frame_index] * slope + intercept)
    positions = [volume.affine @ np.array([0, 0, k, 1]) for k in range(len(order))]
    for k, frame_index in enumerate(order):
        ipp = ds.PerFrameFunctionalGroupsSequence[frame_index].PlanePositionSequence[0].ImagePositionPatient
        assert positions[k][:3] == pytest.approx([float(v) for v in ipp], abs=1e-3)


@pytest.mark.parametrize("name", ["liver.dcm", "liver_expb.dcm"])
def test_real_seg_frames_land_on_their_slices(name):
    path = _path(name)
    ds = pydicom.dcmread(path)  # highdicom refuses big endian; pydicom reads both
    numbers = sorted(int(s.SegmentNumber) for s in ds.SegmentSequence)
    # a reference volume on the SEG's own grid: the source CT is not shipped
    positions = sorted({tuple(float(v) for v in g.PlanePositionSequence[0].ImagePositionPatient)
                        for g in ds.PerFrameFunctionalGroupsSequence}, key=lambda p: p[2])
    shared = ds.SharedFunctionalGroupsSequence[0]
    spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    dz = positions[1][2] - positions[0][2] if len(positions) > 1 else float(shared.PixelMeasuresSequence[0].SliceThickness)
    o = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    direction = np.stack([o[:3], o[3:], np.cross(o[:3], o[3:])], 1)
    ref = Volume(np.zeros((len(positions), ds.Rows, ds.Columns), np.int16), (dz, *spacing), positions[0], direction,
                 "CT", str(ds.ReferencedSeriesSequence[0].SeriesInstanceUID))
    labels, segments = load_segmentation(path, ref)
    assert [s["number"] for s in segments] == numbers
    for number in numbers:
        for k, g in enumerate(ds.PerFrameFunctionalGroupsSequence):
            if int(g.SegmentIdentificationSequence[0].ReferencedSegmentNumber) != number:
                continue
            z = float(g.PlanePositionSequence[0].ImagePositionPatient[2])
            frame = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)[k] > 0
            slice_index = [p[2] for p in positions].index(z)
            assert ((labels[slice_index] >= number) | ~frame).all()


def _header_by_pydicom(path) -> dict:
    """What read_header gives, taken through pydicom's own conversion of every value."""
    from imaging_workbench.dicom.headers import INTS, TEXT, _floats

    ds = pydicom.dcmread(path, defer_size=256)
    out = {attr: str(ds.get(keyword, "") or "") for attr, keyword in TEXT.items()}
    if "PerFrameFunctionalGroupsSequence" in ds:  # geometry comes from the functional groups afterwards
        return out | {attr: int(ds.get(keyword)) for attr, keyword in INTS.items() if ds.get(keyword) not in (None, "")}
    out.update({attr: int(ds.get(keyword)) for attr, keyword in INTS.items() if ds.get(keyword) not in (None, "")})
    out.update({"slope": float(ds.get("RescaleSlope", 1) or 1), "intercept": float(ds.get("RescaleIntercept", 0) or 0),
                "position": _floats(ds.get("ImagePositionPatient"), 3),
                "orientation": _floats(ds.get("ImageOrientationPatient"), 6),
                "pixel_spacing": _floats(ds.get("PixelSpacing"), 2), "slice_thickness": float(ds.get("SliceThickness") or 0)})
    return out


@pytest.mark.parametrize("name", [*SINGLE, *MULTIFRAME, "SC_rgb.dcm", "rtdose.dcm", "liver.dcm"])
def test_headers_read_from_raw_bytes_equal_pydicoms_conversion(name):
    # read_header takes plain values straight from their bytes (explicit and implicit VR, either
    # byte order); pydicom's conversion is the reference.
    from imaging_workbench.dicom.headers import read_header

    path = _path(name)
    header = read_header(path).as_dict()
    expected = _header_by_pydicom(path)
    assert {k: header[k] for k in expected} == expected


def test_generated_headers_in_every_transfer_syntax_equal_pydicoms_conversion(series_by_syntax):
    from imaging_workbench.dicom.headers import read_header

    for result in series_by_syntax.values():
        for path in [*result.files[:3], *([result.seg_path] if result.seg_path else [])]:
            header = read_header(path).as_dict()
            expected = _header_by_pydicom(path)
            assert {k: header[k] for k in expected} == expected, path
