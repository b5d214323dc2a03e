"""Federated training with DP-SGD versus without, at demo scale: held-out Dice of the global model.

Generates the demo's CT cohorts (100 patients each, 32x64x64, cached in a scratch folder, with the
prepared tumour crops), reads them through `SiteData` like a site does and splits them as the demo
does: site-1 lung-ct + kidney-ct, site-2 liver-ct + lung-ct-site2, site-3 liver-ct-site3 (brain-mr
has no CT tumours). About 15 % of each dataset's patients are held out; FedAvg runs in-process
(`site_run` at each site, one after another with one torch thread, the algorithm's `Server`)
`--repeats` times per weights policy: "min-count" (no DP) and "dp-sgd" (Opacus; one RDP accountant per job at each
site, its noise calibrated for all training rounds to 90 % of the job's epsilon; each round
reports the increase, total per site <= the job's epsilon). The per-round Dice means a site
releases are passed to the server exactly (their DP noise is another module's job). Prints a
table (site and held-out Dice per round, the slowest site's seconds per round) and the ratio of
the median DP to non-DP held-out Dice (goal: >= 0.8 at epsilon <= 8).

    /var/lib/workbench/venv/bin/python benchmarks/dp_training.py [--rounds 3] [--repeats 5] [--modes min-count,dp-sgd]
        [--max_grad_norm 0.5 ...any algorithm parameter]

Writes benchmarks/results/dp_training.json and dp_training.png (unless --no-save).
"""

import argparse
import hashlib
import inspect
import json
import pickle
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"

# dataset -> (region, tumour organ); sites as in imaging_workbench.dicom.demo (CT datasets only)
DATASETS = {"lung-ct": ("chest", "lung"), "kidney-ct": ("abdomen", "kidney"), "liver-ct": ("abdomen", "liver"),
            "lung-ct-site2": ("chest", "lung"), "liver-ct-site3": ("abdomen", "liver")}
SITES = {"site-1": ["lung-ct", "kidney-ct"], "site-2": ["liver-ct", "lung-ct-site2"], "site-3": ["liver-ct-site3"]}


def dataset_cases(workdir: Path, dataset: str, n: int, crop_size: int) -> list[dict]:
    """The dataset's prepared tumour cases; the cohort is generated once, the crops cached per
    crop size, in HU."""
    from imaging_workbench.dicom.synth import generate_cohort
    from imaging_workbench.federation.algorithms import federated_training as ft
    from imaging_workbench.federation.site.data import SiteData, write_site_datasets

    folder = workdir / dataset if n == 100 else workdir / f"{dataset}-{n}"
    if not (folder / ".complete").exists():
        region, organ = DATASETS[dataset]
        generate_cohort(folder, dataset, n, modality="CT", region=region, tumour_organ=organ,
                        shape=(32, 64, 64), seed=zlib.crc32(f"{dataset}/small".encode()))
        (folder / ".complete").write_text("")
    # cached in HU (the crops before `normalise`), so that a change of input window needs no re-reading
    source = inspect.getsource(ft.prepare_cases) + inspect.getsource(ft.jitter)
    key = hashlib.sha1(f"{crop_size} {source}".encode()).hexdigest()[:12]
    cache = folder.parent / f"{folder.name}.hu-cases-{key}.pkl"
    if cache.exists():
        raw = pickle.loads(cache.read_bytes())
    else:
        local = folder.parent / f"local-{folder.name}"
        local.mkdir(parents=True, exist_ok=True)
        write_site_datasets(local, {dataset: str(folder)})
        normalise, ft.normalise = ft.normalise, lambda hu, window=None: hu.astype("float32")
        try:
            raw = ft.prepare_cases(SiteData(local), [dataset], crop_size)
        finally:
            ft.normalise = normalise
        cache.write_bytes(pickle.dumps(raw))
    return [{**case, "image": ft.normalise(case["image"])} for case in raw]


def released(means: dict) -> dict:
    values = means["values"]
    return {"n": len(values), "mean": statistics.fmean(values), "sd": statistics.pstdev(values)}


def run(mode: str, params: dict, sites: dict[str, list[dict]], held_out: list[dict], delta: float) -> dict:
    from imaging_workbench.federation.algorithms.federated_training import (Server, build_model, epsilon_split,
                                                                            patient_dice, site_run)

    server = Server(params, min_count=5)
    policy = {"weights": mode, "min_count": 5, "delta": delta, "dp_epsilon": epsilon_split(params)["dp_sgd"]}
    states = {name: {"cases": cases} for name, cases in sites.items()}
    rows, spent = [], {name: 0.0 for name in sites}
    start = time.perf_counter()
    for round_ in range(server.rounds):
        task = {**server.task(round_), "round": round_, "site_policy": policy}
        seconds, dp = {}, {}
        for name, state in states.items():
            t = time.perf_counter()
            result = site_run(params, task, None, SITES.get(name, [name]), state)
            seconds[name] = time.perf_counter() - t
            dp[name] = result.get("dp_sgd")
            spent[name] += (result.get("dp_sgd") or {}).get("epsilon", 0.0)
            server.add(name, {**result, "means": {"dice": released(result["means"]["dice"])}})
        metrics = server.end_round(round_)
        model = build_model()
        model.load_state_dict(server.weights)
        metrics["held_out_dice"] = statistics.fmean(patient_dice(model, held_out, params["crop_size"]))
        metrics["site_seconds"] = seconds
        metrics["dp_sgd"] = dp
        rows.append(metrics)
        print(f"  {mode} round {round_}: site Dice {metrics['dice']:.3f}, held-out {metrics['held_out_dice']:.3f}, "
              f"slowest site {max(seconds.values()):.1f} s", flush=True)
    # each site also spends epsilon_split()["release"] per round on its Dice means
    total = max(spent.values()) + server.rounds * epsilon_split(params)["release"] if mode == "dp-sgd" else None
    return {"mode": mode, "rounds": rows, "seconds": time.perf_counter() - start, "epsilon_per_site": total,
            "held_out_dice": rows[-1]["held_out_dice"], "site_dice": rows[-1]["dice"]}


def main():
    from imaging_workbench.federation.algorithms.federated_training import PARAMS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100, help="patients per dataset")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "workbench-dp-demo"))
    parser.add_argument("--modes", default="min-count,dp-sgd")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of each mode (DP-SGD draws fresh secret noise each time): the median is compared")
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--no-save", action="store_true", help="do not write benchmarks/results")
    for name, spec in PARAMS.items():  # any algorithm parameter, e.g. --max_grad_norm 0.5
        parser.add_argument(f"--{name}", type=type(spec["default"]), default=spec["default"])
    args = parser.parse_args()
    params = {name: getattr(args, name) for name in PARAMS}

    import torch

    torch.set_num_threads(1)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sites, held_out = {}, []
    for site, datasets in SITES.items():
        sites[site] = []
        for dataset in datasets:
            cases = dataset_cases(workdir, dataset, args.patients, params["crop_size"])
            patients = sorted({c["patient"] for c in cases})
            held = {p for i, p in enumerate(patients) if i % 20 in (3, 10, 17)}  # 15 %
            held_out += [c for c in cases if c["patient"] in held]
            sites[site] += [c for c in cases if c["patient"] not in held]
    sizes = {site: len({c["patient"] for c in cases}) for site, cases in sites.items()}
    print(f"training patients per site {sizes}, {len(held_out)} held-out cases; params {params}", flush=True)

    # Each repeat draws its own initial weights and crops (seed + i), and under DP-SGD fresh secret noise.
    runs = [run(mode, {**params, "seed": params["seed"] + i}, sites, held_out, args.delta)
            for mode in args.modes.split(",") for i in tqdm(range(args.repeats), desc=mode, leave=False)]
    print(f"\n{'mode':<10} {'round':>5} {'site dice':>9} {'held-out':>9} {'eps/round':>9} {'sigma':>6} "
          f"{'steps':>5} {'q':>5} {'max s':>6}")
    for r in runs:
        for m in r["rounds"]:
            dp = next(iter(m["dp_sgd"].values())) or {}
            eps = f"{m['epsilon']:.3f}" if m["epsilon"] is not None else "-"
            sigma = f"{dp['noise_multiplier']:.3f}" if dp else "-"
            q = f"{dp['sample_rate']:.3f}" if dp else "-"
            print(f"{r['mode']:<10} {m['round']:>5} {m['dice']:>9.3f} {m['held_out_dice']:>9.3f} {eps:>9} "
                  f"{sigma:>6} {dp.get('steps', '-'):>5} {q:>5} {max(m['site_seconds'].values()):>6.1f}")
        eps = f"{r['epsilon_per_site']:.2f}" if r["epsilon_per_site"] is not None else "-"
        print(f"{r['mode']:<10} held-out Dice {r['held_out_dice']:.3f}, {r['seconds']:.0f} s, epsilon per site {eps}")
    by_mode = {mode: sorted(r["held_out_dice"] for r in runs if r["mode"] == mode) for mode in args.modes.split(",")}
    medians = {mode: statistics.median(dice) for mode, dice in by_mode.items()}
    print()
    for mode, dice in by_mode.items():
        print(f"{mode:<10} held-out Dice over {len(dice)} runs: median {medians[mode]:.3f} "
              f"(min {dice[0]:.3f}, max {dice[-1]:.3f})")
    ratio = None
    if {"min-count", "dp-sgd"} <= set(medians):
        ratio = medians["dp-sgd"] / max(medians["min-count"], 1e-9)
        print(f"DP-SGD / no-DP median held-out Dice: {ratio:.2f} (goal >= 0.80 at epsilon <= {params['epsilon']:g} "
              f"per site)")
    if args.no_save:
        return

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dp_training.json").write_text(json.dumps({"params": params, "sites": sizes, "delta": args.delta,
                                                          "held_out_cases": len(held_out), "ratio": ratio,
                                                          "median_held_out_dice": medians,
                                                          "runs": runs}, indent=2, default=str))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4))
    colours = dict(zip(by_mode, ("tab:blue", "tab:orange", "tab:green")))
    labelled = set()
    for r in runs:
        label = None
        if r["mode"] not in labelled:
            labelled.add(r["mode"])
            label = (f"{r['mode']}, median {medians[r['mode']]:.2f}"
                     + (f" (epsilon {r['epsilon_per_site']:.2f}/site)" if r["epsilon_per_site"] else ""))
        trained = r["rounds"][:-1]  # the last round only evaluates the model of the one before
        ax.plot([m["round"] + 1 for m in trained], [m["held_out_dice"] for m in trained], marker="o",
                color=colours[r["mode"]], alpha=0.6, label=label)
    ax.set_xlabel("rounds of training")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("held-out Dice of the global model")
    ax.set_title("FedAvg on the demo sites\n(training patients: "
                 + ", ".join(f"{site} {n}" for site, n in sizes.items()) + ")", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "dp_training.png", dpi=120)
    print(f"wrote {RESULTS / 'dp_training.json'} and dp_training.png")


if __name__ == "__main__":
    main()
