"""What may leave a site: the privacy rules every result passes through, as pure functions.

A site result is a dict with these sections (anything else is dropped):

- `counts`: {variable: {value: count}}: a count below `min_count` becomes None and is listed
  under `suppressed`; the others get relative noise (uniform in ±noise) and are rounded.
- `histograms`: {name: {edges, counts, subjects}}: suppressed whole when fewer than `min_count`
  subjects (patients or tumours) contribute; bins merged down to `max_bins`; counts noised.
- `sums`: {name: {n, sum, sumsq, subjects}}: suppressed below `min_count` subjects; sums noised.
- `weights` (bytes) with `n_samples`: a model update, withheld when trained on fewer than
  `min_count` samples.
- `meta` (site, algorithm, seconds) and `error` (a message) pass unchanged.
"""

import math
import random

import numpy as np

ALLOWED_SECTIONS = ("counts", "histograms", "sums", "weights", "n_samples", "meta", "error")


def merge_bins(edges: list, counts: list, max_bins: int) -> tuple[list, list]:
    """Merge adjacent bins (keeping a subset of the edges) until at most `max_bins` remain."""
    n = len(counts)
    if n <= max_bins:
        return list(edges), list(counts)
    group = math.ceil(n / max_bins)
    new_edges = [edges[i] for i in range(0, n, group)] + [edges[-1]]
    new_counts = [sum(counts[i:i + group]) for i in range(0, n, group)]
    return new_edges, new_counts


def _noisy(value: float, noise: float, rng: random.Random) -> float:
    return value * (1.0 + rng.uniform(-noise, noise)) if noise else value


def apply_privacy(result: dict, min_count: int, noise: float, max_bins: int, rng: random.Random | None = None) -> dict:
    """Return what may leave the site of `result` (the input is not changed)."""
    rng = rng or random.Random()
    out = {k: result[k] for k in ("meta", "error") if k in result}
    suppressed = []
    if "counts" in result:
        out["counts"] = {}
        for variable, values in result["counts"].items():
            out["counts"][variable] = {}
            for value, count in values.items():
                if count < min_count:
                    out["counts"][variable][value] = None
                    suppressed.append(f"counts.{variable}.{value}")
                else:
                    out["counts"][variable][value] = int(round(_noisy(count, noise, rng)))
    if "histograms" in result:
        out["histograms"] = {}
        for name, hist in result["histograms"].items():
            if hist["subjects"] < min_count:
                out["histograms"][name] = None
                suppressed.append(f"histograms.{name}")
                continue
            edges, counts = merge_bins(hist["edges"], hist["counts"], max_bins)
            out["histograms"][name] = {"edges": edges, "counts": [_noisy(c, noise, rng) for c in counts],
                                       "subjects": hist["subjects"]}
    if "sums" in result:
        out["sums"] = {}
        for name, s in result["sums"].items():
            if s.get("subjects", s["n"]) < min_count:
                out["sums"][name] = None
                suppressed.append(f"sums.{name}")
                continue
            out["sums"][name] = {"n": s["n"], "sum": _noisy(s["sum"], noise, rng),
                                 "sumsq": _noisy(s["sumsq"], noise, rng), "subjects": s.get("subjects", s["n"])}
    if "weights" in result:
        if result.get("n_samples", 0) < min_count:
            suppressed.append("weights")
        else:
            out["weights"] = result["weights"]
        out["n_samples"] = result.get("n_samples", 0) if result.get("n_samples", 0) >= min_count else None
    out["suppressed"] = suppressed
    out["privacy"] = {"min_count": min_count, "noise": noise, "max_bins": max_bins}
    return out


def rebin(edges: list, counts: list, common: list) -> list:
    """Sum `counts` on `edges` into the coarser `common` edges (a subset of `edges`)."""
    index = {round(e, 9): i for i, e in enumerate(edges)}
    out = []
    for lo, hi in zip(common[:-1], common[1:]):
        out.append(float(sum(counts[index[round(lo, 9)]:index[round(hi, 9)]])))
    return out


def quantiles_from_histogram(edges: list, counts: list, qs: list) -> dict:
    """Quantiles by linear interpolation inside the bin where the cumulative count crosses q."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    out = {}
    if total <= 0:
        return {str(q): None for q in qs}
    cum = np.concatenate([[0.0], np.cumsum(counts)])
    for q in qs:
        target = q * total
        i = int(np.searchsorted(cum, target, side="left"))
        i = min(max(i, 1), len(counts))
        lo, hi = cum[i - 1], cum[i]
        frac = 0.0 if hi == lo else (target - lo) / (hi - lo)
        out[str(q)] = float(edges[i - 1] + frac * (edges[i] - edges[i - 1]))
    return out
