"""Provisioning: startup kits for the FLARE server, the sites and the service's admin identity,
plus the workbench's site files (authorization, privacy policy, component allow-list and the
deploy-time check of it).

`ensure_embedded_kits` provisions the embedded federation (every listener on the settings'
host, loopback by default); `provision_project` makes kits for real hosts from a project file.
"""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import yaml

from ..errors import WorkbenchError
from ..private_state import ensure_private_tree, private_umask
from .protocol.allowlist import ALGORITHM_GATE, ALLOW_LIST_KEY, APP_VALIDATOR, PRIVACY_FILTER, allowed_classes
from .protocol.policy import DatasetPolicy
from .settings import FederationSettings
from .site.policy_file import POLICY_FILE, write_policy_if_missing

PRIVACY_SCOPE = "workbench"
PROVISION_WORKSPACE = "provision"  # under the workdir: NVFlare's provisioning state (the root CA's key)
# Job logs stay at their site: a site's error log can hold data, and streaming it injects a stock
# component (JobLogStreamer) into every job, which the sites' allow-list would refuse.
LOG_STREAMING = {"nvflare.app_common.logging.site_log_streamer.SiteLogStreamer",
                 "nvflare.app_common.logging.job_log_receiver.JobLogReceiver"}

# Sites refuse custom code ("byoc": bring your own code) from everyone; only the service's
# project_admin identity submits, and it can only name components installed at the site.
AUTHORIZATION = {
    "format_version": "1.0",
    "permissions": {
        "project_admin": {
            "submit_job": "any", "clone_job": "none", "manage_job": "any", "download_job": "any",
            "view": "any", "operate": "any", "shell_commands": "none", "byoc": "none",
            "server-predeployed-flwr": "none",
        },
        "org_admin": {"submit_job": "none", "clone_job": "none", "manage_job": "none", "download_job": "none",
                      "view": "any", "operate": "o:site", "shell_commands": "none", "byoc": "none",
                      "server-predeployed-flwr": "none"},
        "lead": {"submit_job": "none", "clone_job": "none", "manage_job": "none", "download_job": "none",
                 "view": "any", "operate": "none", "shell_commands": "none", "byoc": "none",
                 "server-predeployed-flwr": "none"},
        "member": {"view": "any"},
    },
}


def flare_scope() -> dict:
    """A site's privacy.json: FLARE's scope wiring of the site's two filters (not edited by hand;
    what runs and what leaves is in the site's policy file, `site/policy_file.py`)."""
    return {
        "scopes": [{
            "name": PRIVACY_SCOPE,
            "properties": {},
            "task_data_filters": [{"path": ALGORITHM_GATE, "args": {}}],
            "task_result_filters": [{"path": PRIVACY_FILTER, "args": {}}],
        }],
        "default_scope": PRIVACY_SCOPE,
    }


def _policy_defaults(settings: FederationSettings, local: Path) -> tuple[DatasetPolicy, list]:
    """The defaults of a new site policy: the deployment's minimum count and bin cap, or what an
    older release's privacy.json at this site held (its admin may have raised them)."""
    from .algorithms import ALGORITHMS

    defaults, allowed = DatasetPolicy(min_count=settings.min_count, max_bins=settings.max_bins), sorted(ALGORITHMS)
    old = _load(local / "privacy.json") if (local / "privacy.json").is_file() else {}
    for scope in old.get("scopes", []):
        allowed = [a for a in scope.get("properties", {}).get("allowed_algorithms", allowed) if a in ALGORITHMS]
        for f in scope.get("task_result_filters", []):
            args = f.get("args") or {}
            defaults = replace(defaults, min_count=max(defaults.min_count, int(args.get("min_count", 0))),
                               max_bins=min(defaults.max_bins, int(args.get("max_bins", defaults.max_bins))))
    return defaults, allowed


def embedded_project(settings: FederationSettings) -> dict:
    """The NVFlare project for one server, the sites and the service on `settings.host`."""
    participants = [{"name": "server", "type": "server", "org": "workbench", "fed_learn_port": settings.fl_port,
                     "admin_port": settings.admin_port, "default_host": settings.host}]
    participants += [{"name": name, "type": "client", "org": name.replace("-", "_")} for name in settings.sites]
    participants.append({"name": settings.admin_user, "type": "admin", "org": "workbench", "role": "project_admin"})
    return {
        "api_version": 3, "name": settings.project, "description": "Cancer Imaging Workbench federation",
        "participants": participants,
        "builders": [
            {"path": "nvflare.lighter.impl.workspace.WorkspaceBuilder"},
            {"path": "nvflare.lighter.impl.static_file.StaticFileBuilder", "args": {"config_folder": "config"}},
            {"path": "nvflare.lighter.impl.cert.CertBuilder"},
            {"path": "nvflare.lighter.impl.signature.SignatureBuilder"},
        ],
    }


def _run_provisioner(project: dict, out: Path) -> Path:
    """Run NVFlare's provisioner; return the prod folder holding one kit per participant."""
    from nvflare.lighter.constants import ProvisionMode
    from nvflare.lighter.provision import prepare_builders, prepare_packager, prepare_project
    from nvflare.lighter.provisioner import Provisioner

    try:
        built = prepare_project(json.loads(json.dumps(project)))
    except ValueError as e:
        raise WorkbenchError(f"the FLARE project is not valid: {e}", "fix the project file and run again") from None
    builders, packager = prepare_builders(project), prepare_packager(project)
    ctx = Provisioner(str(out), builders, packager).provision(built, mode=ProvisionMode.POC)
    if not ctx or ctx.get("__errors__"):
        raise WorkbenchError(f"FLARE provisioning failed: {(ctx or {}).get('__errors__')}", "see the messages above")
    return Path(ctx["current_prod_dir"])


def _load(path: Path) -> dict:
    for candidate in (path, path.with_name(path.name + ".default")):
        if candidate.is_file():
            return json.loads(candidate.read_text())
    return {}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def apply_workbench_files(kit: Path, kind: str, settings: FederationSettings, storage: Path | None = None) -> None:
    """Add the workbench's local files to one participant's kit (`kind`: server or client).

    The site's policy file is written only when missing, so a site admin's edits survive. The class
    allow-list is replaced by the workbench's own every time (an older kit held NVFlare's default
    list of ninety stock classes), and the app validator refuses a job naming anything else.
    """
    local = kit / "local"
    local.mkdir(exist_ok=True)
    resources = _load(local / "resources.json")
    resources[ALLOW_LIST_KEY] = allowed_classes(kind)
    resources["class_list_enforcement_mode"] = "enforce"
    resources["app_validator"] = {"path": APP_VALIDATOR, "args": {"kind": kind}}
    resources["components"] = [c for c in resources.get("components", []) if c.get("path") not in LOG_STREAMING]
    resources["allow_log_streaming"] = False
    if kind == "server":
        storage = storage or kit / "storage"
        server = resources["servers"][0]
        # A dead site is noticed in a minute, not the default ten.
        server["heart_beat_timeout"] = 60
        for comp in resources.get("components", []):
            if comp["id"] == "job_manager":
                comp["args"]["uri_root"] = str(storage / "jobs")
        if "snapshot_persistor" in resources:
            resources["snapshot_persistor"]["args"]["storage"]["args"]["root_dir"] = str(storage / "snapshots")
    _write_json(local / "resources.json", resources)
    _write_json(local / "authorization.json", AUTHORIZATION)
    if kind == "client":
        if not (local / POLICY_FILE).exists():
            write_policy_if_missing(local, *_policy_defaults(settings, local))
        _write_json(local / "privacy.json", flare_scope())


def _loopback_server(kit: Path, host: str) -> None:
    """Make the server listen on `host` only (its kit names the host 'server', i.e. every interface)."""
    path = kit / "startup" / "fed_server.json"
    config = json.loads(path.read_text())
    for server in config["servers"]:
        port = server["service"]["target"].rsplit(":", 1)[1]
        server["service"]["target"] = f"{host}:{port}"
        server["admin_server"] = host
    _write_json(path, config)


def missing_kits(settings: FederationSettings) -> list[str]:
    """The participants (server, the service's admin identity, sites) without a startup kit yet."""
    names = ["server", settings.admin_user, *settings.sites]
    return [n for n in names if not (settings.kit(n) / "startup").is_dir()]


def _provision_missing(settings: FederationSettings, missing: list[str]) -> None:
    """Make the kits named `missing`, signed by the federation's own root CA; kits already there
    (their keys, and the site files their admins edited) are left as they are.

    NVFlare's provisioner keeps the root CA and every participant's certificate in its workspace's
    state folder and reuses them on the next run, so that workspace is kept at <workdir>/provision.
    """
    workspace = settings.workdir / PROVISION_WORKSPACE
    state = workspace / settings.project / "state" / "cert.json"
    made = [n for n in ("server", settings.admin_user, *settings.sites) if n not in missing]
    if made and not state.is_file():
        raise WorkbenchError(f"kits for {', '.join(missing)} cannot join the federation in {settings.prod_dir}: its "
                             f"kits were made by an older release that did not keep the root CA ({state} is missing)",
                             f"stop the federation ('workbench federation down'), move {settings.prod_dir} away "
                             "and run 'workbench federation up' again to provision every kit afresh")
    workspace.mkdir(parents=True, exist_ok=True)
    prod = _run_provisioner(embedded_project(settings), workspace)
    try:
        settings.prod_dir.mkdir(exist_ok=True)
        for name in missing:
            if settings.kit(name).exists():
                shutil.rmtree(settings.kit(name))  # a half-made kit without its startup folder
            shutil.move(str(prod / name), settings.kit(name))
    finally:
        shutil.rmtree(prod, ignore_errors=True)  # copies of every participant's private key
    if "server" in missing:
        _loopback_server(settings.kit("server"), settings.host)


def ensure_embedded_kits(settings: FederationSettings) -> Path:
    """Provision the embedded federation's missing kits (all of them the first time, a new site's
    when the sites grow); every call refreshes the workbench files.

    The kits hold private keys: they are made readable by their owner only, and kept so."""
    with private_umask():
        missing = missing_kits(settings)
        if missing:
            settings.workdir.mkdir(parents=True, exist_ok=True)
            _provision_missing(settings, missing)
        apply_workbench_files(settings.kit("server"), "server", settings, settings.workdir / "storage")
        for name in settings.sites:
            apply_workbench_files(settings.kit(name), "client", settings)
    ensure_private_tree(settings.prod_dir)  # NVFlare makes its start scripts 0755 whatever the umask
    ensure_private_tree(settings.workdir / PROVISION_WORKSPACE)
    return settings.prod_dir


def provision_project(project_file: Path, out: Path, settings: FederationSettings) -> Path:
    """Startup kits for real hosts from an NVFlare project file, with the workbench's site files.

    Returns the folder with one kit per participant, to be copied to each host.
    """
    project_file = Path(project_file)
    if not project_file.is_file():
        raise WorkbenchError(f"project file {project_file} does not exist",
                             "write one (see federation/README.md) and pass it with --project")
    try:
        project = yaml.safe_load(project_file.read_text())
    except yaml.YAMLError as e:
        raise WorkbenchError(f"project file {project_file} is not valid YAML: {e}", "fix the line named") from None
    if not isinstance(project, dict) or not isinstance(project.get("participants"), list):
        raise WorkbenchError(f"project file {project_file} has no 'participants' list",
                             "see federation/README.md for the layout")
    project.setdefault("builders", embedded_project(settings)["builders"])
    with private_umask():  # the kits hold private keys until they are copied to their hosts
        out.mkdir(parents=True, exist_ok=True)
        prod = _run_provisioner(project, out)
        for participant in project["participants"]:
            kind = participant.get("type")
            if kind in ("server", "client"):
                apply_workbench_files(prod / participant["name"], kind, settings)
    ensure_private_tree(prod)
    return prod
