"""Fixtures of the tools tests: real, tiny MONAI bundles on disk, and the people who add and review them.

- `make_bundle(name="seg", card=..., metadata=..., configs=...)`: a bundle folder under tmp_path
  (tests/tool_bundles.py writes it).
- `people`: a WorkbenchContext per actor over the same settings: `people("rita")`; rita and
  ravi are tool reviewers, adam is not.
"""

import pytest

from imaging_workbench.context import WorkbenchContext

from ...tool_bundles import write_bundle


@pytest.fixture
def make_bundle(tmp_path):
    return lambda name="seg", **changes: write_bundle(tmp_path / "bundles" / name, **changes)


@pytest.fixture
def people(settings):
    settings["roles"]["tool_reviewers"] = ["rita", "ravi"]

    def as_(actor: str) -> WorkbenchContext:
        return WorkbenchContext(settings, actor=actor)

    return as_
