"""Delivers material into the user's home when their server starts: a Jupyter server extension
enabled in the single-user image (images/singleuser/jupyter/jupyter_server_config.json).

The spawner names what to deliver in $WORKBENCH_MATERIAL, a JSON list of [source folder,
destination relative to the home]: the shipped examples (the image's /opt/workbench/examples into
~/examples), later a training session's material. A delivery that fails is logged and the server
starts anyway: material is a convenience, never a reason to keep a researcher from their work.
"""

import json
import os
from pathlib import Path

from .material import deliver

ENV = "WORKBENCH_MATERIAL"


def deliveries(value: str, home: Path) -> list[tuple[Path, Path]]:
    """(source, destination) pairs from $WORKBENCH_MATERIAL; a destination must stay inside `home`.

    Raises:
        ValueError: not a JSON list of pairs of strings, or a destination outside the home.
    """
    pairs = json.loads(value or "[]")
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str)
                                                                                        for x in p) for p in pairs):
        raise ValueError(f"${ENV} must be a JSON list of [source folder, destination in the home] pairs")
    out = []
    for source, dest in pairs:
        if Path(dest).is_absolute() or ".." in Path(dest).parts or not dest.strip("/."):
            raise ValueError(f"${ENV}: destination {dest!r} is not a folder inside the home")
        out.append((Path(source), home / dest))
    return out


def _jupyter_server_extension_points():
    return [{"module": "imaging_workbench.material_extension"}]


def _load_jupyter_server_extension(serverapp):
    try:
        pairs = deliveries(os.environ.get(ENV, ""), Path.home())
    except ValueError as e:
        serverapp.log.warning("No material delivered: %s", e)
        return
    for source, dest in pairs:
        try:
            done = deliver(source, dest)
        except OSError as e:
            serverapp.log.warning("Material from %s not delivered to %s: %s", source, dest, e)
            continue
        serverapp.log.info("Material %s -> %s: %d copied, %d updated, %d kept as changed (%d new beside them)",
                           source, dest, len(done.copied), len(done.updated), len(done.kept), len(done.beside))
