"""The dataset index: contents, problems, incremental re-indexing, queries, and the CLI."""

import os
import shutil

import pytest

from imaging_workbench.dicom import get_series, index_folder, list_series, series_files
from imaging_workbench.dicom.errors import SeriesNotFound
from imaging_workbench.dicom.headers import read_header


def test_index_lists_series_with_geometry_and_segmentation(index_session, dicom_root, series_by_syntax):
    report = index_folder(index_session, "synthetic", dicom_root)
    assert report.problems == []
    assert report.n_series == 12 and report.n_patients == 6  # 6 image series + 6 SEGs
    rows = {s.series_uid: s for s in list_series(index_session, "synthetic")}
    ct = rows[series_by_syntax["rle"].series_uid]
    assert (ct.modality, ct.n_instances, ct.rows, ct.cols) == ("CT", 12, 48, 48)
    assert ct.has_segmentation and ct["seg_uids"] and ct.transfer_syntaxes == ["1.2.840.10008.1.2.5"]
    assert set(ct.as_dict()) >= {"dataset_id", "patient_id", "study_uid", "series_uid", "modality", "body_part",
                                 "description", "n_instances", "rows", "cols", "has_segmentation", "seg_uids"}
    assert len(list_series(index_session, modality="MR")) == 1
    assert len(list_series(index_session, modality="SEG")) == 6
    assert len(list_series(index_session, body_part="chest")) == 2
    assert len(list_series(index_session, limit=2, offset=1)) == 2


def test_series_files_are_sorted_along_the_slice_normal(index_session, dicom_root, ct_series):
    index_folder(index_session, "synthetic", dicom_root)
    files = series_files(index_session, ct_series.series_uid)
    z = [read_header(f).position[2] for f in files]
    assert z == sorted(z) and len(files) == 12


def test_bad_files_are_listed_with_a_reason_and_do_not_stop_the_index(index_session, copy_series, ct_series):
    folder = copy_series(ct_series)
    (folder / "notes.txt").write_text("not an image")
    data = ct_series.files[0].read_bytes()
    (folder / "cut.dcm").write_bytes(data[: len(data) // 2])
    report = index_folder(index_session, "d", folder)
    reasons = dict(report.problems)
    assert set(reasons) == {"notes.txt", "cut.dcm"}
    assert "not a DICOM file" in reasons["notes.txt"] and "truncated" in reasons["cut.dcm"]
    assert get_series(index_session, ct_series.series_uid).n_instances == 12


def test_reindexing_reads_only_changed_files_and_forgets_removed_ones(index_session, copy_series, ct_series):
    folder = copy_series(ct_series)
    first = index_folder(index_session, "d", folder)
    assert first.n_new == 12
    files = sorted(folder.iterdir())
    files[0].unlink()
    os.utime(files[1], ns=(1, 1))
    again = index_folder(index_session, "d", folder)
    assert (again.n_new, again.n_changed, again.n_removed, again.n_unchanged) == (0, 1, 1, 10)
    assert get_series(index_session, ct_series.series_uid).n_instances == 11


def test_unknown_series_is_a_clear_error(index_session):
    with pytest.raises(SeriesNotFound, match="not in the index"):
        series_files(index_session, "1.2.3.4")


def test_cli_indexes_on_add_and_lists_series(cli, ct_series, tmp_path):
    folder = tmp_path / "ds"
    shutil.copytree(ct_series.folder, folder)
    for p in (tmp_path, folder, *folder.iterdir()):
        p.chmod(0o755)
    rc, out, err = cli("datasets", "add", "ct-one", "--path", str(folder), "--modality", "CT")
    assert rc == 0, err
    assert "indexed 'ct-one': 12 files" in out and "1 patients, 1 image series" in out
    rc, out, _ = cli("datasets", "index", "ct-one", "--quiet")
    assert rc == 0 and "12 unchanged" in out
    rc, out, _ = cli("series", "list", "--dataset", "ct-one")
    assert ct_series.series_uid in out
    rc, out, _ = cli("datasets", "list", "--json")
    assert '"n_series": 1' in out


def test_demo_data_command_registers_datasets(cli, tmp_path, monkeypatch):
    from imaging_workbench.dicom import demo

    monkeypatch.setattr(demo, "SIZES", {**demo.SIZES, "small": (2, (6, 32, 32), (6, 32, 32))})
    monkeypatch.setattr(demo, "DEMO_DATASETS", demo.DEMO_DATASETS[:2])
    rc, out, err = cli("demo-data", "--out", str(tmp_path / "demo"), "--register", "--quiet")
    assert rc == 0, err
    rc, out, _ = cli("datasets", "list")
    assert "lung-ct" in out and "site-1" in out and "kidney-ct" in out
    rc, out, _ = cli("series", "list", "--with-seg")
    assert out.count("CT") >= 4
