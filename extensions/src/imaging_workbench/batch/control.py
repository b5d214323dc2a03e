"""Batch runs end to end, for the CLI and the portal: submit (every check before any container
starts), refresh (a running run's end read from its container's log), cancel, follow."""

import math

from ..catalog.access_requests import BadField
from ..errors import WorkbenchError
from ..hub.mount_plan import plan_server
from ..hub.network import docker_client, missing_walls, sandbox_open_ports
from ..airlock.outbox import home_volume_name
from . import container as box, runs
from .protocol import read_events


def _profile(settings: dict, name: str | None) -> tuple[str, dict]:
    profiles = settings["sandbox"]["profiles"]
    name = name or settings["sandbox"]["default_profile"]
    if name not in profiles:
        raise BadField("profile", f"{name!r} is not a resource profile", f"choose one of {', '.join(profiles)}")
    if int(profiles[name].get("gpus", 0)):
        from ..hub.spawner import host_has_gpus

        if not host_has_gpus():
            raise BadField("profile", f"{name} needs a GPU and this host has none", "choose a CPU profile")
    return name, profiles[name]


def submit(ctx, user: str, notebook: str, dataset: str, parameters: dict | None = None, per_case: bool = False,
           profile: str | None = None, actor: str | None = None) -> dict:
    """Check the request, record the run and start its container; returns the run (as_dict).
    `actor` (default: the context's) is who submits, for the audit: the user, through the portal.

    Refused before any container starts: a bad notebook name or parameter, an unknown profile,
    a dataset `user` holds no live sandbox grant for, a sandbox network without its walls.

    Raises:
        BadField: names the field (notebook, parameters, dataset, profile).
        WorkbenchError: the walls are down, or the container could not be started (run marked failed).
    """
    notebook = runs.check_notebook(notebook)
    parameters = runs.check_parameters(parameters)
    profile_name, profile_spec = _profile(ctx.settings, profile)
    sandbox = ctx.settings["sandbox"]
    if not isinstance(dataset, str) or not dataset:
        raise BadField("dataset", f"{dataset!r} is not a dataset id", "name one dataset you hold sandbox access to")
    with ctx.session() as s:
        plan = plan_server(s, user, "", "batch", profile=profile_spec, only=[dataset],
                           home_volume=home_volume_name(sandbox["home_volume"], user),
                           state_dir=ctx.settings["state_dir"])
    if dataset not in plan.datasets:
        raise BadField("dataset", f"{user} holds no live sandbox grant for {dataset!r}",
                       "request access on the portal; a federated grant mounts nothing, so it runs no batch")
    client = docker_client()
    missing = missing_walls(client, sandbox["network"], sandbox["subnet"], sandbox_open_ports(ctx.settings))
    if missing:
        raise WorkbenchError(f"the sandbox network is not safe to start in ({'; '.join(missing)})",
                             "an operator restores it with 'workbench sandbox-network'")
    if sandbox.get("home_size"):
        from docker.errors import NotFound

        try:
            client.volumes.get(plan.home_volume)
        except NotFound:
            raise WorkbenchError(f"{user} has no home yet", "start your server once, then submit the run") from None
    image = client.images.get(sandbox["image"]).id
    with ctx.session() as s:
        run = runs.create_run(s, actor or ctx.actor, user, notebook, dataset, parameters, per_case, profile_name, image,
                              lambda run_id: box.container_name(ctx.settings, run_id))
        run_id, name = run.id, run.container
    spec = {"run_id": run_id, "notebook": notebook, "dataset": dataset, "parameters": parameters,
            "per_case": bool(per_case), "workers": max(1, math.floor(plan.limits["cpu_limit"]))}
    try:
        box.start(client, ctx.settings, run_id, name, image, plan, spec)
    except Exception as e:
        with ctx.session() as s:
            runs.settle(s, runs.get_run(s, run_id), runs.FAILED, error=f"the container did not start: {e}")
        raise WorkbenchError(f"batch run {run_id} could not start: {e}", "see dockerd's log; tell an operator") from None
    return show(ctx, run_id)


def refresh(ctx, run_id: int, client=None) -> dict:
    """The run now: a running run whose container has exited is settled from its log (and the
    container removed); one whose container is gone failed."""
    with ctx.session() as s:
        run = runs.get_run(s, run_id)
        if run.state != runs.RUNNING or not run.container:
            return run.as_dict()
        name = run.container
    client = client or docker_client()
    seen = box.outcome(client, name)
    if seen is not None and seen[0] == "running":
        return {**show(ctx, run_id), "progress": progress(seen[1])}
    with ctx.session() as s:
        run = runs.get_run(s, run_id)
        if seen is None:
            runs.settle(s, run, runs.FAILED, error="its container is gone (removed, or the host restarted)")
        else:
            settle_from_log(s, run, seen[1], seen[2])
    box.remove(client, name)
    return show(ctx, run_id)


def progress(stdout: str) -> dict:
    """{cases, done, failed} of a running run, from the events it has printed so far."""
    events = read_events(stdout)
    start = next((e for e in events if e["event"] == "start"), {})
    done = [e for e in events if e["event"] == "case"]
    return {"cases": start.get("cases"), "done": len(done), "failed": sum(e["status"] != "ok" for e in done)}


def settle_from_log(session, run, stdout: str, stderr: str) -> None:
    events = read_events(stdout)
    by_kind = {e["event"]: e for e in events}
    sha = (by_kind.get("start") or {}).get("notebook_sha256")
    if "summary" in by_kind:
        summary = {k: v for k, v in by_kind["summary"].items() if k != "event"}
        runs.settle(session, run, runs.FINISHED, notebook_sha256=sha, summary=summary)
    elif "refused" in by_kind:
        refused = by_kind["refused"]
        runs.settle(session, run, runs.REFUSED, error=refused["error"])
        run.summary = {"field": refused["field"]}
    else:
        why = (by_kind.get("failed") or {}).get("error") or stderr.strip()[-2000:] or "the runner ended without a summary"
        runs.settle(session, run, runs.FAILED, notebook_sha256=sha, error=why)


def show(ctx, run_id: int, user: str | None = None) -> dict:
    with ctx.session() as s:
        return (runs.own_run(s, user, run_id) if user else runs.get_run(s, run_id)).as_dict()


def cancel(ctx, run_id: int, user: str | None = None) -> dict:
    """Stop a running run's container and mark it cancelled (only `user`'s own, when given: they
    cancel it, otherwise the context's actor does)."""
    with ctx.session() as s:
        run = runs.own_run(s, user, run_id) if user else runs.get_run(s, run_id)
        name, running = run.container, run.state == runs.RUNNING
    client = docker_client() if name and running else None
    seen = box.outcome(client, name) if client else None
    started = next((e for e in read_events(seen[1]) if e["event"] == "start"), {}) if seen else {}
    with ctx.session() as s:
        runs.cancel(s, user or ctx.actor, runs.get_run(s, run_id), notebook_sha256=started.get("notebook_sha256"))
    if client:
        box.remove(client, name)
    return show(ctx, run_id)


def follow(ctx, run_id: int, out) -> dict:
    """Copy the run's progress (the container's stderr: bar and summary table) to `out` until it
    ends; then the run, settled."""
    with ctx.session() as s:
        name = runs.get_run(s, run_id).container
    client = docker_client()
    try:
        container = client.containers.get(name)
        for chunk in container.logs(stdout=False, stderr=True, stream=True, follow=True):
            out.write(chunk.decode(errors="replace"))
            out.flush()
        container.wait()
    except Exception:  # gone (cancelled) or docker hiccup: refresh says what became of it
        pass
    return refresh(ctx, run_id, client)
