"""ACRO's verdicts on an output folder a researcher finalised with `acro` in their sandbox, and
the airlock's own re-check of its frequency tables at the dataset's minimum count.

ACRO pins an older pandas than the workbench, so it runs in its own environment
(scripts/ensure_acro.sh) on acro_results.py, in a subprocess. Everything in the folder was made
in the researcher's sandbox, ACRO's threshold included (it is theirs to set), so ACRO's verdicts
are shown to the checkers as the author's evidence, and every frequency table is checked again
here. A file ACRO's checksum no longer matches, or a file of the folder that ACRO never listed,
fails.
"""

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

from ..errors import WorkbenchError
from .findings import Finding
from .table_checks import check_count_grid

SCRIPT = Path(__file__).with_name("acro_results.py")
ENSURE_HINT = "run scripts/ensure_acro.sh (make up and make test do)"
# ACRO's statuses; anything else it might say is for the checkers to judge.
SEVERITY_OF_STATUS = {"fail": "fail", "review": "review", "pass": "info"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


def run_acro_results(folder: Path, acro_python: str, timeout: float) -> dict:
    """acro_results.py's JSON for `folder`, run by ACRO's Python (with {"error"} for a bad folder).

    Raises:
        WorkbenchError: no ACRO environment at `acro_python`, or the script timed out or crashed.
    """
    if not os.access(acro_python, os.X_OK):
        raise WorkbenchError(f"ACRO's environment is missing: no Python at {acro_python}", ENSURE_HINT)
    with tempfile.TemporaryDirectory(prefix="workbench-acro-run-") as scratch:
        # -I and a bare environment: the hub's variables (tokens, database URL) stay in the hub;
        # matplotlib (imported by ACRO) writes its cache in the scratch folder.
        env = {"PATH": os.defpath, "HOME": scratch, "MPLCONFIGDIR": scratch, "LC_ALL": "C.UTF-8"}
        try:
            done = subprocess.run([acro_python, "-I", str(SCRIPT), str(folder)], capture_output=True,
                                  text=True, timeout=timeout, env=env, cwd=scratch)
        except subprocess.TimeoutExpired:
            raise WorkbenchError(f"ACRO's check of {folder} did not finish in {timeout:g} s",
                                 "file the release again; if it keeps timing out, tell an operator") from None
    if done.returncode in (0, 2):
        try:
            report = json.loads(done.stdout)
        except ValueError:
            report = None
        if isinstance(report, dict):
            return report
    raise WorkbenchError(f"ACRO's check of {folder} crashed (exit {done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-1500:]}",
                         f"{ENSURE_HINT} to repair ACRO's environment; if it still crashes, tell an operator")


def _threshold(report: dict) -> int | None:
    value = (report.get("config") or {}).get("safe_threshold")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _words(threshold: int | None) -> str:
    return f"threshold {threshold}" if threshold is not None else "a threshold it did not record (no config.json)"


def _summary(name: str, report: dict, min_count: int) -> list[Finding]:
    statuses = [o["status"] for o in report["outputs"]]
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in ("fail", "review", "pass"))
    threshold = _threshold(report)
    findings = [Finding(name, "acro-summary", "info", f"ACRO {report['acro_version']} checked {len(statuses)} "
                        f"output(s): {counts}; at {_words(threshold)}", {"threshold": threshold})]
    if threshold is None or threshold < min_count:
        findings.append(Finding(name, "acro-threshold", "review",
                                f"ACRO ran with {_words(threshold)}, set in the sandbox, not the dataset's "
                                f"minimum count {min_count}: frequency tables are re-checked here at {min_count}; "
                                "other tables' counts are not in their files, so checkers confirm them",
                                {"threshold": threshold}))
    if not report["results_checksum_ok"]:
        findings.append(Finding(name, "acro-checksum", "fail",
                                "results.json was changed after ACRO wrote it (its SHA-256 differs from "
                                "checksums/results.json.txt); finalise again instead of editing it"))
    return findings


def _is_count_table(output: dict) -> bool:
    # "Frequencies" is the statbarn (SACRO's class of statistics) of a table of counts.
    return (output["type"] == "table" and output["method"] in ("crosstab", "pivot_table")
            and output["statbarn"] == "Frequencies")


def _output_findings(folder: Path, prefix: str, output: dict, file: dict, min_count: int,
                     threshold: int | None) -> list[Finding]:
    name = prefix + file["name"]
    where = {"uid": output["uid"], "acro_status": output["status"], "cells": output["flagged"],
             "command": output["command"], "exception": output["exception"], "comments": output["comments"]}
    summary = output["summary"].strip()
    findings = [Finding(name, "acro-status", SEVERITY_OF_STATUS.get(output["status"], "review"),
                        f"ACRO {output['uid']} ({output['type']}): {output['status']}"
                        + (f". {summary}" if summary and summary != output["status"] else ""), where)]
    if not file["checksum_ok"]:
        findings.append(Finding(name, "acro-checksum", "fail",
                                f"changed after ACRO checked it: its SHA-256 differs from ACRO's "
                                f"checksums/{file['name']}.txt; run the analysis and acro.finalise again "
                                "instead of editing ACRO's outputs", {"uid": output["uid"]}))
    layout = file["layout"] or {}
    if _is_count_table(output):
        if layout.get("header_rows", 0) < 1 or layout.get("label_columns", 0) < 1:
            findings.append(Finding(name, "acro-layout", "fail",
                                    f"the table does not have the shape ACRO recorded for {output['uid']}, "
                                    "so its counts cannot be re-checked; finalise again", {"uid": output["uid"]}))
        else:
            findings += check_count_grid(folder / file["name"], name, layout["header_rows"],
                                         layout["label_columns"], min_count)
    elif output["type"] == "table" and (threshold is None or threshold < min_count):
        findings.append(Finding(name, "acro-threshold", "review",
                                f"ACRO checked the counts behind this table at {_words(threshold)}, not the "
                                f"dataset's minimum count {min_count}, and they are not in the file: checkers "
                                f"confirm no cell rests on fewer than {min_count} people", {"uid": output["uid"]}))
    return findings


def _unlisted(folder: Path, prefix: str, listed: set[str]) -> list[Finding]:
    """Findings for the folder's files that are not ACRO's outputs: its metadata, or strays."""
    findings = []
    for path in sorted(folder.iterdir()):
        if path.name == "checksums" and path.is_dir():
            for checksum in sorted(path.iterdir()):
                name = f"{prefix}checksums/{checksum.name}"
                of = checksum.name.removesuffix(".txt")
                if checksum.name.endswith(".txt") and of in listed | {"results.json"} and checksum.is_file() \
                        and _SHA256.fullmatch(checksum.read_text(errors="replace").strip()):
                    findings.append(Finding(name, "acro-metadata", "info", f"ACRO's checksum of {of}"))
                else:
                    findings.append(Finding(name, "acro-unlisted", "fail",
                                            "not a checksum ACRO wrote for a file of this folder; "
                                            "remove it, or release it from outside ACRO's folder"))
        elif path.is_file() and path.name not in listed | {"results.json"}:
            name = prefix + path.name
            if path.name == "config.json":
                findings.append(Finding(name, "acro-metadata", "info",
                                        "ACRO's settings for the session (no checksum vouches for them)"))
            else:
                findings.append(Finding(name, "acro-unlisted", "fail",
                                        "in ACRO's folder but not in its results.json, so ACRO never checked it: "
                                        "add it with acro.custom_output(...) before acro.finalise, or release "
                                        "it from a folder of its own"))
    return findings


def check_acro_folder(folder: Path, prefix: str, acro_python: str, min_count: int,
                      timeout: float = 120) -> list[Finding]:
    """The findings of an output folder ACRO finalised (results.json, its outputs, checksums/).

    Args:
        folder: the folder, holding exactly the release's files of it.
        prefix: the folder's name in the release with a trailing "/" ("" at the top), so the
            findings name files as the release does.
        acro_python: the Python of ACRO's environment.
        min_count: the dataset's minimum count, which every frequency table is re-checked at.
        timeout: seconds ACRO may take.

    Raises:
        WorkbenchError: no ACRO environment, or ACRO timed out or crashed.
    """
    report = run_acro_results(Path(folder), acro_python, timeout)
    results = prefix + "results.json"
    if "error" in report:
        unchecked = sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())
        return [Finding(results, "acro-results", "fail",
                        f"{report['error']} (the airlock reads a folder written by ACRO's acro.finalise(folder, "
                        "\"json\") whole, with its results.json, outputs and checksums/)")] + [
            Finding(prefix + name, "acro-results", "fail", f"not checked: {results} cannot be used (see its finding)")
            for name in unchecked if name != "results.json"]
    findings = _summary(results, report, min_count)
    threshold, listed = _threshold(report), set()
    for output in report["outputs"]:
        for file in output["files"]:
            listed.add(file["name"])
            findings += _output_findings(Path(folder), prefix, output, file, min_count, threshold)
    return findings + _unlisted(Path(folder), prefix, listed)
