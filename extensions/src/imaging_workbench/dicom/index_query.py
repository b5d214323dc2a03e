"""One query over the series of many datasets: filters, free text, paging and a total, all in SQL.

`SeriesCatalog` copies the series rows of each dataset's index file into one in-memory SQLite
database (ATTACH, INSERT ... SELECT, DETACH: SQLite attaches at most 10 files at once, and one
table answers a filter over 30 datasets in one query instead of 30 merged ones). Every reader
of the index asks it the same way: the case browser, `workbench series list` and a federation
site. Filters are columns with indexes; has_segmentation is a column, not a test over JSON.
"""

import json
import sqlite3
import string
from dataclasses import dataclass
from pathlib import Path

from .index import IMAGE_ONLY

#: Columns of a series row, as every reader gets them (dicts; lists decoded from JSON).
COLUMNS = ("dataset_id", "site", "cancer_type", "patient_id", "study_uid", "study_date", "series_uid", "modality",
           "body_part", "description", "n_instances", "n_slices", "rows", "cols", "has_segmentation", "seg_uids",
           "spacing", "transfer_syntaxes", "patient_sex", "patient_age", "manufacturer", "referenced_series")
_JSON = ("seg_uids", "spacing", "transfer_syntaxes")
_FROM_FILE = [c for c in COLUMNS if c not in ("site", "cancer_type", "has_segmentation")]
ORDER = "dataset_id, patient_id, study_date, series_uid"
_TABLE = """
CREATE TABLE {name} (
    dataset_id TEXT, site TEXT COLLATE NOCASE, cancer_type TEXT COLLATE NOCASE, patient_id TEXT, study_uid TEXT,
    study_date TEXT, series_uid TEXT, modality TEXT COLLATE NOCASE, body_part TEXT COLLATE NOCASE, description TEXT,
    n_instances INTEGER, n_slices INTEGER, rows INTEGER, cols INTEGER, has_segmentation INTEGER, seg_uids TEXT,
    spacing TEXT, transfer_syntaxes TEXT, patient_sex TEXT, patient_age TEXT, manufacturer TEXT,
    referenced_series TEXT, image INTEGER, description_id INTEGER)
"""
# Rows are kept in list order, so a row's rowid is its place in the order and each filter's index
# is small: (image, value) entries, which SQLite keeps in rowid order. A
# filter's total is then a count over one index range and its page a walk of it in order, neither
# reading the table until the page's rows. Free text is matched against the distinct descriptions
# (a few thousand protocol names where there are 200,000 series), then by description id.
_INDEXES = {  # filter -> its index, made at the first query that uses it (each ~0.2 s per 100,000 rows)
    "": "series_image ON series (image)", "modality": "series_modality ON series (image, modality)",
    "body_part": "series_body_part ON series (image, body_part)", "site": "series_site ON series (image, site)",
    "dataset_id": "series_dataset ON series (image, dataset_id)",
    "has_segmentation": "series_seg ON series (image, has_segmentation)",
    "text": "series_text ON series (image, description_id)", "series_uid": "series_uid ON series (series_uid)"}
_NOCASE = ("site", "cancer_type", "modality", "body_part")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_IMAGE = f"modality NOT IN ({', '.join(repr(m) for m in IMAGE_ONLY)})"


@dataclass
class SeriesQuery:
    """What to list. Empty strings and None mean "any". Text filters are case-insensitive;
    `text` matches anywhere in the description. Non-image series (SEG, SR, RTSTRUCT, ...) are
    left out unless `modality` names one."""

    dataset_id: str = ""
    site: str = ""
    modality: str = ""
    body_part: str = ""
    cancer_type: str = ""
    patient_id: str = ""
    study_uid: str = ""
    has_segmentation: bool | None = None
    text: str = ""
    offset: int = 0
    limit: int | None = 100

    def where(self) -> tuple[str, list]:
        """The SQL condition and its parameters."""
        terms, params = ["image = ?"], [int(not self.modality or self.modality.upper() not in IMAGE_ONLY)]
        for name in ("dataset_id", "site", "modality", "body_part", "cancer_type", "patient_id", "study_uid"):
            value = getattr(self, name)
            if value:
                terms.append(f"{name} = ?")
                params.append(value)
        if self.has_segmentation is not None:
            terms.append("has_segmentation = ?")
            params.append(int(self.has_segmentation))
        if self.text:
            terms.append("description_id IN (SELECT id FROM descriptions WHERE text LIKE ? ESCAPE '\\')")
            escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        return " AND ".join(terms), params


@dataclass
class SeriesPage:
    """One page of a query: its rows and how many rows match in all."""

    rows: list[dict]
    total: int


class SeriesCatalog:
    """The series of many datasets in one in-memory table; add datasets, then query."""

    def __init__(self):
        self.db = sqlite3.connect(":memory:", uri=True, check_same_thread=False)
        self.db.executescript(_TABLE.format(name="series"))
        self.db.execute("CREATE TABLE descriptions (id INTEGER PRIMARY KEY, text TEXT UNIQUE)")
        self.datasets: list[str] = []
        self._in_order = True  # rows so far were added in list order (datasets in id order)
        self._pending = False  # rows added since the last query: order and indexes to bring up to date

    def add_index_file(self, path: str | Path, dataset_id: str, site: str = "", cancer_type: str = "") -> int:
        """Copy dataset `dataset_id`'s series rows from its index file (opened read-only); returns how many.
        Adding datasets in id order spares a copy of every row at the first query."""
        uri = f"file:{Path(path).absolute()}?mode=ro&immutable=1"
        self.db.execute("ATTACH DATABASE ? AS source", (uri,))
        try:
            with self.db:
                self.db.execute("INSERT OR IGNORE INTO descriptions (text) SELECT DISTINCT description "
                                "FROM source.dicom_series WHERE dataset_id = ?", (dataset_id,))
                cur = self.db.execute(
                    f"INSERT INTO series ({', '.join(_FROM_FILE)}, site, cancer_type, has_segmentation, image, "
                    f"description_id) SELECT {', '.join('s.' + c for c in _FROM_FILE)}, ?, ?, "
                    f"s.seg_uids NOT IN ('[]', '', 'null'), s.{_IMAGE}, d.id FROM source.dicom_series s "
                    f"LEFT JOIN descriptions d ON d.text = s.description WHERE s.dataset_id = ? ORDER BY s.{ORDER}",
                    (site, cancer_type, dataset_id))
        finally:
            self.db.execute("DETACH DATABASE source")
        self._added([dataset_id])
        return cur.rowcount

    def add_rows(self, rows: list[dict]) -> None:
        """Add series rows given as dicts (COLUMNS; missing ones empty), e.g. from another source."""
        values = [[json.dumps(r.get(c) or []) if c in _JSON else _plain(r.get(c)) for c in COLUMNS] for r in rows]
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO descriptions (text) VALUES (?)",
                                [(r.get("description") or "",) for r in rows])
            self.db.executemany(f"INSERT INTO series ({', '.join(COLUMNS)}, image, description_id) VALUES "
                                f"({', '.join('?' * len(COLUMNS))}, NULL, (SELECT id FROM descriptions WHERE text = ?))",
                                [v + [r.get("description") or ""] for v, r in zip(values, rows)])
            self.db.execute(f"UPDATE series SET image = {_IMAGE} WHERE image IS NULL")
        self._added(sorted({r["dataset_id"] for r in rows}))
        self._in_order = False

    def _added(self, dataset_ids: list[str]) -> None:
        if self.datasets and dataset_ids and dataset_ids[0] <= self.datasets[-1]:
            self._in_order = False
        self.datasets += dataset_ids
        self._pending = True

    def _execute(self, sql: str, params=(), q: SeriesQuery | None = None, index: str = ""):
        """Run `sql` once the rows are in order and the indexes `q`'s filters (or `index`) use exist."""
        if self._pending:
            self._order()
        used = {index} | ({k for k in _INDEXES if k and getattr(q, k, None) not in (None, "")} if q else set())
        for key in sorted(used):
            self.db.execute(f"CREATE INDEX IF NOT EXISTS {_INDEXES[key]}")
        return self.db.execute(sql, params)

    def _order(self) -> None:
        """Put the rows in list order (rowid = place in the order): copy them when they were added
        out of order."""
        if not self._in_order:
            with self.db:
                self.db.execute(_TABLE.format(name="ordered"))
                self.db.execute(f"INSERT INTO ordered SELECT * FROM series ORDER BY {ORDER}")
                self.db.execute("DROP TABLE series")
                self.db.execute("ALTER TABLE ordered RENAME TO series")
            self._in_order = True
        self._pending = False

    def query(self, q: SeriesQuery | None = None, **filters) -> SeriesPage:
        """The page of rows `q` (or SeriesQuery(**filters)) asks for, ordered by dataset, patient,
        study date and series, with the total count of matching rows."""
        q = q or SeriesQuery(**filters)
        where, params = q.where()
        total = self._execute(f"SELECT COUNT(*) FROM series WHERE {where}", params, q).fetchone()[0]
        limit = -1 if q.limit is None else int(q.limit)
        # The page's rowids first, from the index alone; then only those rows from the table.
        cur = self._execute(f"SELECT {', '.join(COLUMNS)} FROM series WHERE rowid IN (SELECT rowid FROM series "
                            f"WHERE {where} ORDER BY rowid LIMIT {limit} OFFSET {int(q.offset)}) ORDER BY rowid",
                            params, q)
        return SeriesPage([_decode(r) for r in cur], total)

    def values(self, column: str, q: SeriesQuery | None = None, limit: int | None = None) -> list:
        """The distinct non-empty values of `column` among the rows `q` matches (all rows by
        default), in order; with `limit`, at most limit + 1 of them (more than `limit` means "too
        many to list", found without reading every row)."""
        _check_columns([column])
        where, params = (q or SeriesQuery()).where()
        distinct = f"SELECT DISTINCT {column} FROM series WHERE {where} AND {column} != ''"
        if limit is not None:  # ordered afterwards, in the column's own collation
            distinct = f"SELECT {column} FROM ({distinct} LIMIT {int(limit) + 1})"
        return [r[0] for r in self._execute(f"{distinct} ORDER BY {column}", params)]

    def distinct(self, columns: list[str], q: SeriesQuery | None = None) -> dict[str, list]:
        """`values` of each of `columns`, from one pass over the rows `q` matches: for columns of a
        few values each (modality, body part, ...), whose combinations stay few."""
        _check_columns(columns)
        where, params = (q or SeriesQuery()).where()
        found = {column: {} for column in columns}  # folded value -> the first one met, as DISTINCT keeps
        for row in self._execute(f"SELECT DISTINCT {', '.join(columns)} FROM series WHERE {where}", params):
            for column, value in zip(columns, row):
                if value not in ("", None):
                    found[column].setdefault(_folded(column, value), value)
        return {column: [values[key] for key in sorted(values)] for column, values in found.items()}

    def studies(self, q: SeriesQuery, limit: int | None = None) -> list[tuple[str, str]]:
        """(study_uid, study_date) of the studies among the rows `q` matches, by date; with `limit`,
        at most limit + 1 of them."""
        where, params = q.where()
        distinct = f"SELECT DISTINCT study_uid, study_date FROM series WHERE {where}"
        if limit is not None:
            distinct = f"SELECT * FROM ({distinct} LIMIT {int(limit) + 1})"
        return self._execute(f"{distinct} ORDER BY study_date, study_uid", params, q).fetchall()

    def get(self, dataset_id: str, series_uid: str) -> dict | None:
        """One series row, or None."""
        row = self._execute(f"SELECT {', '.join(COLUMNS)} FROM series WHERE series_uid = ? AND dataset_id = ?",
                            (series_uid, dataset_id), index="series_uid").fetchone()
        return _decode(row) if row else None


def _folded(column: str, value):
    """`value` as the column's collation compares it: COLLATE NOCASE folds ASCII letters only."""
    return value.translate(_ASCII_LOWER) if column in _NOCASE else value


def _check_columns(columns) -> None:
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown series column {unknown[0]!r}; one of {', '.join(COLUMNS)}")


def _plain(value):
    return int(value) if isinstance(value, bool) else ("" if value is None else value)


def _decode(row) -> dict:
    out = dict(zip(COLUMNS, row))
    for c in _JSON:
        out[c] = json.loads(out[c]) if out[c] else []
    out["has_segmentation"] = bool(out["has_segmentation"])
    return out

