"""How fast does an approved tool segment a CT? Ours (`Tools().run`) against the same bundle run by
stock MONAI bundle machinery, on one 512x512x300 CT series.

    python benchmarks/tools.py [--cache DIR] [--repeats 3] [--roi 96] [--sw-batch 2] [--device cpu]
                               [--size 512 --slices 300] [--bundle FOLDER]

Both run the same bundle: by default one written here (NETWORK, the federated training's UNet
architecture, seeded random weights; HU window to [0, 1]; sliding window of --roi, overlap 0.25,
--sw-batch; sigmoid, Invertd, threshold 0.5), or the bundle FOLDER with its workbench card (then
--roi and --sw-batch are the card's). Stock's config is written from that card, so both run the
same network, weights, transforms, window and float32 precision, from the DICOM folder to a mask on
the series' grid, both warm (the median of --repeats runs taken in turns, after one warm-up run
each), on the same torch threads:
  ours    Tools().run(tool, folder): the workbench's DICOM loader, the checked card pipeline, the
          network run channels-last on the CPU (tools/cpu_layout.py)
  stock   monai.bundle.ConfigParser over a MONAI inference config as model-zoo bundles write it:
          LoadImaged (MONAI's DICOM reader), Dataset, DataLoader, SlidingWindowInferer, the
          postprocessing with Invertd, driven by SupervisedEvaluator's own loop (decollate, then
          postprocessing per item); the evaluator itself needs pytorch-ignite, which is not installed
The masks must agree at Dice >= 0.99. Prints both medians and the ratio, writes
benchmarks/results/tools.png.
"""

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from load_series import ensure_series  # noqa: E402 - the benchmarks' shared, cached 512x512x300 CT

TOOL = "bench-seg"
NETWORK = {"spatial_dims": 3, "in_channels": 1, "out_channels": 1, "channels": [4, 8], "strides": [2],
           "num_res_units": 1, "norm": ["group", {"num_groups": 1}]}
HU_WINDOW = (-160.0, 240.0)
OVERLAP = 0.25


def write_bundle(folder: Path, roi: int, sw_batch: int) -> Path:
    """A bundle of the federated UNet (seeded weights) with its workbench card and MONAI metadata."""
    import monai
    import torch
    from monai.networks.nets import UNet

    (folder / "models").mkdir(parents=True)
    (folder / "configs").mkdir()
    torch.manual_seed(7)
    torch.save(UNet(**NETWORK).state_dict(), folder / "models" / "model.pt")
    data = (folder / "models" / "model.pt").read_bytes()
    image = {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1,
             "spatial_shape": [roi] * 3, "dtype": "float32", "value_range": list(HU_WINDOW), "is_patch_data": True,
             "channel_def": {"0": "image"}}
    (folder / "configs" / "metadata.json").write_text(json.dumps({
        "schema": "the workbench's tools/metadata_schema.json", "version": "1.0.0",
        "monai_version": monai.__version__, "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__, "optional_packages_version": {}, "task": "benchmark",
        "description": "tools benchmark", "authors": "benchmarks/tools.py", "copyright": "none",
        "network_data_format": {"inputs": {"image": image}, "outputs": {"pred": {
            **image, "format": "segmentation", "value_range": [0, 1], "channel_def": {"0": "tumour"}}}}}))
    card = {"id": TOOL, "version": "1.0.0", "kind": "segmentation", "modality": "CT", "body_part": "chest",
            "intended_use": "Research use only, not for diagnosis: a benchmark.", "licences": ["none"],
            "needs": {"gpu": False, "memory": "2G"}, "provenance": {"made_by": "benchmarks/tools.py"},
            "weights": {"file": "models/model.pt", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
            "network": {"class": "UNet", "args": NETWORK},
            "preprocessing": [{"name": "LoadImaged", "args": {"keys": ["image"]}},
                              {"name": "EnsureChannelFirstd", "args": {"keys": ["image"]}},
                              {"name": "ScaleIntensityRanged", "args": {
                                  "keys": ["image"], "a_min": HU_WINDOW[0], "a_max": HU_WINDOW[1], "b_min": 0.0,
                                  "b_max": 1.0, "clip": True}}],
            "postprocessing": [{"name": "Activationsd", "args": {"keys": ["pred"], "sigmoid": True}},
                               {"name": "Invertd", "args": {"keys": ["pred"], "transform": "preprocessing",
                                                            "orig_keys": ["image"]}},
                               {"name": "AsDiscreted", "args": {"keys": ["pred"], "threshold": 0.5}}],
            "inference": {"roi_size": [roi] * 3, "sw_batch_size": sw_batch, "overlap": OVERLAP}}
    (folder / "workbench_card.json").write_text(json.dumps(card))
    return folder


def read_card(bundle: Path) -> dict:
    return json.loads((bundle / "workbench_card.json").read_text())


def approved_catalog(state: Path, bundle: Path) -> Path:
    """The bundle added and approved in a throwaway deployment; its catalog.json."""
    from imaging_workbench.context import WorkbenchContext
    from imaging_workbench.deployment import validate_settings, with_defaults
    from imaging_workbench.tools import catalog

    card = read_card(bundle)
    settings = validate_settings(with_defaults({"state_dir": str(state), "database_url": None}))
    settings["roles"]["tool_reviewers"] = ["reviewer"]
    catalog.add(WorkbenchContext(settings, actor="benchmark"), bundle)
    catalog.approve(WorkbenchContext(settings, actor="reviewer"), card["id"], card["version"])
    return catalog.tools_dir(settings) / "catalog.json"


def stock_steps(steps: list[dict]) -> dict:
    """A card's transform steps as a MONAI config Compose (Invertd's "preprocessing" as a reference)."""
    return {"_target_": "Compose", "transforms": [
        {"_target_": step["name"], **{k: "@preprocessing" if (step["name"], k) == ("Invertd", "transform") else v
                                      for k, v in step.get("args", {}).items()}} for step in steps]}


def stock_config(bundle: Path, series: Path, device: str) -> dict:
    """The MONAI inference config of the same bundle, as a MONAI model-zoo bundle writes it, from its card."""
    card = read_card(bundle)
    return {
        "device": f"$torch.device('{device}')",
        "network_def": {"_target_": card["network"]["class"], **card["network"]["args"]},
        "network": "$@network_def.to(@device)",
        "preprocessing": stock_steps(card["preprocessing"]),
        "dataset": {"_target_": "Dataset", "data": [{"image": str(series)}], "transform": "@preprocessing"},
        "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 1, "num_workers": 0},
        "inferer": {"_target_": "SlidingWindowInferer", **card["inference"]},
        "postprocessing": stock_steps(card["postprocessing"]),
        "checkpoint": str(bundle / card["weights"]["file"]),
    }


def run_stock(config: dict) -> np.ndarray:
    """The stock run; its mask (labels > 0) as (z, y, x)."""
    import torch
    from monai.bundle import ConfigParser
    from monai.data import decollate_batch

    parser = ConfigParser(config)
    network, inferer = parser.get_parsed_content("network"), parser.get_parsed_content("inferer")
    postprocessing, device = parser.get_parsed_content("postprocessing"), parser.get_parsed_content("device")
    network.load_state_dict(torch.load(parser["checkpoint"], map_location=device, weights_only=True))
    network.eval()
    for batch in parser.get_parsed_content("dataloader"):
        with torch.no_grad():
            batch["pred"] = inferer(batch["image"].to(device), network)
        items = [postprocessing(item) for item in decollate_batch(batch)]
    pred = np.asarray(items[0]["pred"].detach().cpu())
    return (pred.argmax(0) if pred.shape[0] > 1 else pred[0]).transpose(2, 1, 0) > 0.5


def dice(a: np.ndarray, b: np.ndarray) -> float:
    denominator = a.sum() + b.sum()
    return float(2 * (a & b).sum() / denominator) if denominator else 1.0


def timed(fns: list, repeats: int) -> list[tuple[float, object]]:
    """(median seconds, last output) of each of `fns`, run in turns after one warm-up each: on a
    shared machine, load that comes and goes then falls on all of them alike."""
    outs = [fn() for fn in fns]  # warm-up: imports, page cache, lazy plugins
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            outs[i] = fn()
            times[i].append(time.perf_counter() - start)
    return [(statistics.median(t), out) for t, out in zip(times, outs)]


def plot(ours: float, stock: float, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 2.4))
    ax.barh(["stock MONAI bundle", "ours (Tools().run)"], [stock, ours], color=["#999", "#4a6fa5"])
    ax.set_xlabel("seconds, DICOM folder to mask (median, warm)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = RESULTS / "tools.png"
    fig.savefig(path, dpi=120)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "workbench-bench")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--roi", type=int, default=96)
    p.add_argument("--sw-batch", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=512, help="rows and columns of the CT")
    p.add_argument("--slices", type=int, default=300)
    p.add_argument("--bundle", type=Path, help="a bundle folder with a workbench card (default: one written here)")
    args = p.parse_args(argv)

    import torch

    from imaging_workbench import Tools

    shape = f"{args.size}x{args.size}x{args.slices}"
    with tempfile.TemporaryDirectory(prefix="workbench-tools-bench-") as tmp:
        bundle = args.bundle or write_bundle(Path(tmp) / "bundle", args.roi, args.sw_batch)
        card = read_card(bundle)
        # A chest tool gets a chest CT with a lung nodule, so that its mask is not empty.
        region, organ = ("chest", "lung") if card["body_part"].upper() == "CHEST" else ("abdomen", "liver")
        name = f"ct-{args.slices}-explicit" if args.size == 512 else f"ct-{shape}-explicit"  # load_series.py's cache
        series = ensure_series(args.cache, name if region == "abdomen" else f"{name}-{region}",
                               (args.slices, args.size, args.size), "explicit", region, organ)
        tools = Tools(catalog=approved_catalog(Path(tmp) / "state", bundle))
        (ours, result), (stock, stock_mask) = timed(
            [lambda: tools.run(card["id"], series, version=card["version"], device=args.device),
             lambda: run_stock(stock_config(bundle, series, args.device))], args.repeats)
    agreement = dice(result.labels > 0, stock_mask)
    threads, window = torch.get_num_threads(), card["inference"]
    print(f"{shape} CT, {card['network']['class']} {card['network']['args'].get('channels', '')}, roi "
          f"{window['roi_size']}, overlap {window['overlap']}, sw batch {window['sw_batch_size']}, float32, "
          f"{args.device}, {threads} threads, median of {args.repeats} warm runs")
    print(f"  ours  (Tools().run)          {ours:8.2f} s")
    print(f"  stock (MONAI bundle config)  {stock:8.2f} s")
    print(f"  ratio stock / ours           {stock / ours:8.2f} x")
    print(f"  masks agree: Dice {agreement:.4f} ({int((result.labels > 0).sum())} and {int(stock_mask.sum())} voxels)")
    if not stock_mask.any():
        print("  both masks are empty: their agreement says nothing; run a tool on a series it finds something in")
    title = f"{shape} CT, roi {window['roi_size'][0]}, {args.device}: stock / ours = {stock / ours:.2f}x"
    print(f"  plot: {plot(ours, stock, title)}")
    return 0 if agreement >= 0.99 and stock_mask.any() else 1


if __name__ == "__main__":
    sys.exit(main())
