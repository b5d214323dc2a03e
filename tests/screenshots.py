"""Screenshots of the pages the browser tests see, kept as test artefacts.

They go to $WORKBENCH_TEST_ARTIFACTS/screenshots (default: test-artifacts/ at the repository
root), which outlives the run's temporary folders, so a reviewer can look at every page."""

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def artifacts_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")


def save_screenshot(page, name: str) -> Path:
    """Save the whole of `page` as <artifacts>/screenshots/<name>.png and return the path."""
    folder = artifacts_dir() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
