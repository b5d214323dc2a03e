"""Federated training: FedAvg of a MONAI 3D UNet segmenting tumours in CT crops.

Each round the server sends the global weights; each site first measures the global model's
Dice on all its tumour cases (a fixed centre crop per case, one mean per patient, released as a
DP mean by the site's disclosure step), then trains on jittered, flipped crops and returns its
weights and its number of training patients. The server averages the weights by patients. One
last evaluation-only round measures the final model, so the result holds the global model's
Dice before round 1, after each round, and the model.

Weights leave a site only under its weights policy (`task["site_policy"]`, set by the site's
executor): "dp-sgd" trains with Opacus (Poisson sampling of patients, per-patient gradient
clipping, Gaussian noise calibrated once per job, for all its training rounds, to the job's
DP-SGD epsilon by the RDP accountant; one accountant per job in the site's `state`, and each
round reports the increase of the job's epsilon, so the rounds' charges add up to it);
"min-count" trains without noise if the site has at least `min_count` training patients.

The defaults (a small network, a soft-tissue window, crops around the tumours, a class-balanced
loss per crop) suit DP-SGD. A whole-series tool trained without DP asks for more: `network`
"medium", a wide `hu_window`, a `background_share` of crops anywhere in the volume, `loss`
"dice-ce" (which a DP-SGD site refuses) and `lr_schedule` "cosine".
"""

import io
import math
import warnings

import numpy as np

from .base import Algorithm, epsilon_param

HU_LOW, HU_HIGH = -160.0, 240.0  # soft-tissue window: tumours (~20-90 HU) against liver, kidney and lung

# The UNets a job may ask for (`network`), by their channels and strides. "small" (about 1.5k
# parameters) for DP-SGD, whose noise grows with their number; "medium" (about 35k) for plain
# training that must find small lung nodules in whole series.
NETWORKS = {"small": {"channels": (4, 8), "strides": (2,)},
            "medium": {"channels": (8, 16, 32), "strides": (2, 2)}}
OUTPUT_BIAS = -3.0  # the initial logit of every voxel: sigmoid(-3) ~ 5 % tumour, near the crops' share
RELEASE_SHARE = 0.1  # of the job's epsilon: the per-round Dice releases; the rest goes to DP-SGD
LOGIT_SHIFT = 1.0  # the class-balanced cross-entropy sees logit + 1: a voxel is tumour only where it is fairly sure
ACCOUNTANT = "rdp"  # Opacus's Renyi-DP accountant, for both calibration and the epsilon spent


def setting(params: dict, name: str):
    """A job's parameter, or its default: an evaluation's parameters hold no network or window."""
    return params.get(name, PARAMS[name]["default"])


def network_args(network: str = "small") -> dict:
    """MONAI UNet's arguments for `network` (a key of NETWORKS)."""
    return {"spatial_dims": 3, "in_channels": 1, "out_channels": 1, **NETWORKS[network], "num_res_units": 1,
            "norm": ("group", {"num_groups": 1})}


def architecture(network: str = "small") -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in network_args(network).items())
    return f"monai.networks.nets.UNet({args})"


def build_model(network: str = "small"):
    """A UNet of NETWORKS with GroupNorm (no running statistics), which DP-SGD needs.

    One group per layer, as the top up-sampling block normalises a single channel. The small
    network's output starts at "little tumour" (bias OUTPUT_BIAS) rather than at "tumour
    everywhere" or "nothing", which noisy training otherwise spends its first steps undoing.
    """
    import torch
    from monai.networks.nets import UNet

    model = UNet(**network_args(network))
    if network != "small":
        return model
    with torch.no_grad():
        top = model.model[-1][-1]  # the last residual unit: conv path + residual path, summed
        top.conv.unit0.conv.bias.fill_(OUTPUT_BIAS)
        if getattr(top.residual, "bias", None) is not None:
            top.residual.bias.zero_()
    return model


def epsilon_split(params: dict) -> dict:
    """A site's epsilon per round: `release` for each of the rounds+1 Dice releases (10 % of the
    job's epsilon in all), `dp_sgd` for each of the `rounds` training rounds (the other 90 %)."""
    epsilon, rounds = float(params["epsilon"]), int(params["rounds"])
    return {"release": RELEASE_SHARE * epsilon / (rounds + 1), "dp_sgd": (1 - RELEASE_SHARE) * epsilon / rounds}


def release_epsilon(params: dict, round_: int) -> float:
    """The epsilon one round's Dice release may spend at a site."""
    return epsilon_split(params)["release"]


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


def normalise(hu: np.ndarray, window=(HU_LOW, HU_HIGH)) -> np.ndarray:
    """HU clipped to the (low, high) window and scaled to [0, 1]."""
    low, high = float(window[0]), float(window[1])
    return ((np.clip(hu, low, high) - low) / (high - low)).astype(np.float32)


def jitter(size: int) -> int:
    """How far (voxels, each axis) a training crop of edge `size` moves around the tumours' centre:
    the margin a case keeps around its centre crop."""
    return size // 4


def prepare_cases(data, dataset_ids, size: int, window=(HU_LOW, HU_HIGH), whole: bool = False) -> list[dict]:
    """Per tumour case: a region (crop of 2 * jitter larger) around the tumours, kept in memory;
    with `whole`, also the whole volume ("volume") and tumour mask ("mask"), for crops anywhere.

    The whole volume is kept as float16 and the mask as bool: a 512 x 512 x 300 series then holds
    150 MB + 75 MB of the site's memory for the job, rather than 300 MB + 300 MB as float32."""
    margin, cases = jitter(size), []
    for case in data.tumour_cases(dataset_ids):
        mask = case.labels > 0
        if not mask.any():
            continue
        centre = np.argwhere(mask).mean(axis=0)
        big = size + 2 * margin
        cases.append({"patient": case.patient_id, "image": normalise(crop(case.hu, centre, big, window[0]), window),
                      "label": crop(mask.astype(np.float32), centre, big, 0.0),
                      "spacing": case.voxel_ml})
        if whole:
            cases[-1].update(volume=normalise(case.hu, window).astype(np.float16), mask=mask)
    return cases


def _centre(region: np.ndarray, size: int) -> np.ndarray:
    margin = jitter(size)
    return region[margin:margin + size, margin:margin + size, margin:margin + size]


def batch(cases, size, rng, n, background_share: float = 0.0):
    """`n` crops with their labels: around a case's tumours (jittered), or with probability
    `background_share` centred anywhere in its whole volume; each flipped at random in-plane."""
    import torch

    margin = jitter(size)
    picks = rng.integers(0, len(cases), size=n)
    images, labels = [], []
    for i in picks:
        case = cases[i]
        if background_share and rng.random() < background_share:
            centre = rng.integers(0, case["volume"].shape)
            image = crop(case["volume"], centre, size, 0.0).astype(np.float32)
            label = crop(case["mask"], centre, size, False).astype(np.float32)
        else:
            shift = rng.integers(-margin, margin + 1, size=3)
            s = tuple(slice(margin + d, margin + d + size) for d in shift)
            image, label = case["image"][s], case["label"][s]
        for axis in (1, 2):
            if rng.random() < 0.5:
                image, label = np.flip(image, axis), np.flip(label, axis)
        images.append(image.copy())
        labels.append(label.copy())
    return torch.from_numpy(np.stack(images)[:, None]), torch.from_numpy(np.stack(labels)[:, None])


def predictions(model, cases, size: int):
    """(prediction, label) masks of the model on each case's centre crop (threshold 0.5)."""
    import torch

    model.eval()
    with torch.no_grad():
        for case in cases:
            image = torch.from_numpy(_centre(case["image"], size).copy())[None, None]
            label = _centre(case["label"], size) > 0.5
            yield torch.sigmoid(model(image))[0, 0].numpy() > 0.5, label


def dice(pred: np.ndarray, label: np.ndarray) -> float:
    denom = pred.sum() + label.sum()
    return float(2 * (pred & label).sum() / denom) if denom else 1.0


def dice_scores(model, cases, size: int) -> list[float]:
    """Dice of the model on each case's centre crop."""
    return [dice(pred, label) for pred, label in predictions(model, cases, size)]


def site_state(params, data, dataset_ids, state) -> list:
    import torch

    torch.set_num_threads(1)  # three sites share the machine's cores
    if "cases" not in state:
        state["cases"] = prepare_cases(data, dataset_ids, params["crop_size"], setting(params, "hu_window"),
                                       whole=setting(params, "background_share") > 0)
    return state["cases"]


def cases_and_model(params, task, data, dataset_ids, state) -> tuple[list, object]:
    """The site's tumour cases and the model with the task's weights (shared with evaluation)."""
    cases = site_state(params, data, dataset_ids, state)
    if not cases:
        raise ValueError("this site has no CT series with tumour segmentations in the job's datasets")
    model = build_model(setting(params, "network"))
    model.load_state_dict(from_bytes(task["weights"]))
    return cases, model


def by_patient(cases: list[dict]) -> list[list[dict]]:
    """The cases grouped by patient (in first-seen order): the unit of privacy."""
    groups: dict = {}
    for case in cases:
        groups.setdefault(case["patient"], []).append(case)
    return list(groups.values())


def patient_dice(model, cases, size: int) -> list[float]:
    """The model's Dice per patient (mean over the patient's cases' centre crops)."""
    return [float(np.mean(dice_scores(model, group, size))) for group in by_patient(cases)]


class PrivacyBudgetExceeded(RuntimeError):
    """DP-SGD spent more epsilon than the site allows for the job; its weights must not leave."""


def check_epsilon(spent: float, allowed: float, tolerance: float = 1e-6) -> None:
    if not spent <= allowed + tolerance:
        raise PrivacyBudgetExceeded(f"DP-SGD spent epsilon {spent:.6g}, more than the {allowed:.6g} allowed")


def segmentation_loss(logits, labels):
    """One value per crop (shape [batch]), so that each crop's gradient depends on that crop only.

    The cross-entropy's mean over the crop's tumour voxels plus its mean over the background
    voxels, on logit + LOGIT_SHIFT, plus soft Dice. The classes count equally, so a clipped
    per-crop gradient carries the tumour (a few % of a crop's voxels) rather than only "less tumour
    everywhere" (with a plain cross-entropy weighting tumour voxels 10x, even noise-free clipped
    SGD learnt nothing in 45 steps); the shift keeps the balanced loss from calling the background
    tumour at threshold 0.5, and soft Dice rewards precision. A larger shift (3) asked for a
    confidence the clipped steps reached in some runs only (noise-free held-out Dice 0.07-0.32
    after 90 steps; 0.36-0.45 with 1)."""
    import torch.nn.functional as F

    dims = tuple(range(1, logits.dim()))
    prob = logits.sigmoid()
    soft_dice = 1 - (2 * (prob * labels).sum(dims) + 1) / (prob.sum(dims) + labels.sum(dims) + 1)
    plain = F.binary_cross_entropy_with_logits(logits + LOGIT_SHIFT, labels, reduction="none")
    tumour = (plain * labels).sum(dims) / labels.sum(dims).clamp(min=1)
    background = (plain * (1 - labels)).sum(dims) / (1 - labels).sum(dims).clamp(min=1)
    return tumour + background + soft_dice


def plain_loss(name: str):
    """The loss (logits, labels) -> scalar of training without DP: "balanced" (segmentation_loss's
    mean) or "dice-ce", MONAI's Dice + cross-entropy over the whole batch, which whole-series
    training with many tumour-free crops needs (a crop's own Dice is undefined without tumour)."""
    if name == "balanced":
        return lambda logits, labels: segmentation_loss(logits, labels).mean()
    from monai.losses import DiceCELoss

    return DiceCELoss(sigmoid=True, squared_pred=True, batch=True)


def policy_problems(params: dict, weights: str) -> dict[str, str]:
    """What in a job's parameters a site's weights policy (`weights`) cannot train with."""
    if weights == "dp-sgd" and setting(params, "loss") != "balanced":
        return {"loss": f"{setting(params, 'loss')!r} is for training without DP; under this site's DP-SGD "
                        "weights policy use 'balanced' (DP-SGD clips one loss per crop)"}
    return {}


def _crop_dataset(patients: list[list[dict]], size: int, seed: int, background_share: float = 0.0):
    """One item per patient: a random jittered, flipped crop of one of the patient's cases."""
    import torch

    class Crops(torch.utils.data.Dataset):
        def __init__(self):
            self.rng = np.random.default_rng(seed)

        def __len__(self):
            return len(patients)

        def __getitem__(self, i):
            cases = patients[i]
            images, labels = batch(cases, size, self.rng, 1, background_share)
            return images[0], labels[0]

    return Crops()


def dp_sample_rate(params: dict, n_patients: int) -> float:
    """The probability of each patient being in a DP-SGD step's (Poisson) batch: one over the number
    of `batch_size` batches an epoch has (what Opacus's Poisson loader and its accountant use)."""
    return 1 / math.ceil(n_patients / min(params["batch_size"], n_patients))


def decay(step: int, steps: int) -> float:
    """The learning rate's share at `step` of the job's `steps` (cosine, from 1 to 0.1): clipped
    gradients keep their size near the optimum, so late steps must be smaller to settle there."""
    return 0.1 + 0.45 * (1 + math.cos(math.pi * min(step / steps, 1.0)))


def _dp_job(state: dict, params: dict, task_round: int, n: int, job_epsilon: float, delta: float,
            target_epsilon: float | None) -> dict:
    """The job's DP-SGD account at this site, kept in `state` across the job's rounds: one
    PrivacyEngine (one RDP accountant), the noise multiplier calibrated once for all the job's
    steps, and the epsilon already reported."""
    from opacus import PrivacyEngine
    from opacus.accountants.utils import get_noise_multiplier

    q, total_steps = dp_sample_rate(params, n), params["local_steps"] * int(params["rounds"])
    key = (job_epsilon, target_epsilon, delta, q, total_steps, params["max_grad_norm"])
    job = state.get("dp_sgd")
    if job is None or job["key"] != key or task_round == 0 or task_round <= job["round"]:
        sigma = get_noise_multiplier(target_epsilon=target_epsilon or job_epsilon, target_delta=delta,
                                     sample_rate=q, steps=total_steps, accountant=ACCOUNTANT)
        job = state["dp_sgd"] = {"key": key, "engine": PrivacyEngine(accountant=ACCOUNTANT), "sigma": sigma,
                                 "reported": 0.0, "round": -1}
    job["round"] = task_round
    return job


def train_dp_sgd(model, patients: list[list[dict]], params: dict, dp_epsilon: float, delta: float, seed: int,
                 target_epsilon: float | None = None, state: dict | None = None, task_round: int = 0) -> dict:
    """Train `model` in place with Opacus DP-SGD for one round of the job.

    The job's account lives in `state` (see `_dp_job`): the noise multiplier is calibrated once so
    that all the job's rounds together (`params["rounds"]` x `local_steps` steps) spend at most
    the job's DP-SGD epsilon, `dp_epsilon` (the round's share) x rounds; each round reports the
    increase of the accountant's epsilon, so the rounds' charges add up to the job's epsilon.
    `target_epsilon` (the accountant's calibration target, for tests) replaces the job's epsilon.
    Returns the `dp_sgd` section of the result."""
    import secrets

    import torch

    state = {} if state is None else state
    n = len(patients)
    job_epsilon = dp_epsilon * int(params["rounds"])
    job = _dp_job(state, params, task_round, n, job_epsilon, delta, target_epsilon)
    engine, job_steps = job["engine"], params["local_steps"] * int(params["rounds"])
    # The noise and the Poisson sampling (Opacus draws it from torch's global generator) must not
    # be predictable from the job's public seed: both come from a secret seed; `seed` only drives
    # the crops' jitter and flips.
    torch.manual_seed(secrets.randbits(63))
    q = dp_sample_rate(params, n)
    crops = _crop_dataset(patients, params["crop_size"], seed, params["background_share"])
    loader = torch.utils.data.DataLoader(crops, batch_size=min(params["batch_size"], n))
    # Plain SGD with momentum: Adam's per-coordinate scaling amplifies the noise.
    optimiser = torch.optim.SGD(model.parameters(), lr=params["dp_learning_rate"], momentum=0.9)
    model.train()
    generator = torch.Generator().manual_seed(secrets.randbits(63))
    with warnings.catch_warnings():
        # Each round brings a new loader over the same patients, which the job's one accountant is for.
        warnings.filterwarnings("ignore", "PrivacyEngine detected new dataset object")
        private, optimiser, loader = engine.make_private(
            module=model, optimizer=optimiser, data_loader=loader, noise_multiplier=job["sigma"],
            max_grad_norm=params["max_grad_norm"], poisson_sampling=True, noise_generator=generator)
    assert abs(1 / len(loader) - q) < 1e-12  # the accountant's sample rate is the calibration's
    steps, first = 0, task_round * params["local_steps"]
    while steps < params["local_steps"]:
        for images, labels in loader:
            for group in optimiser.param_groups:
                group["lr"] = params["dp_learning_rate"] * decay(first + steps, job_steps)
            optimiser.zero_grad()
            if len(images):
                segmentation_loss(private(images), labels).mean().backward()
            else:  # an empty Poisson batch: a step of noise only (GroupNorm cannot run on it)
                for p in model.parameters():
                    p.grad_sample = torch.zeros((0, *p.shape))
            optimiser.step()
            steps += 1
            if steps >= params["local_steps"]:
                break
    total = float(engine.get_epsilon(delta))
    check_epsilon(total, job_epsilon)
    spent = max(total - job["reported"], 0.0)
    job["reported"] = max(total, job["reported"])
    private._close()  # the weights are the model's own; remove Opacus's hooks
    model.eval()
    return {"epsilon": spent, "delta": float(delta), "noise_multiplier": float(job["sigma"]),
            "max_grad_norm": float(params["max_grad_norm"]), "steps": steps, "sample_rate": q,
            "accountant": ACCOUNTANT, "job_epsilon": total}


def train_plain(model, cases: list[dict], params: dict, seed: int, task_round: int = 0) -> None:
    """Train `model` in place without DP: Adam on batches of jittered, flipped crops, at a constant
    learning rate or (`lr_schedule` "cosine") at `decay` over all the job's rounds."""
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=params["learning_rate"])
    loss = plain_loss(params["loss"])
    first, job_steps = task_round * params["local_steps"], params["local_steps"] * int(params["rounds"])
    model.train()
    for step in range(params["local_steps"]):
        if params["lr_schedule"] == "cosine":
            for group in optimiser.param_groups:
                group["lr"] = params["learning_rate"] * decay(first + step, job_steps)
        images, labels = batch(cases, params["crop_size"], rng, params["batch_size"], params["background_share"])
        optimiser.zero_grad()
        loss(model(images), labels).backward()
        optimiser.step()
    model.eval()


def site_run(params: dict, task: dict, data, dataset_ids: list, state: dict) -> dict:
    """Dice of the global model per patient; with `train`, local training under the site's
    weights policy, its weights, its number of patients and (DP-SGD) the epsilon spent."""
    params = {**{k: v["default"] for k, v in PARAMS.items() if "default" in v}, **params}
    policy = task.get("site_policy") or {}
    mode = policy.get("weights", "dp-sgd")
    problems = policy_problems(params, mode)
    if problems:  # before any data is read; a refusal, not an error, so that the researcher sees why
        from ..site.release import Refusal

        raise Refusal("the request is outside this site's weights policy", problems)
    cases, model = cases_and_model(params, task, data, dataset_ids, state)
    result = {"means": {"dice": {"values": patient_dice(model, cases, params["crop_size"]),
                                 "range": [0, 1]}}}
    if not task.get("train", True):
        return result
    patients = by_patient(cases)
    seed = params["seed"] + 1000 * task["round"] + len(cases)
    if mode == "dp-sgd":
        if policy.get("dp_epsilon") is None or policy.get("delta") is None:
            raise ValueError("DP-SGD needs the site's dp_epsilon and delta for this round")
        result["dp_sgd"] = train_dp_sgd(model, patients, params, float(policy["dp_epsilon"]),
                                        float(policy["delta"]), seed, state=state, task_round=task["round"])
    elif mode == "min-count":
        if len(patients) < int(policy.get("min_count", 0)):
            return result  # too few patients for weights without DP: they do not leave
        train_plain(model, cases, params, seed, task["round"])
    else:
        raise ValueError(f"this site's weights policy ({mode!r}) does not let model weights leave")
    result["weights"] = to_bytes(model.state_dict())
    result["n_samples"] = len(patients)
    return result


def pooled_means(means: list[dict]) -> dict:
    """The n-weighted mean (and sd) of the sites' released means; None parts (suppressed) skipped."""
    parts = [m for m in means if m.get("n") and m.get("mean") is not None]
    n = sum(m["n"] for m in parts)
    if not n:
        return {"mean": None, "sd": None, "n": 0}
    mean = sum(m["n"] * m["mean"] for m in parts) / n
    with_sd = [m for m in parts if m.get("sd") is not None]
    sd = None
    if with_sd:
        n_sd = sum(m["n"] for m in with_sd)
        second = sum(m["n"] * (m["sd"] ** 2 + m["mean"] ** 2) for m in with_sd) / n_sd
        mean_sd = sum(m["n"] * m["mean"] for m in with_sd) / n_sd
        sd = math.sqrt(max(second - mean_sd ** 2, 0.0))
    return {"mean": mean, "sd": sd, "n": n}


class Server:
    """FedAvg: the global model, averaged by each site's number of cases."""

    def __init__(self, params: dict, min_count: int):
        import torch

        self.params, self.min_count = params, min_count
        self.rounds = params["rounds"] + 1  # the last round only evaluates the final model
        torch.manual_seed(params["seed"])
        self.weights = build_model(setting(params, "network")).state_dict()
        self._updates, self._dice, self._epsilons = [], [], []
        self.history = []

    def task(self, round_: int) -> dict:
        return {"weights": to_bytes(self.weights), "train": round_ < self.rounds - 1}

    def add(self, site: str, result: dict) -> None:
        dice = (result.get("means") or {}).get("dice")
        if dice:
            self._dice.append(dice)
        if result.get("weights") and result.get("n_samples"):
            self._updates.append((from_bytes(result["weights"]), result["n_samples"]))
        epsilon = (result.get("dp_sgd") or {}).get("epsilon")
        if epsilon is not None:
            self._epsilons.append(float(epsilon))

    def end_round(self, round_: int) -> dict:
        if self._updates:
            total = sum(n for _, n in self._updates)
            self.weights = {k: sum(w[k].float() * (n / total) for w, n in self._updates).to(self.weights[k].dtype)
                            for k in self.weights}
        dice = pooled_means(self._dice)
        # Each site's DP-SGD guards its own patients: the round's epsilon is the largest a site spent.
        metrics = {"round": round_, "dice": dice["mean"], "dice_sd": dice["sd"], "cases": dice["n"],
                   "sites_trained": len(self._updates), "epsilon": max(self._epsilons) if self._epsilons else None}
        self._updates, self._dice, self._epsilons = [], [], []
        self.history.append(metrics)
        return metrics

    def final(self, out_dir) -> dict:
        (out_dir / "model.pt").write_bytes(to_bytes(self.weights))
        low, high = setting(self.params, "hu_window")
        return {"files": ["model.pt"],
                "model": {"architecture": architecture(setting(self.params, "network")),
                          "input": f"CT crops of {self.params['crop_size']}^3 voxels, HU clipped to "
                                   f"[{low:g}, {high:g}] and scaled to [0, 1]; output: tumour logit"}}


def result_table(result: dict) -> list[dict]:
    """One row per round: the global model's Dice before that round's training."""
    return list(result.get("rounds") or [])


PRIVACY = ("per site and dataset, 10 % of the job's epsilon goes to the Dice means released each round "
           "(split over the rounds + 1 rounds) and, under the site's DP-SGD weights policy, 90 % to "
           "DP-SGD training (one Opacus RDP accountant per job at each site: the noise is calibrated once "
           "for all the job's training steps, each round charges the increase of the job's epsilon; delta "
           "set by the site); under the min-count policy the weights carry no DP guarantee")

PARAMS = {
    "rounds": {"type": "integer", "minimum": 1, "maximum": 20, "default": 3,
               "description": "federated rounds"},
    "local_steps": {"type": "integer", "minimum": 1, "maximum": 500, "default": 30,
                    "description": "optimizer steps per site per round"},
    "crop_size": {"type": "integer", "enum": [16, 32, 48, 64], "default": 16,
                  "description": "edge of the cubic crops (voxels)"},
    "learning_rate": {"type": "number", "exclusive_minimum": 0, "maximum": 1, "default": 0.01,
                      "description": "Adam learning rate (training without DP)"},
    "dp_learning_rate": {"type": "number", "exclusive_minimum": 0, "maximum": 1000, "default": 8.0,
                         "description": "SGD (momentum 0.9) learning rate under DP-SGD; a step moves the weights by "
                                        "about dp_learning_rate x max_grad_norm"},
    "max_grad_norm": {"type": "number", "exclusive_minimum": 0, "maximum": 100, "default": 0.01,
                      "description": "DP-SGD: clipping bound of each patient's gradient (small, so that every "
                                     "patient's gradient is clipped and counts the same)"},
    "batch_size": {"type": "integer", "minimum": 1, "maximum": 64, "default": 40,
                   "description": "crops per optimizer step; under DP-SGD the expected (Poisson) batch: each patient is "
                                  "in a step with probability 1 / ceil(patients / batch_size)"},
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "default": 0,
             "description": "random seed (crops, initial weights, DP noise)"},
    "network": {"type": "string", "enum": list(NETWORKS), "default": "small",
                "description": "UNet: small (channels 4, 8; for DP-SGD) or medium (channels 8, 16, 32)"},
    "hu_window": {"type": "array", "length": 2, "default": [HU_LOW, HU_HIGH],
                  "description": "input HU window [low, high], clipped and scaled to [0, 1] (lung nodules: "
                                 "[-1000, 400])"},
    "background_share": {"type": "number", "minimum": 0, "maximum": 0.9, "default": 0.0,
                         "description": "share of training crops centred anywhere in a case's volume rather "
                                        "than around its tumours (for whole-series tools)"},
    "loss": {"type": "string", "enum": ["balanced", "dice-ce"], "default": "balanced",
             "description": "balanced: class-balanced cross-entropy + Dice per crop; dice-ce: MONAI's "
                            "DiceCELoss over the batch (training without DP only)"},
    "lr_schedule": {"type": "string", "enum": ["constant", "cosine"], "default": "constant",
                    "description": "learning rate of training without DP: constant, or cosine from 1 to 0.1 "
                                   "of it over the job's steps (DP-SGD always decays)"},
    "epsilon": epsilon_param(8.0),
}

ALGORITHM = Algorithm(
    id="federated-training", version="1.0", title="Federated tumour segmentation training (FedAvg)",
    description="FedAvg of a MONAI 3D UNet (small by default) trained on crops around the tumours of each "
                "site's CT and SEG (and, if asked, anywhere in the volume), with DP-SGD (Opacus) or, where a "
                "site allows it, a minimum count; per-round Dice of the global model at each site; the "
                "global model comes back.",
    leaves_site="Model weights after local training (DP-SGD with the epsilon spent, or plain training "
                "where the site has at least its minimum count of patients), the number of training "
                "patients, and the per-round mean and sd of the global model's Dice per patient (DP).",
    params=PARAMS,
    weights_leave=True,
    rounds_param="rounds",
    privacy=PRIVACY,
    site_run=site_run,
    server=Server,
    table=result_table,
    release_epsilon=release_epsilon,
    policy_problems=policy_problems,
)
