"""An approved tool as a federated-evaluation job carries it to the sites (tools/site_package.py),
and the sites' part of evaluating it (federated_evaluation.site_run) on a real site's data: the
tool's whole pipeline on each patient's first series, its tumour segment against the SEG."""

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from imaging_workbench.federation.algorithms import federated_evaluation as evaluation
from imaging_workbench.federation.algorithms import federated_training as training
from imaging_workbench.federation.site.data import SiteData, write_site_datasets
from imaging_workbench.dicom.synth import generate_cohort
from imaging_workbench.tools.card import ToolRefused, read_card
from imaging_workbench.tools.site_package import is_package, load_package, pack

from ...tool_bundles import write_bundle

PARAMS = {"crop_size": 16, "max_hd95_voxels": 64, "epsilon": 1.0}


@pytest.fixture(scope="module")
def tool(tmp_path_factory):
    """The default test bundle's card (with io from its metadata) and its weights file's bytes."""
    folder = write_bundle(tmp_path_factory.mktemp("tool") / "seg")
    return read_card(folder), (folder / "models" / "model.pt").read_bytes()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A real site's data: one dataset of three CT patients with their tumour SEGs, indexed by the site."""
    root = tmp_path_factory.mktemp("site")
    generate_cohort(root / "ct", "ct", 3, modality="CT", region="chest", tumour_organ="lung", shape=(12, 32, 32),
                    seed=2, workers=1)
    (root / "local").mkdir()
    write_site_datasets(root / "local", {"ct": root / "ct"})
    return SiteData(root / "local")


def test_a_package_loads_the_cards_network_with_exactly_its_weights(tool):
    card, weights = tool
    network, _, _, loaded = load_package(pack(card, weights))
    expected = torch.load(io.BytesIO(weights), weights_only=True)
    assert loaded == card and all(torch.equal(network.state_dict()[k], v) for k, v in expected.items())
    assert not is_package(training.to_bytes(training.build_model().state_dict()))  # a checkpoint is no package


def test_weights_other_than_the_cards_are_refused(tool):
    card, weights = tool
    other = training.to_bytes(torch.nn.Linear(2, 2).state_dict())
    with pytest.raises(ToolRefused, match=f"not those of its card .*{hashlib.sha256(other).hexdigest()}"):
        load_package(pack(card, other))


@pytest.mark.parametrize("change, says", [
    ({"network": {"class": "torch.nn.Module", "args": {}}}, "network.class"),
    ({"network": {"class": "UNet", "args": {"spatial_dims": "$open('/tmp/pwned-by-a-card', 'w')"}}},
     "starts with '$'"),
])
def test_a_card_off_the_allow_list_is_refused_before_anything_is_built(tool, change, says):
    card, weights = tool
    with pytest.raises(ToolRefused, match=re.escape(says)):
        load_package(pack({**card, **change}, weights))
    assert not Path("/tmp/pwned-by-a-card").exists()


def test_a_package_holding_anything_else_is_no_package(tool):
    card, weights = tool
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("workbench_card.json", json.dumps(card))
        z.writestr("model.pt", weights)
        z.writestr("inference.json", "{}")
    assert is_package(pack(card, weights)) and not is_package(out.getvalue())


def test_a_site_evaluates_a_tool_on_each_patients_whole_series_against_its_seg(tool, site):
    card, weights = tool
    result = evaluation.site_run(PARAMS, {"weights": pack(card, weights)}, site, ["ct"], {})
    dice, hd95 = result["means"]["dice"], result["means"]["hd95_voxels"]
    assert len(dice["values"]) == 3 and all(0.0 <= d <= 1.0 for d in dice["values"])
    assert hd95["range"] == [0.0, 64.0]
    # The same tool run by hand on the first patient gives the first Dice.
    case = next(site.tumour_cases(["ct"]))
    network, pre, post, _ = load_package(pack(card, weights))
    from imaging_workbench.tools.inference import predict

    labels = predict(network, pre, post, card, case.volume, "cpu")
    assert dice["values"][0] == pytest.approx(training.dice(labels == 1, case.labels > 0))
    assert np.isin(labels, [0, 1]).all()
