"""JupyterLab and Voila as subprocesses on free loopback ports, plus an offline headless Chromium.

Used by the browser tests' fixtures and by benchmarks/viewer.py. Every server runs from this
venv (`sys.executable`) with its own config, runtime and workspace folders under a temp dir,
and Voila finds the workbench template through JUPYTER_PATH (no install needed).
"""

import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import requests

from imaging_workbench.widgets.template import jupyter_path

from ..waiting import free_port, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def write_notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


class Server:
    """`python -m jupyterlab` or `python -m voila` serving `root`; stop() ends it and its kernels."""

    def __init__(self, kind: str, root: Path, workdir: Path):
        self.kind, self.root = kind, root
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.log_path = workdir / f"{kind}-{self.port}.log"
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(workdir / "config"), JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
                   JUPYTER_DATA_DIR=str(workdir / "data"), IPYTHONDIR=str(workdir / "ipython"),
                   JUPYTER_PATH=str(jupyter_path()), PYTHONUNBUFFERED="1")
        if kind == "lab":
            cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                   f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={root}",
                   "--LabApp.expose_app_in_browser=True", f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
                   "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   "--ServerApp.allow_root=True"]
        else:
            cmd = [sys.executable, "-m", "voila", "--no-browser", "--Voila.ip=127.0.0.1", f"--port={self.port}",
                   "--template=workbench", f"--Voila.root_dir={root}", str(root)]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            wait_for(self._up, timeout=90, what=f"{kind} on 127.0.0.1:{self.port} (log: {self.log_path})")
        except Exception:
            self.stop()
            raise

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}" + (f"{sep}token={self.token}" if self.kind == "lab" else "")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
        try:
            path = "api/status" if self.kind == "lab" else "voila/static/voila.js"
            return requests.get(self.url(path), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class OfflineGuard:
    """Blocks every request a page makes to a host other than 127.0.0.1 and remembers it."""

    def __init__(self):
        self.blocked: list[str] = []

    def attach(self, page) -> None:
        page.route("**/*", self._route)
        page.on("websocket", lambda ws: self._check(ws.url))

    def _check(self, url: str) -> bool:
        host = urlparse(url).hostname
        if url.startswith(("data:", "blob:", "about:")) or host == "127.0.0.1":
            return True
        self.blocked.append(url)
        return False

    def _route(self, route) -> None:
        if self._check(route.request.url):
            route.continue_()
        else:
            route.abort("blockedbyclient")


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def signed_in_page(browser, guard: OfflineGuard, hub_url: str, name: str, password: str, next_path: str = ""):
    """A page in a fresh context of `browser` (downloads allowed), `guard`ed, signed in as `name` on
    the hub's login page and sent on to `next_path` (a path under the hub's URL; "" for the hub's
    own landing page)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    guard.attach(page)
    page.goto(f"{hub_url}/hub/login" + (f"?next={next_path}" if next_path else ""))
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(f"{hub_url}{next_path}" if next_path else re.compile(r".*/(hub/home|hub/spawn.*|user/.*)$"))
    return page
