"""A site's index: a job reading its cases is never queued behind another process's write (two
jobs at one site read their cases at once; through the write lock one of them once waited past
SQLite's busy timeout and failed its part of the job)."""

import sqlite3

from imaging_workbench.dicom.synth import generate_cohort
from imaging_workbench.federation.site.data import INDEX_FILE, SiteData, write_site_datasets


def test_cases_are_read_while_another_process_holds_the_index_write_lock(tmp_path):
    generate_cohort(tmp_path / "lung-ct", "lung-ct", 3, modality="CT", region="chest", tumour_organ="lung",
                    shape=(12, 32, 32), seed=3)
    (tmp_path / "local").mkdir()
    write_site_datasets(tmp_path / "local", {"lung-ct": str(tmp_path / "lung-ct")})
    data = SiteData(tmp_path / "local")
    assert len(data.series(["lung-ct"])) == 3  # indexed once, by this job

    writer = sqlite3.connect(tmp_path / "local" / INDEX_FILE, timeout=0, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another job indexing, for as long as this test runs
    try:
        reader = sqlite3.connect(tmp_path / "local" / INDEX_FILE, timeout=0, isolation_level=None)
        try:
            reader.execute("BEGIN IMMEDIATE")
            raise AssertionError("the lock is not held: the test shows nothing")
        except sqlite3.OperationalError:
            pass
        finally:
            reader.close()
        cases = list(data.tumour_cases(["lung-ct"]))
        assert len(cases) == 3 and all(case.labels.any() for case in cases)
        assert len(data.series(["lung-ct"])) == 3
    finally:
        writer.rollback()
        writer.close()


def test_the_site_index_file_holds_only_the_dataset_index_tables(tmp_path):
    from imaging_workbench.dicom.index_models import INDEX_TABLES

    generate_cohort(tmp_path / "lung-ct", "lung-ct", 2, modality="CT", region="chest", tumour_organ="lung",
                    shape=(8, 24, 24), seed=4)
    (tmp_path / "local").mkdir()
    write_site_datasets(tmp_path / "local", {"lung-ct": str(tmp_path / "lung-ct")})
    assert len(SiteData(tmp_path / "local").series(["lung-ct"])) == 2
    with sqlite3.connect(tmp_path / "local" / INDEX_FILE) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {t.name for t in INDEX_TABLES}
