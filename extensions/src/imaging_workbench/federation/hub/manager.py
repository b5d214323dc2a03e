"""Federated jobs on behalf of users: checks, submission, following, results, cancellation.

`JobManager` is what the service's handlers call (no HTTP here). Every check happens before
FLARE sees the job: the algorithm is approved, its parameters fit the schema, the user holds
live grants for every dataset, and each dataset lives at a federation site. A site that is not
connected to the FLARE server is left out, with its datasets, and the job ends `partial` naming it
(FLARE would otherwise hold the whole job until that site came); a job whose sites are all
unconnected is refused. Which sites are connected is learnt by the service's follow loop
(`refresh_connected`); a submission asks FLARE itself only when a site it needs looked down,
on a session of its own and outside any database session (a call on the loop's shared session
inside one waited on a download and timed submissions out). Jobs are rows in the catalog
(`FederatedJob`); `follow_once` moves unfinished ones forward and is called in a loop by the
service, so a restarted service picks up where it left off.
"""

import json
import shutil
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from ...catalog import audit
from ...catalog.datasets import datasets_by_id
from ...catalog.grants import live_grants, require_grants
from ...clock import utcnow
from ...errors import NotFound, WorkbenchError
from ..algorithms import get_algorithm
from ..protocol.disclosure import suppress_below
from ..protocol.params import validate_params
from ..protocol.policy import WEIGHTS_MODES, DatasetPolicy, request_problems, stricter
from ..settings import FederationSettings
from .flare_session import FlareAdmin, SharedSession, download_result, job_state, read_result
from .job_folders import job_name, write_job
from .job_store import FederatedJob
from .site_reports import budgets, record_reports, reported_policies


class Forbidden(WorkbenchError):
    """The user may not do this (no grant, not their job)."""


class BadRequest(WorkbenchError):
    """The request itself is wrong; `errors` maps fields to problems when there are several."""

    def __init__(self, message, hint=None, errors=None):
        super().__init__(message, hint)
        self.errors = errors or {}


def grant_conditions(session, user: str, datasets) -> dict[str, dict]:
    """The conditions of `user`'s live grants on `datasets`, as sites apply them on top of their own
    policy (`protocol.policy.stricter`): {dataset: {min_count, weights}}, datasets without any left out."""
    conditions = {}
    for grant in live_grants(session, user):
        given = grant.conditions or {}
        # WEIGHTS_MODES is strictest first: its first mode lets no model weights leave.
        terms = {"min_count": given.get("min_count"), "weights": WEIGHTS_MODES[0] if given.get("no_weights") else None}
        terms = {key: value for key, value in terms.items() if value is not None}
        if grant.dataset_id in datasets and terms:
            conditions[grant.dataset_id] = terms
    return conditions


def left_out_note(dataset_ids) -> str:
    """Why a site's datasets were not in a job, as its error and result name it."""
    return f"not connected, its datasets left out: {', '.join(dataset_ids)}"


def public_result(result: dict, min_count: int) -> dict:
    """What a researcher may see, re-checked at the hub with the sites' own rule
    (`protocol.disclosure.suppress_below`) under the stricter of `min_count` and every site's
    reported minimum: each pooled cell, mean and per-round figure below it is suppressed and marked."""
    out = json.loads(json.dumps(result))
    floor = max([min_count] + [(s.get("policy") or {}).get("min_count", 0) for s in (out.get("sites") or {}).values()])
    for row in out.get("counts", []):
        row["count"] = suppress_below(row.get("count"), floor)
        row["suppressed"] = row.get("suppressed", False) or row["count"] is None
    for hist in (out.get("histograms") or {}).values():
        if hist and hist.get("counts") is not None:
            hist["counts"] = [suppress_below(c, floor) for c in hist["counts"]]
            hist["suppressed"] = [bool(was) or c is None for c, was in
                                  zip(hist["counts"], hist.get("suppressed") or [False] * len(hist["counts"]))]
            hist["total"] = suppress_below(hist.get("total"), floor)
    for group, size in (("summary", "n"), ("metrics", "cases")):
        for name, figure in (out.get(group) or {}).items():
            if figure and suppress_below(figure.get(size), floor) is None:
                out[group][name] = dict(figure, mean=None, sd=None, suppressed=True)
    for row in out.get("rounds") or []:
        if suppress_below(row.get("cases"), floor) is None:
            row.update(dice=None, dice_sd=None, suppressed=True)
    return out


class JobManager:
    """Submit, follow and read federated jobs for users, with the service's own FLARE identity."""

    def __init__(self, ctx, settings: FederationSettings, admin: FlareAdmin | None = None):
        self.ctx, self.settings = ctx, settings
        self.admin = admin or FlareAdmin(settings)
        self.flare = SharedSession(self.admin)
        self._connected: tuple[float, frozenset] | None = None  # (monotonic time learnt, site names)
        self._sites_file_seen = self._sites_file_version()

    # -- the federation's sites -----------------------------------------------------------
    def _sites_file_version(self) -> tuple | None:
        try:
            st = self.settings.sites_file.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    @property
    def sites(self) -> tuple[str, ...]:
        """The federation's sites, read again once `workbench federation up --sites N` has rewritten
        its sites file: the service outlives the federation it serves and need not be restarted."""
        seen = self._sites_file_version()
        if seen != self._sites_file_seen:
            self._sites_file_seen = seen
            if seen is not None:
                sites = tuple(json.loads(self.settings.sites_file.read_text())["sites"])
                self.settings = replace(self.settings, sites=sites)
        return self.settings.sites

    # -- connected sites ------------------------------------------------------------------
    CONNECTED_MAX_AGE = 90  # seconds; the follow loop refreshes every 30 s even with no job
    CONNECTED_REFRESH = 10  # seconds between refreshes while jobs are followed

    def refresh_connected(self, sess, max_age: float = 0) -> None:
        """Learn from FLARE session `sess` which sites are connected, unless that was learnt less
        than `max_age` seconds ago."""
        if self._connected is None or time.monotonic() - self._connected[0] >= max_age:
            self._connected = (time.monotonic(), frozenset(c.name for c in sess.get_connected_client_list()))

    def _connected_sites(self, needed) -> frozenset | None:
        """The connected sites, as the follow loop last learnt them when that holds every site in
        `needed`; otherwise asked of FLARE now, on a session of its own (the shared one may be busy
        with a download), so a site that has just come back is not left out. None when FLARE cannot
        be asked: nothing is left out then, and the submission names FLARE's problem."""
        learnt = self._connected
        if learnt is not None and time.monotonic() - learnt[0] <= self.CONNECTED_MAX_AGE and set(needed) <= learnt[1]:
            return learnt[1]
        try:
            names = frozenset(self.admin.connected_sites(timeout=5))
        except WorkbenchError:
            return None
        self._connected = (time.monotonic(), names)
        return names

    def _leave_out_unconnected(self, site_datasets: dict[str, list[str]]) -> dict[str, list[str]]:
        """`site_datasets` without the sites not connected; BadRequest naming them if none is left."""
        connected = self._connected_sites(site_datasets)
        if connected is None:
            return site_datasets
        kept = {site: ids for site, ids in site_datasets.items() if site in connected}
        if not kept:
            down = ", ".join(f"{site} ({', '.join(ids)})" for site, ids in sorted(site_datasets.items()))
            raise BadRequest(f"no site holding the datasets is connected to the federation: {down}",
                             "ask the operator to start the sites ('workbench federation status' names them), "
                             "or choose datasets at connected sites",
                             errors={"datasets": f"at sites not connected: {down}"})
        return kept

    def _left_out(self, job: FederatedJob) -> dict[str, list[str]]:
        """{site: datasets} the job asked for but was not sent to (their site was not connected)."""
        sent = {d for ids in job.site_datasets.values() for d in ids}
        with self.ctx.session() as s:
            found = datasets_by_id(s, [d for d in job.datasets if d not in sent])
        out: dict[str, list[str]] = {}
        for dataset_id, dataset in found.items():
            out.setdefault(dataset.site, []).append(dataset_id)
        return out

    # -- checks ---------------------------------------------------------------------------
    def _site_datasets(self, session, user: str, datasets) -> dict[str, list[str]]:
        if not isinstance(datasets, list) or not datasets or not all(isinstance(d, str) for d in datasets):
            raise BadRequest(f"datasets must be a non-empty list of dataset ids, not {datasets!r}",
                             "pass datasets=['lung-ct-site1', ...]", errors={"datasets": "must be a non-empty list"})
        found = datasets_by_id(session, datasets)
        unknown = [d for d in datasets if d not in found]
        if unknown:
            raise BadRequest(f"unknown dataset(s): {', '.join(unknown)}", "list datasets with Federation().datasets()",
                             errors={"datasets": f"unknown: {', '.join(unknown)}"})
        try:
            require_grants(session, user, datasets)
        except WorkbenchError as e:
            raise Forbidden(e.message, e.hint) from None
        by_site: dict[str, list[str]] = {}
        sites = self.sites  # one look at the sites file per submission
        for dataset_id in dict.fromkeys(datasets):
            site = found[dataset_id].site
            if site not in sites:
                raise BadRequest(f"dataset '{dataset_id}' is not held by a federation site (its site is {site!r})",
                                 f"federation sites: {', '.join(sites)}",
                                 errors={"datasets": f"{dataset_id} is at no federation site"})
            by_site.setdefault(site, []).append(dataset_id)
        return by_site

    def _model_bytes(self, session, user: str, model_job: str) -> bytes:
        job = session.get(FederatedJob, model_job)
        if job is None or job.algorithm != "federated-training":
            raise BadRequest(f"model_job {model_job!r} is not a federated-training job",
                             errors={"model_job": f"{model_job!r} is not a federated-training job"})
        if job.user != user:
            raise Forbidden(f"job '{model_job}' belongs to another user", "evaluate a model you trained")
        # An evaluation of a job's model runs the default network on centre crops in the default
        # window; a model of another network or window is evaluated as a tool, on whole series.
        schema = get_algorithm(job.algorithm).params
        custom = [f"{k} {job.params[k]}" for k in ("network", "hu_window")
                  if k in job.params and job.params[k] != schema[k]["default"]]
        if custom:
            raise BadRequest(f"job '{model_job}' trained with {', '.join(custom)}, which model_job evaluation "
                             "does not run", f"publish it as a tool (workbench tools publish-job {model_job}) "
                             "and evaluate the tool (tool=ID), which runs on whole series",
                             errors={"model_job": f"job {model_job} trained with {', '.join(custom)}: evaluate "
                                                  "it as a tool"})
        path = Path(job.result_dir or "") / "model.pt"
        if job.status not in ("finished", "partial") or not path.is_file():
            raise BadRequest(f"job '{model_job}' has no model (status {job.status})",
                             errors={"model_job": f"job {model_job} has no finished model"})
        return path.read_bytes()

    def _tool_package(self, session, tool: str) -> bytes:
        """An approved tool (`id` or `id@version`, default its newest approved version), packed as
        the catalogue holds it: the approved card and its weights file, hash checked."""
        from ...catalog.models import Tool
        from ...tools import catalog as tools_catalog
        from ...tools.card import ToolRefused, check_weights
        from ...tools.notebook import newest
        from ...tools.site_package import pack

        tool_id, _, version = tool.partition("@")
        approved = {t.version: t for t in session.scalars(select(Tool).where(Tool.id == tool_id,
                                                                             Tool.state == "approved"))}
        if not approved or (version and version not in approved):
            raise BadRequest(f"tool {tool!r} has no approved version{' ' + version if version else ''}",
                             "see the approved tools with Tools().list()",
                             errors={"tool": f"{tool} is not an approved tool"})
        row = approved[version or newest(approved)]
        try:
            weights = check_weights(tools_catalog.tool_folder(self.ctx.settings, row.id, row.version), row.card)
        except ToolRefused as e:
            raise BadRequest(e.message, e.hint, errors={"tool": e.message}) from None
        return pack(row.card, weights.read_bytes())

    def _evaluated_model(self, session, user: str, params: dict) -> bytes:
        """What a federated-evaluation job evaluates: a training job's model or a tool (the
        parameters hold exactly one, protocol/params.py)."""
        if "tool" in params:
            return self._tool_package(session, params["tool"])
        return self._model_bytes(session, user, params["model_job"])

    def _check_site_policies(self, session, algorithm, params: dict, site_datasets: dict, conditions: dict) -> None:
        """400 naming each field outside the policy a site last reported for a dataset (under the
        hub's own minimum count and the grant's `conditions`); the site checks again, and alone
        decides where it never reported."""
        errors = {}
        for site, dataset_ids in sorted(site_datasets.items()):
            for dataset_id, reported in sorted(reported_policies(session, site, dataset_ids).items()):
                policy = stricter(DatasetPolicy.from_dict(reported), {"min_count": self.settings.min_count})
                policy = stricter(policy, conditions.get(dataset_id) or {})
                for name, problem in request_problems(algorithm.id, params, policy).items():
                    errors.setdefault(name, f"{site} ({dataset_id}): {problem}")
        if errors:
            detail = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
            raise BadRequest(f"the request is outside a site's policy: {detail}",
                             "change the fields named; Federation().budget() shows each site's limits", errors=errors)

    def budget(self, user: str) -> list[dict]:
        """The user's privacy budget per dataset and site, as the sites last reported it."""
        with self.ctx.session() as s:
            return [row.as_dict() for row in budgets(s, user)]

    # -- submit ---------------------------------------------------------------------------
    def submit(self, user: str, algorithm_id, datasets, params: dict | None = None) -> FederatedJob:
        """Check everything, record the job, hand it to FLARE. Raises BadRequest/Forbidden first."""
        try:
            algorithm = get_algorithm(algorithm_id)
        except WorkbenchError as e:
            raise BadRequest(e.message, e.hint, errors={"algorithm": e.message}) from None
        try:
            full = validate_params(algorithm, params or {})
        except WorkbenchError as e:
            raise BadRequest(e.message, e.hint, errors=getattr(e, "errors", {})) from None
        now = utcnow()
        job_id = uuid.uuid4().hex[:12]
        with self.ctx.session() as s:
            site_datasets = self._site_datasets(s, user, datasets)
            conditions = grant_conditions(s, user, datasets)
            self._check_site_policies(s, algorithm, full, site_datasets, conditions)
            model = self._evaluated_model(s, user, full) if algorithm.id == "federated-evaluation" else None
        # Outside the database session: this may ask FLARE, which must never hold a transaction open.
        asked, site_datasets = site_datasets, self._leave_out_unconnected(site_datasets)
        left_out = "; ".join(f"{site}: {left_out_note(ids)}" for site, ids in sorted(asked.items())
                             if site not in site_datasets)
        with self.ctx.session() as s:
            job = FederatedJob(id=job_id, user=user, algorithm=algorithm.id, version=algorithm.version, params=full,
                               datasets=list(dict.fromkeys(datasets)), site_datasets=site_datasets,
                               status="submitted", progress={}, submitted_at=now,
                               deadline=now + timedelta(seconds=self.settings.job_timeout), error=left_out)
            s.add(job)
            audit.record(s, user, "federation.submit", job_id, algorithm=algorithm.id, version=algorithm.version,
                         datasets=job.datasets, params=full)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                folder = write_job(Path(tmp), algorithm, full, site_datasets, self.settings,
                                   job_name(algorithm.id, job_id), model, researcher=user, job_id=job_id,
                                   conditions=conditions)
                flare_id = self.flare.call(lambda sess: sess.submit_job(str(folder)))
        except Exception as e:  # noqa: BLE001 - the job must still reach a final state
            message = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
            self._finish(job_id, "failed", error=f"FLARE did not take the job: {message}")
            return self.get(user, job_id)
        with self.ctx.session() as s:
            row = s.get(FederatedJob, job_id)
            row.flare_job_id = flare_id
        return self.get(user, job_id)

    # -- read -----------------------------------------------------------------------------
    def get(self, user: str, job_id: str) -> FederatedJob:
        with self.ctx.session() as s:
            job = s.get(FederatedJob, job_id)
            if job is None or job.user != user:
                raise NotFound(f"no job '{job_id}' of yours", "list your jobs with Federation().jobs()")
            return job

    def list_jobs(self, user: str) -> list[FederatedJob]:
        with self.ctx.session() as s:
            query = select(FederatedJob).where(FederatedJob.user == user).order_by(FederatedJob.submitted_at.desc())
            return list(s.scalars(query))

    def result(self, user: str, job_id: str) -> dict:
        job = self.get(user, job_id)
        if not job.is_final:
            raise BadRequest(f"job '{job_id}' is still {job.status}", "wait for it to finish (job.wait())")
        with self.ctx.session() as s:
            audit.record(s, user, "federation.result", job_id, status=job.status)
        return public_result(job.result or {}, self.settings.min_count) | {
            "algorithm": job.algorithm, "status": job.status, "error": job.error}

    def result_file(self, user: str, job_id: str, name: str) -> Path:
        job = self.get(user, job_id)
        files = (job.result or {}).get("files", [])
        if name not in files or not job.result_dir:
            raise NotFound(f"job '{job_id}' has no file {name!r}", f"its files: {', '.join(files) or 'none'}")
        with self.ctx.session() as s:
            audit.record(s, user, "federation.result", job_id, file=name)
        return Path(job.result_dir) / name

    def cancel(self, user: str, job_id: str) -> FederatedJob:
        job = self.get(user, job_id)
        if job.is_final:
            return job
        if job.flare_job_id:
            try:
                self.flare.call(lambda sess: sess.abort_job(job.flare_job_id))
            except Exception:  # noqa: BLE001 - it may have ended meanwhile
                pass
        self._finish(job_id, "cancelled", error=f"cancelled by {user}", actor=user)
        return self.get(user, job_id)

    # -- follow ---------------------------------------------------------------------------
    def _finish(self, job_id: str, status: str, error: str = "", result: dict | None = None,
                result_dir: str | None = None, actor: str = "workbench-federation") -> None:
        with self.ctx.session() as s:
            job = s.get(FederatedJob, job_id)
            if job.is_final:
                return
            job.status, job.error, job.finished_at = status, error, utcnow()
            if result is not None:
                job.result = result
                job.progress = {"sites": {k: {"state": v["status"], "detail": v.get("detail", "")}
                                          for k, v in result.get("sites", {}).items()}}
            job.result_dir = result_dir
            audit.record(s, actor, "federation.finish", job_id, status=status, error=error,
                         failed_sites=sorted((result or {}).get("failed_sites", {})))

    def unfinished(self) -> list[FederatedJob]:
        with self.ctx.session() as s:
            return list(s.scalars(select(FederatedJob).where(FederatedJob.status.in_(("submitted", "running")))))

    def follow_once(self, sess) -> int:
        """Move every unfinished job one step with the FLARE session `sess`; returns how many remain."""
        self.refresh_connected(sess, max_age=self.CONNECTED_REFRESH)
        remaining = 0
        for job in self.unfinished():
            try:
                if self._follow(sess, job):
                    remaining += 1
            except WorkbenchError as e:
                self._finish(job.id, "failed", error=e.message)
        return remaining

    def _follow(self, sess, job: FederatedJob) -> bool:
        if not job.flare_job_id:
            if utcnow() > job.deadline:
                self._finish(job.id, "failed", error="never reached FLARE")
                return False
            return True
        state = job_state(sess, job.flare_job_id)
        flare_status = state["status"]
        if flare_status.startswith("FINISHED"):
            self._collect(sess, job, flare_status)
            return False
        if utcnow() > job.deadline:
            try:
                sess.abort_job(job.flare_job_id)
            except Exception:  # noqa: BLE001 - it may have ended meanwhile
                pass
            progress = (state.get("progress") or {}).get("progress") or {}
            waiting = sorted(s for s, p in progress.items() if p.get("state") not in ("done",))
            self._finish(job.id, "failed", error=f"timed out after {self.settings.job_timeout} s"
                         + (f"; sites not done: {', '.join(waiting)}" if waiting else ""))
            return False
        with self.ctx.session() as s:
            row = s.get(FederatedJob, job.id)
            if row.is_final:
                return False
            row.status = "running" if flare_status == "RUNNING" else "submitted"
            row.progress = {"flare_status": flare_status, **(state.get("progress") or {})}
        return True

    def _collect(self, sess, job: FederatedJob, flare_status: str) -> None:
        dest = self.settings.results_dir / job.id
        try:
            download_result(sess, job.flare_job_id, dest)
            result = read_result(dest)
        except WorkbenchError as e:
            self._finish(job.id, "failed", error=f"FLARE ended the job as {flare_status}: {e.message}")
            return
        status = {"finished": "finished", "partial": "partial", "aborted": "cancelled"}.get(result["status"], "failed")
        failed = dict(result.get("failed_sites") or {})
        for site, ids in self._left_out(job).items():
            failed[site] = left_out_note(ids)
            result.setdefault("sites", {})[site] = {"status": "left out", "detail": failed[site], "datasets": ids}
            status = "partial" if status == "finished" else status
        error = "; ".join(f"{site}: {why}" for site, why in sorted(failed.items()))
        if result.get("error"):
            error = f"{result['error']}; {error}" if error else result["error"]
        with self.ctx.session() as s:
            record_reports(s, result.get("sites") or {})
        # Keep only what the public result needs; files stay in the job's result folder.
        self._finish(job.id, status, error=error, result=result, result_dir=str(dest))
        for stray in dest.glob("*.tmp"):
            shutil.rmtree(stray, ignore_errors=True)
