"""FederatedJobPanel: pick datasets and an approved algorithm, fill a form generated from its
parameter schema, see what the job costs against your remaining privacy budget, submit, watch
each site's progress, then see the result table and plot.

    from imaging_workbench.federation.panel import FederatedJobPanel
    FederatedJobPanel()            # uses Federation() from the environment
"""

import threading
import time

import ipywidgets as w

from .client import FINAL, Federation, FederationError


def param_widget(name: str, spec: dict) -> w.Widget:
    """One form field for a parameter schema entry (an algorithm's `params`)."""
    default = spec.get("default")
    style = {"description_width": "initial"}
    if "enum" in spec:
        return w.Dropdown(options=spec["enum"], value=default, description=name, style=style)
    if spec["type"] == "integer":
        return w.BoundedIntText(value=default if default is not None else spec.get("minimum", 0),
                                min=spec.get("minimum", -2**31), max=spec.get("maximum", 2**31 - 1),
                                description=name, style=style)
    if spec["type"] == "number":
        return w.FloatText(value=default if default is not None else 0.0, description=name, style=style)
    if spec["type"] == "array":
        return w.Text(value=", ".join(str(v) for v in default or []), description=name, style=style,
                      placeholder="numbers, comma-separated")
    return w.Text(value=default or "", description=name, style=style)


def widget_value(spec: dict, widget: w.Widget):
    if spec["type"] == "array":
        text = widget.value.strip()
        try:
            return [float(v) if "." in v or "e" in v.lower() else int(v) for v in text.replace(";", ",").split(",")
                    if v.strip()]
        except ValueError:
            return text  # the service names the field and what is wrong
    return widget.value


class FederatedJobPanel(w.VBox):
    """A small job console for one user; `fed` defaults to Federation() from the environment."""

    def __init__(self, fed: Federation | None = None, poll: float = 1.0):
        self.fed = fed or Federation()
        self.poll = poll
        self.algorithms = {a["id"]: a for a in self.fed.algorithms()}
        datasets = self.fed.datasets()
        self.datasets = w.SelectMultiple(options=[(f"{d['id']} ({d['site']}, {d['modality']})", d["id"])
                                                  for d in datasets], description="datasets", rows=6)
        self.algorithm = w.Dropdown(options=sorted(self.algorithms), description="algorithm")
        self.about = w.HTML()
        self.form = w.VBox()
        self.fields: dict[str, w.Widget] = {}
        self.cost = w.HTML()
        self.budget = self._budget_rows()
        self.submit_button = w.Button(description="Submit", button_style="primary", icon="play")
        self.message = w.HTML()
        self.progress = w.VBox()
        self.output = w.Output()
        self.job = None
        self.algorithm.observe(lambda _: self._build_form(), names="value")
        self.datasets.observe(lambda _: self._show_cost(), names="value")
        self.submit_button.on_click(lambda _: self.submit())
        self._build_form()
        super().__init__([w.HBox([self.datasets, w.VBox([self.algorithm, self.about])]), self.form,
                          self.cost, self.submit_button, self.message, self.progress, self.output])

    def _build_form(self):
        algorithm = self.algorithms[self.algorithm.value]
        self.about.value = (f"<small><b>{algorithm['title']}</b> v{algorithm['version']}: {algorithm['description']}"
                            f"<br><i>Leaves each site:</i> {algorithm['leaves_site']}</small>")
        self.fields = {name: param_widget(name, spec) for name, spec in algorithm["params"].items()}
        for name, widget in self.fields.items():
            widget.tooltip = algorithm["params"][name].get("description", "")
        self.form.children = list(self.fields.values())
        if "epsilon" in self.fields:
            self.fields["epsilon"].observe(lambda _: self._show_cost(), names="value")
        self._show_cost()

    def _budget_rows(self) -> list[dict]:
        try:
            return self.fed.budget().to_dict("records")
        except FederationError:
            return []  # the cost line then says no site has reported yet

    def _show_cost(self):
        """The job's epsilon against what each chosen dataset has left at its site (as last reported)."""
        if "epsilon" not in self.fields:
            self.cost.value = ""
            return
        epsilon = self.fields["epsilon"].value
        left = {r["dataset_id"]: r for r in self.budget}
        parts = []
        for dataset in self.datasets.value:
            row = left.get(dataset)
            if row is None:
                parts.append(f"{dataset}: not reported yet")
                continue
            remaining = min(row["remaining"], row["dataset_remaining"])
            style = " style='color:#b00'" if epsilon > remaining or epsilon > row["epsilon_per_job"] else ""
            parts.append(f"<span{style}>{dataset} at {row['site']}: {remaining:g} left "
                         f"(at most {row['epsilon_per_job']:g} per job)</span>")
        self.cost.value = (f"<small><b>Privacy cost:</b> &epsilon; = {epsilon:g} at each site, for each dataset"
                           + (f". Remaining: {'; '.join(parts)}" if parts else "") + "</small>")

    def params(self) -> dict:
        specs = self.algorithms[self.algorithm.value]["params"]
        return {name: widget_value(specs[name], widget) for name, widget in self.fields.items()
                if not (specs[name]["type"] == "string" and widget.value == "" and not specs[name].get("required"))}

    def submit(self):
        """Submit the form; errors are shown with the fields they name."""
        self.output.clear_output()
        try:
            self.job = self.fed.submit(self.algorithm.value, list(self.datasets.value), **self.params())
        except FederationError as e:
            fields = "".join(f"<li><b>{k}</b> {v}</li>" for k, v in e.fields.items())
            self.message.value = f"<span style='color:#b00'>{e.message}</span><ul>{fields}</ul>"
            return None
        self.message.value = f"job <code>{self.job.id}</code> submitted"
        self.progress.children = [w.FloatProgress(min=0, max=1, description=site) for site in self.job.sites()]
        threading.Thread(target=self._follow, daemon=True).start()
        return self.job

    def refresh(self) -> bool:
        """Update progress from the service; True once the job has ended (then show the result)."""
        self.job.status()
        rounds = max(int(self.job.row["params"].get("rounds", 1)), 1)
        for bar, (site, info) in zip(self.progress.children, self.job.sites().items()):
            state = info.get("state", "waiting")
            bar.value = 1.0 if state in ("done", "ok") else min(int(info.get("round", 0)) / rounds, 1.0)
            bar.bar_style = {"failed": "danger", "done": "success", "ok": "success"}.get(state, "info")
            bar.description = f"{site}: {state}"
        self.message.value = f"job <code>{self.job.id}</code>: <b>{self.job.state}</b> {self.job.row.get('error', '')}"
        if self.job.state not in FINAL:
            return False
        self.budget = self._budget_rows()
        self._show_cost()
        self._show_result()
        return True

    def _show_result(self):
        from IPython.display import display

        result = self.job.result()
        with self.output:
            display(result.table)
            if self.job.state in ("finished", "partial"):
                display(result.plot())

    def _follow(self):
        while True:
            try:
                if self.refresh():
                    return
            except FederationError as e:
                self.message.value = f"<span style='color:#b00'>{e.message}</span>"
            time.sleep(self.poll)
