"""Federated evaluation: a trained model's Dice and 95th-percentile Hausdorff distance (voxels)
on each site's tumour cases, pooled as count, sum and sum of squares."""

import numpy as np

from .base import Algorithm, epsilon_param
from .federated_training import _sums, build_model, cases_and_model, dice, from_bytes, pooled, predictions


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of the mask with a 6-neighbour outside it, as (n, 3) coordinates."""
    padded = np.pad(mask, 1)
    inner = padded[1:-1, 1:-1, 1:-1].copy()
    for axis in range(3):
        for shift in (-1, 1):
            inner &= np.roll(padded, shift, axis=axis)[1:-1, 1:-1, 1:-1]
    return np.argwhere(mask & ~inner).astype(np.float32)


def hd95(pred: np.ndarray, label: np.ndarray) -> float | None:
    """95th-percentile symmetric surface distance in voxels; None when either mask is empty."""
    import torch

    if not pred.any() or not label.any():
        return None
    a, b = torch.from_numpy(_surface(pred)), torch.from_numpy(_surface(label))
    d = torch.cdist(a, b)
    both = torch.cat([d.min(dim=1).values, d.min(dim=0).values])
    return float(torch.quantile(both, 0.95))


def site_run(params: dict, task: dict, data, dataset_ids: list, state: dict) -> dict:
    margin = 8
    cases, model = cases_and_model(params, task, data, dataset_ids, state, margin)
    scores, distances = [], []
    for pred, label in predictions(model, cases, params["crop_size"], margin):
        scores.append(dice(pred, label))
        distance = hd95(pred, label)
        if distance is not None:
            distances.append(distance)
    sums = {"dice": _sums(scores), "hd95_voxels": _sums(distances)}
    sums["hd95_voxels"]["subjects"] = len(scores)  # the cases behind it, for the minimum count
    return {"sums": sums}


class Server:
    rounds = 1

    def __init__(self, params: dict, min_count: int):
        self.params, self.min_count = params, min_count
        self.weights, self.parts = None, {}

    def load_model(self, data: bytes) -> None:
        build_model().load_state_dict(from_bytes(data))  # refuses anything but the approved architecture
        self.weights = data

    def task(self, round_: int) -> dict:
        if self.weights is None:
            raise ValueError("no model to evaluate")
        return {"weights": self.weights, "train": False}

    def add(self, site: str, result: dict) -> None:
        for name, s in (result.get("sums") or {}).items():
            self.parts.setdefault(name, {})[site] = s

    def end_round(self, round_: int) -> dict:
        return {}

    def final(self, out_dir) -> dict:
        metrics = {}
        for name, by_site in self.parts.items():
            released = [s for s in by_site.values() if s]
            withheld = sorted(site for site, s in by_site.items() if not s)
            m = pooled(released)
            cases = sum(s["subjects"] for s in released)
            metrics[name] = {**m, "cases": cases, "withheld_by": withheld,
                             "suppressed": bool(withheld) or cases < self.min_count}
        return {"metrics": metrics}


def result_table(result: dict) -> list[dict]:
    """One row per metric (Dice, HD95): pooled mean, sd, cases, suppressed."""
    return [{"metric": name, **values} for name, values in (result.get("metrics") or {}).items()]


PRIVACY = "the job's epsilon is split between the Dice and the HD95 means at each site"

ALGORITHM = Algorithm(
    id="federated-evaluation", version="1.0", title="Federated model evaluation",
    description="Runs a model from a finished federated-training job at each site and aggregates "
                "Dice and Hausdorff distance against the site's SEGs.",
    leaves_site="Count, sum and sum of squares of Dice and 95th-percentile Hausdorff per site "
                "(suppressed below the minimum count).",
    params={
        "model_job": {"type": "string", "required": True,
                      "description": "id of a finished federated-training job whose model to evaluate"},
        "crop_size": {"type": "integer", "enum": [32, 48, 64], "default": 32,
                      "description": "edge of the cubic crops (voxels); use the training value"},
        "epsilon": epsilon_param(1.0),
    },
    privacy=PRIVACY,
    site_run=site_run,
    server=Server,
    table=result_table,
)
