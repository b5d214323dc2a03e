"""`workbench tools publish-job JOB`: a finished federated-training job's model becomes a draft
tool whose card carries the job, and, once a reviewer approves it, loads into the job's own
architecture with the job's own weights. The job row and its model.pt are what the federation
service stores for a finished job (the federation tier publishes a real one: test_training.py)."""

import json
from datetime import timedelta

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference

from imaging_workbench.clock import utcnow
from imaging_workbench import Tools
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.dicom import load_series
from imaging_workbench.dicom.synth import generate_cohort
from imaging_workbench.federation.algorithms import federated_training as training
from imaging_workbench.federation.hub.job_store import FederatedJob
from imaging_workbench.tools import catalog
from imaging_workbench.tools.loader import load_tool

pytestmark = pytest.mark.usefixtures("database_url")

PARAMS = {"rounds": 1, "crop_size": 16, "epsilon": 8.0, "seed": 0}
WHOLE_SERIES = {**PARAMS, "crop_size": 32, "network": "medium", "hu_window": [-1000, 400], "loss": "dice-ce"}
SITES = {"site-1": ["lung-ct"], "site-2": ["liver-ct"]}


@pytest.fixture
def settings_file(settings, tmp_path):
    import yaml

    path = tmp_path / "workbench.yaml"
    path.write_text(yaml.safe_dump({"state_dir": settings["state_dir"], "database_url": settings["database_url"],
                                    "roles": {"tool_reviewers": ["rita"]}}))
    return path


@pytest.fixture
def jobs(ctx, tmp_path):
    """A finished training job with its model, one of the medium network in a wide window, a running
    one, and a finished statistics job."""
    torch.manual_seed(3)
    weights = training.build_model().state_dict()
    folder, medium = tmp_path / "results" / "job-train", tmp_path / "results" / "job-medium"
    for path, model in ((folder, weights), (medium, training.build_model("medium").state_dict())):
        path.mkdir(parents=True)
        (path / "model.pt").write_bytes(training.to_bytes(model))
    now = utcnow()
    with ctx.session() as s:
        for job_id, algorithm, status, result_dir, params in (
                ("job-train", "federated-training", "finished", str(folder), PARAMS),
                ("job-medium", "federated-training", "finished", str(medium), WHOLE_SERIES),
                ("job-running", "federated-training", "running", None, PARAMS),
                ("job-stats", "cohort-statistics", "finished", str(folder), PARAMS)):
            s.add(FederatedJob(id=job_id, user="bob", algorithm=algorithm, version="1.0", params=params,
                               datasets=["lung-ct", "liver-ct"], site_datasets=SITES, status=status,
                               result={"rounds": [{"round": 0, "dice": 0.12, "epsilon": 1.5},
                                                  {"round": 1, "dice": 0.71, "epsilon": None}]},
                               result_dir=result_dir, submitted_at=now - timedelta(hours=1),
                               deadline=now + timedelta(hours=1), finished_at=now if status == "finished" else None))
    return weights


def test_a_finished_training_job_becomes_a_tool_that_loads_its_own_weights_and_runs(jobs, cli, settings, tmp_path):
    rc, out, err = cli("tools", "publish-job", "job-train", "--id", "fed-tumour", "--json", actor="fed-admin")
    assert rc == 0, err
    rc, _, err = cli("tools", "approve", "fed-tumour", "1.0.0", actor="rita")
    assert rc == 0, err
    [tool] = catalog.show(WorkbenchContext(settings, actor="bob"), "fed-tumour")
    provenance = tool["card"]["provenance"]
    assert (provenance["job"], provenance["sites"], provenance["datasets"]) == ("job-train", sorted(SITES), SITES)
    assert provenance["epsilon_per_round"] == [1.5, None] and provenance["federated_dice_per_round"] == [0.12, 0.71]
    network, _, _, card = load_tool(catalog.tool_folder(settings, "fed-tumour", "1.0.0"))
    assert all(torch.equal(network.state_dict()[k], v) for k, v in jobs.items())

    # It runs as its card says on a real CT series: one tumour segment, on the series' own grid.
    series = generate_cohort(tmp_path / "ct", "lung-ct", 1, modality="CT", region="chest", tumour_organ="lung",
                             shape=(12, 32, 32), seed=5, workers=1)[0]
    volume = load_series(series.folder)
    result = Tools(catalog=catalog.tools_dir(settings) / "catalog.json").run("fed-tumour", volume)
    assert result.segments == [{"number": 1, "label": "tumour"}] and result.labels.shape == volume.array.shape
    assert set(np.unique(result.labels)) <= {0, 1}


def test_a_medium_network_in_a_wide_window_is_carried_by_the_card_and_evaluated_only_as_a_tool(jobs, ctx, cli,
                                                                                                 settings, tmp_path):
    from imaging_workbench.federation.hub.manager import BadRequest, JobManager
    from imaging_workbench.federation.settings import federation_settings

    rc, out, err = cli("tools", "publish-job", "job-medium", "--id", "fed-lung", "--json", actor="fed-admin")
    assert rc == 0, err
    [tool] = catalog.show(WorkbenchContext(settings, actor="bob"), "fed-lung")
    card = tool["card"]
    assert card["network"]["args"]["channels"] == [8, 16, 32] and card["network"]["args"]["strides"] == [2, 2]
    scale = next(t["args"] for t in card["preprocessing"] if t["name"] == "ScaleIntensityRanged")
    assert (scale["a_min"], scale["a_max"]) == (-1000.0, 400.0)
    assert card["inference"] == {"roi_size": [32] * 3, "sw_batch_size": 4, "overlap": 0.25}
    folder = catalog.tool_folder(settings, "fed-lung", "1.0.0")
    metadata = json.loads((folder / "configs" / "metadata.json").read_text())
    assert metadata["network_data_format"]["inputs"]["image"]["value_range"] == [-1000.0, 400.0]

    # Run as a tool, the network sees the series as the sites trained it: (z, y, x), the job's window
    # (a model that saw MONAI's (x, y, z) instead would disagree on about half of these voxels).
    assert cli("tools", "approve", "fed-lung", "1.0.0", actor="rita")[0] == 0
    series = generate_cohort(tmp_path / "ct", "lung-ct", 1, modality="CT", region="chest", tumour_organ="lung",
                             shape=(12, 32, 32), seed=5, workers=1)[0]
    volume = load_series(series.folder)
    result = Tools(catalog=catalog.tools_dir(settings) / "catalog.json").run("fed-lung", volume)
    network = load_tool(folder)[0].eval()
    with torch.no_grad():
        image = torch.from_numpy(training.normalise(volume.array, (-1000, 400)))[None, None]
        trained_view = sliding_window_inference(image, [32] * 3, 4, network, overlap=0.25)[0, 0].numpy() > 0
    assert 0.05 < trained_view.mean() < 0.95  # the random network marks some voxels and not others
    assert np.mean((result.labels > 0) != trained_view) < 1e-3  # channels-last sums in another order

    manager = JobManager(ctx, federation_settings(ctx.settings))
    with ctx.session() as s:
        with pytest.raises(BadRequest) as refused:
            manager._model_bytes(s, "bob", "job-medium")
        assert manager._model_bytes(s, "bob", "job-train") == training.to_bytes(jobs)
    assert "network medium" in refused.value.errors["model_job"]
    assert "workbench tools publish-job job-medium" in refused.value.hint


@pytest.mark.parametrize("job, says", [
    ("job-nope", "no federated job 'job-nope'"),
    ("job-stats", "job job-stats ran cohort-statistics, not federated-training"),
    ("job-running", "job job-running has no finished model (status running)"),
])
def test_a_job_that_made_no_model_is_refused_naming_it(jobs, cli, settings, job, says):
    rc, _, err = cli("tools", "publish-job", job, actor="fed-admin")
    assert rc == 1 and says in err, err
    assert not catalog.tools_dir(settings).exists() or not any(catalog.tools_dir(settings).iterdir())


def test_the_card_resamples_every_series_to_the_spacing_the_job_trained_at(jobs, ctx, cli, settings, tmp_path):
    from imaging_workbench.catalog import datasets
    from imaging_workbench.dicom.commands import index_dataset

    spacings = []
    for dataset_id, region, organ in (("lung-ct", "chest", "lung"), ("liver-ct", "abdomen", "liver")):
        cohort = generate_cohort(tmp_path / "data" / dataset_id, dataset_id, 3, modality="CT", region=region,
                                 tumour_organ=organ, shape=(12, 32, 32), seed=11, workers=1)
        spacings += [series.spacing for series in cohort]
        with ctx.session() as s:
            datasets.add_dataset(s, "steward", dataset_id, tmp_path / "data" / dataset_id, modality="CT",
                                 state_dir=settings["state_dir"])
        index_dataset(ctx, dataset_id, progress=False)
    assert cli("tools", "publish-job", "job-train", "--id", "fed-tumour", actor="fed-admin")[0] == 0
    assert cli("tools", "approve", "fed-tumour", "1.0.0", actor="rita")[0] == 0
    [tool] = catalog.show(WorkbenchContext(settings, actor="bob"), "fed-tumour")
    steps = [step["name"] for step in tool["card"]["preprocessing"]]
    assert steps[:3] == ["LoadImaged", "EnsureChannelFirstd", "Spacingd"]
    z, y, x = np.median(np.asarray(spacings), axis=0)
    assert tool["card"]["preprocessing"][2]["args"]["pixdim"] == pytest.approx([x, y, z], abs=1e-4)

    # A series four times as fine in-plane is resampled for the network, and the labels come back on its grid.
    series = generate_cohort(tmp_path / "fine", "lung-ct", 1, modality="CT", region="chest", tumour_organ="lung",
                             shape=(12, 128, 128), seed=5, workers=1)[0]
    volume = load_series(series.folder)
    result = Tools(catalog=catalog.tools_dir(settings) / "catalog.json").run("fed-tumour", volume)
    assert result.labels.shape == volume.array.shape and set(np.unique(result.labels)) <= {0, 1}
