"""A dataset's disclosure policy at one site, and the checks of a job's parameters against it.

The hub uses these to refuse early with a clear message; each site applies them again, from its
own policy file, since it trusts the hub for nothing but the researcher's identity.
"""

import math
from dataclasses import dataclass, field, fields, replace

from ...errors import WorkbenchError

# Strictest first: "none" lets no weights leave, "dp-sgd" only weights trained under DP-SGD,
# "min-count" any model trained on at least min_count cases.
WEIGHTS_MODES = ("none", "dp-sgd", "min-count")
BIN_UNITS = {"tumour_hu": "HU", "tumour_volume_ml": "mL", "age_band": "years"}


def _default_min_bin_width() -> dict:
    return {"tumour_hu": 10.0, "tumour_volume_ml": 1.0, "age_band": 5}


def _default_ranges() -> dict:
    return {"tumour_hu": [-1024.0, 3071.0], "tumour_volume_ml": [0.0, 5000.0]}


@dataclass(frozen=True)
class DatasetPolicy:
    """What may leave a site from one dataset, and how much privacy budget jobs may spend on it."""

    min_count: int = 10
    epsilon_per_job: float = 8.0
    epsilon_per_researcher: float = 50.0
    # Across all researchers: second accounts and colluders share this one cap.
    epsilon_total: float = 500.0
    delta_per_job: float = 1e-5
    delta_per_researcher: float = 1e-4
    weights: str = "dp-sgd"
    max_bins: int = 64
    min_bin_width: dict = field(default_factory=_default_min_bin_width)
    ranges: dict = field(default_factory=_default_ranges)

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["min_bin_width"] = dict(self.min_bin_width)
        out["ranges"] = {k: list(v) for k, v in self.ranges.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "DatasetPolicy":
        """A policy from (possibly partial) `data` over the defaults; raises WorkbenchError naming bad fields."""
        return with_fields(cls(), data)


FIELDS = tuple(f.name for f in fields(DatasetPolicy))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def field_problems(name: str, value) -> dict[str, str]:
    """Problems with one policy field's value, as {"field" or "field.key": problem}; empty if fine."""
    if name not in FIELDS:
        return {name: f"is not a policy setting (known: {', '.join(FIELDS)})"}
    if name in ("min_count", "max_bins"):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        return {} if ok else {name: f"must be a whole number of at least 1, not {value!r}"}
    if name.startswith("epsilon_"):
        return {} if _number(value) and value > 0 else {name: f"must be a number above 0, not {value!r}"}
    if name.startswith("delta_"):
        ok = _number(value) and 0 < value < 1
        return {} if ok else {name: f"must be a number between 0 and 1, not {value!r}"}
    if name == "weights":
        return {} if value in WEIGHTS_MODES else {name: f"must be one of {', '.join(WEIGHTS_MODES)}, not {value!r}"}
    if not isinstance(value, dict):
        return {name: f"must be a mapping, not {value!r}"}
    known = BIN_UNITS if name == "min_bin_width" else _default_ranges()
    problems = {}
    for key, v in value.items():
        where = f"{name}.{key}"
        if key not in known:
            problems[where] = f"is not known (known: {', '.join(known)})"
        elif name == "min_bin_width" and not (_number(v) and v > 0):
            problems[where] = f"must be a number above 0, not {v!r}"
        elif name == "ranges" and not (isinstance(v, list) and len(v) == 2 and all(map(_number, v)) and v[0] < v[1]):
            problems[where] = f"must be [lowest, highest] with lowest below highest, not {v!r}"
    return problems


def with_fields(policy: DatasetPolicy, data: dict) -> DatasetPolicy:
    """`policy` with the fields in `data` replaced (min_bin_width and ranges merged key by key)."""
    if not isinstance(data, dict):
        raise WorkbenchError(f"a dataset policy must be a mapping, not {data!r}", "see federation/README.md")
    problems = {k: p for name, value in data.items() for k, p in field_problems(name, value).items()}
    if problems:
        raise WorkbenchError("dataset policy: " + "; ".join(f"{k} {p}" for k, p in problems.items()),
                             "fix the fields named")
    changes = dict(data)
    for name in ("min_bin_width", "ranges"):
        if name in changes:
            changes[name] = {**getattr(policy, name), **changes[name]}
    return replace(policy, **changes)


def stricter(a: DatasetPolicy, b: "DatasetPolicy | dict") -> DatasetPolicy:
    """The more restrictive of `a` and `b` in every field; `b` may be partial (a grant's conditions)."""
    b = with_fields(a, b) if isinstance(b, dict) else b
    ranges = {}
    for key in a.ranges.keys() | b.ranges.keys():
        lo_hi = [r for r in (a.ranges.get(key), b.ranges.get(key)) if r]
        ranges[key] = [max(r[0] for r in lo_hi), min(r[1] for r in lo_hi)]
    widths = {key: max(p.min_bin_width.get(key, 0) for p in (a, b))
              for key in a.min_bin_width.keys() | b.min_bin_width.keys()}
    return DatasetPolicy(
        min_count=max(a.min_count, b.min_count),
        epsilon_per_job=min(a.epsilon_per_job, b.epsilon_per_job),
        epsilon_per_researcher=min(a.epsilon_per_researcher, b.epsilon_per_researcher),
        epsilon_total=min(a.epsilon_total, b.epsilon_total),
        delta_per_job=min(a.delta_per_job, b.delta_per_job),
        delta_per_researcher=min(a.delta_per_researcher, b.delta_per_researcher),
        weights=min(a.weights, b.weights, key=WEIGHTS_MODES.index),
        max_bins=min(a.max_bins, b.max_bins),
        min_bin_width=widths,
        ranges=ranges,
    )


def _g(x) -> str:
    return f"{x:g}"


def _add(problems: dict, name: str, problem: str) -> None:
    problems[name] = f"{problems[name]}; {problem}" if name in problems else problem


@dataclass(frozen=True)
class Bins:
    """Histogram bins a job asks for (an algorithm declares them from its parameters): checked
    against a site's narrowest bin, most bins and range for `variable`."""

    field: str  # the parameter a refusal names for the width and the number of bins
    variable: str  # the policy's key: tumour_hu, tumour_volume_ml or age_band
    edges: list
    range_field: str | None = None  # the parameter a range refusal names; None: no range to check
    label: str = "bins"


def _bin_problems(problems: dict, bins: Bins, policy: DatasetPolicy) -> None:
    unit, edges = BIN_UNITS[bins.variable], list(bins.edges)
    narrowest = min((b - a for a, b in zip(edges, edges[1:])), default=math.inf)
    minimum = policy.min_bin_width.get(bins.variable)
    if minimum is not None and narrowest < minimum:
        _add(problems, bins.field, f"{bins.label} of {_g(narrowest)} {unit} are narrower than this site's minimum "
                                   f"of {_g(minimum)} {unit}")
    if len(edges) - 1 > policy.max_bins:
        _add(problems, bins.field, f"{len(edges) - 1} bins are more than this site's maximum of {policy.max_bins}")
    low, high = policy.ranges.get(bins.variable, (-math.inf, math.inf))
    if bins.range_field and (edges[0] < low or edges[-1] > high):
        _add(problems, bins.range_field, f"{_g(edges[0])} to {_g(edges[-1])} {unit} reaches outside this site's "
                                         f"range of {_g(low)} to {_g(high)} {unit}")


def request_problems(algorithm_id: str, params: dict, policy: DatasetPolicy) -> dict[str, str]:
    """What in a job's (complete) parameters this dataset's policy refuses, as {field: problem}."""
    from ..algorithms import ALGORITHMS

    algorithm = ALGORITHMS.get(algorithm_id)
    if algorithm is None:
        return {"algorithm": f"{algorithm_id!r} is not an approved algorithm"}
    problems = {}
    if algorithm.epsilon(params) > policy.epsilon_per_job:
        problems["epsilon"] = (f"epsilon {_g(algorithm.epsilon(params))} is over this site's limit of "
                               f"{_g(policy.epsilon_per_job)} per job")
    if algorithm.weights_leave and policy.weights == "none":
        problems["algorithm"] = "this site lets no model weights leave"
    for bins in algorithm.bins(params) if algorithm.bins else []:
        _bin_problems(problems, bins, policy)
    if algorithm.policy_problems:
        problems.update(algorithm.policy_problems(params, policy.weights))
    return problems
