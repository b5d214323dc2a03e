"""A tool made by the platform itself: a finished federated-training job as a MONAI bundle.

The job's global model (its `model.pt`, the job's `network` of federation/algorithms/
federated_training.py) becomes `models/model.pt`; the card declares that architecture from the
allow-list, the job's own preprocessing (the series resampled to the spacing it trained at, its
`hu_window` scaled to [0, 1]), sliding windows of its crop size, and postprocessing (back onto the
series' grid, sigmoid, threshold 0.5), and carries the job: its id, the sites and
datasets it trained on, the epsilon each round spent and the federated Dice of every round. The
bundle is then added like any other (catalog.add: every check, a draft until a tool reviewer
approves it).
"""

import json
import tempfile
from pathlib import Path

import numpy as np

from ..catalog.access_requests import BadField
from ..errors import NotFound, WorkbenchError
from ..federation.algorithms import federated_training as training
from ..federation.hub.job_store import FederatedJob
from . import catalog

INTENDED_USE = "Research use only, not for diagnosis: a demonstration of models trained by the platform's federation."
FINISHED = ("finished", "partial")


def _finished_training_job(session, job_id: str) -> FederatedJob:
    job = session.get(FederatedJob, job_id)
    if job is None:
        raise NotFound(f"no federated job '{job_id}'", "see the jobs with 'workbench federation jobs'")
    if job.algorithm != training.ALGORITHM.id:
        raise BadField("job", f"job {job_id} ran {job.algorithm}, not {training.ALGORITHM.id}",
                       "publish a federated-training job: only it makes a model")
    model = Path(job.result_dir or "") / "model.pt"
    if job.status not in FINISHED or not model.is_file():
        raise BadField("job", f"job {job_id} has no finished model (status {job.status})",
                       "wait for it to finish, or train again")
    return job


def training_spacing(ctx, job: FederatedJob) -> list[float] | None:
    """The median voxel spacing, (x, y, z) mm, of the image series the job trained on, from its
    datasets' index files; None when none of them is indexed."""
    from ..dicom.commands import series_catalog

    dataset_ids = [d for datasets in job.site_datasets.values() for d in datasets]
    rows = series_catalog(ctx, dataset_ids).query(modality="CT", limit=None).rows
    spacings = [row["spacing"] for row in rows if row["spacing"]]
    if not spacings:
        return None
    z, y, x = (float(v) for v in np.median(np.asarray(spacings, float), axis=0))
    return [round(x, 4), round(y, 4), round(z, 4)]


def card_of(job: FederatedJob, tool_id: str, version: str, body_part: str, spacing: list | None = None) -> dict:
    """The model card of the job's model (the weights' hash and size are added when written);
    `spacing` (x, y, z) mm, when known, is what every series is resampled to before the network."""
    size, (low, high) = job.params["crop_size"], training.setting(job.params, "hu_window")
    # The network learnt nodules at its training data's voxel size: a finer series (a scanner's
    # 0.7 mm against the cohorts' 2.8) shows them several times larger, and it finds none.
    resample = [{"name": "Spacingd", "args": {"keys": ["image"], "pixdim": list(spacing), "mode": "bilinear"}}] \
        if spacing else []
    args = {k: list(v) if isinstance(v, tuple) else v
            for k, v in training.network_args(training.setting(job.params, "network")).items()}
    rounds = list((job.result or {}).get("rounds") or [])
    return {
        "id": tool_id, "version": version, "kind": "segmentation", "modality": "CT", "body_part": body_part,
        "intended_use": INTENDED_USE, "licences": ["research use within the platform"],
        "needs": {"gpu": False, "memory": "2G"},
        "provenance": {"made_by": "federated training on the platform", "job": job.id, "user": job.user,
                       "algorithm": f"{job.algorithm} {job.version}", "sites": sorted(job.site_datasets),
                       "datasets": job.site_datasets, "params": job.params,
                       "finished_at": job.finished_at.isoformat(timespec="seconds") if job.finished_at else None,
                       "status": job.status,
                       "epsilon_per_round": [r.get("epsilon") for r in rounds],
                       "federated_dice_per_round": [r.get("dice") for r in rounds]},
        "network": {"class": "UNet", "args": args},
        "preprocessing": [
            {"name": "LoadImaged", "args": {"keys": ["image"]}},
            {"name": "EnsureChannelFirstd", "args": {"keys": ["image"]}},
            *resample,
            # The federation trains on the sites' (z, y, x) arrays, MONAI loads (x, y, z): the network
            # must see the axes it learnt on (Invertd undoes it).
            {"name": "Transposed", "args": {"keys": ["image"], "indices": [0, 3, 2, 1]}},
            {"name": "ScaleIntensityRanged", "args": {"keys": ["image"], "a_min": float(low),
                                                      "a_max": float(high), "b_min": 0.0, "b_max": 1.0,
                                                      "clip": True}}],
        "postprocessing": [
            {"name": "Activationsd", "args": {"keys": ["pred"], "sigmoid": True}},
            {"name": "Invertd", "args": {"keys": ["pred"], "transform": "preprocessing", "orig_keys": ["image"]}},
            {"name": "AsDiscreted", "args": {"keys": ["pred"], "threshold": 0.5}}],
        "inference": {"roi_size": [size] * 3, "sw_batch_size": 4, "overlap": 0.25},
    }


def metadata_of(job: FederatedJob) -> dict:
    """configs/metadata.json: MONAI's required keys and the network's data format."""
    import monai
    import numpy
    import torch

    shape, (low, high) = [job.params["crop_size"]] * 3, training.setting(job.params, "hu_window")
    image = {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1, "spatial_shape": shape,
             "dtype": "float32", "value_range": [float(low), float(high)], "is_patch_data": True,
             "channel_def": {"0": "image"}}
    return {"schema": "meta_schema (the workbench's own copy: tools/metadata_schema.json)",
            "version": "1.0.0", "monai_version": monai.__version__, "pytorch_version": torch.__version__.split("+")[0],
            "numpy_version": numpy.__version__, "optional_packages_version": {},
            "task": "Tumour segmentation in CT", "description": f"The global model of federated job {job.id}",
            "authors": "the platform's federated training", "copyright": "the platform",
            "network_data_format": {"inputs": {"image": image},
                                    "outputs": {"pred": {**image, "format": "segmentation", "value_range": [0, 1],
                                                         "channel_def": {"0": "tumour"}}}}}


def write_bundle(job: FederatedJob, folder: Path, tool_id: str, version: str, body_part: str,
                 spacing: list | None = None) -> Path:
    """The job's model as a bundle folder (models/model.pt, configs/metadata.json, the card)."""
    import hashlib

    import torch

    (folder / "models").mkdir(parents=True)
    (folder / "configs").mkdir()
    weights = training.from_bytes((Path(job.result_dir) / "model.pt").read_bytes())
    torch.save(weights, folder / "models" / "model.pt")
    data = (folder / "models" / "model.pt").read_bytes()
    card = card_of(job, tool_id, version, body_part, spacing)
    card["weights"] = {"file": "models/model.pt", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (folder / "workbench_card.json").write_text(json.dumps(card, indent=1))
    (folder / "configs" / "metadata.json").write_text(json.dumps(metadata_of(job), indent=1))
    return folder


def publish_job(ctx, job_id: str, tool_id: str, version: str = "1.0.0", body_part: str = "chest and abdomen") -> dict:
    """Add the model of finished federated-training job `job_id` as draft tool `tool_id`.

    Raises:
        NotFound, BadField: no such job, not a training job, or no finished model.
        ToolRefused, Conflict: from catalog.add (the bundle's checks; that id and version exist).
    """
    with ctx.session() as s:
        job = _finished_training_job(s, job_id)
        s.expunge(job)
    spacing = training_spacing(ctx, job)
    with tempfile.TemporaryDirectory(prefix="workbench-publish-job-") as tmp:
        try:
            bundle = write_bundle(job, Path(tmp) / tool_id, tool_id, version, body_part, spacing)
        except OSError as e:
            raise WorkbenchError(f"job {job_id}'s model could not be read: {e}", "see the job's result folder") from None
        return catalog.add(ctx, bundle)
