"""The Kubernetes sandbox's rules, on the manifests the spawner builds: no cluster, no helm.

KubeSpawner is the optional `kubernetes` extra (extensions/pyproject.toml), so this module is
skipped, and only then, where it is not installed. It builds its pod manifest without a cluster,
given a kubeconfig to read (one naming no real server is written here, and nothing connects to it).
"""

import asyncio

import pytest

pytest.importorskip("kubespawner")

from jupyterhub.objects import Hub  # noqa: E402
from kubernetes_asyncio.client import ApiClient  # noqa: E402
from kubernetes_asyncio.config import kube_config  # noqa: E402

from imaging_workbench.catalog import accounts, datasets, grants  # noqa: E402
from imaging_workbench.catalog.audit_key import key_file  # noqa: E402
from imaging_workbench.deployment import DEFAULTS, catalog_url  # noqa: E402
from imaging_workbench.hub.kube_spawner import WorkbenchKubeSpawner, network_policy  # noqa: E402

PROFILES = DEFAULTS["sandbox"]["profiles"]
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: workbench}}]
current-context: none
"""


class HubUser:
    """The few attributes of a hub user a spawner reads."""

    def __init__(self, name):
        self.name = self.escaped_name = name
        self.id, self.url = 1, f"/user/{name}/"


@pytest.fixture
def granted(ctx, dataset_dir):
    """alice holds sandbox grants on lung and liver; brain is registered and not hers."""
    with ctx.session() as s:
        accounts.add_account(s, "steward", "alice", "pw")
        for name in ("lung", "liver", "brain"):
            datasets.add_dataset(s, "steward", name, dataset_dir(name))
        for name in ("lung", "liver"):
            grants.grant_access(s, "steward", "alice", name, 5, "study")
    return ctx


@pytest.fixture
def build(granted, settings, tmp_path, monkeypatch):
    """Run `check(spawner)` on alice's spawner after its plan is applied (the profile `large`)."""
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))

    def run(check, profile="large", **traits):
        async def main():
            spawner = WorkbenchKubeSpawner(
                user=HubUser("alice"), hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"), _mock=True,
                catalog_url=catalog_url(settings), audit_key_file=str(key_file(settings)), profiles=PROFILES,
                federation_ports=[8443], hub_ports=[8081, 8082], **traits)
            spawner.user_options = {"profile": profile}
            await spawner.apply_plan()
            return await check(spawner)
        return asyncio.run(main())
    return run


def pod_of(build, **traits) -> dict:
    async def manifest(spawner):
        return ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    return build(manifest, **traits)


def mounts_by_path(pod) -> dict:
    container = pod["spec"]["containers"][0]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    return {m["mountPath"]: (m, volumes[m["name"]]) for m in container["volumeMounts"]}


def test_exactly_the_granted_datasets_are_mounted_read_only_at_volume_and_mount(build):
    mounts = mounts_by_path(pod_of(build))
    data = {path: pair for path, pair in mounts.items() if path.startswith("/data/")}
    assert sorted(data) == ["/data/liver", "/data/lung"]  # brain is registered, not granted: absent
    for mount, volume in data.values():
        assert mount["readOnly"] is True
        assert volume["persistentVolumeClaim"]["readOnly"] is True
    assert mounts["/data/lung"][1]["persistentVolumeClaim"]["claimName"] == "workbench-dataset-lung"


def test_a_dataset_from_nfs_is_read_only_whatever_the_setting_says(build):
    mounts = mounts_by_path(pod_of(build, dataset_volumes={
        "lung": {"nfs": {"server": "files", "path": "/export{path}", "readOnly": False}}}))
    mount, volume = mounts["/data/lung"]
    assert volume["nfs"]["readOnly"] is True and volume["nfs"]["path"].endswith("/datasets/lung")
    assert mount["readOnly"] is True


def test_an_unknown_volume_kind_is_refused_naming_the_setting(build):
    with pytest.raises(ValueError, match="WorkbenchKubeSpawner.dataset_volume: a volume source is one of"):
        build(lambda spawner: None, dataset_volume={"emptyDir": {}})


def test_a_dataset_folder_that_cannot_be_mounted_refuses_the_spawn(build, tmp_path):
    (tmp_path / "datasets" / "lung").rename(tmp_path / "moved")
    with pytest.raises(RuntimeError, match="'lung' cannot be mounted"):
        build(lambda spawner: None)


def test_the_root_is_read_only_with_only_tmp_run_and_home_writable(build):
    pod = pod_of(build)
    mounts = mounts_by_path(pod)
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    writable = sorted(path for path, (mount, _) in mounts.items() if not mount.get("readOnly"))
    assert writable == ["/home/jovyan", "/run", "/tmp"]
    assert mounts["/tmp"][1]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Gi"}
    assert mounts["/home/jovyan"][1]["persistentVolumeClaim"] == {"claimName": "workbench-home-alice"}


def test_the_sandbox_runs_as_uid_1000_without_capabilities_escalation_or_token(build):
    pod = pod_of(build, uid=0, allow_privilege_escalation=True, automount_service_account_token=True)
    context = pod["spec"]["containers"][0]["securityContext"]
    assert context["runAsUser"] == 1000 and context["runAsGroup"] == 100 and context["runAsNonRoot"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True and pod["spec"]["securityContext"]["fsGroup"] == 100
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["dnsPolicy"] == "None" and pod["spec"]["enableServiceLinks"] is False


def test_requests_and_limits_come_from_the_profile(build):
    resources = pod_of(build)["spec"]["containers"][0]["resources"]
    assert resources["limits"] == {"cpu": 2.0, "memory": 12 * 1024**3}
    assert resources["requests"] == resources["limits"]


def test_the_sandbox_gets_the_hub_by_address_and_its_datasets_in_the_environment(build):
    pod = pod_of(build, hub_connect_url="http://localhost:8081", federation_url="http://localhost:8443")
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["JUPYTERHUB_API_URL"] == "http://127.0.0.1:8081/hub/api"
    assert env["WORKBENCH_FEDERATION_URL"] == "http://127.0.0.1:8443"
    assert env["WORKBENCH_DATASETS"] == "liver,lung"


def test_an_unknown_profile_refuses_the_spawn_with_a_message(build):
    with pytest.raises(RuntimeError, match="unknown resource profile 'huge'") as refused:
        build(lambda spawner: None, profile="huge")
    assert refused.value.jupyterhub_message.startswith("unknown resource profile")


def test_the_network_policy_lets_out_only_to_the_hub_api_and_federation_ports(build):
    async def policy(spawner):
        return spawner.get_network_policy_manifest()
    spec = build(policy)["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"]["matchLabels"]["hub.jupyter.org/username"] == "alice"
    hub = {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "hub"}}}
    assert spec["egress"] == [
        {"to": [hub], "ports": [{"protocol": "TCP", "port": 8081}, {"protocol": "TCP", "port": 8082}]},
        {"to": [hub], "ports": [{"protocol": "TCP", "port": 8443}]}]  # no DNS, no other pod, no outside
    proxy = {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "proxy"}}}
    assert spec["ingress"] == [{"from": [proxy, hub], "ports": [{"protocol": "TCP", "port": 8888}]}]


def test_a_namespace_selector_is_given_only_when_set():
    spec = network_policy("p", {"a": "b"}, 8888, [{"pod_selector": {"c": "hub"}, "namespace_selector": {"n": "hub"},
                                                   "ports": [1]}], [])["spec"]
    assert spec["egress"][0]["to"] == [{"podSelector": {"matchLabels": {"c": "hub"}},
                                        "namespaceSelector": {"matchLabels": {"n": "hub"}}}]


def test_an_empty_pod_selector_is_refused(build):
    with pytest.raises(ValueError, match="WorkbenchKubeSpawner.hub_pod_selector: give the labels of one pod"):
        build(lambda spawner: None, hub_pod_selector={})
