"""Cohort statistics: counts by modality, body part, sex and age band; HU inside tumours;
tumour volumes. Each patient's part in every figure is bounded, so the site's disclosure step
can release them under differential privacy; the server adds the released figures up."""

import math

import numpy as np

from ..protocol.policy import Bins
from .base import Algorithm, epsilon_param

ROUNDS = 1
# Categories are fixed here, not read from the data: a category that appeared only because one
# patient has it would show that patient even when its count is suppressed.
MODALITIES = ("CT", "MR", "other")
BODY_PARTS = ("HEAD", "CHEST", "ABDOMEN", "other")
SEXES = ("F", "M", "other")
AGE_FROM, AGE_TO = 40, 80  # bands of the job's width between these; younger and older are pooled
# The most categories one patient counts in (modalities and body parts beyond are dropped, first
# ones in sorted order kept): the disclosure step's noise scales with their sum.
COUNT_BOUNDS = {"patients": 1, "modality": 2, "body_part": 2, "sex": 1, "age_band": 1}
# Share of the epsilon per release: counts carry five variables, the histograms one each.
SHARES = {"counts": 2.0, "histograms": 1.0}


def age_bands(width: int) -> list[str]:
    """All age bands a job of this band width can publish, in order."""
    starts = range(AGE_FROM, AGE_TO, width)
    last = starts[-1] + width
    return [f"<{AGE_FROM}"] + [f"{lo}-{lo + width - 1}" for lo in starts] + [f"{last}+", "unknown"]


def age_band(age: float | None, width: int) -> str:
    if age is None:
        return "unknown"
    bands = age_bands(width)
    if age < AGE_FROM:
        return bands[0]
    return bands[min(int((age - AGE_FROM) // width) + 1, len(bands) - 2)]


def _category(value: str, categories: tuple) -> str:
    return value if value in categories else "other"


def _counts(patients, width: int) -> dict:
    counts = {"patients": {"all": 0}, "modality": dict.fromkeys(MODALITIES, 0),
              "body_part": dict.fromkeys(BODY_PARTS, 0), "sex": dict.fromkeys(SEXES, 0),
              "age_band": dict.fromkeys(age_bands(width), 0)}
    for p in patients:
        counts["patients"]["all"] += 1
        for variable, values, categories in (("modality", p.modalities, MODALITIES),
                                             ("body_part", p.body_parts, BODY_PARTS)):
            for value in sorted({_category(v, categories) for v in values})[:COUNT_BOUNDS[variable]]:
                counts[variable][value] += 1
        counts["sex"][_category(p.sex, SEXES)] += 1
        counts["age_band"][age_band(p.age, width)] += 1
    return counts


def _first_case_per_patient(cases):
    """A patient's later series image the same tumours again: only the first one counts."""
    seen = set()
    for case in cases:
        if case.patient_id not in seen:
            seen.add(case.patient_id)
            yield case


def site_run(params: dict, task: dict, data, dataset_ids: list, state: dict) -> dict:
    """This site's figures for the job's datasets, each patient's part bounded, before release."""
    lo, hi = params["hu_range"]
    hu_edges = np.linspace(lo, hi, params["hu_bins"] + 1)
    vol_edges = np.asarray(params["volume_edges_ml"], dtype=float)
    hu_counts, vol_counts = np.zeros(len(hu_edges) - 1), np.zeros(len(vol_edges) - 1)
    for case in _first_case_per_patient(data.tumour_cases(dataset_ids)):
        mask = case.labels > 0
        if not mask.any():
            continue
        # Clamped into the range and normalised: each patient adds 1 to the histogram, however large the tumours.
        values = np.clip(case.hu[mask].astype(np.float64), lo, hi)
        hu_counts += np.histogram(values, bins=hu_edges)[0] / values.size
        volume = np.clip(float(mask.sum()) * case.voxel_ml, vol_edges[0], vol_edges[-1])
        vol_counts += np.histogram([volume], bins=vol_edges)[0]
    histogram = {"tumour_hu": (hu_edges, hu_counts), "tumour_volume_ml": (vol_edges, vol_counts)}
    return {
        "counts": _counts(data.patients(dataset_ids), params["age_band"]),
        "count_bounds": dict(COUNT_BOUNDS),
        "histograms": {name: {"edges": edges.tolist(), "counts": counts.tolist(), "per_patient": 1.0}
                       for name, (edges, counts) in histogram.items()},
        "shares": dict(SHARES),
    }


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


def mean_sd_from_histogram(edges: list, counts: list) -> tuple:
    """Mean and sd of the bin midpoints weighted by the counts (None when nothing is counted)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        return None, None
    mids = (np.asarray(edges[:-1], dtype=float) + np.asarray(edges[1:], dtype=float)) / 2
    mean = float((mids * counts).sum() / total)
    return mean, math.sqrt(float((counts * (mids - mean) ** 2).sum() / total))


class Server:
    """Adds up the sites' released figures; a figure a site withheld is marked, not guessed, and a
    pooled figure below the minimum count is suppressed."""

    rounds = 1

    def __init__(self, params: dict, min_count: int):
        self.params, self.min_count = params, min_count
        self.results = {}

    def task(self, round_: int) -> dict:
        return {}

    def add(self, site: str, result: dict) -> None:
        self.results[site] = result

    def end_round(self, round_: int) -> dict:
        return {}

    def _pooled(self, value):
        return None if value is None or value < self.min_count else value

    def _counts(self) -> list[dict]:
        rows = {}
        for site, res in sorted(self.results.items()):
            for variable, values in (res.get("counts") or {}).items():
                for value, count in values.items():
                    row = rows.setdefault((variable, value), {"variable": variable, "value": value, "count": 0,
                                                              "sites": 0, "withheld_by": []})
                    if count is None:
                        row["withheld_by"].append(site)
                    else:
                        row["count"] += count
                        row["sites"] += 1
        for row in rows.values():
            row["count"] = self._pooled(row["count"])
            row["suppressed"] = row["count"] is None  # a count without the sites in withheld_by is still shown
        return sorted(rows.values(), key=lambda r: (r["variable"], r["value"]))

    def _histogram(self, name: str) -> dict:
        hists = {s: r["histograms"][name] for s, r in sorted(self.results.items())
                 if (r.get("histograms") or {}).get(name)}
        if not hists:
            return {"edges": None, "counts": None, "total": None, "suppressed": True, "withheld_by": []}
        edges = next(iter(hists.values()))["edges"]
        if any(h["edges"] != edges for h in hists.values()):
            raise ValueError(f"the sites released {name} on different bin edges")
        counts, withheld = [0.0] * (len(edges) - 1), [[] for _ in edges[1:]]
        total, total_withheld = 0.0, []
        for site, h in hists.items():
            for i, c in enumerate(h["counts"]):
                if c is None:
                    withheld[i].append(site)
                else:
                    counts[i] += c
            if h["total"] is None:
                total_withheld.append(site)
            else:
                total += h["total"]
        counts = [self._pooled(c) for c in counts]
        sites = sorted({s for cell in withheld for s in cell} | set(total_withheld))
        return {"edges": edges, "counts": counts, "total": self._pooled(total) if not total_withheld else None,
                "suppressed": [c is None for c in counts], "withheld_by": sites}

    def _summary(self, hist: dict) -> dict:
        """Mean and sd from the bin midpoints of the released histogram (a suppressed cell counts 0)."""
        if hist["counts"] is None:
            return {"mean": None, "sd": None, "n": None, "suppressed": True, "withheld_by": hist["withheld_by"]}
        mean, sd = mean_sd_from_histogram(hist["edges"], [c or 0.0 for c in hist["counts"]])
        return {"mean": mean, "sd": sd, "n": hist["total"], "suppressed": any(hist["suppressed"]),
                "withheld_by": hist["withheld_by"]}

    def final(self, out_dir) -> dict:
        hists = {name: self._histogram(name) for name in ("tumour_hu", "tumour_volume_ml")}
        hu = hists["tumour_hu"]
        quantiles = (quantiles_from_histogram(hu["edges"], [c or 0.0 for c in hu["counts"]], self.params["quantiles"])
                     if hu["counts"] else {str(q): None for q in self.params["quantiles"]})
        return {
            "counts": self._counts(),
            "histograms": hists,
            "quantiles": {"tumour_hu": quantiles},
            "summary": {name: self._summary(h) for name, h in hists.items()},
        }


def requested_bins(params: dict) -> list[Bins]:
    """The bins a job asks for, for the sites' bin policy (widths, number of bins, ranges)."""
    lo, hi = params["hu_range"]
    return [Bins("hu_bins", "tumour_hu", np.linspace(lo, hi, params["hu_bins"] + 1).tolist(), "hu_range"),
            Bins("volume_edges_ml", "tumour_volume_ml", list(params["volume_edges_ml"]), "volume_edges_ml"),
            Bins("age_band", "age_band", [0, params["age_band"]], label="age bands")]


def result_table(result: dict) -> list[dict]:
    """One row per count (variable, value, count, sites, suppressed, withheld_by: the sites that
    suppressed their part, which the count leaves out)."""
    return [{k: row.get(k) for k in ("variable", "value", "count", "sites", "suppressed", "withheld_by")}
            for row in result.get("counts") or []]


PRIVACY = ("the job's epsilon is split over the releases at each site: half to the counts (Laplace "
           "noise on all categories at once), a quarter each to the HU and the volume histogram")

ALGORITHM = Algorithm(
    id="cohort-statistics", version="1.0", title="Cohort statistics",
    description="Counts of patients by modality, body part, sex and age band; histogram and quantiles "
                "of CT numbers (HU) inside segmented tumours; tumour volume distribution from the SEGs.",
    leaves_site="Counts per fixed category and histogram bin counts (in patients), each with differentially "
                "private Laplace noise; every noisy figure below the site's minimum count is suppressed.",
    params={
        "hu_range": {"type": "array", "items": "number", "length": 2, "default": [-400, 200],
                     "description": "lowest and highest HU of the tumour histogram"},
        "hu_bins": {"type": "integer", "minimum": 2, "maximum": 256, "default": 6,
                    "description": "number of histogram bins (a site refuses bins narrower than its minimum)"},
        "quantiles": {"type": "array", "items": "number", "exclusive_minimum": 0, "exclusive_maximum": 1,
                      "default": [0.05, 0.25, 0.5, 0.75, 0.95],
                      "description": "HU quantiles to estimate from the pooled histogram"},
        "age_band": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10,
                     "description": "width of the age bands in years"},
        "volume_edges_ml": {"type": "array", "items": "number", "minimum": 0,
                            "default": [0, 5, 10, 20, 50, 500],
                            "description": "bin edges of the tumour volume histogram in mL (increasing)"},
        "epsilon": epsilon_param(2.0),
    },
    privacy=PRIVACY,
    site_run=site_run,
    server=Server,
    table=result_table,
    bins=requested_bins,
)
