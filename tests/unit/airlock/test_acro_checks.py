"""ACRO's checks of a release, on real ACRO output: one subprocess in ACRO's own environment
(scripts/ensure_acro.sh, part of `make test`'s set-up, so a missing one fails here) finalises
every folder the tests read; each test copies what it damages. Also the release as a whole
(check_release), its files stored by content as the airlock's store keeps them.

    acro_outputs   {"mixed": folder, "low_threshold": folder}, made once per module
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure

from imaging_workbench.airlock.acro_checks import check_acro_folder
from imaging_workbench.airlock.checks import CheckPolicy, check_release
from imaging_workbench.deployment import DEFAULTS
from imaging_workbench.errors import WorkbenchError

ACRO_PYTHON = DEFAULTS["airlock"]["acro_python"]

MAKE_OUTPUTS = textwrap.dedent("""
    import sys
    import numpy as np
    import pandas as pd
    import acro

    root = sys.argv[1]
    rng = np.random.default_rng(7)
    n = 400
    df = pd.DataFrame({"site": rng.choice(["site-1", "site-2"], n), "sex": rng.choice(["F", "M"], n),
                       "grade": rng.choice(["g1", "g2"], n), "hu": rng.normal(40, 10, n)})
    rare = pd.concat([df, pd.DataFrame({"site": ["site-3"] * 3, "sex": ["F", "F", "M"],
                                        "grade": ["g1"] * 3, "hu": [30.0, 41.0, 52.0]})])

    session = acro.ACRO(suppress=False)
    session.crosstab(rare.site, rare.sex)            # output_0: site-3 holds 2 F and 1 M: fail
    session.crosstab(df.site, [df.sex, df.grade])    # output_1: two column levels, all cells large: pass
    session.enable_suppression()
    session.crosstab(rare.site, rare.sex)            # output_2: site-3's cells suppressed: review
    session.finalise(root + "/mixed", "json")

    # The researcher lowers ACRO's threshold in their sandbox: cells of 4 to 9 pass ACRO.
    low = acro.ACRO(suppress=False)
    low.config["safe_threshold"] = 3
    few = df.iloc[:30]
    low.crosstab(few.site, few.sex)                                  # output_0
    low.crosstab(few.site, few.sex, values=few.hu, aggfunc="mean")   # output_1: its counts are not in the file
    low.finalise(root + "/low_threshold", "json")
""")


@pytest.fixture(scope="module")
def acro_outputs(tmp_path_factory) -> dict[str, Path]:
    assert os.access(ACRO_PYTHON, os.X_OK), f"no ACRO environment at {ACRO_PYTHON}: run scripts/ensure_acro.sh"
    root = tmp_path_factory.mktemp("acro")
    done = subprocess.run([ACRO_PYTHON, "-c", MAKE_OUTPUTS, str(root)], capture_output=True, text=True,
                          timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"mixed": root / "mixed", "low_threshold": root / "low_threshold"}


@pytest.fixture
def copy_output(acro_outputs, tmp_path):
    def copy(name: str) -> Path:
        return Path(shutil.copytree(acro_outputs[name], tmp_path / name))
    return copy


def check(folder: Path, min_count: int = 10, **kwargs):
    return check_acro_folder(folder, "acro_out/", ACRO_PYTHON, min_count, **kwargs)


def table_of(folder: Path, uid: str) -> str:
    return json.loads((folder / "results.json").read_text())["results"][uid]["files"][0]["name"]


def test_acro_verdicts_become_findings_and_its_files_are_accounted_for(acro_outputs):
    folder = acro_outputs["mixed"]
    findings = check(folder)
    status = {f.file: f for f in findings if f.check == "acro-status"}
    assert {name: status[f"acro_out/{table_of(folder, uid)}"].severity for name, uid in
            [("fail", "output_0"), ("pass", "output_1"), ("suppressed", "output_2")]} == {
        "fail": "fail", "pass": "info", "suppressed": "review"}
    failed = status[f"acro_out/{table_of(folder, 'output_0')}"]
    assert "MinimumThresholdCheck: fail - 2 cells may need suppressing" in failed.message
    assert {(c["row"], c["column"]) for c in failed.where["cells"]} == {("site-3", "F"), ("site-3", "M")}
    # The airlock's own re-check agrees: site-3's 2 and 1; the suppressed copy holds blanks there.
    small = [(f.file, f.where["label"], f.where["value"]) for f in findings if f.check == "small-cell"]
    assert small == [(f"acro_out/{table_of(folder, 'output_0')}", "site-3", 2),
                     (f"acro_out/{table_of(folder, 'output_0')}", "site-3", 1)]
    named = {f.file for f in findings}
    assert named == {f"acro_out/{p.relative_to(folder)}" for p in folder.rglob("*") if p.is_file()}
    assert not [f for f in findings if f.check in ("acro-checksum", "acro-unlisted", "acro-threshold")]


def test_a_threshold_the_researcher_lowered_does_not_lower_ours(acro_outputs):
    folder = acro_outputs["low_threshold"]
    findings = check(folder)
    counts, means = (f"acro_out/{table_of(folder, uid)}" for uid in ("output_0", "output_1"))
    assert {f.severity for f in findings if f.check == "acro-status" and f.file in (counts, means)} == {"info"}
    small = [f for f in findings if f.check == "small-cell"]
    assert small and {f.file for f in small} == {counts}
    assert all(4 <= f.where["value"] < 10 and "minimum count 10" in f.message for f in small)
    [threshold] = [f for f in findings if f.check == "acro-threshold" and f.file == "acro_out/results.json"]
    assert "ACRO ran with threshold 3, set in the sandbox, not the dataset's minimum count 10" in threshold.message
    assert [f.severity for f in findings if f.check == "acro-threshold" and f.file == means] == ["review"]
    assert not [f for f in check(folder, min_count=3) if f.check in ("small-cell", "acro-threshold")]


def test_a_table_edited_after_acro_checked_it_fails(copy_output):
    folder = copy_output("mixed")
    name = table_of(folder, "output_0")
    path = folder / name
    path.write_text(path.read_text().replace("site-3,2,1", "site-3,20,10"))  # hides the small cells from ACRO's verdict
    [changed] = [f for f in check(folder) if f.check == "acro-checksum"]
    assert (changed.file, changed.severity) == (f"acro_out/{name}", "fail")
    assert f"checksums/{name}.txt" in changed.message


def test_files_slipped_into_acros_folder_fail(copy_output):
    folder = copy_output("mixed")
    (folder / "extra.csv").write_text("site,n\nsite-3,1\n")
    (folder / "checksums" / "notes.txt").write_text("patient 17 is the only one at site-3\n")
    (folder / "checksums" / "extra.csv.txt").write_text(hashlib.sha256(b"anything").hexdigest())
    unlisted = {f.file for f in check(folder) if f.check == "acro-unlisted" and f.severity == "fail"}
    assert unlisted == {"acro_out/extra.csv", "acro_out/checksums/notes.txt", "acro_out/checksums/extra.csv.txt"}


def test_results_json_naming_a_file_outside_the_folder_is_refused_unread(copy_output, tmp_path):
    folder = copy_output("mixed")
    (tmp_path / "secret.csv").write_text("site,n\nsite-3,1\n")
    results = json.loads((folder / "results.json").read_text())
    results["results"]["output_1"]["files"][0]["name"] = "../secret.csv"
    (folder / "results.json").write_text(json.dumps(results))
    findings = check(folder)
    assert {(f.check, f.severity) for f in findings} == {("acro-results", "fail")}
    assert {f.file for f in findings} == {f"acro_out/{p.relative_to(folder)}" for p in folder.rglob("*") if p.is_file()}
    [finding] = [f for f in findings if f.file == "acro_out/results.json"]
    assert "lists the file '../secret.csv', which is not a plain file name" in finding.message


def test_a_results_json_that_is_not_acros_fails(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"accuracy": 0.91}))
    [finding] = check(tmp_path)
    assert (finding.check, finding.severity) == ("acro-results", "fail")
    assert "written by ACRO None; the airlock checks with ACRO 1.0.2" in finding.message


def test_without_acros_environment_the_check_stops_with_what_to_run(acro_outputs, tmp_path):
    missing = str(tmp_path / "acro-venv" / "bin" / "python")
    with pytest.raises(WorkbenchError) as error:
        check_acro_folder(acro_outputs["mixed"], "", missing, 10)
    assert missing in error.value.message
    assert error.value.hint == "run scripts/ensure_acro.sh (make up and make test do)"


def test_a_python_without_acro_or_a_slow_acro_is_an_error_not_a_finding(acro_outputs):
    with pytest.raises(WorkbenchError, match="crashed .exit 1.: acro is not installed in this Python"):
        check_acro_folder(acro_outputs["mixed"], "", sys.executable, 10)
    with pytest.raises(WorkbenchError, match="did not finish in 0.01 s"):
        check_acro_folder(acro_outputs["mixed"], "", ACRO_PYTHON, 10, timeout=0.01)


def stored(tmp_path: Path, files: dict[str, Path]) -> dict[str, Path]:
    """`files` copied into a store that names them by content, as the airlock's does."""
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    out = {}
    for name, path in files.items():
        target = store / hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copyfile(path, target)
        out[name] = target
    return out


def test_a_release_is_checked_file_by_file_in_its_order(acro_outputs, tmp_path):
    folder = acro_outputs["mixed"]
    (tmp_path / "age.csv").write_text("age_band,patients\n40-49,12\n50-59,3\n")
    torch.save(torch.nn.Linear(3, 1).state_dict(), tmp_path / "model.pt")
    figure = Figure()
    figure.add_subplot().plot([1, 2])
    figure.savefig(tmp_path / "plot.png")
    notebook = {"cells": [{"outputs": [{"data": {"image/png": "iVBORw0KGgoAAAANSUhEUgAA"}}]}]}
    (tmp_path / "analysis.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "method.md").write_text("# Method\nCounts per age band.\n")
    files = {"tables/age.csv": tmp_path / "age.csv", "models/model.pt": tmp_path / "model.pt",
             **{f"acro_out/{p.relative_to(folder)}": p for p in sorted(folder.rglob("*")) if p.is_file()},
             "analysis.ipynb": tmp_path / "analysis.ipynb", "method.md": tmp_path / "method.md",
             "figures/plot.png": tmp_path / "plot.png"}
    policy = CheckPolicy(min_count=10, weights="review", acro_python=ACRO_PYTHON)
    findings = check_release(stored(tmp_path, files), {"tables/age.csv": ["patients"]}, policy)

    order = list(files)
    assert [order.index(f.file) for f in findings] == sorted(order.index(f.file) for f in findings)
    assert {f.file for f in findings} == set(files)  # silence is never a pass
    first = {}
    for f in findings:
        first.setdefault(f.file, (f.check, f.severity))
    assert first["tables/age.csv"] == ("small-cell", "fail")
    assert first["models/model.pt"] == ("weights", "review")
    assert first["analysis.ipynb"] == ("embedded-image", "fail")
    assert first["method.md"] == ("no-automatic-check", "review")
    assert first["figures/plot.png"] == ("image", "fail")
    assert first["acro_out/results.json"] == ("acro-summary", "info")

    refused = CheckPolicy(min_count=10, weights="no-weights", acro_python=ACRO_PYTHON)
    [weights] = check_release(stored(tmp_path, {"models/model.pt": tmp_path / "model.pt"}), {}, refused)
    assert (weights.check, weights.severity) == ("weights", "fail")
    assert "condition of the grant" in weights.message


def test_part_of_an_acro_folder_is_not_released_alone(acro_outputs, tmp_path):
    folder = acro_outputs["mixed"]
    files = {"acro_out/results.json": folder / "results.json",
             f"acro_out/{table_of(folder, 'output_1')}": folder / table_of(folder, "output_1")}
    policy = CheckPolicy(min_count=10, weights="review", acro_python=ACRO_PYTHON)
    findings = check_release(stored(tmp_path, files), {}, policy)
    assert [(f.file, f.severity) for f in findings] == [(name, "fail") for name in files]
    assert "release the whole folder ACRO wrote" in findings[0].message
    assert "not checked: acro_out/results.json cannot be used" in findings[1].message


def test_a_policy_with_an_unknown_weights_rule_is_refused():
    with pytest.raises(ValueError, match="CheckPolicy.weights must be one of review, refuse, no-weights, not 'ask'"):
        CheckPolicy(min_count=10, weights="ask", acro_python=ACRO_PYTHON)
