"""Federated evaluation: a trained model's Dice and 95th-percentile Hausdorff distance (voxels)
on each site's tumour cases, one case per patient; each site releases differentially private
means, the server pools them weighted by their (noisy) numbers of patients."""

import math

import numpy as np

from .base import Algorithm, epsilon_param
from .federated_training import build_model, cases_and_model, dice, from_bytes, predictions


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
    """Per-patient Dice and HD95 (bounded by their ranges), before release."""
    size = params["crop_size"]
    cases, model = cases_and_model(params, task, data, dataset_ids, state)
    # One case per patient (the first series): a patient then moves each mean by one value only.
    first = {}
    for case in cases:
        first.setdefault(case["patient"], case)
    scores, distances = [], []
    for pred, label in predictions(model, list(first.values()), size):
        scores.append(dice(pred, label))
        distance = hd95(pred, label)
        if distance is not None:
            distances.append(distance)
    return {"means": {"dice": {"values": scores, "range": [0.0, 1.0]},
                      "hd95_voxels": {"values": distances, "range": [0.0, 2.0 * size]}}}


class Server:
    rounds = 1

    def __init__(self, params: dict, min_count: int):
        self.params, self.min_count = params, min_count
        self.weights, self.parts = None, {}  # parts: {metric: {site: released mean or None}}

    def load_model(self, data: bytes) -> None:
        build_model().load_state_dict(from_bytes(data))  # refuses anything but the approved architecture
        self.weights = data

    def task(self, round_: int) -> dict:
        if self.weights is None:
            raise ValueError("no model to evaluate")
        return {"weights": self.weights, "train": False}

    def add(self, site: str, result: dict) -> None:
        for name, m in (result.get("means") or {}).items():
            self.parts.setdefault(name, {})[site] = m if m.get("mean") is not None else None

    def end_round(self, round_: int) -> dict:
        return {}

    def final(self, out_dir) -> dict:
        return {"metrics": {name: self._pooled(by_site) for name, by_site in self.parts.items()}}

    def _pooled(self, by_site: dict) -> dict:
        """The sites' means weighted by n; the sd from the pooled second moments."""
        released = [m for m in by_site.values() if m]
        withheld = sorted(site for site, m in by_site.items() if not m)
        n = sum(m["n"] for m in released)
        if n < max(self.min_count, 1):
            return {"mean": None, "sd": None, "cases": None, "withheld_by": withheld, "suppressed": True}
        mean = sum(m["n"] * m["mean"] for m in released) / n
        second = sum(m["n"] * (m["sd"] ** 2 + m["mean"] ** 2) for m in released) / n
        return {"mean": mean, "sd": math.sqrt(max(second - mean ** 2, 0.0)), "cases": n, "withheld_by": withheld,
                "suppressed": bool(withheld)}


def result_table(result: dict) -> list[dict]:
    """One row per metric (Dice, HD95): pooled mean, sd, cases, suppressed."""
    return [{"metric": name, **values} for name, values in (result.get("metrics") or {}).items()]


PRIVACY = ("the job's epsilon is split evenly between the Dice and the HD95 means at each site, each a "
           "third to its count, its sum and its sum of squares")

ALGORITHM = Algorithm(
    id="federated-evaluation", version="1.0", title="Federated model evaluation",
    description="Runs a model from a finished federated-training job at each site and aggregates "
                "Dice and Hausdorff distance against the site's SEGs.",
    leaves_site="Mean and sd of Dice and 95th-percentile Hausdorff per site from differentially private "
                "counts and clamped sums (suppressed when the noisy count is below the minimum count).",
    params={
        "model_job": {"type": "string", "required": True,
                      "description": "id of a finished federated-training job whose model to evaluate"},
        "crop_size": {"type": "integer", "enum": [16, 32, 48, 64], "default": 16,
                      "description": "edge of the cubic crops (voxels); use the training value"},
        "epsilon": epsilon_param(1.0),
    },
    privacy=PRIVACY,
    site_run=site_run,
    server=Server,
    table=result_table,
)
