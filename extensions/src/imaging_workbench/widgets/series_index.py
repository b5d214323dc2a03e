"""The sandbox's series index: approved datasets under /data, each read through its index file.

The steward's tooling builds one index file per dataset (dicom/index_files.py) and the sandbox
mounts it read-only beside the data, at /data-index/<id>.sqlite: opening a CaseBrowser then reads
no DICOM file. A dataset whose mounted index is missing or stale (another dataset's, an older
schema, built before the folder changed) is indexed here instead, incrementally, into a private
file under ~/.cache/workbench/indexes, and `ensure_indexed` says so.
"""

import json
from pathlib import Path

from ..dicom.demo import DEMO_DATASETS, MARKER
from ..dicom.index_files import build_index_file, check_index_file, index_file, read_meta, reading

#: Where a dataset folder may say what it is (optional): {"cancer_type": ..., "title": ...}.
DATASET_INFO_FILES = ("dataset.json", MARKER)


def default_index_path() -> Path:
    """The folder of the sandbox's own index files (for datasets without a usable mounted one)."""
    return Path.home() / ".cache" / "workbench" / "indexes"


class LocalIndex:
    """Datasets, series rows and loaded series for a CaseBrowser, from folders under `root`.

    Args:
        root: the folder holding one sub-folder per approved dataset (default /data).
        index_path: the folder of private index files, for datasets whose mounted index cannot be
            used (default ~/.cache/workbench/indexes); a path ending in .sqlite (the single private
            file of earlier releases) means the folder beside it with ".d" for that suffix.
        cancer_types: dataset id -> cancer type, overriding what the folders say.
        mounted: the folder of the steward's index files, <id>.sqlite (default /data-index).
    """

    def __init__(self, root: str | Path = "/data", index_path: str | Path | None = None,
                 cancer_types: dict[str, str] | None = None, mounted: str | Path = "/data-index"):
        self.root = Path(root)
        folder = Path(index_path) if index_path else default_index_path()
        self.index_path = folder.with_suffix(".d") if folder.suffix == ".sqlite" else folder
        self.mounted = Path(mounted)
        self.cancer_types = dict(cancer_types or {})
        self._files: dict[str, Path] = {}

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

    def ensure_indexed(self, dataset_id: str, refresh: bool = False) -> str:
        """Find a usable index of the dataset: the mounted one, else a private one built (or
        brought up to date; with `refresh`, always compared file by file) here. Returns "" or a
        message saying why the dataset is indexed here."""
        folder = self.root / dataset_id
        mounted = index_file(self.mounted, dataset_id)
        why = check_index_file(mounted, dataset_id, folder)
        if not why:
            self._files[dataset_id] = mounted
            return ""
        private = index_file(self.index_path, dataset_id)
        if refresh or check_index_file(private, dataset_id, folder):
            build_index_file(dataset_id, folder, private, cancer_type=self.cancer_type(dataset_id))
        self._files[dataset_id] = private
        return f"indexed '{dataset_id}' in this server: {why}"

    def index_file(self, dataset_id: str) -> Path:
        """The index file in use for the dataset (ensure_indexed first, when not yet)."""
        if dataset_id not in self._files:
            self.ensure_indexed(dataset_id)
        return self._files[dataset_id]

    def catalog(self, dataset_ids=None):
        """A SeriesCatalog (dicom/index_query.py) over the datasets' index files, for SQL filters and paging."""
        from ..dicom.index_query import SeriesCatalog

        catalog = SeriesCatalog()
        for dataset_id in self.datasets() if dataset_ids is None else dataset_ids:
            path = self.index_file(dataset_id)
            meta = read_meta(path)  # the steward's tooling records the dataset's site and cancer type
            catalog.add_index_file(path, dataset_id, meta.get("site", ""),
                                   self.cancer_types.get(dataset_id) or meta.get("cancer_type") or
                                   self.cancer_type(dataset_id))
        return catalog

    def series(self, dataset_id: str) -> list[dict]:
        """Every image series of the dataset (series rows with cancer_type); for notebooks."""
        return self.catalog([dataset_id]).query(limit=None).rows

    def load(self, dataset_id: str, series_uid: str, seg_uids=()):
        """(Volume, segmentation or None) read through the index; loader errors propagate."""
        from ..dicom import load_segmentation, load_series, series_files

        folder = self.root / dataset_id
        with reading(self.index_file(dataset_id)) as session:
            volume = load_series((session, series_uid), dataset_id=dataset_id, root=folder)
            # The SEG's file under this server's mount (the index holds the steward's folder).
            seg_file = series_files(session, seg_uids[0], dataset_id, root=folder)[0] if seg_uids else None
        return volume, (load_segmentation(seg_file, volume) if seg_file else None)
