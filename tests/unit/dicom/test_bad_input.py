"""Bad input: each case raises its own documented exception naming the file, or warns (a gap)."""

import numpy as np
import pydicom
import pytest

from imaging_workbench.dicom import load_segmentation, load_series
from imaging_workbench.dicom.errors import (DamagedFile, DuplicatePosition, MixedGeometry, MixedOrientation,
                                            MultipleSeries, NoPixelData, NotASegmentation, NotDicomFile,
                                            SegReferenceMismatch, SliceGapWarning, UnsupportedTransferSyntax)
from imaging_workbench.errors import WorkbenchError


def _sorted_files(folder):
    files = sorted(folder.iterdir())
    return sorted(files, key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))


def _edit(path, **attrs):
    ds = pydicom.dcmread(path)
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.save_as(path)


def test_missing_slices_warn_and_are_filled_so_geometry_stays_right(copy_series, ct_series):
    folder = copy_series(ct_series)
    full = load_series(ct_series.folder)
    files = _sorted_files(folder)
    files[5].unlink()
    with pytest.warns(SliceGapWarning, match="missing slices"):
        volume = load_series(folder)
    assert volume.array.shape == full.array.shape and volume.spacing == pytest.approx(full.spacing)
    np.testing.assert_array_equal(volume.array[6:], full.array[6:])
    assert (volume.array[5] == volume.array.min()).all() and volume.meta["files"][5] is None


def test_mixed_orientation_is_refused(copy_series, ct_series):
    folder = copy_series(ct_series)
    odd = _sorted_files(folder)[3]
    _edit(odd, ImageOrientationPatient=[1, 0, 0, 0, 0.9, 0.43589])
    with pytest.raises(MixedOrientation, match="ImageOrientationPatient") as e:
        load_series(folder)
    assert e.value.path.name == odd.name


def test_mixed_pixel_spacing_is_refused(copy_series, ct_series):
    folder = copy_series(ct_series)
    odd = _sorted_files(folder)[2]
    _edit(odd, PixelSpacing=[0.5, 0.5])
    with pytest.raises(MixedGeometry, match="PixelSpacing") as e:
        load_series(folder)
    assert str(odd.name) in str(e.value)


def test_irregular_slice_spacing_is_refused(copy_series, ct_series):
    folder = copy_series(ct_series)
    odd = _sorted_files(folder)[4]
    pos = pydicom.dcmread(odd).ImagePositionPatient
    _edit(odd, ImagePositionPatient=[pos[0], pos[1], float(pos[2]) + ct_series.spacing[0] * 0.4])
    with pytest.raises(MixedGeometry, match="irregular"):
        load_series(folder)


def test_duplicate_positions_are_refused(copy_series, ct_series):
    folder = copy_series(ct_series)
    files = _sorted_files(folder)
    _edit(files[4], ImagePositionPatient=pydicom.dcmread(files[3]).ImagePositionPatient)
    with pytest.raises(DuplicatePosition, match="both at"):
        load_series(folder)


def test_truncated_file_is_named(copy_series, ct_series):
    folder = copy_series(ct_series)
    victim = _sorted_files(folder)[0]
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(DamagedFile, match="truncated") as e:
        load_series(folder)
    assert e.value.path.name == victim.name


def test_truncated_compressed_file_is_named(copy_series, series_by_syntax):
    folder = copy_series(series_by_syntax["j2k"])
    victim = _sorted_files(folder)[0]
    victim.write_bytes(victim.read_bytes()[:-400])
    with pytest.raises(DamagedFile) as e:
        load_series(folder)
    assert e.value.path.name == victim.name


def test_file_without_pixel_data_is_refused(copy_series, ct_series):
    folder = copy_series(ct_series)
    victim = _sorted_files(folder)[0]
    ds = pydicom.dcmread(victim)
    del ds.PixelData
    ds.save_as(victim)
    with pytest.raises(NoPixelData, match="no pixel data"):
        load_series(folder)


def test_not_dicom_file_in_an_explicit_list_is_refused(tmp_path, ct_series):
    junk = tmp_path / "junk.dcm"
    junk.write_text("hello")
    with pytest.raises(NotDicomFile, match="junk.dcm"):
        load_series([*ct_series.files, junk])


def test_unsupported_transfer_syntax_names_the_uid(copy_series, series_by_syntax):
    folder = copy_series(series_by_syntax["rle"])
    victim = _sorted_files(folder)[0]
    ds = pydicom.dcmread(victim)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video: no decoder for it
    ds.save_as(victim)
    with pytest.raises(UnsupportedTransferSyntax, match=r"1\.2\.840\.10008\.1\.2\.4\.100") as e:
        load_series(folder)
    assert e.value.uid == "1.2.840.10008.1.2.4.100" and isinstance(e.value, WorkbenchError)


def test_folder_with_two_series_asks_which(dicom_root, series_by_syntax):
    with pytest.raises(MultipleSeries, match="series found"):
        load_series(dicom_root)
    uid = series_by_syntax["j2k"].series_uid
    assert load_series(dicom_root, series_uid=uid).series_uid == uid


def test_seg_of_another_series_is_refused(series_by_syntax):
    volume = load_series(series_by_syntax["explicit"].folder)
    with pytest.raises(SegReferenceMismatch, match="segments series"):
        load_segmentation(series_by_syntax["rle"].seg_path, volume)


def test_image_given_as_seg_is_refused(ct_series):
    volume = load_series(ct_series.folder)
    with pytest.raises(NotASegmentation):
        load_segmentation(ct_series.files[0], volume)
