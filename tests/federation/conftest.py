"""The federation tier: real NVFlare processes (server + three sites on 127.0.0.1), a real
JupyterHub, and the workbench-federation service as a process of its own, all started once.

Fixture catalogue (session scope unless noted):
    demo_data      the small demo cohorts (six datasets over site-1..site-3), written ahead by
                   scripts/test.sh when it ran the tiers
    fed_env        deployment settings and a catalog with those datasets registered; alice, erin
                   and fay hold grants for all of them (erin and fay spend privacy budgets the
                   other tests must not see spent), bob for lung-ct only, carol and rita for none;
                   sam is the steward of kidney-ct (roles.stewards)
    federation     the embedded FLARE federation, up (FederationSettings)
    fed_hub        a real JupyterHub (lead's config) with workbench-federation as an external
                   service, the workbench-portal it starts itself, and user tokens (alice, bob,
                   carol, rita, and one without the scope)
    fed_service    the service process (ServiceProcess: .url, .restart(), .stop())
    client_for     make a Federation client for a user name
    many_sites     a federation of its own, five sites (site-1..site-5) each holding one small CT
                   cohort (site_cohorts.py) that alice holds a grant for; no hub, no service:
                   (FederationSettings, WorkbenchContext, {site: (dataset id, folder, patients)})
"""

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults

from ..waiting import free_port, wait_for

SERVICE = "workbench-federation"
BUDGET_USERS = ("erin", "fay")
# The portal's test (test_portal_federated.py): a researcher who asks for access there, and the
# steward who decides; nobody else's grants or budgets change.
NEWCOMER, STEWARD, STEWARDED = "rita", "sam", "kidney-ct"
PREFIX = f"/services/{SERVICE}/"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/federation/" in str(item.fspath):
            item.add_marker(pytest.mark.federation)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    from imaging_workbench.dicom import ensure_demo_data

    from ..demo_data import DEMO_DATA_ENV

    # Written ahead by scripts/test.sh while the earlier tiers ran, if it did; otherwise here.
    out = os.environ.get(DEMO_DATA_ENV) or tmp_path_factory.mktemp("demo-data")
    return {spec.id: (spec, folder) for spec, folder, _ in ensure_demo_data(out, "small")}


@pytest.fixture(scope="session")
def fed_env(tmp_path_factory, demo_data):
    from imaging_workbench.catalog import accounts, datasets, grants

    workdir = tmp_path_factory.mktemp("fed")
    for p in (workdir, workdir.parent):
        p.chmod(0o755)
    # The task timeout is how long a dead site keeps a job waiting (the fault tests), and must
    # outlast the slowest live task: a site's first DP-SGD round took 26 s on an idle machine and
    # 52 s on a busy one.
    settings = validate_settings(with_defaults({
        "state_dir": str(workdir / "state"),
        "hub": {"service_port": free_port()},
        "federation": {"fl_port": free_port(), "admin_port": free_port(), "task_timeout": 90, "job_timeout": 300,
                       "min_count": 10},
        "roles": {"stewards": {STEWARDED: [STEWARD]}},
    }))
    ctx = WorkbenchContext(settings, actor="steward")
    with ctx.session() as s:
        for name in ("alice", "bob", "carol", NEWCOMER, STEWARD, *BUDGET_USERS):
            accounts.add_account(s, "steward", name)
        for dataset_id, (spec, folder) in demo_data.items():
            datasets.add_dataset(s, "steward", dataset_id, folder, title=spec.title, modality=spec.modality,
                                 body_part=spec.body_part, site=spec.site)
            for name in ("alice", *BUDGET_USERS):
                grants.grant_access(s, "steward", name, dataset_id, 30, "federated tests")
        grants.grant_access(s, "steward", "bob", "lung-ct", 30, "federated tests")
    return workdir, settings, ctx


@pytest.fixture(scope="session")
def federation(fed_env):
    from imaging_workbench.federation import embedded
    from imaging_workbench.federation.settings import federation_settings

    _, settings, ctx = fed_env
    federation = federation_settings(settings)
    with ctx.session() as s:
        datasets = embedded.site_datasets_from_catalog(s, federation)
    try:
        embedded.up(federation, datasets, timeout=120)
        yield federation
    finally:
        embedded.down(federation)


# Loaded before the test-admin file (90-...), whose appends then apply on top. The portal stays
# the managed service our configuration makes it.
EXTERNAL_SERVICE = '''
import os
from imaging_workbench.deployment import load_settings
from imaging_workbench.hub.configurer import update_services
from imaging_workbench.portal.service import hub_services as portal_services
settings = load_settings(os.environ["WORKBENCH_SETTINGS"])
update_services(c, settings, [{{"name": {name!r}, "url": {url!r}, "api_token": {token!r}}},
                              *portal_services(settings, "127.0.0.1")])
'''


@pytest.fixture(scope="session")
def fed_hub(fed_env):
    from ..hubtools import HubProcess

    workdir, settings, _ = fed_env
    token = secrets.token_hex(16)
    (workdir / "hub").mkdir()
    hub = HubProcess(workdir / "hub", settings)
    url = f"http://127.0.0.1:{hub.settings['hub']['service_port']}"
    (workdir / "hub" / "config.d" / "89-federation.py").write_text(
        EXTERNAL_SERVICE.format(name=SERVICE, url=url, token=token))
    hub.service_token = token
    hub.start()
    try:
        for name in ("alice", "bob", "carol", "dave", NEWCOMER, *BUDGET_USERS):
            hub.api("POST", f"/users/{name}")
        scope = [f"access:services!service={SERVICE}"]
        hub.tokens = {name: hub.user_token(name, scope) for name in ("alice", "bob", "carol", NEWCOMER, *BUDGET_USERS)}
        hub.tokens["unscoped"] = hub.user_token("dave", ["read:users:name!user"])
        yield hub
    finally:
        hub.stop()


class ServiceProcess:
    """`python -m imaging_workbench.federation.hub.service` with the environment a hub gives a service."""

    def __init__(self, hub, settings_file: Path, port: int, log: Path):
        self.env = {**os.environ, "JUPYTERHUB_API_TOKEN": hub.service_token,
                    "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub.settings['hub']['api_port']}/hub/api",
                    "JUPYTERHUB_SERVICE_NAME": SERVICE, "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
                    "WORKBENCH_SETTINGS": str(settings_file)}
        self.url = f"http://127.0.0.1:{port}{PREFIX}"
        self.log = log
        self.process = None

    def start(self, timeout: float = 60):
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "imaging_workbench.federation.hub.service"],
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

        def healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited:\n{self.log.read_text()[-3000:]}")
            try:
                return requests.get(self.url + "api/health", timeout=2).ok
            except requests.RequestException:
                return False

        wait_for(healthy, timeout, interval=0.2, what="the federation service")
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(30)

    def restart(self):
        self.stop(signal.SIGKILL)
        return self.start()


@pytest.fixture(scope="session")
def fed_service(fed_hub, federation, fed_env):
    workdir, _, _ = fed_env
    service = ServiceProcess(fed_hub, fed_hub.settings_file, fed_hub.settings["hub"]["service_port"],
                             workdir / "service.log")
    try:
        yield service.start()
    finally:
        service.stop()


@pytest.fixture(scope="session")
def client_for(fed_service, fed_hub):
    from imaging_workbench.federation.client import Federation

    def make(user: str) -> Federation:
        return Federation(url=fed_service.url, token=fed_hub.tokens[user])

    return make


MANY_SITES = 5


@pytest.fixture(scope="session")
def many_sites(tmp_path_factory):
    from imaging_workbench.catalog import accounts, datasets, grants
    from imaging_workbench.federation import embedded
    from imaging_workbench.federation.provision import ensure_embedded_kits
    from imaging_workbench.federation.settings import federation_settings, site_names
    from imaging_workbench.federation.site.policy_file import POLICY_FILE

    from .site_cohorts import write_site_cohorts

    workdir = tmp_path_factory.mktemp("many-sites")
    for p in (workdir, workdir.parent):
        p.chmod(0o755)
    sites = site_names(MANY_SITES)
    # A statistics task on these cohorts takes seconds: a killed site ends its job in 30 s.
    settings = validate_settings(with_defaults({
        "state_dir": str(workdir / "state"), "hub": {"service_port": free_port()},
        "federation": {"fl_port": free_port(), "admin_port": free_port(), "sites": list(sites), "min_count": 5,
                       "task_timeout": 30, "job_timeout": 180}}))
    federation, plan = federation_settings(settings), write_site_cohorts(workdir / "data", sites)
    ctx = WorkbenchContext(settings, actor="steward")
    with ctx.session() as s:
        accounts.add_account(s, "steward", "alice")
        for site, (dataset_id, folder, _) in plan.items():
            datasets.add_dataset(s, "steward", dataset_id, folder, modality="CT", body_part="ABDOMEN", site=site)
            grants.grant_access(s, "steward", "alice", dataset_id, 30, "many sites")
        site_datasets = embedded.site_datasets_from_catalog(s, federation)
    ensure_embedded_kits(federation)
    for site in sites:  # each site's admin allows the algorithm's largest epsilon: little noise to compare through
        path = federation.kit(site) / "local" / POLICY_FILE
        policy = yaml.safe_load(path.read_text())
        policy["defaults"].update(epsilon_per_job=20.0, epsilon_per_researcher=1000.0)
        path.write_text(yaml.safe_dump(policy))
    try:
        embedded.up(federation, site_datasets)
        yield federation, ctx, plan
    finally:
        embedded.down(federation)
