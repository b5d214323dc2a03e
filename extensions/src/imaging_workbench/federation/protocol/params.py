"""Checks of a job's parameters against an algorithm's parameter schema (a small JSON-Schema
subset: integer, number, string with enum, array of numbers), the same at the hub and at a site."""

from ...errors import WorkbenchError


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


def param_errors(algorithm, params: dict) -> dict[str, str]:
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
    alternatives: dict[str, list[str]] = {}  # params with the same "one_of" tag: exactly one is given
    for name, spec in algorithm.params.items():
        if "one_of" in spec:
            alternatives.setdefault(spec["one_of"], []).append(name)
    for names in alternatives.values():
        if sum(name in params for name in names) != 1:
            errors.update({name: f"give exactly one of {' and '.join(names)}" for name in names if name not in errors})
    return errors


def validate_params(algorithm, params: dict) -> dict:
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
