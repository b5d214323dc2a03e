"""Federated evaluation: a trained model's Dice and 95th-percentile Hausdorff distance (voxels)
on each site's tumour cases, pooled as count, sum and sum of squares."""

import numpy as np

from .training import _sums, build_model, cases_and_model, dice, from_bytes, pooled, predictions


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
