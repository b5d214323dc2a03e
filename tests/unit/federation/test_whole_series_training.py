"""Federated training for a whole-series lung tool: without DP, a site trains the medium UNet on a
wide HU window with crops anywhere in the volume and MONAI's Dice + cross-entropy; the defaults
stay the small DP-SGD network, and a DP-SGD site refuses the plain-training loss."""

import pytest

torch = pytest.importorskip("torch")

from imaging_workbench.federation.algorithms import federated_training as ft  # noqa: E402
from imaging_workbench.federation.protocol.params import param_errors  # noqa: E402
from imaging_workbench.federation.site.release import Refusal  # noqa: E402

WHOLE_SERIES = {"network": "medium", "hu_window": [-1000, 400], "background_share": 0.7, "loss": "dice-ce",
                "lr_schedule": "cosine", "learning_rate": 3e-3, "crop_size": 16, "batch_size": 4,
                "local_steps": 20, "rounds": 2, "seed": 0}
POLICY = {"weights": "min-count", "min_count": 2}


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """Two sites of two synthetic lung CT patients each."""
    from imaging_workbench.dicom.synth import generate_cohort
    from imaging_workbench.federation.site.data import SiteData, write_site_datasets

    root, sites = tmp_path_factory.mktemp("whole-series"), {}
    for seed, name in enumerate(("site-1", "site-2")):
        generate_cohort(root / name / "lung-ct", "lung-ct", 2, modality="CT", region="chest", tumour_organ="lung",
                        shape=(24, 48, 48), seed=seed, workers=1)
        (root / name / "local").mkdir()
        write_site_datasets(root / name / "local", {"lung-ct": str(root / name / "lung-ct")})
        sites[name] = SiteData(root / name / "local")
    return sites


def whole_volume_loss(weights: dict, cases: list[dict]) -> float:
    """The model's mean Dice + cross-entropy on whole volumes, inferred as a tool does (sliding window)."""
    from monai.inferers import sliding_window_inference

    model, loss = ft.build_model("medium"), ft.plain_loss("dice-ce")
    model.load_state_dict(weights)
    model.eval()
    size = WHOLE_SERIES["crop_size"]
    with torch.no_grad():
        return sum(float(loss(sliding_window_inference(torch.from_numpy(case["volume"]).float()[None, None],
                                                       [size] * 3, 4, model, overlap=0.25),
                              torch.from_numpy(case["mask"]).float()[None, None])) for case in cases) / len(cases)


def test_plain_training_of_the_medium_network_on_whole_volumes_lowers_their_loss(sites):
    assert param_errors(ft.ALGORITHM, WHOLE_SERIES) == {}
    server = ft.Server(WHOLE_SERIES, min_count=2)
    initial = dict(server.weights)
    states = {name: {} for name in sites}
    for round_ in range(server.rounds):
        task = {**server.task(round_), "round": round_, "site_policy": POLICY}
        for name, data in sites.items():
            result = ft.site_run(WHOLE_SERIES, task, data, ["lung-ct"], states[name])
            server.add(name, {**result, "means": {"dice": {"n": 2, "mean": 0.5, "sd": 0.1}}})
        server.end_round(round_)
    assert {k: v.shape for k, v in server.weights.items()} == \
           {k: v.shape for k, v in ft.build_model("medium").state_dict().items()}
    cases = [case for state in states.values() for case in state["cases"]]  # whole volumes kept for background crops
    before, after = whole_volume_loss(initial, cases), whole_volume_loss(server.weights, cases)
    assert after < 0.9 * before, (before, after)


def test_the_result_names_the_jobs_network_and_window(tmp_path):
    model = ft.Server(WHOLE_SERIES, min_count=2).final(tmp_path)["model"]
    assert "channels=(8, 16, 32), strides=(2, 2)" in model["architecture"]
    assert "[-1000, 400]" in model["input"]


def test_a_dp_sgd_site_refuses_the_dice_ce_loss_naming_it_before_reading_data():
    task = {"weights": b"", "train": True, "round": 0, "site_policy": {"weights": "dp-sgd"}}
    with pytest.raises(Refusal) as refused:
        ft.site_run(WHOLE_SERIES, task, None, ["lung-ct"], {})
    assert list(refused.value.fields) == ["loss"]
    assert "'dice-ce' is for training without DP" in refused.value.fields["loss"]
    assert ft.policy_problems({"loss": "balanced"}, "dp-sgd") == {} == ft.policy_problems(WHOLE_SERIES, "min-count")


@pytest.mark.parametrize("window", [[400, -1000], [-1000], [-1000, 0, 400], [-160, -160]])
def test_a_hu_window_that_is_not_two_increasing_numbers_is_refused(window):
    assert "hu_window" in param_errors(ft.ALGORITHM, {"hu_window": window})


def test_the_defaults_build_the_small_network_of_dp_sgd():
    from monai.networks.nets import UNet

    small = UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=(4, 8), strides=(2,), num_res_units=1,
                 norm=("group", {"num_groups": 1})).state_dict()
    defaults = {k: v["default"] for k, v in ft.PARAMS.items()}
    for weights in (ft.build_model().state_dict(), ft.Server(defaults, min_count=2).weights):
        assert {k: v.shape for k, v in weights.items()} == {k: v.shape for k, v in small.items()}
        assert float(weights["model.2.1.conv.unit0.conv.bias"]) == ft.OUTPUT_BIAS
    assert ft.architecture() == ("monai.networks.nets.UNet(spatial_dims=3, in_channels=1, out_channels=1, "
                                 "channels=(4, 8), strides=(2,), num_res_units=1, norm=('group', {'num_groups': 1}))")
