"""`Tools()` in a notebook: the approved AI tools, as the sandbox's read-only catalogue file lists them."""

import json
from pathlib import Path

from ..errors import WorkbenchError

SANDBOX_CATALOG = "/tools/catalog.json"  # where the tools folder is mounted in a sandbox
COLUMNS = ["id", "version", "kind", "modality", "body_part", "intended_use", "needs"]


class Tools:
    """The approved tools of this deployment.

    Args:
        catalog: the catalogue file (default: /tools/catalog.json, the tools folder in a sandbox);
            the tools' folders are beside it, `<id>/<version>/`.
    """

    def __init__(self, catalog: str | Path = SANDBOX_CATALOG):
        self.catalog = Path(catalog)

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

    def _repr_html_(self):
        return self.list()._repr_html_()
