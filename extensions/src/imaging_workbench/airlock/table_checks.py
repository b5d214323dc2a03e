"""Cell-count checks of a CSV or TSV table: no count below the dataset's minimum count.

A plain table is checked on the columns its author declares as counts (`check_counts`); a
frequency table ACRO wrote is checked on every cell, its layout given by ACRO's record
(`check_count_grid`). Both stream the file, so a large table costs time, not memory.

A blank cell, `NaN`, `NA` or `*` is a suppressed cell and passes. A zero is shown for review:
it can disclose that a group is absent (ACRO's `zeros_are_disclosive`).
"""

import csv
from collections.abc import Iterator
from pathlib import Path

from ..federation.protocol.disclosure import suppress_below
from .findings import Finding

SUPPRESSED = {"", "nan", "na", "*"}
# Past this many cell findings in one file, one more finding counts the rest: a checker reads
# the first ones, the author learns the table needs reworking as a whole.
MAX_CELL_FINDINGS = 50


class _Unreadable(Exception):
    def __init__(self, line: int, problem: str):
        super().__init__(problem)
        self.line, self.problem = line, problem


def _lines(f) -> Iterator[str]:
    """The lines of binary file `f` as text, each decoded alone so an error names its line."""
    for number, raw in enumerate(f, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as e:
            raise _Unreadable(number, f"is not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1})") from None


def _rows(path: Path, name: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank row; the header's width is every row's width.

    Raises:
        _Unreadable: not UTF-8, not CSV, empty, or a row of another width.
    """
    delimiter = "\t" if name.lower().endswith(".tsv") else ","
    width = None
    with open(path, "rb") as f:
        reader = csv.reader(_lines(f), delimiter=delimiter, strict=True)
        try:
            for row in reader:
                if not row:
                    continue
                if width is None:
                    width = len(row)
                elif len(row) != width:
                    raise _Unreadable(reader.line_num, f"has {len(row)} field(s) where the header has {width}")
                yield reader.line_num, row
        except csv.Error as e:
            raise _Unreadable(reader.line_num, f"is not valid CSV ({e})") from None
    if width is None:
        raise _Unreadable(1, "is empty: a table needs a header line")


def _count(text: str) -> int | None:
    """`text` as a whole number (`12`, `12.0`), or None."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


class _Cells:
    """The cell findings of one file, at most MAX_CELL_FINDINGS, then a count of the rest."""

    def __init__(self, name: str, min_count: int):
        if not isinstance(min_count, int) or isinstance(min_count, bool) or min_count < 1:
            raise ValueError(f"min_count must be a whole number of at least 1, not {min_count!r}")
        self.name, self.min_count = name, min_count
        self.findings: list[Finding] = []
        self.more = {"fail": 0, "review": 0}

    def check(self, value: str, where: dict, place: str) -> None:
        finding = self._finding(value.strip(), where, place)
        if finding is None:
            return
        if len(self.findings) < MAX_CELL_FINDINGS:
            self.findings.append(finding)
        else:
            self.more[finding.severity] += 1

    def _finding(self, text: str, where: dict, place: str) -> Finding | None:
        if text.lower() in SUPPRESSED:
            return None
        n = _count(text)
        if n is None or n < 0:
            return Finding(self.name, "count-value", "fail",
                           f"{place}: {text!r} is not a count (a whole number of at least 0); "
                           "a count column holds counts, or a blank for a suppressed cell", where)
        if n == 0:
            return Finding(self.name, "zero-cell", "review",
                           f"{place}: 0 can disclose that a group is absent; checkers judge whether "
                           "the zero is structural (impossible by design) or must be suppressed", where)
        if suppress_below(n, self.min_count) is None:
            return Finding(self.name, "small-cell", "fail",
                           f"{place}: {n} is a small cell, below the minimum count {self.min_count}; "
                           "suppress it (leave it blank) or combine groups until every count is at least "
                           f"{self.min_count}", {**where, "value": n, "min_count": self.min_count})
        return None

    def result(self) -> list[Finding]:
        rest = [Finding(self.name, "small-cell" if severity == "fail" else "zero-cell", severity,
                        f"and {count} more {'small' if severity == 'fail' else 'zero'} cells not listed")
                for severity, count in self.more.items() if count]
        return self.findings + rest


def _unreadable(name: str, e: _Unreadable) -> Finding:
    return Finding(name, "table-format", "fail",
                   f"line {e.line} {e.problem}; save the table as UTF-8 CSV with one header line and "
                   "the same number of fields on every line", {"line": e.line})


def check_counts(path: Path, name: str, count_columns: list[str], min_count: int) -> list[Finding]:
    """The findings of a plain CSV/TSV table whose author declares `count_columns` as counts.

    Every cell of those columns must be a whole number, at least `min_count` when not 0, or
    suppressed. A row is named by its 1-based data row number and its first column's label.

    Args:
        path: the table (its copy in the airlock's store).
        name: the file's name in the release, used in the findings.
        count_columns: header names of the columns that hold counts; none means checkers judge.
        min_count: the dataset's minimum count.

    Raises:
        ValueError: `min_count` is not a whole number of at least 1.
    """
    cells = _Cells(name, min_count)
    declared = [c.strip() for c in count_columns]
    try:
        rows = _rows(Path(path), name)
        _, header = next(rows)
        header = [h.strip() for h in header]
        missing = [c for c in declared if c not in header]
        if missing:
            return [Finding(name, "count-columns", "fail",
                            f"declared count column(s) {', '.join(map(repr, missing))} not in the table; "
                            f"its columns are {', '.join(map(repr, header))}", {"missing": missing})]
        columns = [(i, h) for i, h in enumerate(header) if h in declared]
        for row_number, (line, row) in enumerate(rows, start=1):
            for i, column in columns:
                where = {"row": row_number, "label": row[0], "column": column, "line": line}
                cells.check(row[i], where, f"row {row_number} ({header[0]} {row[0]!r}), column {column!r}")
    except _Unreadable as e:
        return [_unreadable(name, e)]
    if not declared:
        return [Finding(name, "no-count-columns", "review",
                        "no count columns declared: no cell was checked automatically, so checkers judge "
                        "every cell of the table by eye (or the author declares the counts and files again)")]
    return cells.result()


def check_count_grid(path: Path, name: str, header_rows: int, label_columns: int,
                     min_count: int) -> list[Finding]:
    """The findings of a frequency table with every value cell a count (as ACRO writes them).

    The first `header_rows` lines label the columns (several for a crosstab over several
    variables), the first `label_columns` fields of each row label the row; every other cell is a
    count, checked as in `check_counts`.

    Raises:
        ValueError: `min_count` is not a whole number of at least 1.
    """
    cells = _Cells(name, min_count)
    column_labels: list[list[str]] = []
    try:
        for row_number, (line, row) in enumerate(_rows(Path(path), name), start=1 - header_rows):
            if row_number <= 0:
                column_labels.append(row[label_columns:])
                continue
            label = " / ".join(row[:label_columns])
            for j, value in enumerate(row[label_columns:]):
                column = " / ".join(labels[j] for labels in column_labels if labels[j])
                where = {"row": row_number, "label": label, "column": column, "line": line}
                cells.check(value, where, f"row {row_number} ({label!r}), column {column!r}")
    except _Unreadable as e:
        return [_unreadable(name, e)]
    return cells.result()
