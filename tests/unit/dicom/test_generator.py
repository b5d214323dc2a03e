"""The synthetic cohorts: valid for dciodvfy, named by UID, varied, and the demo layout."""

import hashlib
import json
import shutil
import stat
import subprocess
from collections import Counter

import numpy as np
import pydicom
import pytest

from imaging_workbench.dicom import synth
from imaging_workbench.dicom.demo import DEMO_DATASETS, MARKER, SIZES, ensure_dataset
from imaging_workbench.dicom.synth import cohort_jobs, generate_cohort


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


def test_demo_dataset_is_world_readable_and_written_once(small_lung_ct):
    """On the session's lung-ct (generated through ensure_dataset once, for every test using it)."""
    spec = next(d for d in DEMO_DATASETS if d.id == "lung-ct")
    folder = small_lung_ct
    info = json.loads((folder / MARKER).read_text())
    assert info["n_patients"] == info["n_series"] == SIZES["small"][0]
    assert len([p for p in folder.iterdir() if p.is_dir()]) == SIZES["small"][0]
    assert all(p.stat().st_mode & stat.S_IROTH for p in folder.rglob("*"))
    assert all(p.stat().st_mode & stat.S_IXOTH for p in folder.rglob("*") if p.is_dir())
    assert ensure_dataset(folder.parent, spec, "small") == (folder, False)


def test_demo_datasets_give_every_site_ct_with_tumours():
    sites = {d.site for d in DEMO_DATASETS}
    assert sites == {"site-1", "site-2", "site-3"}
    for site in sites:
        assert any(d.site == site and d.modality == "CT" for d in DEMO_DATASETS)


def test_demo_sizes_have_enough_patients_for_the_minimum_count():
    assert 60 <= SIZES["small"][0] <= 100 and 60 <= SIZES["demo"][0] <= 100


def test_cohort_balances_sex_and_fills_every_ten_year_age_band():
    jobs = cohort_jobs("/nowhere", "lung-ct", 60, region="chest", tumour_organ="lung", seed=3)
    patients = [job["patient"] for job in jobs]
    assert Counter(p.sex for p in patients) == {"F": 30, "M": 30}
    bands = Counter(p.age // 10 * 10 for p in patients)
    assert bands == {40: 12, 50: 12, 60: 12, 70: 12, 80: 12}
    assert min(p.age for p in patients) >= 40 and max(p.age for p in patients) <= 87


def test_tumour_volumes_spread_over_one_to_forty_ml():
    rng = np.random.default_rng(0)
    volumes = []
    for _ in range(200):
        anat = synth.phantom.make_anatomy("abdomen", "liver", rng)
        t = anat.tumours[0]
        volumes.append(4 / 3 * np.pi * np.prod(t.radii) / 1000)
    assert 1 <= min(volumes) < 1.5 and 30 < max(volumes) <= 40
    assert 4 < np.median(volumes) < 9  # log-uniform: as many below ~6 mL as above


def _digests(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_writes_identical_files_whatever_the_workers(tmp_path):
    kw = dict(dataset_id="kidney-ct", n_patients=9, region="abdomen", tumour_organ="kidney", shape=(6, 32, 32),
              seed=11)
    one = generate_cohort(tmp_path / "one", workers=1, **kw)
    two = generate_cohort(tmp_path / "two", workers=2, **kw)
    assert [r.patient_id for r in one] == [r.patient_id for r in two]
    assert all(r.seg_path is not None for r in one)
    digests = _digests(tmp_path / "one")
    assert len(digests) == sum(len(r.files) + 1 for r in one)
    assert digests == _digests(tmp_path / "two")


@pytest.mark.parametrize("syntax", ["explicit", "implicit", "rle", "jpegls", "j2k"])
def test_fast_slice_writer_writes_what_pydicom_writes(tmp_path, syntax, monkeypatch):
    written = synth._write_slice
    mismatches = []

    def check(template, folder, k, z, origin_xy, pixels, syntax, writer=None):
        path, ds = written(template, folder, k, z, origin_xy, pixels, syntax, writer)
        ds.save_as(tmp_path / "ref.dcm", implicit_vr=syntax == synth.ImplicitVRLittleEndian, little_endian=True,
                   enforce_file_format=True)
        if (tmp_path / "ref.dcm").read_bytes() != path.read_bytes():
            mismatches.append(k)
        return path, ds

    monkeypatch.setattr(synth, "_write_slice", check)
    synth.generate_ct_series(tmp_path / "ct", shape=(4, 32, 32), transfer_syntax=syntax, seed=1)
    synth.generate_mr_series(tmp_path / "mr", shape=(4, 32, 32), transfer_syntax=syntax, seed=2)
    assert mismatches == []
