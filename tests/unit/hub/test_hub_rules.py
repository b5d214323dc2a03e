"""The spawner's rules without docker: profiles, container settings, approved mounts, revocation."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from imaging_workbench.catalog import accounts, audit, datasets, grants
from imaging_workbench.catalog.models import Grant, ServerMount
from imaging_workbench.clock import utcnow
from imaging_workbench.errors import WorkbenchError
from imaging_workbench.hub import profiles
from imaging_workbench.hub.access_service import stale_mounts
from imaging_workbench.hub.configurer import configure, hub_api_ip
from imaging_workbench.hub.spawner import WorkbenchSpawner, _approved_mounts, _record_start
from imaging_workbench.site import DEFAULTS
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


def test_revoked_and_expired_grants_make_mounts_stale(granted):
    with granted.session() as s:
        _record_start(s, "alice", "", "workbench-alice", {"lung": "/x", "liver": "/y"}, "standard")
    with granted.session() as s:
        assert stale_mounts(s) == []
        grants.revoke_access(s, "steward", "alice", "liver")
    with granted.session() as s:
        [(mount, lost)] = stale_mounts(s)
        assert mount.user == "alice" and lost == ["liver"]
        assert [e.action for e in audit.events(s)][-2:] == ["server.start", "revoke"]


def test_hub_config_from_the_site(site):
    c = Config()
    configure(c, site)
    assert c.JupyterHub.hub_bind_url == "http://172.29.248.1:8081"  # the sandbox bridge's gateway
    assert c.WorkbenchSpawner.network_name == "workbench-sandbox"
    assert c.WorkbenchSpawner.catalog_url.startswith("sqlite:///")
    assert {s["name"] for s in c.JupyterHub.services} >= {"workbench-access", "idle-culler", "workbench-federation"}
    assert "access:services" in c.WorkbenchSpawner.server_token_scopes
    assert hub_api_ip({**site, "hub": {**site["hub"], "api_ip": "127.0.0.1"}}) == "127.0.0.1"


def test_dockerd_unreachable_gives_one_clear_message(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    rc, out, err = cli("sandbox-network")
    assert rc == 1
    assert "dockerd is not reachable" in err and "scripts/ensure_dockerd.sh" in err
    assert "Traceback" not in err
