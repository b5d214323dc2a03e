"""Notebook side of published dashboards (portal/dashboard_pages.py).

    import imaging_workbench as workbench
    workbench.dashboards.publish("~/examples/clinician/case_review.ipynb", name="liver-review",
                                 datasets=["liver-ct"])

The notebook runs here first, top to bottom, as its dashboard will (a failing cell refuses the
publication, naming the cell). The portal pins the notebook as sent, with the image's id; each
dataset's steward then decides on showing it to the group. Follow it on the portal's Dashboards page.
"""

from pathlib import Path

from .hub.roles import CLINICIAN
from .portal_client import PortalError, call


class DashboardError(PortalError):
    """The notebook failed, or the portal refused the publication: `status` (HTTP; 0: not sent), `fields`."""


def first_failing_cell(path: Path, timeout: float = 600) -> str | None:
    """Run the notebook (in its own folder); None when every cell ran, else which cell failed and how."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except CellExecutionError:
        for number, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                return f"code cell {number} ({cell.source.splitlines()[0][:60] if cell.source else ''!r}) failed: " \
                       f"{errors[0].get('ename')}: {errors[0].get('evalue')}"
        return "a cell failed"
    return None


def publish(notebook: str | Path, name: str, datasets: list[str], group: str = CLINICIAN.group,
            execute: bool = True, url: str | None = None, token: str | None = None) -> dict:
    """Publish `notebook` as dashboard `name` for the hub group `group`, showing `datasets`.

    Raises:
        DashboardError: the file is not there, a cell failed, or the portal refused (a field named).
    """
    path = Path(notebook).expanduser()
    if path.is_symlink() or not path.is_file() or path.suffix != ".ipynb":
        raise DashboardError(0, f"{notebook} is not a notebook file", "give the path of an .ipynb file")
    if execute:
        failed = first_failing_cell(path)
        if failed:
            raise DashboardError(0, f"{path.name}: {failed}", "fix the notebook: a dashboard runs it top to bottom")
    body = {"name": name, "notebook": path.name, "content": path.read_text(), "datasets": list(datasets),
            "group": group}
    return call("POST", "api/dashboards", body, url, token, error=DashboardError)


if __name__ == "__main__":  # dashboard_check.py runs an operator's notebook so, in a throwaway sandbox
    import sys

    failed = first_failing_cell(Path(sys.argv[1]))
    print(failed or "every cell ran")
    sys.exit(1 if failed else 0)
