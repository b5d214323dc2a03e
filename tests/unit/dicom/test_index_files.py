"""Per-dataset index files and the one series query: incremental and atomic builds, damaged files,
a sandbox's fallback for a missing or stale index, SQL filters and paging, the CLI."""

import random
import shutil

import pytest

from imaging_workbench.dicom import index, index_read, list_series
from imaging_workbench.dicom.index_files import build_index_file, check_index_file, read_meta, reading
from imaging_workbench.dicom.index_query import SeriesCatalog, SeriesQuery
from imaging_workbench.widgets.series_index import LocalIndex


@pytest.fixture
def count_reads(monkeypatch):
    """Count header reads of this process (runs this small stay out of the pool)."""
    reads = []
    real = index_read.read_header

    def counted(path, *args, **kwargs):
        reads.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(index_read, "read_header", counted)
    return reads


@pytest.fixture
def two_series(tmp_path, series_by_syntax):
    folder = tmp_path / "ds"
    for name in ("explicit", "mr"):
        shutil.copytree(series_by_syntax[name].folder, folder / name)
    return folder


def test_a_rerun_reads_only_new_or_changed_files(tmp_path, two_series, count_reads):
    target = tmp_path / "indexes" / "ds.sqlite"
    report, summary = build_index_file("ds", two_series, target, site="site-1")
    assert len(count_reads) == report.n_files == 22 and summary["n_series"] == 2
    assert read_meta(target)["site"] == "site-1" and read_meta(target)["n_files"] == "22"
    count_reads.clear()
    again, _ = build_index_file("ds", two_series, target)
    assert count_reads == [] and again.n_unchanged == 22
    changed = sorted((two_series / "mr").iterdir())[0]
    changed.write_bytes(changed.read_bytes())
    third, _ = build_index_file("ds", two_series, target)
    assert [p.name for p in count_reads] == [changed.name] and third.n_changed == 1


def test_damaged_files_are_listed_with_reasons_and_the_pool_goes_on(tmp_path, two_series, monkeypatch):
    monkeypatch.setattr(index_read, "POOL_FROM", 1)  # this small run on the process pool, in chunks of 5
    monkeypatch.setattr(index_read, "CHUNK", 5)
    (two_series / "notes.txt").write_text("not an image")
    data = next((two_series / "explicit").iterdir()).read_bytes()
    (two_series / "cut.dcm").write_bytes(data[: len(data) // 2])
    report, summary = build_index_file("ds", two_series, tmp_path / "ds.sqlite")
    reasons = dict(report.problems)
    assert set(reasons) == {"notes.txt", "cut.dcm"}
    assert "not a DICOM file" in reasons["notes.txt"] and "truncated" in reasons["cut.dcm"]
    assert summary["n_series"] == 2 and read_meta(tmp_path / "ds.sqlite")["n_problems"] == "2"


def test_a_failed_build_leaves_the_previous_index_intact(tmp_path, two_series, monkeypatch):
    target = tmp_path / "ds.sqlite"
    build_index_file("ds", two_series, target)
    before = target.read_bytes()
    shutil.rmtree(two_series / "mr")  # a change the failed run would have written

    def fail(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(index, "_summarise", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        build_index_file("ds", two_series, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial file left


def test_a_sandbox_reads_the_mounted_index_and_indexes_only_a_missing_or_stale_one(tmp_path, two_series,
                                                                                   count_reads):
    data, mounted = tmp_path / "data", tmp_path / "data-index"
    shutil.copytree(two_series, data / "ds")
    shutil.copytree(two_series, data / "other")
    build_index_file("ds", data / "ds", mounted / "ds.sqlite")
    count_reads.clear()
    local = LocalIndex(data, tmp_path / "private", mounted=mounted)
    assert local.ensure_indexed("ds") == "" and count_reads == []
    assert len(local.series("ds")) == 2 and not (tmp_path / "private" / "ds.sqlite").exists()
    note = local.ensure_indexed("other")
    assert "indexed 'other' in this server: no index file" in note and len(count_reads) == 22
    assert len(local.catalog().query().rows) == 4

    (data / "ds" / "new-patient").mkdir()  # the dataset changed after its index was built
    note = LocalIndex(data, tmp_path / "private", mounted=mounted).ensure_indexed("ds")
    assert "built before dataset 'ds' last changed" in note
    shutil.copyfile(mounted / "ds.sqlite", mounted / "other.sqlite")  # another dataset's index
    assert "indexes dataset 'ds', not 'other'" in check_index_file(mounted / "other.sqlite", "other", data / "other")


def test_a_sandbox_loads_a_series_and_its_seg_through_a_mounted_index(tmp_path, series_by_syntax):
    data = tmp_path / "data"
    shutil.copytree(series_by_syntax["explicit"].folder, data / "ds" / "ct")
    (data / "ds" / "seg").mkdir()
    shutil.copy(series_by_syntax["explicit"].seg_path, data / "ds" / "seg")
    build_index_file("ds", data / "ds", tmp_path / "data-index" / "ds.sqlite")
    with reading(tmp_path / "data-index" / "ds.sqlite") as session:  # has_segmentation filtered in SQL
        assert [len(list_series(session, has_segmentation=v)) for v in (True, False, None)] == [1, 0, 1]
    shutil.move(data, tmp_path / "mounted-at")  # the sandbox sees the folder under another path
    local = LocalIndex(tmp_path / "mounted-at", tmp_path / "private", mounted=tmp_path / "data-index")
    row = local.series("ds")[0]
    volume, seg = local.load("ds", row["series_uid"], row["seg_uids"])
    assert volume.array.shape == (12, 48, 48) and seg is not None and seg[0].any()


def random_rows(n: int, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    words = ["Chest", "chest AXIAL", "Abdomen venous", "HEAD t1", "lung nodule", "50%_off"]
    return [{"dataset_id": rng.choice(["a", "b", "c"]), "site": rng.choice(["site-1", "site-2"]),
             "patient_id": f"P{rng.randrange(40):03d}", "study_uid": f"1.2.{i // 3}", "study_date": f"2024{rng.randrange(1, 13):02d}01",
             "series_uid": f"1.3.{i}", "modality": rng.choice(["CT", "MR", "SEG"]),
             "body_part": rng.choice(["CHEST", "HEAD", "ABDOMEN"]), "description": rng.choice(words),
             "has_segmentation": rng.random() < 0.4, "seg_uids": []} for i in range(n)]


def brute_force(rows, q: SeriesQuery) -> list[dict]:
    keep = [r for r in rows
            if all(not getattr(q, k) or r[k].lower() == getattr(q, k).lower()
                   for k in ("dataset_id", "site", "modality", "body_part"))
            and (q.modality or r["modality"] != "SEG")
            and (q.has_segmentation is None or r["has_segmentation"] == q.has_segmentation)
            and q.text.lower() in r["description"].lower()]
    keep.sort(key=lambda r: (r["dataset_id"], r["patient_id"], r["study_date"], r["series_uid"]))
    return keep


@pytest.mark.parametrize("filters", [
    {}, {"modality": "mr"}, {"modality": "SEG"}, {"body_part": "chest", "has_segmentation": True},
    {"site": "SITE-2", "dataset_id": "b"}, {"has_segmentation": False}, {"text": "chest"}, {"text": "50%_"},
    {"text": "%"}, {"dataset_id": "c", "text": "axial", "modality": "CT"}])
def test_filters_and_pages_match_a_brute_force_filter(filters):
    rows = random_rows(400)
    catalog = SeriesCatalog()
    catalog.add_rows(rows)
    expected = brute_force(rows, SeriesQuery(**filters))
    for offset, limit in [(0, 20), (37, 50), (len(expected) - 3, 20), (0, None)]:
        page = catalog.query(SeriesQuery(**filters, offset=max(0, offset), limit=limit))
        end = None if limit is None else max(0, offset) + limit
        assert page.total == len(expected)
        assert [r["series_uid"] for r in page.rows] == [r["series_uid"] for r in expected[max(0, offset):end]]



@pytest.mark.parametrize("filters", [{}, {"dataset_id": "b"}, {"modality": "seg"}, {"text": "chest"}])
def test_distinct_values_and_studies_match_a_brute_force_filter_and_a_limit_stops_early(filters):
    rows = random_rows(400)
    for row in rows[::7]:
        row["body_part"] = row["body_part"].lower()  # one body part in two cases: one value, as a filter reads it
    catalog = SeriesCatalog()
    catalog.add_rows(rows)
    q = SeriesQuery(**filters)
    kept = brute_force(rows, q)
    few = ["dataset_id", "modality", "body_part", "site"]
    assert catalog.distinct(few, q) == {c: catalog.values(c, q) for c in few}
    for column in few + ["patient_id"]:
        assert [v.lower() for v in catalog.values(column, q)] == sorted({r[column].lower() for r in kept})
    patients = catalog.values("patient_id", q)
    assert catalog.values("patient_id", q, limit=len(patients)) == patients
    assert len(catalog.values("patient_id", q, limit=5)) == 6  # "more than 5", not every patient
    studies = catalog.studies(q)
    assert [(date, uid) for uid, date in studies] == sorted({(r["study_date"], r["study_uid"]) for r in kept})
    assert catalog.studies(q, limit=len(studies)) == studies and len(catalog.studies(q, limit=5)) == 6

def test_series_list_reads_the_index_files_the_steward_built(cli, tmp_path, series_by_syntax):
    folder = tmp_path / "ds"
    shutil.copytree(series_by_syntax["explicit"].folder, folder / "ct")
    shutil.copytree(series_by_syntax["mr"].folder, folder / "mr")
    (folder / "seg").mkdir()
    shutil.copy(series_by_syntax["explicit"].seg_path, folder / "seg")  # the CT has a SEG, the MR none
    for p in (tmp_path, *folder.rglob("*"), folder):
        p.chmod(0o755)
    rc, out, err = cli("datasets", "add", "two", "--path", str(folder), "--site", "site-9")
    assert rc == 0, err
    state = tmp_path / "state" / "indexes" / "two.sqlite"
    assert read_meta(state)["site"] == "site-9"
    rc, out, err = cli("series", "list", "--site", "site-9", "--modality", "mr", "--json")
    assert rc == 0 and series_by_syntax["mr"].series_uid in out and series_by_syntax["explicit"].series_uid not in out
    rc, out, err = cli("series", "list", "--limit", "1")
    assert rc == 0 and "1 of 2 series" in err
    rc, out, err = cli("series", "list", "--with-seg")
    assert rc == 0 and "1 of 1 series" in err and series_by_syntax["explicit"].series_uid in out
