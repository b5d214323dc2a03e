"""DICOM fixtures: small generated series in every transfer syntax (built once per session).

    series_by_syntax  {"explicit"|"implicit"|"rle"|"jpegls"|"j2k"|"mr": SeriesResult} (labels kept)
    ct_series         one explicit-VR CT SeriesResult (do not modify its files)
    copy_series       copy_series(result) -> a private copy of the series folder to damage freely
    index_session     a session on a private SQLite file holding only the index tables
"""

import shutil

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from imaging_workbench.dicom.index_models import ensure_index_tables
from imaging_workbench.dicom.synth import generate_ct_series, generate_mr_series

SYNTAXES = ["explicit", "implicit", "rle", "jpegls", "j2k"]


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("dicom")
    out = {}
    for i, syntax in enumerate(SYNTAXES):
        region, organ = ("chest", "lung") if i % 2 else ("abdomen", "liver")
        out[syntax] = generate_ct_series(root, shape=(12, 48, 48), region=region, tumour_organ=organ,
                                         transfer_syntax=syntax, seed=100 + i, keep_labels=True)
    out["mr"] = generate_mr_series(root, shape=(10, 48, 48), transfer_syntax="explicit", seed=7, keep_labels=True)
    return root, out


@pytest.fixture(scope="session")
def series_by_syntax(generated):
    return generated[1]


@pytest.fixture(scope="session")
def dicom_root(generated):
    return generated[0]


@pytest.fixture
def ct_series(series_by_syntax):
    return series_by_syntax["explicit"]


@pytest.fixture
def copy_series(tmp_path):
    def copy(result, name="copy"):
        target = tmp_path / name
        shutil.copytree(result.folder, target)
        return target

    return copy


@pytest.fixture
def index_session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'sandbox-index.sqlite'}")
    ensure_index_tables(engine)
    with Session(engine) as session, session.begin():
        yield session
