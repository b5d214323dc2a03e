"""What may leave a site: a site's raw result released under differential privacy (OpenDP).

The raw result bounds what one patient can change (see `release`); each figure is released
through an OpenDP measurement whose privacy map, at that bound, fits the figure's share of the
job's epsilon. A noisy figure below the minimum count is suppressed as well: the noise hides a
single patient, the minimum count keeps small cells from being read as facts.
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING, Callable

from .policy import WEIGHTS_MODES

if TYPE_CHECKING:
    import opendp.prelude as dp


@cache
def _opendp():
    """OpenDP, loaded when a site releases (not in the hub, which only re-checks with `suppress_below`)."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def vector_laplace(T: type, scale: float) -> dp.Measurement:
    """Laplace noise on a vector of int (OpenDP samples the discrete Laplace) or float, L1 metric."""
    dp = _opendp()
    atom = dp.atom_domain(T=T) if T is int else dp.atom_domain(T=T, nan=False)
    return dp.m.make_laplace(dp.vector_domain(atom), dp.l1_distance(T=T), scale=scale)


def _records() -> tuple:
    """Per-patient values, one record per patient: removing a patient is a symmetric distance of 1."""
    dp = _opendp()
    return dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()


def record_count(scale: float) -> dp.Measurement:
    """The number of records, with discrete Laplace noise."""
    dp = _opendp()
    return _records() >> dp.t.then_count() >> dp.m.then_laplace(scale)


def clamped_sum(bounds: tuple) -> dp.Transformation:
    """The sum of the records clamped into `bounds` (its map at 1 is the sum's sensitivity)."""
    dp = _opendp()
    return _records() >> dp.t.then_clamp(bounds) >> dp.t.then_sum()


def calibrate(build: Callable[[float], dp.Measurement], d_in, epsilon: float,
              sensitivity: float | None = None) -> tuple[dp.Measurement, float]:
    """The measurement `build(scale)` with (about) the smallest scale whose privacy map at `d_in`
    is at most `epsilon`. The search starts at sensitivity / epsilon (`sensitivity`: of the noised
    figure, when it is not `d_in`); OpenDP's map decides (float sums add a rounding allowance)."""
    dp = _opendp()
    scale = float(d_in if sensitivity is None else sensitivity) / epsilon
    if build(scale).map(d_in) > epsilon:
        scale = dp.binary_search_param(build, d_in=d_in, d_out=epsilon, bounds=(scale, 2 * scale))
    return build(scale), scale


def suppress_below(value, min_count: float):
    """`value`, or None when it is missing or below `min_count` (also for the hub's pooled figures)."""
    return None if value is None or value < min_count else value


class _Budget:
    """The releases of one result, each with its share of epsilon, and the account of what was spent."""

    def __init__(self, names: list[str], epsilon: float, shares: dict):
        weights = {n: _share(n, shares) for n in names}
        total = sum(weights.values())
        self.shares = {n: epsilon * w / total for n, w in weights.items()} if total else {}
        self.releases = []

    def measure(self, name: str, mechanism: str, build: Callable, d_in, epsilon: float, data,
                sensitivity: float | None = None):
        """Release `data` through `build(scale)` calibrated to `epsilon` at distance `d_in`; refuse
        if the map exceeds it. `sensitivity`: of the noised figure, when it is not `d_in` itself."""
        measurement, scale = calibrate(build, d_in, epsilon, sensitivity)
        spent = measurement.map(d_in)
        if spent > epsilon:
            raise RuntimeError(f"{name}: privacy map {spent} exceeds its share {epsilon}")
        self.releases.append({"name": name, "mechanism": mechanism, "scale": scale, "epsilon": float(spent),
                              "sensitivity": float(d_in if sensitivity is None else sensitivity)})
        return measurement(data)


def _share(name: str, shares: dict) -> float:
    """A release's weight: by its full name (`histograms.tumour_hu`), its bare name, its section, else 1."""
    section, _, bare = name.partition(".")
    for key in (name, bare, section):
        if key in shares:
            return float(shares[key])
    return 1.0


def _counts(raw: dict, budget: _Budget, min_count: int, suppressed: list) -> dict:
    cells = [(v, k, int(c)) for v, values in sorted(raw["counts"].items()) for k, c in sorted(values.items())]
    bounds = raw.get("count_bounds") or {}
    missing = sorted(set(raw["counts"]) - set(bounds))
    if missing:
        raise ValueError(f"counts without a per-patient bound: {', '.join(missing)}")
    # One patient changes at most `bound` cells of a variable by 1 each: L1 sensitivity is the sum.
    sensitivity = sum(int(bounds[v]) for v in raw["counts"])
    noisy = budget.measure("counts", "discrete laplace", lambda s: vector_laplace(int, s), sensitivity,
                           budget.shares["counts"], [c for _, _, c in cells])
    out = {v: {} for v in raw["counts"]}
    for (variable, value, _), count in zip(cells, noisy):
        out[variable][value] = suppress_below(int(count), min_count)
        if out[variable][value] is None:
            suppressed.append(f"counts.{variable}.{value}")
    return out


def _histogram(name: str, hist: dict, budget: _Budget, min_count: int, suppressed: list) -> dict:
    release = f"histograms.{name}"
    # A patient's cells sum to at most `per_patient`: removing the patient moves the vector that far in L1.
    noisy = budget.measure(release, "laplace", lambda s: vector_laplace(float, s), float(hist["per_patient"]),
                           budget.shares[release], [float(c) for c in hist["counts"]])
    counts = [suppress_below(c, min_count) for c in noisy]
    suppressed += [f"{release}[{i}]" for i, c in enumerate(counts) if c is None]
    total = suppress_below(sum(noisy), min_count)
    if total is None:
        suppressed.append(f"{release}.total")
    return {"edges": list(hist["edges"]), "counts": counts, "total": total}


def _mean(name: str, spec: dict, budget: _Budget, min_count: int, suppressed: list) -> dict:
    """Mean and sd from a noisy count, a noisy clamped sum and a noisy clamped sum of squared
    deviations from the range's midpoint (a third of the share each)."""
    dp = _opendp()
    release = f"means.{name}"
    lo, hi = (float(x) for x in spec["range"])
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    values = [min(max(float(v), lo), hi) for v in spec["values"]]
    epsilon = budget.shares[release] / 3
    n = budget.measure(f"{release}.n", "discrete laplace", record_count, 1, epsilon, values)
    # Squares of values centred on the midpoint: bounded by half², four times tighter than hi² for [0, hi].
    parts = {"sum": ((lo, hi), values), "sumsq": ((0.0, half * half), [(v - mid) ** 2 for v in values])}
    figures = {}
    for part, (bounds, data) in parts.items():
        stage = clamped_sum(bounds)
        figures[part] = budget.measure(f"{release}.{part}", "laplace", lambda s: stage >> dp.m.then_laplace(s), 1,
                                       epsilon, data, sensitivity=stage.map(1))
    total, squares = figures["sum"], figures["sumsq"]
    if suppress_below(n, max(min_count, 1)) is None:  # n >= 1 also keeps the division below defined
        suppressed.append(release)
        return {"n": None, "mean": None, "sd": None}
    mean = min(max(total / n, lo), hi)
    variance = min(max(squares / n - (mean - mid) ** 2, 0.0), half * half)
    return {"n": float(n), "mean": mean, "sd": math.sqrt(variance)}


def release_weights(raw: dict, mode: str, min_count: int) -> tuple[dict, list]:
    """(what of `weights`, `n_samples`, `dp_sgd` may leave, [`weights`] when they are held back).

    "none": never; "min-count": trained on at least `min_count` samples; "dp-sgd": that, and
    trained under DP-SGD (`raw["dp_sgd"]` accounts for their epsilon and delta)."""
    if mode not in WEIGHTS_MODES:
        raise ValueError(f"unknown weights mode {mode!r} (one of {', '.join(WEIGHTS_MODES)})")
    if "weights" not in raw:
        return {}, []
    enough = raw.get("n_samples", 0) >= min_count
    if mode == "none" or not enough or (mode == "dp-sgd" and not raw.get("dp_sgd")):
        return {}, ["weights"]
    out = {"weights": raw["weights"], "n_samples": raw["n_samples"]}
    if raw.get("dp_sgd"):
        out["dp_sgd"] = raw["dp_sgd"]
    return out, []


def release(raw: dict, epsilon: float, min_count: int, weights_mode: str = "dp-sgd") -> dict:
    """What of a site's raw result may leave, spending at most `epsilon` (plus DP-SGD's own account).

    Raw sections: `counts` {variable: {value: int}} with `count_bounds` {variable: most cells one
    patient touches}; `histograms` {name: {edges, counts, per_patient}}; `means` {name: {values
    (one per patient), range}}; `weights`, `n_samples`, `dp_sgd`; `shares` {release, name or
    section: weight}; `meta` and `error` pass unchanged; anything else is dropped.
    """
    names = (["counts"] if raw.get("counts") else []) + [f"histograms.{n}" for n in raw.get("histograms") or {}]
    names += [f"means.{n}" for n in raw.get("means") or {}]
    budget = _Budget(names, epsilon, raw.get("shares") or {})
    out = {k: raw[k] for k in ("meta", "error") if k in raw}
    suppressed = []
    if raw.get("counts"):
        out["counts"] = _counts(raw, budget, min_count, suppressed)
    if "histograms" in raw:
        out["histograms"] = {n: _histogram(n, h, budget, min_count, suppressed) for n, h in raw["histograms"].items()}
    if "means" in raw:
        out["means"] = {n: _mean(n, m, budget, min_count, suppressed) for n, m in raw["means"].items()}
    weights, held = release_weights(raw, weights_mode, min_count)
    out.update(weights)
    suppressed += held
    spent = sum(r["epsilon"] for r in budget.releases)
    if spent > epsilon * (1 + 1e-9):
        raise RuntimeError(f"the releases spend {spent}, more than epsilon {epsilon}")
    sgd = weights.get("dp_sgd") or {}
    out["suppressed"] = suppressed
    out["privacy"] = {"epsilon": spent + float(sgd.get("epsilon", 0.0)), "delta": float(sgd.get("delta", 0.0)),
                      "min_count": min_count, "releases": budget.releases}
    return out
