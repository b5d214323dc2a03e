"""The red team's shared pieces: the box its hub lives in, the ledger of attempts, twins' settings,
and the host-side helpers (network namespaces, routes, firewall openings, host addresses and
listeners, connection probes). The fixtures are in conftest.py; the attempts in the test modules."""

import json
import socket
import subprocess
from dataclasses import dataclass

from imaging_workbench.hub.network import bridge_name, chain_name

from ..sandboxes import Box, python_in


BOX = Box(network="wbtest-red-sandbox", subnet="172.29.251.0/24", prefix="wbtest-red")
MiB = 2**20
HOME_SIZE = 64 * MiB  # small, so that filling it takes a second
TMP_SIZE = 64 * MiB
PAST = 16 * MiB  # how far past a size limit a filling attempt writes
# The twin of the hub API attempts: a token with the scopes that a sandbox's token lacks.
WIDENED_SCOPES = ["list:users", "read:users", "admin:users", "admin:servers", "access:servers", "tokens",
                  "list:groups", "read:groups", "admin:groups", "groups", "proxy"]


def hub_config(images_dir, widened_token: str) -> str:
    return f'''
c.WorkbenchSpawner.home_size = {HOME_SIZE}
c.WorkbenchSpawner.home_images_dir = {str(images_dir)!r}
c.WorkbenchSpawner.tmp_size = "{TMP_SIZE // MiB}m"
c.JupyterHub.services.append({{"name": "red-widened", "api_token": {widened_token!r}}})
c.JupyterHub.load_roles.append({{"name": "red-widened", "services": ["red-widened"], "scopes": {WIDENED_SCOPES!r}}})
'''


# ---- the ledger: every attempt, whether it was refused, whether its twin got through

@dataclass(frozen=True)
class Attempt:
    name: str
    twin: str  # what the twin lacks
    twin_got_through: bool
    refused: bool
    evidence: str  # what the sandbox and the twin answered


LEDGER: list[Attempt] = []
NOTES: list[str] = []  # what was found that is no attempt (ptrace of one's own processes)


def judge(attempts: list[Attempt]) -> None:
    """Record `attempts`; fail naming each that got through or whose twin did not."""
    LEDGER.extend(attempts)
    wrong = [f"{a.name}: {'GOT THROUGH' if not a.refused else 'its twin (' + a.twin + ') did not get through'}"
             f" [{a.evidence}]" for a in attempts if not (a.refused and a.twin_got_through)]
    assert not wrong, "\n".join(wrong)


def twin_settings(sandbox) -> dict:
    """docker run settings of a container like `sandbox`: image, user, and every wall it has."""
    host = sandbox.attrs["HostConfig"]
    return {"image": sandbox.attrs["Config"]["Image"], "user": "1000", "read_only": host["ReadonlyRootfs"],
            "tmpfs": host["Tmpfs"], "cap_drop": host["CapDrop"], "security_opt": host["SecurityOpt"],
            "pids_limit": host["PidsLimit"], "mem_limit": host["Memory"], "memswap_limit": host["MemorySwap"],
            "shm_size": host["ShmSize"], "dns": host["Dns"], "network": BOX.network}


def in_netns(container, *command: str) -> None:
    """Run a host command in `container`'s network namespace (the container itself holds no caps)."""
    subprocess.run(["nsenter", "-t", str(container.attrs["State"]["Pid"]), "-n", *command],
                   check=True, capture_output=True, text=True)


def sandbox_ip(container) -> str:
    return container.attrs["NetworkSettings"]["Networks"][BOX.network]["IPAddress"]


def bridge_link_local() -> str | None:
    """The host's link-local IPv6 address on the sandbox bridge, if it has one."""
    return next((a.address for a in host_addresses() if a.ifname == bridge_name(BOX.network)
                 and a.scope == "link" and ":" in a.address), None)


def give_route(container, global_address: bool = False) -> None:
    """Give a twin what a sandbox lacks: IPv6 on its interface (usable at once: no duplicate-address
    probe), default routes to the host (IPv4 via the bridge gateway, IPv6 via the bridge's link-local
    address) and, with `global_address`, an address of the IPv6 documentation prefix. The host's
    answers to a twin go back to its sandbox-network or link-local address, so they stay on the
    bridge; the twin with the global address sends nothing."""
    in_netns(container, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0",
             "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.eth0.disable_ipv6=0")
    in_netns(container, "ip", "route", "replace", "default", "via", BOX.gateway)
    if global_address:
        in_netns(container, "ip", "-6", "addr", "add", "2001:db8:5ad::2/64", "dev", "eth0", "nodad")
    gateway6 = bridge_link_local()
    via = ["via", gateway6] if gateway6 else []
    in_netns(container, "ip", "-6", "route", "replace", "default", *via, "dev", "eth0")


class FirewallOpened:
    """The sandbox firewall chain lets one source address through, until exit."""

    def __init__(self, address: str):
        self.rule = [chain_name(BOX.network), "-s", f"{address}/32", "-j", "ACCEPT"]

    def __enter__(self):
        subprocess.run(["iptables", "-w", "-I", self.rule[0], "1", *self.rule[1:]], check=True)

    def __exit__(self, *exc):
        subprocess.run(["iptables", "-w", "-D", *self.rule], check=True)


# ---- 2. listeners on every address of the host

@dataclass(frozen=True)
class HostAddress:
    ifname: str
    address: str
    scope: str  # "host", "link" or "global"
    master: str | None  # the bridge an interface is a port of


def host_addresses() -> list[HostAddress]:
    """Every IPv4 and IPv6 address of this host's interfaces, from `ip -j addr`."""
    links = json.loads(subprocess.run(["ip", "-j", "addr"], check=True, capture_output=True, text=True).stdout)
    return [HostAddress(link["ifname"], a["local"], a["scope"], link.get("master")) for link in links
            for a in link.get("addr_info", []) if a.get("family") in ("inet", "inet6") and not a.get("tentative")]


class Listener:
    """A TCP listener of the test on one host address (a port the kernel picks); `accepted()`
    takes every connection waiting and says how many it has taken in all."""

    def __init__(self, address: str, ifname: str | None = None):
        v6 = ":" in address
        self.sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
        if v6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            scope = socket.if_nametoindex(ifname) if address.startswith("fe80") else 0
            self.sock.bind((address, 0, 0, scope))
        else:
            self.sock.bind((address, 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.taken = 0

    def accepted(self) -> int:
        while True:
            try:
                self.sock.accept()[0].close()
            except BlockingIOError:
                return self.taken
            self.taken += 1


CONNECT_PROBE = r'''
import errno, json, socket, sys, threading
results = {}
def probe(key, address, port, interface):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    where = (address, port, 0, socket.if_nametoindex(interface)) if address.startswith("fe80") else (address, port)
    try:
        with socket.socket(family) as s:
            s.settimeout(3)
            s.connect(where)
        results[key] = "connected"
    except OSError as e:
        results[key] = "blocked: " + (errno.errorcode.get(e.errno) or type(e).__name__)
threads = [threading.Thread(target=probe, args=target) for target in json.loads(sys.argv[1])]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(results))
'''


def connect_from(container, targets: list[tuple]) -> dict:
    """{key: "connected" | "blocked: <errno>"} for (key, address, port, interface) targets."""
    if not targets:
        return {}
    code, out = python_in(container, CONNECT_PROBE, json.dumps(targets), timeout=30)
    assert code == 0, out
    return json.loads(out)


HOST_NETNS, IPV6_OFF, FIREWALL = ("the host's network namespace", "IPv6 off (the twin has it on, with a route)",
                                  "the firewall chain")
