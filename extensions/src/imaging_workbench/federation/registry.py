"""The approved algorithms: id, version, description, parameter schema, and what leaves a site.

A site runs only what is listed here *and* allowed in its own policy file; researchers pick
one by id and pass parameters that `validate_params` checks against the schema (a small
JSON-Schema subset: integer, number, string with enum, array of numbers).
"""

from dataclasses import dataclass, field

from ..errors import WorkbenchError
from .allowlist import CONTROLLER, EXECUTOR


@dataclass(frozen=True)
class Algorithm:
    id: str
    version: str
    title: str
    description: str
    leaves_site: str
    params: dict = field(default_factory=dict)
    rounds_param: str | None = None  # the parameter that sets the number of rounds, if any
    # The FLARE classes a job of this algorithm builds: they alone make the sites' allow-lists.
    controller: str = CONTROLLER
    executor: str = EXECUTOR

    def as_dict(self) -> dict:
        return {"id": self.id, "version": self.version, "title": self.title, "description": self.description,
                "leaves_site": self.leaves_site, "params": self.params}


ALGORITHMS = {
    "cohort-statistics": Algorithm(
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
        },
    ),
    "federated-training": Algorithm(
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
        },
        rounds_param="rounds",
    ),
    "federated-evaluation": Algorithm(
        id="federated-evaluation", version="1.0", title="Federated model evaluation",
        description="Runs a model from a finished federated-training job at each site and aggregates "
                    "Dice and Hausdorff distance against the site's SEGs.",
        leaves_site="Count, sum and sum of squares of Dice and 95th-percentile Hausdorff per site "
                    "(suppressed below the minimum count).",
        params={
            "model_job": {"type": "string", "required": True,
                          "description": "id of a finished federated-training job whose model to evaluate"},
            "crop_size": {"type": "integer", "enum": [32, 48, 64], "default": 32,
                          "description": "edge of the cubic crops (voxels); use the training value"},
        },
    ),
}


def get_algorithm(algorithm_id: str) -> Algorithm:
    try:
        return ALGORITHMS[algorithm_id]
    except (KeyError, TypeError):
        raise WorkbenchError(f"unknown algorithm {algorithm_id!r}",
                             f"pick one of the approved algorithms: {', '.join(sorted(ALGORITHMS))}") from None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(spec: dict, value) -> str | None:
    """The problem with `value` under `spec`, or None."""
    kind = spec["type"]
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"must be an integer, not {value!r}"
    if kind == "number" and not _is_number(value):
        return f"must be a number, not {value!r}"
    if kind == "string" and (not isinstance(value, str) or not value):
        return f"must be a non-empty string, not {value!r}"
    if kind == "array":
        if not isinstance(value, list) or not value or not all(_is_number(v) for v in value):
            return f"must be a non-empty list of numbers, not {value!r}"
        if "length" in spec and len(value) != spec["length"]:
            return f"must hold {spec['length']} numbers, not {len(value)}"
        if list(value) != sorted(value) or len(set(value)) != len(value):
            return f"must be strictly increasing, not {value!r}"
        items = value
    else:
        items = [value]
    for v in items:
        if "enum" in spec and v not in spec["enum"]:
            return f"must be one of {spec['enum']}, not {v!r}"
        if "minimum" in spec and v < spec["minimum"]:
            return f"must be at least {spec['minimum']}, not {v!r}"
        if "maximum" in spec and v > spec["maximum"]:
            return f"must be at most {spec['maximum']}, not {v!r}"
        if "exclusive_minimum" in spec and v <= spec["exclusive_minimum"]:
            return f"must be greater than {spec['exclusive_minimum']}, not {v!r}"
        if "exclusive_maximum" in spec and v >= spec["exclusive_maximum"]:
            return f"must be less than {spec['exclusive_maximum']}, not {v!r}"
    return None


def param_errors(algorithm: Algorithm, params: dict) -> dict[str, str]:
    """Every problem with `params`, as {field: what is wrong}; empty when they are valid."""
    if not isinstance(params, dict):
        return {"params": f"must be a mapping of parameter names to values, not {type(params).__name__}"}
    errors = {name: f"is not a parameter of {algorithm.id} (known: {', '.join(algorithm.params)})"
              for name in params if name not in algorithm.params}
    for name, spec in algorithm.params.items():
        if name not in params:
            if spec.get("required"):
                errors[name] = "is required"
            continue
        problem = _check(spec, params[name])
        if problem:
            errors[name] = problem
    return errors


def validate_params(algorithm: Algorithm, params: dict) -> dict:
    """Return `params` completed with defaults, or raise WorkbenchError naming every bad field."""
    errors = param_errors(algorithm, params)
    if errors:
        raise ParamError(algorithm.id, errors)
    full = {name: spec["default"] for name, spec in algorithm.params.items() if "default" in spec}
    full.update(params)
    return full


class ParamError(WorkbenchError):
    """Parameters that do not fit an algorithm's schema; `errors` maps each field to its problem."""

    def __init__(self, algorithm_id: str, errors: dict[str, str]):
        self.errors = errors
        detail = "; ".join(f"{k} {v}" for k, v in sorted(errors.items()))
        super().__init__(f"bad parameters for {algorithm_id}: {detail}",
                         "fix the fields named; see the algorithm's parameter schema")
