"""Datasets: what a steward registers, where it lives on the host, and what it holds."""

import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import NotFound, WorkbenchError
from . import audit, dataset_paths
from .models import Dataset

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
FIELDS = ("title", "cancer_type", "modality", "body_part", "site", "n_subjects", "n_series", "licence")


def check_folder(path: str | Path, state_dir: str | Path | None = None) -> Path:
    """The resolved folder, once dataset_paths' rules pass for registering it (with the walk for
    special files). `state_dir` is the deployment's; None skips only the state directory rule."""
    return dataset_paths.check_new_folder(path, state_dir)


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"unknown dataset '{dataset_id}'", "list datasets with 'workbench datasets list'")
    return dataset


def add_dataset(session: Session, actor: str, dataset_id: str, host_path: str | Path, title: str | None = None,
                state_dir: str | Path | None = None, **fields) -> Dataset:
    """Register the folder `host_path` as `dataset_id`, stored resolved (the spawn checks it still
    resolves there). `state_dir`: the deployment's, which no dataset may be in, above or inside (see
    dataset_paths); every command passes it, None is for callers without deployment settings.
    """
    if not ID_RE.match(dataset_id):
        raise WorkbenchError(f"'{dataset_id}' is not a valid dataset id",
                             "use lower-case letters, digits and '-', e.g. lung-ct-site1")
    if session.get(Dataset, dataset_id) is not None:
        raise WorkbenchError(f"dataset '{dataset_id}' already exists",
                             f"remove it first ('workbench datasets remove {dataset_id}') or pick another id")
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise WorkbenchError(f"unknown dataset field(s): {', '.join(sorted(unknown))}", f"known: {', '.join(FIELDS)}")
    path = check_folder(host_path, state_dir)
    dataset = Dataset(id=dataset_id, title=title or dataset_id, host_path=str(path), created_at=utcnow(),
                      **{k: v for k, v in fields.items() if v is not None})
    session.add(dataset)
    audit.record(session, actor, "dataset.add", dataset_id, dataset=dataset_id, path=str(path),
                 **{k: v for k, v in fields.items() if v})
    return dataset


def update_counts(session: Session, dataset_id: str, n_subjects: int, n_series: int) -> None:
    dataset = get_dataset(session, dataset_id)
    dataset.n_subjects, dataset.n_series = n_subjects, n_series


def remove_dataset(session: Session, actor: str, dataset_id: str) -> None:
    """Remove a dataset from the catalog (its files stay); refused while grants on it are live."""
    dataset = get_dataset(session, dataset_id)
    now = utcnow()
    live = [g.user for g in dataset.grants if g.is_live(now)]
    if live:
        raise WorkbenchError(f"dataset '{dataset_id}' still has live grants for: {', '.join(sorted(live))}",
                             f"revoke them first ('workbench revoke USER {dataset_id}')")
    for grant in list(dataset.grants):
        session.delete(grant)
    session.delete(dataset)
    audit.record(session, actor, "dataset.remove", dataset_id, dataset=dataset_id, path=dataset.host_path)


def list_datasets(session: Session) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.id)))


def datasets_by_id(session: Session, ids) -> dict[str, Dataset]:
    return {d.id: d for d in session.scalars(select(Dataset).where(Dataset.id.in_(list(ids))))}
