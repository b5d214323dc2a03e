"""What the host side and the runner inside the batch container share: the spec the runner gets,
the event lines it prints, where its outputs land, and the parameters the workbench sets itself."""

import json
import keyword

EVENT = "WORKBENCH-BATCH "     # prefix of the runner's JSON event lines on stdout
RUNS_DIR = "batch"             # outputs land in ~/batch/<run id>/ of the user's home
SUMMARY = "summary.json"
INPUT = "input.ipynb"          # the copy of the notebook every case runs (its hash is audited)
CASE_PARAM = "case_path"       # per case: the case's folder, /data/<dataset>/<case>
DATASET_PARAM = "dataset_path"  # always: /data/<dataset>
RESERVED = (CASE_PARAM, DATASET_PARAM)
LABEL = "org.imaging-workbench.batch-run"  # on the container: the run's id
OK, FAILED = "ok", "failed"


def event_line(kind: str, **fields) -> str:
    return EVENT + json.dumps({"event": kind, **fields}, default=str)


def read_events(stdout: str) -> list[dict]:
    """The runner's events, in order, from its stdout (other lines are the notebook's noise)."""
    events = []
    for line in stdout.splitlines():
        if line.startswith(EVENT):
            try:
                events.append(json.loads(line[len(EVENT):]))
            except ValueError:
                continue
    return events


def is_parameter_name(name) -> bool:
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)
