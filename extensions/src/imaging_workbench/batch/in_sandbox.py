"""The runner INSIDE a batch container: `python -m imaging_workbench.batch.in_sandbox SPEC`.

SPEC (JSON): run_id, notebook (relative to the home), dataset, parameters, per_case, workers.
It checks everything before writing anything (the notebook exists and has a cell tagged
'parameters' declaring every parameter given, and case_path when per case; the dataset has
cases), then copies the notebook to ~/batch/<run id>/input.ipynb and runs that copy with
papermill: once, or once per case (each patient folder of /data/<dataset>) on `workers`
processes. A failing case is recorded with its error and the others go on. Events go to stdout
as protocol.event_line (the host reads them from the container's log, never from the home);
the progress bar and the summary table go to stderr; ~/batch/<run id>/summary.json is written last.
"""

import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from .protocol import CASE_PARAM, DATASET_PARAM, FAILED, INPUT, OK, RUNS_DIR, SUMMARY, event_line

DATA_ROOT = Path("/data")
ROUTE_WAIT = 20  # seconds the host may take to remove the default route


class Refused(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def emit(kind: str, **fields) -> None:
    print(event_line(kind, **fields), flush=True)


def has_default_route() -> bool:
    with open("/proc/net/route") as f:
        return any(line.split()[1] == "00000000" for line in f.readlines()[1:] if len(line.split()) > 1)


def wait_for_closed_network() -> None:
    """Run nothing before the host has removed the default route (it does so right after the start)."""
    deadline = time.monotonic() + ROUTE_WAIT
    while has_default_route():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the default route is still there after {ROUTE_WAIT} s")
        time.sleep(0.1)


def check(spec: dict, home: Path) -> tuple[Path, list[str]]:
    """The notebook's path and the cases, or Refused naming the field."""
    notebook = home / spec["notebook"]
    if not notebook.is_file():
        raise Refused("notebook", f"{spec['notebook']} is not a file in your home")
    declared = declared_parameters(notebook, spec["notebook"])
    wanted = [*spec["parameters"], *([CASE_PARAM] if spec["per_case"] else [])]
    unknown = [name for name in wanted if name not in declared]
    if unknown:
        field = "notebook" if unknown == [CASE_PARAM] else "parameters"
        raise Refused(field, f"{', '.join(unknown)}: not declared in the parameters cell of {spec['notebook']} "
                             f"(it declares {', '.join(declared)})")
    dataset = DATA_ROOT / spec["dataset"]
    if not dataset.is_dir():
        raise Refused("dataset", f"/data/{spec['dataset']} is not mounted")
    cases = sorted(p.name for p in dataset.iterdir() if p.is_dir() and not p.name.startswith("."))
    if spec["per_case"] and not cases:
        raise Refused("dataset", f"/data/{spec['dataset']} has no case folders")
    out = home / RUNS_DIR / str(spec["run_id"])
    if out.exists():
        raise Refused("run_id", f"~/{RUNS_DIR}/{spec['run_id']} exists already")
    return notebook, cases if spec["per_case"] else []


def declared_parameters(notebook: Path, name: str) -> list[str]:
    """The names its cell tagged 'parameters' sets (every run uses the python3 kernel)."""
    from papermill.iorw import load_notebook_node
    from papermill.translators import papermill_translators
    from papermill.utils import find_first_tagged_cell_index

    try:
        nb = load_notebook_node(str(notebook))  # also gives every cell its tags
        index = find_first_tagged_cell_index(nb, "parameters")
        cell = nb.cells[index] if index >= 0 else None
        declared = [p.name for p in papermill_translators.find_translator("python3", "python").inspect(cell)] \
            if cell is not None else []
    except Exception as e:
        raise Refused("notebook", f"{name} cannot be read as a notebook ({e.__class__.__name__}: {e})") from None
    if cell is None:
        raise Refused("notebook", f"{name} has no cell tagged 'parameters'")
    return declared


def run_case(source: str, output: str, parameters: dict, cwd: str) -> dict:
    """One papermill run; its error (`ename: evalue` of the failing cell) instead of an exception."""
    import papermill

    started = time.monotonic()
    try:
        papermill.execute_notebook(source, output, parameters=parameters, kernel_name="python3", language="python",
                                   progress_bar=False, cwd=cwd)
        status, error = OK, None
    except papermill.PapermillExecutionError as e:
        status, error = FAILED, f"{e.ename}: {e.evalue}"
    except Exception as e:  # the kernel died, a timeout: the case fails, the run goes on
        status, error = FAILED, f"{e.__class__.__name__}: {e}"
    return {"status": status, "error": error, "seconds": round(time.monotonic() - started, 2)}


def run(spec: dict, home: Path) -> dict:
    from tqdm import tqdm

    notebook, cases = check(spec, home)
    out = home / RUNS_DIR / str(spec["run_id"])
    out.mkdir(parents=True)
    data = notebook.read_bytes()
    (out / INPUT).write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    dataset = str(DATA_ROOT / spec["dataset"])
    jobs = {case: {**spec["parameters"], DATASET_PARAM: dataset, CASE_PARAM: f"{dataset}/{case}"} for case in cases}
    if not cases:
        jobs = {"output": {**spec["parameters"], DATASET_PARAM: dataset}}
    emit("start", notebook_sha256=sha256, cases=len(jobs))
    results = {}
    workers = max(1, min(int(spec["workers"]), len(jobs)))
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool, \
            tqdm(total=len(jobs), desc=f"batch {spec['run_id']}", unit="case", file=sys.stderr) as bar:
        futures = {pool.submit(run_case, str(out / INPUT), str(out / f"{name}.ipynb"), params, str(home)): name
                   for name, params in jobs.items()}
        for future in as_completed(futures):
            name = futures[future]
            results[name] = {"case": name if cases else None, "output": f"~/{RUNS_DIR}/{spec['run_id']}/{name}.ipynb",
                             **future.result()}
            emit("case", **results[name])
            bar.update()
    rows = [results[name] for name in jobs]
    summary = {"run_id": spec["run_id"], "notebook": spec["notebook"], "notebook_sha256": sha256,
               "dataset": spec["dataset"], "cases": len(rows), "ok": sum(r["status"] == OK for r in rows),
               "failed": sum(r["status"] == FAILED for r in rows), "results": rows}
    partial = out / (SUMMARY + ".partial")
    partial.write_text(json.dumps(summary, indent=1))
    partial.rename(out / SUMMARY)
    print_table(rows)
    emit("summary", **summary)
    return summary


def print_table(rows: list[dict]) -> None:
    width = max([len(str(r["case"])) for r in rows] + [4])
    print(f"\n{'case':<{width}}  status  seconds  error", file=sys.stderr)
    for r in rows:
        print(f"{str(r['case']):<{width}}  {r['status']:<6}  {r['seconds']:>7}  {r['error'] or ''}", file=sys.stderr)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0])
    try:
        wait_for_closed_network()
        run(spec, Path(os.environ.get("HOME", "/home/jovyan")))
    except Refused as e:
        emit("refused", field=e.field, error=str(e))
        return 2
    except Exception as e:
        emit("failed", error=f"{e.__class__.__name__}: {e}")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
