"""Cohort statistics: counts by modality, body part, sex and age band; HU inside tumours;
tumour volumes. Sites release counts, histograms and sums; the server adds them up."""

import math

import numpy as np

from ..protocol.privacy import quantiles_from_histogram, rebin
from .base import Algorithm, epsilon_param

ROUNDS = 1


def age_band(age: float | None, width: int) -> str:
    if age is None:
        return "unknown"
    lo = int(age // width) * width
    return f"{lo}-{lo + width - 1}"


def site_run(params: dict, task: dict, data, dataset_ids: list, state: dict) -> dict:
    """Everything this site holds for the job's datasets, before the privacy filter."""
    counts = {"patients": {"all": 0}, "modality": {}, "body_part": {}, "sex": {}, "age_band": {}}
    patients = data.patients(dataset_ids)
    for p in patients:
        counts["patients"]["all"] += 1
        for m in p.modalities:
            counts["modality"][m or "unknown"] = counts["modality"].get(m or "unknown", 0) + 1
        for b in p.body_parts:
            counts["body_part"][b or "unknown"] = counts["body_part"].get(b or "unknown", 0) + 1
        counts["sex"][p.sex or "unknown"] = counts["sex"].get(p.sex or "unknown", 0) + 1
        band = age_band(p.age, params["age_band"])
        counts["age_band"][band] = counts["age_band"].get(band, 0) + 1

    lo, hi = params["hu_range"]
    hu_edges = np.linspace(lo, hi, params["hu_bins"] + 1)
    vol_edges = np.asarray(params["volume_edges_ml"], dtype=float)
    hu_counts = np.zeros(len(hu_edges) - 1)
    vol_counts = np.zeros(len(vol_edges) - 1)
    hu_sum = {"n": 0, "sum": 0.0, "sumsq": 0.0}
    vol_sum = {"n": 0, "sum": 0.0, "sumsq": 0.0}
    tumours = 0
    for case in data.tumour_cases(dataset_ids):
        for label in np.unique(case.labels):
            if label == 0:
                continue
            mask = case.labels == label
            values = case.hu[mask].astype(np.float64)
            tumours += 1
            hu_counts += np.histogram(values, bins=hu_edges)[0]
            hu_sum["n"] += int(values.size)
            hu_sum["sum"] += float(values.sum())
            hu_sum["sumsq"] += float((values ** 2).sum())
            volume = float(mask.sum()) * case.voxel_ml
            vol_counts += np.histogram([volume], bins=vol_edges)[0]
            vol_sum["n"] += 1
            vol_sum["sum"] += volume
            vol_sum["sumsq"] += volume ** 2
    return {
        "counts": counts,
        "histograms": {
            "tumour_hu": {"edges": hu_edges.tolist(), "counts": hu_counts.tolist(), "subjects": tumours},
            "tumour_volume_ml": {"edges": vol_edges.tolist(), "counts": vol_counts.tolist(), "subjects": tumours},
        },
        "sums": {"tumour_hu": dict(hu_sum, subjects=tumours), "tumour_volume_ml": dict(vol_sum, subjects=tumours)},
    }


def _mean_sd(s: dict) -> tuple:
    n = s["n"]
    if not n:
        return None, None
    mean = s["sum"] / n
    var = max(s["sumsq"] / n - mean ** 2, 0.0) * (n / (n - 1) if n > 1 else 1.0)
    return mean, math.sqrt(var)


class Server:
    """Adds up the sites' released figures; a figure any site withheld is marked, not guessed."""

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
        out = []
        for row in rows.values():
            row["suppressed"] = bool(row["withheld_by"]) or row["count"] < self.min_count
            if row["count"] < self.min_count:
                row["count"] = None
            out.append(row)
        return sorted(out, key=lambda r: (r["variable"], r["value"]))

    def _histogram(self, name: str) -> dict | None:
        hists = {s: r["histograms"][name] for s, r in self.results.items() if (r.get("histograms") or {}).get(name)}
        withheld = sorted(s for s, r in self.results.items() if "histograms" in r and not r["histograms"].get(name))
        if not hists:
            return {"edges": None, "counts": None, "subjects": 0, "suppressed": True, "withheld_by": withheld}
        common = sorted(set.intersection(*(set(round(e, 9) for e in h["edges"]) for h in hists.values())))
        counts = np.zeros(len(common) - 1)
        for h in hists.values():
            counts += rebin(h["edges"], h["counts"], common)
        subjects = sum(h["subjects"] for h in hists.values())
        return {"edges": common, "counts": counts.tolist(), "subjects": subjects,
                "suppressed": bool(withheld) or subjects < self.min_count, "withheld_by": withheld}

    def _summary(self, name: str) -> dict:
        parts = {s: r["sums"][name] for s, r in self.results.items() if (r.get("sums") or {}).get(name)}
        total = {"n": sum(p["n"] for p in parts.values()), "sum": sum(p["sum"] for p in parts.values()),
                 "sumsq": sum(p["sumsq"] for p in parts.values())}
        subjects = sum(p["subjects"] for p in parts.values())
        mean, sd = _mean_sd(total)
        withheld = sorted(s for s, r in self.results.items() if "sums" in r and not r["sums"].get(name))
        return {"mean": mean, "sd": sd, "n": total["n"], "subjects": subjects,
                "suppressed": bool(withheld) or subjects < self.min_count, "withheld_by": withheld}

    def final(self, out_dir) -> dict:
        hu = self._histogram("tumour_hu")
        quantiles = (quantiles_from_histogram(hu["edges"], hu["counts"], self.params["quantiles"])
                     if hu["counts"] else {str(q): None for q in self.params["quantiles"]})
        return {
            "counts": self._counts(),
            "histograms": {"tumour_hu": hu, "tumour_volume_ml": self._histogram("tumour_volume_ml")},
            "quantiles": {"tumour_hu": quantiles},
            "summary": {"tumour_hu": self._summary("tumour_hu"),
                        "tumour_volume_ml": self._summary("tumour_volume_ml")},
        }


def result_table(result: dict) -> list[dict]:
    """One row per published count (variable, value, count, sites, suppressed)."""
    return [{k: row.get(k) for k in ("variable", "value", "count", "sites", "suppressed")}
            for row in result.get("counts") or []]


PRIVACY = ("the job's epsilon is split over its releases at each site: counts, the HU histogram, "
           "the volume histogram")

ALGORITHM = Algorithm(
    id="cohort-statistics", version="1.0", title="Cohort statistics",
    description="Counts of patients by modality, body part, sex and age band; histogram and quantiles "
                "of CT numbers (HU) inside segmented tumours; tumour volume distribution from the SEGs.",
    leaves_site="Counts per category, histogram bin counts, sums for means; every count below the "
                "site's minimum count is suppressed, counts carry the site's noise, bins are capped.",
    params={
        "hu_range": {"type": "array", "items": "number", "length": 2, "default": [-400, 400],
                     "description": "lowest and highest HU of the tumour histogram"},
        "hu_bins": {"type": "integer", "minimum": 2, "maximum": 256, "default": 40,
                    "description": "number of histogram bins (a site may merge bins down to its maximum)"},
        "quantiles": {"type": "array", "items": "number", "exclusive_minimum": 0, "exclusive_maximum": 1,
                      "default": [0.05, 0.25, 0.5, 0.75, 0.95],
                      "description": "HU quantiles to estimate from the pooled histogram"},
        "age_band": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10,
                     "description": "width of the age bands in years"},
        "volume_edges_ml": {"type": "array", "items": "number", "minimum": 0,
                            "default": [0, 1, 2, 5, 10, 20, 50, 100, 500],
                            "description": "bin edges of the tumour volume histogram in mL (increasing)"},
        "epsilon": epsilon_param(2.0),
    },
    privacy=PRIVACY,
    site_run=site_run,
    server=Server,
    table=result_table,
)
