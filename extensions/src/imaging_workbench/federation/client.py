"""Notebook side: submit federated jobs to the workbench-federation service with your hub token.

    from imaging_workbench.federation.client import Federation
    fed = Federation()                      # $WORKBENCH_FEDERATION_URL, $JUPYTERHUB_API_TOKEN
    job = fed.submit("cohort-statistics", datasets=["lung-ct", "liver-ct"], hu_bins=40)
    job.wait()                              # a progress bar per site
    res = job.result()                      # res.table (DataFrame), res.plot(), res.model_file
"""

import os
import time
from pathlib import Path

import requests

URL_ENV = "WORKBENCH_FEDERATION_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
FINAL = ("finished", "partial", "failed", "cancelled")


class FederationError(Exception):
    """The service refused or failed a request: `status` (HTTP), `fields` (bad parameters)."""

    def __init__(self, status: int, message: str, hint: str | None = None, fields: dict | None = None):
        self.status, self.message, self.hint, self.fields = status, message, hint, fields or {}
        super().__init__(f"{message} (HTTP {status})" + (f"\n  what to do: {hint}" if hint else ""))


class Federation:
    """A client of the workbench-federation service for one user (their JupyterHub token)."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60):
        url = url or os.environ.get(URL_ENV)
        token = token or os.environ.get(TOKEN_ENV)
        if not url:
            raise FederationError(0, "no federation service URL", f"pass url=... or set ${URL_ENV}")
        if not token:
            raise FederationError(0, "no JupyterHub token", f"pass token=... or set ${TOKEN_ENV}")
        self.url = url.rstrip("/") + "/"
        self.timeout = timeout
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"token {token}"

    def _request(self, method: str, path: str, raw: bool = False, **kwargs):
        try:
            r = self._http.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as e:
            raise FederationError(0, f"cannot reach the federation service at {self.url}: {e}",
                                  "check that the hub's workbench-federation service runs") from None
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {"error": r.text or r.reason}
            raise FederationError(r.status_code, body.get("error") or r.reason, body.get("hint"), body.get("fields"))
        return r.content if raw else r.json()

    def algorithms(self) -> list[dict]:
        """The approved algorithms with their parameter schemas and what leaves each site."""
        return self._request("GET", "api/algorithms")

    def datasets(self) -> list[dict]:
        """Datasets you hold grants for that live at a federation site."""
        return self._request("GET", "api/datasets")

    def budget(self):
        """Your privacy budget (epsilon) per dataset and site, as the sites last reported it: spent,
        remaining, the dataset's remaining total across researchers, the most one job may spend."""
        import pandas as pd

        columns = ["dataset_id", "site", "spent", "remaining", "dataset_remaining", "epsilon_per_job", "reported_at"]
        return pd.DataFrame(self._request("GET", "api/budget"), columns=columns)

    def jobs(self) -> list["Job"]:
        return [Job(self, row) for row in self._request("GET", "api/jobs")]

    def job(self, job_id: str) -> "Job":
        return Job(self, self._request("GET", f"api/jobs/{job_id}"))

    def submit(self, algorithm: str, datasets: list[str], **params) -> "Job":
        """Submit an approved algorithm on datasets you hold grants for; returns the Job at once.

        Raises:
            FederationError: 400 unknown algorithm or bad parameters (`fields` names each),
                403 a dataset you hold no grant for (named), 503 the federation is down.
        """
        body = {"algorithm": algorithm, "datasets": list(datasets), "params": params}
        return Job(self, self._request("POST", "api/jobs", json=body))


class Job:
    """One federated job; `status()` refreshes, `wait()` follows, `result()` fetches the aggregates."""

    def __init__(self, fed: Federation, row: dict):
        self._fed, self.row = fed, row

    id = property(lambda self: self.row["id"])
    algorithm = property(lambda self: self.row["algorithm"])
    state = property(lambda self: self.row["status"])

    def __repr__(self):
        return f"<Job {self.id} {self.algorithm} {self.state} on {', '.join(self.row['datasets'])}>"

    def status(self) -> dict:
        self.row = self._fed._request("GET", f"api/jobs/{self.id}")
        return self.row

    def sites(self) -> dict:
        """{site: {state, round, detail}} from the latest status."""
        progress = self.row.get("progress") or {}
        sites = progress.get("progress") or progress.get("sites") or {}
        return {s: sites.get(s, {"state": "waiting", "round": 0}) for s in sorted(self.row["site_datasets"])}

    def wait(self, timeout: float | None = None, interval: float = 1.0, progress: bool = True) -> "Job":
        """Poll until the job ends (or `timeout` seconds pass: TimeoutError); one bar per site."""
        from tqdm.auto import tqdm

        deadline = None if timeout is None else time.monotonic() + timeout
        from .algorithms import get_algorithm

        rounds = get_algorithm(self.algorithm).rounds(self.row["params"])
        bars = {}
        if progress:
            bars = {s: tqdm(total=rounds, desc=s, position=i, leave=True, unit="round")
                    for i, s in enumerate(self.sites())}
        try:
            while True:
                self.status()
                for site, info in self.sites().items():
                    if site in bars:
                        done = rounds if info.get("state") in ("done", "ok") else min(int(info.get("round", 0)), rounds)
                        bars[site].n = done
                        bars[site].set_postfix_str(info.get("state", ""), refresh=True)
                if self.state in FINAL:
                    return self
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {self.id} still {self.state} after {timeout} s")
                time.sleep(interval)
        finally:
            for bar in bars.values():
                bar.close()

    def cancel(self) -> "Job":
        self.row = self._fed._request("POST", f"api/jobs/{self.id}/cancel")
        return self

    def download(self, name: str, dest: str | Path = ".") -> Path:
        """Save one result file (e.g. model.pt) into the folder `dest`; returns its path."""
        data = self._fed._request("GET", f"api/jobs/{self.id}/files/{name}", raw=True)
        path = Path(dest) / f"{self.id}-{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def result(self, dest: str | Path = ".") -> "JobResult":
        """The job's aggregates (only once it ended); training jobs also save the model into `dest`."""
        raw = self._fed._request("GET", f"api/jobs/{self.id}/result")
        model = self.download("model.pt", dest) if "model.pt" in raw.get("files", []) else None
        return JobResult(raw, model, self.algorithm)


class JobResult:
    """Aggregates as pandas tables and plots; `raw` is the service's JSON."""

    def __init__(self, raw: dict, model_file: Path | None = None, algorithm: str | None = None):
        self.raw, self.model_file = raw, model_file
        self.algorithm = algorithm or raw.get("algorithm")

    status = property(lambda self: self.raw.get("status"))

    @property
    def table(self):
        """The main table: counts (statistics), rounds (training) or metrics (evaluation)."""
        import pandas as pd

        from .algorithms import get_algorithm

        return pd.DataFrame(get_algorithm(self.algorithm).table(self.raw))

    @property
    def summary(self):
        import pandas as pd

        rows = [{"name": k, **v} for k, v in (self.raw.get("summary") or {}).items()]
        for name, qs in (self.raw.get("quantiles") or {}).items():
            for q, value in qs.items():
                rows.append({"name": f"{name} q{q}", "mean": value})
        return pd.DataFrame(rows)

    def _repr_html_(self):
        return f"<p>status: <b>{self.status}</b></p>" + self.table.to_html(index=False)

    def plot(self):
        """Histograms (statistics; a suppressed cell is an empty, marked bin) or Dice per round
        (training); returns the matplotlib figure."""
        import matplotlib.pyplot as plt

        hists = {k: v for k, v in (self.raw.get("histograms") or {}).items() if v and v.get("counts")}
        if hists:
            fig, axes = plt.subplots(1, len(hists), figsize=(5 * len(hists), 3.5), squeeze=False)
            for ax, (name, h) in zip(axes[0], hists.items()):
                edges, counts = h["edges"], h["counts"]
                widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
                ax.bar(edges[:-1], [c if c is not None else 0 for c in counts], width=widths, align="edge")
                for left, width, count in zip(edges[:-1], widths, counts):
                    if count is None:
                        ax.text(left + width / 2, 0, "s", ha="center", va="bottom", color="#b00")
                ax.set_title(name.replace("_", " ") + " (s: suppressed)")
            fig.tight_layout()
            return fig
        fig, ax = plt.subplots(figsize=(5, 3.5))
        rounds = self.raw.get("rounds") or []
        if rounds:
            ax.plot([r["round"] for r in rounds], [r.get("dice") for r in rounds], marker="o")
            ax.set_xlabel("round")
            ax.set_ylabel("validation Dice (global model)")
        return fig
