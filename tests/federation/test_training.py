"""Federated training improves Dice over rounds; the model comes back and can be evaluated."""

import pytest

pytestmark = pytest.mark.federation


@pytest.fixture(scope="module")
def trained(client_for, tmp_path_factory):
    fed = client_for("alice")
    job = fed.submit("federated-training", datasets=["lung-ct", "kidney-ct", "liver-ct", "lung-ct-site2",
                                                     "liver-ct-site3"], rounds=3, local_steps=40)
    job.wait(timeout=300, progress=False)
    return job, job.result(dest=tmp_path_factory.mktemp("model"))


def test_training_improves_dice_over_rounds(trained):
    job, result = trained
    assert result.status == "finished", result.raw.get("error")
    rounds = result.raw["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2, 3]
    assert all(r["sites_trained"] == 3 for r in rounds[:-1])
    dice = [r["dice"] for r in rounds]
    assert dice[-1] > dice[0] + 0.01, dice
    assert result.table["dice"].tolist() == dice


def test_training_returns_the_global_model(trained):
    import torch

    from imaging_workbench.federation.algorithms.federated_training import build_model

    _, result = trained
    assert result.model_file is not None and result.model_file.stat().st_size > 10_000
    build_model().load_state_dict(torch.load(result.model_file, weights_only=True))


def test_evaluation_of_the_trained_model_aggregates_dice_and_hausdorff(trained, client_for, tmp_path):
    job, _ = trained
    fed = client_for("alice")
    evaluation = fed.submit("federated-evaluation", datasets=["lung-ct", "liver-ct", "liver-ct-site3"],
                            model_job=job.id)
    evaluation.wait(timeout=180, progress=False)
    result = evaluation.result(dest=tmp_path)
    assert result.status == "finished", result.raw.get("error")
    dice = result.raw["metrics"]["dice"]
    assert dice["cases"] >= 30 and 0 <= dice["mean"] <= 1
    assert "hd95_voxels" in result.raw["metrics"]


def test_evaluation_of_someone_elses_model_is_refused(trained, client_for):
    from imaging_workbench.federation.client import FederationError

    job, _ = trained
    with pytest.raises(FederationError) as e:
        client_for("bob").submit("federated-evaluation", datasets=["lung-ct"], model_job=job.id)
    assert e.value.status == 403
