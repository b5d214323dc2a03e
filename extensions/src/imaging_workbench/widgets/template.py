"""The workbench's Voila template (voila's "lab" without CDN links): where it is and how to install it.

A regular `pip install` puts it in <prefix>/share/jupyter/voila/templates/workbench through the
package's data-files. An editable install does not copy data-files: run
`python -m imaging_workbench.widgets.template` once, or point JUPYTER_PATH at `jupyter_path()`.
"""

import shutil
import sys
from pathlib import Path

NAME = "workbench"
SHARE = Path(__file__).parent / "share"


def jupyter_path() -> Path:
    """A folder to add to JUPYTER_PATH so Voila finds the template without installing it."""
    return SHARE


def template_dir() -> Path:
    return SHARE / "voila" / "templates" / NAME


def ensure_voila_template(prefix: str | Path = sys.prefix) -> Path:
    """Copy the template into <prefix>/share/jupyter/voila/templates/workbench (idempotent)."""
    target = Path(prefix) / "share" / "jupyter" / "voila" / "templates" / NAME
    target.mkdir(parents=True, exist_ok=True)
    for f in template_dir().iterdir():
        if f.is_file():
            shutil.copyfile(f, target / f.name)
    return target


if __name__ == "__main__":
    print(ensure_voila_template(sys.argv[1] if len(sys.argv) > 1 else sys.prefix))
