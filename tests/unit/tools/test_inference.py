"""Running an approved tool on a series (tools/inference.py, run_checks.py, segmentation_output.py,
measurements.py, `Tools().run`): a real tiny bundle added and approved through the catalogue, run on
real synthetic CT series. The labels lie on the series' grid and equal the network run by hand; the
SEG loads back with the same labels and names the tool; measurements follow the spacing; a tool the
series, the sandbox or the catalogue does not allow is refused before inference; a failed write
leaves nothing behind. Geometry, not accuracy: the weights are random."""

import numpy as np
import pydicom
import pytest
import torch

from imaging_workbench import Tools
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.dicom import load_segmentation, load_series
from imaging_workbench.dicom.synth import generate_cohort, generate_mr_series
from imaging_workbench.tools import catalog, inference
from imaging_workbench.tools.card import ToolRefused
from imaging_workbench.tools.run_checks import check_resources, check_runnable, sandbox_memory_limit

from ...tool_bundles import CARD, write_bundle

# The default card plus Orientationd, which flips the LPS series to RAS: Invertd must flip it back.
PREPROCESSING = [*CARD["preprocessing"], {"name": "Orientationd", "args": {"keys": ["image"], "axcodes": "RAS"}}]


@pytest.fixture(scope="module")
def tools_state(tmp_path_factory):
    """A state dir whose catalogue holds tumour-seg 1.0.0 approved, 0.9.0 retired, 1.1.0 a draft, and
    flip-seg 1.0.0 approved, whose postprocessing forgets to invert its preprocessing."""
    root = tmp_path_factory.mktemp("tools-run")
    settings = validate_settings(with_defaults({"state_dir": str(root / "state"), "database_url": None}))
    settings["roles"]["tool_reviewers"] = ["rita", "ravi"]
    rita, ravi = (WorkbenchContext(settings, actor=a) for a in ("rita", "ravi"))
    for version in ("1.0.0", "0.9.0", "1.1.0"):
        catalog.add(rita, write_bundle(root / "bundles" / version,
                                       card={"version": version, "preprocessing": PREPROCESSING}))
    no_invert = [step for step in CARD["postprocessing"] if step["name"] != "Invertd"]
    catalog.add(rita, write_bundle(root / "bundles" / "flip", card={"id": "flip-seg", "preprocessing": PREPROCESSING,
                                                                    "postprocessing": no_invert}))
    catalog.approve(ravi, "flip-seg", "1.0.0")
    catalog.approve(ravi, "tumour-seg", "1.0.0")
    catalog.approve(ravi, "tumour-seg", "0.9.0")
    catalog.retire(ravi, "tumour-seg", "0.9.0", "labels the wrong lobe")
    return catalog.tools_dir(settings)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    series = generate_cohort(tmp_path_factory.mktemp("ct"), "lung-ct", 1, modality="CT", region="chest",
                             tumour_organ="lung", shape=(12, 32, 32), seed=5, workers=1)[0]
    return series.folder


@pytest.fixture(scope="module")
def ran(tools_state, ct):
    """tumour-seg run once on the CT series, shared by the tests that only read the result."""
    return Tools(catalog=tools_state / "catalog.json").run("tumour-seg", load_series(ct))


@pytest.fixture
def no_inference(monkeypatch):
    """Fail the test if a refused tool got as far as inference."""
    def started(*args, **kwargs):
        raise AssertionError("inference started")

    monkeypatch.setattr(inference, "predict", started)


def by_hand(tools_state, volume) -> np.ndarray:
    """The approved network run without the card's transforms: LPS (z, y, x) -> RAS (x, y, z), scaled,
    windowed, argmax, and back."""
    from monai.inferers import sliding_window_inference
    from monai.networks.nets import UNet

    network = UNet(**CARD["network"]["args"]).eval()
    network.load_state_dict(torch.load(tools_state / "tumour-seg" / "1.0.0" / "models" / "model.pt",
                                       weights_only=True))
    ras = volume.array.transpose(2, 1, 0)[::-1, ::-1, :].astype(np.float32)
    scaled = np.clip((ras + 1000) / 2000, 0, 1)
    with torch.no_grad():
        scores = sliding_window_inference(torch.from_numpy(scaled.copy())[None, None], [16, 16, 16], 1, network,
                                          overlap=0.25)
    return np.asarray(scores[0].argmax(0))[::-1, ::-1, :].transpose(2, 1, 0)


def test_labels_lie_on_the_series_grid_and_equal_the_network_run_by_hand(tools_state, ct, ran):
    volume = load_series(ct)
    assert ran.labels.shape == volume.array.shape
    assert np.allclose(ran.volume.affine, volume.affine) and ran.volume.series_uid == volume.series_uid
    assert set(np.unique(ran.labels)) == {0, 1}  # the card's two channels, both present
    assert np.array_equal(ran.labels, by_hand(tools_state, volume))
    card = next(c for c in Tools(catalog=tools_state / "catalog.json").cards() if c["id"] == "tumour-seg")
    assert ran.tool == {"id": "tumour-seg", "version": "1.0.0", "weights_sha256": card["weights"]["sha256"]}
    assert ran.segments == [{"number": 1, "label": "tumour"}]
    from_folder = Tools(catalog=tools_state / "catalog.json").run("tumour-seg", ct, version="1.0.0")
    assert np.array_equal(from_folder.labels, ran.labels)


def test_a_tool_whose_output_is_not_on_the_series_grid_is_refused(tools_state, ct):
    with pytest.raises(ToolRefused, match=r"tool flip-seg 1.0.0: its postprocessing leaves the prediction on a grid"
                                          r" other than the series'") as e:
        Tools(catalog=tools_state / "catalog.json").run("flip-seg", ct)
    assert "Invertd" in str(e.value)


def test_the_saved_seg_loads_back_onto_the_series_with_the_same_labels_and_names_the_tool(ran, tmp_path,
                                                                                          monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = ran.save_seg()
    assert path == tmp_path / "tool-results" / "tumour-seg" / f"{ran.volume.series_uid}.dcm"
    labels, segments = load_segmentation(path, ran.volume)
    assert np.array_equal(labels, ran.labels)
    assert [(s["number"], s["label"]) for s in segments] == [(1, "tumour")]
    ds = pydicom.dcmread(path)
    assert ds.SeriesDescription == "tumour-seg 1.0.0"
    algorithm = ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("tumour-seg", "1.0.0")
    assert ran.tool["weights_sha256"] in algorithm.AlgorithmParameters
    referenced = [str(i.ReferencedSOPInstanceUID) for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence]
    assert sorted(referenced) == sorted(ran.volume.meta["sop_uids"])
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_measurements_give_voxels_times_the_voxel_volume_and_the_hu_inside(ran):
    row = ran.measurements().set_index("label").loc["tumour"]
    inside = ran.volume.array[ran.labels == 1]
    assert row["voxels"] == inside.size == (ran.labels == 1).sum()
    assert row["volume_ml"] == pytest.approx(inside.size * np.prod(ran.volume.spacing) / 1000)
    assert (row["mean"], row["min"], row["max"], row["unit"]) == (pytest.approx(inside.mean()), inside.min(),
                                                                  inside.max(), "HU")


def test_a_ct_tool_on_an_mr_series_is_refused_naming_the_tool(tools_state, tmp_path, no_inference):
    mr = generate_mr_series(tmp_path, shape=(6, 32, 32), seed=2, seg=False).folder
    with pytest.raises(ToolRefused, match="tool tumour-seg 1.0.0 is for CT series; series .* is MR") as e:
        Tools(catalog=tools_state / "catalog.json").run("tumour-seg", mr)
    assert "choose a tool for MR" in str(e.value)


def test_a_retired_or_draft_tool_is_refused_and_the_newest_approved_one_runs_by_default(tools_state, ct,
                                                                                        no_inference):
    tools = Tools(catalog=tools_state / "catalog.json")
    with pytest.raises(ToolRefused, match="tool tumour-seg 0.9.0 was retired on .*: labels the wrong lobe"):
        tools.run("tumour-seg", ct, version="0.9.0")
    with pytest.raises(ToolRefused, match="tool tumour-seg 1.1.0 is not approved"):
        tools.run("tumour-seg", ct, version="1.1.0")
    with pytest.raises(ToolRefused, match="tool lung-seg has no approved version"):
        tools.run("lung-seg", ct)
    with pytest.raises(ToolRefused, match="tool tumour-seg 2.0.0 is not in the tools folder"):
        tools.run("tumour-seg", ct, version="2.0.0")
    assert tools.version_of("tumour-seg") == "1.0.0"


def test_a_tool_needing_more_memory_than_the_sandbox_has_is_refused_before_inference(tools_state, ct,
                                                                                   no_inference, tmp_path):
    with pytest.raises(ToolRefused, match=r"tool tumour-seg 1.0.0 needs 2G of memory; this sandbox has 1.00 GiB"):
        Tools(catalog=tools_state / "catalog.json", memory_limit="1G").run("tumour-seg", ct)
    limit = tmp_path / "memory.max"
    limit.write_text("1073741824\n")
    assert sandbox_memory_limit(limit) == 1 << 30
    limit.write_text("max\n")
    assert sandbox_memory_limit(limit) is None and sandbox_memory_limit(tmp_path / "none") is None


def test_a_series_off_the_cards_spacing_or_channels_or_a_gpu_tool_without_a_gpu_is_refused(ran):
    card = {**CARD, "io": {"inputs": {"image": {"num_channels": 1, "spacing": {"min": [None, None, 1],
                                                                               "max": [2, 2, 3]}}}}}
    spacing_x = f"{ran.volume.spacing[2]:.3g}"
    with pytest.raises(ToolRefused, match=f"tool tumour-seg 1.0.0 takes x spacing of at most 2 mm; series "
                                          f"{ran.volume.series_uid} has {spacing_x} mm"):
        check_runnable(card, ran.volume, None, False)
    card["io"]["inputs"]["image"] = {"num_channels": 3, "channel_def": {"0": "T1", "1": "T2", "2": "FLAIR"}}
    with pytest.raises(ToolRefused, match=r"tool tumour-seg 1.0.0 needs 3 input channels \(T1, T2, FLAIR\)"):
        check_runnable(card, ran.volume, None, False)
    with pytest.raises(ToolRefused, match="tool tumour-seg 1.0.0 needs a GPU; this sandbox has none"):
        check_resources({**CARD, "needs": {"gpu": True, "memory": "1G"}}, None, False)


def test_a_failure_while_writing_the_seg_leaves_no_file_in_the_results_folder(ran, tmp_path, monkeypatch):
    import highdicom as hd

    def full_disk(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\0" * 128 + b"DICM")  # half a file, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hd.seg.Segmentation, "save_as", full_disk)
    with pytest.raises(OSError, match="No space left"):
        ran.save_seg(tmp_path / "results")
    assert list((tmp_path / "results").iterdir()) == []


def test_the_cpu_runner_gives_the_networks_logits_and_leaves_no_hooks_behind():
    from monai.networks.nets import UNet

    from imaging_workbench.tools.cpu_layout import windows_runner

    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 1, "channels": [4, 8], "strides": [2],
            "num_res_units": 1, "norm": ["group", {"num_groups": 1}]}
    torch.manual_seed(3)
    network = UNet(**args).eval()
    windows = torch.rand(2, 1, 16, 16, 16)
    with torch.inference_mode():
        expected = network(windows)
        with windows_runner(network, {"network": {"class": "UNet", "args": args}}, "cpu") as run:
            got = run(windows)
    assert run is not network  # the channels-last path, not the plain network
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert all(not m._forward_pre_hooks for m in network.modules())
