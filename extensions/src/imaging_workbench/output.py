"""Printing CLI results as aligned tables or JSON."""

import json
import sys
from datetime import datetime


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "" if value is None else value


def print_rows(rows: list[dict], columns: list[str], as_json: bool = False, file=None) -> None:
    """Print `rows` (dicts) as JSON or as a table of `columns`."""
    file = file or sys.stdout
    if as_json:
        json.dump(rows, file, indent=2, default=_plain)
        file.write("\n")
        return
    if not rows:
        print("(none)", file=file)
        return
    cells = [[str(_plain(row.get(c))) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip(), file=file)
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip(), file=file)
