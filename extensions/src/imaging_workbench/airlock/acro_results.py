"""ACRO's record of an output folder, as one JSON object on stdout.

    python acro_results.py FOLDER

Run by ACRO's own Python (scripts/ensure_acro.sh), never imported by the workbench: ACRO pins an
older pandas than the workbench's, so this file uses the standard library and acro only.

Loads FOLDER/results.json with ACRO's own loader and checks every file it lists against ACRO's
checksums/<file>.txt. Prints {"acro_version", "results_checksum_ok", "config", "outputs"}, each
output {uid, status, type, method, statbarn, summary, command, exception, comments, files, flagged}:
`files` [{name, checksum_ok, layout}] (layout: a table's header lines and label columns),
`flagged` the outcome cells that are not "ok". On bad input: {"error": ...} and exit status 2.
"""

import contextlib
import csv
import hashlib
import importlib.util
import json
import sys
import types
from pathlib import Path

# ACRO's package __init__ imports statsmodels and matplotlib for its analyses (several seconds
# per release); its loader, acro.record, needs pandas only. So `acro` is registered as a bare
# package and acro.record imported from it, ACRO's own code unchanged.
_spec = importlib.util.find_spec("acro")
if _spec is None:
    sys.exit("acro is not installed in this Python: run scripts/ensure_acro.sh")
_package = types.ModuleType("acro")
_package.__path__ = list(_spec.submodule_search_locations)
sys.modules["acro"] = _package

from acro.version import __version__ as ACRO_VERSION  # noqa: E402


class BadFolder(Exception):
    """The folder is not an output folder ACRO finalised, as this ACRO can read it."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _checksum_ok(folder: Path, name: str) -> bool:
    recorded = folder / "checksums" / f"{name}.txt"
    if not recorded.is_file() or recorded.is_symlink():
        return False
    return recorded.read_text(encoding="utf-8", errors="replace").strip() == _sha256(folder / name)


def _check_listed_files(folder: Path, raw: dict) -> None:
    """Refuse results.json when a file it lists is not a plain file of this folder."""
    results = raw.get("results")
    if not isinstance(results, dict):
        raise BadFolder("results.json has no \"results\" object: it is not ACRO's results file")
    for uid, output in results.items():
        files = output.get("files") if isinstance(output, dict) else None
        if not isinstance(files, list) or not files:
            raise BadFolder(f"output {uid!r} in results.json lists no files")
        for entry in files:
            name = entry.get("name") if isinstance(entry, dict) else None
            # A name with a folder in it would make ACRO's loader read (and us hash) a file
            # outside the release.
            if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
                raise BadFolder(f"output {uid!r} lists the file {name!r}, which is not a plain file name")
            path = folder / name
            if path.is_symlink() or not path.is_file():
                raise BadFolder(f"results.json lists {name}, which this release does not hold: "
                                "release the whole folder ACRO wrote (checkers can reject single files)")


def _layout(path: Path, outcome) -> dict | None:
    """A table's header lines and row-label columns: what the file has beyond ACRO's cells."""
    rows, columns = outcome.shape
    if not rows or not columns:
        return None
    lines, width = 0, None
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            for row in filter(None, csv.reader(f)):
                width = len(row) if width is None else width
                lines += 1
    except csv.Error:
        return None
    return {"header_rows": lines - rows, "label_columns": width - columns} if lines else None


def _flagged(outcome) -> list[dict]:
    return [{"row": str(row), "column": str(column), "checks": value.strip().rstrip(";").strip()}
            for column in outcome.columns for row, value in outcome[column].items()
            if isinstance(value, str) and value != "ok"]


def _config(folder: Path) -> dict | None:
    # config.json is written after ACRO's checksums, so nothing vouches for it: shown, not trusted.
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def describe(folder: Path) -> dict:
    """The JSON object this script prints for `folder`.

    Raises:
        BadFolder: no readable results.json, a listed file missing, or ACRO cannot load it.
    """
    try:
        raw = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadFolder(f"results.json cannot be read as JSON: {e}") from None
    if not isinstance(raw, dict) or raw.get("version") != ACRO_VERSION:
        version = raw.get("version") if isinstance(raw, dict) else None
        raise BadFolder(f"results.json was written by ACRO {version!r}; the airlock checks with ACRO "
                        f"{ACRO_VERSION}: run acro=={ACRO_VERSION} in the sandbox and finalise again")
    _check_listed_files(folder, raw)
    from acro.record import load_records  # pandas: imported only for a folder worth loading

    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only our JSON
            records = load_records(str(folder))
    except Exception as e:  # noqa: BLE001 - whatever ACRO's loader trips on, the folder is the cause
        raise BadFolder(f"ACRO {ACRO_VERSION} cannot load results.json: {type(e).__name__}: {e}") from None
    outputs = []
    for uid, record in records.results.items():
        names = [entry["name"] for entry in raw["results"][uid]["files"]]
        outcome = record.outcome
        outputs.append({
            "uid": uid, "status": record.status, "type": record.output_type,
            "method": record.properties.get("method") if isinstance(record.properties, dict) else None,
            "statbarn": record.fair.get("statbarn") if isinstance(record.fair, dict) else None,
            "summary": record.summary, "command": record.command, "exception": record.exception,
            "comments": record.comments,
            "files": [{"name": name, "checksum_ok": _checksum_ok(folder, name),
                       "layout": _layout(folder / name, outcome) if record.output_type == "table" else None}
                      for name in names],
            "flagged": _flagged(outcome),
        })
    return {"acro_version": ACRO_VERSION, "results_checksum_ok": _checksum_ok(folder, "results.json"),
            "config": _config(folder), "outputs": outputs}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(json.dumps({"error": "usage: acro_results.py FOLDER"}))
        return 2
    try:
        print(json.dumps(describe(Path(argv[0]))))
    except BadFolder as e:
        print(json.dumps({"error": str(e)}))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
