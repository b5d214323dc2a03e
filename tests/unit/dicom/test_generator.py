"""The synthetic cohorts: valid for dciodvfy, named by UID, varied, and the demo layout."""

import json
import shutil
import stat
import subprocess

import numpy as np
import pydicom
import pytest

from imaging_workbench.dicom.demo import DEMO_DATASETS, MARKER, ensure_dataset
from imaging_workbench.dicom.synth import generate_cohort


def _dciodvfy_errors(path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy is missing: apt-get install -y dicom3tools (scripts/ensure_host.sh)")
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("kind", ["explicit", "implicit", "rle", "jpegls", "j2k", "mr"])
def test_every_kind_of_generated_file_validates_with_dciodvfy(series_by_syntax, kind):
    result = series_by_syntax[kind]
    assert _dciodvfy_errors(result.files[0]) == []
    assert _dciodvfy_errors(result.files[-1]) == []
    assert _dciodvfy_errors(result.seg_path) == []


def test_files_are_named_by_sop_uid_and_not_in_slice_order(ct_series):
    positions = []
    for path in sorted(ct_series.folder.iterdir()):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert path.name == f"{ds.SOPInstanceUID}.dcm"
        positions.append(float(ds.ImagePositionPatient[2]))
    assert positions != sorted(positions)


def test_ct_stores_hu_with_rescale_and_consistent_geometry(ct_series):
    ds = pydicom.dcmread(ct_series.files[0])
    assert ds.Modality == "CT" and float(ds.RescaleIntercept) == -1024 and float(ds.RescaleSlope) == 1
    hu = ds.pixel_array.astype(int) - 1024
    assert hu.min() < -900 and hu.max() > 200  # air around the body, bone in it
    z = sorted(float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in ct_series.files)
    assert np.allclose(np.diff(z), ct_series.spacing[0])
    assert ct_series.tumour_volumes_ml and all(v > 0 for v in ct_series.tumour_volumes_ml)


def test_cohort_varies_patients_scanners_and_transfer_syntaxes(tmp_path):
    results = generate_cohort(tmp_path, "liver-ct", 8, region="abdomen", tumour_organ="liver", shape=(6, 32, 32))
    headers = [pydicom.dcmread(r.files[0], stop_before_pixels=True) for r in results]
    assert len({h.PatientID for h in headers}) == 8
    assert len({h.PatientAge for h in headers}) > 3 and len({h.StudyDate for h in headers}) > 3
    assert {h.PatientSex for h in headers} == {"M", "F"} or len(headers) < 4
    assert len({h.Manufacturer for h in headers}) > 1
    assert {r.transfer_syntax for r in results} >= {"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.80",
                                                     "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.1"}


def test_demo_dataset_is_world_readable_and_written_once(tmp_path):
    spec = next(d for d in DEMO_DATASETS if d.id == "lung-ct")
    folder, written = ensure_dataset(tmp_path, spec, "small")
    assert written and json.loads((folder / MARKER).read_text())["n_patients"] == 12
    assert all(p.stat().st_mode & stat.S_IROTH for p in folder.rglob("*"))
    assert all(p.stat().st_mode & stat.S_IXOTH for p in folder.rglob("*") if p.is_dir())
    assert ensure_dataset(tmp_path, spec, "small") == (folder, False)


def test_demo_datasets_give_every_site_ct_with_tumours():
    sites = {d.site for d in DEMO_DATASETS}
    assert sites == {"site-1", "site-2", "site-3"}
    for site in sites:
        assert any(d.site == site and d.modality == "CT" for d in DEMO_DATASETS)
