"""WorkbenchKubeSpawner: the docker sandbox's rules on Kubernetes. Untested on a real cluster.

The same plan as the docker spawner (mount_plan.py through server_start.py) becomes the pod's own
volumes: each approved dataset and the AI tools read-only at the volume and at the mount, the home
a per-user claim, a read-only root with in-memory /tmp and /run, no capabilities, no privilege
escalation, uid 1000, no service-account token, requests and limits from the profile. A
NetworkPolicy per server (`network_policy`) is its firewall: out only to the hub API and the
federation service, in only from the proxy and the hub.

No name resolution in a sandbox, as with docker: the hub looks up the addresses of the hub API and
of the services at each start and gives the sandbox URLs by address, so the policy opens no DNS
(the cluster's DNS forwards outside names, a channel out of the sandbox).
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.clients import shared_client
from kubespawner.slugs import safe_slug
from traitlets import Bool, Dict, Integer, List, Unicode, default, validate

from ..errors import WorkbenchError
from . import profiles as profile_rules
from .catalog_link import in_catalog
from .mount_plan import DATA_ROOT, HOME, INDEX_ROOT, TOOLS_ROOT, lost_datasets
from .server_start import SANDBOX_GID, SANDBOX_UID, plan_and_open_mount, record_stop, sandbox_env, user_error

# Volume kinds a dataset or folder may come from, and those whose source itself can be read-only
# (a hostPath cannot: its mount is read-only, and the folder must exist on every node).
READ_ONLY_KINDS = ("persistentVolumeClaim", "nfs", "csi")
SOURCE_KINDS = (*READ_ONLY_KINDS, "hostPath")
# Not configurable: every setting a sandbox's lockdown rests on, applied at each start over config.
CONTAINER_LOCKDOWN = {"readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                      "privileged": False, "allowPrivilegeEscalation": False,
                      "seccompProfile": {"type": "RuntimeDefault"}}
POD_LOCKDOWN = {"hostNetwork": False, "hostPID": False, "hostIPC": False,
                # no cluster services' addresses in the environment, and no resolver (see above)
                "enableServiceLinks": False, "dnsPolicy": "None", "dnsConfig": {"nameservers": ["127.0.0.1"]}}
RUN_SIZE, DASHBOARD_HOME_SIZE = "16Mi", "64Mi"  # the docker spawner's tmpfs sizes


def read_only_source(source: dict, key: str, **fields) -> dict:
    """The volume source `source` ({kind: spec}) with `{placeholders}` in its strings filled from
    `fields` and, where its kind has one, readOnly set.

    Raises:
        ValueError: not one volume kind of SOURCE_KINDS; `key` names the setting.
    """
    if len(source) != 1 or next(iter(source)) not in SOURCE_KINDS:
        raise ValueError(f"{key}: a volume source is one of {', '.join(SOURCE_KINDS)}, not {source!r}")
    (kind, spec), = source.items()
    spec = {k: v.format(**fields) if isinstance(v, str) else v for k, v in spec.items()}
    if kind in READ_ONLY_KINDS:
        spec["readOnly"] = True
    return {kind: spec}


def _peer(pod_selector: dict, namespace_selector: dict) -> dict:
    peer = {"podSelector": {"matchLabels": dict(pod_selector)}}
    if namespace_selector:  # omitted: the sandbox's namespace (an empty selector would be every namespace)
        peer["namespaceSelector"] = {"matchLabels": dict(namespace_selector)}
    return peer


def network_policy(name: str, pod_labels: dict, server_port: int, egress: list[dict], ingress_from: list[dict]) -> dict:
    """The NetworkPolicy of one sandbox pod: both directions denied but for the rules given.

    Args:
        pod_labels: labels that select the sandbox's pod and no other.
        egress: [{pod_selector, namespace_selector ({}: the same namespace), ports}] the sandbox may reach, TCP.
        ingress_from: [{pod_selector, namespace_selector}] that may reach the sandbox's server port.
    """
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": dict(pod_labels)},
        "spec": {
            "podSelector": {"matchLabels": dict(pod_labels)},
            "policyTypes": ["Ingress", "Egress"],
            "egress": [{"to": [_peer(e["pod_selector"], e["namespace_selector"])],
                        "ports": [{"protocol": "TCP", "port": p} for p in e["ports"]]} for e in egress],
            "ingress": [{"from": [_peer(i["pod_selector"], i["namespace_selector"]) for i in ingress_from],
                         "ports": [{"protocol": "TCP", "port": server_port}]}],
        },
    }


async def by_address(url: str) -> str:
    """`url` with its host name replaced by the IPv4 address the hub finds for it now.

    Raises:
        WorkbenchError: the name does not resolve.
    """
    parts = urlsplit(url)
    try:
        ipaddress.ip_address(parts.hostname)
        return url
    except ValueError:
        pass
    try:
        found = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port, family=socket.AF_INET,
                                                             type=socket.SOCK_STREAM)
    except OSError as e:
        raise WorkbenchError(f"the hub cannot find the address of {parts.hostname} ({url}): {e}",
                             "check the service's name in the hub's configuration") from None
    netloc = found[0][4][0] + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class WorkbenchKubeSpawner(profile_rules.ProfileChoice, KubeSpawner):
    """A sandbox pod per server: approved datasets at /data/<id> (read-only), a home claim, no way out."""

    catalog_url = Unicode(help="SQLAlchemy URL of the workbench catalog (grants, audit).").tag(config=True)
    audit_key_file = Unicode("", help="The audit trail's key file (default: beside a SQLite catalog).").tag(config=True)
    profiles = Dict(help="Resource profiles: name -> {display, cpu, memory, gpus}.").tag(config=True)
    default_profile = Unicode("standard", help="Profile used when none is chosen.").tag(config=True)
    offer_gpus = Bool(False, help="Offer the GPU profiles (the cluster has nodes with nvidia.com/gpu).").tag(config=True)
    tmp_size = Unicode("1Gi", help="Size of the in-memory /tmp of a sandbox.").tag(config=True)
    state_dir = Unicode("", help="The deployment's state directory: no mounted dataset may be in it or above it "
                                 "(checked again at every spawn).").tag(config=True)
    federation_url = Unicode("", help="URL of the federation service (by name: sandboxes get it by address).").tag(
        config=True)
    portal_url = Unicode("", help="URL of the portal's API (by name: sandboxes get it by address).").tag(config=True)
    material = List(List(Unicode()), help="[folder in the image, folder in the home] pairs delivered at each start "
                                          "(as WorkbenchSpawner.material).").tag(config=True)
    dataset_volume = Dict({"persistentVolumeClaim": {"claimName": "workbench-dataset-{dataset}"}}, help=(
        "Volume source of an approved dataset, one of persistentVolumeClaim, nfs, csi, hostPath; `{dataset}` is its "
        "id and `{path}` its registered folder (e.g. {'nfs': {'server': 'files', 'path': '{path}'}}). readOnly is "
        "set on the source and the mount whatever is written here.")).tag(config=True)
    dataset_volumes = Dict(help="dataset id -> its volume source, over dataset_volume for that dataset.").tag(
        config=True)
    folder_volume = Dict({"hostPath": {"path": "{path}", "type": "Directory"}}, help=(
        "Volume source of the hub's other folders a sandbox reads (the AI tools, a dashboard's notebook, a "
        "session's material); `{path}` is the folder on the hub. Mounted read-only.")).tag(config=True)
    hub_pod_selector = Dict({"app": "jupyterhub", "component": "hub"}, help=(
        "Labels of the hub's pod: the only pod a sandbox reaches, on hub_ports, besides the federation's.")).tag(
        config=True)
    hub_namespace_selector = Dict(help="Labels of the hub's namespace; empty: the sandbox's own.").tag(config=True)
    hub_ports = List(Integer(), [8081], help="Ports of the hub's pod a sandbox may reach: the hub API and the "
                                             "services in that pod it calls (the portal).").tag(config=True)
    federation_pod_selector = Dict({"app": "jupyterhub", "component": "hub"}, help=(
        "Labels of the federation service's pod (by default the hub's: a managed service runs there).")).tag(
        config=True)
    federation_namespace_selector = Dict(help="Labels of the federation service's namespace; empty: the "
                                              "sandbox's own.").tag(config=True)
    federation_ports = List(Integer(), [], help="Ports of the federation service a sandbox may reach.").tag(config=True)
    proxy_pod_selector = Dict({"app": "jupyterhub", "component": "proxy"}, help=(
        "Labels of the proxy's pod, which (with the hub) alone may reach a sandbox.")).tag(config=True)

    _mounts: dict = {}  # dataset id -> host folder of the current start (from its mount plan)
    _material: list = []
    _kind_env: dict = {}
    _service_urls: tuple = ("", "")  # federation and portal URLs by address, of the current start

    @default("pvc_name_template")
    def _pvc_name_template(self):  # as the docker homes: a session's server has a home of its own
        return "workbench-home-{user_server}"

    @default("storage_pvc_ensure")
    def _storage_pvc_ensure(self):
        return True

    @validate("hub_pod_selector", "federation_pod_selector", "proxy_pod_selector")
    def _selector_not_empty(self, proposal):
        if not proposal.value:  # an empty selector picks every pod of the namespace
            raise ValueError(f"WorkbenchKubeSpawner.{proposal.trait.name}: give the labels of one pod, not {{}}")
        return proposal.value

    @validate("hub_ports", "federation_ports")
    def _ports_in_range(self, proposal):
        bad = [p for p in proposal.value if not 0 < p < 65536]
        if bad:
            raise ValueError(f"WorkbenchKubeSpawner.{proposal.trait.name}: {bad} are not TCP ports")
        return proposal.value

    @validate("dataset_volume", "folder_volume")
    def _one_source(self, proposal):
        read_only_source(proposal.value, f"WorkbenchKubeSpawner.{proposal.trait.name}", dataset="", path="")
        return proposal.value

    @validate("dataset_volumes")
    def _each_one_source(self, proposal):
        for dataset, source in proposal.value.items():
            read_only_source(source, f"WorkbenchKubeSpawner.dataset_volumes[{dataset!r}]", dataset="", path="")
        return proposal.value

    def available_profiles(self) -> dict:
        return {name: p for name, p in self.profiles.items() if self.offer_gpus or not int(p.get("gpus", 0))}

    async def load_user_options(self):
        """The workbench's profiles are applied by apply_plan; KubeSpawner's profile_list is not used."""

    async def apply_plan(self) -> None:
        """Turn this start's plan into the pod: volumes, mounts, limits and the lockdown. start()
        calls it first; a test calls it and then get_pod_manifest(), with no cluster.

        Raises:
            RuntimeError: the spawn is refused (unknown profile, a dataset that cannot be mounted,
                a name that does not resolve), with the message the user sees.
        """
        try:
            hub_api = urlsplit(self.hub_connect_url or self.hub.api_url)
            self.hub_connect_url = await by_address(f"{hub_api.scheme}://{hub_api.netloc}")
            self._service_urls = tuple([await by_address(url) if url else "" for url in (self.federation_url,
                                                                                         self.portal_url)])
            plan, extra = await self._in_catalog(plan_and_open_mount, self.user.name, self.name, self.pod_name,
                                                 self.profile_name, self.profiles, self.pvc_name, self.state_dir)
        except (ValueError, WorkbenchError) as e:
            raise user_error(str(e)) from None
        self._mounts, self._kind_env = plan.datasets, extra["env"]
        self._material = [*self.material, *extra["material"]] if extra["home"] else []
        self._apply_limits(plan.limits)
        self.storage_pvc_ensure = extra["home"]  # a dashboard: no home, nothing of its owner's
        volumes, mounts = self._volumes(plan, extra)
        self.volumes, self.volume_mounts = volumes, mounts
        self._apply_lockdown()

    def _volumes(self, plan, extra) -> tuple[list, list]:
        home = ({"persistentVolumeClaim": {"claimName": plan.home_volume}} if extra["home"] else
                {"emptyDir": {"medium": "Memory", "sizeLimit": DASHBOARD_HOME_SIZE}})
        volumes = [{"name": "home", **home},
                   {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": self.tmp_size}},
                   {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": RUN_SIZE}}]
        mounts = [{"name": "home", "mountPath": HOME}, {"name": "tmp", "mountPath": "/tmp"},
                  {"name": "run", "mountPath": "/run"}]
        read_only = [(f"dataset-{safe_slug(ds)}", f"{DATA_ROOT}/{ds}",
                      read_only_source(self.dataset_volumes.get(ds, self.dataset_volume),
                                       "WorkbenchKubeSpawner.dataset_volumes", dataset=ds, path=path))
                     for ds, path in sorted(plan.datasets.items())]
        folders = ([(plan.tools, TOOLS_ROOT)] if plan.tools else []) + [
            (path, target) for target, path in plan.read_only_paths.items() if target.startswith(INDEX_ROOT)] + [
            (folder, bind["bind"]) for folder, bind in extra["binds"].items()]
        read_only += [("tools" if target == TOOLS_ROOT else f"folder-{i}", target,
                       read_only_source(self.folder_volume, "WorkbenchKubeSpawner.folder_volume", path=folder))
                      for i, (folder, target) in enumerate(folders)]
        for name, target, source in read_only:
            volumes.append({"name": name, **source})
            mounts.append({"name": name, "mountPath": target, "readOnly": True})
        return volumes, mounts

    def _apply_limits(self, limits: dict) -> None:
        # Requests equal to the limits: what a profile offers is there when the pod runs.
        self.mem_limit = self.mem_guarantee = limits["mem_limit"]
        self.cpu_limit = self.cpu_guarantee = limits["cpu_limit"]
        gpus = {"nvidia.com/gpu": str(limits["gpus"])} if limits["gpus"] else {}
        self.extra_resource_limits = self.extra_resource_guarantees = gpus

    def _apply_lockdown(self) -> None:
        """Set over whatever config says: every container of the pod is the sandbox's."""
        self.uid, self.gid, self.fs_gid = SANDBOX_UID, SANDBOX_GID, SANDBOX_GID
        self.container_security_context = dict(CONTAINER_LOCKDOWN)  # over privileged, allow_privilege_escalation
        self.pod_security_context = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        self.service_account, self.automount_service_account_token = None, False
        self.init_containers, self.extra_containers, self.extra_container_config = [], [], {}
        self.extra_pod_config = {**self.extra_pod_config, **POD_LOCKDOWN}

    def get_env(self):
        env = super().get_env()
        env.update(sandbox_env(self._mounts, *self._service_urls, self._material, self._kind_env))
        return env

    def get_network_policy_manifest(self) -> dict:
        """This server's NetworkPolicy (network_policy), named as its pod."""
        labels = self._build_pod_labels({})
        own = {k: labels[k] for k in ("component", "hub.jupyter.org/username", "hub.jupyter.org/servername")}
        return network_policy(
            self.pod_name, own, self.port,
            egress=[{"pod_selector": self.hub_pod_selector, "namespace_selector": self.hub_namespace_selector,
                     "ports": self.hub_ports},
                    {"pod_selector": self.federation_pod_selector,
                     "namespace_selector": self.federation_namespace_selector, "ports": self.federation_ports}],
            ingress_from=[{"pod_selector": self.proxy_pod_selector, "namespace_selector": self.hub_namespace_selector},
                          {"pod_selector": self.hub_pod_selector, "namespace_selector": self.hub_namespace_selector}])

    async def ensure_network_policy(self) -> None:
        """Create or replace this server's NetworkPolicy, before its pod exists."""
        api, body = shared_client("NetworkingV1Api"), self.get_network_policy_manifest()
        try:
            await api.create_namespaced_network_policy(self.namespace, body)
        except ApiException as e:
            if e.status != 409:
                raise
            await api.replace_namespaced_network_policy(self.pod_name, self.namespace, body)

    async def start(self):
        await self.apply_plan()
        try:
            await self.ensure_network_policy()
        except ApiException as e:
            await self._in_catalog(record_stop, self.user.name, self.name, self.pod_name)
            raise user_error(f"your server's network could not be closed ({e.status} {e.reason}); "
                             "tell an operator") from None
        try:
            result = await super().start()
        except Exception:
            await self._in_catalog(record_stop, self.user.name, self.name, self.pod_name)
            raise
        lost = await self._in_catalog(lost_datasets, self.user.name, sorted(self._mounts))
        if lost:  # access ended while the pod started: it must not run with the dataset
            await self.stop(now=True)
            raise user_error(f"access to {', '.join(lost)} ended while your server was starting; "
                             "start it again to get the datasets you hold now")
        return result

    async def stop(self, now=False):
        await super().stop(now=now)
        try:
            await shared_client("NetworkingV1Api").delete_namespaced_network_policy(self.pod_name, self.namespace)
        except ApiException as e:
            if e.status != 404:
                raise
        await self._in_catalog(record_stop, self.user.name, self.name, self.pod_name)

    async def _in_catalog(self, fn, *args):
        return await in_catalog(self.catalog_url, fn, *args, key_file=self.audit_key_file or None)
