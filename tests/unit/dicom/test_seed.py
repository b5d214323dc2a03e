"""The seed cohort (the platform at its real size), written small: 3 datasets, 24 patients, 240 series."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
from collections import Counter
from pathlib import Path

import pydicom
import pytest

from imaging_workbench.dicom import index_folder, list_series, load_segmentation, load_series
from imaging_workbench.dicom.demo import MARKER
from imaging_workbench.dicom.seed import ensure_seed_data
from imaging_workbench.dicom.seed_files import build_templates
from imaging_workbench.dicom.seed_template import FileTemplate

SMALL = dict(n_datasets=3, n_patients=24, series_per_patient=10)


@pytest.fixture(scope="module")
def seed_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("seed")
    umask = os.umask(0o077)  # an operator's strict umask must not make the data unreadable to sandboxes
    try:
        ensure_seed_data(root, **SMALL, workers=2)
    finally:
        os.umask(umask)
    return root


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _marker(root: Path, dataset_id: str) -> dict:
    return json.loads((root / dataset_id / MARKER).read_text())


def test_seed_datasets_hold_the_promised_counts_at_their_own_sites(seed_root):
    infos = [_marker(seed_root, f"seed-0{i}") for i in (1, 2, 3)]
    assert [i["site"] for i in infos] == ["site-01", "site-02", "site-03"]
    assert len({i["cancer_type"] for i in infos}) == 3
    for info in infos:
        assert info["n_patients"] == 8 and info["n_series"] == 80
        assert info["n_files"] == 3 * info["n_series"]  # three slices, or two slices and a SEG
        files = [p for p in (seed_root / info["dataset"]).rglob("*.dcm")]
        assert len(files) == info["n_files"]
    assert sum(i["n_segmentations"] for i in infos) > 10


def test_headers_vary_like_a_real_cohort(seed_root):
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(seed_root.rglob("*.dcm"))]
    images = [h for h in headers if h.Modality != "SEG"]
    assert {h.Modality for h in images} == {"CT", "MR", "PT"}
    assert len({h.SeriesDescription for h in images}) > 30  # free-text search has something to find
    assert len({h.BodyPartExamined for h in images}) >= 4 and len({h.Manufacturer for h in images}) > 1
    patients = {h.PatientID: h for h in images}
    assert Counter(h.PatientSex for h in patients.values()) == {"M": 12, "F": 12}
    assert len({h.StudyInstanceUID for h in images}) > len(patients)  # some patients have several studies
    assert all(len(h.SOPInstanceUID) == 50 for h in headers)


def test_same_seed_writes_the_same_bytes_whatever_the_number_of_workers(seed_root, tmp_path):
    build_templates.cache_clear()  # built afresh, as a new process would (highdicom stamps the time)
    ensure_seed_data(tmp_path, **SMALL, workers=1)
    assert _files(tmp_path) == _files(seed_root)


def _dciodvfy_errors(path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy is missing: apt-get install -y dicom3tools (scripts/ensure_host.sh)")
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def test_every_kind_of_seed_file_reads_and_validates_with_dciodvfy(seed_root):
    first = {}  # one file per kind: modality, and with a laterality (breast) or without
    for path in sorted(seed_root.rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        first.setdefault((ds.Modality, "Laterality" in ds), path)
        if len(first) == 7:
            break
    assert {m for m, _ in first} == {"CT", "MR", "PT", "SEG"} and ("MR", True) in first
    for path in first.values():
        ds = pydicom.dcmread(path)
        assert ds.pixel_array.shape[-2:] in ((32, 32), (16, 16))
        assert _dciodvfy_errors(path) == []


def test_seed_dataset_indexes_without_problems_and_its_series_and_segs_load(seed_root, index_session):
    report = index_folder(index_session, "seed-03", seed_root / "seed-03")
    assert report.problems == []
    info = _marker(seed_root, "seed-03")
    rows = list_series(index_session, "seed-03", limit=None)
    assert len(rows) == info["n_series"] and report.n_patients == info["n_patients"]
    segmented = [r for r in rows if r.has_segmentation]
    assert len(segmented) == info["n_segmentations"] > 0
    for row in rows[:10]:
        volume = load_series((index_session, row.series_uid))
        assert volume.array.shape == (row.n_instances, row.rows, row.cols)
        assert abs(volume.spacing[0] - row.spacing[0]) < 1e-3
    volume = load_series((index_session, segmented[0].series_uid))
    labels, segments = load_segmentation(segmented[0].seg_uids[0], volume, session=index_session)
    assert labels.shape == volume.array.shape and labels.any() and segments[0]["label"] == "Lesion"


def test_complete_datasets_are_kept_and_a_half_written_one_is_written_again(seed_root, tmp_path):
    root = tmp_path / "again"
    shutil.copytree(seed_root, root)
    before = _files(root)
    kept = next((root / "seed-01").rglob("*.dcm"))
    kept_mtime = kept.stat().st_mtime_ns
    (root / "seed-02" / MARKER).unlink()  # as if the run stopped before seed-02 was complete
    stray = next((root / "seed-02").rglob("*.dcm"))
    stray.write_bytes(b"half a file")
    done = ensure_seed_data(root, **SMALL, workers=1)
    assert [(d.id, written) for d, _, written in done] == [("seed-01", False), ("seed-02", True), ("seed-03", False)]
    assert _files(root) == before and kept.stat().st_mtime_ns == kept_mtime


def test_seed_files_and_folders_are_world_readable(seed_root):
    for path in [seed_root / "seed-01", *list((seed_root / "seed-01").rglob("*"))[:200]]:
        mode = path.stat().st_mode
        assert mode & stat.S_IROTH, path
        assert not path.is_dir() or mode & stat.S_IXOTH, path


def test_a_template_value_of_the_wrong_length_is_refused():
    template = FileTemplate(b"..ABCD..", [(2, 4, "name")])
    assert template.render({"name": b"WXYZ"}) == b"..WXYZ.."
    with pytest.raises(ValueError, match="name"):
        template.render({"name": b"LONGER"})


def test_demo_data_seed_command_writes_registers_and_indexes_the_seed_datasets(cli, tmp_path, monkeypatch):
    from imaging_workbench.dicom import seed

    monkeypatch.setattr(seed, "SEED_SIZE", {"n_datasets": 2, "n_patients": 4, "series_per_patient": 4})
    rc, out, err = cli("demo-data", "--size", "seed", "--out", str(tmp_path / "demo"), "--register", "--quiet")
    assert rc == 0, err
    assert "seed-01 (site-01): written" in out and "problem:" not in out
    rc, out, _ = cli("datasets", "list", "--json")
    listed = {d["id"]: d for d in json.loads(out)}
    assert listed["seed-02"]["site"] == "site-02" and listed["seed-02"]["n_series"] == 8
    rc, out, _ = cli("series", "list", "--dataset", "seed-01", "--json")
    assert len(json.loads(out)) == 8
