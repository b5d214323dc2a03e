"""What every workbench spawner does at a server's start and stop, whatever runs the server
(docker here, Kubernetes past one machine): the plan and its record in the catalog, the
sandbox's environment, and the message a refused spawn shows.

Each spawner turns the plan (mount_plan.py) into its own volumes and network rules; nothing in
this module knows docker or Kubernetes.
"""

import json
from pathlib import Path

from sqlalchemy import select

from .. import dashboard_server
from ..catalog import audit, dashboards, training_sessions
from ..catalog.dataset_paths import check_registered
from ..catalog.models import ServerMount
from ..clock import utcnow
from ..material_extension import ENV as MATERIAL_ENV
from .mount_plan import DATA_ROOT, plan_server

# The image's sandbox user (jovyan, uid 1000, group users): owner of a new capped home.
SANDBOX_UID, SANDBOX_GID = 1000, 100
HOME_OWNER = f"{SANDBOX_UID}:{SANDBOX_GID}"


def plan_and_open_mount(session, user, server_name, container, profile_name, profiles, home_volume, state_dir):
    """The server's plan and what its kind adds, with the mounts recorded before the container
    exists: a revocation that lands while the container starts then finds them (and the spawn
    re-checks them after).

    A named server is a training session's (training_sessions.session_server): it mounts the
    session's teaching dataset and nothing else of the learner's, with the session's profile and
    the material; or a published dashboard's (dashboards.dashboard_server): Voila on the pinned
    notebook, the approved datasets its owner still holds, and no home at all.

    Returns:
        (plan, extra): extra holds `binds` (host folder -> docker bind), `material` ([folder in
        the image, folder in the home] pairs), `env`, and `home` (False: no home volume).
    """
    kind, only = "default", None
    extra = {"binds": {}, "material": [], "env": {}, "home": True}
    if server_name.startswith(dashboards.SERVER_PREFIX):
        dashboard, only = dashboards.dashboard_server(session, user, server_name)
        kind, folder = "dashboard", Path(state_dir) / dashboards.FOLDER / dashboard.name
        extra.update(binds={str(folder): {"bind": dashboard_server.ROOT, "mode": "ro"}}, home=False,
                     env={"JUPYTER_CONFIG_DIR": dashboard_server.CONFIG_DIR, dashboard_server.ENV: dashboard.notebook,
                          # over the sandbox's root "/" and JupyterLab (the spawner's notebook_dir, default_url)
                          "JUPYTERHUB_ROOT_DIR": dashboard_server.ROOT,
                          "JUPYTERHUB_DEFAULT_URL": f"/voila/render/{dashboard.notebook}"})
    elif server_name:
        training = training_sessions.session_server(session, user, server_name)
        kind, only, profile_name = "session", [training.dataset_id], training.profile
        material = str(check_registered(training.material, state_dir or None))
        target = f"{training_sessions.MATERIAL_ROOT}/{training.name}"
        extra.update(binds={material: {"bind": target, "mode": "ro"}}, material=[[target, f"sessions/{training.name}"]])
    plan = plan_server(session, user, server_name, kind, profile=profiles[profile_name], home_volume=home_volume,
                       only=only, state_dir=state_dir or None)
    session.add(ServerMount(user=user, server_name=server_name, container=container,
                            datasets=sorted(plan.datasets), started_at=utcnow()))
    audit.record(session, "hub", "server.start", f"{user}/{server_name}", container=container,
                 datasets=sorted(plan.datasets), profile=profile_name, kind=kind)
    return plan, extra


def record_stop(session, user, server_name, container):
    """Close the server's open mounts in the catalog and audit the stop."""
    open_mounts = session.scalars(select(ServerMount).where(
        ServerMount.user == user, ServerMount.server_name == server_name, ServerMount.stopped_at.is_(None)))
    datasets = set()
    for mount in open_mounts:
        mount.stopped_at = utcnow()
        datasets.update(mount.datasets)
    audit.record(session, "hub", "server.stop", f"{user}/{server_name}", container=container,
                 datasets=sorted(datasets))


def sandbox_env(datasets, federation_url: str, portal_url: str, material: list, kind_env: dict) -> dict:
    """What the workbench adds to a sandbox's environment: its datasets, where its services are,
    the material to deliver, and what the server's kind adds (a dashboard's config)."""
    env = {"WORKBENCH_DATASETS": ",".join(sorted(datasets)), "WORKBENCH_DATA_ROOT": DATA_ROOT}
    if federation_url:
        env["WORKBENCH_FEDERATION_URL"] = federation_url
    if portal_url:
        env["WORKBENCH_PORTAL_URL"] = portal_url
    env[MATERIAL_ENV] = json.dumps(material)
    env.update(kind_env)
    return env


def user_error(message: str) -> Exception:
    """An error whose message the spawn-pending page shows instead of a traceback."""
    error = RuntimeError(message)
    error.jupyterhub_message = message
    return error
