"""Red team: from inside a sandbox, as its user (uid 1000) with its server's own token, try to get
out. Every attempt must be refused, and the sandboxes and the hub keep working after each test.

So that no attempt passes by testing nothing, each first runs against a twin that lacks the one
wall it tests, and must get through there: a container of the sandbox's image and user with the
sandbox's settings but one (`twin`), or alice's own sandbox holding a widened token.

The module runs a hub of its own on its own network (`wbtest-red-sandbox`), apart from conftest's
`sandbox_hub`. No test sends a packet to an address that is not this machine's or its
containers': listeners are on the host's own addresses, routes given to twins lead only there.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
from dataclasses import dataclass

import pytest
import requests

from imaging_workbench.hub.network import bridge_name, chain_name

from ..waiting import wait_for
from .sandboxes import Box, exec_in, own_sandbox_hub, python_in, start_servers

pytestmark = pytest.mark.docker

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


@pytest.fixture(scope="module", autouse=True)
def red_team_summary(request):
    yield
    refused = sum(a.refused for a in LEDGER)
    shown = sum(a.twin_got_through for a in LEDGER)
    lines = [f"red team: {len(LEDGER)} attempts, {refused} refused; "
             f"{shown} shown to succeed against their weakened sandbox", *NOTES]
    if request.config.option.verbose > 0 or refused < len(LEDGER) or shown < len(LEDGER):
        lines += [f"  {'refused ' if a.refused else 'THROUGH '} {'twin-ok ' if a.twin_got_through else 'TWIN-NO '}"
                  f"{a.name}  (twin: {a.twin})  {a.evidence[:200]}" for a in LEDGER]
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print("\n" + "\n".join(lines))


# ---- the hub, the two sandboxes, the twins

@pytest.fixture(scope="module")
def red_hub(tmp_path_factory, docker):
    workdir = tmp_path_factory.mktemp("redteam")
    images, widened = workdir / "homes", secrets.token_hex(16)
    with own_sandbox_hub(workdir, docker, BOX, hub_config(images, widened), images_dir=images) as hub:
        hub.widened_token = widened
        start_servers(hub, ["alice", "bob"])
        hub.api("POST", "/users/carol")  # known to the hub, without a server
        hub.alice_token = hub.user_token("alice")  # the host's check that her server still answers
        yield hub


@pytest.fixture(scope="module")
def alice(red_hub, docker):
    return docker.containers.get(BOX.container("alice"))


@pytest.fixture(scope="module")
def bob(red_hub, docker):
    return docker.containers.get(BOX.container("bob"))


@pytest.fixture(autouse=True)
def sandboxes_and_hub_keep_working(red_hub, alice, bob):
    """After each test: both sandboxes run a command, both servers are up, alice's answers."""
    yield
    for sandbox in (alice, bob):
        assert exec_in(sandbox, "echo alive") == (0, "alive\n"), sandbox.name
    for user in ("alice", "bob"):
        assert red_hub.api("GET", f"/users/{user}").json()["servers"][""]["ready"], user
    r = requests.get(f"{red_hub.url}/user/alice/api/status", timeout=30,
                     headers={"Authorization": f"token {red_hub.alice_token}"})
    assert r.status_code == 200, r.text


def twin_settings(sandbox) -> dict:
    """docker run settings of a container like `sandbox`: image, user, and every wall it has."""
    host = sandbox.attrs["HostConfig"]
    return {"image": sandbox.attrs["Config"]["Image"], "user": "1000", "read_only": host["ReadonlyRootfs"],
            "tmpfs": host["Tmpfs"], "cap_drop": host["CapDrop"], "security_opt": host["SecurityOpt"],
            "pids_limit": host["PidsLimit"], "mem_limit": host["Memory"], "memswap_limit": host["MemorySwap"],
            "shm_size": host["ShmSize"], "dns": host["Dns"], "network": BOX.network}


@pytest.fixture
def twin(docker, alice):
    """Start a twin of alice's sandbox: `twin(kind, **changes)` with the one wall `changes` drop."""
    started = []

    def start(kind: str, **changes):
        container = docker.containers.run(name=f"{BOX.prefix}-twin-{kind}", detach=True,
                                          **{"command": ["sleep", "infinity"], **twin_settings(alice), **changes})
        started.append(container)
        container.reload()
        return container

    yield start
    for container in started:
        container.remove(force=True)


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


# ---- 1. the hub API beyond the token's scopes

API_PROBE = r'''
import json, os, sys, urllib.error, urllib.request
url, token = os.environ["JUPYTERHUB_API_URL"], os.environ.get("RED_TOKEN") or os.environ["JUPYTERHUB_API_TOKEN"]
out = []
for method, path, body in json.loads(sys.argv[1]):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Authorization": "token " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            out.append([r.status, r.read().decode()[:3000]])
    except urllib.error.HTTPError as e:
        out.append([e.code, e.read().decode()[:300]])
print(json.dumps(out))
'''

# (what is tried, the sandbox's call, the twin's call when it differs). Where the same call by the
# twin would start or stop a server, the twin makes it where it changes nothing (bob's server is
# already running, carol has none): getting past the hub's scope check is getting through.
HUB_ATTEMPTS = [
    ("hub API: list every user", ("GET", "/users", None), None),
    ("hub API: read another user", ("GET", "/users/bob", None), None),
    ("hub API: start another user's server", ("POST", "/users/carol/server", {}), ("POST", "/users/bob/server", {})),
    ("hub API: stop another user's server", ("DELETE", "/users/bob/server", None),
     ("DELETE", "/users/carol/server", None)),
    ("hub API: read another user's tokens", ("GET", "/users/bob/tokens", None), None),
    ("hub API: mint a token for another user's server",
     ("POST", "/users/bob/tokens", {"scopes": ["access:servers!server=bob/"], "note": "red team"}), None),
    ("hub API: mint oneself a token", ("POST", "/users/alice/tokens", {"note": "red team"}), None),
    ("hub API: create a user", ("POST", "/users/mallory", None), None),
    ("hub API: make oneself an admin", ("PATCH", "/users/alice", {"admin": True}),
     ("PATCH", "/users/carol", {"admin": False})),
    ("hub API: list groups", ("GET", "/groups", None), None),
    ("hub API: create a group", ("POST", "/groups/red-team-probe", None), None),
    ("hub API: join a group", ("POST", "/groups/red-team-probe/users", {"users": ["alice"]}), None),
    ("hub API: read the proxy's routes", ("GET", "/proxy", None), None),
]
DENIED = (401, 403, 404)


def call_hub_from(sandbox, calls, token: str | None = None) -> list:
    code, out = python_in(sandbox, API_PROBE, json.dumps(calls), environment={"RED_TOKEN": token} if token else None)
    assert code == 0, out
    return json.loads(out)


def opens_bobs_server(hub, answer: list) -> bool:
    """A token the twin minted opens bob's server through the proxy, not only exists."""
    if answer[0] != 201:
        return False
    r = requests.get(f"{hub.url}/user/bob/api/status", timeout=30,
                     headers={"Authorization": f"token {json.loads(answer[1])['token']}"})
    return r.status_code == 200


def test_the_hub_api_refuses_all_beyond_the_servers_own_scopes(red_hub, alice):
    hub = red_hub
    by_twin = call_hub_from(alice, [twin or real for _, real, twin in HUB_ATTEMPTS], hub.widened_token)
    answers = call_hub_from(alice, [real for _, real, _ in HUB_ATTEMPTS])
    attempts = []
    for (name, _, _), answer, twin_answer in zip(HUB_ATTEMPTS, answers, by_twin):
        through = twin_answer[0] not in DENIED
        if name == "hub API: mint a token for another user's server":
            through = opens_bobs_server(hub, twin_answer)
        attempts.append(Attempt(name, "a token with the scopes the sandbox's token lacks", through,
                                answer[0] in DENIED, f"sandbox {answer}, twin {twin_answer[0]}"))
    judge(attempts)
    assert not hub.api("GET", "/users/alice").json()["admin"]


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


def twin_wall(a: HostAddress) -> str:
    """The wall a twin lacks to reach `a`. Loopback and other links' link-local addresses are out of
    any network's reach, so their twin shares the host's network namespace. A sandbox reaches the
    host's other IPv4 addresses over its default route, where the firewall chain stops it; IPv6 is
    off in a sandbox, and no firewall rule covers it."""
    if a.scope == "host" or (a.scope == "link" and a.ifname != bridge_name(BOX.network)):
        return HOST_NETNS
    return IPV6_OFF if ":" in a.address else FIREWALL


class HostListeners:
    """A listener on every address of the host (`ip -j addr`) and on each wildcard address; each
    address is a target twice, at its own listener's port and at its family's wildcard listener's."""

    def __init__(self):
        self.skipped = []
        self.on = {}
        for a in host_addresses():
            # Other tests' containers come and go: their veths (not ours) could vanish mid-test.
            if a.ifname.startswith("veth") and a.master != bridge_name(BOX.network):
                self.skipped.append(f"{a.address} (another network's veth)")
            else:
                self.on[a] = Listener(a.address, a.ifname)
        self.anywhere = {4: Listener("0.0.0.0"), 6: Listener("::")}

    def targets(self, addresses, from_host_netns: bool = False) -> list[tuple]:
        """(key, address, port, interface) for each address: a sandbox reaches link-local
        addresses through its eth0, a twin in the host's network namespace through their own."""
        return [(f"{a.address} port {port}", a.address, port, a.ifname if from_host_netns else "eth0")
                for a in addresses for port in (self.on[a].port, self.anywhere[6 if ":" in a.address else 4].port)]

    def taken(self) -> dict:
        return {**{a: listener.accepted() for a, listener in self.on.items()},
                **{v: listener.accepted() for v, listener in self.anywhere.items()}}

    def close(self):
        for listener in [*self.on.values(), *self.anywhere.values()]:
            listener.sock.close()


def twins_connect(twin, listeners: HostListeners, bob_ip: str) -> dict:
    """Every target from the twin that lacks its wall; and a note if IPv6 needs no opening."""
    by_wall = {w: [a for a in listeners.on if twin_wall(a) == w] for w in {twin_wall(a) for a in listeners.on}}
    by_twin = connect_from(twin("host-netns", network_mode="host", network=None, dns=None),
                           [*listeners.targets(by_wall.get(HOST_NETNS, []), True), ("bob-server", bob_ip, 8888, "")])
    routed = twin("routed")
    give_route(routed)
    over_ipv6 = connect_from(routed, listeners.targets(by_wall.get(IPV6_OFF, [])))
    if over_ipv6 and all(result == "connected" for result in over_ipv6.values()):
        NOTES.append("IPv6: no ip6tables rule guards the host; a twin with IPv6 on reached the host's IPv6 listeners "
                     "(the bridge's link-local address too) with the sandbox firewall chain in place")
    with FirewallOpened(sandbox_ip(routed)):
        by_twin.update(over_ipv6, **connect_from(routed, listeners.targets(by_wall.get(FIREWALL, []))))
    return by_twin


def test_no_listener_on_any_host_address_is_reachable(alice, bob, twin):
    listeners = HostListeners()
    try:
        by_twin = twins_connect(twin, listeners, sandbox_ip(bob))
        taken_by_twins = listeners.taken()
        found = connect_from(alice, [*listeners.targets(listeners.on), ("bob-server", sandbox_ip(bob), 8888, "")])
        taken, still_there = listeners.taken(), {a.address for a in host_addresses()}
        attempts = []
        for a in listeners.on:
            keys = [key for key, *_ in listeners.targets([a])]
            if a.address not in still_there and not all(by_twin[k] == "connected" for k in keys):
                listeners.skipped.append(f"{a.address} (gone during the test)")
                continue
            attempts.append(Attempt(f"listeners: connect to {a.address} ({a.ifname})", twin_wall(a),
                                    all(by_twin[k] == "connected" for k in keys) and taken_by_twins[a] > 0,
                                    all(found[k].startswith("blocked") for k in keys) and taken[a] == taken_by_twins[a],
                                    f"sandbox {[found[k] for k in keys]}, twin {[by_twin[k] for k in keys]}"))
        attempts.append(Attempt("listeners: reach another user's server at its address", HOST_NETNS,
                                by_twin["bob-server"] == "connected", found["bob-server"].startswith("blocked"),
                                f"sandbox {found['bob-server']}, twin {by_twin['bob-server']}"))
        attempts.append(Attempt("listeners: connect to the wildcard listeners (0.0.0.0, ::)", "as each address",
                                taken_by_twins[4] > 0 and taken_by_twins[6] > 0,
                                (taken[4], taken[6]) == (taken_by_twins[4], taken_by_twins[6]),
                                f"taken from the twins {taken_by_twins[4]}, {taken_by_twins[6]}; "
                                f"in all {taken[4]}, {taken[6]}"))
        if listeners.skipped:
            NOTES.append(f"listeners: skipped {', '.join(listeners.skipped)}")
        judge(attempts)
    finally:
        listeners.close()


# ---- 3. raw sockets

RAW_SOCKETS = r'''
import json, socket
kinds = {"raw IPv4": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
         "raw IPv6": (socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
         "packet": (socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))}
out = {}
for kind, args in kinds.items():
    try:
        socket.socket(*args).close()  # created and closed: nothing is sent
        out[kind] = "created"
    except OSError as e:
        out[kind] = "refused: " + type(e).__name__
print(json.dumps(out))
'''


def socket_kinds(container, user: str) -> dict:
    code, out = python_in(container, RAW_SOCKETS, user=user)
    assert code == 0, out
    return json.loads(out)


def test_raw_and_packet_sockets_cannot_be_created(alice, twin):
    # docker gives a process no effective capability unless the container runs as root (even one
    # run as root by `docker exec`): the twin runs as root with NET_RAW, lacking both walls.
    with_net_raw = socket_kinds(twin("net-raw", user="0", cap_add=["NET_RAW"]), user="0")
    as_user, as_root = socket_kinds(alice, "1000"), socket_kinds(alice, "0")
    judge([Attempt(f"raw sockets: {kind} socket {who}", "root with NET_RAW", with_net_raw[kind] == "created",
                   answers[kind].startswith("refused"), f"sandbox {answers[kind]}, twin {with_net_raw[kind]}")
           for who, answers in (("as the sandbox user", as_user), ("as root in the sandbox", as_root))
           for kind in with_net_raw])


# ---- 4. mounting

MOUNT = r'''
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
target = "/tmp/red-team-mount"
os.makedirs(target, exist_ok=True)
def refused():
    return "refused: " + os.strerror(ctypes.get_errno())
def attempt():
    if sys.argv[1] == "userns":  # a user namespace of one's own, where one is root, then mount
        uid, gid = os.getuid(), os.getgid()
        if libc.unshare(0x10000000 | 0x00020000) != 0:  # CLONE_NEWUSER | CLONE_NEWNS
            return refused()
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    if libc.mount(b"none", target.encode(), b"tmpfs", 0, b"size=1m") != 0:
        return refused()
    libc.umount2(target.encode(), 0)
    return "mounted"
print(json.dumps(attempt()))
'''


def mount_from(container, how: str, user: str) -> str:
    code, out = python_in(container, MOUNT, how, user=user)
    assert code == 0, out
    return json.loads(out)


def test_nothing_can_be_mounted(alice, twin):
    admin = twin("sys-admin", user="0", cap_add=["SYS_ADMIN"],
                 security_opt=["no-new-privileges", "seccomp=unconfined"])
    ways = [("mount a tmpfs as the sandbox user", "plain", "1000", "plain", "0"),
            ("mount a tmpfs as root in the sandbox", "plain", "0", "plain", "0"),
            ("mount a tmpfs in a user namespace of one's own", "userns", "1000", "userns", "1000")]
    attempts = []
    for name, how, user, twin_how, twin_user in ways:
        answer, twin_answer = mount_from(alice, how, user), mount_from(admin, twin_how, twin_user)
        attempts.append(Attempt(f"mount: {name}", "SYS_ADMIN (root) and the seccomp profile",
                                twin_answer == "mounted", answer.startswith("refused"),
                                f"sandbox {answer}, twin {twin_answer}"))
    judge(attempts)


# ---- 5. processes of other sandboxes and of the host

PROCESSES = r'''
import ctypes, json, os, sys
marker, pids = os.environ["RED_MARKER"], [int(p) for p in sys.argv[1].split(",")]
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
mine = {os.getpid(), os.getppid()}  # this probe and its `timeout`: their command lines hold the names sought
seen = [cmdline(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in mine]
out = {"another sandbox's process": any(marker in c for c in seen),
       "the host's processes": sorted({c for c in seen if "dockerd" in c or "jupyterhub -f" in c})[:3]}
for pid in pids:
    if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
        os.waitpid(pid, 0x40000000)  # __WALL: its stop
        out[str(pid)] = "attached to " + cmdline(pid)
        libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
    else:
        out[str(pid)] = "refused: " + os.strerror(ctypes.get_errno())
print(json.dumps(out))
'''

OWN_PTRACE = r'''
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
child = subprocess.Popen(["sleep", "30"])
if libc.ptrace(16, child.pid, None, None) == 0:
    os.waitpid(child.pid, 0x40000000)
    libc.ptrace(17, child.pid, None, None)
    print("allowed")
else:
    print("refused: " + os.strerror(ctypes.get_errno()))
child.kill()
'''


def host_pid_of(cmdline: str) -> int | None:
    """The host's pid of the process that runs exactly `cmdline`, if one does."""
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return next((int(pid) for pid, args in (line.strip().split(None, 1) for line in ps.splitlines())
                 if args == cmdline), None)


def processes_seen_from(container, marker: str, pids: list[int]) -> dict:
    code, out = python_in(container, PROCESSES, ",".join(map(str, pids)), environment={"RED_MARKER": marker})
    assert code == 0, out
    return json.loads(out)


def test_other_sandboxes_and_the_hosts_processes_are_out_of_sight_and_reach(red_hub, alice, bob, twin):
    marker = f"sleep {300 + secrets.randbelow(1000)}.{secrets.randbelow(1000):03d}"
    bob.exec_run(marker.split(), user="1000", detach=True)  # a process of bob's, uid 1000 like alice's
    bobs = wait_for(lambda: host_pid_of(marker), 10, what="bob's marker process")
    hub = red_hub.process.pid
    try:
        by_twin = processes_seen_from(twin("host-pids", pid_mode="host"), marker, [bobs, hub])
        seen = processes_seen_from(alice, marker, [bobs, hub])
    finally:
        os.kill(bobs, signal.SIGKILL)
    NOTES.append(f"ptrace of one's own processes in a sandbox (same uid): {python_in(alice, OWN_PTRACE)[1].strip()}; "
                 f"of the hub (root) by a twin in the host's pid namespace: {by_twin[str(hub)]}")
    other, host = "another sandbox's process", "the host's processes"
    judge([
        Attempt("processes: see another sandbox's process", "a pid namespace of its own", by_twin[other],
                not seen[other], f"sandbox {seen[other]}, twin {by_twin[other]}"),
        Attempt("processes: see the host's processes", "a pid namespace of its own", bool(by_twin[host]),
                not seen[host], f"sandbox {seen[host]}, twin {by_twin[host]}"),
        Attempt("processes: ptrace another sandbox's process", "a pid namespace of its own",
                by_twin[str(bobs)] == f"attached to {marker}", marker not in seen[str(bobs)],
                f"sandbox {seen[str(bobs)]}, twin {by_twin[str(bobs)]}"),
    ])


# ---- 6. another user's home

OTHER_HOME = r'''
import json, os, sys
me, other, other_volume, secret = sys.argv[1:5]
fields = next((line.split() for line in open("/proc/self/mountinfo") if line.split()[4] == "/home/jovyan"), None)
root, source = (fields[3], fields[fields.index("-") + 2]) if fields else ("", "")  # a twin has no home mount
# where the other home could be: the own home's host path or device with the name changed, the
# docker volume's usual host path, a sibling of the own home
places = {root.replace(me, other), source.replace(me, other), f"/var/lib/docker/volumes/{other_volume}/_data",
          f"/home/{other}", os.path.expanduser(f"~/../{other}")}
out = {"own home": f"{source} {root}"}
for place in sorted(places):
    try:
        with open(os.path.join(place, secret)) as f:
            out[place] = "read: " + f.read().strip()
    except OSError as e:
        out[place] = "refused: " + type(e).__name__
print(json.dumps(out))
'''


def test_another_users_home_is_out_of_reach(red_hub, alice, bob, twin):
    secret = f"bob-secret-{secrets.token_hex(4)}"
    assert exec_in(bob, f"echo '{secret}' > ~/red-team-secret.txt")[0] == 0
    volume = BOX.home_volume("bob")
    args = ["alice", "bob", volume, "red-team-secret.txt"]
    bound = twin("bobs-home", volumes={volume: {"bind": f"/var/lib/docker/volumes/{volume}/_data", "mode": "ro"}})
    code, twin_out = python_in(bound, OTHER_HOME, *args)
    code2, out = python_in(alice, OTHER_HOME, *args)
    assert code == code2 == 0, (twin_out, out)
    by_twin, found = json.loads(twin_out), json.loads(out)
    judge([Attempt("home: read another user's home by the paths its own mount shows", "a bind of bob's volume",
                   any(v == f"read: {secret}" for v in by_twin.values()),
                   not any(v.startswith("read") for v in found.values()), f"sandbox {found}")])


# ---- 7. the writable filesystems' size limits

WRITABLE = r'''
import json, os
# every filesystem that holds files the sandbox user may write, with its size
found = {}
for line in open("/proc/mounts"):
    _, folder, kind, options = line.split()[:4]
    if kind in ("tmpfs", "ext4", "xfs", "btrfs", "overlay") and "rw" in options.split(",") \
            and os.path.isdir(folder) and os.access(folder, os.W_OK):  # not docker's masks over /proc files
        found[folder] = os.statvfs(folder).f_blocks * os.statvfs(folder).f_frsize
print(json.dumps(found))
'''

FILL = r'''
import errno, json, os, sys
past, out = int(sys.argv[1]), {}
for folder, size in json.loads(sys.argv[2]).items():
    path, written = os.path.join(folder, "red-team-fill"), 0
    try:
        with open(path, "wb", buffering=0) as f:
            while written < size + past:
                written += f.write(b"\0" * 2**20)
            os.fsync(f.fileno())
        result = "wrote all"
    except OSError as e:
        result = "refused: " + errno.errorcode.get(e.errno, str(e.errno))
    finally:
        if os.path.exists(path):
            os.unlink(path)
    out[folder] = [result, written]
print(json.dumps(out))
'''


def fill_from(container, sizes: dict) -> dict:
    code, out = python_in(container, FILL, str(PAST), json.dumps(sizes), timeout=120)
    assert code == 0, out
    return json.loads(out)


def test_no_writable_filesystem_fills_past_its_limit(alice, twin):
    code, out = python_in(alice, WRITABLE)
    assert code == 0, out
    sizes = json.loads(out)
    assert sizes["/tmp"] == TMP_SIZE and sizes["/home/jovyan"] <= HOME_SIZE, sizes  # /dev/shm: docker's 64 MiB
    unsized = {folder: ",".join(o for o in options.split(",") if not o.startswith("size="))
               for folder, options in alice.attrs["HostConfig"]["Tmpfs"].items()}
    unbounded = twin("unbounded", tmpfs=unsized, shm_size=4 * max(sizes.values()),
                     volumes={f"{BOX.prefix}-twin-home": {"bind": "/home/jovyan", "mode": "rw"}})
    by_twin, filled = fill_from(unbounded, sizes), fill_from(alice, sizes)
    judge([Attempt(f"fill {folder} past its {sizes[folder] // MiB} MiB",
                   "a size limit (tmpfs size, shm size; a plain volume for the home)",
                   by_twin[folder][0] == "wrote all", filled[folder][0] == "refused: ENOSPC" and
                   filled[folder][1] <= sizes[folder], f"sandbox {filled[folder]}, twin {by_twin[folder]}")
           for folder in sizes])


# ---- 8. a fork bomb

FORK_BOMB = r'''
import os, signal, sys, time
most, seconds = int(sys.argv[1]), float(sys.argv[2])
deadline, children, stopped_by = time.monotonic() + seconds, [], "its own bound"
while len(children) < most and time.monotonic() < deadline:
    try:
        pid = os.fork()
    except OSError as e:  # EAGAIN at the pids limit
        stopped_by = type(e).__name__
        break
    if pid == 0:  # a child waits to be killed, and leaves by itself at the deadline if it is not
        time.sleep(max(0.0, deadline - time.monotonic()))
        os._exit(0)
    children.append(pid)
for pid in children:
    os.kill(pid, signal.SIGKILL)
for pid in children:
    os.waitpid(pid, 0)
print(len(children), stopped_by)
'''


def test_a_fork_bomb_stops_at_the_pids_limit(alice, twin):
    """A bounded bomb (one parent forks until refused, its own bound or 20 s): the sandbox's pids limit
    refuses it, then the sandbox and its server work on (the autouse check)."""
    limit = alice.attrs["HostConfig"]["PidsLimit"]
    most = limit + 64  # a bounded bomb: a twin without the limit stops here, by itself
    code, twin_out = exec_in(twin("no-pids-limit", pids_limit=-1), ["python3", "-c", FORK_BOMB, str(most), "20"],
                             timeout=40)
    code2, out = exec_in(alice, ["python3", "-c", FORK_BOMB, str(most), "20"], timeout=40)
    assert code == code2 == 0, (twin_out, out)
    forked, stopped_by = out.split()
    judge([Attempt(f"fork bomb: more than the {limit} processes of the limit", "the pids limit",
                   twin_out.strip() == f"{most} its own bound",
                   stopped_by == "BlockingIOError" and int(forked) < limit,
                   f"sandbox {out.strip()}, twin {twin_out.strip()}")])


# ---- 9. a route out, an address beyond the link

ROUTES = r'''
import json
def rows(path):
    try:
        return [line.split() for line in open(path).read().splitlines()]
    except OSError:
        return []
zero = "0" * 32
print(json.dumps({
    "IPv4 default route": [r[0] for r in rows("/proc/net/route")[1:] if r[1] == "00000000"],
    # an IPv6 default route that is not the kernel's "unreachable" one (RTF_REJECT, 0x200)
    "IPv6 default route": [r[9] for r in rows("/proc/net/ipv6_route")
                           if r[0] == zero and r[1] == "00" and not int(r[8], 16) & 0x200],
    # if_inet6's scope: 0x10 host (loopback), 0x20 link; anything else reaches beyond the link
    "IPv6 address beyond link-local": [r[0] for r in rows("/proc/net/if_inet6") if int(r[3], 16) not in (0x10, 0x20)],
}))
'''


def routes_of(container) -> dict:
    code, out = python_in(container, ROUTES)
    assert code == 0, out
    return json.loads(out)


IPV6_ON = r'''
import ctypes, errno, json
def attempt():
    try:
        with open("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "w") as f:
            f.write("0")
        return "turned on"
    except OSError as e:
        return "refused: " + errno.errorcode.get(e.errno, type(e).__name__)
first = attempt()
if first != "turned on":  # /proc/sys is mounted read-only: make it writable, then again
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"none", b"/proc/sys", None, 32 | 4096, None) == 0:  # MS_REMOUNT | MS_BIND, not MS_RDONLY
        first = attempt()
print(json.dumps(first))
'''


def turn_ipv6_on(container, user: str) -> str:
    code, out = python_in(container, IPV6_ON, user=user)
    assert code == 0, out
    return json.loads(out)


@pytest.fixture
def routes(alice, twin) -> tuple[dict, dict]:
    """What alice's sandbox and a twin given routes and an address read of their routes and addresses."""
    routed = twin("routed")
    give_route(routed, global_address=True)
    return routes_of(alice), routes_of(routed)


def test_there_is_no_ipv6_beyond_the_link_and_no_turning_it_on(alice, routes, twin):
    found, by_twin = routes
    attempts = [Attempt(f"route: {what}", "IPv6, with a route and an address added from the host", bool(by_twin[what]),
                        not found[what], f"sandbox {found[what]}, twin {by_twin[what]}")
                for what in ("IPv6 default route", "IPv6 address beyond link-local")]
    net_admin = twin("net-admin", user="0", cap_add=["NET_ADMIN", "SYS_ADMIN"])
    by_twin = turn_ipv6_on(net_admin, "0")
    for who, user in (("as the sandbox user", "1000"), ("as root in the sandbox", "0")):
        answer = turn_ipv6_on(alice, user)
        attempts.append(Attempt(f"route: turn IPv6 on {who}", "root with NET_ADMIN (and SYS_ADMIN for /proc/sys)",
                                by_twin == "turned on", answer.startswith("refused"),
                                f"sandbox {answer}, twin {by_twin}"))
    judge(attempts)


def test_there_is_no_ipv4_default_route(routes):
    """Docker gives a container on an internal network one; the spawner deletes it."""
    found, by_twin = routes
    judge([Attempt("route: IPv4 default route", "a route added from the host", bool(by_twin["IPv4 default route"]),
                   not found["IPv4 default route"], f"sandbox {found['IPv4 default route']}")])


LISTEN_ONCE = r'''
import socket
with socket.create_server(("0.0.0.0", 8123)) as server:
    print("listening", flush=True)
    while True:
        server.accept()[0].close()
        print("accepted", flush=True)
'''


class ForwardingOpened:
    """docker's DOCKER-USER chain (first in FORWARD) lets two addresses reach each other, until exit."""

    def __init__(self, one: str, other: str):
        self.rules = [["-s", f"{one}/32", "-d", f"{other}/32", "-j", "ACCEPT"],
                      ["-s", f"{other}/32", "-d", f"{one}/32", "-j", "ACCEPT"]]

    def __enter__(self):
        for rule in self.rules:
            subprocess.run(["iptables", "-w", "-I", "DOCKER-USER", "1", *rule], check=True)

    def __exit__(self, *exc):
        for rule in self.rules:
            subprocess.run(["iptables", "-w", "-D", "DOCKER-USER", *rule], check=True)


def test_the_default_route_forwards_nothing(docker, alice, twin):
    """Through its default route a sandbox would reach other networks; docker's isolation rules for
    an internal network drop what it forwards. The target is a container on docker's default
    bridge, on this machine: nothing is sent beyond it."""
    if not docker.networks.list(names=["bridge"]):
        pytest.skip("docker's default bridge network is off on this host: no other network to aim at")
    target = twin("other-network", network="bridge", dns=None, command=["python3", "-c", LISTEN_ONCE])
    wait_for(lambda: b"listening" in target.logs(), 30, what="the listener on docker's default bridge")
    address = target.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    forwarded = twin("forwarded")
    with ForwardingOpened(sandbox_ip(forwarded), address):
        by_twin = connect_from(forwarded, [("other", address, 8123, "")])["other"]
    taken_by_twin = target.logs().count(b"accepted")
    found = connect_from(alice, [("other", address, 8123, "")])["other"]
    judge([Attempt("route: reach a container on another network through the default route",
                   "docker's isolation of the internal network (DOCKER-USER lets the twin through)",
                   by_twin == "connected" and taken_by_twin == 1,
                   found.startswith("blocked") and target.logs().count(b"accepted") == taken_by_twin,
                   f"sandbox {found}, twin {by_twin}")])
