"""Notebook side of the airlock: file a release request for files in ~/outbox.

    import imaging_workbench as workbench
    r = workbench.release(["tables/age.csv"], statement="Age bands of the lung cohort",
                          controls="counts below 10 suppressed", datasets=["lung-ct"],
                          count_columns={"tables/age.csv": ["n"]})
    r["state"], r["files"][0]["findings"]    # "submitted"; the automatic checks' findings

The portal copies the files from your home when it gets the request (it never reads your home
again), runs the automatic checks, and two output checkers review the files. Follow the request
on the portal's Releases page.
"""

from pathlib import Path

from ..portal_client import PortalError, call


class ReleaseError(PortalError):
    """The portal refused or failed the request: `status` (HTTP), `fields` (what was wrong)."""


def release(files: list[str], statement: str, controls: str, datasets: list[str],
            count_columns: dict[str, list[str]] | None = None, submit: bool = True, outbox: Path | None = None,
            url: str | None = None, token: str | None = None) -> dict:
    """File (and by default submit) a release request of `files`, named relative to ~/outbox.

    Args:
        statement: what the files are and how they were made.
        controls: the disclosure controls applied (e.g. "counts below 10 suppressed").
        datasets: the datasets the files were made from (you must hold access to each).
        count_columns: for CSV tables, file name -> the columns holding counts, which the airlock
            checks against the datasets' minimum count.

    Raises:
        ReleaseError: a file is not a plain file in the outbox (checked here to say so early; the
            portal checks again), or the portal refused the request.
    """
    outbox = Path(outbox) if outbox else Path.home() / "outbox"
    if isinstance(files, str):
        files = [files]
    for name in files:
        path = outbox / name
        if path.is_symlink() or not path.is_file():
            raise ReleaseError(0, f"{name} is not a plain file in {outbox}", "copy the file itself into the outbox")
    body = {"files": list(files), "statement": statement, "controls": controls, "datasets": list(datasets),
            "count_columns": count_columns or {}, "submit": submit}
    return call("POST", "api/releases", body, url, token, error=ReleaseError)
