"""Federated evaluation: a model's Dice and 95th-percentile Hausdorff distance (voxels) on each
site's tumour cases, one case per patient; each site releases differentially private means, the
server pools them weighted by their (noisy) numbers of patients.

The model is a finished federated-training job's (`model_job`: the centre crop of each case, as
training measured it, so only the default network and HU window; the hub refuses others, which
are evaluated as tools once published) or an approved AI tool (`tool`: the tool's own pipeline on each whole
series, its tumour segments against the site's SEG). A tool travels as its approved card and
weights (tools/site_package.py); the site builds only allow-listed networks and transforms."""

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


def first_per_patient(cases, patient) -> list:
    """One case per patient (the first series): a patient then moves each mean by one value only."""
    first = {}
    for case in cases:
        first.setdefault(patient(case), case)
    return list(first.values())


def tool_predictions(package: bytes, data, dataset_ids: list):
    """(prediction, label) tumour masks of an approved tool on each patient's first whole series."""
    import torch

    from ...tools.inference import output_segments, predict
    from ...tools.site_package import load_package
    from ..site.data import is_tumour

    torch.set_num_threads(1)  # three sites share the machine's cores
    network, preprocessing, postprocessing, card = load_package(package)
    tumour = [s["number"] for s in output_segments(card) if is_tumour(s)]
    cases = first_per_patient(data.tumour_cases(dataset_ids), lambda c: c.patient_id)
    if not cases:
        raise ValueError("this site has no CT series with tumour segmentations in the job's datasets")
    for case in cases:
        labels = predict(network, preprocessing, postprocessing, card, case.volume, "cpu")
        yield np.isin(labels, tumour), case.labels > 0


def site_run(params: dict, task: dict, data, dataset_ids: list, state: dict) -> dict:
    """Per-patient Dice and HD95 (bounded by their ranges), before release."""
    from ...tools.site_package import is_package

    if is_package(task["weights"]):
        pairs = tool_predictions(task["weights"], data, dataset_ids)
        largest = float(params["max_hd95_voxels"])  # fixed before any data is seen: it bounds a patient's part
    else:
        size = params["crop_size"]
        cases, model = cases_and_model(params, task, data, dataset_ids, state)
        pairs, largest = predictions(model, first_per_patient(cases, lambda c: c["patient"]), size), 2.0 * size
    scores, distances = [], []
    for pred, label in pairs:
        scores.append(dice(pred, label))
        distance = hd95(pred, label)
        if distance is not None:
            distances.append(distance)
    return {"means": {"dice": {"values": scores, "range": [0.0, 1.0]},
                      "hd95_voxels": {"values": distances, "range": [0.0, largest]}}}


class Server:
    rounds = 1

    def __init__(self, params: dict, min_count: int):
        self.params, self.min_count = params, min_count
        self.weights, self.parts = None, {}  # parts: {metric: {site: released mean or None}}

    def load_model(self, data: bytes) -> None:
        from ...tools.site_package import is_package, load_package

        if is_package(data):
            load_package(data)  # refuses weights other than the card's, and anything off the allow-list
        else:
            build_model().load_state_dict(from_bytes(data))  # refuses anything but the default network
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
        "model_job": {"type": "string", "one_of": "model",
                      "description": "id of a finished federated-training job whose model to evaluate"},
        "tool": {"type": "string", "one_of": "model",
                 "description": "or an approved AI tool: its id, or id@version (default: the newest approved)"},
        "crop_size": {"type": "integer", "enum": [16, 32, 48, 64], "default": 16,
                      "description": "edge of the cubic crops (voxels); use the training value"},
        "max_hd95_voxels": {"type": "integer", "minimum": 1, "maximum": 1024, "default": 64,
                            "description": "a tool on whole series: the HD95 (voxels) each patient's value is "
                                           "clamped to, which bounds what one patient changes"},
        "epsilon": epsilon_param(1.0),
    },
    privacy=PRIVACY,
    site_run=site_run,
    server=Server,
    table=result_table,
)
