"""The site admin's one policy file, `local/workbench_policy.yaml` in the site's kit: which
algorithms the site runs and, per dataset, what may leave it. Read at every job, so an edit
takes effect without a restart; every problem is reported with its line.
"""

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ...errors import WorkbenchError
from ..protocol.policy import DatasetPolicy, field_problems, with_fields

POLICY_FILE = "workbench_policy.yaml"
SECTIONS = ("allowed_algorithms", "defaults", "datasets")
HINT = "fix the file (see federation/README.md) and check it with `workbench site policy check --kit <kit>`"


class PolicyFileError(WorkbenchError):
    """A site policy file that is missing or wrong; `.line` is 1-based, None for the whole file."""

    def __init__(self, path: Path, line: int | None, problem: str):
        super().__init__(f"{path}, line {line}: {problem}" if line else f"{path}: {problem}", HINT)
        self.path, self.line, self.problem = path, line, problem


@dataclass(frozen=True)
class SitePolicy:
    """A site's policy file, read: the algorithms it runs and each dataset's DatasetPolicy."""

    path: Path
    allowed_algorithms: list[str]
    defaults: DatasetPolicy = field(default_factory=DatasetPolicy)
    datasets: dict = field(default_factory=dict)  # dataset id -> DatasetPolicy, only those overridden

    def for_dataset(self, dataset_id: str) -> DatasetPolicy:
        return self.datasets.get(dataset_id, self.defaults)


def _line(node, path) -> int:
    """The 1-based line of the deepest key (or list item) along `path` that the file holds."""
    line = node.start_mark.line + 1
    for step in path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(step)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _no_duplicate_keys(path: Path, node) -> None:
    # YAML keeps the last of two equal keys without a word; an admin's earlier line would be ignored.
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            if k.value in seen:
                raise PolicyFileError(path, k.start_mark.line + 1, f"key {k.value!r} appears twice")
            seen.add(k.value)
            _no_duplicate_keys(path, v)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _no_duplicate_keys(path, item)


def _dataset_policy(path: Path, root, where: tuple, base: DatasetPolicy, data) -> DatasetPolicy:
    label = ".".join(map(str, where))
    if not isinstance(data, dict):
        raise PolicyFileError(path, _line(root, where), f"{label} must be a mapping of settings, not {data!r}")
    for name, value in data.items():
        problems = field_problems(str(name), value)
        if problems:
            key, problem = next(iter(problems.items()))
            raise PolicyFileError(path, _line(root, (*where, *key.split("."))), f"{label}.{key} {problem}")
    return with_fields(base, data)


def load_site_policy(local_dir: Path) -> SitePolicy:
    """Read and check `<local_dir>/workbench_policy.yaml`; raises PolicyFileError naming the line."""
    from ..algorithms import ALGORITHMS

    path = Path(local_dir) / POLICY_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PolicyFileError(path, None, "the site's policy file is missing (this site runs no jobs without it)") \
            from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise PolicyFileError(path, mark.line + 1 if mark else None, f"not valid YAML: {e.problem}") from None
    if not isinstance(data, dict):
        raise PolicyFileError(path, _line(root, ()) if root else None,
                              f"must be a mapping with {', '.join(SECTIONS)}")
    _no_duplicate_keys(path, root)
    for key in data:
        if key not in SECTIONS:
            raise PolicyFileError(path, _line(root, (key,)), f"unknown key {key!r} (known: {', '.join(SECTIONS)})")
    if "allowed_algorithms" not in data:
        raise PolicyFileError(path, 1, "allowed_algorithms is missing: list the algorithms this site runs")
    allowed = data["allowed_algorithms"]
    if not isinstance(allowed, list):
        raise PolicyFileError(path, _line(root, ("allowed_algorithms",)),
                              f"allowed_algorithms must be a list of algorithm ids, not {allowed!r}")
    for i, algorithm in enumerate(allowed):
        if algorithm not in ALGORITHMS:
            raise PolicyFileError(path, _line(root, ("allowed_algorithms", i)),
                                  f"unknown algorithm {algorithm!r} (approved: {', '.join(sorted(ALGORITHMS))})")
    defaults = _dataset_policy(path, root, ("defaults",), DatasetPolicy(), data.get("defaults") or {})
    datasets = data.get("datasets") or {}
    if not isinstance(datasets, dict):
        raise PolicyFileError(path, _line(root, ("datasets",)),
                              f"datasets must map dataset ids to their settings, not {datasets!r}")
    return SitePolicy(path, list(allowed), defaults,
                      {str(d): _dataset_policy(path, root, ("datasets", d), defaults, s or {})
                       for d, s in datasets.items()})


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000, sort_keys=False).removesuffix("...\n").strip()


COMMENTS = {
    "min_count": "counts, histograms, sums and models resting on fewer patients or tumours never leave",
    "epsilon_per_job": "differential privacy: the most one job may spend on a dataset",
    "epsilon_per_researcher": "all of one researcher's jobs on a dataset (`workbench site budget` resets or raises it)",
    "epsilon_total": "all researchers together on a dataset: second accounts and colluders share it",
    "delta_per_job": "delta of one job's (epsilon, delta) guarantee",
    "delta_per_researcher": "all of one researcher's jobs on a dataset",
    "weights": "model weights may leave: none, dp-sgd (only trained under DP-SGD), min-count (any model)",
    "max_bins": "histograms hold at most this many bins",
    "min_bin_width": "narrowest histogram bins: HU, mL, years",
    "ranges": "histograms stay inside these ranges (HU, mL)",
}


def policy_text(defaults: DatasetPolicy, allowed_algorithms) -> str:
    """A commented policy file holding `defaults` and `allowed_algorithms` (written once, then the admin's)."""
    settings = {name: f"  {name}: {_flow(value)}" for name, value in defaults.as_dict().items()}
    width = max(map(len, settings.values()))
    lines = [
        "# This site's workbench policy: what it runs and what may leave it. It is read at every job:",
        "# edit it and the next job follows it (no restart). Check it with",
        "#   workbench site policy check --kit <this kit>",
        "",
        "# Approved algorithms this site takes part in; drop one and the site sits out such jobs.",
        f"allowed_algorithms: {_flow(sorted(allowed_algorithms))}",
        "",
        "# Every dataset, unless overridden under datasets:",
        "defaults:",
        *(f"{line.ljust(width)}  # {COMMENTS[name]}" for name, line in settings.items()),
        "",
        "# Per dataset id, only the settings that differ from the defaults, e.g.",
        "#   lung-ct: {weights: min-count, epsilon_per_researcher: 10}",
        "datasets: {}",
    ]
    return "\n".join(lines) + "\n"


def write_policy_if_missing(local_dir: Path, defaults: DatasetPolicy, allowed) -> Path:
    """Write the policy file unless the site already has one (the admin's edits are never overwritten)."""
    path = Path(local_dir) / POLICY_FILE
    try:
        with open(path, "x") as f:
            f.write(policy_text(defaults, allowed))
    except FileExistsError:
        pass
    return path
