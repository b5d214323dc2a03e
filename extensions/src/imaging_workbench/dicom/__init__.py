"""DICOM for the workbench: synthetic cohorts, the dataset index, fast series and SEG loading.

Public API (see README.md in this folder):

    Volume                                       voxels (z, y, x) + spacing, origin, direction, affine
    load_series(source) -> Volume                a folder, a list of files, or (session, series_uid)
    read_slice(source, index=None) -> 2-D array  one slice without loading the series
    load_segmentation(seg, reference) -> (labels, segments)
    index_folder(session, dataset_id, folder, progress=False) -> IndexReport
    list_series(session, ...), series_files(session, series_uid)
    build_index_file(dataset_id, folder, target) -> (IndexReport, counts)   one dataset's index file, atomic
    SeriesCatalog().add_index_file(...).query(SeriesQuery(...)) -> SeriesPage   filters and paging in SQL
    generate_cohort(...), generate_ct_series(...), ensure_demo_data(...)
    to_nifti(volume, path), to_metatensor(volume)

Heavy modules load on first use, so `import imaging_workbench.dicom` stays cheap.
"""

import importlib

from .volume import Volume

_LAZY = {
    "load_series": "loader", "read_slice": "loader", "load_segmentation": "seg",
    "index_folder": "index", "list_series": "index", "series_files": "index", "IndexReport": "index",
    "SeriesSummary": "index", "get_series": "index", "dataset_summary": "index",
    "generate_cohort": "synth", "generate_ct_series": "synth", "generate_mr_series": "synth",
    "ensure_demo_data": "demo", "DEMO_DATASETS": "demo",
    "to_nifti": "export", "to_metatensor": "export", "dicom_reader": "export",
    "ensure_index_tables": "index_models", "build_index_file": "index_files",
    "SeriesCatalog": "index_query", "SeriesQuery": "index_query",
}

__all__ = ["Volume", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
