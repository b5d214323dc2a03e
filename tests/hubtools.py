"""A real JupyterHub for tests: our config and deployment settings, free loopback ports, an admin API token."""

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import requests
import yaml

from imaging_workbench.deployment import SETTINGS_ENV
from imaging_workbench.stack import STACK_ENV, stack_id, stop_hub

from .waiting import free_port, wait_for

REPO = Path(__file__).parents[1]
HUB_CONFIG = REPO / "hub_config" / "jupyterhub_config.py"

ADMIN_SERVICE = '''
c.JupyterHub.services.append({{"name": "test-admin", "api_token": {token!r}}})
c.JupyterHub.load_roles.append({{"name": "test-admin", "services": ["test-admin"],
    "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users", "read:servers",
               "access:servers", "access:services", "list:services", "read:services"]}})
'''


class HubProcess:
    """Runs `jupyterhub -f hub_config/jupyterhub_config.py` with deployment settings of the test's making."""

    def __init__(self, workdir: Path, settings: dict, api_ip: str = "127.0.0.1", extra_config: str = ""):
        self.workdir = workdir
        self.port = free_port()
        hub = {"ip": "127.0.0.1", "port": self.port, "api_ip": api_ip, "api_port": free_port(),
               "proxy_api_port": free_port(), "service_port": free_port(), "portal_port": free_port()}
        self.settings = {**settings, "hub": {**settings.get("hub", {}), **hub}}
        self.settings_file = workdir / "workbench.yaml"
        self.settings_file.write_text(yaml.safe_dump(self.settings))
        self.token = secrets.token_hex(16)
        config_d = workdir / "config.d"
        config_d.mkdir(exist_ok=True)
        (config_d / "90-test-admin.py").write_text(ADMIN_SERVICE.format(token=self.token) + extra_config)
        self.env = {**os.environ, SETTINGS_ENV: str(self.settings_file), "WORKBENCH_HUB_CONFIG_D": str(config_d),
                    STACK_ENV: stack_id(self.settings),
                    "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.log_path = workdir / "hub.log"

    def start(self, timeout: float = 90):
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)], cwd=self.workdir, env=self.env,
            stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True)

        def up():
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                return requests.get(f"{self.url}/hub/api/", timeout=5).ok
            except requests.RequestException:
                return False

        wait_for(up, timeout, what="the hub to answer")
        return self

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {token or self.token}"}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=60, **kwargs)

    def user_token(self, name: str, scopes: list[str] | None = None) -> str:
        body = {"note": "test", **({"scopes": scopes} if scopes else {})}
        r = self.api("POST", f"/users/{name}/tokens", json=body)
        r.raise_for_status()
        return r.json()["token"]

    def stop(self, timeout: float = 30):
        """SIGTERM the hub (it stops its proxy and services); then stop whatever of its stack still
        runs, so that nothing outlives the test even when the hub's shutdown fails."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process:
            left = stop_hub(self.settings)
            self.log_file.close()
            assert not left, f"the hub left these running after it stopped: {left}"


def log_in(hub_url: str, name: str, password: str) -> tuple[requests.Session, requests.Response]:
    """Log in through the hub's login page like a browser: fetch the form (XSRF cookie), post it."""
    http = requests.Session()
    http.get(f"{hub_url}/hub/login", timeout=30).raise_for_status()
    response = http.post(f"{hub_url}/hub/login?next=", allow_redirects=False, timeout=60,
                         data={"username": name, "password": password, "_xsrf": http.cookies.get("_xsrf")})
    return http, response
