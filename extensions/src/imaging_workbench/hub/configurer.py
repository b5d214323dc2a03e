"""Turn the deployment settings into JupyterHub's traitlets configuration.

hub_config/jupyterhub_config.py calls `configure(c, settings)`; everything a deployment may change is
in the deployment settings file, and anything else stays reachable through jupyterhub_config.d/ files."""

import os
import sys
from pathlib import Path

from ..catalog.audit_key import ensure_key, key_file as audit_key_file
from ..errors import WorkbenchError
from ..private_state import ensure_state_dir
from ..deployment import catalog_url
from ..sessions import hub_api as sessions_hub
from ..stack import HUB_PID_FILE, STACK_ENV, STACK_LABEL, stack_id
from . import roles
from .mount_plan import ensure_tools_folder
from .network import gateway, sandbox_open_ports

SANDBOX_STOP_TIMEOUT = 2  # seconds
SPAWN_RETRY_RANGE = (5, 15)  # seconds a 429 asks a start to wait (Retry-After)
SERVICE_ACCESS = "workbench-access"
SERVICE_CULLER = "idle-culler"
AUTH_STATE_KEY = "auth-state.key"  # in the state directory: encrypts the login tokens the hub keeps
TEMPLATES = Path(__file__).parent / "templates"


def uses_oidc(settings: dict) -> bool:
    return settings["hub"]["authenticator"] == "oidc"


def hub_api_ip(settings: dict) -> str:
    """Where the hub API listens: the sandbox bridge's gateway unless the settings name an address."""
    return settings["hub"]["api_ip"] or gateway(settings["sandbox"]["subnet"])


def update_hub(c, settings: dict) -> None:
    state = ensure_state_dir(settings)
    hub = settings["hub"]
    c.JupyterHub.ip = hub["ip"]
    c.JupyterHub.port = hub["port"]
    c.JupyterHub.hub_bind_url = f"http://{hub_api_ip(settings)}:{hub['api_port']}"
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{hub['proxy_api_port']}"
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state / HUB_PID_FILE)  # how `workbench down` finds the hub
    c.JupyterHub.cleanup_servers = True
    # Named servers are training sessions' (session-<name>) and dashboards' (dashboard-<name>);
    # the spawner refuses any other name.
    c.JupyterHub.allow_named_servers = True
    # Our pages over the hub's own: the home page lists the dashboards shared with the user.
    c.JupyterHub.template_paths = [str(TEMPLATES)]


def update_auth(c, settings: dict) -> None:
    # Nobody is a hub admin, operators included: hub/roles.py says why and what each role gets.
    c.Authenticator.admin_users = set()
    # Groups and roles come from the settings through update_roles; an authenticator that managed
    # them would switch off the group API that training sessions use.
    c.Authenticator.manage_groups = False
    c.Authenticator.manage_roles = False
    if settings["hub"]["authenticator"] == "workbench":
        c.JupyterHub.authenticator_class = "workbench"
        c.WorkbenchAuthenticator.catalog_url = catalog_url(settings)
        c.WorkbenchAuthenticator.audit_key_file = str(audit_key_file(settings))
    elif settings["hub"]["authenticator"] == "oidc":
        update_oidc(c, settings)
    else:  # any registered authenticator, set up in jupyterhub_config.d/
        c.JupyterHub.authenticator_class = settings["hub"]["authenticator"]


def update_oidc(c, settings: dict) -> None:
    """OpenID Connect login (hub/oidc.py) from the settings' `oidc:` section; the refresh tokens in
    auth_state are encrypted with a key kept in the state directory."""
    oidc = settings["oidc"]
    c.JupyterHub.authenticator_class = "workbench-oidc"
    a = c.WorkbenchOIDCAuthenticator
    a.issuer = oidc["issuer"]
    a.client_id = oidc["client_id"]
    if oidc["client_secret_file"]:
        a.client_secret_file = oidc["client_secret_file"]
    else:
        secret = os.environ.get(oidc["client_secret_env"])
        if not secret:
            raise WorkbenchError(f"the environment variable {oidc['client_secret_env']} (oidc.client_secret_env) "
                                 "holds no client secret", "set it for the hub, or use oidc.client_secret_file")
        a.client_secret = secret
    if oidc["callback_url"]:
        a.oauth_callback_url = oidc["callback_url"]
    a.scope = oidc["scopes"]
    a.username_claim = oidc["username_claim"]
    a.groups_claim = oidc["groups_claim"]
    a.login_groups = set(oidc["login_groups"])
    a.role_groups = oidc["role_groups"]
    a.settings_roles = settings["roles"]
    a.login_service = oidc["login_service"]
    a.discovery_ttl = oidc["discovery_ttl"]
    a.catalog_url = catalog_url(settings)
    a.audit_key_file = str(audit_key_file(settings))
    c.CryptKeeper.keys = [ensure_key(ensure_state_dir(settings) / AUTH_STATE_KEY)]
    c.JupyterHub.custom_scopes = roles.CUSTOM_SCOPES


def update_spawner(c, settings: dict, federation_url: str = "", portal_url: str = "") -> None:
    box = settings["sandbox"]
    c.JupyterHub.spawner_class = "workbench"
    s = c.WorkbenchSpawner
    s.catalog_url = catalog_url(settings)
    s.audit_key_file = str(audit_key_file(settings))
    s.state_dir = settings["state_dir"]  # no dataset may be in it: checked again at every spawn
    ensure_tools_folder(ensure_state_dir(settings))  # mounted into every sandbox (hub/mount_plan.py)
    s.image = box["image"]
    s.network_name = box["network"]
    s.sandbox_subnet = box["subnet"]
    s.firewall_ports = sandbox_open_ports(settings)
    s.use_internal_ip = True
    s.profiles = box["profiles"]
    s.default_profile = box["default_profile"]
    s.pids_limit = box["pids_limit"]
    if box["home_size"]:
        s.home_size = str(box["home_size"])
    s.start_timeout = box["start_timeout"]
    s.http_timeout = box["start_timeout"]
    # Starts past the limit get 429 and a Retry-After. A sandbox's server starts in ~1.6 CPU-s, so
    # ten at once stay well inside start_timeout on 2 cores, and more only slow each other
    # (benchmarks/load.py: 100 users, no failed start). JupyterHub suggests a retry near the median
    # start: ten sharing 2 cores take 5-15 s, where its default of 30-60 s left slots idle.
    c.JupyterHub.concurrent_spawn_limit = box["concurrent_spawns"]
    c.JupyterHub.spawn_throttle_retry_range = SPAWN_RETRY_RANGE
    s.notebook_dir = "/"  # /data and the home folder both visible in the file browser
    s.default_url = "/lab/tree/home/jovyan"
    s.prefix = "workbench"
    # The label is how `workbench down` finds them; the stop timeout is how long a sandbox gets
    # between SIGTERM and SIGKILL (docker's default is 10 s, and a revoked server must not
    # outlive its grant by long).
    s.extra_create_kwargs = {"labels": {STACK_LABEL: stack_id(settings)}, "stop_timeout": SANDBOX_STOP_TIMEOUT}
    s.federation_url = federation_url
    s.portal_url = portal_url
    s.home_volume = box["home_volume"]  # the portal reads ~/outbox from the same volume
    # What a sandbox's own token may do: its user's activity and server, and call our services.
    s.server_token_scopes = ["users:activity!user", "access:servers!user", "read:users:name!user",
                             "access:services"]


def update_services(c, settings: dict, extra_services: list[dict] = ()) -> None:
    url = catalog_url(settings)
    box = settings["sandbox"]
    services = [
        {"name": SERVICE_ACCESS,
         "command": [sys.executable, "-m", "imaging_workbench.hub.access_service",
                     "--catalog-url", url, "--interval", str(box["revocation_interval"]),
                     "--audit-key-file", str(audit_key_file(settings)),
                     *(["--refresh-logins"] if uses_oidc(settings) else [])]},
        # The hub stops a service with SIGINT, and with SIGTERM only after its interrupt timeout
        # (about 30 s with its back-off). A hub started in the background passes SIGINT down ignored,
        # and the culler sets no handler of its own: `env` restores the default (and execs, same pid).
        {"name": SERVICE_CULLER,
         "command": ["env", "--default-signal=INT", sys.executable, "-m", "jupyterhub_idle_culler",
                     f"--timeout={box['idle_timeout']}"]},
        # No process: `workbench session` on the host calls the hub with this service's token.
        {"name": sessions_hub.SERVICE_NAME, "api_token": sessions_hub.ensure_token(settings)},
        *extra_services,
    ]
    # Managed services get a fresh environment: the stack's mark lets `workbench down` find one
    # that outlived a hub killed hard.
    c.JupyterHub.services = [
        {**svc, "environment": {**svc.get("environment", {}), STACK_ENV: stack_id(settings)}}
        if "command" in svc else svc
        for svc in services]


def update_roles(c, settings: dict) -> None:
    """Who may do what: the people's roles and groups from the settings (hub/roles.py), and the
    roles of the services update_services defines."""
    c.JupyterHub.load_groups = roles.hub_groups(settings["roles"])
    c.JupyterHub.load_roles = [
        *roles.hub_roles(settings["roles"]),
        {"name": "workbench-access", "services": [SERVICE_ACCESS],
         # shares, read:groups: each serving dashboard shared with its group's members (dashboard_shares.py)
         "scopes": ["read:users", "read:servers", "admin:servers", "shares", "read:groups",
                    *([roles.AUTH_REFRESH_SCOPE] if uses_oidc(settings) else [])]},
        {"name": "idle-culler", "services": [SERVICE_CULLER],
         "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
        {"name": sessions_hub.SERVICE_NAME, "services": [sessions_hub.SERVICE_NAME], "scopes": sessions_hub.SCOPES},
    ]


def workbench_services(settings: dict) -> list[dict]:
    """The workbench's own hub services, federation first (`update_services` takes them).

    Sandboxes call both (federated jobs; release requests), so both listen on the hub API's
    address, which the sandbox firewall opens to them; browsers reach them through the proxy.
    """
    from ..federation.hub import service as federation
    from ..portal import service as portal

    return [*federation.hub_services(settings, hub_api_ip(settings)),
            *portal.hub_services(settings, hub_api_ip(settings))]


def configure(c, settings: dict) -> None:
    """Apply all the deployment settings to JupyterHub's config object `c`."""
    from ..federation.hub.service import SERVICE_NAME as FEDERATION
    from ..portal.base import SERVICE_NAME as PORTAL

    services = workbench_services(settings)
    url = {s["name"]: s["url"] for s in services}
    update_hub(c, settings)
    update_auth(c, settings)
    update_spawner(c, settings, federation_url=url[FEDERATION], portal_url=f"{url[PORTAL]}/services/{PORTAL}/")
    update_services(c, settings, services)
    update_roles(c, settings)
