"""Federated training: FedAvg of a small MONAI 3D UNet segmenting tumours in CT crops.

Each round the server sends the global weights; each site first measures the global model's
Dice on all its tumour cases (a fixed centre crop per case), then trains `local_steps` Adam
steps on jittered, flipped crops and returns its weights and its number of cases. The server
averages the weights by cases. One last evaluation-only round measures the final model, so
the result holds the global model's Dice before round 1, after each round, and the model.
"""

import io
import math

import numpy as np

from .base import Algorithm, epsilon_param

HU_LOW, HU_HIGH = -1000.0, 400.0


def build_model():
    from monai.networks.nets import UNet

    return UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=(8, 16, 32), strides=(2, 2),
                num_res_units=1)


def to_bytes(state_dict) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, buffer)
    return buffer.getvalue()


def from_bytes(data: bytes) -> dict:
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def crop(array: np.ndarray, centre, size: int, fill) -> np.ndarray:
    """A size³ crop of `array` around `centre` (z, y, x), padded with `fill` outside the volume."""
    out = np.full((size, size, size), fill, dtype=array.dtype)
    src, dst = [], []
    for c, n in zip(centre, array.shape):
        lo = int(round(c)) - size // 2
        a, b = max(lo, 0), min(lo + size, n)
        src.append(slice(a, b))
        dst.append(slice(a - lo, b - lo))
    out[tuple(dst)] = array[tuple(src)]
    return out


def normalise(hu: np.ndarray) -> np.ndarray:
    return ((np.clip(hu, HU_LOW, HU_HIGH) - HU_LOW) / (HU_HIGH - HU_LOW)).astype(np.float32)


def prepare_cases(data, dataset_ids, size: int, margin: int = 8) -> list[dict]:
    """Per tumour case: a region (crop of 2*margin larger) around the tumours, kept in memory."""
    cases = []
    for case in data.tumour_cases(dataset_ids):
        mask = case.labels > 0
        if not mask.any():
            continue
        centre = np.argwhere(mask).mean(axis=0)
        big = size + 2 * margin
        cases.append({"image": normalise(crop(case.hu, centre, big, HU_LOW)),
                      "label": crop(mask.astype(np.float32), centre, big, 0.0),
                      "spacing": case.voxel_ml})
    return cases


def _centre(region: np.ndarray, size: int, margin: int) -> np.ndarray:
    return region[margin:margin + size, margin:margin + size, margin:margin + size]


def batch(cases, size, margin, rng, n):
    import torch

    picks = rng.integers(0, len(cases), size=n)
    images, labels = [], []
    for i in picks:
        shift = rng.integers(-margin, margin + 1, size=3)
        s = tuple(slice(margin + d, margin + d + size) for d in shift)
        image, label = cases[i]["image"][s], cases[i]["label"][s]
        for axis in (1, 2):
            if rng.random() < 0.5:
                image, label = np.flip(image, axis), np.flip(label, axis)
        images.append(image.copy())
        labels.append(label.copy())
    return torch.from_numpy(np.stack(images)[:, None]), torch.from_numpy(np.stack(labels)[:, None])


def predictions(model, cases, size: int, margin: int):
    """(prediction, label) masks of the model on each case's centre crop (threshold 0.5)."""
    import torch

    model.eval()
    with torch.no_grad():
        for case in cases:
            image = torch.from_numpy(_centre(case["image"], size, margin).copy())[None, None]
            label = _centre(case["label"], size, margin) > 0.5
            yield torch.sigmoid(model(image))[0, 0].numpy() > 0.5, label


def dice(pred: np.ndarray, label: np.ndarray) -> float:
    denom = pred.sum() + label.sum()
    return float(2 * (pred & label).sum() / denom) if denom else 1.0


def dice_scores(model, cases, size: int, margin: int) -> list[float]:
    """Dice of the model on each case's centre crop."""
    return [dice(pred, label) for pred, label in predictions(model, cases, size, margin)]


def site_state(params, data, dataset_ids, state, margin=8) -> list:
    import torch

    torch.set_num_threads(1)  # three sites share the machine's cores
    if "cases" not in state:
        state["cases"] = prepare_cases(data, dataset_ids, params["crop_size"], margin)
    return state["cases"]


def _sums(values: list[float]) -> dict:
    return {"n": len(values), "sum": float(sum(values)), "sumsq": float(sum(v * v for v in values)),
            "subjects": len(values)}


def cases_and_model(params, task, data, dataset_ids, state, margin: int = 8) -> tuple[list, object]:
    """The site's tumour cases and the model with the task's weights (shared with evaluation)."""
    cases = site_state(params, data, dataset_ids, state, margin)
    if not cases:
        raise ValueError("this site has no CT series with tumour segmentations in the job's datasets")
    model = build_model()
    model.load_state_dict(from_bytes(task["weights"]))
    return cases, model


def site_run(params: dict, task: dict, data, dataset_ids: list, state: dict) -> dict:
    import torch
    from monai.losses import DiceLoss

    margin = 8
    cases, model = cases_and_model(params, task, data, dataset_ids, state, margin)
    size = params["crop_size"]
    result = {"sums": {"dice": _sums(dice_scores(model, cases, size, margin))}}
    if not task.get("train", True):
        return result
    rng = np.random.default_rng(params["seed"] + 1000 * task["round"] + len(cases))
    torch.manual_seed(params["seed"] + task["round"])
    optimiser = torch.optim.Adam(model.parameters(), lr=params["learning_rate"])
    # Soft Dice over the whole batch: the tumours are a few hundred voxels of 32^3, and
    # cross-entropy terms drove the model to predict background everywhere.
    loss_fn = DiceLoss(sigmoid=True, batch=True)
    model.train()
    for _ in range(params["local_steps"]):
        images, labels = batch(cases, size, margin, rng, params["batch_size"])
        optimiser.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimiser.step()
    result["weights"] = to_bytes(model.state_dict())
    result["n_samples"] = len(cases)
    return result


def pooled(sums: list[dict]) -> dict:
    n = sum(s["n"] for s in sums)
    if not n:
        return {"mean": None, "sd": None, "n": 0}
    total, sq = sum(s["sum"] for s in sums), sum(s["sumsq"] for s in sums)
    mean = total / n
    return {"mean": mean, "sd": math.sqrt(max(sq / n - mean * mean, 0.0)), "n": n}


class Server:
    """FedAvg: the global model, averaged by each site's number of cases."""

    def __init__(self, params: dict, min_count: int):
        import torch

        self.params, self.min_count = params, min_count
        self.rounds = params["rounds"] + 1  # the last round only evaluates the final model
        torch.manual_seed(params["seed"])
        self.weights = build_model().state_dict()
        self._updates, self._dice = [], []
        self.history = []

    def task(self, round_: int) -> dict:
        return {"weights": to_bytes(self.weights), "train": round_ < self.rounds - 1}

    def add(self, site: str, result: dict) -> None:
        if (result.get("sums") or {}).get("dice"):
            self._dice.append(result["sums"]["dice"])
        if result.get("weights") and result.get("n_samples"):
            self._updates.append((from_bytes(result["weights"]), result["n_samples"]))

    def end_round(self, round_: int) -> dict:
        if self._updates:
            total = sum(n for _, n in self._updates)
            self.weights = {k: sum(w[k].float() * (n / total) for w, n in self._updates).to(self.weights[k].dtype)
                            for k in self.weights}
        dice = pooled(self._dice)
        metrics = {"round": round_, "dice": dice["mean"], "dice_sd": dice["sd"], "cases": dice["n"],
                   "sites_trained": len(self._updates)}
        self._updates, self._dice = [], []
        self.history.append(metrics)
        return metrics

    def final(self, out_dir) -> dict:
        (out_dir / "model.pt").write_bytes(to_bytes(self.weights))
        return {"files": ["model.pt"],
                "model": {"architecture": "monai.networks.nets.UNet(spatial_dims=3, in_channels=1, out_channels=1, "
                                          "channels=(8, 16, 32), strides=(2, 2), num_res_units=1)",
                          "input": f"CT crops of {self.params['crop_size']}^3 voxels, HU clipped to "
                                   f"[{HU_LOW:g}, {HU_HIGH:g}] and scaled to [0, 1]; output: tumour logit"}}


def result_table(result: dict) -> list[dict]:
    """One row per round: the global model's Dice before that round's training."""
    return list(result.get("rounds") or [])


PRIVACY = "the job's epsilon covers the per-round Dice releases and, under DP-SGD, the weights"

ALGORITHM = Algorithm(
    id="federated-training", version="1.0", title="Federated tumour segmentation training (FedAvg)",
    description="FedAvg of a small MONAI 3D UNet trained on crops around the tumours of each site's CT "
                "and SEG; per-round Dice on each site's held-out cases; the global model comes back.",
    leaves_site="Model weights after local training, the number of training crops (suppressed below the "
                "minimum count) and the mean validation Dice.",
    params={
        "rounds": {"type": "integer", "minimum": 1, "maximum": 20, "default": 3,
                   "description": "federated rounds"},
        "local_steps": {"type": "integer", "minimum": 1, "maximum": 500, "default": 40,
                        "description": "optimizer steps per site per round"},
        "crop_size": {"type": "integer", "enum": [32, 48, 64], "default": 32,
                      "description": "edge of the cubic crops (voxels)"},
        "learning_rate": {"type": "number", "exclusive_minimum": 0, "maximum": 1, "default": 0.003,
                          "description": "Adam learning rate"},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 16, "default": 4,
                       "description": "crops per optimizer step"},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "default": 0,
                 "description": "random seed (crops, initial weights)"},
        "epsilon": epsilon_param(8.0),
    },
    weights_leave=True,
    rounds_param="rounds",
    privacy=PRIVACY,
    site_run=site_run,
    server=Server,
    table=result_table,
)
