"""`Tools()` in a notebook: the approved AI tools, as the sandbox's read-only catalogue file lists them."""

import json
import re
from pathlib import Path

from ..errors import WorkbenchError

SANDBOX_CATALOG = "/tools/catalog.json"  # where the tools folder is mounted in a sandbox
COLUMNS = ["id", "version", "kind", "modality", "body_part", "intended_use", "needs"]


def newest(versions) -> str:
    """The newest of `versions`: "1.10.0" after "1.9.0" (numeric parts compare as numbers)."""
    return max(versions, key=_version_key)


def _version_key(version: str) -> tuple:
    """"1.10.0" after "1.9.0": numeric parts compare as numbers, others as text."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.+-]", version))


class Tools:
    """The approved tools of this deployment.

    Args:
        catalog: the catalogue file (default: /tools/catalog.json, the tools folder in a sandbox);
            the tools' folders are beside it, `<id>/<version>/`.
        memory_limit: the memory a tool may need, in bytes or as "4G" (default: the sandbox's
            cgroup limit, read when a tool runs; none when there is no cgroup limit).
    """

    def __init__(self, catalog: str | Path = SANDBOX_CATALOG, memory_limit: int | str | None = None):
        self.catalog = Path(catalog)
        self.memory_limit = memory_limit

    def cards(self) -> list[dict]:
        """The approved tools' model cards, by id and version.

        Raises:
            WorkbenchError: the catalogue file is missing or unreadable.
        """
        try:
            content = json.loads(self.catalog.read_text())
        except FileNotFoundError:
            raise WorkbenchError(f"no tool catalogue at {self.catalog}",
                                 "no tool has been approved yet, or this sandbox has no tools folder: ask an "
                                 "operator") from None
        except ValueError as e:
            raise WorkbenchError(f"the tool catalogue {self.catalog} is not JSON ({e})", "ask an operator") from None
        return sorted(content.get("tools", []), key=lambda c: (c["id"], c["version"]))

    def list(self, as_frame: bool = True):
        """The approved tools, one row each: a pandas DataFrame, or a list of dicts (`as_frame=False`)."""
        rows = [{c: card.get(c) for c in COLUMNS} for card in self.cards()]
        if not as_frame:
            return rows
        import pandas as pd

        return pd.DataFrame(rows, columns=COLUMNS)

    def version_of(self, tool_id: str) -> str:
        """The newest approved version of `tool_id`.

        Raises:
            ToolRefused: no approved version (a draft, retired, or unknown id).
        """
        from .card import ToolRefused  # card and deployment import jsonschema: not on `import imaging_workbench`

        versions = [c["version"] for c in self.cards() if c["id"] == tool_id]
        if not versions:
            raise ToolRefused(f"tool {tool_id} has no approved version in {self.catalog}",
                              "see the approved tools with Tools().list(); a tool reviewer approves drafts")
        return newest(versions)

    def run(self, tool_id: str, series, version: str | None = None, device: str | None = None):
        """Run an approved tool on one series; returns a ToolResult (labels on the series' grid,
        segments, the tool's id, version and weights hash; `.save_seg()`, `.measurements()`).

        Args:
            tool_id: the tool, as Tools().list() shows it.
            series: a Volume, or what `load_series` accepts (a series folder, files, (session, uid)).
            version: default the newest approved one.
            device: "cpu" or "cuda" (default: the GPU when there is one).

        Raises:
            ToolRefused: not approved or retired, or a series, memory or GPU the tool does not fit
                (before it runs); each names the tool and what to do.
        """
        from ..deployment import parse_memory
        from .card import ID_PATTERN, VERSION_PATTERN, ToolRefused
        from .inference import run_tool
        from .run_checks import sandbox_memory_limit

        version = version or self.version_of(tool_id)
        folder = self.catalog.parent / tool_id / version  # the tools folder holds the catalogue and the tools
        # The patterns keep the path inside the tools folder (no "..", no "/").
        if not (re.match(ID_PATTERN, tool_id) and re.match(VERSION_PATTERN, version) and folder.is_dir()):
            raise ToolRefused(f"tool {tool_id} {version} is not in the tools folder {self.catalog.parent}",
                              "see the approved tools and their versions with Tools().list()")
        limit = sandbox_memory_limit() if self.memory_limit is None else parse_memory(self.memory_limit)
        return run_tool(folder, self.catalog, series, limit, device)

    def _repr_html_(self):
        return self.list()._repr_html_()
