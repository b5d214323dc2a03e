"""BatchRunPanel: submit a batch run of one of your notebooks, follow its cases on a progress bar,
then see the summary table (a failed case with its error).

    from imaging_workbench.widgets.batch_panel import BatchRunPanel
    BatchRunPanel()                 # datasets from $WORKBENCH_DATASETS, the portal from the environment
"""

import html
import json
import os
import threading
import time

import ipywidgets as w

from ..batch import client as batch_client


class BatchRunPanel(w.VBox):
    """A form and a follower for batch runs; `client` is imaging_workbench.batch.client (or alike)."""

    def __init__(self, datasets: list[str] | None = None, client=batch_client, poll: float = 2.0):
        self.client, self.poll = client, poll
        if datasets is None:
            datasets = [d for d in os.environ.get("WORKBENCH_DATASETS", "").split(",") if d]
        style = {"description_width": "initial"}
        self.notebook = w.Text(description="notebook", placeholder="work/measure.ipynb (in your home)", style=style)
        self.dataset = w.Dropdown(options=datasets, description="dataset", style=style)
        self.parameters = w.Textarea(description="parameters", placeholder='{"label": "first look"}', style=style)
        self.per_case = w.Checkbox(value=True, description="one run per case (case_path)")
        self.submit_button = w.Button(description="Run", button_style="primary", icon="play")
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True)
        self.message = w.HTML()
        self.progress = w.IntProgress(min=0, max=1, value=0, description="cases", layout={"visibility": "hidden"})
        self.table = w.HTML()
        self.run = None
        self.submit_button.on_click(lambda _: self.submit())
        self.cancel_button.on_click(lambda _: self.cancel())
        super().__init__([self.notebook, self.dataset, self.parameters, self.per_case,
                          w.HBox([self.submit_button, self.cancel_button]), self.message, self.progress, self.table])

    def _error(self, e) -> None:
        fields = "".join(f"<li><b>{html.escape(k)}</b> {html.escape(str(v))}</li>" for k, v in e.fields.items())
        hint = f"<br><small>{html.escape(e.hint)}</small>" if e.hint else ""
        self.message.value = f"<span style='color:#b00'>{html.escape(e.message)}</span>{hint}<ul>{fields}</ul>"

    def submit(self):
        """Submit the form; a refusal is shown with the fields it names. Follows the run on a thread."""
        self.table.value = ""
        try:
            parameters = json.loads(self.parameters.value) if self.parameters.value.strip() else {}
        except ValueError as e:
            self.message.value = f"<span style='color:#b00'>parameters: not JSON ({html.escape(str(e))})</span>"
            return None
        try:
            self.run = self.client.run(self.notebook.value, self.dataset.value, parameters, self.per_case.value)
        except batch_client.BatchError as e:
            self._error(e)
            return None
        self.cancel_button.disabled = False
        self.progress.layout.visibility = "visible"
        self.refresh()
        threading.Thread(target=self._follow, daemon=True).start()
        return self.run

    def cancel(self):
        if self.run:
            self.run = self.client.cancel(self.run["id"])
            self.refresh(fetch=False)

    def refresh(self, fetch: bool = True) -> bool:
        """Show the run now; True once it has ended (then the summary table)."""
        if fetch:
            self.run = self.client.show(self.run["id"])
        run = self.run
        done = run.get("progress") or {}
        if done.get("cases"):
            self.progress.max, self.progress.value = done["cases"], done["done"]
            self.progress.bar_style = "danger" if done["failed"] else "info"
        self.message.value = (f"batch run <code>{run['id']}</code>: <b>{run['state']}</b>"
                              + (f" {html.escape(run['error'])}" if run.get("error") else ""))
        if run["state"] in batch_client.FINAL:
            self.cancel_button.disabled = True
            self._show_summary(run.get("summary") or {})
            return True
        return False

    def _show_summary(self, summary: dict) -> None:
        results = summary.get("results") or []
        if not results:
            return
        self.progress.max, self.progress.value = len(results), len(results)
        self.progress.bar_style = "danger" if summary["failed"] else "success"
        rows = "".join(f"<tr><td>{html.escape(str(r['case']))}</td><td>{r['status']}</td><td>{r['seconds']}</td>"
                       f"<td><code>{html.escape(r['output'])}</code></td><td>{html.escape(r['error'] or '')}</td></tr>"
                       for r in results)
        self.table.value = (f"<p>{summary['ok']} of {summary['cases']} ok, {summary['failed']} failed</p>"
                            "<table><tr><th>case</th><th>status</th><th>seconds</th><th>output</th><th>error</th></tr>"
                            f"{rows}</table>")

    def _follow(self):
        while True:
            try:
                if self.refresh():
                    return
            except batch_client.BatchError as e:
                self._error(e)
            time.sleep(self.poll)
