"""CaseBrowser: approved datasets -> patients -> studies -> series, a filtered paged table, and a viewer.

Plain ipywidgets (they render the same in JupyterLab and Voila). The series rows of the datasets'
index files are copied once into one in-memory SQL table (dicom/index_query.py); each filter
change or page asks it for one page and a count, so 200,000 series never become 200,000 widgets'
rows, and opening a series loads it through the index (no folder scan).
"""

import html
import logging
from pathlib import Path

import ipywidgets as W
import pandas as pd

from ..dicom.index_query import SeriesCatalog, SeriesQuery
from ..errors import WorkbenchError
from .series_index import LocalIndex
from .viewer import CaseViewer

log = logging.getLogger(__name__)
ANY = "(any)"
ERROR = "color:#7f1d1d;background:#fee2e2;border:1px solid #fca5a5;padding:6px 8px;border-radius:3px;margin:4px 0"
STYLE = ("<style>.wb-series-table select, .wb-table-head {font-family: monospace; font-size: 12px}"
         ".wb-table-head {margin: 0; padding-left: 4px}</style>")
COLUMNS = ["dataset_id", "patient_id", "study_date", "modality", "body_part", "cancer_type", "description",
           "n_slices", "has_segmentation", "series_uid", "study_uid", "seg_uids"]
MAX_CHOICES = 2000  # a patient or study list longer than this waits for a narrower filter
FEW_VALUES = ("dataset_id", "modality", "body_part", "cancer_type")


class CaseBrowser(W.VBox):
    """Browse the series of the datasets under `root` and open one in a CaseViewer below.

    Args:
        root: folder of approved datasets, one sub-folder each (default /data).
        index_path: folder of private index files, for datasets without a usable mounted index
            (default ~/.cache/workbench/indexes).
        page_size: rows per page of the series table.
        source: an object with LocalIndex's methods (datasets, ensure_indexed, load, and catalog or
            series); built from root/index_path when not given.
        tools: a `Tools` whose approved tools a "Run tool" menu below the viewer offers (default:
            `Tools()` when the sandbox has a tool catalogue, /tools/catalog.json; False: no menu).
    """

    def __init__(self, root="/data", index_path=None, page_size: int = 20, cancer_types=None, source=None,
                 tools=None):
        super().__init__()
        self.add_class("wb-browser")
        self.source = source or LocalIndex(root, index_path, cancer_types)
        self.tools = _default_tools() if tools is None else (tools or None)
        self.tool_menu = None
        self.page_size, self.page = page_size, 0
        self.viewer = None
        self.status = W.HTML()
        self.filters = {name: W.Dropdown(description=label, options=[ANY], layout=W.Layout(width="210px"),
                                         style={"description_width": "80px"})
                        for name, label in [("dataset_id", "dataset"), ("patient_id", "patient"),
                                            ("study_uid", "study"), ("modality", "modality"),
                                            ("body_part", "body part"), ("cancer_type", "cancer type"),
                                            ("has_segmentation", "segmentation")]}
        self.search = W.Text(description="search", placeholder="words in the description", continuous_update=False,
                             layout=W.Layout(width="210px"), style={"description_width": "80px"})
        self.header = W.HTML()
        self.table = W.Select(options=[], rows=page_size, layout=W.Layout(width="100%"))
        self.table.add_class("wb-series-table")
        self.prev, self.next = W.Button(description="◀ previous"), W.Button(description="next ▶")
        self.page_label = W.Label()
        self.viewer_box = W.VBox()
        self.children = [W.HTML(STYLE), self.status, W.HBox(list(self.filters.values())[:4]),
                         W.HBox([*list(self.filters.values())[4:], self.search]), self.header, self.table,
                         W.HBox([self.prev, self.page_label, self.next]), self.viewer_box]
        self.index, self.total, self.n_patients = SeriesCatalog(), 0, 0
        self.refresh()
        for name, dd in self.filters.items():
            dd.observe(lambda ch, name=name: self._filter_changed(name), "value")
        self.search.observe(lambda ch: self._filter_changed("search"), "value")
        self.prev.on_click(lambda _: self._go(self.page - 1))
        self.next.on_click(lambda _: self._go(self.page + 1))
        self.table.observe(self._selected, "value")

    # --- data ------------------------------------------------------------------------------------

    def refresh(self, reindex: bool = False) -> None:
        """Find each dataset's index (indexing here only those without a usable one; all of them
        with `reindex`) and reload the series table."""
        datasets = self.source.datasets()
        ready, notes, problems = [], [], []
        for ds in datasets:
            self.status.value = f"opening the index of <b>{html.escape(ds)}</b>…"
            try:
                note = self.source.ensure_indexed(ds, refresh=reindex)
                ready.append(ds)
            except (WorkbenchError, ValueError, OSError) as e:
                problems.append(f"{ds}: {e}")
                continue
            if note:
                log.info(note)
                notes.append(note)
        self.index = self._catalog(ready)
        self.datasets = datasets
        self.total = self.index.query(limit=0).total
        self.n_patients = len(self.index.values("patient_id"))
        self.status.value = self._status_text(notes, problems)
        self._update_options()
        self._show()

    def _catalog(self, datasets) -> SeriesCatalog:
        if hasattr(self.source, "catalog"):
            return self.source.catalog(datasets)
        catalog = SeriesCatalog()  # a source that hands over rows
        catalog.add_rows([row for ds in datasets for row in self.source.series(ds)])
        return catalog

    def _status_text(self, notes, problems) -> str:
        if not self.datasets:
            where = html.escape(str(getattr(self.source, "root", "the data folder")))
            return (f"<div class='wb-empty' style='padding:6px 0'>No datasets are available under <code>{where}</code>. "
                    "Ask a data steward for access; approved datasets appear there at your next server start.</div>")
        text = f"{len(self.datasets)} dataset(s), {self.n_patients} patient(s), {self.total} series"
        if not self.total:
            text = f"<div class='wb-empty' style='padding:6px 0'>The dataset(s) {', '.join(map(html.escape, self.datasets))} hold no image series.</div>"
        for n in notes:
            text += f"<div class='wb-note' style='padding:2px 0;color:#555'>{html.escape(n)}</div>"
        for p in problems:
            text += f"<div class='wb-error' style='{ERROR}'>{html.escape(p)}</div>"
        return text

    def query(self, offset: int = 0, limit: int | None = None) -> SeriesQuery:
        """The current filters and search text as a SeriesQuery."""
        values = {name: dd.value for name, dd in self.filters.items() if dd.value != ANY}
        seg = values.pop("has_segmentation", None)
        return SeriesQuery(**values, has_segmentation=None if seg is None else seg == "yes", text=self.search.value.strip(),
                           offset=offset, limit=limit)

    def filtered(self) -> pd.DataFrame:
        """Every series row that passes the current filters (all pages; for notebooks and checks)."""
        rows = self.index.query(self.query()).rows
        return pd.DataFrame(rows, columns=COLUMNS) if rows else pd.DataFrame(columns=COLUMNS)

    # --- widgets ---------------------------------------------------------------------------------

    def _choices(self, name, known: dict) -> list[tuple[str, str]]:
        """(label, value) pairs; ipywidgets reads a list mixing strings and pairs differently.
        Patients and studies are offered within the dataset (and patient) chosen; other filters
        take their values from `known`."""
        if name == "has_segmentation":
            return [(ANY, ANY), ("yes", "yes"), ("no", "no")]
        scope = SeriesQuery(limit=None)
        if name in ("patient_id", "study_uid"):
            scope.dataset_id = _chosen(self.filters["dataset_id"])
        if name == "study_uid":
            scope.patient_id = _chosen(self.filters["patient_id"])
            studies = self.index.studies(scope, limit=MAX_CHOICES)
            if len(studies) > MAX_CHOICES:
                return [(ANY, ANY)]
            return [(ANY, ANY)] + [(f"{date or '—'} …{uid[-8:]}", uid) for uid, date in studies]
        values = known[name] if name in known else self.index.values(name, scope, limit=MAX_CHOICES)
        if len(values) > MAX_CHOICES:
            return [(ANY, ANY)]
        return [(ANY, ANY)] + [(str(v), v) for v in values]

    def _update_options(self, changed: str | None = None) -> None:
        """Narrow patients to the dataset, studies to the patient; keep choices still valid."""
        order = list(self.filters)
        start = order.index(changed) + 1 if changed in ("dataset_id", "patient_id") else 0
        # Filters of a few values each, read in one pass over the rows rather than one pass each.
        known = self.index.distinct([n for n in order[start:] if n in FEW_VALUES])
        for name in order[start:]:
            dd = self.filters[name]
            options = self._choices(name, known)
            values = [v for _, v in options]
            current = dd.value if dd.value in values else ANY
            with dd.hold_trait_notifications():
                dd.options = options
                dd.value = current

    def _filter_changed(self, name) -> None:
        if getattr(self, "_updating", False):
            return
        self._updating = True
        try:
            if name in ("dataset_id", "patient_id"):
                self._update_options(name)
            self.page = 0
            self._show()
        finally:
            self._updating = False

    def _go(self, page) -> None:
        self.page = page
        self._show()

    def _show(self) -> None:
        page = self.index.query(self.query(self.page * self.page_size, self.page_size))
        pages = max(1, -(-page.total // self.page_size))
        if not 0 <= self.page < pages:
            self.page = min(max(0, self.page), pages - 1)
            page = self.index.query(self.query(self.page * self.page_size, self.page_size))
        self.header.value = ("<pre class='wb-table-head'>" +
                             html.escape(_line("dataset", "patient", "date", "mod", "body", "cancer", "slices", "seg",
                                               "description")) + "</pre>")
        options = [(_line(r["dataset_id"], r["patient_id"], r["study_date"], r["modality"], r["body_part"],
                          r["cancer_type"],
                          r["n_slices"], "SEG" if r["has_segmentation"] else "", r["description"]),
                    (r["dataset_id"], r["series_uid"])) for r in page.rows]
        self._updating = True
        try:
            self.table.options = options
            self.table.value = None
        finally:
            self._updating = False
        self.page_label.value = f"page {self.page + 1} of {pages} · {page.total} series"
        self.prev.disabled, self.next.disabled = self.page == 0, self.page >= pages - 1

    def _selected(self, change) -> None:
        if getattr(self, "_updating", False) or change.new is None:
            return
        self.open_series(*change.new)

    def open_series(self, dataset_id: str, series_uid: str) -> CaseViewer | None:
        """Load a series (and its first SEG) into a CaseViewer below the table.

        A loader error is shown in place of the viewer and returns None.
        """
        row = self.index.get(dataset_id, series_uid)
        seg_uids = row["seg_uids"] if row else []
        self.viewer_box.children = [W.HTML(f"loading {html.escape(series_uid)}…")]
        try:
            volume, seg = self.source.load(dataset_id, series_uid, seg_uids)
        except (WorkbenchError, OSError) as e:
            self.viewer = None
            self.viewer_box.children = [W.HTML(f"<div class='wb-error' style='{ERROR}'><b>Cannot open this series.</b><br>"
                                               f"{html.escape(str(e))}</div>")]
            return None
        self.viewer = CaseViewer(volume, segmentation=seg)
        self.tool_menu = None
        if self.tools is not None:
            from .tool_menu import ToolMenu

            self.tool_menu = ToolMenu(self.viewer, self.tools)
        self.viewer_box.children = [self.viewer] + ([self.tool_menu] if self.tool_menu else [])
        return self.viewer


def _default_tools():
    """`Tools()` when this sandbox has a tool catalogue, else None (no menu)."""
    from ..tools.notebook import SANDBOX_CATALOG, Tools

    return Tools() if Path(SANDBOX_CATALOG).exists() else None


def _chosen(dropdown) -> str:
    return "" if dropdown.value == ANY else dropdown.value


def _line(*cells) -> str:
    widths = [16, 14, 10, 4, 10, 8, 6, 4, 30]
    return " ".join(str(c if c is not None else "")[:w].ljust(w) for c, w in zip(cells, widths))
