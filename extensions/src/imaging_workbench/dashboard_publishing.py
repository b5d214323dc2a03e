"""Publishing a dashboard, the same from the portal's API (a researcher's notebook, already run in
their sandbox) and from `workbench dashboard publish` (an operator's, run first in a throwaway
sandbox of its owner, dashboard_check.py): the notebook is recorded (catalog/dashboards.py) and
pinned, its bytes written read-only to <state_dir>/dashboards/NAME/ with their SHA-256 and the
sandbox image's id in the catalog, so later edits change nothing that is served."""

import hashlib
import json
import os
from pathlib import Path

from .catalog import dashboards

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024


def notebook_bytes(content) -> tuple[bytes, str]:
    """The notebook's bytes and their SHA-256; refused unless it is a notebook's JSON."""
    if not isinstance(content, str) or len(content) > MAX_NOTEBOOK_BYTES:
        raise dashboards.BadField("content", "send the notebook's text (at most 20 MB)", "read the .ipynb file as text")
    data = content.encode()
    try:
        json.loads(data)["cells"]
    except (ValueError, KeyError, TypeError):
        raise dashboards.BadField("content", "is not a notebook (JSON with cells)", "send the .ipynb file's text") from None
    return data, hashlib.sha256(data).hexdigest()


def sandbox_image_id(settings: dict) -> str:
    from .hub.network import docker_client

    return docker_client().images.get(settings["sandbox"]["image"]).id


def _pin(settings: dict, name: str, notebook: str, data: bytes) -> Path:
    """Write the notebook's bytes, read-only, into the dashboard's folder (whole or not at all)."""
    folder = Path(settings["state_dir"]) / dashboards.FOLDER / name
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{notebook}.partial"
    partial.write_bytes(data)
    os.chmod(partial, 0o444)
    os.replace(partial, folder / notebook)
    return folder / notebook


def publish(ctx, actor: str, owner: str, name, notebook, content, datasets, group) -> dict:
    """Record the dashboard (checked first, in the catalog's transaction), then pin the notebook;
    a pin that fails rolls the record back."""
    data, sha = notebook_bytes(content)
    with ctx.session() as s:
        made = dashboards.publish(s, actor, owner, name, notebook, sha, sandbox_image_id(ctx.settings), datasets,
                                  group)
        _pin(ctx.settings, name, notebook, data)
        return dashboards.as_dict(made)
