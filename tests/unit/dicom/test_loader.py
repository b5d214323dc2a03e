"""Loading series: every transfer syntax equals pydicom's decoding, HU in int16, geometry right."""

import numpy as np
import pydicom
import pytest

from imaging_workbench.dicom import index_folder, load_segmentation, load_series, read_slice


def _pydicom_volume(files):
    """The reference: pydicom decodes each file, rescale applied, sorted by z."""
    slices = []
    for f in files:
        ds = pydicom.dcmread(f)
        slices.append((float(ds.ImagePositionPatient[2]), pydicom.pixels.apply_rescale(ds.pixel_array, ds)))
    return np.stack([s for _, s in sorted(slices, key=lambda x: x[0])])


@pytest.mark.parametrize("syntax", ["explicit", "implicit", "rle", "jpegls", "j2k", "mr"])
def test_each_transfer_syntax_matches_pydicom(series_by_syntax, syntax):
    result = series_by_syntax[syntax]
    volume = load_series(result.folder)
    np.testing.assert_array_equal(volume.array, _pydicom_volume(result.files))
    assert volume.array.dtype == (np.int16 if result.modality == "CT" else np.uint16)
    assert volume.array.flags.c_contiguous and volume.array.shape == result.shape


def test_geometry_places_every_slice_where_its_header_says(ct_series):
    volume = load_series(ct_series.files)
    assert volume.spacing == pytest.approx(ct_series.spacing)
    for k, path in enumerate(volume.meta["files"]):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        corner = volume.affine @ np.array([0, 0, k, 1])
        assert corner[:3] == pytest.approx([float(v) for v in ds.ImagePositionPatient], abs=1e-3)
        last = volume.affine @ np.array([ds.Columns - 1, ds.Rows - 1, k, 1])
        expected = np.array(ds.ImagePositionPatient, float) + [(ds.Columns - 1) * float(ds.PixelSpacing[1]),
                                                              (ds.Rows - 1) * float(ds.PixelSpacing[0]), 0]
        assert last[:3] == pytest.approx(expected, abs=1e-3)


def test_loading_through_the_index_equals_loading_the_folder(index_session, dicom_root, series_by_syntax):
    index_folder(index_session, "synthetic", dicom_root)
    for result in series_by_syntax.values():
        from_index = load_series((index_session, result.series_uid))
        np.testing.assert_array_equal(from_index.array, load_series(result.folder).array)
        assert from_index.origin == pytest.approx(load_series(result.folder).origin)


def test_read_slice_matches_the_volume_without_loading_it(index_session, dicom_root, series_by_syntax):
    index_folder(index_session, "synthetic", dicom_root)
    result = series_by_syntax["jpegls"]
    volume = load_series(result.folder)
    np.testing.assert_array_equal(read_slice((index_session, result.series_uid), 0), volume.array[0])
    np.testing.assert_array_equal(read_slice(result.folder), volume.array[len(volume.array) // 2])
    np.testing.assert_array_equal(read_slice(volume.meta["files"][3]), volume.array[3])


def test_a_file_changed_after_indexing_is_read_fresh(index_session, copy_series, ct_series):
    folder = copy_series(ct_series)
    index_folder(index_session, "d", folder)
    volume = load_series(folder)
    first = volume.meta["files"][0]
    ds = pydicom.dcmread(first)
    ds.PixelData = (ds.pixel_array + 5).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(first)
    again = load_series((index_session, ct_series.series_uid))
    np.testing.assert_array_equal(again.array[0], volume.array[0] + 5)


def test_segmentation_lands_on_the_series_grid(series_by_syntax):
    for result in series_by_syntax.values():
        volume = load_series(result.folder)
        labels, segments = load_segmentation(result.seg_path, volume)
        assert labels.shape == volume.array.shape
        tumour = next(s for s in segments if s["label"] == "Tumour 1")
        assert set(s["label"] for s in segments) >= {"Tumour 1"} and len(tumour["color"]) == 3
        expected = result.labels == 10  # the generator's own tumour mask
        np.testing.assert_array_equal(labels == tumour["number"], expected)


def test_segmentation_by_uid_through_the_index(index_session, dicom_root, series_by_syntax):
    index_folder(index_session, "synthetic", dicom_root)
    from imaging_workbench.dicom import get_series

    result = series_by_syntax["rle"]
    summary = get_series(index_session, result.series_uid)
    volume = load_series((index_session, result.series_uid))
    labels, _ = load_segmentation(summary.seg_uids[0], volume, session=index_session)
    assert (labels > 0).any()
