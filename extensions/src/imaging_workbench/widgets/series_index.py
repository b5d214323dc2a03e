"""The sandbox's own series index: approved datasets under /data, indexed into a private SQLite file.

Inside a sandbox there is no catalog: the datasets a user may see are exactly the folders
mounted under the data root. Each is indexed once (incrementally after that) into
~/.cache/workbench/index.sqlite with `imaging_workbench.dicom.index_folder`.
"""

import json
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from ..dicom import index_models
from ..dicom.demo import DEMO_DATASETS, MARKER

#: Where a dataset folder may say what it is (optional): {"cancer_type": ..., "title": ...}.
DATASET_INFO_FILES = ("dataset.json", MARKER)


def default_index_path() -> Path:
    return Path.home() / ".cache" / "workbench" / "index.sqlite"


class LocalIndex:
    """Datasets, series rows and loaded series for a CaseBrowser, from folders under `root`.

    Args:
        root: the folder holding one sub-folder per approved dataset (default /data).
        index_path: the SQLite file for the index (default ~/.cache/workbench/index.sqlite).
        cancer_types: dataset id -> cancer type, overriding what the folders say.
    """

    def __init__(self, root: str | Path = "/data", index_path: str | Path | None = None,
                 cancer_types: dict[str, str] | None = None):
        self.root = Path(root)
        self.index_path = Path(index_path) if index_path else default_index_path()
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(f"sqlite:///{self.index_path}")
        index_models.ensure_index_tables(self.engine)
        self.Session = sessionmaker(self.engine)
        self.cancer_types = dict(cancer_types or {})

    def datasets(self) -> list[str]:
        """Dataset ids: readable sub-folders of the root, sorted. Empty if the root is missing."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def cancer_type(self, dataset_id: str) -> str:
        if dataset_id in self.cancer_types:
            return self.cancer_types[dataset_id]
        for name in DATASET_INFO_FILES:
            try:
                info = json.loads((self.root / dataset_id / name).read_text())
            except (OSError, ValueError):
                continue
            if isinstance(info, dict) and info.get("cancer_type"):
                return str(info["cancer_type"])
        demo = {d.id: d.cancer_type for d in DEMO_DATASETS}
        return demo.get(dataset_id, "")

    def ensure_indexed(self, dataset_id: str, refresh: bool = False) -> None:
        """Index the dataset's folder unless it is indexed already (or `refresh`)."""
        from ..dicom import index_folder

        with self.Session() as session:
            known = session.get(index_models.IndexRoot, dataset_id) is not None
            if known and not refresh:
                return
            index_folder(session, dataset_id, self.root / dataset_id)
            session.commit()

    def series(self, dataset_id: str) -> list[dict]:
        """Every image series of the dataset (dicts of list_series plus cancer_type)."""
        from ..dicom import list_series

        cancer = self.cancer_type(dataset_id)
        with self.Session() as session:
            return [{**s.as_dict(), "cancer_type": cancer} for s in list_series(session, dataset_id, limit=None)]

    def load(self, dataset_id: str, series_uid: str, seg_uids=()):
        """(Volume, segmentation or None) read through the index; loader errors propagate."""
        from ..dicom import load_segmentation, load_series

        folder = self.root / dataset_id
        with self.Session() as session:
            volume = load_series((session, series_uid), dataset_id=dataset_id, root=folder)
            seg = None
            if seg_uids:
                seg = load_segmentation(seg_uids[0], volume, session=session, dataset_id=dataset_id)
        return volume, seg
