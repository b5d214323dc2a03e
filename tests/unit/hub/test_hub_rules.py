"""The spawner's rules without docker: profiles, container settings, approved mounts, revocation."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from imaging_workbench.catalog import accounts, audit, datasets, grants
from imaging_workbench.catalog.models import Grant, ServerMount
from imaging_workbench.clock import utcnow
from imaging_workbench.deployment import DEFAULTS
from imaging_workbench.errors import WorkbenchError
from imaging_workbench.hub import profiles
from imaging_workbench.hub.access_service import enforce_once, stale_mounts
from imaging_workbench.hub.configurer import configure, hub_api_ip
from imaging_workbench.hub.mount_plan import granted_datasets as _approved_mounts
from imaging_workbench.hub.mount_plan import lost_datasets, plan_server
from imaging_workbench.hub.server_start import plan_and_open_mount
from imaging_workbench.hub.spawner import WorkbenchSpawner
from traitlets.config import Config

PROFILES = DEFAULTS["sandbox"]["profiles"]


def test_profile_choice_from_form_and_api():
    assert profiles.choose(PROFILES, "standard", {"profile": ["large"]}) == "large"
    assert profiles.choose(PROFILES, "standard", {}) == "standard"
    with pytest.raises(ValueError, match="unknown resource profile 'huge'"):
        profiles.choose(PROFILES, "standard", {"profile": "huge"})
    assert profiles.limits(PROFILES["large"]) == {"mem_limit": 12 * 1024**3, "cpu_limit": 2.0, "gpus": 0}
    assert profiles.limits(PROFILES["gpu"])["gpus"] == 1


def test_sandbox_container_is_locked_down():
    spawner = WorkbenchSpawner(mem_limit=1024**3)
    config = spawner._sandbox_host_config(gpus=0)
    assert config["read_only"] is True and config["cap_drop"] == ["ALL"]
    assert config["security_opt"] == ["no-new-privileges"] and config["pids_limit"] == 256
    assert config["memswap_limit"] == 1024**3 and "/tmp" in config["tmpfs"]
    assert config["dns"] == ["127.0.0.1"]
    assert config["sysctls"]["net.ipv6.conf.all.disable_ipv6"] == "1"
    assert "device_requests" not in config
    assert spawner._sandbox_host_config(gpus=1)["device_requests"][0]["Count"] == 1
    assert spawner.remove is True and spawner.pull_policy == "never"


@pytest.fixture
def granted(ctx, dataset_dir):
    with ctx.session() as s:
        accounts.add_account(s, "steward", "alice", "pw")
        for name in ("lung", "liver"):
            datasets.add_dataset(s, "steward", name, dataset_dir(name))
            grants.grant_access(s, "steward", "alice", name, 5, "study")
    return ctx


def test_mounts_follow_live_grants(granted, dataset_dir):
    with granted.session() as s:
        mounts = _approved_mounts(s, "alice")
        assert sorted(mounts) == ["liver", "lung"]
        assert mounts["lung"].endswith("/datasets/lung")
        grants.revoke_access(s, "steward", "alice", "liver")
        s.scalars(select(Grant).where(Grant.dataset_id == "lung")).one().expires_at = utcnow() - timedelta(seconds=1)
    with granted.session() as s:
        assert _approved_mounts(s, "alice") == {}
        assert _approved_mounts(s, "nobody") == {}  # no grants: an empty /data, not an error


def test_missing_dataset_folder_stops_the_spawn_with_a_clear_message(granted, tmp_path):
    (tmp_path / "datasets" / "lung").rename(tmp_path / "moved")
    with granted.session() as s, pytest.raises(WorkbenchError, match="'lung' cannot be mounted: dataset folder"):
        _approved_mounts(s, "alice")


def test_the_plan_mounts_the_live_grants_read_only_with_the_profiles_limits(granted):
    with granted.session() as s:
        plan = plan_server(s, "alice", profile=PROFILES["large"], home_volume="home-{username}")
        assert sorted(plan.datasets) == ["liver", "lung"] and plan.kind == "default"
        assert plan.read_only_paths["/data/lung"] == plan.datasets["lung"]
        volumes = plan.docker_volumes()
        assert volumes["home-{username}"] == "/home/jovyan"
        assert volumes[plan.datasets["lung"]] == {"bind": "/data/lung", "mode": "ro"}
        assert plan.limits["mem_limit"] == 12 * 1024**3
        dashboard = plan_server(s, "alice", "review", "dashboard", profile=PROFILES["standard"], home_volume="h",
                                only=["lung"])
        assert sorted(dashboard.datasets) == ["lung"]
        with pytest.raises(ValueError, match="server kind must be one of"):
            plan_server(s, "alice", kind="vm", profile=PROFILES["standard"], home_volume="h")


def open_mount(ctx):
    with ctx.session() as s:
        plan_and_open_mount(s, "alice", "", "workbench-alice", "standard", PROFILES, "h", None)


def test_revoked_and_expired_grants_make_mounts_stale_each_with_its_reason(granted):
    open_mount(granted)
    with granted.session() as s:
        assert stale_mounts(s) == []
        grants.revoke_access(s, "steward", "alice", "liver")
        s.scalars(select(Grant).where(Grant.dataset_id == "lung")).one().expires_at = utcnow() - timedelta(seconds=1)
    with granted.session() as s:
        [(mount, lost)] = stale_mounts(s)
        assert mount.user == "alice" and lost == {"liver": "revoked", "lung": "expired"}
        assert lost_datasets(s, "alice", ["lung"]) == {"lung": "expired"}
        assert [e.action for e in audit.events(s)][-2:] == ["server.start", "revoke"]


class RecordingHub:
    """The hub API as the access service sees it: who runs, and the stops asked for."""

    def __init__(self):
        self.running, self.stops = {"alice": {""}}, []

    def running_servers(self, user):
        return self.running.get(user, set())

    def stop_server(self, user, server_name):
        self.stops.append((user, server_name))


def test_every_revocation_of_the_same_users_server_is_enforced(granted, settings):
    """Container names repeat from start to start; each start is its own mount record."""
    hub, stopping = RecordingHub(), {}
    for round_ in range(3):
        with granted.session() as s:
            if round_:
                grants.grant_access(s, "steward", "alice", "liver", 5, "again")
        open_mount(granted)
        with granted.session() as s:
            grants.revoke_access(s, "steward", "alice", "liver")
        assert enforce_once(granted.db_url, hub, stopping) == 1
        assert enforce_once(granted.db_url, hub, stopping) == 0  # asked once, not again at once
        with granted.session() as s:  # the server stops: the spawner closes its mount
            for mount in s.scalars(select(ServerMount).where(ServerMount.stopped_at.is_(None))):
                mount.stopped_at = utcnow()
        enforce_once(granted.db_url, hub, stopping)
        assert stopping == {}
    assert hub.stops == [("alice", "")] * 3
    with granted.session() as s:
        revoked = audit.events(s, action="server.revoked")
        assert len(revoked) == 3 and all(e.details["reasons"] == {"liver": "revoked"} for e in revoked)


def test_hub_config_from_the_settings(settings):
    c = Config()
    configure(c, settings)
    assert c.JupyterHub.hub_bind_url == "http://172.29.248.1:8081"  # the sandbox bridge's gateway
    assert c.WorkbenchSpawner.network_name == "workbench-sandbox"
    assert c.WorkbenchSpawner.catalog_url.startswith("sqlite:///")
    assert {s["name"] for s in c.JupyterHub.services} >= {"workbench-access", "idle-culler", "workbench-federation"}
    assert "access:services" in c.WorkbenchSpawner.server_token_scopes
    assert c.JupyterHub.concurrent_spawn_limit == settings["sandbox"]["concurrent_spawns"] == 10
    assert c.JupyterHub.spawn_throttle_retry_range == (5, 15)
    assert hub_api_ip({**settings, "hub": {**settings["hub"], "api_ip": "127.0.0.1"}}) == "127.0.0.1"


def test_dockerd_unreachable_gives_one_clear_message(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    rc, out, err = cli("sandbox-network")
    assert rc == 1
    assert "dockerd is not reachable" in err and "scripts/ensure_dockerd.sh" in err
    assert "Traceback" not in err


def test_ending_access_revokes_every_grant_with_the_reason_in_the_audit(granted):
    from imaging_workbench.hub.revocation import end_access

    with granted.session() as s, pytest.raises(ValueError, match="reason is required"):
        end_access(s, "idp-sync", "alice", " ")
    with granted.session() as s:
        assert end_access(s, "idp-sync", "alice", "removed from the platform group") == ["liver", "lung"]
    with granted.session() as s:
        assert grants.live_grants(s, "alice") == []
        ended = audit.events(s, action="access.ended")[-1]
        assert ended.details == {"datasets": ["liver", "lung"], "reason": "removed from the platform group"}
