"""The sandbox network: an internal docker bridge with a fixed subnet, no traffic between containers,
and a firewall chain that lets sandboxes reach only the hub API (and the services named) on the host."""

import hashlib
import ipaddress
import subprocess

import docker
from docker.errors import DockerException, NotFound

from ..errors import WorkbenchError
from ..federation.settings import federation_settings


# Replies to connections the host opened into a sandbox (the hub's proxy, the hub's checks).
ESTABLISHED_RULE = "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"


def bridge_name(network: str) -> str:
    """A stable Linux interface name (≤ 15 chars) for the network's bridge."""
    return "wb" + hashlib.sha1(network.encode()).hexdigest()[:10]


def chain_name(network: str) -> str:
    return "WB-" + hashlib.sha1(network.encode()).hexdigest()[:10]


def sandbox_open_ports(settings: dict) -> list[int]:
    """Host ports a sandbox may reach on the bridge gateway: the hub API, the federation service
    and the portal (release requests), each of which checks the caller's hub token."""
    return [settings["hub"]["api_port"], federation_settings(settings).service_port, settings["hub"]["portal_port"]]


def gateway(subnet: str) -> str:
    """The bridge's address on the host: the first address of the subnet."""
    return str(next(ipaddress.ip_network(subnet).hosts()))


def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except DockerException as e:
        raise WorkbenchError(f"dockerd is not reachable ({e.__class__.__name__}: {e})",
                             "start it with scripts/ensure_dockerd.sh (or 'dockerd &') and retry") from None


def ensure_network(client: docker.DockerClient, name: str, subnet: str):
    """Create the internal, icc-off network with a fixed subnet, or check the existing one matches."""
    try:
        network = client.networks.get(name)
    except NotFound:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet, gateway=gateway(subnet))])
        return client.networks.create(
            name, driver="bridge", internal=True, ipam=ipam,
            options={"com.docker.network.bridge.enable_icc": "false",
                     "com.docker.network.bridge.name": bridge_name(name)},
            labels={"org.imaging-workbench.role": "sandbox"})
    problems = _network_problems(network.attrs, subnet)
    if problems:
        raise WorkbenchError(f"docker network '{name}' exists but {' and '.join(problems)}",
                             f"stop its containers and remove it ('docker network rm {name}'), then retry")
    return network


def _network_problems(attrs: dict, subnet: str) -> list[str]:
    configs = attrs.get("IPAM", {}).get("Config") or [{}]
    problems = []
    if not attrs.get("Internal"):
        problems.append("it is not internal")
    if configs[0].get("Subnet") != subnet:
        problems.append(f"its subnet is {configs[0].get('Subnet')}, not {subnet}")
    if attrs.get("Options", {}).get("com.docker.network.bridge.enable_icc") != "false":
        problems.append("containers on it can reach each other (icc on)")
    return problems


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise WorkbenchError("iptables is not installed", "run scripts/ensure_host.sh (apt-get install iptables)") from None
    if check and result.returncode != 0:
        raise WorkbenchError(f"iptables {' '.join(args)} failed: {result.stderr.strip()}",
                             "run as root on a host whose kernel has netfilter")
    return result


def ensure_firewall(network: str, subnet: str, open_ports: list[int]) -> None:
    """Sandboxes may open connections to the host only at gateway:open_ports; the rest is dropped.

    Docker's internal network already blocks routing out; this closes the host itself, where
    anything listening on 0.0.0.0 or the bridge address would otherwise be reachable.
    """
    chain, bridge, gw = chain_name(network), bridge_name(network), gateway(subnet)
    if _iptables("-n", "-L", chain, check=False).returncode != 0:
        _iptables("-N", chain)
    _iptables("-F", chain)
    _iptables("-A", chain, *ESTABLISHED_RULE.split())
    for port in sorted(set(open_ports)):
        _iptables("-A", chain, "-p", "tcp", "-d", gw, "--dport", str(port), "-j", "ACCEPT")
    _iptables("-A", chain, "-j", "DROP")
    jump = ("INPUT", "-i", bridge, "-j", chain)
    if _iptables("-C", *jump, check=False).returncode != 0:
        _iptables("-I", *jump)


def missing_walls(client: docker.DockerClient, network: str, subnet: str, open_ports: list[int]) -> list[str]:
    """What is missing of a sandbox's walls, one line each (empty: all stand): the internal,
    icc-off network with its subnet, the firewall chain with exactly the open ports and a final
    DROP, and the jump from INPUT on the bridge to it. Checks only; changes nothing."""
    try:
        problems = [f"network '{network}': {p}" for p in _network_problems(client.networks.get(network).attrs, subnet)]
    except NotFound:
        problems = [f"the sandbox network '{network}' does not exist"]
    chain, bridge, gw = chain_name(network), bridge_name(network), gateway(subnet)
    listing = _iptables("-S", chain, check=False)
    if listing.returncode != 0:
        return [*problems, f"the firewall chain {chain} does not exist"]
    rules = [line.split(None, 2)[2] for line in listing.stdout.splitlines() if line.startswith(f"-A {chain} ")]
    allowed = {f"-d {gw}/32 -p tcp -m tcp --dport {port} -j ACCEPT" for port in open_ports}
    extra = [r for r in rules[:-1] if r not in allowed and r != ESTABLISHED_RULE]
    if not rules or rules[-1] != "-j DROP":
        problems.append(f"the firewall chain {chain} does not end by dropping everything else")
    if extra or not allowed <= set(rules):
        problems.append(f"the firewall chain {chain} does not open exactly ports {sorted(open_ports)}")
    if _iptables("-C", "INPUT", "-i", bridge, "-j", chain, check=False).returncode != 0:
        problems.append(f"no jump from INPUT on {bridge} to the firewall chain {chain}")
    return problems


def drop_default_route(pid: int, name: str) -> None:
    """Remove the default route of the container whose process is `pid` (`name`, for the error).

    Docker gives a container on an internal network a default route via the bridge; a sandbox
    needs none (the hub and the services are on its own subnet), so it goes: traffic for anywhere
    else fails at once, inside the sandbox. Needs root on the host (nsenter).

    Raises:
        WorkbenchError: nsenter or ip failed, or the route is still there.
    """
    in_netns = ["nsenter", "-t", str(pid), "-n", "ip", "route"]
    try:
        flush = subprocess.run([*in_netns, "flush", "exact", "0.0.0.0/0"], capture_output=True, text=True)
        show = subprocess.run([*in_netns, "show", "default"], capture_output=True, text=True)
    except FileNotFoundError:
        raise WorkbenchError("nsenter or ip is not installed on the host",
                             "install util-linux and iproute2 there (scripts/ensure_host.sh)") from None
    if flush.returncode != 0 or show.returncode != 0:
        raise WorkbenchError(f"the default route of {name} could not be removed: "
                             f"{(flush.stderr or show.stderr).strip()}", "the hub must run as root")
    if show.stdout.strip():
        raise WorkbenchError(f"the default route of {name} is still there", "")


def remove_firewall(network: str) -> None:
    chain, bridge = chain_name(network), bridge_name(network)
    while _iptables("-D", "INPUT", "-i", bridge, "-j", chain, check=False).returncode == 0:
        pass
    _iptables("-F", chain, check=False)
    _iptables("-X", chain, check=False)
