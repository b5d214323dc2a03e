"""CaseBrowser without a browser: filters, paging, the patient -> study narrowing, errors, real index."""

import numpy as np
import pytest

from imaging_workbench.dicom.errors import DamagedFile
from imaging_workbench.widgets import CaseBrowser, CaseViewer
from imaging_workbench.widgets.browser import ANY

from .conftest import make_known_ct


class FakeIndex:
    """An index of `n` series spread over two datasets; series 'bad-*' fail to load."""

    def __init__(self, n=55, datasets=("lung-ct", "brain-mr")):
        self._datasets = list(datasets)
        self.rows = []
        for i in range(n):
            ds = self._datasets[i % len(self._datasets)]
            mr = ds.endswith("mr")
            self.rows.append({
                "dataset_id": ds, "patient_id": f"P{i // 3:03d}", "study_uid": f"1.2.{i // 3}.{i % 2}",
                "study_date": f"2024{1 + i % 12:02d}01", "series_uid": ("bad-" if i == 7 else "") + f"1.3.{i}",
                "modality": "MR" if mr else "CT", "body_part": "HEAD" if mr else "CHEST",
                "cancer_type": "glioma" if mr else "lung", "description": f"series {i}", "n_slices": 24,
                "has_segmentation": i % 4 == 0, "seg_uids": [f"1.4.{i}"] if i % 4 == 0 else []})
        self.indexed, self.loaded = [], []

    def datasets(self):
        return self._datasets

    def ensure_indexed(self, ds, refresh=False):
        self.indexed.append(ds)

    def series(self, ds):
        return [r for r in self.rows if r["dataset_id"] == ds]

    def load(self, ds, uid, seg_uids=()):
        self.loaded.append((ds, uid, list(seg_uids)))
        if uid.startswith("bad-"):
            raise DamagedFile(f"/data/{ds}/{uid}/3.dcm is truncated", "ask the steward to re-export it")
        vol = make_known_ct()
        seg = (np.zeros(vol.shape, np.uint8), []) if seg_uids else None
        return vol, seg


@pytest.fixture
def fake():
    return FakeIndex()


def test_lists_every_series_in_pages(fake):
    b = CaseBrowser(source=fake, page_size=20)
    assert fake.indexed == ["lung-ct", "brain-mr"]
    assert len(b.table.options) == 20 and "page 1 of 3 · 55 series" == b.page_label.value
    assert b.prev.disabled and not b.next.disabled
    b.next.click(), b.next.click()
    assert len(b.table.options) == 15 and b.next.disabled


def test_filters_combine(fake):
    b = CaseBrowser(source=fake)
    b.filters["modality"].value = "MR"
    assert set(b.filtered().dataset_id) == {"brain-mr"}
    b.filters["has_segmentation"].value = "yes"
    assert len(b.filtered()) == len([r for r in fake.rows if r["modality"] == "MR" and r["has_segmentation"]])
    b.filters["cancer_type"].value = "glioma"
    b.filters["body_part"].value = "HEAD"
    assert all(b.filtered().cancer_type == "glioma")
    b.filters["modality"].value = "CT"
    assert b.filtered().empty and b.page_label.value.endswith("0 series")


def test_dataset_narrows_patients_and_patient_narrows_studies(fake):
    b = CaseBrowser(source=fake)
    b.filters["dataset_id"].value = "lung-ct"
    patients = [v for _, v in b.filters["patient_id"].options if v != ANY]
    assert patients == sorted({r["patient_id"] for r in fake.rows if r["dataset_id"] == "lung-ct"})
    b.filters["patient_id"].value = "P001"
    studies = [v for _, v in b.filters["study_uid"].options[1:]]
    assert studies and set(studies) == {r["study_uid"] for r in fake.rows
                                        if r["patient_id"] == "P001" and r["dataset_id"] == "lung-ct"}
    b.filters["study_uid"].value = studies[0]
    assert set(b.filtered().study_uid) == {studies[0]}


def test_selecting_a_series_opens_a_viewer_with_its_segmentation(fake):
    b = CaseBrowser(source=fake)
    b.filters["dataset_id"].value = "lung-ct"
    b.table.value = b.table.options[0][1]
    assert fake.loaded == [("lung-ct", "1.3.0", ["1.4.0"])]
    assert isinstance(b.viewer, CaseViewer) and b.viewer_box.children == (b.viewer,)
    assert b.viewer.shape == [24, 32, 40]


def test_loader_error_is_shown_in_place_of_the_viewer(fake):
    b = CaseBrowser(source=fake)
    assert b.open_series("brain-mr", "bad-1.3.7") is None
    text = b.viewer_box.children[0].value
    assert "Cannot open this series" in text and "3.dcm is truncated" in text and "re-export" in text


def test_no_datasets_says_so(tmp_path):
    b = CaseBrowser(root=tmp_path / "data", index_path=tmp_path / "index.sqlite")
    assert "No datasets are available" in b.status.value and b.table.options == ()


def test_a_dataset_without_images_says_so(tmp_path):
    (tmp_path / "data" / "empty-ds").mkdir(parents=True)
    b = CaseBrowser(root=tmp_path / "data", index_path=tmp_path / "index.sqlite")
    assert "hold no image series" in b.status.value


def test_real_demo_dataset_through_the_private_index(tmp_path, copy_small_lung_ct):
    from imaging_workbench.dicom.demo import SIZES

    copy_small_lung_ct(tmp_path / "data")
    b = CaseBrowser(root=tmp_path / "data", index_path=tmp_path / "cache" / "index.sqlite")
    assert (tmp_path / "cache" / "index.d" / "lung-ct.sqlite").exists()  # no mounted index: one of its own
    assert "indexed &#x27;lung-ct&#x27; in this server: no index file" in b.status.value
    rows = b.filtered()
    assert set(rows.cancer_type) == {"lung"} and len(rows) == SIZES["small"][0]
    assert rows.has_segmentation.all()
    viewer = b.open_series(*b.table.options[0][1])
    assert viewer is not None and viewer.error == "" and viewer.segments
    assert viewer.shape == list(viewer.volume.array.shape) and viewer.modality == "CT"
